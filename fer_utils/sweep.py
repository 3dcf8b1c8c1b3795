"""Every sweep point in turn, resumable: ``python -m fer_utils.sweep --profile full``.

The sweep covers the MobileNet and CNN width families (the parameter-accuracy
scatter plots) and our design. Each point is one :func:`fer_utils.train.train`
run, so an interrupted sweep picks up where it stopped and finished points are
read back. Safe under ``nohup``: one progress line per epoch and per run.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import config, data, models


#: one precision per family, so every point of a family shares one recipe on any machine:
#: bfloat16 pays for the plain CNN's large convolutions and costs the depthwise models
#: (``benchmarks/recipe_speed.py``; table in README)
FAMILY_PRECISION = {"cnn": "mixed_bfloat16"}


def precision_for(arch: str) -> str:
    return FAMILY_PRECISION.get(arch, "float32")


def sweep_points(families: list[str] | None = None) -> list[tuple[str, float]]:
    """(arch, width) pairs, cheapest first within each family."""
    points = {
        **{f: [(f, w) for w in ws] for f, ws in models.FAMILY_WIDTHS.items()},
        "irnet": [("irnet", w) for w in models.IRNET_WIDTHS],
    }
    families = families or list(points)
    unknown = [f for f in families if f not in points]
    if unknown:
        raise ValueError(f"unknown sweep family {unknown}; expected {list(points)}")
    return [p for f in families for p in points[f]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=list(config.PROFILES), default=None)
    parser.add_argument("--families", nargs="+", default=None, help="mobilenet cnn irnet (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--registry", type=Path, default=None)
    args = parser.parse_args(argv)
    from . import train

    ds = data.load()
    setup = config.setup(args.profile, ds)
    points = sweep_points(args.families)
    t0 = time.perf_counter()
    for i, (arch, width) in enumerate(points, start=1):
        print(f"== sweep point {i}/{len(points)}: {arch} width {width:g} ({setup.profile.name}) "
              f"[{time.perf_counter() - t0:.0f} s elapsed]", flush=True)
        result = train.train(arch, width, setup.profile, args.seed, dataset=ds, verbose=0, progress=True,
                             registry_path=args.registry or setup.results / "runs.csv",
                             precision=precision_for(arch))
        if result is None:
            print(f"== stopped at the deadline (FER_DEADLINE) in point {i}/{len(points)}; rerun to resume",
                  flush=True)
            return 3
        print(f"== done {i}/{len(points)}: {result['run_id']} params {result['params']:,} "
              f"PublicTest {result['public_acc']:.4f} PrivateTest {result['private_acc']:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
