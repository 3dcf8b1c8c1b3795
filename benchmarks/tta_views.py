"""Benchmark: test-time augmentation beyond the mirror. Do shifted copies of each face raise accuracy?

    python benchmarks/tta_views.py                        # the committed deliverable folders (deliverables.csv)
    python benchmarks/tta_views.py --files a.kmeans-4 b.int8 --sizes 2

The deliverable ships mirror TTA (``predict.MIRROR_TTA``): each image's softmax is averaged with its
left-right mirror's. This script measures richer view sets on both test splits, for each file and for
each folder (its files' outputs averaged, as ``predict`` does):
- ``cross<s>``: the image and its mirror, each also shifted by ``s`` pixels up, down, left and right
  (10 views).
- ``box<s>``: the image and its mirror, each also shifted by ``s`` pixels in the 8 directions
  (18 views).

A shifted view repeats the edge pixels; training augments with shifts of up to 10 %, so the views are
in distribution. Whether a view set becomes the default rests on **PublicTest**, the split the
deliverable is chosen on; PrivateTest only reports. The script prints a Markdown table; it is a
measurement, not a test.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils import compress, data, deliverable, paths, predict
from fer_utils.measure import file_digest

SPLITS = ("PublicTest", "PrivateTest")


def shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``x`` (n, 48, 48, 1) moved ``dy`` rows down and ``dx`` columns right, the edge pixels repeated."""
    pad = max(abs(dy), abs(dx))
    if pad == 0:
        return x
    p = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    h, w = x.shape[1:3]
    return np.ascontiguousarray(p[:, pad - dy:pad - dy + h, pad - dx:pad - dx + w])


def view_sets(sizes) -> dict:
    """Each view set's shifts, by name (every shift is also mirrored)."""
    sets = {"mirror": [(0, 0)]}
    for s in sizes:
        sets[f"cross{s}"] = [(0, 0), (s, 0), (-s, 0), (0, s), (0, -s)]
        sets[f"box{s}"] = [(dy, dx) for dy in (-s, 0, s) for dx in (-s, 0, s)]
    return sets


def outputs(model, x: np.ndarray, shifts) -> dict:
    """Mirror-TTA softmax outputs of ``model`` for each shift of ``x`` (``predict.probabilities``), plus
    ``plain``: the unshifted image alone."""
    plain = predict.probabilities(model, x)
    out = {"plain": plain}
    for dy, dx in shifts:
        out[(dy, dx)] = predict.probabilities(model, shifted(x, dy, dx), mirror=True,
                                              plain=plain if (dy, dx) == (0, 0) else None)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", nargs="+", type=Path, help="codec files forming one folder (default: the committed folders)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 2, 3], help="shift sizes in pixels")
    args = parser.parse_args(argv)
    table = paths.RESULTS_DIR / "deliverables.csv"
    if args.files:
        groups = {"files": args.files}
    else:  # the committed folders, as notebook 04 chose them (results/weights/best-*)
        chosen = deliverable.chosen_files(pd.read_csv(table), paths.RESULTS_DIR) if table.exists() else {}
        groups = {budget: files for budget, (files, _, _) in chosen.items()}
    if not groups:
        print("no deliverable files to measure")
        return 0
    ds = data.load()
    tests = {s: ds.subset(s) for s in SPLITS}
    if any(len(t) == 0 for t in tests.values()):
        print(f"{ds.label}: no labelled PublicTest / PrivateTest rows; nothing to measure")
        return 0
    xs = {s: tests[s].images.astype(np.float32) / 255.0 for s in SPLITS}
    sets = view_sets(args.sizes)
    shifts = sorted({d for v in sets.values() for d in v})
    cache: dict[str, dict] = {}  # by sha256: a file in two folders is measured once
    print(f"data: {ds.label}\n")
    print("| folder | file | split | plain | " + " | ".join(sets) + " |")
    print("|---|---|---|---|" + "---|" * len(sets))
    for name, files in groups.items():
        digests = [file_digest(f) for f in files]
        for f, d in zip(files, digests):
            if d not in cache:
                model = compress.decode(f)
                cache[d] = {s: outputs(model, xs[s], shifts) for s in SPLITS}
        rows = [(f.name, [cache[d]]) for f, d in zip(files, digests)] if len(files) > 1 else []
        rows.append(("folder" if len(files) > 1 else files[0].name, [cache[d] for d in digests]))
        for label, members in rows:
            for s in SPLITS:
                y = tests[s].labels

                def acc(keys):
                    p = predict.mean_probabilities([np.mean([m[s][k] for k in keys], axis=0) for m in members])
                    return float(np.mean(np.argmax(p, axis=1) == y))

                cells = [acc(["plain"])] + [acc(v) for v in sets.values()]
                print(f"| {name} | {label} | {s} | " + " | ".join(f"{c:.4f}" for c in cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
