"""The budgeted schedule: warm-up to the peak, the decay to ~0, exact resumes, branched budgets."""
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from fer_utils import config, data, train
from fer_utils.schedule import Schedule


@pytest.mark.parametrize("kind", ["wsd", "cosine"])
def test_lr_is_peak_at_the_end_of_warmup_and_about_zero_at_the_end(kind):
    s = Schedule(kind, epochs=30, peak=3e-3, warmup=2)
    spe = 200
    assert s.lr_at(0, spe) == pytest.approx(3e-3 / 400)  # the warm-up starts near 0 ...
    assert s.lr_at(2 * spe - 1, spe) == pytest.approx(3e-3)  # ... and its last step is at the peak
    assert s.lr_at(30 * spe - 1, spe) < 3e-3 / 1000  # the last step: ~0
    lrs = [s.lr_at(t, spe) for t in range(30 * spe)]
    after = lrs[s.decay_start() * spe:]
    assert all(a >= b for a, b in zip(after, after[1:]))  # the decay never goes back up


def test_wsd_holds_the_peak_until_the_last_fifth():
    s = Schedule("wsd", epochs=200, peak=1e-3, warmup=2, decay_frac=0.2)
    assert s.decay_start() == 160
    assert s.lr_at(160 * 10 - 1, 10) == 1e-3 and s.lr_at(160 * 10 + 1, 10) < 1e-3
    # every shorter budget follows the same trajectory until its own decay starts: branchable
    short = replace(s, epochs=30)
    assert all(short.lr_at(t, 10) == s.lr_at(t, 10) for t in range(short.decay_start() * 10))


def test_bad_schedules_are_refused():
    with pytest.raises(ValueError, match="unknown schedule"):
        Schedule("step", 10, 1e-3)
    with pytest.raises(ValueError, match="warmup < epochs"):
        Schedule("wsd", 2, 1e-3, warmup=2)


def _kw(tmp_path, name):
    return dict(dataset=data.synthetic(240, seed=7), runs_root=tmp_path / name, registry_path=tmp_path / f"{name}.csv",
                verbose=0)


def test_an_interrupted_run_resumes_with_the_same_lr_at_the_same_step(tmp_path):
    prof = replace(config.PROFILES["smoke"], epochs=3, train_limit=128, batch_size=32, schedule="cosine", warmup=1)
    whole = train.train("irnet", 0.5, prof, **_kw(tmp_path, "a"))
    assert train.train("irnet", 0.5, prof, stop_after=1, **_kw(tmp_path, "b")) is None  # interrupted after epoch 1
    resumed = train.train("irnet", 0.5, prof, **_kw(tmp_path, "b"))
    assert resumed["epochs"] == whole["epochs"] == 3
    log_a = pd.read_csv(tmp_path / "a" / whole["run_id"] / "log.csv")
    log_b = pd.read_csv(tmp_path / "b" / resumed["run_id"] / "log.csv")
    assert log_b["epoch"].tolist() == [1, 2, 3]
    assert np.allclose(log_a["lr"], log_b["lr"], rtol=1e-6)  # the rate at each epoch's last step
    sched, steps = prof.lr_schedule(), 4  # 128 images / batch 32
    assert np.allclose(log_b["lr"], [sched.lr_at(e * steps - 1, steps) for e in (1, 2, 3)], rtol=1e-6)
    import keras
    wrapper = keras.models.load_model(tmp_path / "b" / resumed["run_id"] / "last.keras")
    assert int(wrapper.optimizer.iterations.numpy()) == 3 * steps  # no step lost or repeated


def test_a_shorter_wsd_budget_branches_from_the_longer_runs_stable_phase(tmp_path):
    from fer_utils import budget

    prof = replace(config.PROFILES["smoke"], train_limit=128, batch_size=32, warmup=1)
    assert budget.plan(prof, [5, 3]) == [(5, 2), (3, None), (5, None)]
    done = budget.run("irnet", 0.5, prof, [3, 5], dataset=data.synthetic(240, seed=7), runs_root=tmp_path / "runs",
                      registry_path=tmp_path / "runs.csv", verbose=0, progress=False)
    short, long = done
    assert (short["epochs"], long["epochs"]) == (3, 5)
    state = json.loads((tmp_path / "runs" / short["run_id"] / "state.json").read_text())
    assert state["branched_from"] == f"{long['run_id']}@2"
    log_s = pd.read_csv(tmp_path / "runs" / short["run_id"] / "log.csv")
    log_l = pd.read_csv(tmp_path / "runs" / long["run_id"] / "log.csv")
    assert log_s.iloc[:2].equals(log_l.iloc[:2])  # the shared stable phase, trained once
    assert log_s["lr"].iloc[2] < log_l["lr"].iloc[2]  # then the short run decays while the long one holds
    assert short["wall_s"] >= log_s["seconds"].iloc[:2].sum()  # its cost counts the shared part
    assert "wsd3/warm1/decay0.2/peak0.003" in short["recipe"] and short["run_id"].endswith("-wsd3")
    assert len(pd.read_csv(tmp_path / "runs.csv")) == 2


def test_snapshot_epochs_are_the_study_budgets_decay_starts_inside_the_stable_phase():
    s = Schedule("wsd", epochs=200, peak=3e-3, warmup=2)
    assert train.runs.snapshot_epochs(s) == {12, 24, 32, 48, 96, 160}  # 15, 30, 40, 60, 120 and 200 epochs
    assert 37 in train.runs.snapshot_epochs(s, stop_after=37)
    assert 170 not in train.runs.snapshot_epochs(s, stop_after=170)  # already decaying: no branch point
    assert train.runs.snapshot_epochs(replace(s, kind="cosine")) == set()


def test_the_fitting_budget_is_the_longest_that_finishes_before_the_deadline():
    from fer_utils import budget

    prof = config.get_profile("full")  # WSD, warm-up 2, decay 20 %: decay starts 160 (200), 96 (120), 48 (60)
    budgets, every = [200, 120, 60], (lambda epoch: True)
    fit = lambda epoch, left, snaps=every, current=200: budget.fitting_budget(  # noqa: E731
        prof, budgets, current, epoch, 2.0, left, snaps, margin=1.0, tail_s=10.0, restart_s=0.0)
    assert fit(50, 10 + 150 * 2) is None  # 200 fits: train on
    assert fit(50, 10 + 70 * 2) is None  # 200 does not, 120 does: on to its decay start (96), not a branch now
    assert fit(96, 10 + 24 * 2) == 120  # at 120's decay start: branch its 24-epoch decay
    assert fit(100, 10 + 24 * 2) == 120  # past it: branch from its snapshot all the same (4 epochs redone)
    assert fit(100, 10 + 12 * 2) == 60  # only 60's 12-epoch decay fits: branch it from epoch 48
    assert fit(100, 10 + 12 * 2, snaps=lambda e: e != 48) is None  # no snapshot: train on to the deadline
    assert fit(100, 10 + 5 * 2) is None  # nothing fits: train on, resumable
    assert fit(100, 10 + 24 * 2, current=120) is None  # a branched run is never branched again to itself
    assert budget.fitting_budget(prof, budgets, 200, 96, 2.0, 10 + 24 * 2 + 30, every, 1.0, 10.0, restart_s=40.0) == 60
