"""One place for every path, derived from the package root.

nbconvert runs a kernel in the notebook's folder and papermill in the caller's,
so nothing here depends on the working directory.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
NOTEBOOKS_DIR = ROOT / "notebooks"
#: committed artefacts, written only by the full profile on real FER2013
FIGURES_DIR = ROOT / "figures"
RESULTS_DIR = ROOT / "results"
REPORT_PATH = ROOT / "report.md"
#: git-ignored: synthetic / smoke outputs, training runs, deliverable folder
BUILD_DIR = ROOT / "build"
RUNS_DIR = ROOT / "runs"
DELIVERABLE_DIR = ROOT / "deliverable"
#: the shared copy of the real data set beside the repository (may be absent)
SHARED_FER2013 = ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz"


def output_dirs(committed: bool) -> dict[str, Path]:
    """Where figures and results go.

    ``committed=True`` (full profile on real data) writes the committed
    ``figures/`` and ``results/``; anything else writes under ``build/`` so a
    synthetic or smoke run never overwrites the real-data report.
    """
    if committed:
        return {"figures": FIGURES_DIR, "results": RESULTS_DIR, "report": REPORT_PATH}
    return {
        "figures": BUILD_DIR / "figures",
        "results": BUILD_DIR / "results",
        "report": BUILD_DIR / "report.md",
    }


def runs_dir() -> Path:
    """Training-run folder; ``FER_RUNS_DIR`` overrides it (tests use a temp dir)."""
    return Path(os.environ.get("FER_RUNS_DIR", RUNS_DIR))
