"""Resumable training engine and its command line.

    python -m fer_utils.train --arch mobilenet --width 1.0 --profile full

A run folder (``runs/<arch>-w<width>-<profile>-s<seed>-<data fingerprint>``)
holds the last full checkpoint (model + optimizer), the best weights, a
per-epoch CSV log and the plateau state. Rerunning the same command after an
interruption (even ``kill -9``) continues after the last finished epoch; a
finished run is never retrained, only read back from ``result.json``.

The recipe: augmentation with Keras preprocessing layers (horizontal flip,
small rotation, translation, zoom), Adam, learning rate divided by 5 after
``lr_patience`` epochs without a better validation accuracy
(ReduceLROnPlateau), stop after ``patience`` such epochs and restore the best
weights (EarlyStopping with ``restore_best_weights``). The plateau state is
kept in the run folder so a resumed run behaves like an uninterrupted one.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import MISSING, asdict, dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np

from . import config, data, paths, registry
from .seeding import set_seed

AUGMENT = "aug:flip,rot0.05,trans0.1,zoom0.1"
#: the first recipe (``plateau`` schedule), as its rows spell it
RECIPE = f"adam1e-3|{AUGMENT}|plateau/5|es-best|val10%"

PRECISIONS = config.PRECISIONS


def recipe(prof: config.Profile, precision: str = "float32") -> str:
    """The recipe string of a registry row: optimizer, augmentation, the profile's schedule, the precision.

    Budgeted runs read ``adam|aug:…|wsd200/warm2/decay0.2/peak0.003|best-val|val10%|bs128``; the
    first recipe's rows keep their old spelling (``…|plateau/5|es-best|val10%|ep60/es10/lr4/bs64``).
    """
    sched = prof.lr_schedule()
    if sched is None:
        text = f"{RECIPE}|ep{prof.epochs}/es{prof.patience}/lr{prof.lr_patience}/bs{prof.batch_size}"
    else:
        text = f"adam|{AUGMENT}|{sched.describe()}|best-val|val10%|bs{prof.batch_size}"
    return text + (f"|{PRECISIONS[precision]}" if PRECISIONS[precision] else "")


LOG_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")
LR_FACTOR = 0.2
MIN_LR = 1e-5


# --------------------------------------------------------------------------- data
def prepare(ds: data.FERDataset, profile: config.Profile, seed: int = 0) -> dict:
    """Split and scale the data for a profile: train / val / each labelled test split as float32 [0,1]."""
    train, val = data.train_val_split(ds, 0.1, seed=0)  # one fixed validation split for every run
    if profile.train_limit is not None:
        train = data.stratified_subset(train, profile.train_limit, seed)
        val = data.stratified_subset(val, max(profile.train_limit // 5, 50), seed)
    out = {"train": _xy(train), "val": _xy(val), "tests": {}}
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


def augmenter(seed: int):
    """The augmentation pipeline: Keras preprocessing layers, seeded."""
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomRotation(0.05, fill_mode="nearest", seed=seed + 1),
        keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed + 2),
        keras.layers.RandomZoom(0.1, fill_mode="nearest", seed=seed + 3),
    ], name="augment")


def training_model(model, seed: int):
    """``model`` behind the augmentation layers, for ``fit`` only.

    Keras' random preprocessing layers act only when ``training=True``, so the
    augmentation runs inside the compiled training step on every backend (no
    tf.data needed) and never at evaluation. The wrapper shares ``model``'s
    weights; only ``model`` itself is saved as a run's weights.
    """
    return keras.Sequential([keras.Input(model.input_shape[1:]), augmenter(seed), model],
                            name=f"train_{model.name}")


def fit_targets(y: np.ndarray) -> np.ndarray:
    """What ``fit`` is given without distillation: one-hot labels."""
    return np.eye(data.NUM_CLASSES, dtype=np.float32)[y]


@dataclass
class Targets:
    """What ``fit`` is given instead of one-hot labels (distillation), and the loss and accuracy reading it.

    ``val`` None: one-hot validation labels. The metric must be named ``accuracy`` (the schedule
    reads ``val_accuracy``).
    """
    train: np.ndarray
    val: np.ndarray | None = None
    loss: object = "categorical_crossentropy"
    metric: object = "accuracy"


@keras.saving.register_keras_serializable(package="fer_utils")
class DistillationLoss(keras.losses.Loss):
    """Knowledge distillation (Hinton et al., 2015) for a student that ends in a softmax.

    ``y_true`` packs [teacher's distribution softened by T | one-hot label] (2 x 7 columns). The
    student's probabilities are softened the same way (log p is the logit up to a constant, so
    softmax(log p / T) = softmax(z / T)) and matched to the teacher's, scaled by T² so the
    gradients keep their size; ``alpha`` weighs that term against cross-entropy on the labels:
    ``alpha * T² * H(teacher_T, student_T) + (1 - alpha) * H(label, student)``.
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 0.7, name: str = "distillation", **kwargs):
        super().__init__(name=name, **kwargs)
        if temperature <= 0 or not 0 <= alpha <= 1:
            raise ValueError(f"need temperature > 0 and 0 <= alpha <= 1, got T={temperature}, alpha={alpha}")
        self.temperature, self.alpha = float(temperature), float(alpha)

    def call(self, y_true, y_pred):
        ops, k = keras.ops, data.NUM_CLASSES
        y_true = ops.cast(y_true, "float32")
        soft, hard = y_true[:, :k], y_true[:, k:]
        log_p = ops.log(ops.clip(ops.cast(y_pred, "float32"), 1e-7, 1.0))
        z = log_p / self.temperature
        log_q = z - ops.logsumexp(z, axis=-1, keepdims=True)
        kd = -ops.sum(soft * log_q, axis=-1) * self.temperature ** 2
        ce = -ops.sum(hard * log_p, axis=-1)
        return self.alpha * kd + (1.0 - self.alpha) * ce

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "alpha": self.alpha}


def _hard_label_accuracy(y_true, y_pred):
    k = data.NUM_CLASSES
    return keras.ops.cast(keras.ops.equal(keras.ops.argmax(y_true[:, k:], axis=-1),
                                          keras.ops.argmax(y_pred, axis=-1)), "float32")


@keras.saving.register_keras_serializable(package="fer_utils")
class HardLabelAccuracy(keras.metrics.MeanMetricWrapper):
    """Accuracy against the one-hot half of :class:`DistillationLoss`'s packed targets."""

    def __init__(self, name: str = "accuracy", dtype=None):
        super().__init__(fn=_hard_label_accuracy, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


# --------------------------------------------------------------------------- run folder
def run_id(arch: str, width: float, profile: str, seed: int, fingerprint: str, tag: str = "",
           precision: str = "float32", schedule: str = "") -> str:
    """``<arch>-w<width>-<profile>-s<seed>-<data>[-<schedule tag>][-<tag>][-<precision>]``.

    ``schedule`` is the budgeted schedule's tag (``wsd200``); the first recipe's runs have none.
    """
    return (f"{arch}-w{width:g}-{profile}-s{seed}-{fingerprint}" + (f"-{schedule}" if schedule else "")
            + (f"-{tag}" if tag else "") + (f"-{PRECISIONS[precision]}" if PRECISIONS[precision] else ""))


def profile_run_id(arch: str, width: float, prof: config.Profile, seed: int, fingerprint: str, tag: str = "",
                   precision: str = "float32") -> str:
    """The run id of ``arch``/``width`` trained on ``prof`` (its schedule's tag included)."""
    sched = prof.lr_schedule()
    return run_id(arch, width, prof.name, seed, fingerprint, tag, precision, sched.tag() if sched else "")


def _atomic_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    os.replace(tmp, path)


class RunCheckpoint(keras.callbacks.Callback):
    """Per-epoch bookkeeping: plateau LR schedule, early stopping, best weights, checkpoint, log.

    Everything it decides is written to ``state.json`` after the checkpoint and
    the log row, so the state on disk always describes a finished epoch.
    """

    def __init__(self, run_dir: Path, state: dict, profile: config.Profile, progress: bool, net,
                 deadline: float | None = None, steps_per_epoch: int = 1, stop_after: int | None = None):
        super().__init__()
        self.run_dir, self.state, self.profile, self.progress = run_dir, state, profile, progress
        self.net, self.deadline = net, deadline  # the model being trained (inside the augmenting wrapper)
        self.schedule, self.steps_per_epoch = profile.lr_schedule(), steps_per_epoch
        self.stop_after = stop_after
        #: stable-phase epochs whose checkpoints shorter (or longer) WSD budgets branch from
        self.snapshots = snapshot_epochs(self.schedule)
        self._t0 = None
        self._epoch = 0
        self._cut = False  # the deadline cut an epoch short: it must not be recorded
        self._epochs_here = 0  # epochs finished in this process (the first one also pays for compilation)

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.schedule is not None:  # the rate is a function of the step alone: resumes set the same one
            step = self._epoch * self.steps_per_epoch + batch
            self.model.optimizer.learning_rate.assign(self.schedule.lr_at(step, self.steps_per_epoch))

    def on_train_batch_end(self, batch, logs=None):
        if self.deadline is not None and time.time() > self.deadline:
            self._cut = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self._cut:  # unfinished epoch: the files on disk still describe the previous one
            if self.progress:
                print(f"[{self.run_dir.name}] deadline reached during epoch {epoch + 1}; it will be redone "
                      f"on resume", flush=True)
            return
        logs = logs or {}
        seconds = time.perf_counter() - self._t0
        self._epochs_here += 1
        st, prof = self.state, self.profile
        val = float(logs["val_accuracy"])
        lr = float(self.model.optimizer.learning_rate.numpy())
        if val > st["best_val"]:
            st.update(best_val=val, best_epoch=epoch + 1, wait=0, lr_wait=0)
            self.net.save_weights(self.run_dir / "best.weights.h5")
        elif self.schedule is None:  # the plateau recipe: LR cuts and early stopping
            st["wait"] += 1
            st["lr_wait"] += 1
            if st["lr_wait"] >= prof.lr_patience and lr > MIN_LR:
                self.model.optimizer.learning_rate.assign(max(lr * LR_FACTOR, MIN_LR))
                st["lr_wait"] = 0
            if st["wait"] >= prof.patience:
                st["stopped_early"] = True
                self.model.stop_training = True
        tmp = self.run_dir / "last.tmp.keras"
        self.model.save(tmp)
        os.replace(tmp, self.run_dir / "last.keras")
        row = [epoch + 1] + [float(logs[k]) for k in LOG_COLUMNS[1:5]] + [lr, round(seconds, 2)]
        with open(self.run_dir / "log.csv", "a", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerow(row)
        st["epoch"] = epoch + 1
        st["train_seconds"] += seconds
        _atomic_json(self.run_dir / "state.json", st)
        stopping_here = self.stop_after is not None and epoch + 1 >= self.stop_after
        if epoch + 1 in self.snapshots or (stopping_here and self.schedule is not None
                                           and self.schedule.kind == "wsd"
                                           and epoch + 1 <= self.schedule.decay_start()):
            save_snapshot(self.run_dir, epoch + 1)  # a shorter (or longer) budget branches here
        if stopping_here:
            self.model.stop_training = True
        if self.progress:
            print(f"[{self.run_dir.name}] epoch {epoch + 1}/{prof.epochs} loss {logs['loss']:.4f} "
                  f"acc {logs['accuracy']:.4f} val_acc {val:.4f} (best {st['best_val']:.4f} @ "
                  f"{st['best_epoch']}) lr {lr:.1e} {seconds:.0f}s", flush=True)
        if (self.deadline is not None and not self.model.stop_training and self._epochs_here > 1
                and time.time() + 1.2 * seconds > self.deadline):
            self.model.stop_training = True  # out of time: stop at this epoch boundary, resumable
            if self.progress:
                print(f"[{self.run_dir.name}] deadline reached after epoch {epoch + 1}; rerun to resume", flush=True)
        kill_after = os.environ.get("FER_KILL_AFTER_EPOCH")
        if kill_after and int(kill_after) == epoch + 1:  # test hook: a real kill -9
            os.kill(os.getpid(), signal.SIGKILL)


def snapshot_epochs(sched) -> set[int]:
    """Epochs at which a WSD run keeps a checkpoint of its stable phase: the decay starts of the
    study's shorter budgets (:data:`config.EPOCH_BUDGETS`) and its own (to extend the budget later)."""
    if sched is None or sched.kind != "wsd":
        return set()
    own = sched.decay_start()
    shorter = {replace(sched, epochs=b).decay_start() for b in config.EPOCH_BUDGETS if b < sched.epochs}
    return {e for e in shorter | {own} if sched.warmup <= e <= own and e > 0}


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
            had = json.loads((snap / "state.json").read_text())["profile"]
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
    _atomic_json(run_dir / "state.json", state)
    return state


def _truncate_log(run_dir: Path, epochs_done: int) -> None:
    """Drop log rows of an epoch that was interrupted before its state was written."""
    log = run_dir / "log.csv"
    if not log.exists():
        log.write_text(",".join(LOG_COLUMNS) + "\n")
        return
    lines = log.read_text().splitlines()
    keep = [lines[0]] + [ln for ln in lines[1:] if ln and int(ln.split(",")[0]) <= epochs_done]
    log.write_text("\n".join(keep) + "\n")


def _publish_log(run_dir: Path, registry_path: Path) -> None:
    """Copy the small per-epoch log beside the registry (``logs/<run_id>.csv``), where plots read it."""
    logs_dir = registry_path.parent / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / "log.csv", logs_dir / f"{run_dir.name}.csv")


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=paths.ROOT, capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def evaluate(model, prepared: dict) -> dict:
    """Accuracy on validation and on each labelled test split, and with mirror TTA (``<split>_tta``)."""
    from .predict import probabilities

    out = {}
    for name, (x, y) in [("val", prepared["val"]), *prepared["tests"].items()]:
        plain = probabilities(model, x)
        out[name] = float(np.mean(np.argmax(plain, axis=1) == y))
        both = probabilities(model, x, mirror=True, plain=plain)
        out[f"{name}_tta"] = float(np.mean(np.argmax(both, axis=1) == y))
    return out


# --------------------------------------------------------------------------- the engine
def train(arch: str, width: float = 1.0, profile: str | config.Profile = "full", seed: int = 0,
          dataset: data.FERDataset | None = None, runs_root: Path | None = None,
          registry_path: Path | None = None, verbose: int = 2, progress: bool = False,
          epochs: int | None = None, train_limit: int | None = None, tag: str = "",
          targets: Targets | None = None, build_model=None, deadline: float | None = None,
          precision: str = "float32", stop_after: int | None = None) -> dict | None:
    """Train (or resume, or read back) one run and return its result.

    ``targets`` replaces the one-hot labels, loss and accuracy (distillation: :func:`distill`);
    ``build_model`` overrides the architecture factory. ``deadline`` (a
    ``time.time()`` value; default ``FER_DEADLINE``) stops at the last epoch
    boundary that fits before it and returns ``None``: the run is unfinished,
    and the same call later resumes it. ``precision="mixed_bfloat16"`` trains
    with bfloat16 compute and float32 weights (twice the CNN's speed on CPUs
    with AMX); it is part of the run's identity and recipe. ``stop_after`` stops after that
    epoch and returns ``None`` (the budget study advances its longest run to the next branch point).

    A new WSD run starts from the latest stable-phase snapshot of a sibling run with another
    budget when one exists (:func:`branch_source`), so shorter budgets cost only their decay.
    """
    prof = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
    if epochs is not None:
        prof = replace(prof, epochs=epochs)
    if train_limit is not None:
        prof = replace(prof, train_limit=train_limit)
    ds = dataset if dataset is not None else data.load()
    fp = ds.fingerprint()
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    rid = profile_run_id(arch, width, prof, seed, fp, tag, precision)
    run_dir = Path(runs_root or paths.runs_dir()) / rid
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_schedule(run_dir, prof)
    result_path = run_dir / "result.json"
    if result_path.exists():
        result = json.loads(result_path.read_text())
        _publish_log(run_dir, Path(registry_path) if registry_path is not None else registry.default_path())
        if progress:
            print(f"[{rid}] finished earlier: PublicTest {result['public_acc']:.4f} "
                  f"PrivateTest {result['private_acc']:.4f} (read back, not retrained)", flush=True)
        return result

    set_seed(seed)
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        return _train_run(arch, width, prof, seed, ds, fp, run_dir, registry_path, verbose, progress, tag,
                          targets, build_model, deadline, precision, runs_root, stop_after)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _train_run(arch, width, prof, seed, ds, fp, run_dir, registry_path, verbose, progress, tag, targets,
               build_model, deadline, precision, runs_root, stop_after=None):
    """The body of :func:`train` once the run folder is known and the precision policy is set."""
    from . import models

    rid, result_path = run_dir.name, run_dir / "result.json"
    prepared = prepare(ds, prof, seed)
    x_train, y_train = prepared["train"]
    targets = targets or Targets(fit_targets(y_train))
    state_path = run_dir / "state.json"
    if not state_path.exists():
        snap = branch_source(Path(runs_root or paths.runs_dir()), rid, prof)
        if snap is not None:
            start_from_snapshot(run_dir, snap, prof)
            if progress:
                print(f"[{rid}] branching from {snap.parent.parent.name} after epoch {int(snap.name[1:])} "
                      f"(its stable phase)", flush=True)
    if state_path.exists() and (run_dir / "last.keras").exists():
        state = json.loads(state_path.read_text())
        wrapper = keras.models.load_model(run_dir / "last.keras")  # optimizer and augmentation RNG state too
        model = wrapper.layers[-1]
        if progress:
            print(f"[{rid}] resuming after epoch {state['epoch']}", flush=True)
    else:
        state = {"epoch": 0, "best_val": -1.0, "best_epoch": 0, "wait": 0, "lr_wait": 0,
                 "train_seconds": 0.0, "stopped_early": False, "profile": asdict(prof)}
        model = (build_model or (lambda: models.build(arch, width)))()
        wrapper = training_model(model, seed)
        wrapper.compile(optimizer=keras.optimizers.Adam(prof.learning_rate),
                        loss=targets.loss, metrics=[targets.metric])
    _truncate_log(run_dir, state["epoch"])

    if deadline is None and os.environ.get("FER_DEADLINE"):
        deadline = float(os.environ["FER_DEADLINE"])
    def unfinished() -> bool:
        return state["epoch"] < prof.epochs and not state["stopped_early"]

    if deadline is not None and time.time() > deadline and unfinished():
        return None  # no time left to start: unfinished, resumable
    if stop_after is not None and state["epoch"] >= stop_after and unfinished():
        return None  # already at the requested epoch: unfinished, resumable
    if unfinished():
        x_val, y_val = prepared["val"]
        steps = -(-len(x_train) // prof.batch_size)
        callback = RunCheckpoint(run_dir, state, prof, progress, model, deadline, steps, stop_after)
        y_val_fit = targets.val if targets.val is not None else fit_targets(y_val)
        wrapper.fit(x_train, targets.train, batch_size=prof.batch_size, shuffle=True,
                    validation_data=(x_val, y_val_fit), epochs=prof.epochs,
                    initial_epoch=state["epoch"], callbacks=[callback], verbose=verbose)
        if unfinished():
            return None  # stopped by the deadline: unfinished, resumable

    if (run_dir / "best.weights.h5").exists():
        model.load_weights(run_dir / "best.weights.h5")  # EarlyStopping's restore_best_weights
    model.save_weights(weights_path(rid, runs_root))
    acc = evaluate(model, prepared)
    epochs_run = int(state["epoch"])
    result = {
        "run_id": rid, "arch": arch, "width": width, "params": int(model.count_params()),
        "flops": models.flops(model), "epochs": epochs_run, "best_val_acc": round(acc["val"], 4),
        "public_acc": round(acc.get("PublicTest", float("nan")), 4),
        "private_acc": round(acc.get("PrivateTest", float("nan")), 4),
        "public_tta_acc": round(acc.get("PublicTest_tta", float("nan")), 4),
        "private_tta_acc": round(acc.get("PrivateTest_tta", float("nan")), 4),
        "wall_s": round(state["train_seconds"], 1),
        "train_images_per_s": round(len(x_train) * epochs_run / max(state["train_seconds"], 1e-9), 1),
        "backend": keras.backend.backend(), "data_source": ds.label, "data_fingerprint": fp,
        "profile": prof.name, "seed": seed, "recipe": recipe(prof, precision) + (f"|tag:{tag}" if tag else ""),
        "git_commit": git_commit(),
        "timestamp": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
    }
    registry_path = Path(registry_path) if registry_path is not None else registry.default_path()
    registry.append(result, registry_path)
    _publish_log(run_dir, registry_path)
    _atomic_json(result_path, result)
    if progress:
        print(f"[{rid}] done in {epochs_run} epochs: val {acc['val']:.4f} PublicTest {result['public_acc']:.4f} "
              f"PrivateTest {result['private_acc']:.4f}", flush=True)
    return result


def _check_schedule(run_dir: Path, prof: config.Profile) -> None:
    """Refuse to resume or read back a run folder trained on another schedule.

    The run name holds the profile's name, not its epochs and patiences, so a
    changed profile would otherwise read an old run back as if it were new.
    """
    state_path = run_dir / "state.json"
    if not state_path.exists():
        return
    defaults = {f.name: f.default for f in fields(config.Profile) if f.default is not MISSING}
    had = {**defaults, **json.loads(state_path.read_text()).get("profile", {})}  # older folders lack newer fields
    want = {k: v for k, v in asdict(prof).items() if k != "name"}
    diff = {k: (had.get(k), v) for k, v in want.items() if had.get(k) != v}
    if diff:
        detail = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in sorted(diff.items()))
        raise ValueError(f"{run_dir}: this run was trained on another schedule ({detail}); move the folder "
                         f"aside (e.g. to {run_dir.name}-old) to train the new one, or rerun with the old schedule")


def weights_path(run_id: str, runs_root: Path | None = None) -> Path:
    """A finished run's final (best) float32 weights; only on the machine that trained it."""
    return Path(runs_root or paths.runs_dir()) / run_id / "final.weights.h5"


def has_weights(run_id: str, runs_root: Path | None = None) -> bool:
    return weights_path(run_id, runs_root).exists()


def load_trained(result: dict, runs_root: Path | None = None):
    """Rebuild a finished run's model with its final (best) weights."""
    from . import models

    model = models.build(result["arch"], float(result["width"]))
    model.load_weights(weights_path(result["run_id"], runs_root))
    return model


def softened(teacher, x: np.ndarray, temperature: float) -> np.ndarray:
    """The teacher's distribution softened by ``temperature``: it ends in a softmax, so this is
    p**(1/T) renormalised (the same as softmax(logits / T))."""
    if temperature <= 0:
        raise ValueError(f"need temperature > 0, got T={temperature}")
    p = teacher.predict(x, batch_size=256, verbose=0).astype(np.float64)
    soft = np.power(np.clip(p, 1e-12, 1.0), 1.0 / temperature)
    return soft / soft.sum(axis=1, keepdims=True)


def soft_targets(teacher, x: np.ndarray, y: np.ndarray, temperature: float, alpha: float) -> np.ndarray:
    """``mix`` distillation targets: ``alpha`` x the teacher's softened distribution + (1 - alpha) x one-hot.

    The student's own (unsoftened) softmax is fitted to them with plain cross-entropy, which at
    T > 1 acts much like heavy label smoothing; ``hinton`` (:class:`DistillationLoss`) is the
    standard method.
    """
    if temperature <= 0 or not 0 <= alpha <= 1:
        raise ValueError(f"need temperature > 0 and 0 <= alpha <= 1, got T={temperature}, alpha={alpha}")
    onehot = np.eye(data.NUM_CLASSES)[y]
    return (alpha * softened(teacher, x, temperature) + (1 - alpha) * onehot).astype(np.float32)


def packed_targets(teacher, x: np.ndarray, y: np.ndarray, temperature: float) -> np.ndarray:
    """[teacher's softened distribution | one-hot label], what :class:`DistillationLoss` reads."""
    return np.concatenate([softened(teacher, x, temperature), np.eye(data.NUM_CLASSES)[y]], axis=1).astype(np.float32)


def distill(arch: str, width: float, teacher_run: dict, profile, seed: int = 0, dataset=None,
            temperature: float = 4.0, alpha: float = 0.7, method: str = "hinton", **kwargs) -> dict:
    """Train ``arch``/``width`` on a trained teacher's soft targets (same recipe, seed and data as a plain run)."""
    if method not in config.KD_METHODS:
        raise ValueError(f"unknown distillation method {method!r}; expected one of {', '.join(config.KD_METHODS)}")
    prof = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
    ds = dataset if dataset is not None else data.load()
    prepared = prepare(ds, replace(prof, train_limit=kwargs.get("train_limit") or prof.train_limit), seed)
    (x, y), (xv, yv) = prepared["train"], prepared["val"]
    teacher = load_trained(teacher_run, kwargs.get("runs_root"))
    if method == "mix":
        targets = Targets(soft_targets(teacher, x, y, temperature, alpha))
    else:
        targets = Targets(packed_targets(teacher, x, y, temperature), packed_targets(teacher, xv, yv, temperature),
                          DistillationLoss(temperature, alpha), HardLabelAccuracy())
    tag = f"{config.KD_METHODS[method]}-{teacher_run['arch']}{float(teacher_run['width']):g}-T{temperature:g}-a{alpha:g}"
    return train(arch, width, prof, seed, dataset=ds, targets=targets, tag=tag, **kwargs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Train one model (resumable).")
    parser.add_argument("--arch", required=True, choices=["mobilenet", "cnn", "irnet"])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--profile", choices=list(config.PROFILES), default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="override the profile's epoch count")
    parser.add_argument("--train-limit", type=int, default=None, help="override the profile's training-set size")
    parser.add_argument("--registry", type=Path, default=None, help="results registry (default: <results>/runs.csv)")
    parser.add_argument("--precision", choices=list(PRECISIONS), default="float32",
                        help="mixed_bfloat16: bfloat16 compute, float32 weights")
    parser.add_argument("--teacher", default=None, metavar="ARCH:WIDTH",
                        help="distil from this finished run of the same profile and data (e.g. cnn:1.0)")
    parser.add_argument("--teacher-registry", type=Path, default=None,
                        help="registry to find the teacher's run in (default: --registry)")
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--alpha", type=float, default=0.7, help="weight of the teacher's term")
    parser.add_argument("--kd-method", choices=list(config.KD_METHODS), default="hinton")
    args = parser.parse_args(argv)
    ds = data.load()
    setup = config.setup(args.profile, ds)
    reg = args.registry or setup.results / "runs.csv"
    common = dict(dataset=ds, verbose=2, progress=True, epochs=args.epochs, train_limit=args.train_limit,
                  registry_path=reg, precision=args.precision)
    if args.teacher is None:
        return 0 if train(args.arch, args.width, setup.profile, args.seed, **common) else 3
    from . import results

    t_arch, t_width = args.teacher.split(":")
    rows = results.latest_runs(registry.read(args.teacher_registry or reg), setup.profile.name)
    rows = rows[(rows.arch == t_arch) & (rows.width == float(t_width)) & (rows.data_fingerprint == ds.fingerprint())]
    if rows.empty:
        parser.error(f"no finished {t_arch} width {t_width} run of profile {setup.profile.name} on this data in {reg}")
    done = distill(args.arch, args.width, rows.iloc[0].to_dict(), setup.profile, args.seed,
                   temperature=args.temperature, alpha=args.alpha, method=args.kd_method, **common)
    return 0 if done else 3


if __name__ == "__main__":
    sys.exit(main())
