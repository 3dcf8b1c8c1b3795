"""Benchmark: how long the real FER2013 file takes to load (prints the figure; not a test).

    python benchmarks/load_data.py [path]   # default: FER2013_PATH or ../shared/data/fer2013/fer2013.csv.gz
"""
import os
import sys
import time
from pathlib import Path

from fer_utils import data, paths


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FER2013_PATH", paths.SHARED_FER2013))
    if not path.exists():
        print(f"{path}: not found; nothing to measure")
        return 0
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        ds = data.load_path(path)
        times.append(time.perf_counter() - t0)
    print(f"{path.name}: {len(ds):,} rows; load times {', '.join(f'{t:.2f} s' for t in times)}; "
          f"best {min(times):.2f} s ({len(ds) / min(times):,.0f} rows/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
