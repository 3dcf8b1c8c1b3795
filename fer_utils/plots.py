"""Figures: one ``save_fig`` and the house style.

``save_fig`` writes ``<figures>/<name>.png`` at a fixed dpi into the folder the
current setup names (committed ``figures/`` for the full profile on real data,
``build/figures/`` otherwise) and leaves the figure displayed as the cell output.
Every figure carries the data source and profile in its title.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

DPI = 110


def style() -> None:
    """Seaborn's whitegrid style with a fixed font size, used by every notebook."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.95)
    matplotlib.rcParams["figure.dpi"] = DPI
    matplotlib.rcParams["savefig.dpi"] = DPI


def save_fig(name: str, fig=None, title: str | None = None) -> Path:
    """Save ``fig`` (default: the current figure) as ``<name>.png`` and show it.

    The figure's suptitle becomes ``title`` (if given) followed by the data
    source and profile, so a figure is never mistaken for a real-data one.
    """
    import matplotlib.pyplot as plt

    from .config import current

    setup = current()
    fig = fig or plt.gcf()
    caption = setup.caption()
    fig.suptitle(f"{title}\n{caption}" if title else caption, fontsize=10)
    fig.tight_layout()
    path = setup.figures / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.show()
    return path
