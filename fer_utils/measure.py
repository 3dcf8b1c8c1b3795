"""Measure codecs on trained runs: bytes on disk and accuracy of the decoded model.

Rows go to ``codecs.csv`` beside the registry, one per (run, codec), measured
once (train once, read many times). A row belongs to the registry
row it was measured on (``run_timestamp``): it stays valid on any machine, its
encoded file or not, until the run is trained again; it names its file by sha256.
The encoded files stay in the run folder (``runs/<run_id>/codecs/``) of the machine
that measured them.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import compress, paths, results

COLUMNS = ("run_id", "model", "arch", "width", "params", "codec", "bytes", "bytes_per_param",
           "public_acc", "private_acc", "float32_public", "float32_private", "public_drop", "private_drop",
           "data_source", "run_timestamp", "file_sha256")
#: columns an older table lacks (read blank)
ADDED = ("run_timestamp", "file_sha256")


def read_table(path: Path) -> pd.DataFrame:
    """The codec table; an older one without ``run_timestamp`` or ``file_sha256`` reads with them blank."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    df = pd.read_csv(path, dtype={c: str for c in ADDED})
    missing = COLUMNS[len(df.columns):]
    if tuple(df.columns) == COLUMNS[:len(df.columns)] and set(missing) <= set(ADDED):
        for c in missing:
            df[c] = None
    if tuple(df.columns) != COLUMNS:
        raise ValueError(f"{path}, line 1: malformed codec table header {list(df.columns)}; expected {list(COLUMNS)}")
    return df


def codec_path(run_id: str, codec: str, runs_root: Path | None = None) -> Path:
    return Path(runs_root or paths.runs_dir()) / run_id / "codecs" / f"weights.{codec}"


def measured(run: dict, table: Path, runs_root: Path | None = None) -> set[str]:
    """The codecs of ``run`` (a registry row) whose rows in ``table`` are still valid.

    A row is valid when it was measured on this registry row (same ``run_timestamp``), whether
    or not its file is on this machine: a run trained again under the same id has a new
    timestamp, and its old rows are to be measured again and replaced. A row without a
    timestamp (an older table), or a run without one, counts only while its file is here. A file
    here that is not the one measured (``is_measured_file``) makes its row invalid.
    """
    return _valid(read_table(table), run, runs_root)


def _valid(done: pd.DataFrame, run: dict, runs_root: Path | None) -> set[str]:
    stamp, valid = _stamp(run), set()
    for r in done[done["run_id"] == run["run_id"]].itertuples(index=False):
        row_stamp = r.run_timestamp if isinstance(r.run_timestamp, str) and r.run_timestamp else None
        path = codec_path(run["run_id"], r.codec, runs_root)
        if path.exists() and not is_measured_file(path, r):
            continue  # the file here is not the one measured (an interrupted measurement): measure again
        if row_stamp is not None and stamp is not None:
            if row_stamp == stamp:
                valid.add(r.codec)
        elif path.exists():
            valid.add(r.codec)
    return valid


def file_digest(path: Path) -> str:
    """The sha256 of a codec file, as its row keeps it."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def is_measured_file(path: Path, row) -> bool:
    """Whether ``path`` is the file ``row`` measured: its sha256 (its size, for an older row without one)."""
    digest = getattr(row, "file_sha256", None)
    if isinstance(digest, str) and digest:
        return file_digest(path) == digest
    return Path(path).stat().st_size == int(row.bytes)


def _stamp(run: dict) -> str | None:
    """The registry row's timestamp, as the codec table keeps it (None: a run without one)."""
    stamp = run.get("timestamp")
    return None if stamp is None or stamp == "" or (isinstance(stamp, float) and pd.isna(stamp)) else str(stamp)


CONFUSION_COLUMNS = ("run_id", "run_timestamp", "model", "true", "pred", "count")


def confusion_counts(runs: pd.DataFrame, load_test, table: Path, runs_root: Path | None = None) -> pd.DataFrame:
    """PrivateTest confusion counts (``true``, ``pred``, ``count``) of each of ``runs``' registry rows.

    Cached in ``table`` by run id **and** the registry row's timestamp, so a run trained again under
    the same id is predicted again; runs without weights on this machine keep their cached rows.
    ``load_test()`` returns the prepared (images, labels) of PrivateTest; it is called only when
    something has to be predicted.
    """
    import numpy as np

    from .runs import has_weights, load_trained

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


FIT_COLUMNS = ("run_id", "run_timestamp", "images", "train_acc")


def train_fit(runs: pd.DataFrame, dataset, profile, table: Path, runs_root: Path | None = None) -> pd.DataFrame:
    """How well each of ``runs``' registry rows fits its own training images: its accuracy on them
    clean (no augmentation, inference mode: no dropout), with the split its seed and validation
    protocol trained on (``runs.prepare`` under ``profile``). A model well below what it could fit is
    held back by its regularisation; one far above its validation accuracy, by overfitting.

    Cached in ``table`` by run id and the registry row's timestamp (as :func:`confusion_counts`); runs
    without weights on this machine keep their cached rows; ``dataset`` is only read when something
    has to be predicted."""
    from dataclasses import replace

    import numpy as np

    from . import config
    from .runs import has_weights, load_trained, prepare

    table = Path(table)
    cached = pd.read_csv(table) if table.exists() else pd.DataFrame(columns=list(FIT_COLUMNS))
    if tuple(cached.columns) != FIT_COLUMNS:
        raise ValueError(f"{table}, line 1: malformed fit table header {list(cached.columns)}; expected {list(FIT_COLUMNS)}")
    have = set(zip(cached["run_id"], cached["run_timestamp"].astype(str)))
    todo = [r for _, r in runs.iterrows()
            if (r["run_id"], str(r["timestamp"])) not in have and has_weights(r["run_id"], runs_root)]
    if todo:
        fresh = []
        for r in todo:
            prof = replace(profile, validation=config.validation_of(r["recipe"]))
            x, y = prepare(dataset, prof, int(r["seed"]))["train"]
            pred = np.argmax(load_trained(r.to_dict(), runs_root).predict(x, batch_size=256, verbose=0), axis=1)
            fresh.append({"run_id": r["run_id"], "run_timestamp": str(r["timestamp"]), "images": len(y),
                          "train_acc": round(float(np.mean(pred == y)), 4)})
        stale = cached["run_id"].isin([r["run_id"] for r in todo])
        kept = cached[~stale]
        new = pd.DataFrame(fresh, columns=list(FIT_COLUMNS))
        cached = pd.concat([kept, new], ignore_index=True) if not kept.empty else new
        table.parent.mkdir(parents=True, exist_ok=True)
        cached.to_csv(table, index=False)
    wanted = set(zip(runs["run_id"], runs["timestamp"].astype(str)))
    keep = [(a, str(b)) in wanted for a, b in zip(cached["run_id"], cached["run_timestamp"])]
    return cached[keep].reset_index(drop=True)


def test_loader(profile, split: str = "PrivateTest"):
    """A callable returning the prepared (images, labels) of ``split`` under ``profile``; the data is
    loaded only when it is called (``confusion_counts`` calls it only when something is to predict)."""
    def load():
        from . import data
        from .runs import prepare

        return prepare(data.load(), profile)["tests"][split]
    return load


def measure_codecs(run: dict, codecs: list[str], prepared: dict, table: Path, runs_root: Path | None = None,
                   model=None, again: bool = False, base: dict | None = None) -> pd.DataFrame:
    """Encode ``run``'s model with each codec without a valid row in ``table``, decode, evaluate, and
    write its row (replacing a stale one).

    ``model`` overrides the run's own weights (a pruned copy, say); its codec
    names should then say so (``pruned-...``). ``again``: every codec named is measured, valid row or
    not (its file is written again here from the weights here, which may encode otherwise than the
    weights it was measured on: a float16 copy). ``base``: the run's own float32 test accuracies
    (``{"PublicTest": ..., "PrivateTest": ...}``) where the caller already has them; otherwise those the
    run's valid rows were measured beside (a codec added later costs one evaluation, of its own file);
    without such rows they are measured here.
    """
    from .runs import evaluate, load_trained

    done = read_table(table)
    done_codecs = set() if again else _valid(done, run, runs_root)  # the table is read once
    todo = [c for c in codecs if c not in done_codecs]
    if not todo:
        return done[done["run_id"] == run["run_id"]]
    stale = (done["run_id"] == run["run_id"]) & done["codec"].isin(todo)
    if base is None:
        base = _float32(done[(done["run_id"] == run["run_id"]) & done["codec"].isin(done_codecs)])
    if model is None:
        model = load_trained(run, runs_root)
        base = base if base is not None else evaluate(model, prepared, val=False)
    elif base is None:
        base = evaluate(load_trained(run, runs_root), prepared, val=False)
    rows = []
    for codec in todo:
        path = codec_path(run["run_id"], codec, runs_root)
        path.parent.mkdir(parents=True, exist_ok=True)
        size = compress.encode(model, path, codec.split("@")[0])  # "<codec>@<sparsity>" names a pruned copy
        acc = evaluate(compress.decode(path), prepared, val=False)  # rows hold test accuracies only
        pub, priv = acc.get("PublicTest", float("nan")), acc.get("PrivateTest", float("nan"))
        rows.append({
            "run_id": run["run_id"], "model": results.run_label(run), "arch": run["arch"],
            "width": run["width"], "params": int(run["params"]), "codec": codec, "bytes": size,
            "bytes_per_param": round(size / int(run["params"]), 4), "public_acc": round(pub, 4),
            "private_acc": round(priv, 4), "float32_public": round(base.get("PublicTest", float("nan")), 4),
            "float32_private": round(base.get("PrivateTest", float("nan")), 4),
            "public_drop": round((base.get("PublicTest", float("nan")) - pub) * 100, 2),
            "private_drop": round((base.get("PrivateTest", float("nan")) - priv) * 100, 2),
            "data_source": run["data_source"], "run_timestamp": _stamp(run), "file_sha256": file_digest(path),
        })
    Path(table).parent.mkdir(parents=True, exist_ok=True)
    kept = done[~stale]
    fresh = pd.DataFrame(rows, columns=list(COLUMNS))
    out = pd.concat([kept, fresh], ignore_index=True) if len(kept) else fresh
    out.to_csv(table, index=False)  # stale rows replaced; an older table gets its new columns
    return out[out["run_id"] == run["run_id"]]


def _float32(rows: pd.DataFrame) -> dict | None:
    """The float32 test accuracies a run's codec rows were measured beside; None without rows."""
    if not len(rows) or rows[["float32_public", "float32_private"]].iloc[0].isna().any():
        return None  # (a row from a table older than these columns)
    first = rows.iloc[0]
    return {"PublicTest": float(first["float32_public"]), "PrivateTest": float(first["float32_private"])}


def measure_models(runs: pd.DataFrame, codecs: list[str], prepared: dict, table: Path, pruned_codecs=(),
                   sparsity: float = 0.5, prune_epochs: int = 3, runs_root: Path | None = None) -> pd.DataFrame:
    """Every codec, and every pruned codec at ``sparsity``, on each of ``runs`` whose float32 weights are
    on this machine; the others keep the rows the training machine wrote. Returns their rows."""
    from . import prune
    from .runs import has_weights, load_trained

    for _, run in runs.iterrows():
        run = run.to_dict()
        if not has_weights(run["run_id"], runs_root):
            print(f"{run['model']}: float32 weights not on this machine; using the cached codec rows")
            continue
        measure_codecs(run, codecs, prepared, table, runs_root)
        pruned_names = [f"{c}@{sparsity:g}" for c in pruned_codecs]
        if pruned_names and not set(pruned_names) <= measured(run, table, runs_root):
            pruned = prune.prune(load_trained(run, runs_root), sparsity, prepared, epochs=prune_epochs, verbose=2)
            # the source's accuracies: measure_codecs reads them from the run's valid rows (the codecs
            # just measured among them), never from a row of a training before
            measure_codecs(run, pruned_names, prepared, table, runs_root, model=pruned)
    rows = relabel(table, runs)
    return rows[rows.run_id.isin(runs.run_id)]


def relabel(table: Path, runs: pd.DataFrame) -> pd.DataFrame:
    """The codec table with each of ``runs``' rows named as :func:`results.run_label` names its run now
    (a name is for display, and its rules may change after a row was measured: a cached row keeps
    its measurement, not its old name); written back where a name changed. Returns the whole table."""
    rows = read_table(table)
    names = {r["run_id"]: results.run_label(r) for _, r in runs.iterrows()}
    renamed = rows["run_id"].map(names).fillna(rows["model"])
    if not renamed.equals(rows["model"]):
        rows = rows.assign(model=renamed)
        rows.to_csv(table, index=False)
    return rows


def check_from_files(codecs: pd.DataFrame, images, labels, runs_root: Path | None = None,
                     tolerance: float = 1e-4) -> pd.DataFrame:
    """Predict PrivateTest from each codec file on this machine through the deliverable's code path
    (``predict.predict_labels`` on the decoded file, mirror TTA off as when measured) and compare
    with the measured accuracy; a difference over ``tolerance`` is an error naming the file."""
    import numpy as np

    from . import predict

    checks = []
    for row in codecs.itertuples(index=False):
        path = codec_path(row.run_id, row.codec, runs_root)
        if not path.exists():  # measured on another machine: cached row, no file here
            continue
        if not is_measured_file(path, row):
            raise ValueError(f"{path}: not the file its codec row measured (another sha256 or size); measure it again")
        acc = float(np.mean(predict.predict_labels(compress.decode(path), images, mirror=False) == labels))
        if abs(acc - row.private_acc) > tolerance:
            raise ValueError(f"{path}: PrivateTest accuracy from the file alone is {acc:.4f}, measured {row.private_acc}")
        checks.append({"model": row.model, "codec": row.codec, "bytes": row.bytes, "measured": row.private_acc,
                       "from file": round(acc, 4)})
    return pd.DataFrame(checks, columns=["model", "codec", "bytes", "measured", "from file"])
