"""Report helpers: rounded markdown tables and figure links relative to the report."""

import numpy as np
import pandas as pd

from fer_utils.report import figure_link, fmt, md_table


def test_fmt_rounds_and_marks_missing():
    assert fmt(0.123456) == "0.123"
    assert fmt(np.int64(73663)) == "73,663"
    assert fmt(135440.0) == "135,440"
    assert fmt(float("nan")) == "—"
    assert fmt("int8") == "int8"


def test_md_table():
    df = pd.DataFrame({"model": ["a", "b"], "acc": [0.61234, np.nan], "bytes": [1000, 2000]})
    assert md_table(df).splitlines() == [
        "| model | acc | bytes |", "|---|---|---|", "| a | 0.612 | 1,000 |", "| b | — | 2,000 |"]


def test_figure_link_is_relative_to_the_report(tmp_path):
    fig = tmp_path / "figures" / "x.png"
    assert figure_link(fig, tmp_path / "report.md", "alt") == "![alt](figures/x.png)"
    assert figure_link(fig, tmp_path / "build" / "report.md", "alt") == "![alt](../figures/x.png)"


def test_schedule_reads_the_recipe_column():
    from fer_utils import config, results, train

    prof = config.PROFILES["full"]
    assert results.schedule(train.recipe(prof, "mixed_bfloat16") + "|tag:kd-x") == "ep60/es10/lr4/bs64 bf16"
    assert results.schedule(train.recipe(prof)) == "ep60/es10/lr4/bs64"
    assert results.schedule(train.RECIPE).startswith("not recorded")


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
