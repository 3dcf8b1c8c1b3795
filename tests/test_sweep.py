"""The sweep on Ray: tasks on a local instance, rows appended once, reruns train nothing, killed runs resume."""
import json

import pandas as pd
import pytest

from fer_utils import compress, data, sweep

ray = pytest.importorskip("ray")


@pytest.fixture
def env(tmp_path, monkeypatch):
    csv = data.write_kaggle_csv(data.synthetic(300, seed=4), tmp_path / "tiny.csv")
    monkeypatch.setenv("FER2013_PATH", str(csv))
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    return tmp_path


def _sweep(tmp_path, *extra):
    return sweep.main(["--profile", "smoke", "--epochs", "2", "--train-limit", "120", "--jobs", "2",
                       "--registry", str(tmp_path / "runs.csv"), *extra])


def test_two_point_sweep_on_local_ray_and_a_rerun_trains_nothing(env, capsys):
    assert _sweep(env, "--points", "mobilenet:0.15", "cnn:0.0625", "--teacher", "cnn:0.0625", "--students", "0.5") == 0
    out = capsys.readouterr().out
    rows = pd.read_csv(env / "runs.csv")
    assert len(rows) == 3 and set(rows["arch"]) == {"mobilenet", "cnn", "irnet"}
    assert rows["recipe"].str.contains("tag:kdh-cnn0.0625").sum() == 1  # the student, distilled
    names = [line.split(":")[0].split("] ")[-1] for line in out.splitlines() if ": done," in line]
    assert names.index("cnn-w0.0625") < names.index("irnet-w0.5-kd-cnn0.0625")  # the teacher finished first
    assert "0 runs left" in out
    for rid, params in zip(rows["run_id"], rows["params"]):
        assert (env / "logs" / f"{rid}.csv").exists() and (env / "runs" / rid / "final.weights.h5").exists()
        # the float16 copy a fresh clone reads sits beside the driver's registry, not in a worker's scratch
        assert compress.decode(env / "weights" / f"{rid}.fp16").count_params() == params

    assert _sweep(env, "--points", "mobilenet:0.15", "cnn:0.0625", "--teacher", "cnn:0.0625", "--students", "0.5") == 0
    out = capsys.readouterr().out
    assert out.count("read back; its row was there already") == 3 and "epoch 1/2" not in out
    assert len(pd.read_csv(env / "runs.csv")) == 3  # nothing trained, nothing appended twice


def test_a_killed_task_resumes_from_its_checkpoint_on_rerun(env, monkeypatch, capsys):
    monkeypatch.setenv("FER_KILL_AFTER_EPOCH", "1")  # the worker SIGKILLs itself after epoch 1
    assert _sweep(env, "--points", "irnet:0.5", "--epochs", "3", "--retries", "0") == 3
    assert "FAILED" in capsys.readouterr().out
    (run_dir,) = (env / "runs").iterdir()
    assert json.loads((run_dir / "state.json").read_text())["epoch"] == 1 and not (env / "runs.csv").exists()
    first_epoch = pd.read_csv(run_dir / "log.csv").iloc[0]

    monkeypatch.delenv("FER_KILL_AFTER_EPOCH")
    assert _sweep(env, "--points", "irnet:0.5", "--epochs", "3", "--retries", "0") == 0
    log = pd.read_csv(run_dir / "log.csv")
    assert log["epoch"].tolist() == [1, 2, 3]  # epoch 1 not repeated, none missing
    assert log.iloc[0].equals(first_epoch)  # ... and not trained again: the rerun started after it
    rows = pd.read_csv(env / "runs.csv")
    assert rows["run_id"].tolist() == [run_dir.name] and rows["epochs"].tolist() == [3]


def test_plan_puts_the_teacher_first_and_names_students():
    jobs = sweep.plan([("mobilenet", 0.5)], "cnn:1.0", [1.0, 2.4])
    assert [j.name for j in jobs] == ["cnn-w1", "mobilenet-w0.5", "irnet-w1-kd-cnn1", "irnet-w2.4-kd-cnn1"]
    assert sweep.plan([("cnn", 1.0)], "cnn:1.0", [])[0] == sweep.Job("cnn", 1.0)  # not twice
    with pytest.raises(ValueError, match="expected ARCH:WIDTH"):
        sweep.parse_point("vgg:1")


def test_plan_trains_each_point_once_per_seed():
    jobs = sweep.plan([("mobilenet", 0.25), ("cnn", 0.125)], seeds=[1, 2])
    assert [j.name for j in jobs] == ["mobilenet-w0.25-s1", "cnn-w0.125-s1", "mobilenet-w0.25-s2", "cnn-w0.125-s2"]
    assert {j.seed for j in jobs} == {1, 2}


def test_the_sweep_budget_is_one_for_every_family():
    from fer_utils import config

    assert config.sweep_epochs(config.PROFILES["full"]) == 40 in config.EPOCH_BUDGETS
    assert config.sweep_epochs(config.PROFILES["smoke"]) == config.PROFILES["smoke"].epochs


def test_noise_points_lie_where_the_families_overlap():
    from fer_utils import config, models

    params = {f: [models.build(f, w).count_params() for w in ws] for f, ws in models.FAMILY_WIDTHS.items()}
    lo, hi = max(min(p) for p in params.values()), min(max(p) for p in params.values())
    for family, widths in config.NOISE_POINTS.items():
        assert len(widths) >= 3 and set(widths) <= set(models.FAMILY_WIDTHS[family])
        assert all(lo <= models.build(family, w).count_params() <= hi for w in widths), (family, widths)


def test_fits_counts_only_the_epochs_a_resumed_run_has_left(tmp_path):
    now, deadline = 1000.0, 1000.0 + 30 * 60  # 30 minutes left
    fresh = tmp_path / "fresh"
    assert sweep.fits(20 * 60, fresh, 40, deadline, now) == (True, "needs ~20 min, 30 min left before the deadline")
    ok, why = sweep.fits(40 * 60, fresh, 40, deadline, now)
    assert not ok and why == "needs ~40 min, 30 min left before the deadline"
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    (resumed / "state.json").write_text(json.dumps({"epoch": 30}))
    assert sweep.fits(40 * 60, resumed, 40, deadline, now) == (
        True, "needs ~10 min for its last 10 epochs, 30 min left before the deadline")
    (resumed / "result.json").write_text("{}")
    assert sweep.fits(1e9, resumed, 40, deadline, now)[0]  # finished: read back, costs nothing
    assert sweep.fits(float("nan"), fresh, 40, deadline, now)[0]  # no estimate: it is tried


def test_estimates_come_from_measured_epoch_times_and_order_cheapest_first(env):
    from fer_utils import registry

    reg = env / "runs.csv"
    base = {c: "" for c in registry.COLUMNS}
    for arch, width, wall, profile in [("mobilenet", 0.15, 100.0, "smoke"), ("cnn", 0.0625, 10.0, "smoke"),
                                       ("irnet", 1.0, 1.0, "full")]:
        registry.append({**base, "run_id": f"{arch}{width}", "arch": arch, "width": width, "params": 1, "epochs": 2,
                         "profile": profile, "recipe": "r", "seed": 0, "wall_s": wall, "timestamp": "1"}, reg)
    jobs = sweep.plan([("mobilenet", 0.15), ("cnn", 0.0625), ("irnet", 1.0)])
    est = sweep.estimates(jobs, "smoke", 4, reg)
    assert est["mobilenet-w0.15"] == pytest.approx(200.0 * sweep.ESTIMATE_MARGIN)  # 50 s per epoch, 4 epochs
    assert est["cnn-w0.0625"] == pytest.approx(20.0 * sweep.ESTIMATE_MARGIN)
    assert sweep.estimates(jobs, "smoke", 4, reg, margin=2.0)["cnn-w0.0625"] == pytest.approx(40.0)  # --margin
    assert pd.isna(est["irnet-w1"])  # only measured in another profile
    order = sorted(jobs, key=lambda j: sweep._cheapest(est, j))
    assert [j.name for j in order] == ["cnn-w0.0625", "mobilenet-w0.15", "irnet-w1"]
    noise = sweep.Job("cnn", 0.0625, seed=1)
    est[noise.name] = 1.0  # cheapest of all, but a second seed: after every first seed
    assert sorted([noise, *jobs], key=lambda j: sweep._cheapest(est, j))[-1] == noise


def test_a_run_that_would_not_finish_is_skipped_not_started(env, monkeypatch):
    import time

    monkeypatch.setenv("FER_DEADLINE", str(time.time() + 60))
    out = sweep.run_job(sweep.Job("mobilenet", 0.15), "smoke", 2, 120, {}, est_s=3600.0)
    assert out["result"] is None and out["skipped"].startswith("needs ~60 min")
    assert not (env / "runs").exists() or not any((env / "runs").rglob("state.json"))  # nothing trained


def test_the_whole_sweep_of_a_family_is_its_points_then_its_noise_seeds():
    from fer_utils import config, models

    jobs = sweep.whole_sweep(["cnn"])
    widths = models.FAMILY_WIDTHS["cnn"]
    assert [(j.width, j.seed) for j in jobs[:len(widths)]] == [(w, 0) for w in widths]
    noise = [(j.width, j.seed) for j in jobs[len(widths):]]
    assert noise == [(w, s) for s in config.NOISE_SEEDS for w in config.NOISE_POINTS["cnn"]]
    assert {j.arch for j in jobs} == {"cnn"} and len(set(j.name for j in jobs)) == len(jobs)
    with pytest.raises(SystemExit):
        sweep.main(["--whole", "--noise", "--profile", "smoke"])


def test_a_local_ray_start_that_times_out_is_tried_again():
    class FakeRay:
        def __init__(self, failures, message="The current node timed out during startup."):
            self.failures, self.message, self.calls, self.shutdowns = failures, message, [], 0

        def init(self, **kwargs):
            self.calls.append(kwargs)
            if len(self.calls) <= self.failures:
                raise Exception(self.message)

        def shutdown(self):
            self.shutdowns += 1

    ray = FakeRay(failures=2)
    sweep.start_local_ray(ray, {"num_cpus": 2}, attempts=3)
    assert ray.calls == [{"num_cpus": 2}] * 3 and ray.shutdowns == 2
    with pytest.raises(Exception, match="timed out during startup"):
        sweep.start_local_ray(FakeRay(failures=3), {}, attempts=3)
    other = FakeRay(failures=1, message="bad argument")
    with pytest.raises(Exception, match="bad argument"):
        sweep.start_local_ray(other, {}, attempts=3)
    assert len(other.calls) == 1  # any other error is not retried
