"""Workplace glue for the device tool: train several runs side by side on one lent GPU, each on the
longest WSD budget that still fits before a deadline.

Every job starts on the longest budget (200 epochs). A WSD run keeps stable-phase snapshots at the
decay starts of the shorter budgets (``runs.snapshot_epochs``), so when the measured epoch time says
the longest budget cannot finish in time, the job is stopped and restarted on the longest shorter
budget whose snapshot exists and whose decay fits: that run branches from the snapshot
(``runs.branch_source``) and trains only its decay. A job that fits nowhere runs on to the deadline
and stays resumable.

    python tools/device/gpu_runs.py --deadline <epoch s> [--budgets 200 120 60] [--extra ...] JOBS.txt

JOBS.txt: one job per line, ``NAME module args…`` (``train --arch cnn --width 1``); ``--epochs`` is added.
Process logs go to ``runs/_logs/NAME.log``.
"""
import argparse, csv, os, re, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from fer_utils import budget, config  # noqa: E402  (import no Keras)

MARGIN, TAIL_S, POLL_S = 1.15, float(os.environ.get("FER_GPU_TAIL_S", 25)), 3.0  # epoch-time safety factor; final evaluation + export; poll period

PROFILE = config.get_profile("full")  # the jobs' profile: its warm-up and decay share fix the decay starts


class Job:
    def __init__(self, name, argv, budgets, runs_root, env, finished):
        self.name, self.argv, self.budgets, self.root, self.env = name, argv, budgets, runs_root, env
        self.budget, self.proc, self.rid, self.done = None, None, None, False
        self.finished = finished  # run ids the registry has already
        self.log = runs_root / "_logs" / f"{name}.log"

    def start(self, budget):
        self.budget, self.rid = budget, None
        self.log.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.log, "a")
        fh.write(f"\n### {time.strftime('%H:%M:%S')} budget {budget}\n"); fh.flush()
        cmd = [sys.executable, "-u", "-m", f"fer_utils.{self.argv[0]}", *self.argv[1:], "--epochs", str(budget)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env=self.env)
        print(f"[{self.name}] start budget {budget}: {' '.join(cmd[2:])}", flush=True)

    def run_dir(self):
        if self.rid is None:
            text = self.log.read_text(errors="replace").rsplit(f"budget {self.budget}\n", 1)[-1]
            m = re.search(r"^\[([^\]\s]+-wsd%d[^\]\s]*)\]" % self.budget, text, re.M)
            self.rid = m.group(1) if m else None
        return self.root / self.rid if self.rid else None

    def epochs_and_time(self):
        d = self.run_dir()
        if d is None or not (d / "log.csv").exists():
            return 0, None
        with open(d / "log.csv") as fh:
            rows = [r for r in csv.reader(fh) if r and r[0].isdigit()]
        if not rows:
            return 0, None
        secs = sorted(float(r[-1]) for r in rows[-4:])
        return int(rows[-1][0]), secs[len(secs) // 2]

    def poll(self, deadline):
        if self.done or self.proc is None:
            return
        rc = self.proc.poll()
        if rc is not None:
            self.done = True
            print(f"[{self.name}] budget {self.budget} exited rc={rc}", flush=True)
            return
        epoch, t = self.epochs_and_time()
        if t is None or epoch < 2:
            return
        left = deadline - time.time()
        snaps = self.run_dir() / "stable"
        # a shorter budget already in the registry is no fallback: it would only repeat that run
        here = [b for b in self.budgets if b == self.budget or self.rid.replace(f"-wsd{self.budget}", f"-wsd{b}", 1)
                not in self.finished]
        b = budget.fitting_budget(PROFILE, here, self.budget, epoch, t, left,
                                  lambda e: (snaps / f"e{e:04d}" / "last.keras").exists(), MARGIN, TAIL_S)
        if b is not None:
            print(f"[{self.name}] at epoch {epoch} ({t:.1f} s/epoch, {left:.0f} s left): budget {self.budget} "
                  f"does not fit; branching budget {b} from its decay start", flush=True)
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill(); self.proc.wait()
            self.start(b)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("jobs", type=Path)
    ap.add_argument("--deadline", type=float, required=True, help="time.time() by which every run has stopped")
    ap.add_argument("--budgets", type=int, nargs="+", default=[200, 120, 60])
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="arguments added to every job")
    args = ap.parse_args(argv)
    runs_root = Path(os.environ.get("FER_RUNS_DIR", ROOT / "runs"))
    env = dict(os.environ, FER_DEADLINE=str(args.deadline))
    budgets = sorted(args.budgets, reverse=True)
    registry = ROOT / "results" / "runs.csv"
    finished = {r["run_id"] for r in csv.DictReader(open(registry))} if registry.exists() else set()
    jobs = []
    for line in args.jobs.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, *rest = line.split()
            jobs.append(Job(name, rest + args.extra, budgets, runs_root, env, finished))
    for j in jobs:
        j.start(budgets[0])
    while not all(j.done for j in jobs):
        time.sleep(POLL_S)
        for j in jobs:
            j.poll(args.deadline)
        if time.time() > args.deadline + 60:
            for j in jobs:
                if not j.done:
                    j.proc.kill(); j.done = True
    for j in jobs:
        e, t = j.epochs_and_time()
        print(f"[{j.name}] budget {j.budget}: {e} epochs, {t} s/epoch, rc={j.proc.returncode}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
