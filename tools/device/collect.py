"""Workplace glue for the device tool: pack what a device run made into at most 8 files under $OUT:
meta.tgz (registry, published logs, the driver's process logs, each run's log/state/result) and
weights.tar.part* (the float16 copies of the runs finished here first, then their float32 weights, then the
checkpoints of unfinished runs, within 58 MB).  python tools/device/collect.py OUT"""
import os, sys, tarfile
from pathlib import Path

out = Path(sys.argv[1]).resolve(); root = Path.cwd()
runs = sorted((root / "runs").glob(os.environ.get("COLLECT_GLOB", "*-full-*")))
with tarfile.open(out / "meta.tgz", "w:gz") as t:
    for p in ["results/runs.csv", "results/logs", "runs/_logs"]:
        if (root / p).exists():
            t.add(p)
    for run in runs:
        for f in ("log.csv", "state.json", "result.json"):
            if (run / f).exists():
                t.add(str((run / f).relative_to(root)))

items = [(0, root / "results" / "weights" / f"{run.name}.fp16") for run in runs if (run / "result.json").exists()]
for run in runs:
    items.append((1, run / "final.weights.h5") if (run / "result.json").exists() else (2, run / "last.keras"))
items.sort(key=lambda kv: (kv[0], kv[1].stat().st_size if kv[1].exists() else 0))
budget, used = 58 * 2**20, 0
with tarfile.open("/tmp/weights.tar", "w") as t:
    for _, f in items:
        if f.exists() and used + f.stat().st_size < budget:
            t.add(str(f.relative_to(root))); used += f.stat().st_size
        elif f.exists():
            print("left out:", f.relative_to(root), f.stat().st_size)
print("weights bytes:", used)
os.system(f"cd /tmp && split -b 15m -d weights.tar {out}/weights.tar.part")
