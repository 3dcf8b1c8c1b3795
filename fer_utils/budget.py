"""The training-budget study: how much training is enough, in epochs and CPU hours.

    python -m fer_utils.budget --arch mobilenet --width 1.0 --profile full [--budgets 15 30 60 120 200]

One warm-up / stable / decay run per budget. Only the longest is trained from scratch: it is
advanced to the decay start of each shorter budget in turn (its stable phase keeps a checkpoint
there), and the shorter budget then branches from that checkpoint and trains only its decay
(:func:`fer_utils.runs.branch_source`). Every run is an ordinary resumable run with its own
registry row, whose ``wall_s`` counts the shared stable phase too: the cost of that budget
trained alone. Safe under ``nohup`` and ``FER_DEADLINE``; rerun the same command to go on.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import config, data, paths


def plan(prof: config.Profile, budgets) -> list[tuple[int, int | None]]:
    """(budget, stop_after) steps: the longest run advanced to each shorter budget's decay start,
    that budget trained, and finally the longest run to its end (stop_after None)."""
    budgets = sorted(set(int(b) for b in budgets))
    if not budgets:
        raise ValueError("need at least one budget")
    longest, steps = budgets[-1], []
    for b in budgets[:-1]:
        steps += [(longest, replace(prof, epochs=b).lr_schedule().decay_start()), (b, None)]
    return steps + [(longest, None)]


def fitting_budget(prof: config.Profile, budgets, current: int, epoch: int, epoch_s: float, left_s: float,
                   has_snapshot, margin: float = 1.15, tail_s: float = 25.0, restart_s: float = 40.0) -> int | None:
    """What a WSD run on budget ``current``, after ``epoch`` epochs of ``epoch_s`` seconds each and with
    ``left_s`` seconds to a deadline, should do: None to train on, or a shorter budget to branch now.

    It takes the longest budget that still fits (``epochs x epoch_s x margin + tail_s`` within
    ``left_s``, the tail for the final evaluation): its own; a shorter one whose decay start lies
    ahead (train on to it: up to there both follow the same rates); or a shorter one whose decay
    start is behind and whose stable-phase snapshot exists (``has_snapshot(decay_start)``), whose
    run then branches from that snapshot and trains only its decay (``restart_s`` more: a new process
    loads the data and compiles its step). None also when nothing fits:
    the run goes on to the deadline and stays resumable. ``tools/device/gpu_runs.py`` asks it."""
    def need(epochs):
        return epochs * epoch_s * margin + tail_s

    for b in sorted(set(int(b) for b in budgets), reverse=True):
        if b > current:
            continue
        start = replace(prof, epochs=b).lr_schedule().decay_start()
        if b == current or start > epoch:
            if need(b - epoch) <= left_s:
                return None
            continue
        if need(b - start) + restart_s <= left_s and has_snapshot(start):
            return b
    return None


def run(arch: str, width: float, prof: config.Profile, budgets, seed: int = 0, dataset=None,
        runs_root: Path | None = None, registry_path: Path | None = None, precision: str = "float32",
        verbose: int = 2, progress: bool = True) -> list[dict] | None:
    """Train every budget of the study; the finished results, or None when the deadline stopped it."""
    from . import runs, train

    if prof.lr_schedule() is None or prof.schedule != "wsd":
        raise ValueError(f"the budget study branches WSD runs; profile {prof.name!r} has schedule {prof.schedule!r}")
    ds = dataset if dataset is not None else data.load()
    runs_root = Path(runs_root or paths.runs_dir())
    kw = dict(dataset=ds, runs_root=runs_root, registry_path=registry_path, precision=precision,
              verbose=verbose, progress=progress)
    results = {}
    for budget, stop_after in plan(prof, budgets):
        p = replace(prof, epochs=budget)
        out = train.train(arch, width, p, seed, stop_after=stop_after, **kw)
        if out is not None:
            results[budget] = out
            continue
        folder = runs.run_folder(arch, width, p, seed, ds.fingerprint(), precision=precision, runs_root=runs_root)
        if stop_after is None or runs.epochs_done(folder) < stop_after:
            return None  # the deadline stopped it
    return [results[b] for b in sorted(results)]


def study(setup, dataset=None, smoke_budgets=(2, 3)):
    """Notebook 03's budget-study table (``results.budget_study`` of ``config.BUDGET_STUDY_MODEL``),
    written to ``budget.csv``. In the smoke profile ``smoke_budgets`` are trained here first; in the
    full profile the runs come from this module's command line, in the background."""
    from . import registry, results

    arch, width = config.BUDGET_STUDY_MODEL
    reg = setup.results / "runs.csv"
    if setup.profile.name == "smoke":
        run(arch, width, setup.profile, smoke_budgets, dataset=dataset, registry_path=reg)
    table = results.budget_study(registry.read(reg), arch, width, profile=setup.profile.name)
    table.to_csv(setup.results / "budget.csv", index=False)
    return table


def _variant_table(setup, dataset, name: str, check, **variant):
    """One of notebook 03's variant checks: ``check(registry rows)`` written to ``<name>.csv``. In the
    smoke profile the ``variant`` (:func:`fer_utils.train.train`'s override: ``batch_size=32``, …) of
    ``config.BUDGET_STUDY_MODEL`` at the sweep budget is trained here first (seconds), beside the plain
    run notebook 03 trains; in the full profile the variants come from ``fer_utils.train`` in the
    background."""
    from . import registry, train

    reg = setup.results / "runs.csv"
    if setup.profile.name == "smoke":
        arch, width = config.BUDGET_STUDY_MODEL
        train.train(arch, width, setup.profile, dataset=dataset, epochs=config.sweep_epochs(setup.profile),
                    registry_path=reg, verbose=2, **variant)
    table = check(registry.read(reg))
    table.to_csv(setup.results / f"{name}.csv", index=False)
    return table


def batch_size_table(setup, dataset=None, smoke_batch_size: int = 32):
    """Notebook 03's batch-size check (``results.batch_size_check`` of ``config.BUDGET_STUDY_MODEL`` at
    the sweep budget), written to ``batch_size.csv``; the smoke profile trains a ``smoke_batch_size``
    variant first (:func:`_variant_table`), the full profile reads ``fer_utils.train --batch-size`` runs."""
    from . import results

    arch, width = config.BUDGET_STUDY_MODEL
    budget = config.sweep_epochs(setup.profile)
    return _variant_table(setup, dataset, "batch_size",
                          lambda rows: results.batch_size_check(rows, arch, width, budget, profile=setup.profile.name),
                          batch_size=smoke_batch_size)


def peak_lr_table(setup, dataset=None, smoke_peak_lr: float = 1e-3):
    """Notebook 03's peak learning-rate check (``results.peak_lr_check`` on every budget a variant
    trained on), written to ``peak_lr.csv``; the smoke profile trains a ``smoke_peak_lr`` variant first
    (:func:`_variant_table`), the full profile reads ``fer_utils.train --peak-lr`` runs."""
    from . import results

    return _variant_table(setup, dataset, "peak_lr", lambda rows: results.peak_lr_check(rows, profile=setup.profile.name),
                          peak_lr=smoke_peak_lr)


def schedule_table(setup, dataset=None, smoke_shape: str = "cosine"):
    """Notebook 03's schedule-shape check (``results.schedule_check`` on every budget a variant trained
    on), written to ``schedule.csv``; the smoke profile trains a ``smoke_shape`` variant first
    (:func:`_variant_table`), the full profile reads ``fer_utils.train --schedule cosine`` runs."""
    from . import results

    return _variant_table(setup, dataset, "schedule", lambda rows: results.schedule_check(rows, profile=setup.profile.name),
                          schedule=smoke_shape)


def protocol_table(setup, dataset=None):
    """Notebook 03's validation-protocol check (``results.protocol_check``): the original study's protocol
    (all of Training trains, PublicTest picks the epoch) beside ours, written to ``protocol.csv``; the
    smoke profile trains a ``vpub`` variant first (:func:`_variant_table`), the full profile reads
    ``fer_utils.train --validation public`` runs."""
    from . import results

    return _variant_table(setup, dataset, "protocol", lambda rows: results.protocol_check(rows, profile=setup.profile.name),
                          validation="public")


def augment_table(setup, dataset=None, smoke_augment: str = "light"):
    """Notebook 03's augmentation check (``results.augment_check``), written to ``augment.csv``, with each
    row's ``train_acc``: its runs' mean clean accuracy on their own training images (``measure.train_fit``,
    cached in ``fit.csv``); the smoke profile trains a ``smoke_augment`` variant first
    (:func:`_variant_table`), the full profile reads ``fer_utils.train --augment light`` runs."""
    from . import measure, registry, results

    table = _variant_table(setup, dataset, "augment", lambda rows: results.augment_check(rows, profile=setup.profile.name),
                           augment=smoke_augment)
    if table.empty:
        return table
    reg = registry.read(setup.results / "runs.csv")
    ids = [i for cell in table["run_ids"] for i in cell.split(";")]
    rows = reg[reg["run_id"].isin(ids)].sort_values("timestamp").drop_duplicates("run_id", keep="last")
    fit = measure.train_fit(rows, dataset if dataset is not None else data.load(), setup.profile,
                            setup.results / "fit.csv").set_index("run_id")["train_acc"]
    table["train_acc"] = [round(float(np.mean([fit[i] for i in cell.split(";")])), 4)
                          if all(i in fit.index for i in cell.split(";")) else float("nan") for cell in table["run_ids"]]
    table.to_csv(setup.results / "augment.csv", index=False)
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", required=True, choices=["mobilenet", "cnn", "irnet"])
    parser.add_argument("--width", type=float, default=1.0)
    config.add_cli_arguments(parser)
    parser.add_argument("--budgets", type=int, nargs="+", default=list(config.EPOCH_BUDGETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=list(config.PRECISIONS), default="float32")
    args = parser.parse_args(argv)
    ds, setup, reg = config.from_cli(args)
    done = run(args.arch, args.width, setup.profile, args.budgets, args.seed, ds, registry_path=reg,
               precision=args.precision)
    if done is None:
        print("== stopped at the deadline (FER_DEADLINE); rerun to resume", flush=True)
        return 3
    for r in done:
        print(f"== {r['run_id']}: {r['epochs']} epochs, {r['wall_s'] / 3600:.2f} h, PublicTest {r['public_acc']:.4f} "
              f"PrivateTest {r['private_acc']:.4f} (mirror TTA {r['public_tta_acc']:.4f} / "
              f"{r['private_tta_acc']:.4f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
