"""Many training runs at once on one accelerator: ``python -m fer_utils.parallel --jobs 12``.

A GPU trains one of these small models far below its capacity, so the sweep
points, our design's widths and the distillation students run side by side as
separate ``fer_utils.train`` processes (each resumable, each with its own log
and its own registry file, so concurrent appends never interleave). A
distillation student starts as soon as its teacher's run has finished. At the
end the rows are appended to the main registry in one process, in finishing
order. ``--deadline-s`` stops every run at an epoch boundary before that many
seconds have passed; rerunning the same command resumes them.
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import config, paths, registry


@dataclass
class Job:
    arch: str
    width: float
    teacher: str | None = None  # "arch:width" of a plain run this student distils from
    priority: int = 1  # lower starts first
    proc: subprocess.Popen | None = field(default=None, repr=False)
    returncode: int | None = None

    @property
    def name(self) -> str:
        return f"{self.arch}-w{self.width:g}" + (f"-kd-{self.teacher.replace(':', '')}" if self.teacher else "")


def plan(teacher: str = "cnn:1.0", students: tuple[float, ...] = (1.0, 1.2, 2.4)) -> list[Job]:
    """Every sweep point plus our design's widths, and distilled IRNet students of ``teacher``."""
    from .sweep import sweep_points

    t_arch, t_width = teacher.split(":")
    first = {(t_arch, float(t_width))} | {("irnet", w) for w in students} | {("mobilenet", 1.0)}
    jobs = [Job(a, w, priority=0 if (a, w) in first else 1) for a, w in sweep_points()]
    jobs += [Job("irnet", w, teacher=teacher, priority=0) for w in students]
    return jobs


def _teacher_name(teacher: str) -> str:
    arch, width = teacher.split(":")
    return f"{arch}-w{float(width):g}"


def _cmd(job: Job, profile: str, seed: int, work: Path) -> list[str]:
    from .sweep import precision_for

    cmd = [sys.executable, "-u", "-m", "fer_utils.train", "--arch", job.arch, "--width", f"{job.width:g}",
           "--profile", profile, "--seed", str(seed), "--registry", str(work / f"{job.name}.csv"),
           "--precision", precision_for(job.arch)]
    if job.teacher:
        cmd += ["--teacher", job.teacher, "--teacher-registry", str(work / f"{_teacher_name(job.teacher)}.csv")]
    return cmd


def run(jobs: list[Job], profile: str, n_parallel: int, seed: int = 0, deadline_s: float | None = None,
        work: Path | None = None, main_registry: Path | None = None) -> list[Job]:
    work = Path(work or paths.BUILD_DIR / "parallel")
    (work / "stdout").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if deadline_s is not None:
        env["FER_DEADLINE"] = str(time.time() + deadline_s)
    t0 = time.time()
    pending = sorted(jobs, key=lambda j: j.priority)
    running: list[Job] = []
    done: list[Job] = []

    def teacher_job(job: Job) -> Job | None:
        return next((j for j in done if j.name == _teacher_name(job.teacher)), None)

    def teacher_ready(job: Job) -> bool:
        return not job.teacher or (teacher_job(job) is not None and teacher_job(job).returncode == 0)

    def teacher_failed(job: Job) -> bool:
        return teacher_job(job) is not None and teacher_job(job).returncode != 0

    while pending or running:
        late = deadline_s is not None and time.time() - t0 > deadline_s - 90  # too late to start a run
        for job in list(running):
            if job.proc.poll() is not None:
                job.returncode = job.proc.returncode
                running.remove(job)
                done.append(job)
                state = {0: "finished", 3: "stopped at the deadline (resumable)"}.get(job.returncode,
                                                                                     f"FAILED rc={job.returncode}")
                print(f"[{time.time() - t0:5.0f} s] {job.name}: {state}", flush=True)
        for job in [j for j in pending if (j.teacher and teacher_failed(j)) or late]:
            pending.remove(job)
            job.returncode = -1
            done.append(job)
            why = "no time left to start" if late else "its teacher did not finish"
            print(f"[{time.time() - t0:5.0f} s] {job.name}: not started, {why}", flush=True)
        while len(running) < n_parallel and not late:
            ready = [j for j in pending if teacher_ready(j)]
            if not ready:
                break
            job = ready[0]
            pending.remove(job)
            cmd = _cmd(job, profile, seed, work)
            log = open(work / "stdout" / f"{job.name}.log", "w")
            job.proc = subprocess.Popen(cmd, cwd=paths.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            running.append(job)
            print(f"[{time.time() - t0:5.0f} s] {job.name}: started ({len(running)} running, "
                  f"{len(pending)} waiting)", flush=True)
        time.sleep(2)

    main_registry = Path(main_registry or config.current().results / "runs.csv")
    merged = 0
    for job in done:
        reg = work / f"{job.name}.csv"
        if job.returncode != 0 or not reg.exists():
            continue
        for row in csv.DictReader(open(reg, newline="")):
            registry.append(row, main_registry)
            merged += 1
            src = work / "logs" / f"{row['run_id']}.csv"
            if src.exists():
                (main_registry.parent / "logs").mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, main_registry.parent / "logs" / src.name)
    print(f"{merged} rows appended to {main_registry}; "
          f"{sum(j.returncode == 0 for j in done)}/{len(done)} jobs finished in {time.time() - t0:.0f} s", flush=True)
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=list(config.PROFILES), default=None)
    parser.add_argument("--jobs", type=int, default=8, help="runs at a time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--teacher", default="cnn:1.0")
    parser.add_argument("--students", type=float, nargs="*", default=list((1.0, 1.2, 2.4)))
    parser.add_argument("--exclude", nargs="*", default=[], metavar="ARCH:WIDTH",
                        help="plain runs to leave to another machine (e.g. the cheap ones, on a CPU)")
    parser.add_argument("--deadline-s", type=float, default=None, help="stop every run before this many seconds")
    args = parser.parse_args(argv)
    setup = config.setup(args.profile)
    skip = {_teacher_name(e) for e in args.exclude}
    jobs = [j for j in plan(args.teacher, tuple(args.students)) if j.teacher or j.name not in skip]
    done = run(jobs, setup.profile.name, args.jobs, args.seed, args.deadline_s)
    return 0 if all(j.returncode == 0 for j in done) else 3


if __name__ == "__main__":
    sys.exit(main())
