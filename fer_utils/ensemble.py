"""Ensembles of compressed files under a byte budget: several small models, their outputs averaged.

A folder of 225,000 B holds one ~200 kB file, or three or four files of 45-110 kB whose averaged
softmax is more accurate than any one of them (models of other seeds and widths err on other
faces). :func:`search` picks the members of each budget's ensemble among the measured codec files
(``codecs.csv``) by greedy forward selection on **PublicTest** (Caruana et al., 2004): start from
a file, add the file that raises PublicTest accuracy most while the folder still fits, stop when
none raises it; every file that fits is tried as the start, and the best ensemble found wins. A
run enters at most once (its other codecs are the same model). PrivateTest only reports.

PublicTest is scored as the deliverable ships (``predict.MIRROR_TTA``: each image's outputs averaged
with its mirror's), so the search finds the best folder as it ships, one file or several. Each
member's outputs on the two test splits, plain and with mirror TTA, are computed once from its file
and cached by the file's sha256 under ``build/ensemble/``. The folders go to ``ensembles.csv``, one
row per budget: its members' run ids, codecs and file digests (joined by :data:`SEP`), their bytes
and the averaged prediction's accuracy, plain and with TTA. A row stays valid on a machine without
the files while every member still has its codec row (same digest): a fresh clone chooses the same
deliverable, rebuilt from the committed ``best-<budget>[-<i>].<codec>`` files
(:func:`fer_utils.deliverable.choose`).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from . import paths
from .deliverable import SEP, code_bytes as folder_code_bytes, committed_files
COLUMNS = ("budget", "members", "model", "codec", "run_id", "file_sha256", "bytes", "public_acc", "private_acc",
           "public_tta_acc", "private_tta_acc")
#: a table from before the TTA columns (its rows read back without them: NaN, so a new search replaces them)
OLD_COLUMNS = COLUMNS[:-2]
SPLITS = ("PublicTest", "PrivateTest")
#: at most this many members (a folder's ``weights-<i>`` files sort by name in their order)
MAX_MEMBERS = 9


def read_table(path: Path) -> pd.DataFrame:
    """``ensembles.csv`` (empty with its columns where there is none); a wrong header is an error naming the file."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    df = pd.read_csv(path, dtype={"file_sha256": str, "run_id": str, "codec": str})
    if tuple(df.columns) == OLD_COLUMNS:
        df = df.reindex(columns=list(COLUMNS))
    if tuple(df.columns) != COLUMNS:
        raise ValueError(f"{path}, line 1: malformed ensemble table header {list(df.columns)}; expected {list(COLUMNS)}")
    return df


def cached_outputs(cache: Path, compute, reuse=lambda found: True) -> dict:
    """Softmax outputs kept in the ``.npz`` file ``cache``: what it holds where ``reuse(found)`` says the
    stored arrays still serve, else ``compute(found)``'s, written back atomically (``found``: the stored
    arrays, ``{}`` where none, so a caller may compute only what is missing, or ignore them). Stored
    as float64, so a rerun reads exactly what the first run scored."""
    cache = Path(cache)
    found = {}
    if cache.exists():
        with np.load(cache) as z:
            found = {k: z[k].astype(np.float64) for k in z.files}
        if reuse(found):
            return found
    out = compute(found)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.stem + ".tmp.npz")
    np.savez(tmp, **{k: np.asarray(v, dtype=np.float64) for k, v in out.items()})
    tmp.replace(cache)
    return out


def outputs(path: Path, digest: str, prepared: dict, cache_dir: Path, mirror: bool = False) -> dict:
    """A codec file's softmax outputs (float64) on each test split, from the file alone
    (``predict.probabilities`` on the decoded model, the deliverable's code path); ``mirror``: also
    with mirror TTA (``<split>_tta``, what ``predict`` outputs by default); cached by ``digest``
    (:func:`cached_outputs`: a cache without the TTA keys gains them)."""
    keys = [*SPLITS, *(f"{s}_tta" for s in SPLITS)] if mirror else list(SPLITS)

    def compute(found: dict) -> dict:
        from . import compress, predict

        out, model = dict(found), compress.decode(path)
        for s in SPLITS:
            if s not in out:
                out[s] = predict.probabilities(model, prepared["tests"][s][0])
            if mirror and f"{s}_tta" not in out:
                out[f"{s}_tta"] = predict.probabilities(model, prepared["tests"][s][0], mirror=True, plain=out[s])
        return out

    out = cached_outputs(Path(cache_dir) / f"{digest}.npz", compute, lambda found: all(k in found for k in keys))
    return {k: out[k] for k in keys}


def accuracy(members: list[dict], labels: np.ndarray, split: str) -> float:
    """The accuracy of members' averaged outputs on ``split`` (``predict.mean_probabilities``; ``<split>_tta``:
    their outputs with mirror TTA)."""
    from .predict import mean_probabilities

    return float(np.mean(np.argmax(mean_probabilities([m[split] for m in members]), axis=1) == labels))


def greedy(candidates: list[dict], labels: np.ndarray, room: int, first: dict | None = None,
           split: str = "PublicTest") -> list[dict]:
    """Forward selection on PublicTest: members from ``candidates`` (dicts with ``run_id``, ``bytes`` and
    each split's outputs) whose bytes sum to at most ``room``; each run at most once; ``first``: the
    member to start from (default: the best file); ``split``: the outputs scored (``PublicTest_tta``:
    with mirror TTA). Ties go to the smaller file, then the run id and codec, so the same candidates
    always give the same ensemble."""
    order = sorted(candidates, key=lambda c: (c["bytes"], c["run_id"], c["codec"]))
    chosen, best, used = [], -1.0, 0
    if first is not None:
        chosen, best, used = [first], accuracy([first], labels, split), first["bytes"]
    while len(chosen) < MAX_MEMBERS:
        step = None
        for c in order:
            if c["bytes"] + used > room or any(c["run_id"] == m["run_id"] for m in chosen):
                continue
            acc = accuracy(chosen + [c], labels, split)
            if acc > best and (step is None or acc > step[0]):
                step = (acc, c)
        if step is None:
            return chosen
        best, used = step[0], used + step[1]["bytes"]
        chosen.append(step[1])
    return chosen


def best_ensemble(candidates: list[dict], labels: np.ndarray, room: int, split: str = "PublicTest") -> list[dict]:
    """:func:`greedy` from every candidate that fits as its first member; the ensemble with the best
    PublicTest accuracy (ties: fewer bytes, then the earlier start). Starting only from the best file
    is myopic: a large best file can leave no room for the pair that beats it."""
    best, found = (-1.0, 0), []
    for c in sorted(candidates, key=lambda c: (-accuracy([c], labels, split), c["bytes"], c["run_id"], c["codec"])):
        if c["bytes"] > room:
            continue
        members = greedy(candidates, labels, room, first=c, split=split)
        score = (accuracy(members, labels, split), -sum(m["bytes"] for m in members))
        if score > best:
            best, found = score, members
    return found


#: a file takes part only within this much PublicTest accuracy of the best file that fits (a model far
#: behind the best never raised an ensemble's accuracy here, and each candidate costs a pass over both
#: test splits)
WITHIN = 0.05


def pool(codecs: pd.DataFrame, room: int, within: float = WITHIN) -> pd.DataFrame:
    """The codec rows worth trying in an ensemble whose files may take ``room`` bytes: the files within
    ``within`` PublicTest accuracy of the best file that fits, and of those, per run, the ones no other
    file of the same run beats in both bytes and PublicTest accuracy."""
    fit = codecs[codecs["bytes"].astype(int) <= room].drop_duplicates(["run_id", "codec"], keep="last")
    if fit.empty:
        return fit
    fit = fit[fit["public_acc"] >= fit["public_acc"].max() - within]
    keep = []
    for _, g in fit.groupby("run_id", sort=True):
        for r in g.itertuples():
            beaten = ((g["bytes"] <= r.bytes) & (g["public_acc"] >= r.public_acc)
                      & ((g["bytes"] < r.bytes) | (g["public_acc"] > r.public_acc))).any()
            if not beaten:
                keep.append(r.Index)
    return fit.loc[sorted(keep)]


def committed_copy(digest: str, folder: Path | dict | None = None) -> Path | None:
    """A committed deliverable file whose sha256 is ``digest``; None if none is. ``folder``: where the
    ``best-*`` files are (default ``results/weights``), or their ``deliverable.committed_files`` map."""
    if not isinstance(folder, dict):
        folder = committed_files(folder if folder is not None else paths.RESULTS_DIR / "weights")
    return folder.get(digest)


def file_here(row, runs_root: Path | None = None, run: dict | None = None, prepared: dict | None = None,
              codec_table: Path | None = None, committed: Path | dict | None = None):
    """The codec file a row measured, on this machine, and the row that describes it; None where there is none.

    The file is the run folder's when it is the one measured (same sha256). Where it is missing, a
    committed deliverable file with that sha256 (:func:`committed_copy` in ``committed``, default
    ``results/weights``, or its ``deliverable.committed_files`` map, hashed once for many rows) is
    copied there: on a fresh clone the chosen folders' members keep their rows, so the committed
    ensembles stay valid, whatever the run's weights would encode to now.
    Else, where the run's weights are here (``run``: its registry row), it is written again from
    them: the same bytes keep the row. Other bytes, or a row from before digests were kept (which
    cannot name its file), are measured again into ``codec_table`` (``measure.measure_codecs``),
    whose new row then describes the file here, only from the run's own float32 weights (the machine
    that trained it): a float16 copy alone (a fresh clone) encodes to other bytes than the measured
    weights for most codecs, and measuring those would replace committed rows with a copy's and
    take minutes per file, so such a row has no file here. A pruned codec is not the run's own
    weights: only its measured file counts.
    """
    from . import compress
    from .measure import codec_path, is_measured_file, measure_codecs
    from .runs import has_weights, load_trained, weights_path

    path = codec_path(row.run_id, row.codec, runs_root)
    named = isinstance(row.file_sha256, str) and bool(row.file_sha256)
    if named and path.exists():
        return (path, row) if is_measured_file(path, row) else None
    copy = committed_copy(row.file_sha256, committed) if named else None
    if copy is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(copy, path)
        return path, row
    if run is None or "@" in str(row.codec) or not has_weights(row.run_id, runs_root):
        return None
    if named:
        path.parent.mkdir(parents=True, exist_ok=True)
        compress.encode(load_trained(run, runs_root), path, row.codec)
        if is_measured_file(path, row):
            return path, row
    if prepared is None or codec_table is None or not weights_path(row.run_id, runs_root).exists():
        if named:
            path.unlink()
        return None
    fresh = measure_codecs(run, [row.codec], prepared, codec_table, runs_root, again=True)
    return path, next(fresh[fresh.codec == row.codec].itertuples(index=False))


def valid_rows(table: pd.DataFrame, codecs: pd.DataFrame) -> pd.DataFrame:
    """The rows of an ensemble table whose every member (run id, codec, digest) still has its codec row."""
    have = set(zip(codecs["run_id"], codecs["codec"], codecs["file_sha256"].astype(str)))
    keep = [all(m in have for m in zip(r.split(SEP), c.split(SEP), d.split(SEP)))
            for r, c, d in zip(table["run_id"], table["codec"], table["file_sha256"].astype(str))]
    return table[np.array(keep, dtype=bool)]  # (a plain empty list would select columns)


def relabel(table: pd.DataFrame, codecs: pd.DataFrame) -> pd.DataFrame:
    """An ensemble table whose ``model`` names each member as the codec rows name its run now
    (``measure.relabel``): a folder kept from an earlier search keeps its members, not their old names;
    a row with a member the codec rows do not name keeps its name."""
    names = dict(zip(codecs["run_id"], codecs["model"]))
    renamed = []
    for ids, model in zip(table["run_id"], table["model"]):
        members = [names.get(r) for r in str(ids).split(SEP)]
        renamed.append(model if None in members else SEP.join(members))
    return table.assign(model=renamed)


def search(codecs: pd.DataFrame, budgets: dict, prepared: dict, table: Path, code_bytes: int | None = None,
           runs_root: Path | None = None, cache_dir: Path | None = None, runs: pd.DataFrame | None = None,
           codec_table: Path | None = None, mirror: bool | None = None) -> pd.DataFrame:
    """Each budget's best folder of measured codec files, one file or an ensemble (:func:`best_ensemble`),
    written to ``table``.

    ``codecs``: candidate codec rows (``measure.read_table``); those :func:`pool` keeps take part where
    their file is here, or where their run's weights are here (``runs``: registry rows) to write it
    again, measured again into ``codec_table`` if it comes out otherwise (:func:`file_here`).
    ``code_bytes``: what the folder adds to its files (default: measured, ``deliverable.code_bytes``),
    so the files may take ``limit - code_bytes``. ``mirror`` (default ``predict.MIRROR_TTA``): the
    files are scored as the deliverable ships them, each image's outputs averaged with its mirror's;
    the choice rests on that PublicTest accuracy (``public_tta_acc``), since a folder that wins
    without TTA can lose with it. Every row has both the plain and the TTA accuracies. A budget's row
    from an earlier search stays when it is still valid (:func:`valid_rows`) and its PublicTest
    accuracy (the same kind) is at least the new one's (on a machine without the files nothing new is
    found, and the row stands).
    """
    from .predict import MIRROR_TTA

    mirror = MIRROR_TTA if mirror is None else mirror
    split, score = ("PublicTest_tta", "public_tta_acc") if mirror else ("PublicTest", "public_acc")
    cache_dir = Path(cache_dir or paths.BUILD_DIR / "ensemble")
    if code_bytes is None:
        code_bytes = folder_code_bytes(cache_dir / "code-only")
    old = valid_rows(read_table(table), codecs)
    labels = {s: prepared["tests"][s][1] for s in SPLITS}
    registered = {} if runs is None else {r["run_id"]: r for r in runs.to_dict("records")}
    tried: dict[tuple, dict | None] = {}  # (run id, codec) -> candidate, or None: no file here
    copies = committed_files(Path(table).parent / "weights")  # hashed once, not once per missing file
    rows = []
    for name, budget in budgets.items():
        room = budget.limit - code_bytes
        fit = []
        for row in pool(codecs, room).itertuples(index=False):
            key = (row.run_id, row.codec)
            if key not in tried:
                run = registered.get(row.run_id)
                found = file_here(row, runs_root, run, prepared, codec_table, copies)
                if found is None:
                    tried[key] = None
                else:
                    path, now = found  # the row that describes the file here
                    tried[key] = {"run_id": now.run_id, "codec": now.codec, "model": now.model, "bytes": int(now.bytes),
                                  "file_sha256": now.file_sha256,
                                  **outputs(path, now.file_sha256, prepared, cache_dir, mirror=True)}
            if tried[key] is not None and tried[key]["bytes"] <= room:
                fit.append(tried[key])
        found = best_ensemble(fit, labels["PublicTest"], room, split) if fit else []
        new = None
        if found:
            new = {"budget": name, "members": len(found), "model": SEP.join(m["model"] for m in found),
                   **{k: SEP.join(m[k] for m in found) for k in ("codec", "run_id", "file_sha256")},
                   "bytes": sum(m["bytes"] for m in found),
                   **{f"{k}{tta}_acc": round(accuracy(found, labels[s], s + tta), 4)
                      for tta in ("", "_tta") for k, s in (("public", "PublicTest"), ("private", "PrivateTest"))}}
        kept = old[old.budget == name]
        if not kept.empty and (new is None or kept.iloc[-1][score] >= new[score]):
            rows.append(kept.iloc[-1].to_dict())
        elif new is not None:
            rows.append(new)
    out = relabel(pd.DataFrame(rows, columns=list(COLUMNS)), codecs)
    if codec_table is not None and Path(codec_table).exists():  # a member measured again above: its old row went
        from .measure import read_table as read_codecs

        out = valid_rows(out, read_codecs(codec_table))
    Path(table).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(table, index=False)
    return out
