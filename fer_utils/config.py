"""Profiles (``smoke`` / ``full``) and the output locations a notebook or run writes to.

``FER_PROFILE`` picks the profile; unset, it is ``full`` when a real FER2013 is
found and ``smoke`` on the synthetic default. Only the full profile on real data
writes the committed ``figures/``, ``results/`` and ``report.md``; everything
else goes under ``build/``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import paths


@dataclass(frozen=True)
class Profile:
    name: str
    #: at most this many Training images (None: all), drawn per class in proportion
    train_limit: int | None
    #: at most this many images of each test split (None: all)
    eval_limit: int | None
    #: the epoch budget (``plateau``: the most epochs)
    epochs: int
    batch_size: int
    #: ``plateau`` schedule only: EarlyStopping / ReduceLROnPlateau patience in epochs
    patience: int
    lr_patience: int
    #: the peak (``plateau``: the starting) learning rate
    learning_rate: float = 1e-3
    #: ``wsd`` / ``cosine``: a budget decided up front (:mod:`fer_utils.schedule`); ``plateau``: the
    #: first recipe (LR / 5 after ``lr_patience`` epochs without a better validation accuracy, stop
    #: after ``patience``), kept so its rows stay reproducible
    schedule: str = "plateau"
    warmup: int = 2
    decay_frac: float = 0.2
    #: what picks the best epoch: ``holdout``, a fixed 10 % of Training (the rest trains), or ``public``,
    #: PublicTest with all of Training training (the original study's protocol; PublicTest is then no
    #: longer an unseen test, PrivateTest still is)
    validation: str = "holdout"
    #: the augmentation's strength (:data:`AUGMENTS`): ``standard``, the recipe every earlier run used,
    #: ``light``, half its rotation, translation and zoom, or ``flip``, the mirror alone
    augment: str = "standard"

    def lr_schedule(self):
        """The budgeted schedule (None for ``plateau``)."""
        from .schedule import Schedule

        if self.schedule == "plateau":
            return None
        # a budget shorter than the warm-up (a one-epoch test run) warms up for less
        return Schedule(self.schedule, self.epochs, self.learning_rate, min(self.warmup, self.epochs - 1),
                        self.decay_frac)


#: the augmentations (``Profile.augment``): horizontal flip plus at most this rotation (a fraction of a full
#: turn, Keras' ``RandomRotation`` factor: 0.05 is 18 degrees), translation and zoom (fractions of the image).
#: ``light`` exists because the standard one underfits at our budgets (2026-12-07: the HW3 CNN after 200
#: epochs classified only 69.8 % of its own training images right, 4 points above its validation accuracy)
AUGMENTS = {"standard": {"rot": 0.05, "trans": 0.1, "zoom": 0.1},
            "light": {"rot": 0.025, "trans": 0.05, "zoom": 0.05},
            "flip": {"rot": 0.0, "trans": 0.0, "zoom": 0.0}}


def augment_text(augment: str = "standard") -> str:
    """How a recipe string names an augmentation (:data:`AUGMENTS`): ``aug:flip,rot0.05,trans0.1,zoom0.1``."""
    if augment not in AUGMENTS:
        raise ValueError(f"unknown augmentation {augment!r}; expected one of {', '.join(AUGMENTS)}")
    a = AUGMENTS[augment]
    return f"aug:flip,rot{a['rot']:g},trans{a['trans']:g},zoom{a['zoom']:g}"


def augment_of(recipe: str) -> str | None:
    """The augmentation (a key of :data:`AUGMENTS`) a registry ``recipe`` was trained with; None where it
    names none of them."""
    parts = str(recipe).split("|")
    return next((k for k in AUGMENTS if augment_text(k) in parts), None)

#: the validation protocols (``Profile.validation``) and the run tag of each but the default
VALIDATIONS = {"holdout": "", "public": "vpub"}

#: how a budgeted recipe string names each validation protocol
VALIDATION_PARTS = {"holdout": "val10%", "public": "valPublicTest"}


def validation_of(recipe: str) -> str:
    """The validation protocol a registry ``recipe`` was trained with (``holdout`` where it names none)."""
    parts = str(recipe).split("|")
    return next((k for k, v in VALIDATION_PARTS.items() if v in parts), "holdout")


#: training precisions (Keras dtype policies) and the short name runs and recipes carry ("" for none)
PRECISIONS = {"float32": "", "mixed_bfloat16": "bf16"}

#: distillation methods and the run tag prefix each writes (``hinton``: softened student matched to
#: the softened teacher, T²-scaled, plus label cross-entropy; ``mix``: the student fitted to a mix of
#: softened teacher and label, the first method this project ran, kept so its rows stay reproducible)
KD_METHODS = {"hinton": "kdh", "mix": "kd"}
#: what a student learns from a committed teacher file (:mod:`fer_utils.teachers`): the mirror-averaged
#: distribution or the clean image's
KD_TARGET_VIEWS = ("tta", "plain")
#: ``fer_utils.distill``'s view for a teacher run in the loop, on each augmented batch the student sees
KD_ONLINE_VIEW = "online"
#: ``fer_utils.distill``'s view for the mirror augmentation alone (``--augment flip``): the teacher's
#: distributions on each image and on its mirror, computed once, and the student's target on each step
#: the one of the view it was shown (:class:`fer_utils.recipe.MirrorPaired`): what a teacher in the loop
#: would give, without its forward pass per step
KD_PAIRED_VIEW = "paired"
#: every view a distilled run's tag may name
KD_VIEWS = (*KD_TARGET_VIEWS, KD_ONLINE_VIEW, KD_PAIRED_VIEW)
#: the precision a teacher in the loop computes in, by architecture, where the machine has native
#: bfloat16 (``benchmarks/teacher_precision.py``, compiled forward passes of one batch on a CPU with
#: AMX): bfloat16 where not named (the HW3 CNN ~4x, the seed MobileNet ~3x faster than in float32),
#: float32 where bfloat16 measured slower (IRNet ~1.5x). On a CPU without native bfloat16 every
#: teacher computes in float32 (bfloat16 measured 1.05x slower for the HW3 CNN, 3x for the MobileNet)
TEACHER_POLICY = {"irnet": "float32"}


def teacher_policy(arch: str, native_bfloat16: bool = True) -> str:
    """The Keras dtype policy a teacher of ``arch`` runs in the loop with (:data:`TEACHER_POLICY`);
    float32 for every architecture where the machine has no native bfloat16
    (:func:`fer_utils.runs.native_bfloat16`)."""
    return TEACHER_POLICY.get(arch, "mixed_bfloat16") if native_bfloat16 else "float32"

#: a quantisation-aware fine-tune (:mod:`fer_utils.qat`): epochs, the peak of its cosine schedule,
#: and whether BatchNorm is frozen. Of three fine-tunes of the 60-epoch seed MobileNet on kmeans-3
#: (peak 3e-4; 3e-5; 3e-5 with BatchNorm frozen: ``results/qat.csv``) 3e-5 with BatchNorm trained had
#: the best validation accuracy; all three ended within 0.5 points of the untuned file on the tests
QAT_EPOCHS, QAT_PEAK_LR, QAT_FREEZE_BN = 3, 3e-5, False
#: the peak of the first fine-tunes, whose run tags carry no ``-lr<peak>``; any other peak's do
QAT_UNTAGGED_LR = 3e-4
#: a fine-tune with a teacher run in the loop (``--teacher``): Hinton's temperature and weight, those
#: the distillation search chose for the IRNet students (``results/kd_search.csv``)
QAT_KD_TEMPERATURE, QAT_KD_ALPHA = 2.0, 0.5

#: the epoch budgets of the training-budget study; the longest is the headline budget, the
#: others are decays branched from its stable phase (:func:`fer_utils.schedule.Schedule.decay_start`);
#: 40 is the sweeps' budget (below)
EPOCH_BUDGETS = (15, 30, 40, 60, 120, 200)

#: the width sweeps' epoch budget per profile: one budget for every family, so Q2-Q4 compare like
#: with like. 40 epochs: every width of both families and our design at the throughput each
#: measured on this project's CPU was ~13 CPU hours, plus two more seeds at three sizes per family,
#: inside the ~15 hours the sweep may take; 60 would be ~20. By the wall time per epoch the first
#: recipe's rows measured (``results.sweep_cost``, evaluation and a busy machine included) the
#: estimate is higher: the report states it (``results.sweep_todo``)
SWEEP_EPOCHS = {"full": 40, "smoke": 2}

#: an epoch's wall time beside another training run on this project's 2 cores against alone: a model
#: that keeps both cores busy gets half of them (IRNet w1 2.0x, seed MobileNet 1.25-2.0x, CNN w0.125
#: 2.3x beside its twin; a small depthwise model 1.0x: benchmarks/README.md). The sweep's
#: estimates scale a time measured alone by it when runs train two at a time
SHARED_SLOWDOWN = 2.0

#: the sizes trained with more seeds (``sweep --noise``), per family: the three cheapest inside the
#: range where the two families overlap (13,099 to 327,104 parameters), where Q4 compares them
NOISE_POINTS = {"mobilenet": (0.5, 0.7, 1.0), "cnn": (0.0625, 0.125, 0.25)}
NOISE_SEEDS = (1, 2)


def sweep_epochs(profile: Profile) -> int:
    """The sweeps' epoch budget in ``profile`` (its own budget where none is set)."""
    return SWEEP_EPOCHS.get(profile.name, profile.epochs)


@dataclass(frozen=True)
class ByteBudget:
    """A limit on the whole deliverable folder (``du --apparent-size --bytes``) and the PrivateTest
    accuracy a deliverable under it aims at (None: the assignment set none)."""

    limit: int
    target: float | None = None


#: the original study's PrivateTest accuracy per seed model (MobileNet: its own weights scored on
#: this data; the HW3 CNN: its Kaggle private score): what a headline run on the budget aims at
HEADLINE_TARGETS = {"mobilenet": 0.634, "cnn": 0.674}
#: the model whose training budget is studied (``fer_utils.budget``; notebook 03)
BUDGET_STUDY_MODEL = ("mobilenet", 1.0)

#: the assignment's two limits on the deliverable folder (weights + code)
ASSIGNMENT_LIMITS = {"strong": ByteBudget(225_000), "simple": ByteBudget(650_000)}
#: the budgets a deliverable is chosen for (notebook 04) and their PrivateTest targets
DELIVERABLE_BUDGETS = {"strong": ByteBudget(225_000, 0.715), "tiny": ByteBudget(80_000, 0.66)}

PROFILES = {
    "smoke": Profile("smoke", train_limit=1200, eval_limit=300, epochs=2, batch_size=64, patience=2, lr_patience=1,
                     schedule="wsd", warmup=1, learning_rate=3e-3),
    "full": Profile("full", train_limit=None, eval_limit=None, epochs=EPOCH_BUDGETS[-1], batch_size=128, patience=10,
                    lr_patience=4, schedule="wsd", warmup=2, learning_rate=3e-3),
    # the first recipe, as every row before the budgeted schedule was trained
    "full-plateau": Profile("full", train_limit=None, eval_limit=None, epochs=60, batch_size=64, patience=10,
                            lr_patience=4),
}


def get_profile(name: str | None = None) -> Profile:
    """The named profile, else ``FER_PROFILE``, else full on real data and smoke on synthetic."""
    from . import data

    name = name or os.environ.get("FER_PROFILE") or None
    if name is None:
        name = "smoke" if data.discover(verbose=False)[1] is None else "full"
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; expected one of {', '.join(PROFILES)}") from None


def per_profile(profile: Profile, full, smoke):
    """``full`` in the full profiles, ``smoke`` in the smoke profile: a notebook's cheaper choice
    (fewer codecs, say) for CI, where only the code paths matter, not the numbers."""
    return smoke if profile.name == "smoke" else full


@dataclass
class Setup:
    """What a notebook needs: the profile, whether outputs are committed, and where they go."""

    profile: Profile
    synthetic: bool
    data_label: str
    figures: Path
    results: Path
    report: Path

    @property
    def committed(self) -> bool:
        return self.figures == paths.FIGURES_DIR

    def caption(self) -> str:
        return f"data: {self.data_label} · profile: {self.profile.name}"


_CURRENT: Setup | None = None


def setup(profile: str | None = None, dataset=None) -> Setup:
    """Fix the profile and output folders for this process; ``save_fig`` and the registry read it."""
    global _CURRENT
    from . import data

    prof = get_profile(profile)
    if dataset is not None:
        synthetic, label = dataset.synthetic, dataset.label
    else:
        kind, path = data.discover(verbose=False)
        synthetic = path is None
        label = (data.synthetic_label(data.SYNTHETIC_DEFAULT_N, data.SYNTHETIC_DEFAULT_SEED)
                 if synthetic else f"FER2013 ({path.name})")
    out = paths.output_dirs(committed=prof.name == "full" and not synthetic)
    for key in ("figures", "results"):
        out[key].mkdir(parents=True, exist_ok=True)
    _CURRENT = Setup(prof, synthetic, label, out["figures"], out["results"], out["report"])
    return _CURRENT


def add_cli_arguments(parser) -> None:
    """``--profile`` and ``--registry``, which every command that writes results takes."""
    from pathlib import Path

    parser.add_argument("--profile", choices=list(PROFILES), default=None)
    parser.add_argument("--registry", type=Path, default=None, help="results registry (default: <results>/runs.csv)")


def from_cli(args):
    """(data, setup, registry path) of a command line parsed with :func:`add_cli_arguments`: the data
    loaded, the setup fixed for its profile, the registry it names or the setup's."""
    from . import data

    ds = data.load()
    fixed = setup(args.profile, ds)
    return ds, fixed, args.registry or fixed.results / "runs.csv"


def current() -> Setup:
    """The setup fixed by :func:`setup` (made with the defaults on first use)."""
    return _CURRENT if _CURRENT is not None else setup()
