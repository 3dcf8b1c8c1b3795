"""The results registry: ``runs.csv``, one row per finished training run.

Rows are appended and never rewritten; a file whose header is not the
registry's is an error, never a silent reset.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

COLUMNS = (
    "run_id", "arch", "width", "params", "flops", "epochs", "best_val_acc",
    "public_acc", "private_acc", "wall_s", "train_images_per_s", "backend",
    "data_source", "data_fingerprint", "profile", "seed", "recipe", "git_commit", "timestamp",
    # mirror test-time augmentation (blank in rows written before it was measured)
    "public_tta_acc", "private_tta_acc",
)


def default_path() -> Path:
    from .config import current

    return current().results / "runs.csv"


def _check(path: Path) -> None:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise ValueError(f"{path}: registry file is empty (no header); fix or remove it")
    if tuple(rows[0]) != COLUMNS:
        raise ValueError(f"{path}, line 1: malformed registry header {rows[0]!r}; expected {list(COLUMNS)!r}")
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(COLUMNS):
            raise ValueError(f"{path}, line {i}: malformed registry row with {len(row)} fields, expected {len(COLUMNS)}")


def append(row: dict, path: str | os.PathLike | None = None) -> Path:
    """Append one run's row, creating the file with its header if needed."""
    path = Path(path) if path is not None else default_path()
    missing = [c for c in COLUMNS if c not in row]
    extra = [c for c in row if c not in COLUMNS]
    if missing or extra:
        raise ValueError(f"registry row: missing {missing}, unknown {extra}")
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    if not new:
        _check(path)
    with open(path, "a", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        if new:
            writer.writerow(COLUMNS)
        writer.writerow([row[c] for c in COLUMNS])
    return path


def read(path: str | os.PathLike | None = None):
    """The registry as a DataFrame (empty with the right columns if absent)."""
    import pandas as pd

    path = Path(path) if path is not None else default_path()
    if not path.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    _check(path)
    return pd.read_csv(path)
