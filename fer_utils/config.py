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
    epochs: int
    batch_size: int
    #: EarlyStopping / ReduceLROnPlateau patience in epochs
    patience: int
    lr_patience: int
    learning_rate: float = 1e-3


#: training precisions (Keras dtype policies) and the short name runs and recipes carry ("" for none)
PRECISIONS = {"float32": "", "mixed_bfloat16": "bf16"}

#: distillation methods and the run tag prefix each writes (``hinton``: softened student matched to
#: the softened teacher, T²-scaled, plus label cross-entropy; ``mix``: the student fitted to a mix of
#: softened teacher and label, the first method this project ran, kept so its rows stay reproducible)
KD_METHODS = {"hinton": "kdh", "mix": "kd"}

PROFILES = {
    "smoke": Profile("smoke", train_limit=1200, eval_limit=300, epochs=2, batch_size=64, patience=2, lr_patience=1),
    "full": Profile("full", train_limit=None, eval_limit=None, epochs=60, batch_size=64, patience=10, lr_patience=4),
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


def current() -> Setup:
    """The setup fixed by :func:`setup` (made with the defaults on first use)."""
    return _CURRENT if _CURRENT is not None else setup()
