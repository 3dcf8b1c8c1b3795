"""Quantisation-aware fine-tuning: a few epochs with the codec's grid in the forward pass.

    python -m fer_utils.qat --run <run id> --codec kmeans-4 [--epochs 3 --lr 3e-4]

A trained model written with a 3-4-bit codec loses accuracy because every kernel is snapped to
a few values after training. Here the snapped kernels are trained on: the forward and backward
pass of every step run on the kernels *on the codec's grid*, and the step's update is applied to
a float copy of them (the "shadow" weights), which is snapped again for the next step: the
straight-through estimator (gradients taken at the quantised weights, applied to the float
ones). Between steps, and so in validation, checkpoints and the final model, the network holds
the snapped kernels, and at every epoch end its other weights (biases, BatchNorm) are rounded to
float16, as every codec stores them: the result sits exactly on the codec's grid, and writing it
with that codec loses nothing more (``compress.decode(compress.encode(m)) == m``).

The grids (:mod:`fer_utils.compress`):

* ``int8``: per output channel, ``q * scale`` with ``scale = max|w| / 127`` in float16;
* ``kmeans-N`` (and ``kmeans-N-dw8``, depthwise kernels in int8): per kernel a codebook of at most
  2**N float16 values. It starts as the codec's own k-means of the trained kernel and then follows
  the shadow weights with one Lloyd step per training step (each value moves to the mean of the
  shadow weights nearest to it), so the codebook is trained too.

A fine-tune is an ordinary resumable run of the training engine (the source's augmentation unless
``--augment`` names another, a short cosine schedule from a low peak, no warm-up) with the run tag ``qat-<codec>`` followed by what names the
source run; its shadow weights and codebooks are kept in the run folder (``qat/e<epoch>.npz``) so a
resumed run goes on with the same ones.
"""
from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np

from . import compress, config, data, registry, runs

#: the codecs whose grid a fine-tune can train on (the others: fold BatchNorm first, prune first, or
#: store float16 anyway)
SUPPORTED = ("int8", "kmeans-N", "kmeans-N-dw8")
EPOCHS, PEAK_LR, FREEZE_BN = config.QAT_EPOCHS, config.QAT_PEAK_LR, config.QAT_FREEZE_BN


def check_codec(codec: str) -> tuple[str, int]:
    """(base codec, bits) of a codec a fine-tune can train on; a clear error for the others."""
    pruned, base, bits = compress._parse_codec(codec)
    if pruned or base in ("fp16", "int8-fold"):
        raise ValueError(f"quantisation-aware fine-tuning supports {', '.join(SUPPORTED)}; not {codec!r}")
    return base, bits


class GridProjector:
    """Snaps each kernel of ``model`` onto ``codec``'s grid; k-means codebooks are kept per kernel and
    follow the weights they are given (one Lloyd step per call)."""

    def __init__(self, model, codec: str):
        self.base, self.bits = check_codec(codec)
        slots = compress.weight_slots(model)
        self.kernels = [(layer, var) for layer, var, role in slots if compress.is_kernel(layer, role)]
        self.others = [var for layer, var, role in slots if not compress.is_kernel(layer, role)]
        #: float32 codebook per kernel index (k-means kernels only)
        self.books: dict[int, np.ndarray] = {}

    def _int8(self, layer) -> bool:
        return self.base == "int8" or compress._int8_here(self.base, layer)

    def project(self, i: int, w: np.ndarray) -> np.ndarray:
        """Kernel ``i``'s weights ``w`` on the grid (the nearest grid value of each)."""
        layer = self.kernels[i][0]
        w = np.asarray(w, np.float32)
        if self._int8(layer):
            axis = compress.channel_axis(layer)
            q, scale = compress.quantize_int8(w, axis)
            return compress.dequantize_int8(q, scale, axis)
        v = w.ravel()
        if i not in self.books:
            book, _ = compress.kmeans_1d(v, 2 ** self.bits)
        else:  # one Lloyd step from the current codebook
            book = np.unique(compress.lloyd_step(v, self.books[i]).astype(np.float16))
        self.books[i] = book.astype(np.float32)
        return self.books[i][compress._nearest(v, self.books[i])].reshape(w.shape)


class QuantizeAware(keras.callbacks.Callback):
    """The straight-through fine-tune as a callback on the network ``net`` (inside the training wrapper).

    ``state_dir``: where the shadow weights and codebooks are kept per epoch (``e<epoch>.npz``); the
    run's ``state.json`` beside it says which epoch a resumed run continues after.
    """

    def __init__(self, net, codec: str, state_dir: Path | None = None):
        super().__init__()
        self.net, self.projector = net, GridProjector(net, codec)
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.shadow: list[np.ndarray] = []
        self._snapped: list[np.ndarray] = []

    def _resume_epoch(self) -> int:
        import json

        state = self.state_dir.parent / "state.json" if self.state_dir is not None else None
        return int(json.loads(state.read_text())["epoch"]) if state is not None and state.exists() else 0

    def on_train_begin(self, logs=None):
        epoch = self._resume_epoch()
        saved = self.state_dir / f"e{epoch:04d}.npz" if self.state_dir is not None else None
        if epoch and saved is not None and saved.exists():
            with np.load(saved) as z:
                self.shadow = [z[f"shadow{i}"] for i in range(len(self.projector.kernels))]
                self.projector.books = {i: z[f"book{i}"] for i in range(len(self.projector.kernels))
                                        if f"book{i}" in z}
        else:  # a fresh fine-tune (or one whose shadow weights were lost: it goes on from the grid)
            self.shadow = [np.asarray(var.numpy(), np.float32) for _, var in self.projector.kernels]
        self._snap()

    def _snap(self) -> None:
        self._snapped = [self.projector.project(i, s) for i, s in enumerate(self.shadow)]
        for (_, var), w in zip(self.projector.kernels, self._snapped):
            var.assign(w)

    def on_train_batch_end(self, batch, logs=None):
        for i, (_, var) in enumerate(self.projector.kernels):
            self.shadow[i] += np.asarray(var.numpy(), np.float32) - self._snapped[i]  # this step's update
        self._snap()

    def on_epoch_end(self, epoch, logs=None):
        for var in self.projector.others:  # what every codec stores them as
            var.assign(np.asarray(var.numpy(), np.float32).astype(np.float16).astype(np.float32))
        if self.state_dir is None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        arrays = {f"shadow{i}": s for i, s in enumerate(self.shadow)}
        arrays.update({f"book{i}": b for i, b in self.projector.books.items()})
        tmp = self.state_dir / "tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, self.state_dir / f"e{epoch + 1:04d}.npz")
        for old in self.state_dir.glob("e*.npz"):  # keep this epoch's and the one before
            if int(old.stem[1:]) < epoch:
                old.unlink()


def on_grid(model, codec: str) -> bool:
    """True when writing ``model`` with ``codec`` and reading it back gives exactly its weights."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w"
        compress.encode(model, path, codec)
        back = compress.decode(path)
    return all(np.array_equal(a, b) for a, b in zip(model.get_weights(), back.get_weights()))


def tag(source: dict, codec: str, peak_lr: float = PEAK_LR, freeze_bn: bool = FREEZE_BN, teacher: dict | list | None = None,
        temperature: float = config.QAT_KD_TEMPERATURE, alpha: float = config.QAT_KD_ALPHA,
        augment: str | None = None) -> str:
    """The fine-tune's run tag: ``qat-<codec>``, ``-fbn`` with BatchNorm frozen, ``-lr<peak>`` where the
    peak is not ``config.QAT_UNTAGGED_LR``, ``-aug<name>`` where ``augment`` is not the source's own
    augmentation, ``-teacher-<run>-T<t>-a<alpha>`` with a teacher run in the loop, and whatever follows
    the source run's common prefix (its schedule, tag and precision), so fine-tunes of different runs, or
    done otherwise, never share a folder (read back by ``results.qat_spec``)."""
    from . import distill, results

    head = runs.run_id(source["arch"], float(source["width"]), source["profile"], int(source["seed"]),
                       source["data_fingerprint"])
    rest = source["run_id"][len(head):] if source["run_id"].startswith(head) else ""
    lr = "" if peak_lr == config.QAT_UNTAGGED_LR else f"-{runs.lr_tag(peak_lr)}"
    aug = "" if augment is None or augment == results.augment_name(source) else f"-aug{augment}"
    kd = (f"-teacher-{results.teachers_name(distill.teacher_runs(teacher))}-T{temperature:g}-a{alpha:g}"
          if teacher is not None else "")
    return f"qat-{codec}{'-fbn' if freeze_bn else ''}{lr}{aug}{kd}{rest}"


def fine_tune(source: dict, codec: str, profile: str | config.Profile, epochs: int = EPOCHS,
              peak_lr: float = PEAK_LR, dataset=None, freeze_bn: bool = FREEZE_BN, teacher: dict | list | None = None,
              temperature: float = config.QAT_KD_TEMPERATURE, alpha: float = config.QAT_KD_ALPHA,
              augment: str | None = None, **kwargs) -> dict | None:
    """Fine-tune a finished run (a registry row) on ``codec``'s grid; the fine-tune's result (its
    registry row), or None when a deadline stopped it (the same call resumes it).

    ``freeze_bn``: BatchNorm layers keep the source's statistics and scales (inference mode, not
    trained), so the short fine-tune moves only the kernels on their grid and the biases.
    ``teacher``: a finished run (a registry row; a list of them: an ensemble) run in the loop on every augmented batch, as
    ``fer_utils.distill`` does with ``view="online"``: the fine-tune then fits Hinton's loss at
    ``temperature`` and ``alpha`` instead of the labels alone, so a distilled source keeps what its
    teacher gave it while its kernels settle on the grid.
    ``augment``: the augmentation of the fine-tune's batches (a key of ``config.AUGMENTS``); None: the
    source's own (``results.augment_name``), so a run trained on ``flip`` is fine-tuned on ``flip`` too. Another
    one (``flip`` for a source trained on ``standard``) is named in the tag: a way to move a long run to an
    augmentation that measured better without training it again."""
    from . import distill, results, train

    check_codec(codec)
    prof = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
    augment = results.augment_name(source) if augment is None else augment
    config.augment_text(augment)  # an unknown name is a clear error
    # the source's validation protocol picks the fine-tune's best epoch too (``valPublicTest``: PublicTest)
    prof = replace(prof, epochs=epochs, schedule="cosine", warmup=0, learning_rate=peak_lr, augment=augment,
                   validation=config.validation_of(source.get("recipe", "")))
    ds = dataset if dataset is not None else data.load()
    for run, role in ((source, "run"), *((t, "teacher run") for t in distill.teacher_runs(teacher or []))):
        if run["data_fingerprint"] != ds.fingerprint():
            raise ValueError(f"{role} {run['run_id']} was trained on other data (fingerprint "
                             f"{run['data_fingerprint']}, this data {ds.fingerprint()})")
    targets = None
    if teacher is not None:
        limit = kwargs.get("train_limit")
        y = runs.prepare(ds, replace(prof, train_limit=limit or prof.train_limit), int(source["seed"]))["train"][1]
        targets = distill.online_targets(teacher, y, temperature, alpha, kwargs.get("runs_root"))
    start = runs.load_trained(source, kwargs.get("runs_root"))
    if freeze_bn:
        for layer in start.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False  # Keras 3: inference mode, moving statistics kept
    return train.train(source["arch"], float(source["width"]), prof, int(source["seed"]), dataset=ds,
                       tag=tag(source, codec, peak_lr, freeze_bn, teacher, temperature, alpha, augment), targets=targets,
                       build_model=lambda: start,
                       callbacks=lambda net, run_dir: [QuantizeAware(net, codec, run_dir / "qat")], **kwargs)


def pairs(setup, dataset, prepared, smoke_source, codec: str, smoke_epochs: int = 1):
    """Notebook 04's fine-tune table. In the smoke profile the finished run ``smoke_source`` (arch,
    width) is fine-tuned on ``codec`` here; in any other profile the fine-tunes come from the command
    line. Every fine-tune in the registry and its source are then written with the fine-tune's codec
    (``codecs.csv``, cached; the fine-tune with the codec's ``-bn2`` variant too, for the byte budgets)
    and paired (``results.qat_pairs``), written to ``qat.csv`` and returned."""
    from . import measure, results

    reg = setup.results / "runs.csv"
    table = setup.results / "codecs.csv"
    if setup.profile.name == "smoke":
        found = results.find_run(f"{smoke_source[0]}:{smoke_source[1]}", reg, setup.profile.name,
                                 dataset.fingerprint())
        if found is not None:
            fine_tune(found, codec, setup.profile, smoke_epochs, dataset=dataset, registry_path=reg, verbose=2)
    every = registry.read(reg)
    every = every[every.profile == setup.profile.name]
    tuned = every[every.recipe.map(results.is_qat)].sort_values("timestamp").drop_duplicates("run_id", keep="last")
    for run in tuned.to_dict("records"):  # every fine-tune, whatever its source's budget
        tuned_codec = results.qat_parts(results.recipe_tag_of(run["recipe"]))[0]
        source = every[every.run_id == results.qat_source(run["run_id"])]
        for r, codecs in ([(run, [tuned_codec, tuned_codec + compress.BN2])]  # bn2: the same grid, fewer bytes
                          + [(s, [tuned_codec]) for s in source.tail(1).to_dict("records")]):
            if runs.has_weights(r["run_id"]):
                measure.measure_codecs(r, codecs, prepared, table)
    out = results.qat_pairs(every, measure.read_table(table))
    out.to_csv(setup.results / "qat.csv", index=False)
    return out


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="the run id of a finished run in the registry")
    parser.add_argument("--codec", required=True, help="int8, kmeans-N or kmeans-N-dw8")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--lr", type=float, default=PEAK_LR, help="the cosine schedule's peak")
    parser.add_argument("--freeze-bn", action=argparse.BooleanOptionalAction, default=FREEZE_BN,
                        help="keep BatchNorm's statistics and scales fixed")
    parser.add_argument("--teacher", metavar="ARCH:WIDTH|RUN_ID", action="append", default=None,
                        help="a finished plain run (e.g. cnn:1.0), or any finished run by its run id, run in the "
                             "loop: Hinton's loss instead of the labels alone; repeat for an ensemble")
    parser.add_argument("--augment", choices=list(config.AUGMENTS), default=None,
                        help="the fine-tune's augmentation (default: the source run's own)")
    parser.add_argument("--temperature", type=float, default=config.QAT_KD_TEMPERATURE, help="with --teacher")
    parser.add_argument("--alpha", type=float, default=config.QAT_KD_ALPHA, help="with --teacher: its term's weight")
    config.add_cli_arguments(parser)
    args = parser.parse_args(argv)
    ds, setup, reg = config.from_cli(args)
    rows = [r for r in registry.read(reg).to_dict("records") if r["run_id"] == args.run]
    if not rows:
        parser.error(f"no run {args.run!r} in {reg}")
    teacher = None
    if args.teacher is not None:
        from . import results

        try:
            found = results.find_runs(args.teacher, reg, setup.profile.name, ds.fingerprint())
        except LookupError as exc:
            parser.error(str(exc))
        teacher = found  # one run or an ensemble: fine_tune takes either as a list
    done = fine_tune(rows[-1], args.codec, setup.profile, args.epochs, args.lr, ds, args.freeze_bn, teacher,
                     args.temperature, args.alpha, args.augment, registry_path=reg, verbose=2, progress=True)
    return 0 if done else 3


if __name__ == "__main__":
    sys.exit(main())
