"""Workplace glue for the device tool: pack what a device run made (registry, logs, weights, checkpoints of unfinished runs) into at most 8 files under $OUT."""
import os, sys, tarfile
from pathlib import Path

out = Path(sys.argv[1]); root = Path.cwd()
with tarfile.open(out / "meta.tgz", "w:gz") as t:
    for p in ["results/runs.csv", "results/logs"]:
        if (root / p).exists():
            t.add(p)
    for run in sorted((root / "runs").glob(os.environ.get("COLLECT_GLOB", "*-full-*"))):
        for f in ("log.csv", "state.json", "result.json"):
            if (run / f).exists():
                t.add(str((run / f).relative_to(root)))

def prio(run):
    n = run.name
    if (run / "result.json").exists():
        key = 0 if (n.startswith("cnn-w1-") or n.startswith("irnet") or n.startswith("mobilenet-w1-")) else 1
        return (key, run / "final.weights.h5")
    return (2, run / "last.keras")

items = sorted((prio(r) for r in (root / "runs").glob(os.environ.get("COLLECT_GLOB", "*-full-*"))), key=lambda kv: (kv[0], kv[1].stat().st_size if kv[1].exists() else 0))
budget, used = 58 * 2**20, 0
with tarfile.open("/tmp/weights.tar", "w") as t:
    for _, f in items:
        if f.exists() and used + f.stat().st_size < budget:
            t.add(str(f.relative_to(root))); used += f.stat().st_size
        elif f.exists():
            print("left out:", f.relative_to(root), f.stat().st_size)
print("weights bytes:", used)
os.system(f"cd /tmp && split -b 15m -d weights.tar {out}/weights.tar.part")
