"""The results registry: ``runs.csv``, one row per finished training run.

Rows are appended and never rewritten (a registry written before a column was added gets that
column, blank in its rows, on its next append: :data:`ADDED`); a file whose header is not the
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
    # the fraction of the run's training time spent beside another training run on the same
    # machine (``runs.others_training``; blank in rows written before it was recorded)
    "shared",
    # a distilled run's teachers: the run ids its targets came from (in the loop, run once, or behind
    # its teacher file), ``;``-joined; blank for a plain run and in rows written before it was recorded
    "teachers",
)
#: columns added after the registry's first rows, oldest first: a file whose header stops before
#: some of them is an older registry, read with those columns blank and extended on the next append
ADDED = ("public_tta_acc", "private_tta_acc", "shared", "teachers")


def _older_header(header) -> bool:
    """Whether ``header`` is the registry's header as it was before some of :data:`ADDED` existed."""
    header = tuple(header)
    return (len(header) < len(COLUMNS) and header == COLUMNS[:len(header)]
            and set(COLUMNS[len(header):]) <= set(ADDED))


def default_path() -> Path:
    from .config import current

    return current().results / "runs.csv"


def _check(path: Path) -> list[str]:
    """The file's header, after checking that every row has one field per column of it (the
    registry's header, or an older one: :func:`_older_header`)."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise ValueError(f"{path}: registry file is empty (no header); fix or remove it")
    if tuple(rows[0]) != COLUMNS and not _older_header(rows[0]):
        raise ValueError(f"{path}, line 1: malformed registry header {rows[0]!r}; expected {list(COLUMNS)!r}")
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]):
            raise ValueError(f"{path}, line {i}: malformed registry row with {len(row)} fields, expected {len(rows[0])}")
    return rows[0]


def _extend(path: Path, header: list[str]) -> None:
    """Give an older registry the columns added since (blank in its rows), in one atomic replace."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    pad = [""] * (len(COLUMNS) - len(header))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(row + pad for row in rows[1:])
    os.replace(tmp, path)


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
        header = _check(path)
        if tuple(header) != COLUMNS:
            _extend(path, header)
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
    return pd.read_csv(path).reindex(columns=list(COLUMNS))  # an older registry: its new columns blank
