"""The resumable training engine and its command line.

    python -m fer_utils.train --arch mobilenet --width 1.0 --profile full

One call of :func:`train` trains, resumes or reads back one run (its folder: :mod:`fer_utils.runs`).
Rerunning the same command after an interruption (even ``kill -9``) continues after the last
finished epoch; a finished run is never retrained, only read back from ``result.json``.

The recipe (:mod:`fer_utils.recipe`): augmentation with Keras preprocessing layers, Adam, and
the profile's schedule. A budgeted schedule (``wsd`` / ``cosine``, the default) sets the learning
rate before every step from the step index alone (:mod:`fer_utils.schedule`), keeps the best
validation weights and the last checkpoint, and never stops early; the first recipe (``plateau``)
divides the rate by 5 after ``lr_patience`` epochs without a better validation accuracy and stops
after ``patience`` (best weights restored). Either way the state lives in the run folder, so a
resumed run behaves like an uninterrupted one. Distillation (:mod:`fer_utils.distill`) calls this
engine with other targets and a loss of its own.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np

from . import config, data, registry, runs
from .recipe import describe, fit_targets, student_of, training_model
from .seeding import set_seed


#: the first recipe's plateau cut and its floor
LR_FACTOR = 0.2
MIN_LR = 1e-5


@dataclass
class Targets:
    """What ``fit`` is given instead of one-hot labels (distillation), and the loss and accuracy reading it.

    ``val`` None: one-hot validation labels. The metric must be named ``accuracy`` (the schedule
    reads ``val_accuracy``). ``teacher``: a Keras model run in the loop on every augmented batch
    (:class:`fer_utils.recipe.WithTeacher`); the loss then reads ``[student | teacher]`` predictions.
    ``teachers``: the run ids of the teacher(s) the targets come from, recorded in the run's registry
    row (its ``teachers`` column) so which runs taught it never rests on a name that later runs reuse.
    ``paired``: the mirror augmentation exposes its draw (:class:`fer_utils.recipe.MirrorPaired`), so
    the loss can pick each image's target of the view the student saw.
    """
    train: np.ndarray
    val: np.ndarray | None = None
    loss: object = "categorical_crossentropy"
    metric: object = "accuracy"
    teacher: object = None
    teachers: tuple = ()
    paired: bool = False


class RunCheckpoint(keras.callbacks.Callback):
    """Per-step learning rate and per-epoch bookkeeping: best weights, checkpoint, log, stable-phase
    snapshots; for the first recipe, plateau cuts and early stopping instead of the budgeted rate.

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
        self.snapshots = runs.snapshot_epochs(self.schedule, stop_after)
        self._t0 = None
        self._epoch = 0
        self._others = 0  # other training processes seen at the epoch's start
        self._cpu0 = 0.0  # this process's CPU seconds at the epoch's start
        self._cores, self._on_cpu = runs.usable_cores(), runs.trains_on_cpu()
        self._cut = False  # the deadline cut an epoch short: it must not be recorded
        self._epochs_here = 0  # epochs finished in this process (the first one also pays for compilation)
        self._lr_set = None  # the learning rate last assigned in this process

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        self._epoch = epoch
        self._others = runs.others_training()  # another run on this machine shares its cores
        self._cpu0 = time.process_time()

    def on_train_batch_begin(self, batch, logs=None):
        if self.schedule is not None:  # the rate is a function of the step alone: resumes set the same one
            step = self._epoch * self.steps_per_epoch + batch
            lr = self.schedule.lr_at(step, self.steps_per_epoch)
            if lr != self._lr_set:  # unchanged through the stable phase: on JAX each assign syncs the whole state
                self.model.optimizer.learning_rate.assign(lr)
                self._lr_set = lr

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
        row = [epoch + 1] + [float(logs[k]) for k in runs.LOG_COLUMNS[1:5]] + [lr, round(seconds, 2)]
        with open(self.run_dir / "log.csv", "a", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerow(row)
        st["epoch"] = epoch + 1
        st["train_seconds"] += seconds
        if not self._on_cpu:
            st["gpu_epochs"] = st.get("gpu_epochs", 0) + 1  # its seconds are no CPU time (runs.backend_label)
        # epochs timed since sharing was recorded (a run resumed from an older state has fewer), and
        # of them the seconds with another training process on this machine at the epoch's start or end
        st["tracked_seconds"] = st.get("tracked_seconds", 0.0) + seconds
        cpu = time.process_time() - self._cpu0
        st["cpu_seconds"] = st.get("cpu_seconds", 0.0) + cpu
        shared = runs.epoch_shared(max(self._others, runs.others_training()), cpu, seconds, self._cores, self._on_cpu)
        st["shared_seconds"] = st.get("shared_seconds", 0.0) + (seconds if shared else 0.0)
        runs.atomic_json(self.run_dir / "state.json", st)
        if epoch + 1 in self.snapshots:
            runs.save_snapshot(self.run_dir, epoch + 1)  # a shorter (or longer) budget branches here
        if self.stop_after is not None and epoch + 1 >= self.stop_after:
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


def shared_fraction(state: dict) -> float:
    """The fraction of a run's timed training seconds spent beside another training run on this
    machine (``state.json``'s ``shared_seconds`` over ``tracked_seconds``); NaN when no epoch was
    timed for it (a run finished before it was recorded)."""
    tracked = state.get("tracked_seconds", 0.0)
    return round(state.get("shared_seconds", 0.0) / tracked, 2) if tracked > 0 else float("nan")


def train(arch: str, width: float = 1.0, profile: str | config.Profile = "full", seed: int = 0,
          dataset: data.FERDataset | None = None, runs_root: Path | None = None,
          registry_path: Path | None = None, verbose: int = 2, progress: bool = False,
          epochs: int | None = None, train_limit: int | None = None, tag: str = "",
          targets: Targets | None = None, build_model=None, deadline: float | None = None,
          precision: str = "float32", stop_after: int | None = None, callbacks=None,
          batch_size: int | None = None, peak_lr: float | None = None, validation: str | None = None,
          schedule: str | None = None, augment: str | None = None) -> dict | None:
    """Train (or resume, or read back) one run and return its result.

    ``targets`` replaces the one-hot labels, loss and accuracy (distillation: :func:`distill`);
    ``build_model`` overrides the architecture factory. ``deadline`` (a
    ``time.time()`` value; default ``FER_DEADLINE``) stops at the last epoch
    boundary that fits before it and returns ``None``: the run is unfinished,
    and the same call later resumes it. ``precision="mixed_bfloat16"`` trains
    with bfloat16 compute and float32 weights (twice the CNN's speed on CPUs
    with AMX); it is part of the run's identity and recipe. ``stop_after`` stops after that
    epoch and returns ``None`` (the budget study advances its longest run to the next branch point).
    ``callbacks(net, run_dir)`` returns more Keras callbacks, run before the engine's own at every
    hook (quantisation-aware fine-tuning: :mod:`fer_utils.qat`). ``batch_size`` overrides the
    profile's (same peak learning rate and epochs); the run is then tagged ``bs<N>``
    (:func:`runs.variant_tag`). ``peak_lr`` overrides the profile's peak learning rate (the same
    schedule's shape, budget and batch size); the run is then tagged ``lr<peak>``. ``validation``
    ``"public"`` trains on all of Training and picks the best epoch on PublicTest (the original
    study's protocol; :func:`runs.prepare`); the run is then tagged ``vpub``. ``schedule`` ``"cosine"``
    replaces the warm-up / stable / decay shape with a cosine from the peak after warm-up (the same
    budget, warm-up and peak); the run is then tagged ``cos``. ``augment`` ``"light"`` trains with the
    lighter augmentation of :data:`config.AUGMENTS`, ``"flip"`` with the mirror alone; the run is then
    tagged ``auglight`` or ``augflip``.

    A new WSD run starts from the latest stable-phase snapshot of a sibling run with another
    budget when one exists (:func:`branch_source`), so shorter budgets cost only their decay.
    """
    base = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
    prof = runs.requested(base, epochs, train_limit, batch_size, peak_lr, validation, schedule, augment)
    tag = runs.variant_tag(tag, base, prof)
    ds = dataset if dataset is not None else data.load()
    fp = ds.fingerprint()
    if precision not in config.PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(config.PRECISIONS)}")
    run_dir = runs.run_folder(arch, width, prof, seed, fp, tag, precision, runs_root)
    rid = run_dir.name
    run_dir.mkdir(parents=True, exist_ok=True)
    runs.check_schedule(run_dir, prof)
    result_path = run_dir / "result.json"
    if result_path.exists():
        result = json.loads(result_path.read_text())
        runs.publish_log(run_dir, Path(registry_path) if registry_path is not None else registry.default_path())
        if progress:
            print(f"[{rid}] finished earlier: PublicTest {result['public_acc']:.4f} "
                  f"PrivateTest {result['private_acc']:.4f} (read back, not retrained)", flush=True)
        return result

    set_seed(seed)
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        return _train_run(arch, width, prof, seed, ds, fp, run_dir, registry_path, verbose, progress, tag,
                          targets, build_model, deadline, precision, runs_root, stop_after, callbacks)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _train_run(arch, width, prof, seed, ds, fp, run_dir, registry_path, verbose, progress, tag, targets,
               build_model, deadline, precision, runs_root, stop_after=None, callbacks=None):
    """The body of :func:`train` once the run folder is known and the precision policy is set."""
    from . import models

    rid, result_path = run_dir.name, run_dir / "result.json"
    prepared = runs.prepare(ds, prof, seed)
    x_train, y_train = prepared["train"]
    targets = targets or Targets(fit_targets(y_train))
    state_path = run_dir / "state.json"
    if not state_path.exists():
        snap = runs.branch_source(run_dir.parent, rid, prof)
        if snap is not None:
            runs.start_from_snapshot(run_dir, snap, prof)
            if progress:
                print(f"[{rid}] branching from {snap.parent.parent.name} after epoch {int(snap.name[1:])} "
                      f"(its stable phase)", flush=True)
    if state_path.exists() and (run_dir / "last.keras").exists():
        state = json.loads(state_path.read_text())
        wrapper = keras.models.load_model(run_dir / "last.keras")  # optimizer and augmentation RNG state too
        model = student_of(wrapper)
        if progress:
            print(f"[{rid}] resuming after epoch {state['epoch']}", flush=True)
    else:
        state = {"epoch": 0, "best_val": -1.0, "best_epoch": 0, "wait": 0, "lr_wait": 0,
                 "train_seconds": 0.0, "tracked_seconds": 0.0, "shared_seconds": 0.0, "cpu_seconds": 0.0,
                 "stopped_early": False, "profile": asdict(prof)}
        model = (build_model or (lambda: models.build(arch, width)))()
        wrapper = training_model(model, seed, targets.teacher, prof.augment, targets.paired)
        wrapper.compile(optimizer=keras.optimizers.Adam(prof.learning_rate),
                        loss=targets.loss, metrics=[targets.metric])
    runs.truncate_log(run_dir, state["epoch"])

    if deadline is None and os.environ.get("FER_DEADLINE"):
        deadline = float(os.environ["FER_DEADLINE"])

    def unfinished() -> bool:
        return state["epoch"] < prof.epochs and not state["stopped_early"]

    if deadline is not None and time.time() > deadline and unfinished():
        return None  # no time left to start: unfinished, resumable
    if stop_after is not None and state["epoch"] >= stop_after and unfinished():
        return None  # already at the requested epoch: unfinished, resumable
    if unfinished():
        if precision == "mixed_bfloat16" and runs.native_bfloat16() is False:
            warnings.warn(runs.emulated_bfloat16_warning(rid), RuntimeWarning, stacklevel=3)
        x_val, y_val = prepared["val"]
        steps = -(-len(x_train) // prof.batch_size)
        callback = RunCheckpoint(run_dir, state, prof, progress, model, deadline, steps, stop_after)
        extra = list(callbacks(model, run_dir)) if callbacks is not None else []
        y_val_fit = targets.val if targets.val is not None else fit_targets(y_val)
        with runs.Training(rid):
            wrapper.fit(x_train, targets.train, batch_size=prof.batch_size, shuffle=True,
                        validation_data=(x_val, y_val_fit), epochs=prof.epochs,
                        initial_epoch=state["epoch"], callbacks=[*extra, callback], verbose=verbose)
        if unfinished():
            return None  # stopped by the deadline: unfinished, resumable

    if (run_dir / "best.weights.h5").exists():
        model.load_weights(run_dir / "best.weights.h5")  # EarlyStopping's restore_best_weights
    model.save_weights(runs.weights_path(rid, runs_root))
    acc = runs.evaluate(model, prepared, mirror=True)
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
        "shared": shared_fraction(state),
        "teachers": ";".join(targets.teachers),
        "backend": runs.backend_label(int(state.get("gpu_epochs", 0))), "data_source": ds.label, "data_fingerprint": fp,
        "profile": prof.name, "seed": seed, "recipe": describe(prof, precision) + (f"|tag:{tag}" if tag else ""),
        "git_commit": runs.git_commit(),
        "timestamp": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
    }
    registry_path = Path(registry_path) if registry_path is not None else registry.default_path()
    runs.export_weights(model, rid, registry_path.parent)  # the float16 copy a fresh clone reads
    registry.append(result, registry_path)
    runs.publish_log(run_dir, registry_path)
    runs.atomic_json(result_path, result)
    if progress:
        print(f"[{rid}] done in {epochs_run} epochs: val {acc['val']:.4f} PublicTest {result['public_acc']:.4f} "
              f"PrivateTest {result['private_acc']:.4f}", flush=True)
    return result


def cli_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every training command takes (``fer_utils.distill`` adds the teacher's)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--arch", required=True, choices=["mobilenet", "cnn", "irnet"])
    parser.add_argument("--width", type=float, default=1.0)
    config.add_cli_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="override the profile's epoch budget")
    parser.add_argument("--train-limit", type=int, default=None, help="override the profile's training-set size")
    parser.add_argument("--precision", choices=list(config.PRECISIONS), default="float32",
                        help="mixed_bfloat16: bfloat16 compute, float32 weights")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="override the profile's batch size (the run is tagged bs<N>, a variant of the plain run)")
    parser.add_argument("--peak-lr", type=float, default=None,
                        help="override the profile's peak learning rate (the run is tagged lr<peak>, a variant)")
    parser.add_argument("--validation", choices=list(config.VALIDATIONS), default=None,
                        help="public: train on all of Training, pick the best epoch on PublicTest (the original "
                             "study's protocol; the run is tagged vpub, a variant)")
    parser.add_argument("--schedule", choices=list(runs.SCHEDULE_KINDS), default=None,
                        help="override the profile's schedule shape: cosine, half a cosine from the peak after "
                             "warm-up (the run is tagged cos, a variant)")
    parser.add_argument("--augment", choices=list(config.AUGMENTS), default=None,
                        help="light: half the standard rotation, translation and zoom; flip: the mirror alone (the run "
                             "is tagged auglight or augflip, a variant)")
    return parser


def cli_setup(args) -> tuple[data.FERDataset, config.Setup, dict]:
    """The data, the setup and the keyword arguments of :func:`train` a parsed command line asks for."""
    ds, setup, reg = config.from_cli(args)
    common = dict(dataset=ds, verbose=2, progress=True, epochs=args.epochs, train_limit=args.train_limit,
                  registry_path=reg, precision=args.precision, batch_size=args.batch_size,
                  peak_lr=args.peak_lr, validation=args.validation, schedule=args.schedule, augment=args.augment)
    return ds, setup, common


def train_smoke(models_to_train, setup, dataset=None) -> None:
    """Train ``[(arch, width), …]`` in this process when the profile is ``smoke`` (a notebook's own
    runs, minutes on a CPU); in any other profile the runs come from the command line, in the
    background, and notebooks only read them back."""
    if setup.profile.name != "smoke":
        return
    ds = dataset if dataset is not None else data.load()
    for arch, width in models_to_train:
        train(arch, width, setup.profile, dataset=ds, verbose=2, registry_path=setup.results / "runs.csv")


def main(argv=None) -> int:
    args = cli_parser("Train one model (resumable).").parse_args(argv)
    _, setup, common = cli_setup(args)
    return 0 if train(args.arch, args.width, setup.profile, args.seed, **common) else 3


if __name__ == "__main__":
    sys.exit(main())
