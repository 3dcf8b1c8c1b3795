"""Every sweep point as a Ray task: ``python -m fer_utils.sweep --profile full [--jobs N]``.

The sweep covers the MobileNet and CNN width families (the parameter-accuracy scatter plots) and
our design, at the profile's sweep budget (``config.SWEEP_EPOCHS``: one budget for every family),
each point once per seed in ``--seeds`` (the seed-to-seed spread is the noise the report compares
gaps with), optionally with distilled students (``--teacher cnn:1.0 --students 1.0 2.4``). Each
point is one :func:`fer_utils.train.train` (or :func:`fer_utils.distill.distill`) run executed as
a Ray task: on a local Ray instance by default (this machine's CPUs), on a cluster with
``--address ray://host:10001`` or ``RAY_ADDRESS``. A task asks for ``--cpus-per-task`` CPUs (default:
the cluster's CPUs over ``--jobs``) and ``--gpus-per-task`` GPUs (a fraction shares one GPU).

- **Resumable.** Every task is the same resumable run as on the command line: its run folder
  keeps a checkpoint per epoch, so a killed task, a lost node or a deadline (``--deadline-s``)
  leaves a run that the next ``sweep`` resumes, and a finished run is read back, never retrained.
  Keep ``FER_RUNS_DIR`` on a path every node sees to resume on another node; without one, a run
  resumes on the node that has its folder or starts again elsewhere.
- **Dependencies.** A distilled student's task takes its teacher's task result as an argument, so
  Ray starts it only once the teacher has finished (and not at all if the teacher failed).
- **Results come back through Ray's object store**, not a shared file system: a finished task
  returns its registry row, its per-epoch log and its final float32 weights, and the driver (this
  process) writes them into its own ``results/`` and run folders. Only the driver appends to
  ``runs.csv``, one row per finished run in finishing order, so appends never interleave; a row
  already there (same run id and timestamp, e.g. a run read back on a rerun) is not appended
  again, and a row the driver missed (it died) is appended when the rerun reads the run back.
- **Only runs that can finish** (``--fit-deadline``). Where run folders do not outlive the
  machine (a 3-hour session), a run the deadline stops is lost work. With ``--fit-deadline`` each
  run is estimated from the wall time per epoch its model measured before (:func:`estimates`, from
  ``runs.csv``), the runs are ordered cheapest first (every size's first seed before the noise
  seeds; ``--whole`` takes both), and a run starts only if its estimate (its
  remaining epochs, when it resumes) fits before the deadline; the others are reported as
  skipped and left for the next session or a bigger machine.
- **Progress.** One line per finished run with its accuracies, wall time and the number of runs
  left; the workers' own per-epoch lines are forwarded by Ray.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import config, models

#: one precision per family, so every point of a family shares one recipe on any machine:
#: bfloat16 pays for the plain CNN's large convolutions and costs the depthwise models
#: (``benchmarks/recipe_speed.py``; ``benchmarks/README.md``)
FAMILY_PRECISION = {"cnn": "mixed_bfloat16"}
#: what a worker needs of the driver's environment (data, run folders, deadline, test hooks)
WORKER_ENV = ("FER2013_PATH", "FER_RUNS_DIR", "FER_DEADLINE", "FER_KILL_AFTER_EPOCH", "FER_PROFILE",
              "TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")


def precision_for(arch: str) -> str:
    return FAMILY_PRECISION.get(arch, "float32")


def sweep_points(families: list[str] | None = None) -> list[tuple[str, float]]:
    """(arch, width) pairs, family by family in the order asked, cheapest first within each."""
    points = {
        **{f: [(f, w) for w in ws] for f, ws in models.FAMILY_WIDTHS.items()},
        "irnet": [("irnet", w) for w in models.IRNET_WIDTHS],
    }
    families = families or list(points)
    unknown = [f for f in families if f not in points]
    if unknown:
        raise ValueError(f"unknown sweep family {unknown}; expected {list(points)}")
    return [p for f in families for p in points[f]]


def noise_points(families: list[str] | None = None) -> list[tuple[str, float]]:
    """The sizes trained with more seeds (``config.NOISE_POINTS``), of ``families`` (default: all)."""
    return [(f, w) for f in (families or config.NOISE_POINTS) for w in config.NOISE_POINTS.get(f, ())]


@dataclass(frozen=True)
class Job:
    arch: str
    width: float
    teacher: str | None = None  # "arch:width" of a plain run this student distils from
    seed: int = 0

    @property
    def name(self) -> str:
        return (f"{self.arch}-w{self.width:g}" + (f"-s{self.seed}" if self.seed else "")
                + (f"-kd-{self.teacher.replace(':', '')}" if self.teacher else ""))


def parse_point(spec: str) -> tuple[str, float]:
    arch, _, width = spec.partition(":")
    if arch not in models.ARCHITECTURES or not width:
        raise ValueError(f"{spec!r}: expected ARCH:WIDTH with ARCH one of {', '.join(models.ARCHITECTURES)}")
    return arch, float(width)


def plan(points: list[tuple[str, float]], teacher: str | None = None, students=(), seeds=(0,)) -> list[Job]:
    """The plain runs of ``points``, once per seed in ``seeds`` (seed by seed), and, with a
    ``teacher``, that teacher (seed 0, if not among them) and IRNet students of each width in
    ``students`` distilled from it."""
    jobs = [Job(a, w, seed=s) for s in seeds for a, w in points]
    if teacher:
        t = Job(*parse_point(teacher))
        if t not in jobs:
            jobs.insert(0, t)
        jobs += [Job("irnet", float(w), teacher=f"{t.arch}:{t.width:g}") for w in students]
    return jobs


#: what an estimate adds for evaluation, start-up and a busy machine
ESTIMATE_MARGIN = 1.15


def estimates(jobs: list[Job], profile: str, epochs: int, registry_path: Path,
              margin: float = ESTIMATE_MARGIN, concurrent: int = 1) -> dict[str, float]:
    """Seconds each job's run is expected to take: ``epochs`` times the wall time per epoch of its
    model's newest plain row of ``profile`` (``results.sweep_cost``; a width not trained yet: its family's
    nearest measured width, scaled up by multiply-adds; with ``concurrent`` runs at a time, a time
    measured alone scaled by ``config.SHARED_SLOWDOWN``), times ``margin``; NaN where its
    family has no row yet. A distilled student is estimated as its plain twin."""
    from . import registry, results

    rows = registry.read(registry_path) if Path(registry_path).exists() else None
    if rows is None or rows.empty:
        return {j.name: math.nan for j in jobs}
    cost = results.sweep_cost(rows[rows["profile"] == profile], [(j.arch, j.width) for j in jobs], epochs,
                              models.macs_of, concurrent)
    return {j.name: float(sec) * margin for j, sec in zip(jobs, cost["seconds"])}


def fits(est_s: float, run_dir: Path, epochs: int, deadline: float, now: float | None = None) -> tuple[bool, str]:
    """Whether a run estimated at ``est_s`` seconds for ``epochs`` epochs, with its folder at
    ``run_dir`` (resumed from its ``state.json``, if any), can finish before ``deadline``; and why."""
    now = time.time() if now is None else now
    if (run_dir / "result.json").exists():
        return True, "finished earlier"
    from . import runs

    done = runs.epochs_done(run_dir)
    if math.isnan(est_s):
        return True, "no estimate (its model has no row yet)"
    need, left = est_s * max(epochs - done, 0) / epochs, deadline - now
    ok = need <= left
    return ok, (f"needs ~{need / 60:.0f} min" + (f" for its last {epochs - done} epochs" if done else "")
                + f", {left / 60:.0f} min left before the deadline")


def whole_sweep(families: list[str] | None = None) -> list[Job]:
    """Every run the sweep is made of (of ``families``; default all): each point once (seed 0),
    then the noise runs."""
    return plan(sweep_points(families)) + plan(noise_points(families), seeds=config.NOISE_SEEDS)


def run_job(job: Job, profile: str, epochs: int | None, train_limit: int | None, env: dict,
            teacher: dict | None = None, est_s: float | None = None) -> dict:
    """One run, inside a Ray worker: train (or resume, or read back) and return what the driver
    records. ``teacher`` is the teacher task's return value (its weights travel with it).
    ``est_s`` (``--fit-deadline``): the run's estimated seconds; with a deadline (``FER_DEADLINE``)
    a run that would not finish before it is skipped (:func:`fits`), not started."""
    os.environ.update(env)
    import tempfile

    from . import data, distill, runs, train

    ds = data.load(verbose=False)
    prof = config.get_profile(profile)
    scratch = Path(tempfile.mkdtemp(prefix="fer-sweep-"))  # the engine's own registry copy; the driver's counts
    kw = dict(dataset=ds, verbose=0, progress=True, registry_path=scratch / "runs.csv", epochs=epochs,
              train_limit=train_limit, precision=precision_for(job.arch))
    if est_s is not None and os.environ.get("FER_DEADLINE"):
        p = runs.requested(prof, epochs, train_limit)
        # a plain run may resume from its folder; a student's tag is the distiller's, so it counts as fresh
        folder = (runs.run_folder(job.arch, job.width, p, job.seed, ds.fingerprint(), precision=precision_for(job.arch))
                  if not job.teacher else Path(scratch) / "fresh")
        ok, why = fits(est_s, folder, p.epochs, float(os.environ["FER_DEADLINE"]))
        if not ok:
            return {"job": job.name, "result": None, "skipped": why}
    if job.teacher:
        if teacher is None or teacher.get("result") is None:
            raise RuntimeError(f"{job.name}: its teacher {job.teacher} did not finish")
        write_back(teacher)  # the teacher may have trained on another node
        result = distill.distill(job.arch, job.width, teacher["result"], prof, job.seed, **kw)
    else:
        result = train.train(job.arch, job.width, prof, job.seed, **kw)
    if result is None:
        return {"job": job.name, "result": None}
    folder = runs.weights_path(result["run_id"]).parent
    return {"job": job.name, "result": result, "log": (folder / "log.csv").read_text(),
            "weights": runs.weights_path(result["run_id"]).read_bytes()}


def write_back(out: dict) -> None:
    """Put a finished task's run folder files (result, log, final weights) where this process keeps
    runs, unless they are there already (the same machine, or a shared path)."""
    from . import runs

    rid = out["result"]["run_id"]
    folder = runs.weights_path(rid).parent
    folder.mkdir(parents=True, exist_ok=True)
    if not runs.weights_path(rid).exists():
        runs.weights_path(rid).write_bytes(out["weights"])
    if not (folder / "log.csv").exists():
        (folder / "log.csv").write_text(out["log"])
    if not (folder / "result.json").exists():
        runs.atomic_json(folder / "result.json", out["result"])


def record(out: dict, registry_path: Path) -> bool:
    """Write a finished task's registry row (unless that row is there already), log, weights and
    float16 copy (``results/weights``) on the driver's side; True when a row was appended."""
    from . import registry, runs

    write_back(out)
    result = out["result"]
    done = registry.read(registry_path) if Path(registry_path).exists() else None
    new = done is None or not ((done["run_id"] == result["run_id"])
                               & (done["timestamp"].astype(str) == str(result["timestamp"]))).any()
    if new:
        registry.append({c: result.get(c, "") for c in registry.COLUMNS}, registry_path)
    runs.publish_log(runs.weights_path(result["run_id"]).parent, Path(registry_path))
    runs.ensure_exported(result, Path(registry_path).parent)  # the committed float16 copy a fresh clone reads
    return new


#: how often a local Ray start is tried: Ray gives its node a fixed 30 s to register, which a
#: machine whose cores are busy with training runs can miss ("The current node timed out during startup")
RAY_START_ATTEMPTS = 3


def start_local_ray(ray, kwargs: dict, attempts: int = RAY_START_ATTEMPTS) -> None:
    """``ray.init(**kwargs)`` on this machine, tried again (after ``ray.shutdown``) when the node
    misses Ray's startup timeout; any other error, or the last attempt's, is raised."""
    for attempt in range(1, attempts + 1):
        try:
            ray.init(**kwargs)
            return
        except Exception as err:  # Ray raises a bare Exception for the startup timeout
            if "timed out during startup" not in str(err) or attempt == attempts:
                raise
            print(f"Ray's local node missed its startup timeout (attempt {attempt} of {attempts}; a busy CPU?): "
                  f"starting it again", flush=True)
            ray.shutdown()


def run(jobs: list[Job], profile: str, registry_path: Path | None = None, address: str | None = None,
        jobs_at_once: int = 1, cpus_per_task: float | None = None, gpus_per_task: float = 0.0,
        epochs: int | None = None, train_limit: int | None = None, retries: int = 1,
        deadline_s: float | None = None, local_cpus: int | None = None,
        estimates_s: dict[str, float] | None = None) -> dict:
    """Run every job as a Ray task; returns ``{"finished": [...], "unfinished": [...], "failed": [...],
    "skipped": [...]}`` (job names). ``address`` None: ``RAY_ADDRESS`` or a local instance with
    ``local_cpus`` CPUs. ``estimates_s`` (job name -> seconds, :func:`estimates`): run the jobs
    cheapest first and skip those that would not finish before the deadline."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # read when ray is imported: every run's epoch lines, undeduplicated
    import ray

    if deadline_s is not None:
        os.environ["FER_DEADLINE"] = str(time.time() + deadline_s)
    env = {k: os.environ[k] for k in WORKER_ENV if k in os.environ}
    address = address or os.environ.get("RAY_ADDRESS") or None
    started_here = not ray.is_initialized()
    if started_here:
        runtime_env = {"env_vars": env}
        if address:  # a cluster's nodes get this package from the driver
            runtime_env["py_modules"] = [str(Path(__file__).resolve().parent)]
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
        else:
            start_local_ray(ray, dict(num_cpus=local_cpus or os.cpu_count(), include_dashboard=False,
                                      runtime_env=runtime_env, object_store_memory=512 * 2**20, log_to_driver=True))
    try:
        cpus = cpus_per_task or max(1.0, ray.cluster_resources().get("CPU", 1) // max(jobs_at_once, 1))
        task = ray.remote(run_job).options(num_cpus=cpus, num_gpus=gpus_per_task, max_retries=retries)
        registry_path = Path(registry_path or config.current().results / "runs.csv")
        refs, by_name = {}, {}
        order = sorted(jobs, key=lambda j: _cheapest(estimates_s, j)) if estimates_s else jobs
        for job in sorted(order, key=lambda j: j.teacher is not None):  # teachers are submitted first
            teacher_ref = by_name.get(Job(*parse_point(job.teacher)).name) if job.teacher else None
            est = estimates_s.get(job.name) if estimates_s else None
            ref = task.remote(job, profile, epochs, train_limit, env, teacher_ref, est)
            refs[ref], by_name[job.name] = job, ref
        return _collect(refs, registry_path)
    finally:
        if started_here:
            ray.shutdown()


def _cheapest(estimates_s: dict, job: Job) -> tuple[bool, bool, float]:
    """Sort key: every size's first seed before the noise seeds (a missing width costs a figure
    more than a missing seed), each cheapest first, those without an estimate last."""
    est = estimates_s.get(job.name, math.nan)
    return (job.seed != 0, math.isnan(est), 0.0 if math.isnan(est) else est)


def _collect(refs: dict, registry_path: Path) -> dict:
    import ray

    t0, outcome = time.time(), {"finished": [], "unfinished": [], "failed": [], "skipped": []}
    pending = dict(refs)
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        job = pending.pop(ref)
        stamp = f"[{time.time() - t0:6.0f} s]"
        try:
            out = ray.get(ref)
        except ray.exceptions.RayError as exc:
            outcome["failed"].append(job.name)
            reason = str(exc).strip().splitlines()[0][:160]
            print(f"{stamp} {job.name}: FAILED ({type(exc).__name__}: {reason}); {len(pending)} runs left; "
                  f"rerun to resume it from its last checkpoint", flush=True)
            continue
        if out.get("skipped"):
            outcome["skipped"].append(job.name)
            print(f"{stamp} {job.name}: skipped, it would not finish before the deadline ({out['skipped']}); "
                  f"{len(pending)} runs left", flush=True)
            continue
        if out["result"] is None:
            outcome["unfinished"].append(job.name)
            print(f"{stamp} {job.name}: stopped at the deadline (resumable); {len(pending)} runs left", flush=True)
            continue
        new = record(out, registry_path)
        r = out["result"]
        outcome["finished"].append(job.name)
        print(f"{stamp} {job.name}: done, {r['run_id']} PublicTest {r['public_acc']:.4f} PrivateTest "
              f"{r['private_acc']:.4f}, {r['epochs']} epochs in {r['wall_s'] / 60:.1f} min"
              f"{'' if new else ' (read back; its row was there already)'}; {len(pending)} runs left", flush=True)
    return outcome


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=list(config.PROFILES), default=None)
    parser.add_argument("--families", nargs="+", default=None, help="mobilenet cnn irnet (default: all)")
    parser.add_argument("--points", nargs="+", default=None, metavar="ARCH:WIDTH", help="these runs instead of families")
    parser.add_argument("--teacher", default=None, metavar="ARCH:WIDTH", help="distil --students from this run")
    parser.add_argument("--students", type=float, nargs="*", default=[], help="IRNet widths to distil")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="train each point once per seed (the spread between seeds: the noise)")
    parser.add_argument("--noise", action="store_true",
                        help="the seed-noise runs: config.NOISE_POINTS with config.NOISE_SEEDS")
    parser.add_argument("--whole", action="store_true",
                        help="every run of the sweep, seed-0 points and noise runs together (with --fit-deadline: "
                             "cheapest first, so --jobs keeps every slot busy until the deadline)")
    parser.add_argument("--margin", type=float, default=ESTIMATE_MARGIN,
                        help="--fit-deadline's estimates times this (default %(default)s); with --jobs above 1 "
                             "a time measured alone is already scaled by config.SHARED_SLOWDOWN (a row that "
                             "trained beside another run, its registry column 'shared', carries that slowdown)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="the epoch budget (default: the profile's sweep budget, config.SWEEP_EPOCHS)")
    parser.add_argument("--train-limit", type=int, default=None, help="override the profile's training-set size")
    parser.add_argument("--registry", type=Path, default=None)
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (sets --cpus-per-task)")
    parser.add_argument("--address", default=None, help="a Ray cluster (ray://host:10001); default RAY_ADDRESS or local")
    parser.add_argument("--cpus-per-task", type=float, default=None)
    parser.add_argument("--gpus-per-task", type=float, default=0.0)
    parser.add_argument("--retries", type=int, default=1, help="Ray retries of a task whose worker died")
    parser.add_argument("--deadline-s", type=float, default=None, help="stop every run before this many seconds")
    parser.add_argument("--fit-deadline", action="store_true",
                        help="cheapest runs first; start a run only if its estimate fits before the deadline "
                             "(FER_DEADLINE or --deadline-s): for machines whose run folders do not outlive them")
    args = parser.parse_args(argv)
    setup = config.setup(args.profile)
    if args.whole and (args.noise or args.points or args.teacher):
        parser.error("--whole is the whole sweep: not with --noise, --points or --teacher")
    if args.whole:
        jobs = whole_sweep(args.families)
    elif args.noise:
        jobs = plan(noise_points(args.families), args.teacher, args.students, list(config.NOISE_SEEDS))
    else:
        points = [parse_point(p) for p in args.points] if args.points else sweep_points(args.families)
        jobs = plan(points, args.teacher, args.students, args.seeds)
    epochs = args.epochs if args.epochs is not None else config.sweep_epochs(setup.profile)
    print(f"== {len(jobs)} runs ({setup.profile.name}, {epochs} epochs): {', '.join(j.name for j in jobs)}",
          flush=True)
    registry_path = args.registry or setup.results / "runs.csv"
    est = None
    if args.fit_deadline:
        if args.deadline_s is None and not os.environ.get("FER_DEADLINE"):
            parser.error("--fit-deadline needs a deadline: FER_DEADLINE or --deadline-s")
        est = estimates(jobs, setup.profile.name, epochs, registry_path, args.margin, args.jobs)
        print("== estimated minutes: " + ", ".join(f"{k} {v / 60:.0f}" for k, v in est.items()), flush=True)
    outcome = run(jobs, setup.profile.name, registry_path, args.address,
                  args.jobs, args.cpus_per_task, args.gpus_per_task, epochs, args.train_limit, args.retries,
                  args.deadline_s, estimates_s=est)
    print("== " + json.dumps({k: len(v) for k, v in outcome.items()}), flush=True)
    return 0 if not outcome["unfinished"] and not outcome["failed"] and not outcome["skipped"] else 3


if __name__ == "__main__":
    sys.exit(main())
