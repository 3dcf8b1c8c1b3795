"""Small helpers for the rendered report: markdown tables and figure links.

The report notebook displays markdown built here, so ``nbconvert --no-input``
turns it into ``report.md`` with links to figure files that work on GitHub.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def fmt(value, digits: int = 3) -> str:
    """Round floats for display; thousands separators for integers; yes/no for booleans; '—' for missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        if float(value).is_integer() and abs(value) >= 1000:  # a count in a column that also holds NaN
            return f"{int(value):,}"
        return f"{float(value):.{digits}f}"
    return str(value)


def md_table(df, digits: int = 3, index: bool = False, column_digits: dict | None = None) -> str:
    """A GitHub markdown table of a DataFrame with rounded numbers.

    ``digits`` rounds every float column; ``column_digits`` overrides it per column (percentage
    points, say, read better with two decimals than accuracies with three).
    """
    frame = df.reset_index() if index else df
    cols = [str(c) for c in frame.columns]
    per_col = [(column_digits or {}).get(c, digits) for c in cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v, d) for v, d in zip(row, per_col)) + " |")
    return "\n".join(lines)


def figure_link(path: Path, report_path: Path, alt: str) -> str:
    """Markdown image link to ``path`` relative to the report's folder."""
    rel = os.path.relpath(Path(path).resolve(), Path(report_path).resolve().parent)
    return f"![{alt}]({Path(rel).as_posix()})"
