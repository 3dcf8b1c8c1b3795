"""The learning-rate schedule of a budgeted run: a pure function of the optimizer step.

A run's epoch budget is decided up front and the learning rate follows it:

- linear warm-up over ``warmup`` epochs to ``peak``;
- ``cosine``: from the end of warm-up, half a cosine down to ~0 at the last step;
- ``wsd`` (warm-up / stable / decay): constant ``peak`` until the last ``decay_frac`` of the
  budget, then linearly down to ~0. Until its decay starts a WSD run follows the same
  trajectory whatever its budget, so a shorter budget is a decay *branched* from a checkpoint of
  a longer run's stable phase (:func:`decay_start`), and a run's budget can be extended later.

The rate depends only on the step index, which the optimizer saves with the checkpoint, so a
resumed run sets the same rate at the same step as an uninterrupted one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

KINDS = ("wsd", "cosine")


@dataclass(frozen=True)
class Schedule:
    kind: str
    epochs: int
    peak: float
    warmup: int = 2
    #: WSD only: the share of the budget spent decaying
    decay_frac: float = 0.2

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown schedule {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.epochs < 1 or not 0 <= self.warmup < self.epochs or self.peak <= 0:
            raise ValueError(f"need epochs >= 1, 0 <= warmup < epochs and peak > 0; got {self}")
        if not 0 < self.decay_frac <= 1:
            raise ValueError(f"need 0 < decay_frac <= 1, got {self.decay_frac}")

    def decay_start(self) -> int:
        """The epoch after which the rate leaves its peak (after warm-up for cosine)."""
        if self.kind == "cosine":
            return self.warmup
        return max(self.warmup, self.epochs - max(1, round(self.decay_frac * self.epochs)))

    def lr_at(self, step: int, steps_per_epoch: int) -> float:
        """The rate for optimizer step ``step`` (0-based) of a run with ``steps_per_epoch`` steps an epoch."""
        warm = self.warmup * steps_per_epoch
        total = self.epochs * steps_per_epoch
        if step < warm:
            return self.peak * (step + 1) / warm  # the last warm-up step is at the peak
        start = self.decay_start() * steps_per_epoch
        if step < start:
            return self.peak
        left = max(total - step, 0) / (total - start)  # 1 at the decay's first step, 1/len at the last
        if self.kind == "cosine":
            return self.peak * 0.5 * (1.0 - math.cos(math.pi * left))
        return self.peak * left

    def tag(self) -> str:
        """What a run's name carries: kind and budget (``wsd200``, ``cos30``)."""
        return f"{'cos' if self.kind == 'cosine' else self.kind}{self.epochs}"

    def describe(self) -> str:
        """What a registry row's recipe carries."""
        decay = f"/decay{self.decay_frac:g}" if self.kind == "wsd" else ""
        return f"{self.kind}{self.epochs}/warm{self.warmup}{decay}/peak{self.peak:g}"
