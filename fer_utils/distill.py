"""Knowledge distillation: a student trained on a finished teacher's soft targets.

    python -m fer_utils.distill --arch irnet --width 1.0 --teacher cnn:1.0 --profile full
    python -m fer_utils.distill --arch irnet --width 1.0 --teacher-file results/teachers/cnn1.npz
    python -m fer_utils.distill --arch irnet --width 1.0 --teacher-file … --epochs 15 --temperature 2 4 8 --alpha 0.5 0.9

Distillation sits above the training engine: it computes the teacher's targets and calls
:func:`fer_utils.train.train` with them (the engine knows nothing of teachers). ``hinton`` (run
tag ``kdh-…``) matches the student's softened softmax to the teacher's, T²-scaled, weighed by
``alpha`` against cross-entropy on the labels; ``mix`` (tag ``kd-…``), the first method this
project ran, fits the student's plain softmax to a mix of softened teacher and label.

Several temperatures or weights on the command line make a **search** (:func:`search`): the plain
twin, then one distilled run per (T, alpha), all on the same budget; ``results.kd_search`` reads
the grid back and picks T and alpha on validation accuracy.
"""
from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np

from . import config, data, registry, results, runs, teachers, train
from .constants import NUM_CLASSES
from .recipe import fit_targets

#: the view of a teacher run in the loop, on the student's augmented batch
ONLINE = config.KD_ONLINE_VIEW
#: the view of targets precomputed on each image and its mirror, picked by the student's mirror draw
PAIRED = config.KD_PAIRED_VIEW


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
        k = NUM_CLASSES
        y_true = keras.ops.cast(y_true, "float32")
        return _hinton(y_true[:, :k], y_true[:, k:], y_pred, self.temperature, self.alpha)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "alpha": self.alpha}


def _hinton(soft, hard, student_p, temperature: float, alpha: float):
    """``alpha * T² * H(soft, student_T) + (1 - alpha) * H(hard, student)`` per example."""
    ops = keras.ops
    log_p = ops.log(ops.clip(ops.cast(student_p, "float32"), 1e-7, 1.0))
    z = log_p / temperature
    log_q = z - ops.logsumexp(z, axis=-1, keepdims=True)
    kd = -ops.sum(soft * log_q, axis=-1) * temperature ** 2
    ce = -ops.sum(hard * log_p, axis=-1)
    return alpha * kd + (1.0 - alpha) * ce


@keras.saving.register_keras_serializable(package="fer_utils")
class OnlineDistillationLoss(DistillationLoss):
    """:class:`DistillationLoss` with the teacher in the loop: ``y_true`` is the one-hot label and
    ``y_pred`` ``[student's softmax | teacher's softmax]`` on the same augmented view
    (:class:`fer_utils.recipe.WithTeacher`); the teacher's half is softened here, as :func:`soften` does."""

    def call(self, y_true, y_pred):
        ops, k = keras.ops, NUM_CLASSES
        y_pred = ops.cast(y_pred, "float32")
        soft = ops.softmax(ops.log(ops.clip(y_pred[:, k:], 1e-12, 1.0)) / self.temperature, axis=-1)
        return _hinton(soft, ops.cast(y_true, "float32"), y_pred[:, :k], self.temperature, self.alpha)


@keras.saving.register_keras_serializable(package="fer_utils")
class PairedDistillationLoss(DistillationLoss):
    """:class:`DistillationLoss` on targets precomputed for both views of each image: ``y_true`` packs
    [teacher's softened distribution on the image | on its mirror | one-hot label] (3 x 7 columns),
    ``y_pred`` is :class:`fer_utils.recipe.MirrorPaired`'s ``[student's softmax | mirrored flag]``; each
    example's target is the distribution of the view the student was shown."""

    def call(self, y_true, y_pred):
        ops, k = keras.ops, NUM_CLASSES
        y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
        flag = y_pred[:, k:k + 1]
        soft = (1.0 - flag) * y_true[:, :k] + flag * y_true[:, k:2 * k]
        return _hinton(soft, y_true[:, 2 * k:], y_pred[:, :k], self.temperature, self.alpha)


def _hard_label_accuracy(y_true, y_pred):
    k = NUM_CLASSES
    return keras.ops.cast(keras.ops.equal(keras.ops.argmax(y_true[:, k:], axis=-1),
                                          keras.ops.argmax(y_pred, axis=-1)), "float32")


def _student_accuracy(y_true, y_pred):
    return keras.ops.cast(keras.ops.equal(keras.ops.argmax(y_true, axis=-1),
                                          keras.ops.argmax(y_pred[:, :NUM_CLASSES], axis=-1)), "float32")


def _paired_accuracy(y_true, y_pred):
    k = NUM_CLASSES
    return keras.ops.cast(keras.ops.equal(keras.ops.argmax(y_true[:, 2 * k:], axis=-1),
                                          keras.ops.argmax(y_pred[:, :k], axis=-1)), "float32")


@keras.saving.register_keras_serializable(package="fer_utils")
class HardLabelAccuracy(keras.metrics.MeanMetricWrapper):
    """Accuracy against the one-hot half of :class:`DistillationLoss`'s packed targets; ``online``:
    the student's half of :class:`fer_utils.recipe.WithTeacher`'s output against one-hot labels;
    ``paired``: the student's part of :class:`fer_utils.recipe.MirrorPaired`'s output against the one-hot
    third of :class:`PairedDistillationLoss`'s targets."""

    def __init__(self, name: str = "accuracy", dtype=None, online: bool = False, paired: bool = False):
        if online and paired:
            raise ValueError("an accuracy reads either a teacher in the loop's output (online) or paired targets")
        fn = _student_accuracy if online else _paired_accuracy if paired else _hard_label_accuracy
        super().__init__(fn=fn, name=name, dtype=dtype)
        self.online, self.paired = bool(online), bool(paired)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "online": self.online, "paired": self.paired}


def soften(p: np.ndarray, temperature: float) -> np.ndarray:
    """A distribution softened by ``temperature``: p**(1/T) renormalised, the same as
    softmax(logits / T) for a model that ends in a softmax."""
    if temperature <= 0:
        raise ValueError(f"need temperature > 0, got T={temperature}")
    soft = np.power(np.clip(np.asarray(p, np.float64), 1e-12, 1.0), 1.0 / temperature)
    return soft / soft.sum(axis=1, keepdims=True)


def soft_targets(teacher, x: np.ndarray, y: np.ndarray, temperature: float, alpha: float) -> np.ndarray:
    """``mix`` distillation targets of a teacher model on ``x`` (:func:`mixed_targets`)."""
    return mixed_targets(teacher.predict(x, batch_size=256, verbose=0), y, temperature, alpha)


def mixed_targets(p: np.ndarray, y: np.ndarray, temperature: float, alpha: float) -> np.ndarray:
    """``mix`` distillation targets: ``alpha`` x the teacher's distribution ``p`` softened + (1 - alpha) x one-hot.

    The student's own (unsoftened) softmax is fitted to them with plain cross-entropy, which at
    T > 1 acts much like heavy label smoothing; ``hinton`` (:class:`DistillationLoss`) is the
    standard method.
    """
    if temperature <= 0 or not 0 <= alpha <= 1:
        raise ValueError(f"need temperature > 0 and 0 <= alpha <= 1, got T={temperature}, alpha={alpha}")
    onehot = np.eye(NUM_CLASSES)[y]
    return (alpha * soften(p, temperature) + (1 - alpha) * onehot).astype(np.float32)


def pack(soft: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[softened distribution | one-hot label] rows, what :class:`DistillationLoss` reads."""
    return np.concatenate([soft, np.eye(NUM_CLASSES)[y]], axis=1).astype(np.float32)


def ensemble_model(models):
    """One model whose output is the mean of ``models``' softmax outputs (the one model itself when alone):
    an ensemble of teachers, run in the loop as one."""
    if len(models) == 1:
        return models[0]
    for i, model in enumerate(models):  # unique names: two runs of one architecture share theirs
        model.name = f"teacher_{i}_{model.name}"
    x = keras.Input(models[0].input_shape[1:])
    mean = keras.layers.Average(name="teacher_mean")([m(x) for m in models])
    return keras.Model(x, mean, name="teacher_ensemble")


def teacher_runs(teacher) -> list[dict]:
    """The teacher run(s) ``distill`` was given: one registry row, or a list of them (an ensemble)."""
    return list(teacher) if isinstance(teacher, (list, tuple)) else [teacher]


def online_targets(teacher, y: np.ndarray, temperature: float, alpha: float,
                   runs_root: Path | None = None) -> train.Targets:
    """What the engine trains on with a finished teacher run (or a list of them: an ensemble, the mean
    of their softmax) in the loop: the one-hot labels ``y``, :class:`OnlineDistillationLoss` at
    ``temperature`` and ``alpha``, the student's accuracy, and the teacher's model, each run loaded in
    its architecture's faster precision on this machine (:func:`fer_utils.config.teacher_policy`: its
    forward pass on every augmented batch is the cost)."""
    loss = OnlineDistillationLoss(temperature, alpha)  # checks T and alpha before the teacher loads
    previous = keras.mixed_precision.global_policy()
    loaded, native = [], runs.native_bfloat16() is not False
    try:
        for run in teacher_runs(teacher):  # the teachers' forward passes only
            keras.mixed_precision.set_global_policy(config.teacher_policy(run["arch"], native))
            loaded.append(runs.load_trained(run, runs_root))
        keras.mixed_precision.set_global_policy("float32")
        model = ensemble_model(loaded)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return train.Targets(fit_targets(y), None, loss, HardLabelAccuracy(online=True), teacher=model,
                         teachers=tuple(r["run_id"] for r in teacher_runs(teacher)))


def paired_targets(views: np.ndarray, y: np.ndarray, views_val: np.ndarray, y_val: np.ndarray,
                   temperature: float, alpha: float, teachers_ids: tuple = ()) -> train.Targets:
    """What the engine trains on with a teacher's distributions precomputed on each image and on its
    mirror (``views``: (n, 2, 7), :func:`fer_utils.teachers.view_probabilities` or a teacher file's
    ``views``): [softened image's | softened mirror's | one-hot] rows, :class:`PairedDistillationLoss`
    at ``temperature`` and ``alpha``, and a wrapper whose mirror draw picks between the two
    (``paired``); validation images are never mirrored, so only their first view is read."""
    loss = PairedDistillationLoss(temperature, alpha)  # checks T and alpha

    def packed(v, labels):
        if v.shape != (len(labels), 2, NUM_CLASSES):
            raise ValueError(f"paired targets need (n, 2, {NUM_CLASSES}) view distributions for {len(labels)} "
                             f"images, got {v.shape}")
        return np.concatenate([soften(v[:, 0], temperature), soften(v[:, 1], temperature),
                               np.eye(NUM_CLASSES)[labels]], axis=1).astype(np.float32)

    return train.Targets(packed(views, y), packed(views_val, y_val), loss, HardLabelAccuracy(paired=True),
                         teachers=tuple(teachers_ids), paired=True)


def distill(arch: str, width: float, teacher, profile, seed: int = 0, dataset=None,
            temperature: float = 4.0, alpha: float = 0.7, method: str = "hinton", view: str = "tta",
            **kwargs) -> dict:
    """Train ``arch``/``width`` on a teacher's soft targets (same recipe, seed and data as a plain run).

    ``teacher``: a finished run's registry row (the teacher's weights are loaded and run on the
    clean training images; run tag ``…-<arch><width>-…``, :func:`fer_utils.results.teacher_name`) or a
    list of them (an ensemble: the mean of their softmax; tag ``…-<name>+<name>…-``), or a committed teacher file
    (:class:`fer_utils.teachers.TeacherFile`, no weights needed; ``view`` picks its targets; run tag
    ``…-<file name>-<view>-…``). A run's row with ``view="online"`` (``hinton`` only) runs the teacher
    in the loop instead, on every augmented batch the student sees, in its faster precision (run tag
    ``…-<arch><width>-online-…``): the targets then match the augmented view, at the cost of a
    teacher forward pass per step. ``view="paired"`` (``hinton``, the mirror augmentation alone:
    ``augment="flip"``) gives the same targets as the loop without its cost: the teacher's (a run's, or
    a teacher file's) distributions on each image and on its mirror, computed once, and on every step
    the one of the view the student was shown (:func:`paired_targets`; tag ``…-<teacher>-paired-…``).
    """
    if method not in config.KD_METHODS:
        raise ValueError(f"unknown distillation method {method!r}; expected one of {', '.join(config.KD_METHODS)}")
    prof = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
    if view == PAIRED:
        augment = kwargs.get("augment") or prof.augment
        if method != "hinton" or augment != "flip":
            raise ValueError(f"paired targets (view {PAIRED!r}) follow the mirror alone: they need the hinton "
                             f"method and augment 'flip', got {method!r} and {augment!r}")
    ds = dataset if dataset is not None else data.load()
    prepared = runs.prepare(ds, runs.requested(prof, train_limit=kwargs.get("train_limit"),
                                               validation=kwargs.get("validation")), seed)
    (x, y), (xv, yv) = prepared["train"], prepared["val"]
    if view == PAIRED:
        if isinstance(teacher, teachers.TeacherFile):
            teacher.check_data(ds)
            v, vv = (teacher.views(prepared["rows"][k]) for k in ("train", "val"))
            name, ids = f"{teacher.path.stem}-{PAIRED}", tuple(teacher.info.get("teachers", ()))
        else:
            models = [runs.load_trained(t, kwargs.get("runs_root")) for t in teacher_runs(teacher)]
            v, vv = (teachers.view_probabilities(models, z) for z in (x, xv))
            name = f"{results.teachers_name(teacher_runs(teacher))}-{PAIRED}"
            ids = tuple(t["run_id"] for t in teacher_runs(teacher))
        targets = paired_targets(v, y, vv, yv, temperature, alpha, ids)
    elif view == ONLINE:
        if isinstance(teacher, teachers.TeacherFile) or method != "hinton":
            raise ValueError("a teacher in the loop (view 'online') needs a finished run's weights and the hinton method")
        targets = online_targets(teacher, y, temperature, alpha, kwargs.get("runs_root"))
        name = f"{results.teachers_name(teacher_runs(teacher))}-{ONLINE}"
    else:
        if isinstance(teacher, teachers.TeacherFile):
            teacher.check_data(ds)
            p, pv = (teacher.probabilities(prepared["rows"][k], view) for k in ("train", "val"))
            name, ids = f"{teacher.path.stem}-{view}", tuple(teacher.info.get("teachers", ()))
        else:
            models = [runs.load_trained(t, kwargs.get("runs_root")) for t in teacher_runs(teacher)]
            p, pv = (np.mean([m.predict(v, batch_size=256, verbose=0) for m in models], axis=0) for v in (x, xv))
            name, ids = results.teachers_name(teacher_runs(teacher)), tuple(t["run_id"] for t in teacher_runs(teacher))
        if method == "mix":
            targets = train.Targets(mixed_targets(p, y, temperature, alpha), teachers=ids)
        else:
            targets = train.Targets(pack(soften(p, temperature), y), pack(soften(pv, temperature), yv),
                                    DistillationLoss(temperature, alpha), HardLabelAccuracy(), teachers=ids)
    tag = f"{config.KD_METHODS[method]}-{name}-T{temperature:g}-a{alpha:g}"
    return train.train(arch, width, prof, seed, dataset=ds, targets=targets, tag=tag, **kwargs)


def search(arch: str, width: float, teacher, profile, seed: int = 0, temperatures=(2.0, 4.0, 8.0),
           alphas=(0.5, 0.9), method: str = "hinton", view: str = "tta", **kwargs) -> list[dict] | None:
    """A small measured search over distillation's temperature and weight: ``arch``/``width``
    trained on the labels alone (the plain twin every distilled run is compared with), then
    distilled at every (T, alpha) of the grid, each run on the same budget, seed and data.

    Runs go one after another and each is resumable, so a deadline (``FER_DEADLINE``) stops the
    search at an epoch boundary and returns None; the same call later goes on where it stopped.
    Returns the finished runs' results, the plain twin first.
    """
    grid = [(float(t), float(a)) for t in temperatures for a in alphas]
    if not grid:
        raise ValueError("the search needs at least one temperature and one alpha")
    for t, a in grid:
        if t <= 0 or not 0 <= a <= 1:
            raise ValueError(f"need temperature > 0 and 0 <= alpha <= 1, got T={t:g}, alpha={a:g}")
    out = [train.train(arch, width, profile, seed, **kwargs)]
    for t, a in grid:
        if out[-1] is None:
            return None
        out.append(distill(arch, width, teacher, profile, seed, temperature=t, alpha=a, method=method, view=view,
                           **kwargs))
    return None if out[-1] is None else out


def pairs(setup, dataset, student, teacher, temperature: float, alpha: float, method: str = "hinton"):
    """Notebook 04's distillation table: in the smoke profile, ``student`` (arch, width) is distilled
    here from the finished ``teacher`` (arch, width) run; in any other profile the distilled runs come
    from the command line. Every distilled run in the registry is then paired with its plain twin
    (``results.distillation_pairs``), written to ``distillation.csv`` and returned (the distilled runs
    with no twin yet, ``results.unpaired_students``, to ``distillation_unpaired.csv``); the temperature /
    weight searches among the pairs (``results.kd_search``) go to ``kd_search.csv``, and a teacher in the
    loop beside its precomputed targets (``results.kd_views``) to ``kd_views.csv``, and one student from
    several teachers (``results.kd_teachers``) to ``kd_teachers.csv``."""
    reg = setup.results / "runs.csv"
    if setup.profile.name == "smoke":
        found = results.find_run(f"{teacher[0]}:{teacher[1]}", reg, setup.profile.name, dataset.fingerprint())
        if found is not None:
            distill(*student, found, setup.profile, dataset=dataset, temperature=temperature, alpha=alpha,
                    method=method, verbose=2, registry_path=reg)
    runs = registry.read(reg)
    table = results.distillation_pairs(runs, setup.profile.name)
    table.to_csv(setup.results / "distillation.csv", index=False)
    results.unpaired_students(runs, setup.profile.name).to_csv(setup.results / "distillation_unpaired.csv",
                                                               index=False)
    results.kd_search(table).to_csv(setup.results / "kd_search.csv", index=False)
    results.kd_views(table, teachers.members(setup.results / "teachers")).to_csv(
        setup.results / "kd_views.csv", index=False)
    results.kd_teachers(table).to_csv(setup.results / "kd_teachers.csv", index=False)
    return table


def main(argv=None) -> int:
    parser = train.cli_parser("Distil a student from a finished teacher run (resumable).")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--teacher", metavar="ARCH:WIDTH|RUN_ID", action="append",
                     help="a finished plain run of the same profile and data (e.g. cnn:1.0), or any finished "
                          "run by its run id (a distilled one, another seed); repeat for an ensemble (the mean "
                          "of their softmax)")
    who.add_argument("--teacher-file", type=Path, metavar="NPZ",
                     help="a committed teacher file (results/teachers/<name>.npz; python -m fer_utils.teachers)")
    parser.add_argument("--view", choices=["tta", "plain", ONLINE, PAIRED], default=None,
                        help="with --teacher-file: the mirror-TTA distribution (default) or the clean image's; "
                             f"with --teacher: {ONLINE} runs the teacher in the loop on each augmented batch "
                             f"(default: once, on the clean images); with either and --augment flip: {PAIRED} "
                             "computes the teacher once on each image and its mirror and trains on the view drawn")
    parser.add_argument("--teacher-registry", type=Path, default=None,
                        help="registry to find the teacher's run in (default: --registry)")
    parser.add_argument("--temperature", type=float, nargs="+", default=[4.0],
                        help="softening temperature; several values: a search (with --alpha's values)")
    parser.add_argument("--alpha", type=float, nargs="+", default=[0.7],
                        help="weight of the teacher's term; several values: a search over T x alpha, "
                             "after the plain twin on the same budget")
    parser.add_argument("--kd-method", choices=list(config.KD_METHODS), default="hinton")
    args = parser.parse_args(argv)
    if args.teacher_file is not None and args.view == ONLINE:
        parser.error(f"--view {ONLINE} runs a teacher's weights in the loop: use --teacher, not --teacher-file")
    if args.teacher is not None and args.view not in (None, ONLINE, PAIRED):
        parser.error(f"--view {args.view} picks a teacher file's targets: use --teacher-file, or --view "
                     f"{ONLINE} or {PAIRED}")
    if args.view == PAIRED and (args.augment != "flip" or args.kd_method != "hinton"):
        parser.error(f"--view {PAIRED} follows the mirror alone: it needs --augment flip and --kd-method hinton")
    view = args.view or "tta"
    ds, setup, common = train.cli_setup(args)
    if args.teacher_file is not None:
        teacher = teachers.read(args.teacher_file, ds)
    else:
        try:
            found = results.find_runs(args.teacher, args.teacher_registry or common["registry_path"],
                                      setup.profile.name, ds.fingerprint())
        except LookupError as exc:
            parser.error(str(exc))
        teacher = found  # one run or an ensemble: distill takes either as a list
    if len(args.temperature) * len(args.alpha) > 1:
        done = search(args.arch, args.width, teacher, setup.profile, args.seed, args.temperature, args.alpha,
                      method=args.kd_method, view=view, **common)
    else:
        done = distill(args.arch, args.width, teacher, setup.profile, args.seed, temperature=args.temperature[0],
                       alpha=args.alpha[0], method=args.kd_method, view=view, **common)
    return 0 if done else 3


if __name__ == "__main__":
    sys.exit(main())
