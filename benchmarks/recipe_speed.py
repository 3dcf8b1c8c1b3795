"""Benchmark: the real training recipe's speed on this machine, in the current Keras backend.

    python benchmarks/recipe_speed.py [--archs cnn:1.0 mobilenet:1.0 irnet:1.0] [--images 3200]
                                      [--precisions float32 mixed_bfloat16] [--batch-sizes 64 128 256]

Times ``fit`` of the augmenting training wrapper (``fer_utils.recipe.training_model``,
the given batch sizes, Adam) twice on random 48x48 images: the first epoch pays for tracing /
compilation, the second is the steady state. Prints one line per (model, precision)
and a Markdown table. Run it first on any new machine (a GPU especially: with a JIT
backend the first epoch can cost minutes, which decides how long a run budget must be).
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time


def measure(arch: str, width: float, precision: str, n: int, batch_size: int = 64) -> dict:
    import keras
    import numpy as np

    from fer_utils import models, recipe

    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((n, 48, 48, 1), dtype=np.float32)
    y = np.eye(7, dtype=np.float32)[rng.integers(0, 7, n)]
    model = models.build(arch, width)
    wrapper = recipe.training_model(model, 0)
    wrapper.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy", metrics=["accuracy"])
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        wrapper.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
        times.append(time.perf_counter() - t0)
    keras.mixed_precision.set_global_policy("float32")
    return {"backend": keras.backend.backend(), "model": f"{arch}:{width:g}", "precision": precision,
            "first_epoch_s": times[0], "train_img_s": n / times[1], "params": model.count_params(),
            "batch_size": batch_size}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", nargs="+", default=["cnn:1.0", "mobilenet:1.0", "irnet:1.0"])
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument("--images", type=int, default=3200)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64])
    args = parser.parse_args()
    rows = []
    for spec in args.archs:
        arch, width = spec.split(":")
        for precision, bs in itertools.product(args.precisions, args.batch_sizes):
            row = measure(arch, float(width), precision, args.images, bs)
            rows.append(row)
            print(f"{row['backend']} {row['model']} {precision} batch {bs}: first epoch {row['first_epoch_s']:.1f} s, "
                  f"then {row['train_img_s']:.0f} training img/s", flush=True)
    print("\n| backend | model | precision | batch | first epoch (s, incl. compile) | training img/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['model']} | {r['precision']} | {r['batch_size']} | {r['first_epoch_s']:.1f} "
              f"| {r['train_img_s']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
