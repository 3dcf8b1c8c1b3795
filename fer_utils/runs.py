"""Run folders: a run's name, the data it sees, its files on disk, snapshots, evaluation.

A run folder (``runs/<run id>``) holds the last checkpoint (model + optimizer), the best
weights, a per-epoch log and ``state.json``; a WSD run also keeps checkpoints of its stable
phase under ``stable/e<epoch>/``, which other budgets branch from. This module sits below the
training engine: the engine, the budget study, distillation, compression and measurement all
read and write run folders through it, and it imports none of them.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import MISSING, asdict, fields, replace
from pathlib import Path

import numpy as np

from . import config, data, paths
from .schedule import KINDS as SCHEDULE_KINDS


PRECISIONS = config.PRECISIONS
#: the per-epoch log's columns (``log.csv``)
LOG_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")


# --------------------------------------------------------------------------- names
def run_prefix(arch: str, width: float) -> str:
    """The start of every run id of ``arch`` at ``width`` (``irnet-w1.2-``), whatever its profile, seed or recipe."""
    return f"{arch}-w{width:g}-"


def run_id(arch: str, width: float, profile: str, seed: int, fingerprint: str, tag: str = "",
           precision: str = "float32", schedule: str = "") -> str:
    """``<arch>-w<width>-<profile>-s<seed>-<data>[-<schedule tag>][-<tag>][-<precision>]``.

    ``schedule`` is the budgeted schedule's tag (``wsd200``); the first recipe's runs have none.
    """
    return (f"{run_prefix(arch, width)}{profile}-s{seed}-{fingerprint}" + (f"-{schedule}" if schedule else "")
            + (f"-{tag}" if tag else "") + (f"-{PRECISIONS[precision]}" if PRECISIONS[precision] else ""))


def profile_run_id(arch: str, width: float, prof: config.Profile, seed: int, fingerprint: str, tag: str = "",
                   precision: str = "float32") -> str:
    """The run id of ``arch``/``width`` trained on ``prof`` (its schedule's tag included)."""
    sched = prof.lr_schedule()
    return run_id(arch, width, prof.name, seed, fingerprint, tag, precision, sched.tag() if sched else "")


#: a file name's longest form on the common file systems (ext4, XFS, btrfs, APFS, NTFS), in bytes
NAME_MAX = 255
#: the suffix of a finished run's committed float16 copy (:func:`exported_path`), the longest a run id is given
EXPORTED_SUFFIX = ".fp16"
#: the longest run id: it names the run's folder, its float16 copy (``<run id>`` + :data:`EXPORTED_SUFFIX`)
#: and its log (``<run id>.csv``)
MAX_RUN_ID = NAME_MAX - len(EXPORTED_SUFFIX)


def check_run_id(rid: str) -> str:
    """``rid`` itself where it can name the run's files; else a clear error (the file system's own,
    ``File name too long``, names neither the cause nor a way out). A fine-tune's id holds its source
    run's, and a distilled run's its teachers' names, so a fine-tune of a fine-tune, or a long list of
    teachers, can outgrow a file name."""
    n = len(rid.encode("utf-8"))
    if n > MAX_RUN_ID:
        raise ValueError(f"run id {rid[:80]}... is {n} bytes long; its files are named after it "
                         f"('<run id>{EXPORTED_SUFFIX}' under results/weights/), which allows at most {MAX_RUN_ID} bytes. "
                         "A fine-tune's id repeats its source run's and a distilled run's names each teacher: "
                         "fine-tune the original run rather than a fine-tune of it, or use fewer teachers")
    return rid


def run_folder(arch: str, width: float, prof: config.Profile, seed: int, fingerprint: str, tag: str = "",
               precision: str = "float32", runs_root: Path | None = None) -> Path:
    """The folder of the run ``arch``/``width`` trained on ``prof`` (:func:`profile_run_id`) under
    ``runs_root`` (default ``runs/``): where the engine trains it and where a resume finds it. A run id
    too long to name its files is a clear error (:func:`check_run_id`) before anything is written."""
    rid = check_run_id(profile_run_id(arch, width, prof, seed, fingerprint, tag, precision))
    return Path(runs_root or paths.runs_dir()) / rid


def requested(prof: config.Profile, epochs: int | None = None, train_limit: int | None = None,
              batch_size: int | None = None, peak_lr: float | None = None,
              validation: str | None = None, schedule: str | None = None,
              augment: str | None = None) -> config.Profile:
    """The profile a run request trains on: ``prof`` with its epoch budget, training-set size, batch
    size, peak learning rate, validation protocol, schedule shape and augmentation overridden where given
    (the sweep's ``--epochs`` / ``--train-limit``, the checks' ``--batch-size`` / ``--peak-lr`` /
    ``--validation`` / ``--schedule`` / ``--augment``); its run id follows."""
    if epochs is not None:
        prof = replace(prof, epochs=epochs)
    if train_limit is not None:
        prof = replace(prof, train_limit=train_limit)
    if batch_size is not None:
        if batch_size < 1:
            raise ValueError(f"batch size must be a positive number of images, got {batch_size}")
        prof = replace(prof, batch_size=batch_size)
    if peak_lr is not None:
        if not 0 < peak_lr < 1:
            raise ValueError(f"the peak learning rate must lie between 0 and 1, got {peak_lr:g}")
        prof = replace(prof, learning_rate=float(peak_lr))
    if validation is not None:
        if validation not in config.VALIDATIONS:
            raise ValueError(f"unknown validation {validation!r}; expected one of {', '.join(config.VALIDATIONS)}")
        prof = replace(prof, validation=validation)
    if schedule is not None:
        if schedule not in SCHEDULE_KINDS or prof.schedule not in SCHEDULE_KINDS:
            raise ValueError(f"a schedule shape is one of {', '.join(SCHEDULE_KINDS)} and replaces a budgeted profile's; "
                             f"got {schedule!r} for the {prof.name!r} profile ({prof.schedule})")
        prof = replace(prof, schedule=schedule)
    if augment is not None:
        config.augment_text(augment)  # an unknown name is a clear error
        prof = replace(prof, augment=augment)
    return prof


def lr_tag(peak_lr: float) -> str:
    """A learning rate as a run tag names it: ``lr0.001``, ``lr0.00003`` (positional, no exponent)."""
    return f"lr{np.format_float_positional(float(peak_lr), trim='-')}"


def variant_tag(tag: str, base: config.Profile, prof: config.Profile) -> str:
    """``tag`` with ``lr<peak>`` added when ``prof`` (a request's profile, :func:`requested`) trains with
    another peak learning rate than ``base``, the profile it was requested from, ``bs<N>`` when
    with another batch size, ``vpub`` when another validation protocol picks its best epoch and
    ``cos`` (:data:`SHAPE_TAGS`) when another schedule shape, ``aug<name>`` when another augmentation: such a run is a variant of the plain one
    (its own folder, a tagged registry row that never stands in for the plain run of the same model and
    seed, except that a peak-LR or augmentation variant competes for the headline slot:
    ``results.latest_runs``)."""
    parts = [tag] if tag else []
    if prof.learning_rate != base.learning_rate:
        parts.append(lr_tag(prof.learning_rate))
    if prof.batch_size != base.batch_size:
        parts.append(f"bs{prof.batch_size}")
    if prof.validation != base.validation:
        parts.append(config.VALIDATIONS[prof.validation] or prof.validation)
    if prof.schedule != base.schedule:
        parts.append(SHAPE_TAGS[prof.schedule])
    if prof.augment != base.augment:
        parts.append(f"aug{prof.augment}")
    return "-".join(parts)


#: a schedule-shape variant's tag part (``fer_utils.train --schedule``), by shape
SHAPE_TAGS = {"cosine": "cos", "wsd": "wsd"}
_VARIANT_PART = re.compile(r"lr[\d.]+|bs\d+|vpub|aug[a-z]+|" + "|".join(SHAPE_TAGS.values()))


def split_variant(tag: str) -> tuple[str, str]:
    """A run tag cut into what :func:`variant_tag` was given and what it added: ``("kd-cnn1-T2-a0.5",
    "lr0.001")`` for ``kd-cnn1-T2-a0.5-lr0.001``, ``("", "bs128")`` for a plain run's variant, ``(tag, "")``
    for a tag with no variant part."""
    parts = tag.split("-") if tag else []
    cut = len(parts)
    while cut > 0 and _VARIANT_PART.fullmatch(parts[cut - 1]):
        cut -= 1
    return "-".join(parts[:cut]), "-".join(parts[cut:])


def tag_method(tag: str) -> str:
    """A run tag's method as a teacher's name carries it (``results.teacher_name``): the first part of what
    :func:`variant_tag` was given, then every variant part, with no separator (a name holds no ``-``):
    ``kdh`` for ``kdh-cnn1-online-T2-a0.5``, ``lr0.001auglight`` for ``lr0.001-auglight`` (so two variants
    that share their first part are named apart), ``kdhaugflip`` for a distilled run's flip variant."""
    base, variant = split_variant(tag)
    return base.split("-")[0] + variant.replace("-", "")


def method_tag(method: str) -> tuple[str, str]:
    """A teacher name's method cut back into (the first part of the run's own tag, its variant parts
    ``-``-joined as :func:`variant_tag` wrote them): ``("kdh", "augflip")`` for ``kdhaugflip``,
    ``("", "lr0.001-auglight")`` for ``lr0.001auglight``; the inverse of :func:`tag_method`."""
    found = re.fullmatch(rf"(?P<base>.*?)(?P<variant>(?:{_VARIANT_PART.pattern})*)", method or "")
    return found["base"], "-".join(m.group(0) for m in _VARIANT_PART.finditer(found["variant"]))


# --------------------------------------------------------------------------- runs training now
def active_dir() -> Path:
    """Where each training process on this machine leaves a marker while it trains (one file per
    process id): ``FER_ACTIVE_DIR``, default ``<tmp>/fer-utils-active``; machine-wide, because the
    CPU cores a run shares are the machine's, whatever run folder it writes to."""
    return Path(os.environ.get("FER_ACTIVE_DIR") or Path(tempfile.gettempdir()) / "fer-utils-active")


class Training:
    """``with Training(run_id):`` marks this process as training ``run_id`` (:func:`others_training`
    counts it from other processes) and removes the mark when the block ends."""

    def __init__(self, run_id: str, directory: Path | None = None):
        self.marker = Path(directory or active_dir()) / str(os.getpid())
        self.run_id = run_id

    def __enter__(self):
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.marker.write_text(self.run_id)
        return self

    def __exit__(self, *exc):
        self.marker.unlink(missing_ok=True)
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def others_training(directory: Path | None = None) -> int:
    """How many other processes on this machine are training now (their :class:`Training` marks);
    a mark whose process is gone (killed before it could remove it) is removed."""
    directory = Path(directory or active_dir())
    count = 0
    for mark in directory.glob("*") if directory.is_dir() else ():
        if not mark.name.isdigit() or int(mark.name) == os.getpid():
            continue
        if _alive(int(mark.name)):
            count += 1
        else:
            mark.unlink(missing_ok=True)
    return count


#: below this share of the machine's cores a CPU-bound epoch counts as shared: alone a training
#: process here keeps ~94 % of both cores busy, beside another busy process ~50 %
SHARED_CPU_SHARE = 0.7


def shared_cpu_share() -> float:
    """:data:`SHARED_CPU_SHARE`, or ``FER_SHARED_CPU_SHARE`` where set (0 turns the CPU test off: the
    tests' epochs of a few batches are too short for their CPU share to mean anything)."""
    return float(os.environ.get("FER_SHARED_CPU_SHARE", SHARED_CPU_SHARE))


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def epoch_shared(others: int, cpu_seconds: float, wall_seconds: float, cores: int, cpu_bound: bool) -> bool:
    """Whether an epoch shared the machine: another training process was marked (:func:`others_training`),
    or, for a run that trains on the CPU, its own process used less than :data:`SHARED_CPU_SHARE` of the
    ``cores`` over the epoch's ``wall_seconds`` (something else, a test suite or a CI run, took the rest)."""
    if others > 0:
        return True
    return bool(cpu_bound and wall_seconds > 0 and cpu_seconds / (wall_seconds * cores) < shared_cpu_share())


def trains_on_cpu() -> bool:
    """True when Keras's backend sees no GPU (the epochs' wall time is then the CPU's)."""
    import keras

    name = keras.backend.backend()
    if name == "jax":
        import jax

        return all(d.platform == "cpu" for d in jax.devices())
    if name == "torch":
        import torch

        return not torch.cuda.is_available()
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


#: the CPU flags (``/proc/cpuinfo``) of a native bfloat16 path: AVX512-BF16 or AMX (x86), BF16 (aarch64). Without one,
#: TensorFlow emulates bfloat16, and training in ``mixed_bfloat16`` is far slower than float32
#: (the HW3 CNN ~6x, the seed MobileNet ~6.5x on a 2-core AMD EPYC: ``benchmarks/README.md``)
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str] | None:
    """The CPU's feature flags, read from ``cpuinfo`` (Linux); None where there is no such file."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    line = next((ln for ln in text.splitlines() if ln.split(":")[0].strip() in ("flags", "Features")), "")
    return set(line.partition(":")[2].split())


def native_bfloat16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool | None:
    """Whether this machine computes bfloat16 natively: True on a GPU or on a CPU with one of
    :data:`BF16_CPU_FLAGS`, False on a CPU without them, None where the CPU's flags are unknown
    (not Linux)."""
    if not trains_on_cpu():
        return True
    flags = cpu_flags(cpuinfo)
    return None if flags is None else bool(flags & set(BF16_CPU_FLAGS))


def emulated_bfloat16_warning(rid: str) -> str:
    """What a run that is about to train in ``mixed_bfloat16`` on a CPU without native bfloat16 says."""
    return (f"[{rid}] trains in mixed_bfloat16 on a CPU without native bfloat16 (none of "
            f"{', '.join(BF16_CPU_FLAGS)} in /proc/cpuinfo): TensorFlow emulates it, and the HW3 CNN "
            f"measured ~6x slower than in float32 on such a CPU (benchmarks/README.md). "
            f"Resume it on a machine with AMX or a GPU, or train it as a float32 run (--precision float32: "
            f"another run id).")


#: what :func:`backend_label` appends for a run with any epoch on a GPU (``results.on_gpu`` reads it)
GPU_SUFFIX = "-gpu"


def backend_label(gpu_epochs: int = 0) -> str:
    """The registry's ``backend``: Keras's backend, :data:`GPU_SUFFIX` appended when this process trains on a GPU
    or ``gpu_epochs`` of the run were trained on one (a run resumed here from a GPU machine's
    checkpoint): its ``wall_s`` is then not all CPU time, so the report's CPU-hour columns leave it out."""
    import keras

    return keras.backend.backend() + (GPU_SUFFIX if gpu_epochs > 0 or not trains_on_cpu() else "")


# --------------------------------------------------------------------------- what a run sees
def prepare(ds: data.FERDataset, profile: config.Profile, seed: int = 0) -> dict:
    """Split and scale the data for a profile: train / val / each labelled test split as float32 [0,1],
    and ``rows``: the data set rows of the train and val images (a teacher file is keyed by them).
    ``profile.validation``: ``holdout`` validates on a fixed 10 % of Training, ``public`` trains on
    all of Training and validates on PublicTest (the original study's protocol)."""
    if profile.validation == "public":
        train, val = ds.subset("Training"), ds.subset("PublicTest")
        if len(val) == 0:
            raise ValueError(f"{ds.source}: validation 'public' needs PublicTest rows; it has none")
    else:
        train, val = data.train_val_split(ds, 0.1, seed=0)  # one fixed validation split for every run
    if profile.train_limit is not None:
        train = data.stratified_subset(train, profile.train_limit, seed)
        val = data.stratified_subset(val, max(profile.train_limit // 5, 50), seed)
    out = {"train": _xy(train), "val": _xy(val), "tests": {}, "rows": {"train": train.rows, "val": val.rows}}
    for split in ("PublicTest", "PrivateTest"):
        part = ds.subset(split)
        if len(part) == 0:
            continue
        if profile.eval_limit is not None:
            part = data.stratified_subset(part, profile.eval_limit, seed)
        out["tests"][split] = _xy(part)
    return out


def _xy(ds: data.FERDataset):
    return ds.images.astype(np.float32) / 255.0, ds.labels.astype(np.int64)


def evaluate(model, prepared: dict, mirror: bool = False, val: bool = True) -> dict:
    """Accuracy on validation (``val``) and on each labelled test split; ``mirror``: with mirror TTA
    too (``<split>_tta``). ``model``: a model, or a list of models (an ensemble, outputs averaged in
    order: ``predict.mean_probabilities``; one model scores exactly as itself)."""
    from .predict import mean_probabilities, probabilities

    models = model if isinstance(model, (list, tuple)) else [model]
    out = {}
    for name, (x, y) in ([("val", prepared["val"])] if val else []) + list(prepared["tests"].items()):
        plain = [probabilities(m, x) for m in models]
        out[name] = float(np.mean(np.argmax(mean_probabilities(plain), axis=1) == y))
        if mirror:
            both = [probabilities(m, x, mirror=True, plain=p) for m, p in zip(models, plain)]
            out[f"{name}_tta"] = float(np.mean(np.argmax(mean_probabilities(both), axis=1) == y))
    return out


# --------------------------------------------------------------------------- files
def atomic_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _profile_defaults() -> dict:
    """The defaults of :class:`config.Profile`'s fields: what a state written before a field existed had."""
    return {f.name: f.default for f in fields(config.Profile) if f.default is not MISSING}


def check_schedule(run_dir: Path, prof: config.Profile) -> None:
    """Refuse to resume or read back a run folder trained on another schedule.

    The run name holds the profile's name, not its epochs and patiences, so a
    changed profile would otherwise read an old run back as if it were new.
    """
    state_path = run_dir / "state.json"
    if not state_path.exists():
        return
    had = {**_profile_defaults(), **json.loads(state_path.read_text()).get("profile", {})}  # older folders lack newer fields
    want = {k: v for k, v in asdict(prof).items() if k != "name"}
    diff = {k: (had.get(k), v) for k, v in want.items() if had.get(k) != v}
    if diff:
        detail = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in sorted(diff.items()))
        raise ValueError(f"{run_dir}: this run was trained on another schedule ({detail}); move the folder "
                         f"aside (e.g. to {run_dir.name}-old) to train the new one, or rerun with the old schedule")


def epochs_done(run_dir: Path) -> int:
    """Epochs a run folder has finished (its ``state.json``); 0 for a new or missing folder."""
    state_path = Path(run_dir) / "state.json"
    return int(json.loads(state_path.read_text()).get("epoch", 0)) if state_path.exists() else 0


def truncate_log(run_dir: Path, epochs_done: int) -> None:
    """Drop log rows of an epoch that was interrupted before its state was written."""
    log = run_dir / "log.csv"
    if not log.exists():
        log.write_text(",".join(LOG_COLUMNS) + "\n")
        return
    lines = log.read_text().splitlines()
    keep = [lines[0]] + [ln for ln in lines[1:] if ln and int(ln.split(",")[0]) <= epochs_done]
    log.write_text("\n".join(keep) + "\n")


def publish_log(run_dir: Path, registry_path: Path) -> None:
    """Copy the small per-epoch log beside the registry (``logs/<run_id>.csv``), where plots read it."""
    logs_dir = registry_path.parent / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / "log.csv", logs_dir / f"{run_dir.name}.csv")


def weights_path(run_id: str, runs_root: Path | None = None) -> Path:
    """A finished run's final (best) float32 weights; only on the machine that trained it."""
    return Path(runs_root or paths.runs_dir()) / run_id / "final.weights.h5"


def exported_path(run_id: str, results_dir: Path) -> Path:
    """A finished run's float16 copy beside the registry (``<results>/weights/<run id>.fp16``), committed
    with the results so that codecs, distillation and the report work on a fresh clone."""
    return Path(results_dir) / "weights" / f"{run_id}{EXPORTED_SUFFIX}"


def export_weights(model, run_id: str, results_dir: Path) -> int:
    """Write ``model``'s float16 copy (``compress``'s ``fp16`` codec); returns its bytes."""
    from . import compress

    path = exported_path(run_id, results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    return compress.encode(model, path, "fp16")


def _exported(run_id: str) -> Path | None:
    for out in (paths.output_dirs(committed=True), paths.output_dirs(committed=False)):
        if exported_path(run_id, out["results"]).exists():
            return exported_path(run_id, out["results"])
    return None


def has_weights(run_id: str, runs_root: Path | None = None) -> bool:
    """Whether a finished run's weights are here: float32 in its run folder, or its exported float16 copy."""
    return weights_path(run_id, runs_root).exists() or _exported(run_id) is not None


def ensure_exported(result: dict, results_dir: Path, runs_root: Path | None = None) -> Path:
    """A finished run's float16 copy beside the registry in ``results_dir``, made from its run folder
    when it is not there (a run trained elsewhere, e.g. a sweep task, whose copy went to its own scratch)."""
    path = exported_path(result["run_id"], results_dir)
    if not path.exists():
        export_weights(load_trained(result, runs_root), result["run_id"], results_dir)
    return path


def load_trained(result: dict, runs_root: Path | None = None):
    """Rebuild a finished run's model with its final (best) weights: float32 from its run folder when
    this machine trained it, else its exported float16 copy."""
    from . import compress, models

    path = weights_path(result["run_id"], runs_root)
    copy = None if path.exists() else _exported(result["run_id"])
    if copy is not None:
        return compress.decode(copy)
    model = models.build(result["arch"], float(result["width"]))
    model.load_weights(path)
    return model


def git_commit() -> str:
    """The checkout's short commit; ``FER_GIT_COMMIT`` where the code runs from a copy without ``.git``
    (a lent GPU machine)."""
    if os.environ.get("FER_GIT_COMMIT"):
        return os.environ["FER_GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=paths.ROOT, capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# --------------------------------------------------------------------------- stable-phase snapshots and branches
def snapshot_epochs(sched, stop_after: int | None = None) -> set[int]:
    """Epochs at which a WSD run keeps a checkpoint of its stable phase: the decay starts of the
    study's shorter budgets (:data:`config.EPOCH_BUDGETS`), its own (to extend the budget later) and
    ``stop_after``, where the budget study stops it for a shorter budget to branch."""
    if sched is None or sched.kind != "wsd":
        return set()
    own = sched.decay_start()
    shorter = {replace(sched, epochs=b).decay_start() for b in config.EPOCH_BUDGETS if b < sched.epochs}
    wanted = shorter | {own} | ({stop_after} if stop_after is not None else set())
    return {e for e in wanted if sched.warmup <= e <= own and e > 0}


SNAPSHOT_FILES = ("last.keras", "state.json", "log.csv", "best.weights.h5")


def save_snapshot(run_dir: Path, epoch: int) -> Path:
    """Copy the finished epoch's checkpoint, state, log and best weights to ``stable/e<epoch>/``."""
    dest = run_dir / "stable" / f"e{epoch:04d}"
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in SNAPSHOT_FILES:
        if (run_dir / name).exists():
            shutil.copyfile(run_dir / name, tmp / name)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest


def branch_source(runs_root: Path, rid: str, prof: config.Profile) -> Path | None:
    """The latest stable-phase snapshot a WSD run ``rid`` can start from, or None.

    A sibling run (same architecture, width, seed, data, tag and precision, any WSD budget) whose
    snapshot at epoch ``e`` lies at or before this run's decay start, trained with the same
    schedule otherwise (peak, warm-up, decay share, batch size): up to ``e`` both runs followed
    the same learning rates, so the snapshot *is* this run after ``e`` epochs.
    """
    sched = prof.lr_schedule()
    if sched is None or sched.kind != "wsd":
        return None
    own_tag = f"-{sched.tag()}"
    head, _, tail = rid.partition(own_tag)
    pattern = re.compile(re.escape(head) + r"-wsd\d+" + re.escape(tail) + "$")
    want = {k: v for k, v in asdict(prof).items() if k != "epochs"}
    best = None
    for sib in Path(runs_root).iterdir() if Path(runs_root).is_dir() else []:
        if sib.name == rid or not pattern.match(sib.name):
            continue
        for snap in (sib / "stable").glob("e[0-9][0-9][0-9][0-9]"):
            epoch = int(snap.name[1:])
            if not (sched.warmup <= epoch <= sched.decay_start()) or not (snap / "last.keras").exists():
                continue
            had = {**_profile_defaults(), **json.loads((snap / "state.json").read_text())["profile"]}
            if {k: v for k, v in had.items() if k != "epochs"} != want:
                continue
            if best is None or epoch > int(best.name[1:]):
                best = snap
    return best


def start_from_snapshot(run_dir: Path, snap: Path, prof: config.Profile) -> dict:
    """Make ``run_dir`` the run ``snap`` was after its epoch: checkpoint, log, best weights, state."""
    for name in SNAPSHOT_FILES:
        if (snap / name).exists() and name != "state.json":
            shutil.copyfile(snap / name, run_dir / name)
    state = json.loads((snap / "state.json").read_text())
    state.update(profile=asdict(prof), branched_from=f"{snap.parent.parent.name}@{state['epoch']}")
    atomic_json(run_dir / "state.json", state)
    return state
