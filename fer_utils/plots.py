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


def family_palette() -> dict:
    """One colour per model family, the same in every panel and figure."""
    from .results import ARCH_NAMES

    return dict(zip(ARCH_NAMES.values(), ("tab:blue", "tab:red", "tab:green")))


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


def budget_linestyles(budgets: dict) -> dict:
    """A dashed line style per budget ({label: parameter count}): budgets next to each other by
    parameter count get their dashes out of phase, so two that nearly coincide (650 kB at ~1.9 bytes
    per parameter lies at ~225 kB at ~0.65) still show both colours instead of one hiding the other."""
    return {label: (4 * (rank % 2), (4, 4)) for rank, label in enumerate(sorted(budgets, key=budgets.get))}


def family_scatter(ax, runs, baselines=None, budgets=None, xlim=None, recipe=None):
    """Parameters (log x) vs PublicTest, PrivateTest and their mean for one family's sweep rows.

    ``baselines``: DataFrame with baseline, public_acc, private_acc (dotted horizontal lines);
    ``budgets``: {label: parameter count} (dashed vertical lines, ``budget_linestyles``); ``recipe``: the
    family's schedule (``results.schedule``): rows trained on another one are ringed, so the curve is not
    read as one recipe.
    """
    import numpy as np

    from .results import schedule

    df = runs.sort_values("params")
    mean = (df["public_acc"] + df["private_acc"]) / 2
    for y, label, marker in ((df["public_acc"], "PublicTest", "o"), (df["private_acc"], "PrivateTest", "s"),
                             (mean, "mean", "^")):
        ax.plot(df["params"], y, marker=marker, label=label, lw=1.5 if label == "mean" else 1)
    if recipe is not None:
        off = (df["recipe"].map(schedule) != recipe).to_numpy()
        if off.any():
            ax.scatter(np.repeat(df["params"].to_numpy()[off], 3),
                       np.concatenate([df["public_acc"].to_numpy()[off], df["private_acc"].to_numpy()[off],
                                       mean.to_numpy()[off]]),
                       s=160, facecolors="none", edgecolors="black", lw=1.2, zorder=5,
                       label=f"other schedule than {recipe}")
    greys = ["0.25", "0.45", "0.65"]
    budget_colours = ["tab:purple", "tab:brown", "tab:pink", "tab:olive"]
    if baselines is not None:
        for i, (_, b) in enumerate(baselines.iterrows()):
            ax.axhline((b.public_acc + b.private_acc) / 2, ls=":", color=greys[i % len(greys)], lw=1.2,
                       label=f"{b.baseline} (≈ mean)")
    styles = budget_linestyles(budgets or {})
    for i, (label, params) in enumerate((budgets or {}).items()):
        ax.axvline(params, ls=styles[label], color=budget_colours[i % len(budget_colours)], lw=1.2, label=label)
    ax.set_xscale("log")
    if xlim is not None:
        ax.set_xlim(*xlim)
        sel = df[(df["params"] >= xlim[0]) & (df["params"] <= xlim[1])]
        if len(sel):
            lo = np.nanmin(sel[["public_acc", "private_acc"]].to_numpy())
            hi = np.nanmax(sel[["public_acc", "private_acc"]].to_numpy())
            ax.set_ylim(lo - 0.03, hi + 0.03)
    ax.set_xlabel("parameters")
    ax.set_ylabel("accuracy")
    return ax


def pareto_front(df, x: str = "bytes", y: str = "private_acc"):
    """Rows not beaten by any other row (fewer or equal bytes and higher accuracy), by increasing x."""
    df = df.sort_values([x, y], ascending=[True, False])
    best, keep = -1.0, []
    for idx, row in df.iterrows():
        if row[y] > best:
            keep.append(idx)
            best = row[y]
    return df.loc[keep]


def budget_figure(study, target: float | None = None, target_label: str = "target"):
    """The training-budget study (``results.budget_study``): accuracy against the epoch budget (left)
    and against CPU hours (right), budgeted runs as lines, the first recipe's row as crosses; a
    dotted line at ``target`` (PrivateTest)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3), sharey=True)
    budgeted, first = study[study["budget"].notna()], study[study["budget"].isna()]
    series = (("public_acc", "PublicTest", "tab:blue"), ("private_acc", "PrivateTest", "tab:orange"),
              ("private_tta_acc", "PrivateTest, mirror TTA", "tab:green"))
    for ax, x, xlabel in zip(axes, ("epochs", "cpu_hours"), ("epochs (the run's budget)", "CPU hours (2 cores)")):
        for col, name, colour in series:
            ax.plot(budgeted[x], budgeted[col], marker="o", color=colour, label=f"{name} (budgeted schedule)")
            if first[col].notna().any():
                ax.scatter(first[x], first[col], marker="X", s=70, color=colour, label=f"{name} (first recipe)")
        if target is not None:
            ax.axhline(target, ls=":", color="0.3", lw=1.2, label=target_label)
        ax.set(xscale="log", xlabel=xlabel, ylabel="accuracy")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=8, frameon=False)
    return fig
