"""Measure codecs on trained runs: bytes on disk and accuracy of the decoded model.

Rows go to ``codecs.csv`` beside the registry, one per (run, codec), appended
and never recomputed (train once, read many times). The encoded files stay in
the run folder (``runs/<run_id>/codecs/``).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import compress, paths, results

COLUMNS = ("run_id", "model", "arch", "width", "params", "codec", "bytes", "bytes_per_param",
           "public_acc", "private_acc", "float32_public", "float32_private", "public_drop", "private_drop",
           "data_source")


def read_table(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    df = pd.read_csv(path)
    if tuple(df.columns) != COLUMNS:
        raise ValueError(f"{path}, line 1: malformed codec table header {list(df.columns)}; expected {list(COLUMNS)}")
    return df


def codec_path(run_id: str, codec: str, runs_root: Path | None = None) -> Path:
    return Path(runs_root or paths.runs_dir()) / run_id / "codecs" / f"weights.{codec}"


def measured(run_id: str, table: Path, runs_root: Path | None = None) -> set[str]:
    """The codecs of ``run_id`` that have a row in ``table`` **and** their file on this machine.

    A row counts only while its file is there: a run trained again (same run id, new weights)
    leaves rows whose files are gone, and those are to be measured again and replaced.
    """
    return _with_files(read_table(table), run_id, runs_root)


def _with_files(done: pd.DataFrame, run_id: str, runs_root: Path | None) -> set[str]:
    return {c for c in done.loc[done["run_id"] == run_id, "codec"] if codec_path(run_id, c, runs_root).exists()}


CONFUSION_COLUMNS = ("run_id", "run_timestamp", "model", "true", "pred", "count")


def confusion_counts(runs: pd.DataFrame, load_test, table: Path, runs_root: Path | None = None) -> pd.DataFrame:
    """PrivateTest confusion counts (``true``, ``pred``, ``count``) of each of ``runs``' registry rows.

    Cached in ``table`` by run id **and** the registry row's timestamp, so a run trained again under
    the same id is predicted again; runs without weights on this machine keep their cached rows.
    ``load_test()`` returns the prepared (images, labels) of PrivateTest; it is called only when
    something has to be predicted.
    """
    import numpy as np

    from .train import has_weights, load_trained

    table = Path(table)
    cached = pd.read_csv(table) if table.exists() else pd.DataFrame(columns=list(CONFUSION_COLUMNS))
    if tuple(cached.columns) != CONFUSION_COLUMNS:  # an older cache without timestamps: predict again
        cached = pd.DataFrame(columns=list(CONFUSION_COLUMNS))
    have = set(zip(cached["run_id"], cached["run_timestamp"].astype(str)))
    todo = [r for _, r in runs.iterrows()
            if (r["run_id"], str(r["timestamp"])) not in have and has_weights(r["run_id"], runs_root)]
    if todo:
        x, y = load_test()
        fresh = []
        for r in todo:
            pred = np.argmax(load_trained(r.to_dict(), runs_root).predict(x, batch_size=256, verbose=0), axis=1)
            counts = pd.crosstab(pd.Series(y, name="true"), pd.Series(pred, name="pred")).stack()
            fresh.append(counts.rename("count").reset_index()
                         .assign(run_id=r["run_id"], run_timestamp=str(r["timestamp"]), model=r["model"]))
        stale = cached["run_id"].isin([r["run_id"] for r in todo])
        cached = pd.concat([cached[~stale]] + [f[list(CONFUSION_COLUMNS)] for f in fresh], ignore_index=True)
        table.parent.mkdir(parents=True, exist_ok=True)
        cached.to_csv(table, index=False)
    wanted = set(zip(runs["run_id"], runs["timestamp"].astype(str)))
    keep = [(a, str(b)) in wanted for a, b in zip(cached["run_id"], cached["run_timestamp"])]
    return cached[keep].reset_index(drop=True)


def measure_codecs(run: dict, codecs: list[str], prepared: dict, table: Path, runs_root: Path | None = None,
                   model=None) -> pd.DataFrame:
    """Encode ``run``'s model with each codec not yet in ``table``, decode, evaluate, append rows.

    ``model`` overrides the run's own weights (a pruned copy, say); its codec
    names should then say so (``pruned-...``).
    """
    from .train import evaluate, load_trained

    done = read_table(table)
    done_codecs = _with_files(done, run["run_id"], runs_root)  # the table is read once
    todo = [c for c in codecs if c not in done_codecs]
    if not todo:
        return done[done["run_id"] == run["run_id"]]
    stale = (done["run_id"] == run["run_id"]) & done["codec"].isin(todo)
    if stale.any():
        done[~stale].to_csv(table, index=False)
    base_model = load_trained(run, runs_root)
    base = evaluate(base_model, prepared)
    model = model if model is not None else base_model
    rows = []
    for codec in todo:
        path = codec_path(run["run_id"], codec, runs_root)
        path.parent.mkdir(parents=True, exist_ok=True)
        size = compress.encode(model, path, codec.split("@")[0])  # "<codec>@<sparsity>" names a pruned copy
        acc = evaluate(compress.decode(path), prepared)
        pub, priv = acc.get("PublicTest", float("nan")), acc.get("PrivateTest", float("nan"))
        rows.append({
            "run_id": run["run_id"], "model": results.run_label(run), "arch": run["arch"],
            "width": run["width"], "params": int(run["params"]), "codec": codec, "bytes": size,
            "bytes_per_param": round(size / int(run["params"]), 4), "public_acc": round(pub, 4),
            "private_acc": round(priv, 4), "float32_public": round(base.get("PublicTest", float("nan")), 4),
            "float32_private": round(base.get("PrivateTest", float("nan")), 4),
            "public_drop": round((base.get("PublicTest", float("nan")) - pub) * 100, 2),
            "private_drop": round((base.get("PrivateTest", float("nan")) - priv) * 100, 2),
            "data_source": run["data_source"],
        })
    Path(table).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(table, mode="a", header=not Path(table).exists(), index=False)
    out = read_table(table)
    return out[out["run_id"] == run["run_id"]]
