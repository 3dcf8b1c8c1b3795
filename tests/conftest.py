import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from fer_utils import paths  # noqa: E402

PIX = " ".join(["7"] * 2304)


def real_data_path() -> Path | None:
    """The real FER2013 for tests: FER2013_PATH if it names a file, else the shared copy."""
    env = os.environ.get("FER2013_PATH")
    for cand in ([Path(env)] if env else []) + [paths.SHARED_FER2013]:
        if cand.is_file():
            return cand
    return None


@pytest.fixture(autouse=True)
def own_active_dir(tmp_path, monkeypatch):
    """Each test's training processes mark themselves in its own folder: a test never counts this
    machine's real training runs as sharing its CPU (``runs.others_training``), nor they it; and an
    epoch's CPU share does not count (a few batches are too short to measure it). A test that names
    no run folder trains in its own, never in the checkout's ``runs/`` (where this machine's real runs
    resume) nor in one another test process of ``make test`` writes at the same time."""
    monkeypatch.setenv("FER_ACTIVE_DIR", str(tmp_path / "active"))
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FER_SHARED_CPU_SHARE", "0")


@pytest.fixture
def kaggle_csv(tmp_path):
    """Write a Kaggle-schema CSV from (emotion, pixels, usage) rows; returns its path."""
    def make(rows, name="fer.csv", header="emotion,pixels,Usage"):
        path = tmp_path / name
        body = [header] + [f"{e},{p},{u}" for e, p, u in rows]
        path.write_text("\n".join(body) + "\n")
        return path
    return make


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def smoke_kw(tmp_path):
    """Keyword arguments of a small training on the smoke profile: 200 synthetic faces (120 to train
    on), the run folders and registry under ``tmp_path``, quiet."""
    from fer_utils import data

    return dict(dataset=data.synthetic(200, seed=5), runs_root=tmp_path / "runs",
                registry_path=tmp_path / "runs.csv", verbose=0, train_limit=120)
