"""Reading results back: the latest run per model, learning curves, display names.

Every notebook after training reads results through here, so the report and
the figures agree on which row stands for a model.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from . import config
from .runs import GPU_SUFFIX, SHAPE_TAGS, method_tag, run_prefix, split_variant, tag_method

ARCH_NAMES = {"mobilenet": "MobileNet", "cnn": "CNN", "irnet": "IRNet (ours)"}
UNRECORDED = "not recorded (older row)"


#: the study's teacher (arch, width), the HW3 CNN: a student distilled from any other says so in its name
STUDY_TEACHER = ("cnn", 1.0)


def model_label(arch: str, width: float, tag: str = "") -> str:
    """Display name: the seed models by their role, others by family and width; a tagged
    recipe says so (``+ KD`` for a distilled run, with ``(teacher <name>)`` where the teacher is not
    the study's, the HW3 CNN: :data:`STUDY_TEACHER`), so runs of one budget from different teachers
    never share a name."""
    width = float(width)
    if width == 1.0 and arch == "mobilenet":
        name = "seed MobileNet"
    elif width == 1.0 and arch == "cnn":
        name = "HW3 CNN"
    else:
        name = f"{ARCH_NAMES.get(arch, arch)} w{width:g}"
    if tag:
        spec = qat_spec(tag)
        tag = spec["source_tag"] if spec else tag
        suffix = {config.KD_METHODS["hinton"]: " + KD", config.KD_METHODS["mix"]: " + KD (mixed targets)"}
        teacher, named = "", False
        if tag:
            name += suffix.get(tag.split("-")[0], f" [{tag}]")
            teacher = kd_teacher(tag)[0] if tag.split("-")[0] in suffix else ""
            named = teacher and teacher_run(teacher) != STUDY_TEACHER
            name += f" (teacher {teacher})" if named else ""
        if spec:
            same = named and spec["teacher"] == teacher  # said once, in the source's part
            how = (["frozen BN"] if spec["freeze_bn"] else []) + (
                [f"peak LR {spec['peak_lr']:g}"] if spec["peak_lr"] is not None else []) + (
                [f"{spec['augment']} augmentation"] if spec["augment"] else []) + (
                ["the same teacher" if same else f"teacher {spec['teacher']}"] if spec["teacher"] else [])
            name += f" + QAT {spec['codec']}" + (f" ({', '.join(how)})" if how else "")
    return name


#: a :func:`teacher_name` read back: arch, width, then (another seed or a tagged run) seed, epochs and method,
#: the run's tag's method (:func:`runs.tag_method`: ``kdh``; ``lr0.001`` for a peak-LR run, ``lr0.001auglight``)
TEACHER_NAME = re.compile(r"(?P<arch>[a-z]+)(?P<width>\d[\d.]*?)"
                          r"(?:s(?P<seed>\d+)e(?P<epochs>\d+)(?P<method>(?:[a-z]+[\d.]*)*))?")
_TEACHER = re.sub(r"\(\?P<\w+>", "(?:", TEACHER_NAME.pattern)  # the same name, unnamed groups: repeatable in a tag
#: a quantisation-aware fine-tune's run tag: ``qat-<codec>``, ``-fbn`` (BatchNorm frozen), ``-lr<peak>``
#: (a peak other than ``config.QAT_UNTAGGED_LR``), ``-aug<name>`` (an augmentation other than the source's),
#: ``-teacher-<run>-T<t>-a<alpha>`` (a teacher run, or an ensemble ``<run>+<run>…``, in the loop: Hinton's
#: loss instead of the labels alone), then the source run's own suffix
QAT_TAG = re.compile(r"qat-(?P<codec>int8|kmeans-\d(?:-dw8)?)(?P<fbn>-fbn)?(?:-lr(?P<lr>\d[\d.]*))?(?:-aug(?P<aug>[a-z]+))?"
                     rf"(?:-teacher-(?P<teacher>{_TEACHER}(?:\+{_TEACHER})*)-T(?P<kd_t>\d[\d.]*)-a(?P<kd_a>\d[\d.]*))?(?=-|$)")


def qat_spec(tag: str) -> dict | None:
    """A fine-tune's tag read back: ``codec``, ``freeze_bn``, ``peak_lr`` (None: untagged), ``augment``
    (None: the source's own), ``teacher`` (the teacher run's name, :func:`teacher_name`, or None: labels alone) with its
    ``temperature`` and ``alpha``, ``source_suffix`` (what followed the source run's common prefix:
    schedule, tag, precision) and ``source_tag`` (the source's own tag within it); None for any other tag."""
    m = QAT_TAG.match(tag)
    if not m:
        return None
    suffix = tag[m.end():]
    return {"codec": m["codec"], "freeze_bn": m["fbn"] is not None,
            "peak_lr": float(m["lr"]) if m["lr"] else None, "augment": m["aug"], "teacher": m["teacher"],
            "temperature": float(m["kd_t"]) if m["kd_t"] else None, "alpha": float(m["kd_a"]) if m["kd_a"] else None,
            "source_suffix": suffix,
            "source_tag": "-".join(p for p in suffix.split("-") if p and not re.fullmatch(r"(wsd|cos)\d+|bf16", p))}


def qat_parts(tag: str) -> tuple[str, str]:
    """(codec, the source run's tag) of a fine-tune's tag; ("", tag) for any other tag."""
    spec = qat_spec(tag)
    return (spec["codec"], spec["source_tag"]) if spec else ("", tag)


def run_label(run) -> str:
    """``model_label`` of a registry row (a dict or a Series), its recipe tag included, and its seed
    where it is not 0 (``MobileNet w0.5 (seed 1)``: the noise runs' files are files of their own)."""
    seed = run.get("seed", 0)
    seed = 0 if seed is None or seed == "" or pd.isna(seed) else int(seed)
    return (model_label(run["arch"], run["width"], recipe_tag_of(run.get("recipe", "")))
            + (f" (seed {seed})" if seed else ""))


def on_gpu(rows: pd.DataFrame) -> pd.Series:
    """Whether each registry row trained on a GPU (its ``backend`` ends in ``runs.GPU_SUFFIX``)."""
    if "backend" not in rows:
        return pd.Series(False, index=rows.index)
    return rows["backend"].astype(str).str.endswith(GPU_SUFFIX)


def cpu_seconds(rows: pd.DataFrame) -> pd.Series:
    """Each row's training wall time where it is CPU time (``wall_s``); NaN for a row trained on a GPU,
    whose seconds the report's CPU-hour columns must not count."""
    return rows["wall_s"].astype(float).where(~on_gpu(rows))


def _row_on_gpu(row) -> bool:
    """:func:`on_gpu` for one registry row (a dict or a Series)."""
    return str(row.get("backend", "")).endswith(GPU_SUFFIX)


def row_cpu_seconds(row) -> float:
    """:func:`cpu_seconds` for one registry row: NaN where it has no wall time or trained on a GPU."""
    return np.nan if _row_on_gpu(row) else float(row.get("wall_s", np.nan))


def hours_text(row) -> str:
    """A row's training time as the report writes it: ``1.23 CPU h``, or ``0.05 GPU h`` for a GPU row."""
    return f"{float(row['wall_s']) / 3600:.2f} {'GPU' if _row_on_gpu(row) else 'CPU'} h"


def precision_of(recipe: str) -> str:
    """The training precision a registry ``recipe`` names (``float32`` where it names none)."""
    parts = str(recipe).split("|")
    return next((k for k, v in config.PRECISIONS.items() if v and v in parts), "float32")


def schedule(recipe: str) -> str:
    """The schedule and precision part of a registry ``recipe`` (``ep60/es10/lr4/bs64 bf16``, or for a
    budgeted run ``wsd200/warm2/decay0.2/peak0.003 bs128``).

    Rows written before the schedule was recorded in the recipe say so instead.
    """
    parts = str(recipe).split("|")
    sched = [p for p in parts if (p.startswith("ep") and "/" in p) or re.match(r"(wsd|cosine)\d+/", p)
             or re.fullmatch(r"bs\d+", p)]
    if not sched:
        return UNRECORDED
    short = config.PRECISIONS[precision_of(recipe)]
    return " ".join(sched + ([short] if short else []))


def budget_of(recipe: str) -> int | None:
    """The epoch budget of a budgeted run's ``recipe`` (``…|wsd200/…`` -> 200); None for the first recipe.

    A quantisation-aware fine-tune stands at its source run's budget (its tag's ``-wsd<N>``), not
    at its own few epochs.
    """
    spec = qat_spec(recipe_tag_of(recipe))
    if spec:
        found = re.search(r"-(?:wsd|cos)(\d+)(?:-|$)", spec["source_suffix"])
        return int(found.group(1)) if found else None
    found = re.search(r"(?:^|\|)(?:wsd|cosine)(\d+)/", str(recipe))
    return int(found.group(1)) if found else None


def latest_runs(runs: pd.DataFrame, profile: str | None = None, recipe_tag: str | None = "",
                budget: int | None = None) -> pd.DataFrame:
    """The registry row that stands for each (arch, width, seed) of a profile, plain recipe unless a
    tag is named; ``recipe_tag=None``: one row for every (arch, width, seed, tag), plain and tagged.

    With ``budget`` only budgeted rows on exactly that many epochs count (the sweeps' budget, say),
    and first-recipe rows stand in where a model has none. Without one (and a profile) the model's
    **longest finished training** stands for it: its budgeted row with the most epochs up to the
    profile's headline budget (the newest among equals), else its newest first-recipe row. A run
    of the headline budget does not fit one 3-hour CPU session (run folders do not outlive one), so
    the longest budget that finished is the best trained model there is; a shorter decay of the
    budget study stands for the model only while nothing longer has finished.

    For that headline (no ``budget``, the plain slot) a **peak-LR or augmentation variant** (tag
    ``lr<peak>``, ``aug<name>`` or ``lr<peak>-aug<name>``: :data:`HEADLINE_VARIANT`) competes with the
    plain run of its model and seed: issue 12 chooses each family's peak and augmentation by
    measurement (:func:`peak_lr_check`, :func:`augment_check`), so a longer finished budget still
    wins, and on equal budgets the better validation accuracy does (never a test split). It keeps the
    plain model's name; its recipe says the peak and augmentation (:func:`variant_words`). The newest
    row of a run id is the only one that counts.
    """
    if runs.empty:
        return runs.assign(model=pd.Series(dtype=str))
    df = runs.copy()
    if profile is not None:
        df = df[df["profile"] == profile]
    df = df.assign(_tag=df["recipe"].map(recipe_tag_of), _budget=pd.to_numeric(df["recipe"].map(budget_of)))
    if budget is not None:
        df = df[df["_budget"].isna() | (df["_budget"] == budget)]
    elif profile in config.PROFILES:
        df = df[df["_budget"].isna() | (df["_budget"] <= config.PROFILES[profile].epochs)]
    compete = recipe_tag == "" and budget is None  # the headline slot: peak-LR and augmentation variants compete
    if recipe_tag is not None:
        df = df[(df["_tag"] == recipe_tag) | (compete & df["_tag"].str.fullmatch(HEADLINE_VARIANT))]
    if compete:  # the slot's name is the plain model's
        df = df.assign(_tag="")
    # a first-recipe row ranks below every budgeted row, budgeted rows by budget, then (runs of one budget
    # competing for the headline slot) by validation, then by time, the newest row of each run id alone
    if "run_id" in df:
        df = df.sort_values("timestamp").drop_duplicates("run_id", keep="last")
    val = df["best_val_acc"] if compete and "best_val_acc" in df else pd.Series(0.0, index=df.index)
    df = df.assign(_rank=df["_budget"].fillna(-1.0), _val=pd.to_numeric(val, errors="coerce").fillna(0.0))
    df = (df.sort_values(["_rank", "_val", "timestamp"]).groupby(["arch", "width", "seed", "_tag"], as_index=False)
          .tail(1).drop(columns=["_rank", "_budget", "_val"]))
    df = df.assign(model=[model_label(a, w, t) for a, w, t in zip(df["arch"], df["width"], df["_tag"])])
    return df.drop(columns="_tag").sort_values(["arch", "params", "model"]).reset_index(drop=True)


#: a recipe tag that is a peak-LR variant alone (``fer_utils.train --peak-lr``): the same model, schedule
#: shape, budget and batch size at another peak
PEAK_VARIANT = r"lr[\d.]+"
#: the run tag of each augmentation but the standard one (``runs.variant_tag``: ``aug<name>``), by tag
AUGMENT_TAGS = {f"aug{name}": name for name in config.AUGMENTS if name != "standard"}
_AUGMENT_VARIANT = "(?:" + "|".join(AUGMENT_TAGS) + ")"
#: a recipe tag that competes for its model's headline slot (:func:`latest_runs`): a peak-LR variant, an
#: augmentation variant (``fer_utils.train --augment``) or both (``lr0.001-auglight``), the settings issue 12
#: chooses by measurement
HEADLINE_VARIANT = rf"{PEAK_VARIANT}|{_AUGMENT_VARIANT}|{PEAK_VARIANT}-{_AUGMENT_VARIANT}"


def variant_peak(tag: str) -> float | None:
    """The peak learning rate a headline variant's run ``tag`` names (:data:`HEADLINE_VARIANT`: ``lr0.001``
    or ``lr0.001-auglight`` -> 0.001); None for any other tag, and for an augmentation variant alone."""
    if not re.fullmatch(HEADLINE_VARIANT, tag or ""):
        return None
    found = re.match(PEAK_VARIANT, tag)
    return float(found.group(0)[len("lr"):]) if found else None


def variant_augment(tag: str) -> str | None:
    """The augmentation (a key of ``config.AUGMENTS``) a headline variant's run ``tag`` names
    (``augflip``, ``lr0.001-auglight``); None for any other tag, and for a peak-LR variant alone."""
    if not re.fullmatch(HEADLINE_VARIANT, tag or ""):
        return None
    found = re.search(_AUGMENT_VARIANT + "$", tag)
    return AUGMENT_TAGS[found.group(0)] if found else None


def variant_words(tag: str) -> list[str]:
    """A headline variant's settings in words (``["peak LR 0.001", "flip augmentation"]``); [] for a plain
    run or any other tag."""
    peak, augment = variant_peak(tag), variant_augment(tag)
    return ([f"peak LR {peak:g}"] if peak is not None else []) + ([f"{augment} augmentation"] if augment else [])


def longest_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The rows of each (arch, width) that trained the most epochs (every seed of that length), so
    runs of different lengths, whose schedules differ, are never pooled under one model name."""
    if runs.empty:
        return runs
    return runs[runs["epochs"] == runs.groupby(["arch", "width"])["epochs"].transform("max")]


def best_distilled(runs: pd.DataFrame, arch: str, width: float = 1.0, profile: str | None = None) -> pd.Series | None:
    """The distilled run of ``arch`` at ``width`` (recipe tag ``kd…``, not a quantisation-aware fine-tune;
    the newest row of each run id) with the best validation accuracy, the lowest seed on a tie, and
    ``n_distilled``, how many it was picked from; None where none finished."""
    if runs.empty:
        return None
    df = (runs if profile is None else runs[runs["profile"] == profile]).drop_duplicates("run_id", keep="last")
    tags = df["recipe"].map(recipe_tag_of)
    df = df[(df["arch"] == arch) & (df["width"].astype(float) == float(width)) & tags.str.startswith("kd")
            & ~df["recipe"].map(is_qat)]
    if df.empty:
        return None
    seed = pd.to_numeric(df["seed"], errors="coerce").fillna(0)
    best = df.assign(_seed=seed).sort_values(["best_val_acc", "_seed"], ascending=[False, True]).iloc[0]
    return pd.concat([best.drop("_seed"), pd.Series({"n_distilled": len(df)})])


def one_row_per_model(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (arch, width) of ``latest_runs``' rows (which keep one per seed): the most epochs,
    then the lowest seed, so a model never appears twice under one name. Keeps the input order."""
    df = longest_runs(runs)
    if df.empty:
        return df
    seed = pd.to_numeric(df["seed"], errors="coerce").fillna(0) if "seed" in df else pd.Series(0, index=df.index)
    picked = df.assign(_seed=seed).sort_values("_seed", kind="stable").groupby(["arch", "width"]).head(1)
    return df[df.index.isin(picked.index)]


def learning_curves(runs: pd.DataFrame, logs_dir: Path) -> pd.DataFrame:
    """Long table (model, epoch, set, accuracy, loss) from each run's ``logs/<run_id>.csv``: the
    ``longest_runs`` of each model (all their seeds), so a panel never mixes schedules."""
    frames = []
    for _, run in longest_runs(runs).iterrows():
        path = Path(logs_dir) / f"{run['run_id']}.csv"
        if not path.exists():
            continue
        log = pd.read_csv(path)
        for set_name, acc, loss in (("train", "accuracy", "loss"), ("validation", "val_accuracy", "val_loss")):
            frames.append(pd.DataFrame({"model": run["model"], "epoch": log["epoch"], "set": set_name,
                                        "accuracy": log[acc], "loss": log[loss]}))
    if not frames:
        return pd.DataFrame(columns=["model", "epoch", "set", "accuracy", "loss"])
    return pd.concat(frames, ignore_index=True)


def recipe_tag_of(recipe: str) -> str:
    """The ``tag:`` part of a registry ``recipe`` ("" for a plain run)."""
    found = [p[len("tag:"):] for p in str(recipe).split("|") if p.startswith("tag:")]
    return found[0] if found else ""


def _untagged(recipe: str) -> str:
    return "|".join(p for p in str(recipe).split("|") if not p.startswith("tag:"))


def _students(runs: pd.DataFrame, profile: str | None, tag_prefix: str):
    """(tag, distilled run, its plain-twin candidates) for each distilled run of ``profile`` (recipe tag
    starting with ``tag_prefix``; the newest per arch, width, seed, data, recipe and tag, so every budget
    of a distilled recipe is its own student): the candidates are the plain runs (for a distilled
    ``lr``/``bs`` variant, the plain run's same variant: :func:`runs.split_variant`) of the same arch,
    width, seed, data and recipe, schedule and precision included; empty where none trained yet."""
    if runs.empty:
        return
    df = runs if profile is None else runs[runs["profile"] == profile]
    tags = df["recipe"].map(recipe_tag_of)
    untagged = df["recipe"].map(_untagged)
    keys = ["arch", "width", "seed", "data_fingerprint", "_untagged"]
    for t in sorted(set(tags[tags.str.startswith(tag_prefix)])):
        variant = split_variant(t)[1]
        own = (df[tags == t].assign(_untagged=untagged[tags == t], _budget=df["recipe"].map(budget_of))
               .sort_values("timestamp").groupby(keys, as_index=False, dropna=False).tail(1)
               .sort_values(["arch", "params", "seed", "_budget"], na_position="first"))
        for _, kd in own.iterrows():
            yield t, kd, df[(tags == variant) & (df["arch"] == kd["arch"]) & (df["width"] == kd["width"])
                            & (df["seed"] == kd["seed"]) & (df["data_fingerprint"] == kd["data_fingerprint"])
                            & (untagged == _untagged(kd["recipe"]))]


def distillation_pairs(runs: pd.DataFrame, profile: str | None = None, tag_prefix: str = "kd") -> pd.DataFrame:
    """Each distilled run next to the plain run it is compared with, two rows per pair.

    A distilled run (recipe tag starting with ``tag_prefix``) is paired only with a plain run (for a
    distilled ``lr``/``bs`` variant, the plain run's same variant: :func:`runs.split_variant`) of
    the same arch, width, seed, data and recipe (schedule and precision included), so the
    teacher's soft targets are the one difference. A distilled run without such a partner is left
    out rather than compared with a run trained otherwise. Columns: ``pair`` (the student),
    ``training`` ("labels only" or "distilled (<tag>)"), ``schedule``, the run's metrics, and
    ``private_gain`` / ``public_gain`` in points on the distilled row.
    """
    columns = ["pair", "training", "model", "params", "schedule", "epochs", "best_val_acc", "public_acc",
               "private_acc", "public_gain", "private_gain", "cpu_h", "run_id"]
    out = []
    for t, kd, plain in _students(runs, profile, tag_prefix):
        if plain.empty:
            continue
        base = plain.sort_values("timestamp").iloc[-1]
        pair = run_label(kd)
        for row, training in ((base, "labels only"), (kd, f"distilled ({t})")):
            entry = {c: row[c] for c in ("params", "epochs", "best_val_acc", "public_acc", "private_acc", "run_id")}
            gain = row is kd
            seconds = row_cpu_seconds(row)
            out.append({**entry, "pair": pair, "training": training, "model": run_label(row),
                        "cpu_h": round(seconds / 3600, 2) if np.isfinite(seconds) else None,
                        "schedule": schedule(row["recipe"]),
                        "public_gain": round(100 * (kd["public_acc"] - base["public_acc"]), 2) if gain else None,
                        "private_gain": round(100 * (kd["private_acc"] - base["private_acc"]), 2) if gain else None})
    return pd.DataFrame(out, columns=columns)


UNPAIRED_COLUMNS = ["student", "params", "schedule", "epochs", "distilled", "public_acc", "private_acc",
                    "public_tta_acc", "private_tta_acc", "cpu_h", "twin_run_id", "twin_cpu_h_est", "run_id"]


def unpaired_students(runs: pd.DataFrame, profile: str | None = None, tag_prefix: str = "kd") -> pd.DataFrame:
    """The distilled runs :func:`distillation_pairs` leaves out: no plain twin of the same recipe has
    trained yet, so what distillation gained them is not measured. One row each: the student, its
    accuracies, ``twin_run_id`` (the run id its plain twin would get: the student's without the
    distillation part of its tag) and ``twin_cpu_h_est``, that twin's training time estimated from
    the newest plain run of the same arch and width on this CPU (:func:`sweep_cost`; NaN: none yet)."""
    alone = [(t, kd) for t, kd, plain in _students(runs, profile, tag_prefix) if plain.empty]
    if not alone:
        return pd.DataFrame(columns=UNPAIRED_COLUMNS)
    pool = runs if profile is None else runs[runs["profile"] == profile]
    per_epoch = sweep_cost(pool, [(kd["arch"], float(kd["width"])) for _, kd in alone], 1)["seconds"]
    out = []
    for (t, kd), s_per_epoch in zip(alone, per_epoch):
        est = s_per_epoch * (budget_of(kd["recipe"]) or int(kd["epochs"]))
        seconds = row_cpu_seconds(kd)
        out.append({"student": run_label(kd), "params": kd["params"], "schedule": schedule(kd["recipe"]),
                    "epochs": kd["epochs"], "distilled": t,
                    **{c: kd.get(c, np.nan) for c in ("public_acc", "private_acc", "public_tta_acc",
                                                       "private_tta_acc")},
                    "cpu_h": round(seconds / 3600, 2), "twin_cpu_h_est": round(est / 3600, 2),
                    "twin_run_id": str(kd["run_id"]).replace(f"-{split_variant(t)[0]}", "", 1),
                    "run_id": kd["run_id"]})
    return pd.DataFrame(out, columns=UNPAIRED_COLUMNS)


def kd_teacher(tag: str) -> tuple[str, str | None]:
    """(teacher, view) named by a distilled run's tag (``<method>-<teacher>[-<view>]-T<t>-a<alpha>``):
    the teacher file's stem and its target view (``tta`` / ``plain``) for a committed teacher file
    (:mod:`fer_utils.teachers`); a teacher run's arch and width (``cnn1``) and ``online`` where it ran
    in the loop on each augmented batch, ``paired`` where its targets on each image and its mirror
    followed the student's mirror draw, or None where it ran once on the clean images."""
    parts = split_variant(tag)[0].split("-")
    middle = parts[1:-2] if len(parts) >= 4 else parts[1:]
    if len(middle) >= 2 and middle[-1] in config.KD_VIEWS:
        return "-".join(middle[:-1]), middle[-1]
    return "-".join(middle), None


def distilled_pairs(pairs: pd.DataFrame):
    """(plain twin, distilled run, tag) for each pair of a ``distillation_pairs`` table (the twin's
    row, then the distilled run's)."""
    for i in range(1, len(pairs)):
        kd, plain = pairs.iloc[i], pairs.iloc[i - 1]
        training = str(kd["training"])
        if training.startswith("distilled (") and plain["training"] == "labels only":
            yield plain, kd, training[len("distilled ("):-1]


def kd_point(tag: str) -> tuple[float, float] | None:
    """A distilled run's temperature and teacher weight, read from the end of its tag (``…-T2-a0.5``,
    before any ``lr``/``bs`` variant part: ``…-T2-a0.5-lr0.001``); None where the tag has none."""
    found = re.search(r"-T([\d.]+)-a([\d.]+)$", split_variant(tag)[0])
    return (float(found.group(1)), float(found.group(2))) if found else None


def _kd_points(pairs: pd.DataFrame) -> list[dict]:
    """Each distilled pair with a (T, alpha) in its tag, as one dict: the student, schedule, epochs, T,
    alpha, the tag's method prefix, the teacher's name and view (:func:`kd_teacher`), the distilled
    run's accuracies (``val_acc``: its best epoch's), the gains in points against the plain twin
    (``val_gain`` on validation) and both runs' CPU hours."""
    out = []
    for plain, kd, tag in distilled_pairs(pairs):
        point = kd_point(tag)
        if point is None:
            continue
        teacher, view = kd_teacher(tag)
        out.append({"student": plain["model"], "schedule": kd["schedule"], "epochs": int(kd["epochs"]),
                    "temperature": point[0], "alpha": point[1], "method": tag.split("-")[0],
                    "view": view, "teacher_name": teacher,
                    "val_acc": kd["best_val_acc"], "public_acc": kd["public_acc"], "private_acc": kd["private_acc"],
                    "val_gain": round(100 * (kd["best_val_acc"] - plain["best_val_acc"]), 2),
                    "public_gain": kd["public_gain"], "private_gain": kd["private_gain"],
                    "cpu_h": kd.get("cpu_h"), "plain_cpu_h": plain.get("cpu_h"), "run_id": kd.get("run_id")})
    return out


KD_SEARCH_COLUMNS = ["student", "schedule", "epochs", "teacher", "method", "temperature", "alpha", "val_gain",
                     "public_gain", "private_gain", "cpu_h", "chosen"]


def kd_search(pairs: pd.DataFrame) -> pd.DataFrame:
    """Distillation's temperature / weight searches among ``distillation_pairs``' pairs.

    A search is every distilled run of one student (arch, width, seed) on one schedule, from one
    teacher (and target view) by one method, at two or more (T, alpha) points. Each point's gains
    are in points against the same plain twin; ``val_gain`` is on the validation split (the best
    epoch's accuracy), and the point with the highest ``val_gain`` is ``chosen``: test accuracy
    never picks T and alpha. Sorted by search, then T, then alpha.
    """
    methods = {v: k for k, v in config.KD_METHODS.items()}
    out = [{**r, "teacher": r["teacher_name"] + (f" ({r['view']})" if r["view"] else ""),
            "method": methods.get(r["method"], r["method"])} for r in _kd_points(pairs)]
    df = pd.DataFrame(out, columns=KD_SEARCH_COLUMNS[:-1])
    if df.empty:
        return pd.DataFrame(columns=KD_SEARCH_COLUMNS)
    keys = ["student", "schedule", "teacher", "method"]
    points = df.assign(_point=list(zip(df["temperature"], df["alpha"])))
    return _validation_picks(points, keys, "_point", keys + ["temperature", "alpha"])[KD_SEARCH_COLUMNS]


def _validation_picks(df: pd.DataFrame, keys: list, varied: str, order: list, ascending=True) -> pd.DataFrame:
    """The rows of ``df`` in groups of equal ``keys`` that hold two or more distinct ``varied`` values (a
    search's points, a comparison's teachers), sorted by ``order`` (``ascending``), with ``chosen``: in
    each group the first row with the best ``val_gain``, so validation, never a test split, picks."""
    df = df[df.groupby(keys)[varied].transform("nunique") >= 2]
    df = df.sort_values(order, ascending=ascending, kind="stable").reset_index(drop=True)
    best = df.groupby(keys)["val_gain"].transform("max")
    return df.assign(chosen=df.index.isin(df[df["val_gain"] == best].groupby(keys).head(1).index))


KD_VIEWS_COLUMNS = ["comparison", "student", "schedule", "epochs", "temperature", "alpha", "targets", "view",
                    "teacher", "teacher_file", "val_gain", "public_gain", "private_gain", "cpu_h", "plain_cpu_h"]


#: ``run_id``: the distilled run's (its teachers' own accuracies join on it: ``teachers.with_teacher_accuracy``)
KD_TEACHERS_COLUMNS = ["comparison", "student", "schedule", "epochs", "method", "temperature", "alpha", "teacher",
                       "targets", "view", "val_acc", "public_acc", "private_acc", "val_gain", "public_gain", "private_gain",
                       "cpu_h", "run_id", "chosen"]


def from_teacher_file(teacher: str, view: str | None) -> bool:
    """Whether a distilled run's teacher (name and view, :func:`kd_teacher`) is a committed teacher file:
    its ``tta`` / ``plain`` targets, or ``paired`` where the name is no run's (:func:`teacher_parts`)."""
    return view in config.KD_TARGET_VIEWS or (view == config.KD_PAIRED_VIEW and teacher_parts(teacher) is None)


def kd_targets(view: str | None) -> str:
    """How a distilled run's teacher gave its targets, in words, from the view in its tag."""
    if view == config.KD_ONLINE_VIEW:
        return "in the loop (augmented view)"
    if view == config.KD_PAIRED_VIEW:
        return "precomputed on the image and its mirror (the view drawn)"
    return f"precomputed ({view})" if view else "run once on the clean images"


def kd_teachers(pairs: pd.DataFrame) -> pd.DataFrame:
    """The same student distilled from different teachers: which teacher to distil from.

    A comparison is every distilled pair of one student (arch, width, seed) on one schedule and budget,
    by one method at one (T, alpha), from two or more teachers (a run or an ensemble of runs in the
    loop, or a committed teacher file: :func:`kd_teacher`); the same teacher in the loop and from its
    file counts twice, with its ``targets`` (``view``, as in the tag) said. Each row has the distilled
    run's accuracies and its gains in points against the one plain twin they share; the teacher with
    the highest validation gain is ``chosen`` (test splits never pick). Comparisons are numbered in
    ``comparison``, rows in each by ``val_acc``, best first.
    """
    keys = ["student", "schedule", "epochs", "method", "temperature", "alpha"]
    rows = [{**r, "teacher": r["teacher_name"], "targets": kd_targets(r["view"])} for r in _kd_points(pairs)]
    df = pd.DataFrame(rows, columns=KD_TEACHERS_COLUMNS[1:-1])
    if df.empty:
        return pd.DataFrame(columns=KD_TEACHERS_COLUMNS)
    df = _validation_picks(df.assign(_who=df["teacher"] + "|" + df["targets"]), keys, "_who", keys + ["val_acc"],
                           [True] * len(keys) + [False])
    return df.assign(comparison=df.groupby(keys, sort=False).ngroup() + 1)[KD_TEACHERS_COLUMNS]


def teacher_name(run) -> str:
    """A teacher run's name (in teacher files' and distilled runs' tags): arch and width (``cnn1``) for
    a plain seed-0 run, the one ``ARCH:WIDTH`` names (:func:`find_run`); any other run (another seed,
    a distilled run, a variant) adds its seed, epochs and its tag's method (:func:`runs.tag_method`):
    ``irnet1.2s1e200kdh``, ``cnn1s0e75lr0.001`` for a peak-LR variant (so a peak-LR run that stands for
    ``cnn:1`` is named exactly) and ``cnn1s0e200lr0.001augflip`` for one on the mirror alone."""
    name = f"{run['arch']}{float(run['width']):g}"
    tag = recipe_tag_of(run.get("recipe", ""))
    seed = run.get("seed", 0)
    seed = 0 if seed is None or seed == "" or pd.isna(seed) else int(seed)
    if not tag and not seed:
        return name
    return f"{name}s{seed}e{int(run['epochs'])}{tag_method(tag)}"


#: how teacher names join in an ensemble's name (a distilled run's tag, a teacher file's default name)
ENSEMBLE_JOIN = "+"


def teachers_name(runs) -> str:
    """The name of one teacher run or of an ensemble of them (their names joined by ``+``)."""
    return ENSEMBLE_JOIN.join(teacher_name(r) for r in runs)


def teacher_run(name: str) -> tuple[str, float] | None:
    """(arch, width) of a teacher named after its plain seed-0 run (:func:`teacher_name`: ``cnn1`` ->
    ("cnn", 1.0)); None for a file's name, an ensemble or a run named with its seed (:func:`teacher_parts`)."""
    found = TEACHER_NAME.fullmatch(name)
    return ((found["arch"], float(found["width"])) if found and found["arch"] in ARCH_NAMES and found["seed"] is None
            else None)


def teacher_parts(name: str) -> list[dict] | None:
    """The teacher runs an online teacher's name stands for (``+``-joined for an ensemble), each as
    ``arch``, ``width``, ``seed``, ``epochs`` (None: the profile's latest plain run) and ``method`` (the
    tag's method, "" for a plain run); None where any part is not a run's name (a teacher file's)."""
    out = []
    for part in name.split(ENSEMBLE_JOIN):
        found = TEACHER_NAME.fullmatch(part)
        if not found or found["arch"] not in ARCH_NAMES:
            return None
        out.append({"arch": found["arch"], "width": float(found["width"]),
                    "seed": int(found["seed"]) if found["seed"] else 0,
                    "epochs": int(found["epochs"]) if found["epochs"] else None, "method": found["method"] or ""})
    return out


def teacher_label(name: str, epochs: list | None = None, tags: list | None = None) -> str:
    """A teacher's display name from its name in a tag: ``HW3 CNN`` for ``cnn1``; ``IRNet (ours) w1.2 + KD
    (seed 1, 200 epochs)`` for ``irnet1.2s1e200kdh``; an ensemble's members joined by `` + ``… in words;
    the name itself for anything else (a teacher file's). ``epochs``: each member's, where the runs
    that taught are known (:func:`student_teachers`): a member named without them (``irnet1.2``) says
    its own (``IRNet (ours) w1.2 (120 epochs)``). ``tags``: each member's own recipe tag, where known:
    a member distilled from a teacher other than the study's then says which (:func:`model_label`), so
    two members of one name (seed 0, 200 epochs, one from the HW3 CNN, one from an ensemble) differ. A
    peak-LR variant is its plain model at that peak: ``HW3 CNN (seed 1, 75 epochs, peak LR 0.001)`` for
    ``cnn1s1e75lr0.001``."""
    parts = teacher_parts(name)
    if parts is None:
        return name
    known = epochs if epochs is not None and len(epochs) == len(parts) else [None] * len(parts)
    own = ([split_variant(t) for t in tags] if tags is not None and len(tags) == len(parts)
           else [method_tag(p["method"]) for p in parts])  # each (tag without its variant parts, those parts)
    labels = []
    for p, e, (base, variant) in zip(parts, known, own):
        words = variant_words(variant)  # a peak-LR or augmentation variant: its model, at its settings
        label = model_label(p["arch"], p["width"], base if words else "-".join(filter(None, (base, variant))))
        said = ([f"seed {p['seed']}", f"{p['epochs']} epochs"] if p["epochs"] is not None
                else [f"{int(e)} epochs"] if e is not None else [])
        said += words
        labels.append(label + (f" ({', '.join(said)})" if said else ""))
    return labels[0] if len(labels) == 1 else "an ensemble of " + ", ".join(labels[:-1]) + " and " + labels[-1]


def epochs_and_tags(rows: list | None) -> tuple[list | None, list | None]:
    """The teacher runs' registry rows as :func:`teacher_label` takes them: each run's epochs and
    recipe tag; (None, None) where the runs are not known."""
    if not rows:
        return None, None
    return [int(r["epochs"]) for r in rows], [recipe_tag_of(r["recipe"]) for r in rows]


def started_at(row) -> pd.Timestamp:
    """When a registry row's training started, at the latest: its finishing time less its training time
    (pauses between sessions make the true start earlier, never later)."""
    return pd.Timestamp(row["timestamp"]) - pd.Timedelta(seconds=float(row["wall_s"]))


def _teacher_part_run(part: dict, rows: pd.DataFrame, profile: str) -> pd.Series | None:
    """The registry row one :func:`teacher_parts` part names among ``rows``: a plain seed-0 run named by
    arch and width alone is the model's longest finished training (:func:`latest_runs`, as
    :func:`find_run` picks it); a run named with its seed and epochs is the newest of them with the
    named method; None where ``rows`` hold none."""
    rows = rows[(rows["arch"] == part["arch"]) & (rows["width"].astype(float) == part["width"])
                & (rows["seed"].astype(int) == part["seed"])]
    tags = rows["recipe"].map(recipe_tag_of)
    if part["epochs"] is None:
        found = latest_runs(rows, profile)
        return None if found.empty else found.iloc[0]
    rows = rows[(rows["epochs"].astype(int) == part["epochs"]) & (tags.map(tag_method) == part["method"])]
    return None if rows.empty else rows.sort_values("timestamp").iloc[-1]


def teachers_by_name(row, name: str, runs: pd.DataFrame, finished: pd.Series | None = None) -> list:
    """The run ids a teacher name (:func:`teacher_parts`) stood for when the run ``row`` started: each
    part resolved among the rows of its profile and data that finished before it
    (:func:`_teacher_part_run`, the rule the command line applies); [] where any part does not resolve.
    ``finished``: ``runs``' parsed timestamps, where the caller has them."""
    finished = pd.to_datetime(runs["timestamp"]) if finished is None else finished
    before = runs[(runs["profile"] == row["profile"]) & (runs["data_fingerprint"] == row["data_fingerprint"])
                  & (finished < started_at(row))]
    found = [_teacher_part_run(p, before, row["profile"]) for p in (teacher_parts(name) or [])]
    return [] if not found or any(f is None for f in found) else [f["run_id"] for f in found]


def student_teachers(runs: pd.DataFrame, file_members: dict | None = None) -> pd.DataFrame:
    """Which runs taught each distilled run (recipe tag starting ``kd``): ``teachers`` (their run ids,
    ``;``-joined) and ``how`` the project knows it: ``recorded`` (the row's ``teachers`` column, written
    by the run since the column exists), ``teacher file`` (the members of the committed file its tag
    names: ``file_members``, :func:`fer_utils.teachers.members`) or ``by name`` (an older row: its tag's
    teacher name resolved among the rows of its profile and data that finished before it started, by
    the rule the command line applied then: :func:`_teacher_part_run`); ``teachers`` is blank where
    none resolves. ``view`` is the tag's (:func:`kd_teacher`)."""
    columns = ["run_id", "teachers", "how", "view"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    file_members = file_members or {}
    tags = runs["recipe"].map(recipe_tag_of)
    finished = pd.to_datetime(runs["timestamp"])  # parsed once, not once per student
    out = []
    for _, row in runs[tags.str.startswith("kd")].iterrows():
        name, view = kd_teacher(recipe_tag_of(row["recipe"]))
        recorded = row.get("teachers", "")
        if isinstance(recorded, str) and recorded.strip():
            ids, how = recorded.split(";"), "recorded"
        elif view in config.KD_TARGET_VIEWS:
            ids, how = list(file_members.get(name, [])), "teacher file"
        else:
            ids, how = teachers_by_name(row, name, runs, finished), "by name"
        out.append({"run_id": row["run_id"], "teachers": ";".join(ids), "how": how, "view": view})
    return pd.DataFrame(out, columns=columns)


def kd_views(pairs: pd.DataFrame, file_members: dict) -> pd.DataFrame:
    """A teacher in the loop (``online``: on every augmented batch) against its soft targets
    precomputed once: a committed teacher file of that one teacher (on the clean image and its mirror),
    or the same teacher runs' targets on each image and its mirror, following the student's mirror draw
    (``paired``).

    For each distilled run whose teacher ran in the loop, the distilled runs of the same student,
    schedule, method and (T, alpha) from a teacher file whose only member is a run of the same arch and
    width (``file_members``: file stem -> its teachers' run ids, :func:`fer_utils.teachers.members`),
    or ``paired`` from the same teacher(s), each with its gains (points against the same plain twin;
    ``val_gain`` on validation) and its CPU hours beside the twin's. Only students with both kinds of
    targets appear; each comparison (numbered in ``comparison``) lists the online row first.
    """
    rows = _kd_points(pairs)
    out, comparison = [], 0
    keys = ["student", "schedule", "epochs", "temperature", "alpha", "method"]

    def from_file(o, prefix) -> bool:
        found = file_members.get(o["teacher_name"], [])
        return (prefix is not None and o["view"] in config.KD_TARGET_VIEWS and len(found) == 1
                and found[0].startswith(prefix))

    for r in rows:
        if r["view"] != config.KD_ONLINE_VIEW:
            continue
        run = teacher_run(r["teacher_name"])
        prefix = run_prefix(*run) if run is not None else None
        same = [o for o in rows if all(o[k] == r[k] for k in keys)
                and (from_file(o, prefix) or (o["view"] == config.KD_PAIRED_VIEW
                                              and o["teacher_name"] == r["teacher_name"]))]
        if not same:
            continue
        comparison += 1
        for o in [r, *same]:
            weights = o["view"] in (config.KD_ONLINE_VIEW, config.KD_PAIRED_VIEW)
            out.append({**{k: o[k] for k in KD_VIEWS_COLUMNS if k in o}, "comparison": comparison,
                        "targets": kd_targets(o["view"]),
                        "teacher": (f"{o['teacher_name']} (weights)" if weights
                                    else f"{o['teacher_name']}.npz ({file_members[o['teacher_name']][0]})"),
                        "teacher_file": "" if weights else f"{o['teacher_name']}.npz"})
    return pd.DataFrame(out, columns=KD_VIEWS_COLUMNS)


def family_gap(runs: pd.DataFrame, family: str, other: str) -> pd.DataFrame:
    """``family``'s mean accuracy (of PublicTest and PrivateTest) against ``other``'s at the same size.

    For each ``family`` row whose parameter count lies inside ``other``'s measured range, the
    ``other`` curve is interpolated linearly in log10(parameters) between its two nearest widths;
    ``gap_points`` > 0 means ``family`` is ahead there. Rows outside the range are left out (no
    extrapolation), so the table only speaks where both families were measured.
    """
    import numpy as np

    mean = (runs["public_acc"] + runs["private_acc"]) / 2
    a = runs.assign(mean=mean)[runs["arch"] == family].sort_values("params")
    b = runs.assign(mean=mean)[runs["arch"] == other].sort_values("params")
    columns = ["model", "params", "mean", "other_mean", "gap_points"]
    if len(b) < 2 or a.empty:
        return pd.DataFrame(columns=columns)
    inside = a[(a["params"] >= b["params"].min()) & (a["params"] <= b["params"].max())]
    other_mean = np.interp(np.log10(inside["params"].astype(float)), np.log10(b["params"].astype(float)), b["mean"])
    return pd.DataFrame({"model": inside["model"].to_numpy(), "params": inside["params"].to_numpy(),
                         "mean": inside["mean"].round(4).to_numpy(), "other_mean": np.round(other_mean, 4),
                         "gap_points": np.round(100 * (inside["mean"].to_numpy() - other_mean), 2)}, columns=columns)


def sweep_status(runs: pd.DataFrame, arch: str, widths) -> dict:
    """How far one family's sweep has got: which widths share one recipe and how wide they span.

    The family's recipe is the recorded schedule (``schedule``) that most of its widths used (ties:
    the one of the newest row); rows of any other schedule, older rows without one included, are
    ``off``, and widths with no row at all are ``missing``. ``decades`` is log10 of the largest over
    the smallest parameter count among the rows on the family's recipe.
    """
    import numpy as np

    fam = runs[runs["arch"] == arch]
    sched = fam["recipe"].map(schedule)
    recorded = fam[sched != UNRECORDED].assign(_s=sched[sched != UNRECORDED])
    main = None
    if not recorded.empty:
        votes = recorded.groupby("_s").agg(n=("width", "nunique"), newest=("timestamp", "max"))
        main = votes.sort_values(["n", "newest"], ascending=False).index[0]
    on = fam[sched == main] if main is not None else fam.iloc[0:0]
    decades = float(np.log10(on["params"].max() / on["params"].min())) if len(on) > 1 else 0.0
    return {"arch": arch, "recipe": main, "widths": sorted(float(w) for w in widths),
            "on": sorted(float(w) for w in on["width"]),
            "off": sorted(float(w) for w in fam.loc[sched != main, "width"]),
            "missing": sorted(float(w) for w in set(widths) - set(fam["width"])),
            "params": (int(on["params"].min()), int(on["params"].max())) if len(on) else None,
            "decades": round(decades, 2)}


def crossing(gap: pd.DataFrame) -> dict | None:
    """Where ``family_gap``'s sign first changes, by increasing parameters: the rows on either side
    (``before``, ``after``); None when the gap keeps one sign or the table is empty."""
    g = gap.sort_values("params").reset_index(drop=True)
    for i in range(1, len(g)):
        if g.gap_points[i - 1] > 0 >= g.gap_points[i] or g.gap_points[i - 1] <= 0 < g.gap_points[i]:
            return {"before": g.loc[i - 1].to_dict(), "after": g.loc[i].to_dict()}
    return None


def budget_study(runs: pd.DataFrame, arch: str, width: float, seed: int = 0, profile: str = "full") -> pd.DataFrame:
    """The training-budget study of one model: its newest plain row per schedule and budget, and its
    newest row per budget on each other augmentation of :data:`config.AUGMENTS` (the ``aug<name>``
    variants alone: ``fer_utils.train --augment``), so the study shows what each strength costs.

    One row per budgeted run (``wsd``/``cosine``, any budget) and the newest first-recipe row, the
    standard augmentation first, then by increasing epochs: ``augment``, ``schedule``, ``budget``
    (None for the first recipe), ``epochs`` run, ``cpu_hours`` (training wall time on this project's
    2-core CPU, the shared stable phase of a branched decay included; NaN for a run trained on a GPU),
    ``device`` (``CPU`` / ``GPU``), the accuracies, and mirror TTA's where measured.
    """
    columns = ["model", "augment", "schedule", "budget", "epochs", "cpu_hours", "device", "best_val_acc",
               "public_acc", "private_acc", "public_tta_acc", "private_tta_acc", "run_id"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    tags = runs["recipe"].map(recipe_tag_of)
    augments = {"": "standard", **AUGMENT_TAGS}
    df = runs[(runs["arch"] == arch) & (runs["width"] == float(width)) & (runs["seed"] == seed)
              & (runs["profile"] == profile) & tags.isin(list(augments))]
    df = df.assign(augment=tags[df.index].map(augments), schedule=df["recipe"].map(schedule),
                   budget=df["recipe"].map(budget_of), cpu_hours=(cpu_seconds(df) / 3600).round(2),
                   device=np.where(on_gpu(df), "GPU", "CPU"),
                   model=[model_label(a, w) for a, w in zip(df["arch"], df["width"])])
    df = df.sort_values("timestamp")
    budgeted = df[df["budget"].notna()].groupby(["augment", "schedule"], as_index=False).tail(1)
    first = df[df["budget"].isna() & (df["augment"] == "standard")].tail(1)  # the first recipe: its newest row
    df = pd.concat([budgeted, first])
    for col in ("public_tta_acc", "private_tta_acc"):
        if col not in df:
            df[col] = float("nan")
    order = {a: i for i, a in enumerate(config.AUGMENTS)}
    df = df.assign(_order=df["augment"].map(order)).sort_values(["_order", "epochs", "timestamp"], kind="stable")
    return df[columns].reset_index(drop=True)


def study_augment(study: pd.DataFrame) -> pd.Series:
    """Each row's augmentation in a :func:`budget_study` table; ``standard`` throughout for a table
    written before the study had an ``augment`` column."""
    return study["augment"] if "augment" in study else pd.Series("standard", index=study.index)


def batch_size_of(recipe: str) -> int | None:
    """The batch size of a budgeted run's ``recipe`` (its ``|bs<N>`` part); None where it has none."""
    found = re.search(r"(?:^|\|)bs(\d+)(?:\||$)", str(recipe))
    return int(found.group(1)) if found else None


def peak_lr_of(recipe: str) -> float | None:
    """The peak learning rate of a budgeted run's ``recipe`` (``…|wsd40/warm2/decay0.2/peak0.003|…`` ->
    0.003); None for the first recipe, which has no peak."""
    found = re.search(r"(?:^|\|)(?:wsd|cosine)\d+/[^|]*?peak([0-9.eE+-]+)(?:\||$)", str(recipe))
    return float(found.group(1)) if found else None


VARIANT_COLUMNS = ["seeds", "val_acc", "public_acc", "private_acc", "mean_acc", "mean_min", "mean_max", "cpu_h_per_run",
                   "images_per_s", "shared", "recipe"]


def _at_budget(runs: pd.DataFrame, budget: int, profile: str, variant: str) -> pd.DataFrame:
    """The plain rows and the ``variant``-tagged rows (a regular expression of the whole tag) of
    ``profile`` trained on ``budget`` epochs, with ``mean_acc`` and ``shared`` (NaN where unrecorded)."""
    tags = runs["recipe"].map(recipe_tag_of)
    df = runs[(runs["profile"] == profile) & (runs["recipe"].map(budget_of) == budget)
              & (tags.eq("") | tags.str.fullmatch(variant))]
    return _scored(df)


def _scored(df: pd.DataFrame) -> pd.DataFrame:
    """Registry rows with ``mean_acc`` (the mean of PublicTest and PrivateTest) and ``shared`` (NaN where
    unrecorded), as :func:`_variant_rows` reads them."""
    return df.assign(mean_acc=(df["public_acc"] + df["private_acc"]) / 2,
                     shared=pd.to_numeric(df.get("shared", pd.Series(index=df.index, dtype=float)), errors="coerce"))


def _variant_rows(df: pd.DataFrame, key: str) -> list[dict]:
    """One row per value of ``key`` (a column of ``df``): its seeds' summary (each seed's latest row), and
    ``run_ids``, those rows' run ids (``;``-joined, where ``df`` has them)."""
    df = df[df[key].notna()].sort_values("timestamp").groupby([key, "seed"]).tail(1)
    return [{**seed_summary(g), key: value, "val_acc": round(g["best_val_acc"].astype(float).mean(), 4),
             "images_per_s": round(g["train_images_per_s"].astype(float).mean(), 1),
             "shared": round(g["shared"].mean(), 2), "recipe": g["recipe"].iloc[-1],
             **({"run_ids": ";".join(g["run_id"])} if "run_id" in g else {})}
            for value, g in df.groupby(key)]


def batch_size_check(runs: pd.DataFrame, arch: str, width: float, budget: int, profile: str = "full") -> pd.DataFrame:
    """Accuracy against the batch size at one epoch budget: the plain runs of ``arch``/``width`` on
    that budget and their ``bs<N>`` variants (``fer_utils.train --batch-size``), one row per batch
    size, by increasing batch size. The accuracies are means over seeds; ``mean_min`` / ``mean_max``
    the seeds' extremes of the mean of PublicTest and PrivateTest; ``images_per_s`` the registry's
    training speed (mean over seeds) and ``shared`` the mean fraction of training time spent beside
    another run (speeds measured in a pair are slower)."""
    columns = ["model", "batch_size"] + VARIANT_COLUMNS
    if runs.empty:
        return pd.DataFrame(columns=columns)
    df = _at_budget(runs, budget, profile, r"bs\d+")
    df = df[(df["arch"] == arch) & (df["width"] == float(width))]
    rows = _variant_rows(df.assign(batch_size=df["recipe"].map(batch_size_of)), "batch_size")
    out = pd.DataFrame([{**r, "model": model_label(arch, width), "batch_size": int(r["batch_size"])} for r in rows],
                       columns=columns)
    return out.sort_values("batch_size").reset_index(drop=True)


def _variant_check(runs: pd.DataFrame, budget: int | None, profile: str, variant: str, key: str,
                   key_of) -> pd.DataFrame:
    """Accuracy against one recipe setting ``key`` (read from a row's recipe by ``key_of``) at a fixed
    epoch budget: every model with a ``variant``-tagged run (a regular expression of the whole tag) on
    a budget beside its plain runs on that budget, one row per model, budget (``epochs``) and value of
    ``key`` (by model, budget, then ``key``): :func:`_variant_rows`' summary, whose ``val_acc`` is the
    only accuracy a setting may be chosen by. ``budget``: that budget alone; None: every budget a
    variant trained on (a setting that wins a short budget need not win a long one)."""
    columns = ["model", "arch", "width", "epochs", key] + VARIANT_COLUMNS
    if runs.empty:
        return pd.DataFrame(columns=columns)
    tags = runs["recipe"].map(recipe_tag_of)
    varied = runs[(runs["profile"] == profile) & tags.str.fullmatch(variant)]
    budgets = [budget] if budget is not None else sorted({int(b) for b in varied["recipe"].map(budget_of).dropna()})
    out = []
    for epochs in budgets:
        df = _at_budget(runs, epochs, profile, variant)
        df = df.assign(**{key: df["recipe"].map(key_of)})
        probed = df[df["recipe"].map(recipe_tag_of) != ""][["arch", "width"]].drop_duplicates()
        for arch, width in probed.itertuples(index=False):
            rows = _variant_rows(df[(df["arch"] == arch) & (df["width"] == width)], key)
            out += [{**r, "model": model_label(arch, width), "arch": arch, "width": float(width), "epochs": epochs}
                    for r in rows]
    out = pd.DataFrame(out, columns=columns)
    return out.sort_values(["model", "epochs", key]).reset_index(drop=True)


def peak_lr_check(runs: pd.DataFrame, budget: int | None = None, profile: str = "full") -> pd.DataFrame:
    """Accuracy against the peak learning rate at a fixed epoch budget (:func:`_variant_check`): every
    model with an ``lr<peak>`` variant (``fer_utils.train --peak-lr``) beside its plain runs, a row per
    model, budget and ``peak_lr``, by increasing peak. A long budget's stable phase lasts longer at the
    peak, so it can prefer another peak than a short one."""
    return _variant_check(runs, budget, profile, PEAK_VARIANT, "peak_lr", peak_lr_of)


def schedule_of(recipe: str) -> str | None:
    """The schedule shape of a budgeted run's ``recipe`` (``wsd`` or ``cosine``); None for the first recipe."""
    found = re.search(r"(?:^|\|)(wsd|cosine)\d+/", str(recipe))
    return found.group(1) if found else None


def schedule_check(runs: pd.DataFrame, budget: int | None = None, profile: str = "full") -> pd.DataFrame:
    """Accuracy against the schedule's shape at a fixed epoch budget (:func:`_variant_check`): every model
    with a ``cos`` variant (``fer_utils.train --schedule cosine``: the same budget, warm-up and peak, then
    half a cosine to ~0 instead of warm-up / stable / decay) beside its plain runs, a row per model,
    budget and ``schedule``."""
    return _variant_check(runs, budget, profile, SHAPE_TAGS["cosine"], "schedule", schedule_of)


#: ``augment.csv``'s columns (:func:`augment_check`): a variant summary per augmentation, with the run ids
#: it summarises (``;``-joined) and ``train_acc``, their mean clean accuracy on their own training images
#: (``measure.train_fit``; blank until measured)
AUGMENT_COLUMNS = (["model", "arch", "width", "epochs", "precision", "peak_lr", "augment"] + VARIANT_COLUMNS
                   + ["train_acc", "run_ids"])


def augment_check(runs: pd.DataFrame, profile: str = "full") -> pd.DataFrame:
    """Accuracy against the augmentation's strength: every model, budget, precision and other variant
    setting (peak, batch size, protocol, shape) with a run on another augmentation than the standard
    one (``fer_utils.train --augment light``, a tagged ``aug<name>`` variant) beside the runs that differ
    from it in the augmentation alone, one row per augmentation (standard first): :func:`_variant_rows`'
    summary of each seed's newest row, whose ``val_acc`` is the only accuracy an augmentation may be
    chosen by. Distilled and fine-tuned runs (tags that are more than variant settings) are left out."""
    if runs.empty:
        return pd.DataFrame(columns=AUGMENT_COLUMNS)
    parts = runs["recipe"].map(recipe_tag_of).map(split_variant)
    df = runs[(runs["profile"] == profile) & (parts.str[0] == "")]
    others = parts[df.index].str[1].map(lambda v: "-".join(p for p in v.split("-") if p and not p.startswith("aug")))
    df = _scored(df).assign(augment=df["recipe"].map(config.augment_of), budget=df["recipe"].map(budget_of),
                            precision=df["recipe"].map(precision_of), peak_lr=df["recipe"].map(peak_lr_of), others=others)
    df = df[df["budget"].notna() & df["augment"].notna()]
    order = {a: i for i, a in enumerate(config.AUGMENTS)}
    out = []
    for (arch, width, budget, precision, _), g in df.groupby(["arch", "width", "budget", "precision", "others"], sort=False):
        if not (g["augment"] != "standard").any():
            continue
        for r in _variant_rows(g, "augment"):
            out.append({**r, "model": model_label(arch, width), "arch": arch, "width": float(width), "epochs": int(budget),
                        "precision": precision, "peak_lr": float(g["peak_lr"].iloc[0]), "train_acc": float("nan"),
                        "_order": order[r["augment"]]})
    out = pd.DataFrame(out, columns=AUGMENT_COLUMNS + ["_order"])
    return out.sort_values(["model", "epochs", "peak_lr", "_order"], kind="stable").drop(columns="_order").reset_index(drop=True)


#: ``protocol.csv``'s columns (:func:`protocol_check`)
PROTOCOL_COLUMNS = ["model", "arch", "width", "epochs", "precision", "protocol", "seeds", "val_acc",
                    "public_acc", "private_acc", "private_tta_acc", "cpu_h_per_run", "recipe"]

#: each validation protocol in words: what trains, what picks the best epoch
PROTOCOL_WORDS = {"holdout": "90 % of Training trains, a 10 % holdout picks the epoch",
                  "public": "all of Training trains, PublicTest picks the epoch"}


def protocol_check(runs: pd.DataFrame, profile: str = "full") -> pd.DataFrame:
    """The original study's validation protocol against ours: every model, budget and precision with a
    ``vpub`` run (``fer_utils.train --validation public``: all of Training trains, PublicTest picks the
    best epoch) beside its plain runs on the same budget and precision (90 % trains, a 10 % holdout picks
    the epoch), one row per protocol (holdout first): each seed's newest row, summarised as
    :func:`seed_summary` does, with the mean ``private_tta_acc``. ``val_acc`` is the accuracy that picked
    the epoch (PublicTest itself under ``public``, which then is no unseen test: PrivateTest is the
    comparison)."""
    if runs.empty:
        return pd.DataFrame(columns=PROTOCOL_COLUMNS)
    tags = runs["recipe"].map(recipe_tag_of)
    df = runs[(runs["profile"] == profile) & tags.isin(["", config.VALIDATIONS["public"]])]
    df = df.assign(protocol=df["recipe"].map(config.validation_of), budget=df["recipe"].map(budget_of),
                   precision=df["recipe"].map(precision_of), mean_acc=(df["public_acc"] + df["private_acc"]) / 2)
    df = df[df["budget"].notna()].sort_values("timestamp", kind="stable")
    out = []
    keys = ["arch", "width", "budget", "precision"]
    for (arch, width, budget, precision), g in df.groupby(keys, sort=False):
        if not (g["protocol"] == "public").any():
            continue
        for protocol in ("holdout", "public"):
            rows = g[g["protocol"] == protocol].groupby("seed").tail(1)
            if rows.empty:
                continue
            tta = pd.to_numeric(rows.get("private_tta_acc", pd.Series(index=rows.index, dtype=float)), errors="coerce")
            out.append({**seed_summary(rows), "model": model_label(arch, width), "arch": arch, "width": float(width),
                        "epochs": int(budget), "precision": precision, "protocol": protocol,
                        "val_acc": round(rows["best_val_acc"].astype(float).mean(), 4),
                        "private_tta_acc": round(tta.mean(), 4), "recipe": rows["recipe"].iloc[-1]})
    return pd.DataFrame(out, columns=PROTOCOL_COLUMNS)


def parameter_budgets(codecs: pd.DataFrame, limits: dict, max_drop_points: float = 0.3) -> dict:
    """Byte limits turned into parameter counts, ``{"<limit> kB @ <codec>": parameters}``: at the
    seed MobileNet's bytes per parameter with the original ``seed`` codec, and with the smallest
    codec that loses at most ``max_drop_points`` of its PublicTest accuracy (``codecs.csv`` rows)."""
    seed_rows = codecs[(codecs.arch == "mobilenet") & (codecs.width == 1.0)]
    bpp = {}
    if not seed_rows.empty and (seed_rows.codec == "seed").any():
        bpp["seed codec"] = float(seed_rows.loc[seed_rows.codec == "seed", "bytes_per_param"].iloc[0])
        ok = seed_rows[seed_rows.public_drop <= max_drop_points].sort_values("bytes_per_param")
        if not ok.empty:
            bpp[f"best codec ({ok.iloc[0].codec})"] = float(ok.iloc[0].bytes_per_param)
    return {f"{limit / 1000:g} kB @ {name}": limit / rate for name, rate in bpp.items() for limit in limits}


def confusion_models(runs: pd.DataFrame, compact_below: int = 100_000) -> pd.DataFrame:
    """The rows whose errors the report shows: the best compact model (by PublicTest, under
    ``compact_below`` parameters) and the largest CNN, each model's row as ``one_row_per_model``
    picks it (a noise seed never stands for the model under its name)."""
    runs = one_row_per_model(runs)
    compact = runs[runs.params < compact_below].sort_values("public_acc", ascending=False).head(1)
    largest_cnn = runs[runs.arch == "cnn"].sort_values("params", ascending=False).head(1)
    return pd.concat([compact, largest_cnn])


#: the columns of :func:`teacher_names`
TEACHER_NAMES_COLUMNS = ["name", "teacher", "students", "members"]


def newest_by_id(runs: pd.DataFrame) -> pd.DataFrame:
    """Each run's newest registry row, indexed by run id: build it once where :func:`rows_of` is called in a
    loop."""
    return runs.drop_duplicates("run_id", keep="last").set_index("run_id")


def rows_of(ids, runs: pd.DataFrame | None) -> list | None:
    """The registry rows (each run's newest) of the run ids ``ids`` (a list, or ``;``-joined), in their
    order; None where ``ids`` is empty or ``runs`` does not hold them all. ``runs``: the registry, or
    :func:`newest_by_id` of it (indexed by run id), so that a caller in a loop indexes it once."""
    if isinstance(ids, str):
        ids = ids.split(";")
    ids = [i for i in (ids or []) if i]
    if not ids or runs is None or runs.empty:
        return None
    rows = runs if runs.index.name == "run_id" else newest_by_id(runs)
    return [rows.loc[i] for i in ids] if all(i in rows.index for i in ids) else None


def teacher_names(runs: pd.DataFrame, file_members: dict | None = None) -> pd.DataFrame:
    """What each teacher name in the model labels stands for: one row per (name, teacher runs), the name
    as a distilled run's tag or a fine-tune's ``-teacher-`` part gives it, the runs it resolved to
    (:func:`student_teachers` for a distilled run, :func:`qat_teacher_rows` for a fine-tune: one name
    may stand for different runs over time, ``cnn1`` for the HW3 CNN's longest finished run when the
    student started), the teacher in words (:func:`teacher_label` with those runs' epochs and tags),
    and how many ``students`` (distilled runs and fine-tunes) learnt from it. Sorted by name, then
    students, most first. ``members``: the run ids, ``;``-joined (blank where they do not resolve)."""
    if runs.empty:
        return pd.DataFrame(columns=TEACHER_NAMES_COLUMNS)
    by_id = newest_by_id(runs)
    newest = by_id.reset_index()
    found = []  # (name, ids)
    for _, r in student_teachers(newest, file_members).iterrows():
        tag = recipe_tag_of(by_id.loc[r["run_id"], "recipe"])
        found.append((kd_teacher(tag)[0], str(r["teachers"])))
    for _, run in newest[newest["recipe"].map(is_qat)].iterrows():
        name = qat_spec(recipe_tag_of(run["recipe"]))["teacher"]
        if name:
            rows = qat_teacher_rows(run, newest)
            found.append((name, ";".join(r.name for r in rows) if rows else ""))
    out = []
    for (name, ids), group in pd.DataFrame(found, columns=["name", "ids"]).groupby(["name", "ids"], sort=False):
        members = rows_of(ids, by_id)
        words = teacher_label(name, *epochs_and_tags(members))
        if words == name and members:  # a teacher file's name: its members say what it is
            words = "the teacher file of " + ", ".join(f"{run_label(m)} ({int(m['epochs'])} epochs)" for m in members)
        out.append({"name": name, "teacher": words, "students": len(group), "members": ids})
    table = pd.DataFrame(out, columns=TEACHER_NAMES_COLUMNS)
    return table.sort_values(["name", "students"], ascending=[True, False], kind="stable").reset_index(drop=True)


QAT_COLUMNS = ("model", "source_epochs", "fine_tune", "augment", "source_augment", "targets", "codec", "params", "float32_public", "float32_private", "before_public", "before_private",
               "after_public", "after_private", "private_drop_before", "private_drop_after", "bytes_before",
               "bytes_after", "qat_epochs", "qat_cpu_h", "run_id", "source_run_id")


def _qat_how(run) -> str:
    """How a fine-tune was done, in words: its epochs, peak rate and BatchNorm (its augmentation is
    ``qat.csv``'s own column, :func:`augment_name`)."""
    spec = qat_spec(recipe_tag_of(run["recipe"]))
    peak = spec["peak_lr"] if spec["peak_lr"] is not None else config.QAT_UNTAGGED_LR
    n = int(run["epochs"])
    return f"{n} epoch{'s' if n != 1 else ''}, peak LR {peak:g}, BatchNorm {'frozen' if spec['freeze_bn'] else 'trained'}"


def augment_name(row) -> str:
    """The augmentation a registry row trained with (a key of ``config.AUGMENTS``): the one its recipe names,
    else ``standard``, the only one before the augmentation study (whose rows' recipes name none)."""
    return config.augment_of(row.get("recipe", "")) or config.Profile.augment


#: ``qat.csv``'s ``targets`` for a fine-tune on the labels alone
QAT_LABELS = "labels only"


def qat_teacher_rows(run, runs: pd.DataFrame | None) -> list | None:
    """The registry rows (each run's newest) of the teacher runs of a fine-tune with its teacher in the
    loop, in its tag's order: those its ``teachers`` column records, or, for an older row that records
    none, its tag's teacher name resolved as the command line did (:func:`teachers_by_name`); None where
    ``runs`` does not hold them all."""
    if runs is None or runs.empty:
        return None
    recorded = run.get("teachers", "")
    ids = [i for i in recorded.split(";") if i] if isinstance(recorded, str) else []
    if not ids and all(k in run for k in ("profile", "data_fingerprint", "timestamp", "wall_s")):
        ids = teachers_by_name(run, qat_spec(recipe_tag_of(run["recipe"]))["teacher"], runs)
    return rows_of(ids, runs)


def _qat_targets(run, runs: pd.DataFrame | None = None) -> str:
    """What a fine-tune fitted, in words: the labels alone (:data:`QAT_LABELS`) or its teacher run in the
    loop with Hinton's temperature and weight. ``runs``: the registry, to look up the teacher runs the row
    names (:func:`qat_teacher_rows`), so each member says its epochs and its own teacher
    (:func:`teacher_label`): two members of one name (seed 0, 200 epochs, one taught by the HW3 CNN, one by
    an ensemble) then read differently."""
    spec = qat_spec(recipe_tag_of(run["recipe"]))
    if not spec["teacher"]:
        return QAT_LABELS
    rows = qat_teacher_rows(run, runs)
    return (f"teacher {teacher_label(spec['teacher'], *epochs_and_tags(rows))} in the loop "
            f"(T {spec['temperature']:g}, alpha {spec['alpha']:g})")


def qat_source(run_id: str) -> str:
    """The run a quantisation-aware fine-tune started from (its run id without ``-cos<E>-qat-<codec>[-lr<peak>]``)."""
    return re.sub(r"-cos\d+-" + QAT_TAG.pattern, "", run_id)


def qat_pairs(runs: pd.DataFrame, codecs: pd.DataFrame) -> pd.DataFrame:
    """Each quantisation-aware fine-tune beside its source run written with the same codec.

    ``float32_*``: the source's own accuracy; ``before_*``: the source written with the codec;
    ``after_*``: the fine-tune written with it (its weights are on the grid, so this is also its own
    accuracy); drops in points against the source's float32. A fine-tune whose codec rows are not
    both in ``codecs`` is left out.
    """
    out = []
    tuned = runs[runs["recipe"].map(is_qat)] if not runs.empty else runs
    for _, run in tuned.sort_values("timestamp").drop_duplicates("run_id", keep="last").iterrows():
        codec = qat_parts(recipe_tag_of(run["recipe"]))[0]
        src_id = qat_source(run["run_id"])
        src = runs[runs["run_id"] == src_id]
        before = codecs[(codecs["run_id"] == src_id) & (codecs["codec"] == codec)]
        after = codecs[(codecs["run_id"] == run["run_id"]) & (codecs["codec"] == codec)]
        if src.empty or before.empty or after.empty:
            continue
        src, before, after = src.iloc[-1], before.iloc[-1], after.iloc[-1]
        out.append({
            "model": run_label(src), "source_epochs": int(src["epochs"]), "fine_tune": _qat_how(run),
            "augment": augment_name(run), "source_augment": augment_name(src), "targets": _qat_targets(run, runs), "codec": codec, "params": int(src["params"]),
            "float32_public": src["public_acc"], "float32_private": src["private_acc"],
            "before_public": before["public_acc"], "before_private": before["private_acc"],
            "after_public": after["public_acc"], "after_private": after["private_acc"],
            "private_drop_before": round(100 * (src["private_acc"] - before["private_acc"]), 2),
            "private_drop_after": round(100 * (src["private_acc"] - after["private_acc"]), 2),
            "bytes_before": int(before["bytes"]), "bytes_after": int(after["bytes"]),
            "qat_epochs": int(run["epochs"]), "qat_cpu_h": round(row_cpu_seconds(run) / 3600, 2),
            "run_id": run["run_id"], "source_run_id": src_id,
        })
    return pd.DataFrame(out, columns=list(QAT_COLUMNS))


def is_qat(recipe: str) -> bool:
    """Whether a registry row's recipe is a quantisation-aware fine-tune's."""
    return bool(qat_parts(recipe_tag_of(recipe))[0])


def sweep_seeds(runs: pd.DataFrame) -> pd.DataFrame:
    """The seed rows a size's point averages: those trained on the schedule of the size's newest
    row, so a point never mixes recipes (oldest first)."""
    if runs.empty:
        return runs
    df = runs.sort_values("timestamp")
    newest = df.groupby(["arch", "width"])["recipe"].transform("last").map(schedule)
    return df[df["recipe"].map(schedule) == newest]


def seed_summary(g: pd.DataFrame) -> dict:
    """The seeds of one point (registry rows with ``mean_acc``, the mean of PublicTest and PrivateTest):
    ``seeds``, mean ``public_acc`` / ``private_acc`` / ``mean_acc``, the extremes ``mean_min`` /
    ``mean_max``, ``spread_points`` and ``std_points`` (NaN for one seed), ``cpu_h_per_run`` and ``cpu_h``."""
    m = g["mean_acc"]
    wall = cpu_seconds(g)
    return {"seeds": len(g), "public_acc": round(g["public_acc"].mean(), 4),
            "private_acc": round(g["private_acc"].mean(), 4), "mean_acc": round(m.mean(), 4),
            "mean_min": round(m.min(), 4), "mean_max": round(m.max(), 4),
            "spread_points": round(100 * (m.max() - m.min()), 2),
            "std_points": round(100 * m.std(ddof=1), 2) if len(g) > 1 else float("nan"),
            "cpu_h_per_run": round(wall.mean() / 3600, 2), "cpu_h": round(wall.sum() / 3600, 2)}


def family_points(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (arch, width) of a sweep's rows (one per seed): the seeds' mean accuracies and
    their spread. Columns: ``model``, ``arch``, ``width``, ``params``, ``seeds``, ``epochs``,
    ``recipe`` (the newest row's), ``public_acc`` / ``private_acc`` / ``mean_acc`` (means over seeds),
    ``mean_min`` / ``mean_max`` (the seeds' extremes of the mean of PublicTest and PrivateTest),
    ``spread_points`` (max - min, in points; 0 for one seed), ``std_points`` (sample standard
    deviation over seeds; NaN for one seed), ``cpu_h_per_run`` and ``cpu_h`` (all seeds), ``timestamp``
    (the newest row's; ``sweep_status`` reads it). Only the
    seeds trained on the schedule of a size's newest row count (``sweep_seeds``)."""
    columns = ["model", "arch", "width", "params", "seeds", "epochs", "recipe", "public_acc", "private_acc",
               "mean_acc", "mean_min", "mean_max", "spread_points", "std_points", "cpu_h_per_run", "cpu_h", "timestamp"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    df = sweep_seeds(runs).assign(mean_acc=lambda d: (d["public_acc"] + d["private_acc"]) / 2)
    out = []
    for (arch, width), g in df.groupby(["arch", "width"], sort=False):
        out.append({"model": model_label(arch, width), "arch": arch, "width": float(width),
                    "params": int(g["params"].iloc[-1]), "epochs": int(g["epochs"].iloc[-1]),
                    "recipe": g["recipe"].iloc[-1], **seed_summary(g), "timestamp": g["timestamp"].iloc[-1]})
    return pd.DataFrame(out, columns=columns).sort_values(["arch", "params"]).reset_index(drop=True)


def seed_noise(points: pd.DataFrame) -> dict | None:
    """The seed-to-seed noise of a sweep from ``family_points``: over the sizes trained with two or
    more seeds, the pooled standard deviation of the mean accuracy (``std_points``, the root of the
    mean variance), the largest max - min (``range_points``) and how many sizes (``sizes``, per
    family in ``by_family``). None when no size has two seeds."""
    import numpy as np

    rep = points[points["seeds"] > 1]
    if rep.empty:
        return None
    return {"std_points": round(float(np.sqrt(np.mean(rep["std_points"] ** 2))), 2),
            "range_points": round(float(rep["spread_points"].max()), 2), "sizes": len(rep),
            "by_family": rep.groupby("arch").size().to_dict(), "max_seeds": int(rep["seeds"].max())}


def crossing_params(cross: dict) -> float:
    """Where the gap of a ``crossing`` reaches 0, interpolated linearly in log10(parameters)."""
    import numpy as np

    b, a = cross["before"], cross["after"]
    x0, x1 = np.log10(float(b["params"])), np.log10(float(a["params"]))
    g0, g1 = float(b["gap_points"]), float(a["gap_points"])
    return float(10 ** (x0 + (0.0 - g0) * (x1 - x0) / (g1 - g0))) if g1 != g0 else float(b["params"])


def mostly_shared(shared):
    """Whether a run (``shared``: a registry row's fraction, or a Series of them) trained mostly
    beside another training run on the same machine: more than half of its time; NaN (not
    recorded) is not."""
    return shared > 0.5


def sweep_cost(runs: pd.DataFrame, points, epochs: int, macs=None, concurrent: int = 1) -> pd.DataFrame:
    """What training ``points`` [(arch, width)] for ``epochs`` epochs costs, estimated from the wall
    time per epoch (training and validation: ``wall_s / epochs``) of each point's newest plain row
    in ``runs`` (pass one profile's rows; measured on this project's CPU): ``seconds`` and ``hours``
    (rounded) per point, and ``basis``, the model whose time it is.

    A point with no row yet is NaN, unless ``macs(arch, width)`` (multiply-adds per image,
    ``models.flops``) is given and its family has a measured width: then the time per epoch of the
    measured width nearest in multiply-adds, scaled up by the ratio where the point has more (never
    down: a small model's epoch is bound by overheads, not arithmetic).

    ``concurrent``: runs that will train at a time on the machine. Above 1, a time measured while
    the run had the machine to itself (its row's ``shared`` at most one half, or not recorded) is
    scaled by ``config.SHARED_SLOWDOWN``; a row that mostly trained beside another run already
    carries that slowdown. ``shared`` is the basis row's fraction."""
    from . import config

    plain = runs[(runs["recipe"].map(recipe_tag_of) == "") & ~on_gpu(runs)].sort_values("timestamp")  # CPU times
    key_cols = [plain["arch"], plain["width"].astype(float)]
    per_epoch = (plain["wall_s"] / plain["epochs"]).groupby(key_cols).last().dropna()
    shared_of = (plain["shared"] if "shared" in plain else pd.Series(float("nan"), index=plain.index))
    shared_of = pd.to_numeric(shared_of, errors="coerce").groupby(key_cols).last()
    rows = []
    for arch, width in points:
        key = (arch, float(width))
        s_per_epoch, basis, ref = float(per_epoch.get(key, float("nan"))), model_label(arch, width), key
        measured = [w for a, w in per_epoch.index if a == arch]
        if pd.isna(s_per_epoch) and macs is not None and measured:
            want = macs(arch, width)
            ref = (arch, min(measured, key=lambda w: abs(math.log(macs(arch, w) / want))))
            s_per_epoch = float(per_epoch[ref]) * max(1.0, want / macs(*ref))
            basis = f"{model_label(*ref)}, scaled by multiply-adds"
        elif pd.isna(s_per_epoch):
            basis = ""
        shared = float(shared_of.get(ref, float("nan")))
        if concurrent > 1 and basis and not mostly_shared(shared):
            s_per_epoch *= config.SHARED_SLOWDOWN
            basis += f", x{config.SHARED_SLOWDOWN:g} (measured alone)"
        seconds = s_per_epoch * epochs
        rows.append({"model": model_label(arch, width), "arch": arch, "width": float(width),
                     "seconds_per_epoch": s_per_epoch, "seconds": seconds, "hours": round(seconds / 3600, 2),
                     "basis": basis, "shared": shared})
    return pd.DataFrame(rows, columns=["model", "arch", "width", "seconds_per_epoch", "seconds", "hours", "basis",
                                       "shared"])


def sweep_todo(runs: pd.DataFrame, epochs: int, plan, macs=None) -> pd.DataFrame:
    """The sweep runs of ``plan`` [(arch, width, seed)] with no plain row on ``epochs`` budgeted
    epochs in ``runs`` (one profile's rows), each with its estimated cost (:func:`sweep_cost`,
    ``macs`` as there)."""
    plain = runs[runs["recipe"].map(recipe_tag_of) == ""]
    done = plain[plain["recipe"].map(budget_of) == epochs]
    have = set(zip(done["arch"], done["width"].astype(float), done["seed"].astype(int)))
    todo = [(a, float(w), int(s)) for a, w, s in plan if (a, float(w), int(s)) not in have]
    cost = sweep_cost(runs, [(a, w) for a, w, _ in todo], epochs, macs)
    return cost.assign(seed=[s for _, _, s in todo])[["model", "arch", "width", "seed", "seconds", "hours", "basis"]]


def find_run(spec: str, registry_path, profile: str, fingerprint: str) -> dict | None:
    """The newest finished plain run ``ARCH:WIDTH`` of ``profile`` (on its headline budget) on the
    data with ``fingerprint`` in the registry at ``registry_path``, or None (a teacher, say). A
    ``spec`` without a colon is a run id: that run's newest row of ``profile`` on that data (any
    recipe: a distilled run, another seed), or None."""
    from . import registry

    table = registry.read(registry_path)
    if ":" not in spec:
        if table.empty:
            return None
        rows = table[(table.run_id == spec) & (table.profile == profile) & (table.data_fingerprint == fingerprint)]
        return None if rows.empty else rows.sort_values("timestamp").iloc[-1].to_dict()
    arch, width = spec.split(":")
    rows = latest_runs(table, profile)
    rows = rows[(rows.arch == arch) & (rows.width == float(width)) & (rows.data_fingerprint == fingerprint)]
    return None if rows.empty else rows.iloc[0].to_dict()


def find_runs(specs, registry_path, profile: str, fingerprint: str) -> list[dict]:
    """:func:`find_run` of each of ``specs`` (teachers, say); a ``LookupError`` names the first not found."""
    found = []
    for spec in specs:
        run = find_run(spec, registry_path, profile, fingerprint)
        if run is None:
            raise LookupError(f"no finished {spec} run of profile {profile} on this data in {registry_path}")
        found.append(run)
    return found
