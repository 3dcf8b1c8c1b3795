"""Benchmark: a teacher's forward pass in float32 and in bfloat16, the cost of a teacher in the loop.

    python benchmarks/teacher_precision.py [--archs cnn:1.0 irnet:1.2 mobilenet:1.0] [--repeats 20]

A teacher run in the loop (``fer_utils.distill``, view ``online``) does one inference forward pass per
training batch; ``fer_utils.config.teacher_policy`` picks each architecture's precision for it. This
times the compiled forward pass (``predict_on_batch``) of one batch of 128 random 48x48 images for each
model in both precisions, after three warm-up calls, and prints a Markdown table with the ratio.
"""
from __future__ import annotations

import argparse
import sys
import time

PRECISIONS = ("float32", "mixed_bfloat16")
BATCH = 128


def measure(arch: str, width: float, precision: str, repeats: int) -> float:
    """Milliseconds per compiled forward pass of one batch."""
    import keras
    import numpy as np

    from fer_utils import models

    keras.mixed_precision.set_global_policy(precision)
    try:
        model = models.build(arch, width)
        x = np.random.default_rng(0).random((BATCH, 48, 48, 1), dtype=np.float32)
        for _ in range(3):
            model.predict_on_batch(x)
        t0 = time.perf_counter()
        for _ in range(repeats):
            model.predict_on_batch(x)
        return 1000 * (time.perf_counter() - t0) / repeats
    finally:
        keras.mixed_precision.set_global_policy("float32")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", nargs="+", default=["cnn:1.0", "irnet:1.2", "mobilenet:1.0"])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    from fer_utils import config

    print("| model | float32 ms/batch | bfloat16 ms/batch | bfloat16 speed-up | TEACHER_POLICY |")
    print("|---|---|---|---|---|")
    for spec in args.archs:
        arch, width = spec.split(":")
        ms = {p: measure(arch, float(width), p, args.repeats) for p in PRECISIONS}
        print(f"| {spec} | {ms['float32']:.1f} | {ms['mixed_bfloat16']:.1f} | "
              f"{ms['float32'] / ms['mixed_bfloat16']:.2f}x | {config.teacher_policy(arch)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
