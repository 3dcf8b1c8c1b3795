"""Report helpers: rounded markdown tables and figure links relative to the report."""

from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.report import figure_link, fmt, md_table


def test_fmt_rounds_and_marks_missing():
    assert fmt(0.123456) == "0.123"
    assert fmt(np.int64(73663)) == "73,663"
    assert fmt(135440.0) == "135,440"
    assert fmt(float("nan")) == "—"
    assert fmt("int8") == "int8"
    assert fmt(True) == "yes" and fmt(np.bool_(False)) == "no"


def test_md_table():
    df = pd.DataFrame({"model": ["a", "b"], "acc": [0.61234, np.nan], "bytes": [1000, 2000]})
    assert md_table(df).splitlines() == [
        "| model | acc | bytes |", "|---|---|---|", "| a | 0.612 | 1,000 |", "| b | — | 2,000 |"]


def test_md_table_rounds_named_columns_apart():
    df = pd.DataFrame({"acc": [0.61234], "public_drop": [1.0512], "bytes": [1000]})
    assert md_table(df, column_digits={"public_drop": 2}).splitlines()[2] == "| 0.612 | 1.05 | 1,000 |"


def test_figure_link_is_relative_to_the_report(tmp_path):
    fig = tmp_path / "figures" / "x.png"
    assert figure_link(fig, tmp_path / "report.md", "alt") == "![alt](figures/x.png)"
    assert figure_link(fig, tmp_path / "build" / "report.md", "alt") == "![alt](../figures/x.png)"


def test_schedule_reads_the_recipe_column():
    from fer_utils import config, results, train

    prof = config.PROFILES["full-plateau"]
    assert results.schedule(train.recipe(prof, "mixed_bfloat16") + "|tag:kd-x") == "ep60/es10/lr4/bs64 bf16"
    assert results.schedule(train.recipe(prof)) == "ep60/es10/lr4/bs64"
    assert results.schedule(train.RECIPE).startswith("not recorded")
    budgeted = train.recipe(config.PROFILES["full"], "mixed_bfloat16")
    assert results.schedule(budgeted) == "wsd200/warm2/decay0.2/peak0.003 bs128 bf16"


def test_strip_stderr_keeps_everything_but_log_lines(tmp_path):
    import json

    from fer_utils import render

    nb = {"cells": [{"cell_type": "code", "source": "x", "outputs": [
        {"output_type": "stream", "name": "stderr", "text": "oneDNN custom operations are on\n"},
        {"output_type": "stream", "name": "stdout", "text": "kept\n"},
        {"output_type": "display_data", "data": {"text/markdown": "## kept"}, "metadata": {}}]},
        {"cell_type": "markdown", "source": "text"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    assert render.strip_stderr(path) == 1
    outputs = json.loads(path.read_text())["cells"][0]["outputs"]
    assert [o.get("name", o["output_type"]) for o in outputs] == ["stdout", "display_data"]


def test_distillation_pairs_match_the_plain_run_of_the_same_recipe():
    from fer_utils import config, results, train

    prof = config.PROFILES["full-plateau"]
    bf16, fp32 = train.recipe(prof, "mixed_bfloat16"), train.recipe(prof)

    def row(arch, width, recipe, acc, ts, params=100):
        return {"run_id": f"{arch}{width}{recipe[-12:]}{ts}", "arch": arch, "width": width, "seed": 0,
                "params": params, "epochs": 60, "best_val_acc": acc, "public_acc": acc, "private_acc": acc + 0.01,
                "data_fingerprint": "f", "profile": "full", "recipe": recipe, "timestamp": ts}

    runs = pd.DataFrame([
        row("cnn", 0.125, bf16, 0.50, "1"),                        # the plain partner
        row("cnn", 0.125, bf16 + "|tag:kd-cnn1-T4-a0.7", 0.55, "2"),
        row("cnn", 0.125, fp32, 0.40, "3"),                        # another precision: never the partner
        row("irnet", 1.0, train.RECIPE, 0.56, "1"),                # older schedule: no partner for the student below
        row("irnet", 1.0, fp32 + "|tag:kd-cnn1-T4-a0.7", 0.60, "4"),
    ])
    pairs = results.distillation_pairs(runs, "full")
    assert list(pairs.training) == ["labels only", "distilled (kd-cnn1-T4-a0.7)"]
    assert list(pairs.public_acc) == [0.50, 0.55]
    assert pairs.private_gain.iloc[1] == 5.0 and pd.isna(pairs.private_gain.iloc[0])
    assert set(pairs.schedule) == {"ep60/es10/lr4/bs64 bf16"}
    assert results.distillation_pairs(runs.iloc[:0], "full").empty


def test_distilled_runs_get_their_own_name_and_latest_row():
    from fer_utils import results

    rows = pd.DataFrame([
        {"arch": "cnn", "width": 0.125, "seed": 0, "params": 5, "profile": "full", "timestamp": "1", "recipe": "r"},
        {"arch": "cnn", "width": 0.125, "seed": 0, "params": 5, "profile": "full", "timestamp": "2", "recipe": "r|tag:kd-cnn1-T4-a0.7"},
        {"arch": "cnn", "width": 0.125, "seed": 0, "params": 5, "profile": "full", "timestamp": "3", "recipe": "r|tag:kd-cnn1-T4-a0.7"},
    ])
    assert list(results.latest_runs(rows, "full").model) == ["CNN w0.125"]
    every = results.latest_runs(rows, "full", recipe_tag=None)
    assert list(every.model) == ["CNN w0.125", "CNN w0.125 + KD (mixed targets)"]
    assert list(every.timestamp) == ["1", "3"]
    assert results.run_label(rows.iloc[1]) == "CNN w0.125 + KD (mixed targets)"
    assert results.model_label("irnet", 1.0, "kdh-cnn1-T4-a0.7") == "IRNet (ours) w1 + KD"
    assert results.model_label("cnn", 1.0, "other") == "HW3 CNN [other]"


def test_every_family_has_its_own_colour():
    from fer_utils import plots, results

    palette = plots.family_palette()
    assert set(palette) == set(results.ARCH_NAMES.values()) and len(set(palette.values())) == len(palette)


def test_only_the_report_notebook_becomes_the_report(tmp_path, monkeypatch):
    from fer_utils import render

    written = []
    monkeypatch.setattr(render, "execute", lambda nb, out_dir, *a: out_dir / Path(nb).name)
    monkeypatch.setattr(render, "to_markdown", lambda executed, report: written.append(executed.name))
    assert render.render([Path("notebooks/04_compression.ipynb")]) is None and written == []
    render.render([Path("notebooks/05_comparison.ipynb"), Path("notebooks/06_report.ipynb")])
    assert written == ["06_report.ipynb"]


def test_family_gap_interpolates_the_other_family_in_log_parameters():
    from fer_utils import results

    runs = pd.DataFrame({
        "arch": ["cnn", "cnn", "mobilenet", "mobilenet", "mobilenet"],
        "model": ["c1", "c2", "m0", "m1", "m2"],
        "params": [1_000, 100_000, 500, 10_000, 1_000_000],
        "public_acc": [0.40, 0.60, 0.1, 0.55, 0.9], "private_acc": [0.40, 0.60, 0.1, 0.55, 0.9]})
    gap = results.family_gap(runs, "mobilenet", "cnn")
    assert list(gap.model) == ["m1"]  # m0 and m2 lie outside the CNN's measured range
    assert np.isclose(gap.other_mean.iloc[0], 0.50) and np.isclose(gap.gap_points.iloc[0], 5.0)
    assert results.family_gap(runs, "cnn", "irnet").empty


def test_sweep_status_counts_the_widths_on_the_family_recipe():
    from fer_utils import config, results, train

    new, old = train.recipe(config.PROFILES["full-plateau"]), train.RECIPE
    runs = pd.DataFrame({
        "arch": ["mobilenet"] * 4 + ["cnn"],
        "width": [0.5, 1.0, 1.0, 2.0, 1.0],
        "params": [1_000, 5_000, 5_000, 100_000, 9],
        "recipe": [new, old, old, new, new],
        "timestamp": ["2026-01-01", "2025-01-01", "2025-01-02", "2026-01-02", "2026-01-03"]})
    status = results.sweep_status(runs, "mobilenet", (0.5, 1.0, 2.0, 3.0))
    assert status["recipe"] == "ep60/es10/lr4/bs64"
    assert status["on"] == [0.5, 2.0] and status["off"] == [1.0, 1.0] and status["missing"] == [3.0]
    assert status["params"] == (1_000, 100_000) and status["decades"] == 2.0
    empty = results.sweep_status(runs, "irnet", (1.0,))
    assert empty["recipe"] is None and empty["on"] == [] and empty["missing"] == [1.0] and empty["decades"] == 0.0


def test_crossing_finds_the_first_sign_change_of_the_gap():
    from fer_utils import results

    gap = pd.DataFrame({"model": ["a", "b", "c", "d"], "params": [30, 10, 20, 40],
                        "gap_points": [-1.0, 5.0, 2.0, -3.0]})
    cross = results.crossing(gap)
    assert cross["before"]["model"] == "c" and cross["after"]["model"] == "a"
    assert results.crossing(gap[gap.gap_points > 0]) is None
    assert results.crossing(gap.iloc[0:0]) is None


def test_family_scatter_rings_the_rows_of_another_schedule():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fer_utils import config, plots, train

    new = train.recipe(config.PROFILES["full-plateau"])
    runs = pd.DataFrame({"params": [100, 1_000, 10_000], "public_acc": [0.3, 0.4, 0.5],
                         "private_acc": [0.3, 0.5, 0.5], "recipe": [new, train.RECIPE, new]})
    fig, ax = plt.subplots()
    plots.family_scatter(ax, runs, recipe="ep60/es10/lr4/bs64")
    rings = [c for c in ax.collections if c.get_label().startswith("other schedule")]
    assert len(rings) == 1 and sorted(rings[0].get_offsets()[:, 1]) == [0.4, 0.45, 0.5]
    assert set(rings[0].get_offsets()[:, 0]) == {1_000}
    ax.clear()
    plots.family_scatter(ax, runs.iloc[[0, 2]], recipe="ep60/es10/lr4/bs64")
    assert not ax.collections
    plt.close(fig)


def test_budget_lines_next_to_each_other_dash_out_of_phase():
    from fer_utils import plots

    budgets = {"225 kB @ seed": 120_000, "650 kB @ seed": 349_000, "225 kB @ best": 351_000, "650 kB @ best": 1e6}
    styles = plots.budget_linestyles(budgets)
    assert styles.keys() == budgets.keys()
    assert all(pattern == (4, 4) for _, pattern in styles.values())
    phase = {label: offset for label, (offset, _) in styles.items()}
    # the two that nearly coincide (349k, 351k) must not draw their dashes on top of each other
    assert phase["650 kB @ seed"] != phase["225 kB @ best"]
    assert phase["225 kB @ seed"] != phase["650 kB @ seed"] and phase["225 kB @ best"] != phase["650 kB @ best"]
