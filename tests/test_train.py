"""The training engine: a run killed with SIGKILL after one epoch resumes at epoch 2."""
import json
import os
import subprocess
import sys

import pandas as pd

from fer_utils import data, paths


def _cli(env, *args):
    return subprocess.run([sys.executable, "-m", "fer_utils.train", "--arch", "irnet", "--width", "0.5",
                           "--profile", "smoke", "--epochs", "3", "--train-limit", "200",
                           "--registry", env["TEST_REGISTRY"], *args],
                          cwd=paths.ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_kill_and_resume_continues_at_epoch_2(tmp_path):
    csv = data.write_kaggle_csv(data.synthetic(300, seed=4), tmp_path / "tiny.csv")
    env = dict(os.environ, FER2013_PATH=str(csv), FER_RUNS_DIR=str(tmp_path / "runs"),
               FER_KILL_AFTER_EPOCH="1", TF_CPP_MIN_LOG_LEVEL="2",
               TEST_REGISTRY=str(tmp_path / "runs.csv"))
    first = _cli(env)
    assert first.returncode == -9, first.stderr[-2000:]  # really killed by SIGKILL
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "state.json").read_text())["epoch"] == 1
    assert not (run_dir / "result.json").exists()

    env.pop("FER_KILL_AFTER_EPOCH")
    second = _cli(env)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming after epoch 1" in second.stdout
    assert "epoch 1/3" not in second.stdout and "epoch 2/3" in second.stdout
    log = pd.read_csv(run_dir / "log.csv")
    assert log["epoch"].tolist() == [1, 2, 3]  # epoch 1 not repeated, none missing
    result = json.loads((run_dir / "result.json").read_text())
    assert result["epochs"] == 3 and result["params"] > 0

    # a finished run is read back, never retrained, and its registry row is not duplicated
    third = _cli(env)
    assert third.returncode == 0 and "read back, not retrained" in third.stdout
    rows = pd.read_csv(tmp_path / "runs.csv")
    assert (rows["run_id"] == result["run_id"]).sum() == 1
    copied = pd.read_csv(tmp_path / "logs" / f"{result['run_id']}.csv")
    assert copied["epoch"].tolist() == [1, 2, 3]


def test_soft_targets_mix_teacher_and_labels():
    import numpy as np

    from fer_utils import train

    class Teacher:
        def predict(self, x, batch_size, verbose):
            return np.tile([0.7, 0.1, 0.05, 0.05, 0.04, 0.03, 0.03], (len(x), 1))

    y = np.array([3, 0])
    t = train.soft_targets(Teacher(), np.zeros((2, 48, 48, 1)), y, temperature=1.0, alpha=0.5)
    assert np.allclose(t.sum(axis=1), 1)
    assert np.isclose(t[0, 3], 0.5 * 0.05 + 0.5) and np.isclose(t[1, 0], 0.5 * 0.7 + 0.5)
    hot = train.soft_targets(Teacher(), np.zeros((1, 48, 48, 1)), y[:1], temperature=4.0, alpha=1.0)
    assert hot[0].max() < 0.7  # a higher temperature flattens the teacher
    import pytest
    with pytest.raises(ValueError, match="temperature"):
        train.soft_targets(Teacher(), np.zeros((1, 48, 48, 1)), y[:1], temperature=0, alpha=0.5)
