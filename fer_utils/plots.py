"""Figures: one ``save_fig`` and the house style.

``save_fig`` writes ``<figures>/<name>.png`` at a fixed dpi into the folder the
current setup names (committed ``figures/`` for the full profile on real data,
``build/figures/`` otherwise) and leaves the figure displayed as the cell output.
Every figure carries the data source and profile in its title.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

DPI = 110


#: the family of an ensemble of files (``ensembles.csv``) beside the model families in a figure
ENSEMBLE = "ensemble of files"


def family_palette() -> dict:
    """One colour per model family (and one for ensembles of files), the same in every panel and figure."""
    from .results import ARCH_NAMES

    return {**dict(zip(ARCH_NAMES.values(), ("tab:blue", "tab:red", "tab:green"))), ENSEMBLE: "tab:purple"}


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
    """Parameters (log x) vs PublicTest, PrivateTest and their mean for one family's sweep points
    (``results.family_points``: seeds averaged; where a size has several, a bar from its worst to its
    best seed's mean).

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
    if "seeds" in df and (df["seeds"] > 1).any():  # the seeds' spread of the mean, min to max
        rep = df[df["seeds"] > 1]
        rep_mean = (rep["public_acc"] + rep["private_acc"]) / 2
        ax.errorbar(rep["params"], rep_mean, yerr=[rep_mean - rep["mean_min"], rep["mean_max"] - rep_mean],
                    fmt="none", ecolor="black", elinewidth=1.2, capsize=4, zorder=6, label="seeds' min to max (mean)")
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


def _sparse_log_label(value: float, _pos=None) -> str:
    """A minor tick's label on a log axis: 2 and 5 times a power of ten only, so the ticks of a decade
    do not run into each other (on an axis spanning two decades too)."""
    import math

    if value <= 0:
        return ""
    lead = round(value / 10 ** math.floor(math.log10(value)), 6)
    return f"{value:g}" if lead in (2, 5) else ""


#: line style and marker of each other augmentation in :func:`budget_figure`, in the study's order (the
#: standard one is solid with circles, the target dotted)
AUGMENT_STYLES = (("-.", "^"), ("--", "s"), ((0, (5, 1, 1, 1, 1, 1)), "D"))


def budget_figure(study, target: float | None = None, target_label: str = "target"):
    """The training-budget study (``results.budget_study``): accuracy against the epoch budget (left)
    and against CPU hours (right), budgeted runs as lines, the first recipe's row as crosses; a
    dotted line at ``target`` (PrivateTest). Rows on another augmentation than the standard one
    (its ``augment`` column) are broken lines (:data:`AUGMENT_STYLES`), PrivateTest and its mirror TTA
    in the standard rows' colours."""
    import matplotlib.pyplot as plt

    from .results import study_augment

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3), sharey=True)
    aug = study_augment(study)
    budgeted, first = study[study["budget"].notna() & (aug == "standard")], study[study["budget"].isna()]
    others = study[study["budget"].notna() & (aug != "standard")]
    series = (("public_acc", "PublicTest", "tab:blue"), ("private_acc", "PrivateTest", "tab:orange"),
              ("private_tta_acc", "PrivateTest, mirror TTA", "tab:green"))
    for ax, x, xlabel in zip(axes, ("epochs", "cpu_hours"), ("epochs (the run's budget)", "CPU hours (2 cores)")):
        for col, name, colour in series:
            ax.plot(budgeted[x], budgeted[col], marker="o", color=colour, label=f"{name} (budgeted schedule)")
            if first[col].notna().any():
                ax.scatter(first[x], first[col], marker="X", s=70, color=colour, label=f"{name} (first recipe)")
        for i, (name, rows) in enumerate(others.groupby(aug[others.index], sort=False)):
            rows = rows.sort_values("epochs")
            ls, marker = AUGMENT_STYLES[i % len(AUGMENT_STYLES)]
            for col, metric, colour in series[1:]:
                ax.plot(rows[x], rows[col], marker=marker, ls=ls, color=colour, label=f"{metric} (--augment {name})")
        if target is not None:
            ax.axhline(target, ls=":", color="0.3", lw=1.2, label=target_label)
        ax.set(xscale="log", xlabel=xlabel, ylabel="accuracy")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ticks = sorted(set(study["epochs"].astype(int)))
    axes[0].set_xticks(ticks, [str(t) for t in ticks])  # the budgets themselves
    axes[1].xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(_sparse_log_label))  # hours span about a decade
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=8, frameon=False)
    return fig


def small_end_xlim(params, span: float = 12.0, margin: float = 1.25):
    """The x range of a family's "small end" panel: its sizes within ``span`` times the smallest,
    with a ``margin`` (a factor, on the log axis) on both sides so no point or error bar sits on an edge."""
    params = sorted(float(p) for p in params)
    inside = [p for p in params if p <= params[0] * span]
    return inside[0] / margin, inside[-1] * margin


def family_figure(runs, arch: str, baselines=None, budgets=None):
    """Q2 / Q3: one family's widths against accuracy, all widths (left) and the small end (right).

    ``runs``: the sweep's rows, one per seed (averaged here, ``results.family_points``). Prints the
    family's sweep status (``results.sweep_status``); sizes on another schedule than the family's
    are ringed. None when the family has no rows yet."""
    import matplotlib.pyplot as plt

    from . import models, results

    runs = results.family_points(runs)
    fam = runs[runs.arch == arch]
    if fam.empty:
        print(f"no {arch} runs in this profile yet")
        return None
    status = results.sweep_status(runs, arch, models.FAMILY_WIDTHS[arch])
    print(f"{arch}: {len(status['on'])} of {len(status['widths'])} widths on {status['recipe']}, "
          f"{status['decades']} decades; other schedule: {status['off']}; missing: {status['missing']}")
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    family_scatter(axes[0], fam, baselines, budgets, recipe=status["recipe"])
    family_scatter(axes[1], fam, baselines, budgets, xlim=small_end_xlim(fam["params"]), recipe=status["recipe"])
    axes[0].set_title(f"all widths ({len(status['on'])} of {len(status['widths'])} on {status['recipe']})")
    axes[1].set_title("small end")
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes:
        ax.legend().remove()
    # below both panels: inside, it would hide the large widths' points
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=5, fontsize=8, frameon=False)
    return fig


def q4_figure(runs, codecs, limits):
    """Q4: the mean of PublicTest and PrivateTest per family against parameters (left; ``runs`` one
    row per seed: the seeds' mean, and a bar from their min to max where a size has several); every
    (model, codec) file against its bytes with the Pareto front and the byte ``limits`` (right)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from .results import ARCH_NAMES, sweep_seeds

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    runs = sweep_seeds(runs)
    both = runs.assign(mean_acc=(runs.public_acc + runs.private_acc) / 2, family=runs.arch.map(ARCH_NAMES))
    # one row per seed: the line is the seeds' mean, a bar their min to max (sizes with one seed: none)
    sns.lineplot(data=both.sort_values("params"), x="params", y="mean_acc", hue="family", palette=family_palette(),
                 marker="o", errorbar=("pi", 100), err_style="bars", err_kws={"capsize": 3}, ax=axes[0])
    axes[0].set(xscale="log", xlabel="parameters", ylabel="mean of PublicTest and PrivateTest",
                xlim=(both.params.min() / 3, both.params.max() * 3))  # at least a decade, so ticks stay readable
    if not codecs.empty:
        sns.scatterplot(data=codecs, x="bytes", y="private_acc", hue="family", style="family",
                        palette=family_palette(), s=40, alpha=0.8, ax=axes[1])
        front = pareto_front(codecs)
        axes[1].plot(front.bytes, front.private_acc, "k--", lw=1, marker="o", mfc="none", ms=11, label="Pareto front")
        for limit in limits:
            axes[1].axvline(limit, ls=":", color="gray", lw=1)
        axes[1].set(xscale="log", xlabel="weights file bytes", ylabel="PrivateTest accuracy")
        axes[1].legend(fontsize=7)
    return fig


def codec_figure(codecs):
    """Every codec of the width-1.0 models: file bytes against PrivateTest (left), bytes per parameter (right),
    one legend below both (inside either panel it covers points or bars)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    sns.scatterplot(data=codecs, x="bytes", y="private_acc", hue="model", style="model", s=60, ax=axes[0])
    axes[0].set(xscale="log", xlabel="file bytes", ylabel="PrivateTest accuracy")
    order = codecs.groupby("codec")["bytes_per_param"].median().sort_values(ascending=False).index  # largest first,
    sns.barplot(data=codecs, y="codec", x="bytes_per_param", hue="model", order=order, ax=axes[1],  # whatever the
                legend=False)  # row order
    axes[1].set(xlabel="bytes per parameter", ylabel="")
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].get_legend().remove()
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0), ncol=min(4, len(labels)), frameon=False)
    return fig


def learning_curves_figure(curves):
    """Training and validation accuracy per epoch, one panel per model (``results.learning_curves``), a
    model's seeds as their mean and their range (deterministic: a bootstrap band would change on every
    render); None when no run has a log yet."""
    import seaborn as sns

    if curves.empty:
        print("no finished runs with logs yet")
        return None
    grid = sns.relplot(data=curves, x="epoch", y="accuracy", hue="set", col="model", kind="line",
                       errorbar=("pi", 100), col_wrap=4, height=2.8, aspect=1.25, facet_kws={"sharey": True})
    grid.set_titles("{col_name}")
    # below the panels: at the right it covers the last column's titles
    sns.move_legend(grid, "upper center", bbox_to_anchor=(0.5, 0), ncol=2, title=None, frameon=False)
    return grid.figure


def confusion_figure(conf):
    """Row-normalised PrivateTest confusion matrices, one panel per model of ``conf``
    (``measure.confusion_counts``), and the per-class accuracy table (the diagonals)."""
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import seaborn as sns

    from .constants import CLASSES

    shown = list(dict.fromkeys(conf.model))
    fig, axes = plt.subplots(1, len(shown), figsize=(6.2 * len(shown), 5))
    per_class = []
    for ax, name in zip(np.atleast_1d(axes), shown):
        m = (conf[conf.model == name].pivot_table(index="true", columns="pred", values="count", aggfunc="sum")
             .reindex(index=range(len(CLASSES)), columns=range(len(CLASSES))).fillna(0))
        norm = m.div(m.sum(axis=1).replace(0, np.nan), axis=0)
        sns.heatmap(norm, annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1, cbar=False, ax=ax,
                    xticklabels=CLASSES, yticklabels=CLASSES)
        ax.set(title=name, xlabel="predicted", ylabel="true")
        per_class.append(pd.Series(np.diag(norm.to_numpy()), index=list(CLASSES), name=name))
    return fig, pd.concat(per_class, axis=1).round(3)


def class_counts_figure(counts):
    """Images per class and split (``FERDataset.counts()``) as grouped bars."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    long = (counts.drop(columns="total").reset_index(names="split")
            .melt(id_vars="split", var_name="class", value_name="images"))
    fig, ax = plt.subplots(figsize=(9, 4))
    sns.barplot(data=long, x="class", y="images", hue="split", ax=ax)
    ax.set_xlabel("")
    return fig


def sample_grid(ds, per_class: int = 8, seed: int = 0):
    """``per_class`` random Training faces of every class, one row per class."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .constants import CLASSES

    rng = np.random.default_rng(seed)
    train = ds.subset("Training")
    fig, axes = plt.subplots(len(CLASSES), per_class, figsize=(per_class * 1.1, len(CLASSES) * 1.2))
    for c, name in enumerate(CLASSES):
        idx = rng.choice(np.flatnonzero(train.labels == c), per_class, replace=False)
        for j, i in enumerate(idx):
            ax = axes[c, j]
            ax.imshow(train.images[i, :, :, 0], cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center")
    return fig


def pixel_histogram(ds):
    """The distribution of pixel values in each split."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 3.5))
    for split in ds.split_names():
        hist = np.bincount(ds.subset(split).images.ravel(), minlength=256)
        ax.plot(np.arange(256), hist / hist.sum(), label=split)
    ax.set_xlabel("pixel value")
    ax.set_ylabel("fraction of pixels")
    ax.legend()
    return fig


def mean_faces(ds):
    """The mean Training face of every class."""
    import matplotlib.pyplot as plt

    from .constants import CLASSES

    train = ds.subset("Training")
    fig, axes = plt.subplots(1, len(CLASSES), figsize=(len(CLASSES) * 1.5, 2.2))
    for c, (ax, name) in enumerate(zip(axes, CLASSES)):
        ax.imshow(train.images[train.labels == c].mean(axis=0)[:, :, 0], cmap="gray")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    return fig


def params_vs_macs(arch_table):
    """Parameters against multiply-adds of every family member (``models.architecture_table``)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    sns.lineplot(data=arch_table, x="params", y="MACs", hue="arch", marker="o", ax=ax)
    for _, r in arch_table[arch_table.width == 1.0].iterrows():
        ax.annotate(f"{r.arch} w1.0", (r.params, r.MACs), textcoords="offset points", xytext=(6, -10), fontsize=8)
    ax.set(xscale="log", yscale="log", xlabel="parameters", ylabel="multiply-adds per image")
    return fig
