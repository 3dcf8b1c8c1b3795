"""A teacher's soft targets, computed once and committed: ``results/teachers/<name>.npz``.

    python -m fer_utils.teachers --teacher cnn:1.0 [--teacher mobilenet:2.2] [--name cnn1]

Distilling a student needs the teacher's output distribution on every training image. Computing it
needs the teacher's weights and a forward pass over 28,709 images; a committed file of those
distributions lets a student be distilled on any machine, without the teacher. The file holds, for
every Training row of the data set (the validation rows included) and for two views of it, the
image and its left-right mirror, the teacher's log-probabilities in float16; with several teachers
(an ensemble), the mean of their probabilities. Beside them: the data fingerprint, the teachers'
run ids and their accuracies (alone and as an ensemble, with and without mirror TTA).

**Augmentation.** A student is trained on augmented views (random mirror, small shifts, rotations,
zoom) of each image, while the targets are the teacher's on the clean image. The default target
(``view="tta"``) is the mean of the teacher's distributions on the image and on its mirror: the
same whether or not the augmentation mirrored the image, so the mirror is consistent by
construction (and the target is the teacher's mirror-TTA prediction, which scores higher than its
plain one); the other augmentations are small, label-preserving changes the target ignores.
``view="plain"`` uses the clean image's distribution alone (the first method this project ran,
where the teacher ran in the loop on the clean images). Where the mirror is the only augmentation
(``--augment flip``), ``fer_utils.distill``'s ``view="paired"`` reads both views (:meth:`TeacherFile.views`)
and gives each step the distribution of the view it drew: exact, like a teacher in the loop.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import config, data
from .constants import NUM_CLASSES

VIEWS = ("plain", "mirror")
#: what a student's target is made of (see the module's docstring)
TARGET_VIEWS = config.KD_TARGET_VIEWS


def view_probabilities(models, x: np.ndarray) -> np.ndarray:
    """(n, 2, 7) float64: the (mean) softmax of ``models`` on each image and on its mirror."""
    from .predict import probabilities

    out = np.zeros((len(x), len(VIEWS), NUM_CLASSES))
    mirrored = np.ascontiguousarray(x[:, :, ::-1])
    for model in models:
        out[:, 0] += probabilities(model, x)
        out[:, 1] += probabilities(model, mirrored)
    return out / len(models)


def accuracies(probs: np.ndarray, y: np.ndarray) -> dict:
    """Plain and mirror-TTA accuracy of (n, 2, 7) view probabilities."""
    return {"plain": round(float(np.mean(probs[:, 0].argmax(1) == y)), 4),
            "tta": round(float(np.mean(probs.mean(axis=1).argmax(1) == y)), 4)}


@dataclass
class TeacherFile:
    """A read teacher file: ``rows`` (sorted data set rows), ``logp`` (n, 2, 7) float16, ``info``."""
    path: Path
    rows: np.ndarray
    logp: np.ndarray
    info: dict

    def check_data(self, dataset: data.FERDataset) -> None:
        """Refuse ``dataset`` unless the file was computed on it (its fingerprint)."""
        if self.info.get("data_fingerprint") != dataset.fingerprint():
            raise ValueError(f"{self.path}: computed on other data (fingerprint {self.info.get('data_fingerprint')}, "
                             f"this data {dataset.fingerprint()})")

    def probabilities(self, rows: np.ndarray, view: str = "tta") -> np.ndarray:
        """(len(rows), 7) float64 distributions of the teacher on those data set rows."""
        if view not in TARGET_VIEWS:
            raise ValueError(f"unknown view {view!r}; expected one of {', '.join(TARGET_VIEWS)}")
        p = self.views(rows)
        p = p.mean(axis=1) if view == "tta" else p[:, 0]
        return p / p.sum(axis=1, keepdims=True)

    def views(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), 2, 7) float64: the teacher's distributions on those data set rows' images and
        on their mirrors (:data:`VIEWS`), each renormalised after float16 rounding."""
        rows = np.asarray(rows, dtype=np.int64)
        at = np.searchsorted(self.rows, rows)
        found = (at < len(self.rows)) & (self.rows[np.minimum(at, len(self.rows) - 1)] == rows)
        if not found.all():
            raise ValueError(f"{self.path}: no soft targets for data set row {int(rows[~found][0])} "
                             f"({int((~found).sum())} of {len(rows)} rows missing)")
        p = np.exp(self.logp[at].astype(np.float64))
        return p / p.sum(axis=2, keepdims=True)  # float16 rounding: renormalise each view


def write(path: Path, rows: np.ndarray, probs: np.ndarray, info: dict) -> int:
    """Write a teacher file (rows sorted); returns its size in bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    order = np.argsort(rows)
    logp = np.log(np.clip(probs[order], 1e-7, 1.0)).astype(np.float16)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, rows=np.asarray(rows)[order].astype(np.int32), logp=logp,
                        info=np.array(json.dumps(info, sort_keys=True)))
    tmp.replace(path)
    return path.stat().st_size


def read(path: Path, dataset: data.FERDataset | None = None) -> TeacherFile:
    """Read a teacher file; with ``dataset``, refuse one computed on other data."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: teacher file not found (python -m fer_utils.teachers writes it)")
    try:
        with np.load(path) as z:
            rows, logp, info = z["rows"].astype(np.int64), z["logp"], json.loads(str(z["info"]))
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a teacher file ({exc})") from exc
    if logp.shape != (len(rows), len(VIEWS), NUM_CLASSES) or np.any(np.diff(rows) <= 0):
        raise ValueError(f"{path}: corrupt teacher file (logp {logp.shape} for {len(rows)} rows)")
    found = TeacherFile(path, rows, logp, info)
    if dataset is not None:
        found.check_data(dataset)
    return found


def compute(teacher_runs: list[dict], dataset: data.FERDataset, prepared: dict, runs_root: Path | None = None):
    """(rows, view probabilities, info) of an ensemble of finished runs on every Training row, with
    each teacher's and the ensemble's accuracies on the test splits."""
    from . import runs

    models = [runs.load_trained(r, runs_root) for r in teacher_runs]
    train = dataset.subset("Training")
    probs = view_probabilities(models, train.images.astype(np.float32) / 255.0)
    info = {"data_fingerprint": dataset.fingerprint(), "data_source": dataset.label,
            "teachers": [r["run_id"] for r in teacher_runs], "training": accuracies(probs, train.labels),
            "git_commit": runs.git_commit(), "each": {}}
    for split, (x, y) in prepared["tests"].items():
        info[split] = accuracies(view_probabilities(models, x), y)
        for r, m in zip(teacher_runs, models):
            info["each"].setdefault(r["run_id"], {})[split] = accuracies(view_probabilities([m], x), y)
    return train.rows, probs, info


def summary(tf: TeacherFile) -> dict:
    """One row for a table: the file, its teachers, size and the ensemble's accuracies, and for an
    ensemble its best member's mirror-TTA accuracy on each test split (what the ensemble adds)."""
    row = {"file": tf.path.name, "teachers": " + ".join(tf.info["teachers"]), "bytes": tf.path.stat().st_size,
           "rows": len(tf.rows), "training_tta_acc": tf.info["training"]["tta"]}
    each = tf.info.get("each", {})
    for split in ("PublicTest", "PrivateTest"):
        if split in tf.info:
            row[f"{split}_acc"], row[f"{split}_tta_acc"] = tf.info[split]["plain"], tf.info[split]["tta"]
            members = [m[split]["tta"] for m in each.values() if split in m]
            row[f"{split}_tta_best_member"] = max(members) if len(members) > 1 else None
    return row


def table(folder: Path) -> pd.DataFrame:
    """:func:`summary` of every teacher file in ``folder`` (``results/teachers``), by file name."""
    return pd.DataFrame([summary(read(p)) for p in sorted(Path(folder).glob("*.npz"))])


def members(folder: Path) -> dict:
    """Each teacher file in ``folder`` by stem: the run ids of the teachers its targets come from."""
    return {p.stem: list(read(p).info.get("teachers", [])) for p in sorted(Path(folder).glob("*.npz"))}


#: the columns of ``teacher_runs.csv`` (:func:`run_teachers_table`)
RUN_TEACHERS_COLUMNS = ["teacher", "members", "students", "targets", "val_acc", "public_acc", "private_acc",
                        "public_tta_acc", "private_tta_acc", "best_member_private_tta_acc", "best_student",
                        "best_student_val_acc", "best_student_private_acc", "key"]


def _member_label(row) -> str:
    from . import results

    return f"{results.run_label(row)}, {int(row['epochs'])} epochs"


ACCURACIES = ("public_acc", "private_acc", "public_tta_acc", "private_tta_acc")


def _ensemble_accuracy(ids: list, rows: list, prepared: dict, runs_root: Path | None) -> dict:
    """An ensemble of finished runs scored as one (the mean of their softmax, ``runs.evaluate``); NaN
    where a member's weights are on neither this machine nor in the committed float16 copies."""
    from . import runs

    try:
        models = [runs.load_trained({**r.to_dict(), "run_id": i}, runs_root) for i, r in zip(ids, rows)]
    except (FileNotFoundError, OSError) as exc:
        print(f"teacher {' + '.join(ids)}: not scored, a member's weights are not here ({exc})", flush=True)
        return {k: float("nan") for k in ("val_acc", *ACCURACIES)}
    scores = runs.evaluate(models, prepared, mirror=True)
    split = {"public_acc": "PublicTest", "private_acc": "PrivateTest", "public_tta_acc": "PublicTest_tta",
             "private_tta_acc": "PrivateTest_tta"}
    return {"val_acc": scores["val"], **{k: scores.get(split[k], float("nan")) for k in ACCURACIES}}


def run_teachers_table(runs: pd.DataFrame, prepared: dict, profile: str, fingerprint: str, path: Path,
                       runs_root: Path | None = None) -> pd.DataFrame:
    """The teachers that taught from their weights (in the loop on augmented batches, or run once on
    the clean images), each set of teacher runs once, with its own accuracy: what a teacher file's
    table says of a file, for the teachers no file holds.

    The distilled runs of ``profile`` on the data ``fingerprint`` (:func:`results.student_teachers`)
    are grouped by their teacher runs; each group's teachers are loaded (an ensemble: the mean of their
    softmax, as the student saw it) and scored on validation and the test splits, plain and with
    mirror TTA (``runs.evaluate``), beside the best member's own PrivateTest TTA accuracy (its registry
    row) and the group's best student by validation. Measurements already in ``path`` for the same
    teacher runs (``key``: each run id with its row's timestamp) are kept, not redone; the table is
    written to ``path`` and returned, the best teacher on validation first (all scored in float32)."""
    from . import results

    mine = runs[(runs["profile"] == profile) & (runs["data_fingerprint"] == fingerprint)]
    taught = results.student_teachers(mine)
    taught = taught[(taught["how"] != "teacher file") & (taught["teachers"] != "")]
    old = pd.read_csv(path) if Path(path).exists() else pd.DataFrame(columns=RUN_TEACHERS_COLUMNS)
    by_id = mine.sort_values("timestamp").groupby("run_id").tail(1).set_index("run_id")
    out = []
    for members, group in taught.groupby("teachers", sort=True):
        ids = members.split(";")
        if not all(i in by_id.index for i in ids):
            continue  # a teacher of another registry (a test's, say): nothing to load
        rows = [by_id.loc[i] for i in ids]
        key = ";".join(f"{i}@{r['timestamp']}" for i, r in zip(ids, rows))
        students = by_id.loc[group["run_id"]].reset_index()
        best = students.sort_values(["best_val_acc", "timestamp"], ascending=[False, True]).iloc[0]
        kept = old[old["key"] == key]
        if len(rows) == 1:  # one teacher: its own registry row says it
            acc = {"val_acc": rows[0]["best_val_acc"], **{k: rows[0][k] for k in ACCURACIES}}
        elif len(kept):
            acc = kept.iloc[0].to_dict()
        else:
            acc = _ensemble_accuracy(ids, rows, prepared, runs_root)
        views = sorted(set(group["view"].fillna("once")))
        out.append({"teacher": " + ".join(_member_label(r) for r in rows), "members": members,
                    "students": len(group),
                    "targets": "; ".join(results.kd_targets(None if v == "once" else v) for v in views),
                    **{k: round(float(acc[k]), 4) for k in ("val_acc", *ACCURACIES)},
                    "best_member_private_tta_acc": (max(float(r["private_tta_acc"]) for r in rows)
                                                    if len(rows) > 1 else None),
                    "best_student": results.run_label(best), "best_student_val_acc": best["best_val_acc"],
                    "best_student_private_acc": best["private_acc"], "key": key})
    table = pd.DataFrame(out, columns=RUN_TEACHERS_COLUMNS)
    table = table.sort_values(["val_acc", "teacher"], ascending=[False, True], kind="stable").reset_index(drop=True)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return table


# --------------------------------------------------------------------------- how far ensembles go
#: the columns of ``teacher_pool.csv`` (:func:`pool_table`)
POOL_COLUMNS = ["members", "models", "val_acc", "public_acc", "private_acc", "public_tta_acc", "private_tta_acc",
                "val_gain", "run_ids", "pool", "key"]
#: the largest set :func:`best_sets` tries (every set up to it is tried)
POOL_MAX_MEMBERS = 5
#: the most runs :func:`best_sets` searches exhaustively: a larger pool keeps its best runs on validation
POOL_MAX_RUNS = 16
_POOL_SPLITS = {"val": "val", "public_acc": "PublicTest", "private_acc": "PrivateTest",
                "public_tta_acc": "PublicTest_tta", "private_tta_acc": "PrivateTest_tta"}


def pool_runs(runs: pd.DataFrame, profile: str, fingerprint: str, min_epochs: int,
              runs_root: Path | None = None) -> pd.DataFrame:
    """The finished runs an ensemble can be made of: the newest row of every run of ``profile`` on the
    data ``fingerprint`` trained at least ``min_epochs`` epochs, quantisation-aware fine-tunes left out
    (their sources stand for them), whose weights are here (``runs.has_weights``); by run id. Only runs
    that held out the validation split: a run on the original's protocol (``vpub``) trained on the images
    the sets are chosen on, and picked its epoch on PublicTest."""
    from . import results, runs as runs_mod

    mine = runs[(runs["profile"] == profile) & (runs["data_fingerprint"] == fingerprint)]
    mine = mine.sort_values("timestamp").drop_duplicates("run_id", keep="last")
    mine = mine[~mine["recipe"].map(results.is_qat) & (mine["epochs"].astype(int) >= int(min_epochs))
                & (mine["recipe"].map(config.validation_of) == "holdout")]
    mine = mine[mine["run_id"].map(lambda i: runs_mod.has_weights(i, runs_root)).astype(bool)]
    return mine.sort_values("run_id").reset_index(drop=True)


def pool_outputs(pool: pd.DataFrame, prepared: dict, cache_dir: Path, runs_root: Path | None = None) -> dict:
    """Each pool run's softmax outputs (float64) on validation and the test splits, plain and with mirror
    TTA (``<split>_tta``), by run id; cached in ``cache_dir`` by run id and finishing time, so a run is
    scored once (again where the cached validation split has another length)."""
    import hashlib

    from . import runs as runs_mod
    from .ensemble import cached_outputs
    from .predict import probabilities

    n_val = len(prepared["val"][1])
    out = {}
    for row in pool.to_dict("records"):
        key = f"{row['run_id']}@{row['timestamp']}"

        def compute(_stored: dict, row=row) -> dict:  # stored outputs of another validation split: all again
            model = runs_mod.load_trained(row, runs_root)
            probs = {}
            for name, (x, _) in [("val", prepared["val"]), *prepared["tests"].items()]:
                probs[name] = probabilities(model, x)
                probs[f"{name}_tta"] = probabilities(model, x, mirror=True, plain=probs[name])
            return probs

        out[row["run_id"]] = cached_outputs(Path(cache_dir) / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz",
                                            compute, lambda found: len(found.get("val", ())) == n_val)
    return out


def set_scores(ids: list, outputs: dict, labels: dict) -> dict:
    """One set's accuracy on each split of :data:`_POOL_SPLITS` that ``outputs`` hold (its members'
    softmax averaged; ``val``: validation, plain)."""
    acc = {}
    for col, split in _POOL_SPLITS.items():
        if split in outputs[ids[0]]:
            y = labels[split.removesuffix("_tta")]
            acc[col] = float(np.mean(np.argmax(sum(outputs[i][split] for i in ids), axis=1) == y))
    return acc


def best_sets(outputs: dict, labels: dict, max_members: int = POOL_MAX_MEMBERS,
              max_runs: int = POOL_MAX_RUNS) -> list[dict]:
    """For each size 1..``max_members``, the set of runs whose averaged softmax scores best on
    validation (plain, as a teacher in the loop sees it), every set of that size tried; ties go to the
    earlier set in run-id order. ``outputs``: :func:`pool_outputs`; ``labels``: each split's labels
    (``val``, ``PublicTest``, ``PrivateTest``). A pool above ``max_runs`` keeps its best runs alone on
    validation. Each result: ``ids`` and the accuracy on each split of :data:`_POOL_SPLITS`."""
    import itertools

    ids = sorted(outputs)
    if len(ids) > max_runs:
        alone = {i: set_scores([i], outputs, labels)["val"] for i in ids}
        ids = sorted(sorted(ids, key=lambda i: -alone[i])[:max_runs])
    best = []
    for k in range(1, min(max_members, len(ids)) + 1):
        top = None
        for s in itertools.combinations(ids, k):
            acc = set_scores(list(s), outputs, labels)
            if top is None or acc["val"] > top["val"]:
                top = {"ids": list(s), **acc}
        best.append(top)
    return best


def pool_table(runs: pd.DataFrame, prepared: dict, profile: str, fingerprint: str, path: Path,
               min_epochs: int | None = None, cache_dir: Path | None = None, runs_root: Path | None = None,
               max_members: int = POOL_MAX_MEMBERS) -> pd.DataFrame:
    """How far ensembles of the finished models go: the best set of each size on validation
    (:func:`best_sets`) among the runs of at least ``min_epochs`` epochs (default: half the profile's
    budget, the long runs; :func:`pool_runs`), then all of them together. ``val_gain``: points of
    validation accuracy over the best set one member smaller. The same pool (``key``: each run id with
    its finishing time) keeps the table already in ``path``; else it is measured (float32 outputs,
    cached under ``build/teacher_pool``), written to ``path`` and returned."""
    from . import paths, results

    prof = config.get_profile(profile)
    min_epochs = max(1, prof.epochs // 2) if min_epochs is None else int(min_epochs)
    pool = pool_runs(runs, profile, fingerprint, min_epochs, runs_root)
    key = ";".join(f"{r['run_id']}@{r['timestamp']}" for r in pool.to_dict("records"))
    old = pd.read_csv(path) if Path(path).exists() else pd.DataFrame(columns=POOL_COLUMNS)
    if not old.empty and (old["key"] == key).all() and key:
        return old
    out = []
    if len(pool):
        outputs = pool_outputs(pool, prepared, cache_dir or paths.BUILD_DIR / "teacher_pool", runs_root)
        labels = {"val": prepared["val"][1], **{k: y for k, (_, y) in prepared["tests"].items()}}
        by_id = pool.set_index("run_id")
        sets = best_sets(outputs, labels, max_members)
        everyone = sorted(outputs)
        if len(everyone) > len(sets[-1]["ids"]):  # and all of them together
            sets.append({"ids": everyone, **set_scores(everyone, outputs, labels)})
        previous = None
        for s in sets:
            out.append({"members": len(s["ids"]),
                        "models": "; ".join(f"{results.run_label(by_id.loc[i])}, {int(by_id.loc[i, 'epochs'])} epochs"
                                            for i in s["ids"]),
                        "val_acc": round(s["val"], 4),
                        **{c: round(s[c], 4) if c in s else np.nan for c in list(_POOL_SPLITS)[1:]},
                        "val_gain": np.nan if previous is None else round(100 * (s["val"] - previous), 2),
                        "run_ids": ";".join(s["ids"]), "pool": len(pool), "key": key})
            previous = s["val"]
    table = pd.DataFrame(out, columns=POOL_COLUMNS)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return table


#: what :func:`with_teacher_accuracy` adds: the teacher's own PrivateTest accuracy, plain and with mirror TTA
TEACHER_ACCURACY_COLUMNS = ["teacher_private_acc", "teacher_private_tta_acc"]


def with_teacher_accuracy(kd: pd.DataFrame, runs: pd.DataFrame, run_teachers: pd.DataFrame,
                          folder: Path) -> pd.DataFrame:
    """The "which teacher" table (``results.kd_teachers``, ``kd_teachers.csv``) with each teacher's own
    PrivateTest accuracy, plain and with mirror TTA (:data:`TEACHER_ACCURACY_COLUMNS`), so a student's
    gain reads beside its teacher's strength: a teacher file's from the file itself (``folder``), a
    teacher run from its weights from :func:`run_teachers_table` (``run_teachers``), found by the runs
    that taught the row's student (``results.student_teachers`` of the registry ``runs``, joined on
    ``run_id``). NaN where the teacher is not known: a file not in ``folder``, a student whose
    teachers do not resolve, or a set of teacher runs not in ``run_teachers``."""
    from . import results

    out = kd.copy()
    for c in TEACHER_ACCURACY_COLUMNS:
        out[c] = np.nan
    if out.empty:
        return out
    taught = (results.student_teachers(runs).set_index("run_id")["teachers"] if not runs.empty
              else pd.Series(dtype=str))
    scored = run_teachers.drop_duplicates("members").set_index("members") if not run_teachers.empty else None
    files = table(folder)  # each file's summary, read once
    files = files.set_index("file") if not files.empty else None
    for i, row in out.iterrows():
        acc = None
        if row["view"] in config.KD_TARGET_VIEWS:
            name = f"{row['teacher']}.npz"
            if files is not None and name in files.index:
                acc = tuple(files.loc[name].get(c) for c in ("PrivateTest_acc", "PrivateTest_tta_acc"))
        else:
            ids = taught.get(row.get("run_id"), "")
            if isinstance(ids, str) and ids and scored is not None and ids in scored.index:
                acc = (scored.at[ids, "private_acc"], scored.at[ids, "private_tta_acc"])
        if acc is not None:
            out.loc[i, TEACHER_ACCURACY_COLUMNS] = [np.nan if a is None or pd.isna(a) else float(a) for a in acc]
    return out


def main(argv=None) -> int:
    import argparse

    from . import results, runs

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", action="append", required=True, metavar="ARCH:WIDTH|RUN_ID",
                        help="a finished plain run of the profile, or any finished run by its run id "
                             "(repeat for an ensemble)")
    parser.add_argument("--name", default=None, help="file name (default: the teachers, e.g. cnn1)")
    config.add_cli_arguments(parser)
    args = parser.parse_args(argv)
    ds, setup, reg = config.from_cli(args)
    try:
        found = results.find_runs(args.teacher, reg, setup.profile.name, ds.fingerprint())
    except LookupError as exc:
        parser.error(str(exc))
    name = args.name or results.teachers_name(found)
    rows, probs, info = compute(found, ds, runs.prepare(ds, setup.profile))
    path = setup.results / "teachers" / f"{name}.npz"
    size = write(path, rows, probs, info)
    print(f"{path}: {size:,} bytes, {len(rows):,} rows; " + ", ".join(
        f"{s} {info[s]['plain']:.4f} (TTA {info[s]['tta']:.4f})" for s in ("PublicTest", "PrivateTest") if s in info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
