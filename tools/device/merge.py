"""Workplace glue for the device tool: bring what collect.py packed back into this checkout.

    python tools/device/merge.py FILES_AT      (the folder the device tool copied $OUT to)

Registry rows the device added (run_id and timestamp not here yet) are appended to results/runs.csv
in their order; published logs, each run's log/state/result, the float16 copies, float32 weights and
checkpoints are unpacked in place (runs/ is git-ignored). Prints what it added."""
import csv, io, sys, tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(src):
    src = Path(src)
    with tarfile.open(src / "meta.tgz") as t:
        theirs = t.extractfile("results/runs.csv").read().decode()
        for m in t.getmembers():
            if m.isfile() and m.name != "results/runs.csv":
                t.extract(m, ROOT, filter="data")
    path = ROOT / "results" / "runs.csv"
    mine = path.read_text()
    have = {(r["run_id"], r["timestamp"]) for r in csv.DictReader(io.StringIO(mine))}
    reader = csv.DictReader(io.StringIO(theirs))
    fields = next(csv.reader(io.StringIO(mine)))
    new = [r for r in reader if (r["run_id"], r["timestamp"]) not in have]
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
        for r in new:
            w.writerow({k: r.get(k, "") for k in fields})
            print("row:", r["run_id"], r["backend"], "PublicTest", r["public_acc"], "PrivateTest", r["private_acc"])
    parts = sorted(src.glob("weights.tar.part*"))
    if parts:
        blob = b"".join(p.read_bytes() for p in parts)
        with tarfile.open(fileobj=io.BytesIO(blob)) as t:
            for m in t.getmembers():
                t.extract(m, ROOT, filter="data")
                print("file:", m.name, m.size)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
