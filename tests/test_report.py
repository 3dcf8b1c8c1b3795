"""Report helpers: rounded markdown tables and figure links relative to the report."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_utils import config, recipe, report
from fer_utils.report import figure_link, fmt, md_table


def test_fmt_rounds_and_marks_missing():
    assert fmt(0.123456) == "0.123"
    assert fmt(np.int64(73663)) == "73,663"
    assert fmt(135440.0) == "135,440"
    assert fmt(float("nan")) == "—"
    assert fmt("int8") == "int8"
    assert fmt(True) == "yes" and fmt(np.bool_(False)) == "no"


def test_count_is_singular_only_for_one():
    assert report._count(1, "seed") == "1 seed"
    assert report._count(np.float64(3.0), "seed") == "3 seeds"
    assert report._count(0, "older run") == "0 older runs"


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
    from fer_utils import config, results

    prof = config.PROFILES["full-plateau"]
    assert results.schedule(recipe.describe(prof, "mixed_bfloat16") + "|tag:kd-x") == "ep60/es10/lr4/bs64 bf16"
    assert results.schedule(recipe.describe(prof)) == "ep60/es10/lr4/bs64"
    assert results.schedule(recipe.RECIPE).startswith("not recorded")
    budgeted = recipe.describe(config.PROFILES["full"], "mixed_bfloat16")
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
    from fer_utils import config, results

    prof = config.PROFILES["full-plateau"]
    bf16, fp32 = recipe.describe(prof, "mixed_bfloat16"), recipe.describe(prof)

    def row(arch, width, recipe, acc, ts, params=100):
        return {"run_id": f"{arch}{width}{recipe[-12:]}{ts}", "arch": arch, "width": width, "seed": 0,
                "params": params, "epochs": 60, "best_val_acc": acc, "public_acc": acc, "private_acc": acc + 0.01,
                "data_fingerprint": "f", "profile": "full", "recipe": recipe, "timestamp": ts}

    runs = pd.DataFrame([
        row("cnn", 0.125, bf16, 0.50, "1"),                        # the plain partner
        row("cnn", 0.125, bf16 + "|tag:kd-cnn1-T4-a0.7", 0.55, "2"),
        row("cnn", 0.125, fp32, 0.40, "3"),                        # another precision: never the partner
        row("irnet", 1.0, recipe.RECIPE, 0.56, "1"),                # older schedule: no partner for the student below
        row("irnet", 1.0, fp32 + "|tag:kd-cnn1-T4-a0.7", 0.60, "4"),
    ])
    pairs = results.distillation_pairs(runs, "full")
    assert list(pairs.training) == ["labels only", "distilled (kd-cnn1-T4-a0.7)"]
    assert list(pairs.public_acc) == [0.50, 0.55]
    assert pairs.private_gain.iloc[1] == 5.0 and pd.isna(pairs.private_gain.iloc[0])
    assert set(pairs.schedule) == {"ep60/es10/lr4/bs64 bf16"}
    assert results.distillation_pairs(runs.iloc[:0], "full").empty
    assert pairs.cpu_h.isna().all()  # no wall time recorded: no cost shown
    timed = results.distillation_pairs(runs.assign(wall_s=[3600, 5400, 1, 1, 1]), "full")
    assert list(timed.cpu_h) == [1.0, 1.5]
    on_gpu = results.distillation_pairs(runs.assign(wall_s=[3600, 5400, 1, 1, 1],
                                                    backend=["tensorflow", "jax-gpu", "tensorflow", "tensorflow", "tensorflow"]), "full")
    assert on_gpu.cpu_h.iloc[0] == 1.0 and pd.isna(on_gpu.cpu_h.iloc[1])  # GPU time is no CPU cost


def test_a_student_without_a_plain_twin_is_listed_with_its_twin_to_train():
    from fer_utils import results

    prof = config.PROFILES["full-plateau"]
    bf16, fp32 = recipe.describe(prof, "mixed_bfloat16"), recipe.describe(prof)
    student = "irnet-w1-full-s0-f-ep60-kdh-cnn1-online-T2-a0.5-lr0.001"

    def row(run_id, arch, recipe, wall, ts):
        return {"run_id": run_id, "arch": arch, "width": 1.0, "seed": 0, "params": 100, "epochs": 60,
                "best_val_acc": 0.5, "public_acc": 0.5, "private_acc": 0.51, "public_tta_acc": 0.52,
                "private_tta_acc": 0.53, "data_fingerprint": "f", "profile": "full", "recipe": recipe,
                "timestamp": ts, "wall_s": wall, "backend": "tensorflow"}

    runs = pd.DataFrame([
        row("cnn-a", "cnn", bf16, 3600, "1"),
        row("cnn-b", "cnn", bf16 + "|tag:kdh-cnn1-T2-a0.5", 3600, "2"),    # paired: not listed
        row("irnet-old", "irnet", fp32 + "|tag:lr0.01", 1800, "3"),         # another variant: no twin, but timed
        row(student, "irnet", fp32 + "|tag:kdh-cnn1-online-T2-a0.5-lr0.001", 7200, "4"),
    ])
    out = results.unpaired_students(runs, "full")
    assert list(out.run_id) == [student]
    assert out.twin_run_id.iloc[0] == "irnet-w1-full-s0-f-ep60-lr0.001"  # the distillation part of the tag cut
    assert out.cpu_h.iloc[0] == 2.0 and out.private_tta_acc.iloc[0] == 0.53
    assert pd.isna(out.twin_cpu_h_est.iloc[0])  # no plain (untagged) irnet run timed yet
    plain = pd.DataFrame([row("irnet-p", "irnet", fp32, 1800, "0")])
    timed = results.unpaired_students(pd.concat([runs, plain], ignore_index=True), "full")
    assert timed.twin_cpu_h_est.iloc[0] == 0.5  # 30 s per epoch x 60 epochs
    assert results.unpaired_students(runs.iloc[:0], "full").empty
    text = report.unpaired_text(out)
    assert "1 distilled student has no plain twin" in text and "irnet-w1-full-s0-f-ep60-lr0.001" in text
    assert report.unpaired_text(out.iloc[:0]) == ""


def _kd_rows():
    """Registry rows of a search on a 15-epoch budget (3 points, one shared with a 40-epoch run) and
    its plain twins; validation and test disagree on the best point."""
    from dataclasses import replace

    from fer_utils import config

    def rec(epochs, tag=""):
        return recipe.describe(replace(config.PROFILES["full"], epochs=epochs)) + (f"|tag:{tag}" if tag else "")

    def row(epochs, tag, val, test, ts, wall=900):
        return {"run_id": f"irnet-{epochs}-{tag}", "arch": "irnet", "width": 1.0, "seed": 0, "params": 72063,
                "epochs": epochs, "best_val_acc": val, "public_acc": test, "private_acc": test,
                "data_fingerprint": "f", "profile": "full", "recipe": rec(epochs, tag), "timestamp": ts,
                "wall_s": wall}

    return pd.DataFrame([
        row(15, "", 0.55, 0.55, "1"), row(40, "", 0.60, 0.60, "2"),
        row(15, "kdh-t1-tta-T2-a0.5", 0.56, 0.57, "3"),   # best on test, second on validation
        row(15, "kdh-t1-tta-T4-a0.7", 0.58, 0.54, "4"),   # best on validation: chosen
        row(15, "kdh-t1-tta-T8-a0.9", 0.54, 0.56, "5"),
        row(40, "kdh-t1-tta-T4-a0.7", 0.61, 0.59, "6"),   # the same tag on the full budget: its own pair
        row(15, "kdh-t2-tta-T4-a0.7", 0.57, 0.57, "7"),   # another teacher, one point: no search
    ])


def test_every_budget_of_a_distilled_recipe_gets_its_own_pair():
    from fer_utils import results

    pairs = results.distillation_pairs(_kd_rows(), "full")
    kd = pairs[pairs.training.str.startswith("distilled")]
    assert sorted(zip(kd.training, kd.epochs)) == sorted([
        ("distilled (kdh-t1-tta-T2-a0.5)", 15), ("distilled (kdh-t1-tta-T4-a0.7)", 15),
        ("distilled (kdh-t1-tta-T4-a0.7)", 40), ("distilled (kdh-t1-tta-T8-a0.9)", 15),
        ("distilled (kdh-t2-tta-T4-a0.7)", 15)])
    twins = pairs.iloc[[i - 1 for i in kd.index]]
    assert list(twins.epochs) == list(kd.epochs)  # each beside the plain run of its own budget
    assert pairs.loc[(pairs.training == "distilled (kdh-t1-tta-T4-a0.7)") & (pairs.epochs == 40),
                     "private_gain"].item() == -1.0


def test_kd_search_picks_temperature_and_alpha_on_validation_only(tmp_path):
    from fer_utils import report, results

    grid = results.kd_search(results.distillation_pairs(_kd_rows(), "full"))
    assert list(grid.columns) == results.KD_SEARCH_COLUMNS
    assert list(zip(grid.temperature, grid.alpha)) == [(2.0, 0.5), (4.0, 0.7), (8.0, 0.9)]  # one search, 15 epochs
    assert set(grid.epochs) == {15} and set(grid.teacher) == {"t1 (tta)"} and set(grid.method) == {"hinton"}
    assert list(grid.chosen) == [False, True, False]
    assert list(grid.val_gain) == [1.0, 3.0, -1.0] and list(grid.private_gain) == [2.0, -1.0, 1.0]
    assert results.kd_search(results.distillation_pairs(_kd_rows().iloc[:0], "full")).empty
    grid.to_csv(tmp_path / "kd_search.csv", index=False)
    text = report.kd_search_text(tmp_path / "kd_search.csv")
    assert ("- IRNet (ours) w1, 15 epochs (wsd15/warm2/decay0.2/peak0.003 bs128), teacher `t1 (tta)`, hinton: 3 "
            "points (T 2, 4, 8; alpha 0.5, 0.7, 0.9). Validation picks T=4, alpha=0.7 (+3.00 points on validation, "
            "-1.00 PublicTest, -1.00 PrivateTest against the plain twin); 2 of 3 points raised PrivateTest "
            "accuracy; 0.75 CPU h for the grid.") in text
    assert "| IRNet (ours) w1 | 15 | t1 (tta) | hinton | 4.0 | 0.70 | 3.00 | -1.00 | -1.00 | 0.25 | yes |" in text
    assert report.kd_search_text(tmp_path / "none.csv") == ""


def test_kd_views_sets_a_teacher_in_the_loop_beside_its_precomputed_targets(tmp_path):
    from fer_utils import report, results

    rows = _kd_rows()
    extra = rows.iloc[[2, 2, 2]].assign(  # three more 15-epoch points at T=2, alpha=0.5
        run_id=["a", "b", "c"], timestamp=["8", "9", "10"], wall_s=[1800, 900, 900],
        best_val_acc=[0.60, 0.57, 0.50], public_acc=[0.58, 0.56, 0.5], private_acc=[0.59, 0.56, 0.5])
    tags = ["kdh-cnn1-online-T2-a0.5", "kdh-cnn1-e120-tta-T2-a0.5", "kdh-ens-tta-T2-a0.5"]
    extra["recipe"] = [r.rsplit("|tag:", 1)[0] + f"|tag:{t}" for r, t in zip(extra["recipe"], tags)]
    pairs = results.distillation_pairs(pd.concat([rows, extra], ignore_index=True), "full")
    members = {"cnn1-e120": ["cnn-w1-full-s0-f-wsd120-bf16"], "ens": ["cnn-w1-full-s0-f-wsd120-bf16", "irnet-w1-x"],
               "t1": ["irnet-w1-y"]}
    views = results.kd_views(pairs, members)
    assert list(views.columns) == results.KD_VIEWS_COLUMNS
    assert list(views.targets) == ["in the loop (augmented view)", "precomputed (tta)"]  # not the ensemble
    assert list(views.comparison) == [1, 1] and list(views.view) == ["online", "tta"]
    assert list(views.teacher_file) == ["", "cnn1-e120.npz"]
    assert list(views.teacher) == ["cnn1 (weights)", "cnn1-e120.npz (cnn-w1-full-s0-f-wsd120-bf16)"]
    assert list(views.val_gain) == [5.0, 2.0] and list(views.private_gain) == [4.0, 1.0]
    assert list(views.cpu_h) == [0.5, 0.25] and set(views.plain_cpu_h) == {0.25}
    assert results.kd_views(pairs, {}).empty  # no file of that one teacher: nothing to compare
    views.to_csv(tmp_path / "kd_views.csv", index=False)
    text = report.kd_views_text(tmp_path / "kd_views.csv")
    assert ("- IRNet (ours) w1, 15 epochs, T=2, alpha=0.5: in the loop +4.00 PrivateTest (+5.00 validation) in "
            "0.50 CPU h; precomputed `cnn1-e120.npz` (tta) +1.00 PrivateTest (+2.00 validation) in 0.25 CPU h: the "
            "loop costs +100 % CPU time for +3.00 points on validation, +3.00 on PrivateTest.") in text
    assert "| 4.00 | 0.50 | 0.25 |" in text  # both CPU-hour columns in hours to two decimals
    assert report.kd_views_text(tmp_path / "none.csv") == ""


def test_kd_views_keeps_two_teachers_in_the_loop_at_one_point_apart(tmp_path):
    from fer_utils import report, results

    rows = _kd_rows()
    extra = rows.iloc[[2, 2, 2]].assign(  # the t1 file's point at T=2, alpha=0.5 is in _kd_rows
        run_id=["a", "b", "c"], timestamp=["8", "9", "10"], wall_s=[1800, 900, 1700],
        best_val_acc=[0.60, 0.57, 0.59], public_acc=[0.58, 0.56, 0.57], private_acc=[0.59, 0.56, 0.58])
    tags = ["kdh-cnn1-online-T2-a0.5", "kdh-cnn1-e120-tta-T2-a0.5", "kdh-irnet1-online-T2-a0.5"]
    extra["recipe"] = [r.rsplit("|tag:", 1)[0] + f"|tag:{t}" for r, t in zip(extra["recipe"], tags)]
    pairs = results.distillation_pairs(pd.concat([rows, extra], ignore_index=True), "full")
    members = {"cnn1-e120": ["cnn-w1-full-s0-f-wsd120-bf16"], "t1": ["irnet-w1-y"]}
    views = results.kd_views(pairs, members)
    assert list(views.comparison) == [1, 1, 2, 2]
    assert list(views.teacher_file) == ["", "cnn1-e120.npz", "", "t1.npz"]
    views.to_csv(tmp_path / "kd_views.csv", index=False)
    text = report.kd_views_text(tmp_path / "kd_views.csv")
    assert text.count("- IRNet (ours) w1, 15 epochs, T=2, alpha=0.5: in the loop") == 2
    assert "precomputed `t1.npz` (tta) +2.00 PrivateTest" in text and "`cnn1-e120.npz` (tta) +1.00" in text


def test_kd_views_sets_paired_targets_of_the_same_teachers_beside_the_loop(tmp_path):
    from fer_utils import report, results

    rows = _kd_rows()
    extra = rows.iloc[[2, 2, 2]].assign(  # an ensemble in the loop, its paired targets, another ensemble's
        run_id=["a", "b", "c"], timestamp=["8", "9", "10"], wall_s=[1800, 600, 600],
        best_val_acc=[0.60, 0.61, 0.50], public_acc=[0.58, 0.58, 0.5], private_acc=[0.59, 0.60, 0.5])
    ens = "irnet1.2s0e200kdh+irnet1.2s1e120kdh"
    tags = [f"kdh-{ens}-online-T2-a0.5", f"kdh-{ens}-paired-T2-a0.5", "kdh-irnet1.2s0e200kdh-paired-T2-a0.5"]
    extra["recipe"] = [r.rsplit("|tag:", 1)[0] + f"|tag:{t}" for r, t in zip(extra["recipe"], tags)]
    assert results.kd_teacher(tags[1]) == (ens, "paired")
    pairs = results.distillation_pairs(pd.concat([rows, extra], ignore_index=True), "full")
    views = results.kd_views(pairs, {})  # no teacher file needed: the same runs' weights, once
    assert list(views.view) == ["online", "paired"] and list(views.comparison) == [1, 1]
    assert list(views.targets) == ["in the loop (augmented view)",
                                   "precomputed on the image and its mirror (the view drawn)"]
    assert list(views.teacher) == [f"{ens} (weights)"] * 2 and list(views.teacher_file) == ["", ""]
    assert list(views.cpu_h) == [0.5, round(600 / 3600, 2)]
    views.to_csv(tmp_path / "kd_views.csv", index=False)
    text = report.kd_views_text(tmp_path / "kd_views.csv")
    assert ("; precomputed on each image and its mirror, following the student's mirror draw (paired) +5.00 "
            "PrivateTest (+6.00 validation) in 0.17 CPU h: the loop costs +194 % CPU time for -1.00 points on "
            "validation, -1.00 on PrivateTest.") in text
    assert "`--view paired`" in text


def test_kd_teachers_sets_one_student_from_several_teachers_side_by_side_picked_on_validation(tmp_path):
    from fer_utils import report, results

    rows = _kd_rows()
    extra = rows.iloc[[2, 2, 2]].assign(  # three more teachers at the t1 file's 15-epoch point (T=2, alpha=0.5)
        run_id=["a", "b", "c"], timestamp=["8", "9", "10"], wall_s=[1800, 900, 2700],
        best_val_acc=[0.60, 0.57, 0.58], public_acc=[0.58, 0.56, 0.60], private_acc=[0.59, 0.56, 0.61])
    tags = ["kdh-cnn1-online-T2-a0.5", "kdh-cnn1-e120-tta-T2-a0.5", "kdh-irnet1.2s1e200kdh+irnet1-online-T2-a0.5"]
    extra["recipe"] = [r.rsplit("|tag:", 1)[0] + f"|tag:{t}" for r, t in zip(extra["recipe"], tags)]
    found = results.kd_teachers(results.distillation_pairs(pd.concat([rows, extra], ignore_index=True), "full"))
    assert list(found.columns) == results.KD_TEACHERS_COLUMNS
    # T=2: four teachers; T=4: the t1 and t2 files (_kd_rows); the 40-epoch point has one teacher, no comparison
    assert list(found.comparison) == [1, 1, 1, 1, 2, 2] and set(found.epochs) == {15}
    assert list(found.teacher) == ["cnn1", "irnet1.2s1e200kdh+irnet1", "cnn1-e120", "t1", "t1", "t2"]
    assert list(found.targets[:3]) == ["in the loop (augmented view)", "in the loop (augmented view)",
                                       "precomputed (tta)"]
    assert list(found.view[:3]) == ["online", "online", "tta"]  # the tag's view, which the report words from
    assert list(found.chosen) == [True, False, False, False, True, False]  # validation picks, not PrivateTest
    assert list(found.val_gain[:4]) == [5.0, 3.0, 2.0, 1.0] and list(found.private_gain[:4]) == [4.0, 6.0, 1.0, 2.0]
    assert list(found.cpu_h[:3]) == [0.5, 0.75, 0.25]
    assert results.kd_teachers(results.distillation_pairs(rows.iloc[:-1], "full")).empty  # one teacher per point
    found.to_csv(tmp_path / "kd_teachers.csv", index=False)
    text = report.kd_teachers_text(tmp_path / "kd_teachers.csv")
    assert ("- IRNet (ours) w1, 15 epochs (wsd15/warm2/decay0.2/peak0.003 bs128), T=2, alpha=0.5: validation picks "
            "HW3 CNN in the loop (augmented view), validation 0.600, PrivateTest 0.590 (+4.00 points against the "
            "plain twin), 0.50 CPU h; from an ensemble of IRNet (ours) w1.2 + KD (seed 1, 200 epochs) and IRNet "
            "(ours) w1 in the loop (augmented view), validation 0.580 (-2.00 points), PrivateTest 0.610 (+2.00), "
            "0.75 CPU h; from the teacher file `cnn1-e120.npz` (tta targets), validation 0.570") in text
    assert "| IRNet (ours) w1 | 15 | t2 | precomputed (tta) | 0.570 | 0.570 | 0.570 | 2.00 | 2.00 | 0.25 | no |" in text
    assert report.kd_teachers_text(tmp_path / "none.csv") == ""


def test_the_teachers_themselves_say_their_own_accuracy_beside_their_best_member_and_student(tmp_path):
    from fer_utils import report, teachers

    rows = [{"teacher": "A, 200 epochs + B, 120 epochs", "members": "a;b", "students": 1,
             "targets": "in the loop (augmented view)", "val_acc": 0.66, "public_acc": 0.65, "private_acc": 0.67,
             "public_tta_acc": 0.66, "private_tta_acc": 0.68, "best_member_private_tta_acc": 0.665,
             "best_student": "S", "best_student_val_acc": 0.67, "best_student_private_acc": 0.665, "key": "k"},
            {"teacher": "HW3 CNN, 35 epochs", "members": "c", "students": 2, "targets": "run once on the clean images",
             "val_acc": 0.61, "public_acc": 0.59, "private_acc": 0.6, "public_tta_acc": None, "private_tta_acc": None,
             "best_member_private_tta_acc": None, "best_student": "T", "best_student_val_acc": 0.5,
             "best_student_private_acc": 0.49, "key": "c@1"}]
    pd.DataFrame(rows, columns=teachers.RUN_TEACHERS_COLUMNS).to_csv(tmp_path / "teacher_runs.csv", index=False)
    text = report.teacher_runs_text(tmp_path / "teacher_runs.csv")
    assert ("- A, 200 epochs + B, 120 epochs (1 student, in the loop (augmented view)): validation 0.660, PrivateTest "
            "0.670 (0.680 with mirror TTA), +1.50 points over its best member; its best student on validation, S, "
            "validation 0.670 (+1.00 points against the teacher), PrivateTest 0.665 (-0.50).") in text
    assert ("- HW3 CNN, 35 epochs (2 students, run once on the clean images): validation 0.610, PrivateTest 0.600; "
            "its best student on validation, T, validation 0.500 (-11.00 points") in text
    assert "| HW3 CNN, 35 epochs | 2 | run once on the clean images | 0.610 | 0.590 | 0.600 | — | — | — | 0.490 |" in text
    assert "key" not in text and "a;b" not in text
    assert report.teacher_runs_text(tmp_path / "none.csv") == ""


def test_kd_teacher_reads_the_teacher_and_view_from_the_tag():
    from fer_utils import results

    assert results.kd_teacher("kdh-cnn1-tta-T4-a0.7") == ("cnn1", "tta")
    assert results.kd_teacher("kdh-cnn1-mobilenet2.2-plain-T2-a0.5") == ("cnn1-mobilenet2.2", "plain")
    assert results.kd_teacher("kd-cnn1-T4-a0.7") == ("cnn1", None)
    assert results.kd_teacher("kdh-cnn1-tta-T4-a0.7-lr0.001-bs64") == ("cnn1", "tta")
    assert results.kd_point("kdh-cnn1-tta-T4-a0.7-lr0.001") == (4.0, 0.7)
    assert results.kd_point("kdh-cnn1-tta-T4-a0.7") == (4.0, 0.7) and results.kd_point("lr0.001") is None


def test_a_distilled_variant_is_paired_with_the_plain_runs_same_variant():
    from dataclasses import replace

    from fer_utils import config, results

    def rec(peak, tag=""):
        prof = replace(config.PROFILES["full"], epochs=40, learning_rate=peak)
        return recipe.describe(prof) + (f"|tag:{tag}" if tag else "")

    def row(peak, tag, acc, ts):
        return {"run_id": f"irnet-{peak}-{tag}", "arch": "irnet", "width": 1.0, "seed": 0, "params": 72063,
                "epochs": 40, "best_val_acc": acc, "public_acc": acc, "private_acc": acc,
                "data_fingerprint": "f", "profile": "full", "recipe": rec(peak, tag), "timestamp": ts}

    runs = pd.DataFrame([row(3e-3, "", 0.60, "1"), row(1e-3, "lr0.001", 0.58, "2"),
                         row(3e-3, "kdh-t1-tta-T2-a0.5", 0.61, "3"),
                         row(1e-3, "kdh-t1-tta-T2-a0.5-lr0.001", 0.62, "4"),
                         row(1e-3, "kdh-t1-tta-T4-a0.5-lr0.001", 0.57, "5")])
    pairs = results.distillation_pairs(runs, "full")
    got = {kd: (plain["run_id"], kd_row["private_gain"]) for plain, kd_row, kd in results.distilled_pairs(pairs)}
    assert got == {"kdh-t1-tta-T2-a0.5": ("irnet-0.003-", 1.0),
                   "kdh-t1-tta-T2-a0.5-lr0.001": ("irnet-0.001-lr0.001", 4.0),
                   "kdh-t1-tta-T4-a0.5-lr0.001": ("irnet-0.001-lr0.001", -1.0)}
    grid = results.kd_search(pairs)
    assert list(zip(grid.temperature, grid.alpha, grid.chosen)) == [(2.0, 0.5, True), (4.0, 0.5, False)]


def test_distillation_paragraph_names_the_teacher_gain_and_cost(tmp_path):
    import numpy as np

    from fer_utils import report, teachers

    info = {"teachers": ["cnn-w1-run"], "PrivateTest": {"plain": 0.6381, "tta": 0.6364}, "training": {"tta": 0.66}}
    teachers.write(tmp_path / "cnn1.npz", np.arange(3), np.full((3, 2, 7), 1 / 7), info)
    pairs = pd.DataFrame({
        "pair": ["IRNet (ours) w1 + KD"] * 2 + ["CNN w0.125 + KD"] * 2,
        "training": ["labels only", "distilled (kdh-cnn1-tta-T4-a0.7)", "labels only", "distilled (kd-cnn1-T4-a0.7)"],
        "model": ["IRNet (ours) w1", "IRNet (ours) w1 + KD", "CNN w0.125", "CNN w0.125 + KD"],
        "schedule": ["wsd40"] * 2 + ["ep60"] * 2, "epochs": [40, 40, 60, 56],
        "public_gain": [None, 1.25, None, -3.37], "private_gain": [None, 0.5, None, -3.12],
        "cpu_h": [0.8, 0.9, None, None]})
    text = report.distillation_paragraph(pairs, tmp_path)
    assert text.startswith("Distillation raised PrivateTest accuracy in 1 of 2 pairs")
    assert ("- IRNet (ours) w1 + KD (wsd40, 40 epochs, T=4, alpha=0.7) from the teacher file `cnn1.npz` (cnn-w1-run; PrivateTest "
            "0.638, 0.636 with mirror TTA), its mirror-TTA distribution as target: +0.50 points on PrivateTest, "
            "+1.25 on PublicTest; 0.90 CPU h against 0.80 for the plain twin.") in text
    assert ("from the HW3 CNN (`cnn1`), its latest finished run of the profile then, run once on the clean "
            "training images: -3.12 points") in text
    assert report.teacher_text("kdh-cnn1-online-T2-a0.5", tmp_path) == (
        "the HW3 CNN (`cnn1`), its latest finished run of the profile then, run in the loop on every augmented "
        "batch the student sees")
    assert "CPU h" not in text.split("\n")[-1]  # no recorded wall time, no cost
    assert report.distillation_paragraph(pairs.iloc[:0], tmp_path) == ""
    # a second point of the same teacher (a search) names the teacher once
    again = pairs.iloc[:2].assign(training=["labels only", "distilled (kdh-cnn1-tta-T2-a0.5)"])
    text = report.distillation_paragraph(pd.concat([pairs.iloc[:2], again], ignore_index=True), tmp_path)
    assert text.count("the teacher file `cnn1.npz`") == 1
    assert "(wsd40, 40 epochs, T=2, alpha=0.5) from the same teacher as the line above: +0.50" in text
    # only the line right above counts: another teacher between them names it again
    text = report.distillation_paragraph(pd.concat([pairs, again], ignore_index=True), tmp_path)
    assert text.count("the teacher file `cnn1.npz`") == 2 and "same teacher" not in text
    # with the registry, the run that taught is said by its epochs: the teachers it recorded
    pairs["run_id"] = ["p1", "s1", "p2", "s2"]
    runs_ = pd.DataFrame({"run_id": ["cnn120", "s2"], "arch": ["cnn", "cnn"], "width": [1.0, 0.125], "epochs": [120, 56],
                          "recipe": ["adam|wsd120", "adam|ep60|tag:kd-cnn1-T4-a0.7"], "teachers": [None, "cnn120"],
                          "profile": "full", "data_fingerprint": "d", "seed": 0, "wall_s": 1.0,
                          "timestamp": ["2026-01-01T00:00:00", "2026-01-02T00:00:00"]})
    text = report.distillation_paragraph(pairs, tmp_path, runs_)
    assert report.teacher_rows(runs_)["s2"][0]["epochs"] == 120 and "cnn120" not in report.teacher_rows(runs_)
    assert ("from the HW3 CNN (`cnn1`), its 120-epoch run (the longest finished when the student started), run once "
            "on the clean training images: -3.12 points") in text
    assert report.teacher_text("kdh-irnet1.2s1e60kdh+irnet1.2-online-T2-a0.5", tmp_path, [60, 120]) == (
        "an ensemble of IRNet (ours) w1.2 + KD (seed 1, 60 epochs) and IRNet (ours) w1.2 (120 epochs) "
        "(`irnet1.2s1e60kdh+irnet1.2`), the mean of their softmax, run in the loop on every augmented batch the "
        "student sees")


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
    assert results.run_label({**rows.iloc[1].to_dict(), "seed": 2}) == "CNN w0.125 + KD (mixed targets) (seed 2)"
    assert results.model_label("irnet", 1.0, "kdh-cnn1-T4-a0.7") == "IRNet (ours) w1 + KD"
    assert results.model_label("cnn", 1.0, "other") == "HW3 CNN [other]"


def test_a_student_of_another_teacher_than_the_hw3_cnn_names_its_teacher_once():
    from fer_utils import results

    ens = "irnet1.2s0e200kdh+irnet1.2"
    assert results.model_label("irnet", 1.2, "kdh-cnn1-online-T2-a0.5") == "IRNet (ours) w1.2 + KD"  # the study's
    assert results.model_label("irnet", 1.2, "kdh-cnn1-tta-T4-a0.7") == "IRNet (ours) w1.2 + KD"  # its file
    assert (results.model_label("irnet", 1.2, f"kdh-{ens}-online-T2-a0.5")
            == f"IRNet (ours) w1.2 + KD (teacher {ens})")
    assert (results.model_label("irnet", 1.2, "kdh-cnn1-e120-tta-T2-a0.5")
            == "IRNet (ours) w1.2 + KD (teacher cnn1-e120)")  # another file, even of the HW3 CNN
    # a fine-tune in the loop of its source's own (named) teacher says so once; of the HW3 CNN as before
    assert (results.model_label("irnet", 1.2, f"qat-kmeans-3-lr0.00003-teacher-{ens}-T2-a0.5-wsd120-kdh-{ens}-online-T2-a0.5")
            == f"IRNet (ours) w1.2 + KD (teacher {ens}) + QAT kmeans-3 (peak LR 3e-05, the same teacher)")
    assert (results.model_label("irnet", 1.2, "qat-kmeans-4-lr0.00003-teacher-cnn1-T2-a0.5-wsd200-kdh-cnn1-online-T2-a0.5")
            == "IRNet (ours) w1.2 + KD + QAT kmeans-4 (peak LR 3e-05, teacher cnn1)")
    assert (results.model_label("irnet", 1.2, f"qat-kmeans-4-lr0.00003-teacher-cnn1-T2-a0.5-wsd120-kdh-{ens}-online-T2-a0.5")
            == f"IRNet (ours) w1.2 + KD (teacher {ens}) + QAT kmeans-4 (peak LR 3e-05, teacher cnn1)")


def test_every_family_has_its_own_colour():
    from fer_utils import plots, results

    palette = plots.family_palette()
    assert set(palette) == set(results.ARCH_NAMES.values()) | {plots.ENSEMBLE}
    assert len(set(palette.values())) == len(palette)


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
    from fer_utils import config, results

    new, old = recipe.describe(config.PROFILES["full-plateau"]), recipe.RECIPE
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

    from fer_utils import config, plots

    new = recipe.describe(config.PROFILES["full-plateau"])
    runs = pd.DataFrame({"params": [100, 1_000, 10_000], "public_acc": [0.3, 0.4, 0.5],
                         "private_acc": [0.3, 0.5, 0.5], "recipe": [new, recipe.RECIPE, new]})
    fig, ax = plt.subplots()
    plots.family_scatter(ax, runs, recipe="ep60/es10/lr4/bs64")
    rings = [c for c in ax.collections if c.get_label().startswith("other schedule")]
    assert len(rings) == 1 and sorted(rings[0].get_offsets()[:, 1]) == [0.4, 0.45, 0.5]
    assert set(rings[0].get_offsets()[:, 0]) == {1_000}
    ax.clear()
    plots.family_scatter(ax, runs.iloc[[0, 2]], recipe="ep60/es10/lr4/bs64")
    assert not ax.collections
    plt.close(fig)


def test_small_end_panel_keeps_its_last_point_off_the_edge():
    from fer_utils import plots

    # the MobileNet sweep: w0.7 (38,558) sits just under 12x the smallest (3,237 x 12 = 38,844)
    lo, hi = plots.small_end_xlim([73_663, 3_237, 6_675, 38_558, 327_104])
    assert lo == 3_237 / 1.25 and hi == 38_558 * 1.25
    assert plots.small_end_xlim([500]) == (400.0, 625.0)


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


def _status(on, widths):
    return {"arch": "mobilenet", "recipe": "r", "widths": widths, "on": on, "off": [], "missing": [],
            "params": (1, 2), "decades": 1.0}


def test_q4_paragraph_says_whether_and_where_the_curves_cross():
    from fer_utils import report

    complete = {"mobilenet": _status([1.0, 2.0], [1.0, 2.0])}
    gap = pd.DataFrame({"model": ["a", "b", "c"], "params": [10_000, 50_000, 200_000], "mean": [0.5, 0.55, 0.6],
                        "other_mean": [0.45, 0.56, 0.65], "gap_points": [5.0, -1.0, -5.0]})
    crossing, table = report.q4_paragraph(gap, complete)
    assert crossing.startswith("**On this data the curves cross** at about 38,200 parameters (interpolated in log "
                               "parameters) between a (10,000 parameters, gap 5.0 points) and b")
    assert "ahead at 1 of 3 sizes" in table and "| +5.0 |" in table and "noise" not in table
    noisy = {"std_points": 0.8, "range_points": 2.0, "sizes": 3, "by_family": {"mobilenet": 3}, "max_seeds": 3}
    crossing, table = report.q4_paragraph(gap, complete, noisy)
    assert "At least one gap beside it exceeds twice the seed-to-seed noise (1.6 points)" in crossing
    assert "2 of these gaps exceed twice the seed-to-seed noise (1.6 points)" in table and "| no |" in table
    crossing, _ = report.q4_paragraph(gap.assign(gap_points=[1.0, -1.0, -5.0]), complete, noisy)
    assert "where exactly the curves cross is not resolved by these seeds" in crossing
    ahead = gap.assign(gap_points=[5.0, 1.0, 0.5])
    crossing, _ = report.q4_paragraph(ahead, {"mobilenet": _status([1.0], [1.0, 2.0])})
    assert "do not cross** where both families were measured: MobileNet is ahead" in crossing
    assert "The sweep is not complete yet (MobileNet: 1 of 2 widths on its recipe)" in crossing
    crossing, table = report.q4_paragraph(gap.iloc[0:0], complete)
    assert "not measured here" in crossing and "do not overlap yet" in table


def test_the_originals_explanation_is_kept_only_where_the_data_agree():
    from fer_utils import report

    gap = pd.DataFrame({"model": ["a", "b", "c"], "params": [10_000, 50_000, 200_000], "mean": [0.5, 0.55, 0.6],
                        "other_mean": [0.45, 0.56, 0.65], "gap_points": [5.0, -1.0, -5.0]})
    points = pd.DataFrame({"model": ["a", "c", "CNN big"], "arch": ["mobilenet", "mobilenet", "cnn"],
                           "params": [10_000, 200_000, 2_000_000], "public_acc": [0.5, 0.6, 0.62],
                           "private_acc": [0.5, 0.6, 0.64], "mean_acc": [0.5, 0.6, 0.63]})
    agree = report.q4_explanation(gap, points)  # MobileNet ahead at the small end, the CNN at the large end
    assert agree.startswith("The original report's explanation holds at small sizes: " + report.EXPLANATION_SMALL)
    assert "So does its large-size half: at large sizes " + report.EXPLANATION_LARGE in agree and "by 5.0 points" in agree
    ahead = report.q4_explanation(gap.assign(gap_points=[5.0, 2.0, 4.0]), points)
    assert "Its large-size half (" in ahead and "is not borne out" in ahead and "c, 200,000 parameters, 4.0 points" in ahead
    assert ("The largest CNN (CNN big, 2,000,000 parameters, mean 0.630) is ahead of the widest MobileNet (c, "
            "200,000, 0.600) with 10.0x its parameters") in ahead
    behind = report.q4_explanation(gap.assign(gap_points=[-3.0, -1.0, -5.0]), points)
    assert "these data do not show it: at 10,000 parameters, the smallest compared size, the CNN family leads a by 3.0" in behind
    assert "neither half is tested" in report.q4_explanation(gap.iloc[0:0], points)


def test_budget_study_and_its_paragraph():
    from fer_utils import config, report, results

    full = config.PROFILES["full"]
    from dataclasses import replace
    row = dict(arch="mobilenet", width=1.0, seed=0, profile="full", params=73663, best_val_acc=0.6,
               public_tta_acc=float("nan"), private_tta_acc=float("nan"))
    runs = pd.DataFrame([
        {**row, "recipe": recipe.RECIPE, "epochs": 33, "wall_s": 3600, "public_acc": 0.55, "private_acc": 0.56, "timestamp": "1", "run_id": "old"},
        {**row, "recipe": recipe.describe(config.PROFILES["full-plateau"]), "epochs": 35, "wall_s": 7200, "public_acc": 0.552,
         "private_acc": 0.566, "timestamp": "2", "run_id": "plateau"},
        {**row, "recipe": recipe.describe(replace(full, epochs=30)), "epochs": 30, "wall_s": 5400, "public_acc": 0.56,
         "private_acc": 0.57, "public_tta_acc": 0.57, "private_tta_acc": 0.58, "timestamp": "3", "run_id": "b30"},
        {**row, "recipe": recipe.describe(replace(full, epochs=15)), "epochs": 15, "wall_s": 2700, "public_acc": 0.53,
         "private_acc": 0.54, "public_tta_acc": 0.54, "private_tta_acc": 0.54, "timestamp": "4", "run_id": "b15"},
        {**row, "recipe": recipe.describe(replace(full, epochs=15)) + "|tag:kdh-x", "epochs": 15, "wall_s": 1,
         "public_acc": 0.9, "private_acc": 0.9, "timestamp": "5", "run_id": "kd"},
        {**row, "arch": "cnn", "recipe": recipe.describe(full), "epochs": 200, "wall_s": 1, "public_acc": 0.7,
         "private_acc": 0.7, "timestamp": "6", "run_id": "cnn"},
    ])
    study = results.budget_study(runs, "mobilenet", 1.0)
    assert study["run_id"].tolist() == ["b15", "b30", "plateau"]  # budgets by epochs; the newest first-recipe row
    assert study["budget"].tolist()[:2] == [15, 30] and pd.isna(study["budget"].iloc[2])
    assert study["cpu_hours"].tolist() == [0.75, 1.5, 2.0]
    text = report.budget_paragraph(study, 0.634)
    assert "2 budgets finished so far (15, 30 epochs). The longest, 30 epochs (1.50 CPU hours), reaches 0.560" in text
    assert "against 0.552 / 0.566 for the first recipe after 35 epochs" in text
    assert "0.634 PrivateTest is not reached (-6.4 points)" in text
    assert "+1.0 / +0.5 points (PublicTest / PrivateTest, mean over 2 runs)" in text
    # the longest finished budget stands for the model (not the newer, shorter decay, nor the first recipe)
    standing = results.latest_runs(runs, "full").set_index("arch")["run_id"]
    assert standing.to_dict() == {"mobilenet": "b30", "cnn": "cnn"}
    # at a named budget only that budget counts, and the first recipe stands in where it has no row
    assert results.latest_runs(runs, "full", budget=15)["run_id"].tolist() == ["b15"]
    assert results.latest_runs(runs, "full", budget=40)["run_id"].tolist() == ["plateau"]
    assert report.budget_paragraph(study.iloc[2:], None) == "No run on the budgeted schedule has finished yet."
    # a budget trained on a lent GPU: its wall time is no CPU time, so it has no CPU hours, and the text says so
    gpu = results.budget_study(runs.assign(backend=["tensorflow"] * 2 + ["jax-gpu"] + ["tensorflow"] * 3), "mobilenet", 1.0)
    assert gpu["device"].tolist() == ["CPU", "GPU", "CPU"] and pd.isna(gpu["cpu_hours"].iloc[1])
    assert "The longest, 30 epochs (trained on a GPU), reaches 0.560" in report.budget_paragraph(gpu, None)
    assert results.hours_text(runs.iloc[2]) == "1.50 CPU h"
    assert results.hours_text({**runs.iloc[2].to_dict(), "backend": "jax-gpu"}) == "1.50 GPU h"


def test_the_budget_study_shows_each_other_augmentation_beside_the_standard_one():
    from dataclasses import replace

    import matplotlib

    matplotlib.use("Agg")
    from fer_utils import config, plots, report, results

    full = config.PROFILES["full"]
    row = dict(arch="mobilenet", width=1.0, seed=0, profile="full", params=73663,
               public_tta_acc=float("nan"), private_tta_acc=float("nan"))

    def budgeted(epochs, tag, val, private, ts):
        rec = recipe.describe(replace(full, epochs=epochs, augment={"": "standard", "augflip": "flip",
                                                                    "auglight": "light"}.get(tag, "standard")))
        return {**row, "recipe": rec + (f"|tag:{tag}" if tag else ""), "epochs": epochs, "wall_s": 36 * epochs,
                "best_val_acc": val, "public_acc": private - 0.01, "private_acc": private, "timestamp": ts,
                "run_id": f"{tag or 'std'}{epochs}"}

    runs = pd.DataFrame([budgeted(15, "", 0.55, 0.55, "1"), budgeted(40, "", 0.58, 0.59, "2"),
                         budgeted(120, "", 0.60, 0.60, "3"), budgeted(40, "augflip", 0.62, 0.62, "4"),
                         budgeted(15, "augflip", 0.59, 0.58, "5"), budgeted(40, "auglight", 0.59, 0.593, "6"),
                         budgeted(15, "augflip-lr0.001", 0.9, 0.9, "7"),  # another variant too: not the study's
                         budgeted(15, "kdh-x-augflip", 0.9, 0.9, "8")])  # distilled: not the study's
    study = results.budget_study(runs, "mobilenet", 1.0)
    # standard first (by epochs), then each other augmentation in config.AUGMENTS' order
    assert study["run_id"].tolist() == ["std15", "std40", "std120", "auglight40", "augflip15", "augflip40"]
    assert study["augment"].tolist() == ["standard"] * 3 + ["light", "flip", "flip"]
    text = report.budget_paragraph(study, 0.634)
    assert "3 budgets finished so far (15, 40, 120 epochs). The longest, 120 epochs (1.20 CPU hours)" in text
    assert ("With flip (horizontal flip only: no rotation, shift or zoom) (`--augment flip`): 2 budgets (15, 40 "
            "epochs); the longest, 40 epochs (0.40 CPU hours), reaches 0.610 PublicTest / 0.620 PrivateTest; the "
            "original study's 0.634 PrivateTest is not reached (-1.4 points).") in text
    assert "validation +4.0 points at 15 epochs, +4.0 points at 40 epochs" in text
    assert "Its 40 epochs beat every standard budget on PrivateTest, the 120-epoch one (0.600) included." in text
    assert "validation +1.0 points at 40 epochs." in text  # light, at its one shared budget
    assert text.count("beat every standard budget") == 1  # light's 0.593 does not beat 0.600

    fig = plots.budget_figure(study, 0.634, "original study")
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "PrivateTest (--augment flip)" in labels and "PrivateTest, mirror TTA (--augment light)" in labels
    flip = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "PrivateTest (--augment flip)"][0]
    assert list(flip.get_xdata()) == [15, 40] and list(flip.get_ydata()) == [0.58, 0.62]
    assert flip.get_linestyle() != "-"
    standard = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "PrivateTest (budgeted schedule)"][0]
    assert list(standard.get_xdata()) == [15, 40, 120]  # the other augmentations are not on the standard line
    assert [plots._sparse_log_label(v) for v in (0.2, 0.3, 0.4, 0.5, 0.7, 2.0, 3.0, 9.0)] == \
        ["0.2", "", "", "0.5", "", "2", "", ""]


def test_a_peak_lr_variant_competes_for_its_models_headline_row_on_validation():
    from dataclasses import replace

    from fer_utils import results

    full = config.PROFILES["full"]

    def row(run_id, epochs, val, ts, peak=None, seed=0, private=0.6):
        prof = replace(full, epochs=epochs, learning_rate=peak or full.learning_rate)
        return dict(run_id=run_id, arch="cnn", width=1.0, seed=seed, profile="full", params=3258379, epochs=epochs,
                    best_val_acc=val, public_acc=private, private_acc=private, private_tta_acc=float("nan"),
                    wall_s=1.0, data_fingerprint="abc", timestamp=ts,
                    recipe=recipe.describe(prof) + (f"|tag:lr{peak:g}" if peak else ""))

    def standing(*rows, **kw):
        return results.latest_runs(pd.DataFrame(list(rows)), "full", **kw)

    plain75, lr75 = row("p75", 75, 0.634, "2026-01-01"), row("l75", 75, 0.646, "2026-01-02", peak=1e-3)
    plain120, lr200 = row("p120", 120, 0.637, "2026-01-03"), row("l200", 200, 0.650, "2026-01-04", peak=1e-3)
    # on one budget validation picks, whichever finished first; the row keeps the plain model's name
    for rows in ((plain75, lr75), (lr75, plain75)):
        picked = standing(*rows)
        assert picked["run_id"].tolist() == ["l75"] and picked["model"].tolist() == ["HW3 CNN"]
    assert standing(plain75, {**lr75, "best_val_acc": 0.60})["run_id"].tolist() == ["p75"]
    # a longer finished budget still wins, whatever its peak; then the longer peak-LR run wins in turn
    assert standing(plain75, lr75, plain120)["run_id"].tolist() == ["p120"]
    assert standing(plain75, lr75, plain120, lr200)["run_id"].tolist() == ["l200"]
    # only a run id's newest row counts: an older row of the plain run cannot win on its old validation
    assert standing({**plain75, "best_val_acc": 0.70, "timestamp": "2025-12-31"}, lr75, plain75)["run_id"].tolist() == ["l75"]
    # other variants still never stand in; a named budget (the sweeps) and a named tag keep to their own rows
    bs = {**row("b75", 75, 0.70, "2026-01-05"), "recipe": recipe.describe(replace(full, epochs=75)) + "|bs64|tag:bs64"}
    assert standing(plain75, bs)["run_id"].tolist() == ["p75"]
    assert standing(plain75, lr75, budget=75)["run_id"].tolist() == ["p75"]
    assert standing(plain75, lr75, recipe_tag="lr0.001")["run_id"].tolist() == ["l75"]
    assert sorted(standing(plain75, lr75, recipe_tag=None)["run_id"]) == ["l75", "p75"]
    # the teacher name cnn1 resolves to the run that stands, as the command line's --teacher cnn:1 does
    part = results.teacher_parts("cnn1")[0]
    assert results._teacher_part_run(part, pd.DataFrame([plain75, lr75]), "full")["run_id"] == "l75"
    # the glance says at which peak the headline trained
    line = report.glance_lines(pd.DataFrame(), standing(plain75, lr75))[0]
    assert line.startswith("- HW3 CNN, 3,258,379 parameters, trained 75 epochs (peak LR 0.001): PrivateTest 0.600")
    assert "peak LR" not in report.glance_lines(pd.DataFrame(), standing(plain120))[0]


def test_an_augmentation_variant_competes_for_its_models_headline_row_on_validation():
    from dataclasses import replace

    from fer_utils import results

    full = config.PROFILES["full"]

    def row(run_id, epochs, val, ts, tag="", peak=None, augment="standard"):
        prof = replace(full, epochs=epochs, learning_rate=peak or full.learning_rate, augment=augment)
        return dict(run_id=run_id, arch="mobilenet", width=1.0, seed=0, profile="full", params=73663, epochs=epochs,
                    best_val_acc=val, public_acc=0.6, private_acc=0.6, private_tta_acc=float("nan"), wall_s=1.0,
                    data_fingerprint="abc", timestamp=ts, recipe=recipe.describe(prof) + (f"|tag:{tag}" if tag else ""))

    def standing(*rows):
        return results.latest_runs(pd.DataFrame(list(rows)), "full")["run_id"].tolist()

    plain40, plain120 = row("p40", 40, 0.585, "1"), row("p120", 120, 0.596, "2")
    flip40, flip120 = row("f40", 40, 0.619, "3", "augflip", augment="flip"), row("f120", 120, 0.63, "4", "augflip", augment="flip")
    both40 = row("b40", 40, 0.64, "5", "lr0.001-auglight", peak=1e-3, augment="light")
    assert standing(plain40, flip40) == ["f40"]  # one budget: validation picks
    assert standing(plain40, plain120, flip40) == ["p120"]  # a longer finished budget still wins
    assert standing(plain40, plain120, flip40, flip120) == ["f120"]
    assert standing(plain40, both40) == ["b40"]  # a peak and an augmentation variant at once
    # other tags with an augmentation part never stand in: another variant, a distilled run
    other = row("o40", 40, 0.70, "6", "bs64-augflip", augment="flip")
    kd = row("k40", 40, 0.70, "7", "kdh-cnn1-online-T2-a0.5-augflip", augment="flip")
    assert standing(plain40, other, kd) == ["p40"]
    # what the variant's tag says, in words, in the glance and in a teacher's label
    assert results.variant_words("augflip") == ["flip augmentation"]
    assert results.variant_words("lr0.001-auglight") == ["peak LR 0.001", "light augmentation"]
    assert results.variant_words("kdh-cnn1") == [] and results.variant_words("bs64-augflip") == []
    assert results.variant_peak("augflip") is None and results.variant_augment("lr0.001") is None
    picked = results.latest_runs(pd.DataFrame([plain40, flip40]), "full")
    assert picked["model"].tolist() == ["seed MobileNet"]
    line = report.glance_lines(pd.DataFrame(), picked)[0]
    assert line.startswith("- seed MobileNet, 73,663 parameters, trained 40 epochs (flip augmentation): PrivateTest 0.600")
    assert results.teacher_label("mobilenet1s0e40augflip", tags=["augflip"]) == \
        "seed MobileNet (seed 0, 40 epochs, flip augmentation)"


def test_the_glance_sets_each_headline_models_best_distilled_run_under_it():
    from dataclasses import replace

    from fer_utils import results

    full = config.PROFILES["full"]

    def row(run_id, val, private, tag="", seed=0, arch="mobilenet", ts="1"):
        prof = replace(full, epochs=60, augment="flip" if "augflip" in tag else "standard")
        return dict(run_id=run_id, arch=arch, width=1.0, seed=seed, profile="full", params=73663, epochs=60,
                    best_val_acc=val, public_acc=0.6, private_acc=private, private_tta_acc=0.65, wall_s=1.0,
                    data_fingerprint="abc", timestamp=ts, recipe=recipe.describe(prof) + (f"|tag:{tag}" if tag else ""))

    online = "kdh-irnet1.2s0e200kdh+irnet1.2s1e200kdh-online-T2-a0.5"
    rows = pd.DataFrame([
        row("plain", 0.62, 0.626),
        row("kd", 0.63, 0.630, "kdh-cnn1-online-T2-a0.5"),
        row("kdflip-old", 0.70, 0.70, online + "-augflip", ts="2"),  # superseded by its newer row below
        row("kdflip-old", 0.60, 0.60, online + "-augflip", ts="3"),
        row("kdflip", 0.639, 0.638, online + "-augflip", seed=1),
        row("qat", 0.80, 0.80, "qat-kmeans-4-dw8-lr0.0001-wsd60-kdh-cnn1-online-T2-a0.5"),  # a fine-tune: never
        row("other", 0.90, 0.90, "kdh-cnn1-online-T2-a0.5", arch="irnet"),  # another architecture
    ])
    best = results.best_distilled(rows, "mobilenet", 1.0, "full")
    assert best["run_id"] == "kdflip" and best["n_distilled"] == 3  # validation picks, never a test split
    assert results.best_distilled(rows, "cnn", 1.0, "full") is None
    assert results.best_distilled(rows, "mobilenet", 1.0, "smoke") is None

    headline = results.latest_runs(rows.iloc[:1], "full")
    lines = report.glance_lines(pd.DataFrame(), headline, {"mobilenet": best, "cnn": None})
    assert lines[0].endswith("against the original study's 0.634: missed by 0.8 points.")
    assert lines[1] == ("  - distilled: seed MobileNet + KD (teacher irnet1.2s0e200kdh+irnet1.2s1e200kdh) (seed 1), "
                        "trained 60 epochs (flip augmentation), the best validation accuracy (0.639) of its "
                        "3 distilled runs: PrivateTest 0.638 (0.650 with mirror TTA): met.")
    assert len(report.glance_lines(pd.DataFrame(), headline)) == 1  # no distilled runs given: the headline alone


def test_parameter_budgets_from_the_seed_models_codec_rows():
    from fer_utils import results

    codecs = pd.DataFrame({"arch": ["mobilenet"] * 3 + ["cnn"], "width": [1.0] * 4,
                           "codec": ["seed", "int8", "kmeans-3", "seed"], "bytes_per_param": [2.0, 1.0, 0.5, 9.0],
                           "public_drop": [0.0, 0.1, 2.0, 0.0]})
    assert results.parameter_budgets(codecs, [225_000, 650_000]) == {
        "225 kB @ seed codec": 112_500, "650 kB @ seed codec": 325_000,
        "225 kB @ best codec (int8)": 225_000, "650 kB @ best codec (int8)": 650_000}
    assert results.parameter_budgets(codecs.iloc[0:0], [225_000]) == {}


def test_budget_section_shows_budgets_as_whole_epochs(tmp_path):
    from types import SimpleNamespace

    from fer_utils import report

    pd.DataFrame({"model": ["m", "m"], "schedule": ["wsd15/x bs128", "ep60/es10/lr4/bs64"], "budget": [15.0, None],
                  "epochs": [15, 35], "cpu_hours": [0.54, 1.21], "best_val_acc": [0.5, 0.6], "public_acc": [0.5, 0.55],
                  "private_acc": [0.5, 0.56], "public_tta_acc": [0.51, None], "private_tta_acc": [0.52, None],
                  "run_id": ["a", "b"]}).to_csv(tmp_path / "budget.csv", index=False)
    setup = SimpleNamespace(results=tmp_path, figures=tmp_path, report=tmp_path / "report.md")
    text = report.budget_section(setup)
    assert "| wsd15/x bs128 | 15 | 15 | 0.54 | 0.500 |" in text and "| ep60/es10/lr4/bs64 | — | 35 | 1.21 |" in text
    assert "1 budget finished so far (15 epochs)" in text and "*(figure `03_budget` not rendered in this run)*" in text


def test_q1_puts_each_width_1_model_beside_the_original_studys_accuracy(tmp_path):
    from types import SimpleNamespace

    from fer_utils import report

    runs = pd.DataFrame({"model": ["HW3 CNN", "seed MobileNet", "seed MobileNet w2"], "arch": ["cnn", "mobilenet", "mobilenet"],
                         "width": [1.0, 1.0, 2.0], "params": [3_258_379, 73_663, 9], "flops": [1, 2, 3],
                         "epochs": [75, 120, 40], "schedule": ["wsd75", "wsd120", "wsd40"], "best_val_acc": [0.6] * 3,
                         "public_acc": [0.6] * 3, "private_acc": [0.65, 0.604, 0.5], "private_tta_acc": [0.66, 0.608, 0.5],
                         "run_id": ["c", "m", "w"]})
    setup = SimpleNamespace(results=tmp_path, figures=tmp_path, report=tmp_path / "report.md")
    text = report.q1_section(setup, runs)
    assert "| PrivateTest | PrivateTest (mirror TTA) | original study |" in text
    assert "| 0.650 | 0.660 | 0.674 |" in text and "| 0.604 | 0.608 | 0.634 |" in text
    assert "seed MobileNet w2" not in text  # width 1.0 only


def test_q1_shows_each_model_once_its_longest_run_then_its_lowest_seed():
    from fer_utils import results

    runs = pd.DataFrame({"arch": ["mobilenet"] * 4 + ["cnn"], "width": [1.0] * 5, "seed": [2, 1, 0, 0, 1],
                         "epochs": [40, 40, 120, 40, 75], "run_id": ["s2", "s1", "s0-120", "s0-40", "c1"]})
    assert results.one_row_per_model(runs)["run_id"].tolist() == ["s0-120", "c1"]
    assert results.one_row_per_model(runs[runs.epochs == 40])["run_id"].tolist() == ["s0-40"]


def test_learning_curves_pool_only_the_seeds_of_a_models_longest_runs(tmp_path):
    from fer_utils import results

    runs = pd.DataFrame({"arch": ["mobilenet"] * 3, "width": [1.0] * 3, "seed": [0, 1, 0], "epochs": [3, 3, 5],
                         "run_id": ["a", "b", "long"], "model": ["seed MobileNet"] * 3})
    for run_id, n in [("a", 3), ("b", 3), ("long", 5)]:
        pd.DataFrame({"epoch": range(1, n + 1), "accuracy": 0.5, "loss": 1.0, "val_accuracy": 0.4,
                      "val_loss": 1.1}).to_csv(tmp_path / f"{run_id}.csv", index=False)
    curves = results.learning_curves(runs, tmp_path)
    assert len(curves) == 2 * 5 and curves["epoch"].max() == 5  # the 5-epoch run alone: train + validation
    curves = results.learning_curves(runs[runs.epochs == 3], tmp_path)
    assert len(curves) == 2 * 2 * 3  # both 3-epoch seeds pooled


def test_the_sweep_section_says_what_is_left_to_train_and_its_cost(tmp_path):
    from fer_utils import config, models, registry, report, sweep

    base = {c: "" for c in registry.COLUMNS}
    wsd40 = "adam|aug:flip|wsd40/warm2/decay0.2/peak0.003|bs128"
    for arch, width, recipe, wall in [("cnn", 0.0625, wsd40, 400.0), ("cnn", 0.125, "adam|ep60/es10/lr4/bs64", 600.0)]:
        registry.append({**base, "run_id": f"{arch}{width}", "arch": arch, "width": width, "params": 1, "epochs": 40,
                         "profile": "full", "recipe": recipe, "seed": 0, "wall_s": wall, "timestamp": "1"},
                        tmp_path / "runs.csv")
    text = report.todo_sentence(registry.read(tmp_path / "runs.csv"), config.PROFILES["full"])
    n = len(sweep.whole_sweep())
    assert text.startswith(f"Still to train at the sweep budget: {n - 1} of {n} runs (")
    assert "CNN w0.0625, " not in text and "CNN w0.125, " in text and "CNN w0.0625 (seed 1)" in text
    # measured speeds: CNN w0.125 (600 s per 40 epochs; seeds 0, 1, 2) and CNN w0.0625 (400 s; seeds 1, 2);
    # the wider CNNs, never run, are timed as w0.125 (nearest in multiply-adds) scaled up by multiply-adds
    cnn = [j for j in sweep.whole_sweep() if j.arch == "cnn" and j.width > 0.125]
    scaled = sum(600.0 * models.macs_of("cnn", j.width) / models.macs_of("cnn", 0.125) for j in cnn)
    assert f"about {(600 * 3 + 400 * 2 + scaled) / 3600:.1f} CPU hours" in text
    assert "(CNN w0.25, CNN w0.5, CNN w0.75, HW3 CNN: not run yet, timed as the nearest measured width" in text
    others = sum(j.arch != "cnn" for j in sweep.whole_sweep())
    assert f"({others} with no run in their family not counted)" in text


def test_the_sweep_cost_says_how_many_runs_shared_the_cpu():
    from fer_utils import report

    runs = pd.DataFrame({"wall_s": [1.0] * 4, "shared": [0.9, 0.1, float("nan"), 1.0]})
    assert report.sharing_sentence(runs) == ("2 of the 3 runs that recorded it trained mostly beside another run on "
                                             "the same 2 cores (`shared` in `runs.csv`; their wall times include "
                                             "that); 1 older run did not record it.")
    assert "not recorded" in report.sharing_sentence(runs.drop(columns="shared"))


def test_design_paragraph_compares_irnet_with_mobilenet_at_equal_size():
    from fer_utils import report

    points = pd.DataFrame({"model": ["MobileNet w0.5", "seed MobileNet", "IRNet (ours) w1", "IRNet (ours) w9"],
                           "arch": ["mobilenet", "mobilenet", "irnet", "irnet"], "params": [10_000, 100_000, 31_623, 10**6],
                           "seeds": [3, 3, 1, 1], "public_acc": [0.50, 0.60, 0.60, 0.70],
                           "private_acc": [0.50, 0.60, 0.60, 0.70]})
    text = report.design_paragraph(points, {"std_points": 0.7})
    # halfway in log parameters the MobileNet curve is at 0.55, so w1 leads by 5 points; w9 is outside the range
    assert "is ahead at 1 of 1 sizes. 1 of these gaps exceed twice the seed-to-seed noise (1.4 points)." in text
    assert "| IRNet (ours) w1 | 31,623 | 0.600 | 0.550 | +5.0 | yes |" in text and "w9" not in text
    assert "one seed at 1 of the 1 sizes compared" in text  # w9, outside MobileNet's range, is not counted
    three = points.assign(seeds=[3, 3, 3, 1])
    assert "one seed" not in report.design_paragraph(three, {"std_points": 0.7})
    assert "no run at the sweep budget" in report.design_paragraph(points[points.arch == "mobilenet"])
    assert "outside the MobileNet family's" in report.design_paragraph(points.iloc[[0, 1, 3]])


def test_sweep_budget_cost_compares_the_sweep_budget_with_the_longest_one():
    from fer_utils import report

    def row(arch, budget, acc, wall, seed=0, ts="1"):
        return {"run_id": f"{arch}-{budget}-{seed}", "arch": arch, "width": 1.0, "seed": seed, "params": 10,
                "epochs": budget, "public_acc": acc, "private_acc": acc + 0.02, "wall_s": wall, "profile": "full",
                "recipe": f"adam|wsd{budget}/warm2/decay0.2/peak0.003|best-val|bs128", "timestamp": ts,
                "data_fingerprint": "f"}

    rows = pd.DataFrame([row("mobilenet", 40, 0.56, 3600), row("mobilenet", 120, 0.58, 3 * 3600),
                         row("mobilenet", 40, 0.50, 3600, seed=1),  # another seed: not the headline
                         row("cnn", 40, 0.61, 1800)])              # no longer budget: left out
    text = report.sweep_budget_cost(rows, "full", 40)
    assert text == ("What the sweep budget costs against the longest budget trained (the headline models, seed 0; "
                    "PublicTest / PrivateTest): seed MobileNet 0.560 / 0.580 after 40 epochs (1.00 CPU h) against "
                    "0.580 / 0.600 after 120 (3.00 CPU h), -2.0 points of mean accuracy.")
    assert report.sweep_budget_cost(rows[rows.arch == "cnn"], "full", 40) == ""


def test_confusion_models_pick_one_row_per_model_never_a_noise_seed():
    from fer_utils import results

    runs = pd.DataFrame({"arch": ["irnet", "irnet", "mobilenet", "cnn", "cnn"], "width": [1.0, 1.0, 1.0, 0.5, 1.0],
                         "seed": [0, 1, 0, 0, 0], "epochs": [40] * 5, "params": [72_063, 72_063, 73_663, 816_139, 3_258_379],
                         "public_acc": [0.599, 0.600, 0.570, 0.59, 0.62]})
    picked = results.confusion_models(runs)
    assert list(zip(picked.arch, picked.seed, picked.params)) == [("irnet", 0, 72_063), ("cnn", 0, 3_258_379)]


def test_a_teacher_runs_name_reads_back_to_its_arch_and_width():
    from fer_utils import results

    assert results.teacher_name({"arch": "cnn", "width": 1.0}) == "cnn1"
    assert results.teacher_run(results.teacher_name({"arch": "mobilenet", "width": 2.2})) == ("mobilenet", 2.2)
    assert results.teacher_run("cnn1+mobilenet2.2+irnet1.7") is None  # an ensemble file's name


def test_a_distilled_or_other_seed_teacher_is_named_with_its_seed_and_epochs():
    from fer_utils import results

    kd = {"arch": "irnet", "width": 1.2, "seed": 1, "epochs": 200,
          "recipe": "adam|wsd200/warm2/decay0.2/peak0.003|bs128|tag:kdh-cnn1-online-T2-a0.5"}
    plain = {"arch": "irnet", "width": 1.2, "seed": 0, "epochs": 120, "recipe": "adam|wsd120/warm2/decay0.2/peak0.003"}
    other_seed = {**plain, "seed": 2}
    assert results.teacher_name(kd) == "irnet1.2s1e200kdh" and results.teacher_name(plain) == "irnet1.2"
    assert results.teacher_name(other_seed) == "irnet1.2s2e120"
    name = results.teachers_name([kd, plain])
    assert name == "irnet1.2s1e200kdh+irnet1.2"
    assert results.teacher_run("irnet1.2s1e200kdh") is None and results.teacher_run("irnet1.2") == ("irnet", 1.2)
    assert results.teacher_parts(name) == [
        {"arch": "irnet", "width": 1.2, "seed": 1, "epochs": 200, "method": "kdh"},
        {"arch": "irnet", "width": 1.2, "seed": 0, "epochs": None, "method": ""}]
    assert results.teacher_parts("cnn1-e120") is None and results.teacher_parts("cnn1+t1") is None
    assert results.teacher_label("irnet1.2s1e200kdh") == "IRNet (ours) w1.2 + KD (seed 1, 200 epochs)"
    assert results.teacher_label(name) == ("an ensemble of IRNet (ours) w1.2 + KD (seed 1, 200 epochs) and "
                                           "IRNet (ours) w1.2")
    assert results.teacher_label("cnn1") == "HW3 CNN" and results.teacher_label("t1") == "t1"
    # two members of one name (seed 0, 200 epochs), one taught by the HW3 CNN, one by an ensemble: their
    # own tags, where the runs are known, tell them apart
    twins = "irnet1.2s0e200kdh+irnet1.2s0e200kdh"
    assert results.teacher_label(twins, [200, 200], ["kdh-irnet1.2s1e120kdh+irnet1.2-online-T2-a0.5",
                                                     "kdh-cnn1-online-T2-a0.5"]) == (
        "an ensemble of IRNet (ours) w1.2 + KD (teacher irnet1.2s1e120kdh+irnet1.2) (seed 0, 200 epochs) and "
        "IRNet (ours) w1.2 + KD (seed 0, 200 epochs)")
    assert results.teacher_label(twins, tags=["kdh-cnn1-T2-a0.5"]) == (  # tags for another count: unused
        "an ensemble of IRNet (ours) w1.2 + KD (seed 0, 200 epochs) and IRNet (ours) w1.2 + KD (seed 0, 200 epochs)")
    # an ensemble teacher's tag reads back whole, and the report says who taught
    tag = f"kdh-{name}-online-T2-a0.5"
    assert results.kd_teacher(tag) == (name, "online") and results.kd_point(tag) == (2.0, 0.5)
    assert report.teacher_text(tag, Path("teachers")) == (
        "an ensemble of IRNet (ours) w1.2 + KD (seed 1, 200 epochs) and IRNet (ours) w1.2 "
        "(`irnet1.2s1e200kdh+irnet1.2`), the mean of their softmax, run in the loop on every augmented batch "
        "the student sees")
    assert report.teacher_text("kdh-irnet1.2s1e200kdh-online-T2-a0.5", Path("teachers")) == (
        "IRNet (ours) w1.2 + KD (seed 1, 200 epochs) (`irnet1.2s1e200kdh`) run in the loop on every augmented "
        "batch the student sees")


def test_a_peak_lr_variant_teacher_is_named_read_back_and_resolved():
    """A peak-LR run (issue 13's HW3 CNNs at peak 1e-3) as a teacher: its name carries the variant, reads
    back in a distilled run's tag and a fine-tune's, says the peak in words and resolves to that run only."""
    from fer_utils import results

    recipe = "adam|wsd75/warm2/decay0.2/peak0.001|bs128|bf16"
    lr = {"run_id": "l75", "arch": "cnn", "width": 1.0, "seed": 1, "epochs": 75, "recipe": recipe + "|tag:lr0.001"}
    plain = {**lr, "run_id": "p75", "recipe": recipe.replace("peak0.001", "peak0.003")}
    seed0 = {**lr, "seed": 0}
    assert results.teacher_name(lr) == "cnn1s1e75lr0.001" and results.teacher_name(seed0) == "cnn1s0e75lr0.001"
    assert results.teacher_name(plain) == "cnn1s1e75"
    name = results.teachers_name([lr, {**plain, "arch": "irnet", "width": 1.2, "seed": 0, "epochs": 200,
                                       "recipe": "adam|wsd200/warm2/decay0.2/peak0.003|bs128|tag:kdh-cnn1-online-T2-a0.5"}])
    assert name == "cnn1s1e75lr0.001+irnet1.2s0e200kdh"
    assert results.teacher_parts(name) == [
        {"arch": "cnn", "width": 1.0, "seed": 1, "epochs": 75, "method": "lr0.001"},
        {"arch": "irnet", "width": 1.2, "seed": 0, "epochs": 200, "method": "kdh"}]
    assert results.teacher_label("cnn1s1e75lr0.001") == "HW3 CNN (seed 1, 75 epochs, peak LR 0.001)"
    assert results.teacher_label("cnn1s1e75") == "HW3 CNN (seed 1, 75 epochs)"
    assert results.teacher_label("cnn1", [200], ["lr0.001"]) == "HW3 CNN (200 epochs, peak LR 0.001)"
    assert results.kd_teacher(f"kdh-{name}-online-T2-a0.5") == (name, "online")
    qat = results.qat_spec(f"qat-kmeans-4-dw8-lr0.00003-teacher-{name}-T2-a0.5-wsd200-kdh-{name}-online-T2-a0.5")
    assert qat["teacher"] == name and qat["codec"] == "kmeans-4-dw8"
    # the name resolves to the peak-LR run, never to the plain run of the same seed and budget
    rows = pd.DataFrame([plain, lr]).assign(timestamp=["2026-01-01", "2026-01-02"])
    part = results.teacher_parts("cnn1s1e75lr0.001")[0]
    assert results._teacher_part_run(part, rows, "full")["run_id"] == "l75"
    assert results._teacher_part_run(results.teacher_parts("cnn1s1e75")[0], rows, "full")["run_id"] == "p75"


def test_two_variants_that_share_a_first_part_are_teachers_of_different_names():
    """A peak-LR run on another augmentation (the GPU job ``cnnlr1flip``) as a teacher: its name carries
    both variant parts, so it never resolves to the peak-LR run on the standard augmentation of the same
    seed and budget, and reads back in words; names with one method part are unchanged."""
    from fer_utils import results, runs

    recipe = "adam|wsd200/warm2/decay0.2/peak0.001|bs128|bf16"
    lr = {"run_id": "l200", "arch": "cnn", "width": 1.0, "seed": 0, "epochs": 200, "recipe": recipe + "|tag:lr0.001"}
    flip = {**lr, "run_id": "f200", "recipe": recipe + "|tag:lr0.001-augflip"}
    kd_flip = {**lr, "run_id": "k200", "arch": "irnet", "width": 1.2,
               "recipe": recipe + "|tag:kdh-cnn1-online-T2-a0.5-augflip"}
    assert results.teacher_name(lr) == "cnn1s0e200lr0.001"
    assert results.teacher_name(flip) == "cnn1s0e200lr0.001augflip"
    assert results.teacher_name(kd_flip) == "irnet1.2s0e200kdhaugflip"
    assert runs.method_tag("lr0.001augflip") == ("", "lr0.001-augflip")
    assert runs.method_tag("kdhaugflip") == ("kdh", "augflip") and runs.method_tag("kdh") == ("kdh", "")
    for tag in ["kdh-cnn1-online-T2-a0.5", "lr0.001", "augflip", "lr0.001-auglight", "kdh-cnn1-online-T2-a0.5-augflip"]:
        base, variant = runs.method_tag(runs.tag_method(tag))
        assert (base, variant) == (runs.split_variant(tag)[0].split("-")[0], runs.split_variant(tag)[1])
    name = results.teachers_name([flip, kd_flip])
    assert results.teacher_parts(name) == [
        {"arch": "cnn", "width": 1.0, "seed": 0, "epochs": 200, "method": "lr0.001augflip"},
        {"arch": "irnet", "width": 1.2, "seed": 0, "epochs": 200, "method": "kdhaugflip"}]
    assert results.kd_teacher(f"kdh-{name}-online-T2-a0.5") == (name, "online")
    assert results.teacher_label("cnn1s0e200lr0.001augflip") == (
        "HW3 CNN (seed 0, 200 epochs, peak LR 0.001, flip augmentation)")
    assert results.teacher_label("irnet1.2s0e200kdhaugflip") == (
        "IRNet (ours) w1.2 + KD (seed 0, 200 epochs, flip augmentation)")
    rows = pd.DataFrame([lr, flip]).assign(timestamp=["2026-01-01", "2026-01-02"])
    assert results._teacher_part_run(results.teacher_parts("cnn1s0e200lr0.001")[0], rows, "full")["run_id"] == "l200"
    assert results._teacher_part_run(results.teacher_parts("cnn1s0e200lr0.001augflip")[0], rows, "full")["run_id"] == "f200"


def test_find_run_takes_a_run_id_as_well_as_arch_and_width(tmp_path):
    from fer_utils import registry, results

    reg = tmp_path / "runs.csv"
    base = {"arch": "irnet", "width": 1.2, "params": 100, "profile": "full", "data_fingerprint": "f",
            "best_val_acc": 0.6, "public_acc": 0.6, "private_acc": 0.6}
    rows = [{**base, "run_id": "plain", "seed": 0, "epochs": 40, "recipe": "adam|wsd40/warm2/decay0.2/peak0.003",
             "timestamp": "1"},
            {**base, "run_id": "kd", "seed": 1, "epochs": 40, "timestamp": "2",
             "recipe": "adam|wsd40/warm2/decay0.2/peak0.003|tag:kdh-cnn1-online-T2-a0.5"},
            {**base, "run_id": "kd", "seed": 1, "epochs": 40, "timestamp": "3", "private_acc": 0.7,
             "recipe": "adam|wsd40/warm2/decay0.2/peak0.003|tag:kdh-cnn1-online-T2-a0.5"}]
    for r in rows:
        registry.append({c: r.get(c, "") for c in registry.COLUMNS}, reg)
    assert results.find_run("irnet:1.2", reg, "full", "f")["run_id"] == "plain"
    found = results.find_run("kd", reg, "full", "f")
    assert found["private_acc"] == 0.7 and results.teacher_name(found) == "irnet1.2s1e40kdh"  # its newest row
    assert results.find_run("kd", reg, "smoke", "f") is None and results.find_run("kd", reg, "full", "g") is None
    assert results.find_run("nope", reg, "full", "f") is None
    assert [r["run_id"] for r in results.find_runs(["kd", "irnet:1.2"], reg, "full", "f")] == ["kd", "plain"]
    with pytest.raises(LookupError, match="no finished nope run of profile full"):
        results.find_runs(["kd", "nope"], reg, "full", "f")


def test_qat_targets_text_compares_a_teacher_fine_tune_with_the_labels_only_one():
    from fer_utils import report

    base = {"model": "IRNet (ours) w1.2 + KD", "fine_tune": "3 epochs, peak LR 3e-05, BatchNorm trained",
            "codec": "kmeans-4", "source_run_id": "src", "qat_cpu_h": 0.1}
    qat = pd.DataFrame([
        {**base, "targets": "labels only", "after_private": 0.6247, "private_drop_after": 1.25},
        {**base, "targets": "teacher HW3 CNN in the loop (T 2, alpha 0.5)", "after_private": 0.6351,
         "private_drop_after": 0.24, "qat_cpu_h": 0.15},
        {**base, "targets": "teacher HW3 CNN in the loop (T 2, alpha 0.5)", "source_run_id": "other",
         "after_private": 0.6, "private_drop_after": 0.0}])  # no labels-only twin: left out
    text = report.qat_targets_text(qat)
    assert text.count("\n- ") == 1 and "+1.04 points for the teacher" in text
    assert "PrivateTest 0.635 (0.24 points below float32) against 0.625" in text
    assert report.qat_targets_text(qat.iloc[[0]]) == "" and report.qat_targets_text(pd.DataFrame()) == ""


def test_qat_augment_text_compares_a_moved_fine_tune_with_its_twin_on_the_sources_augmentation():
    from fer_utils import report

    base = {"model": "IRNet (ours) w1.2 + KD", "fine_tune": "10 epochs, peak LR 0.0001, BatchNorm trained",
            "codec": "kmeans-4-dw8", "source_run_id": "src", "source_augment": "standard", "qat_cpu_h": 0.6,
            "targets": "teacher X in the loop (T 2, alpha 0.5)", "float32_public": 0.6512, "float32_private": 0.6718}
    qat = pd.DataFrame([
        {**base, "augment": "standard", "after_public": 0.6461, "after_private": 0.6673, "private_drop_after": 0.45},
        {**base, "augment": "flip", "after_public": 0.6551, "after_private": 0.6763, "private_drop_after": -0.45},
        {**base, "augment": "flip", "codec": "kmeans-3", "after_public": 0.6, "after_private": 0.6,
         "private_drop_after": 7.0},  # no twin on the standard augmentation: left out
        {**base, "augment": "flip", "targets": "labels only", "after_public": 0.6, "after_private": 0.6,
         "private_drop_after": 7.0}])  # another target: not the teacher fine-tune's twin
    text = report.qat_augment_text(qat)
    assert text.count("\n- ") == 1 and "+0.90 and +0.90 points" in text
    assert "on the flip augmentation PublicTest 0.655, PrivateTest 0.676; on the source's standard one 0.646 and 0.667" in text
    assert report.qat_augment_text(qat.iloc[[0]]) == "" and report.qat_augment_text(pd.DataFrame()) == ""
    assert report.qat_augment_text(qat.drop(columns="augment")) == ""  # a table from before the column
    # the teacher comparison never pairs fine-tunes on different augmentations
    both = pd.concat([qat, pd.DataFrame([{**base, "augment": "flip", "targets": "labels only",
                                          "after_public": 0.6, "after_private": 0.6, "private_drop_after": 7.0,
                                          "codec": "kmeans-4-dw8"}])])
    assert report.qat_targets_text(both).count("\n- ") == 1 and "0.600 on the labels alone" in report.qat_targets_text(both)


def test_folder_tables_say_how_long_each_member_trained():
    reg = pd.DataFrame({
        "run_id": ["a-wsd120", "b-qat", "c-old"],
        "epochs": [120, 3, 56],
        "recipe": ["adam|wsd120/warm2/decay0.2/peak0.003|bs128",
                   "adam|cosine3/warm0/peak3e-05|bs128|tag:qat-kmeans-4-lr0.00003-teacher-cnn1-T2-a0.5-wsd60-kdh-cnn1-online-T2-a0.5",
                   "adam|ep60/es10/lr4/bs64"],
    })
    table = pd.DataFrame({"budget": ["strong", "tiny"], "model": ["A; B; C", "B"],
                          "run_id": ["a-wsd120; b-qat; c-old", "gone"]})
    out = report.member_epochs(table, reg)
    assert list(out.columns) == ["budget", "model", "epochs", "run_id"]
    assert out.epochs.tolist() == ["120; 60; 56", "?"]  # a fine-tune stands at its source's budget, the
    # first recipe at the epochs it trained; a member the registry lacks is unknown
    assert report.member_epochs(table, reg.drop(columns="epochs")).epochs.tolist() == ["120; 60; ?", "?"]
    assert report.member_epochs(pd.DataFrame(), reg).empty


def test_bn2_text_compares_bytes_everywhere_and_accuracy_on_fine_tunes_only():
    qat = "irnet-w1.2-full-s0-abc-cos3-qat-kmeans-4-lr0.00003-wsd40"
    plain = "mobilenet-w0.5-full-s0-abc-wsd40"

    def row(run_id, arch, codec, size, acc, stamp="t1"):
        return {"run_id": run_id, "arch": arch, "codec": codec, "bytes": size, "public_acc": acc,
                "private_acc": acc, "run_timestamp": stamp}

    codecs = pd.DataFrame([
        row(qat, "irnet", "kmeans-4", 1000, 0.6300), row(qat, "irnet", "kmeans-4-bn2", 870, 0.6302),
        row(plain, "mobilenet", "kmeans-3", 500, 0.40), row(plain, "mobilenet", "kmeans-3-bn2", 490, 0.47),
        row(plain, "mobilenet", "kmeans-5", 700, 0.50, stamp="t0"),  # another training: no pair
        row(plain, "mobilenet", "kmeans-5-bn2", 600, 0.51)])
    text = report.bn2_text(codecs)
    assert "Over the 2 files measured both ways" in text and "2.0-13.0 %" in text
    assert "IRNet (ours) 13.0 %, MobileNet 2.0 %" in text
    assert "On the 1 quantisation-aware fine-tunes' files" in text and "at most 0.02 points" in text
    assert report.bn2_text(codecs[~codecs.codec.str.endswith("-bn2")]) == ""
    assert "fine-tunes" not in report.bn2_text(codecs[codecs.run_id == plain])


def test_other_codecs_table_gives_each_training_budget_its_own_row():
    reg = pd.DataFrame({
        "run_id": ["kd60", "kd200", "q60", "q200"],
        "recipe": ["adam|wsd60/warm2/decay0.2/peak0.003|bs128|tag:kdh", "adam|wsd200/warm2/decay0.2/peak0.003|bs128|tag:kdh",
                   "adam|cosine3/warm0/peak3e-05|bs128|tag:qat-kmeans-4-lr0.00003-wsd60-kdh",
                   "adam|cosine3/warm0/peak3e-05|bs128|tag:qat-kmeans-4-lr0.00003-wsd200-kdh"],
    })
    codecs = pd.DataFrame({
        "run_id": ["kd200", "kd60", "kd60", "q200", "q60"],
        "model": ["S + KD", "S + KD", "S + KD", "S + KD + QAT", "S + KD + QAT"],
        "params": [100] * 5, "codec": ["int8", "int8", "kmeans-4", "kmeans-4", "kmeans-4"],
        "bytes": [120, 110, 60, 61, 62], "private_acc": [0.66, 0.64, 0.62, 0.655, 0.635]})
    lines = report.other_codecs_table(report.member_epochs(codecs, reg)).splitlines()
    assert lines[0] == "| model | epochs | int8 | kmeans-4 |"
    assert lines[2:] == ["| S + KD | 60 | 110 B · 0.640 | 60 B · 0.620 |",   # budgets in numeric order
                         "| S + KD | 200 | 120 B · 0.660 | — |",
                         "| S + KD + QAT | 60 | — | 62 B · 0.635 |",
                         "| S + KD + QAT | 200 | — | 61 B · 0.655 |"]
    merged = report.other_codecs_table(codecs).splitlines()  # no budgets: one row per label
    assert merged[0] == "| model | int8 | kmeans-4 |" and len(merged) == 4
    # a former headline measured with every codec adds no column: only the deliverable codecs show
    former = codecs.assign(run_id="old", model="seed", codec=["fp16", "int8", "kmeans-2", "kmeans-4", "seed"])
    both = report.other_codecs_table(pd.concat([codecs, former]), {"int8", "kmeans-4"}).splitlines()
    assert both[0] == "| model | int8 | kmeans-4 |" and "fp16" not in "".join(both) and len(both) == 5


def test_glance_lines_put_each_deliverable_and_headline_model_against_its_target():
    deliverables = pd.DataFrame([
        {"budget": "strong", "limit_bytes": 225000, "members": 2, "model": "A; B", "epochs": "200; 40",
         "codec": "int8; kmeans-4", "folder_bytes": 190000, "public_tta_acc": 0.651, "private_tta_acc": 0.668,
         "target_private": 0.715},
        {"budget": "tiny", "limit_bytes": 80000, "members": 1, "model": "A + QAT", "epochs": "200",
         "codec": "kmeans-4-bn2", "folder_bytes": 72610, "public_tta_acc": 0.646, "private_tta_acc": 0.669,
         "target_private": 0.66}])
    headline = pd.DataFrame([{"arch": "mobilenet", "model": "seed MobileNet", "params": 73663, "epochs": 120,
                              "private_acc": 0.604, "private_tta_acc": 0.608}])
    lines = report.glance_lines(deliverables, headline)
    assert len(lines) == 3
    assert lines[0].startswith("- **strong** deliverable (folder <= 225,000 B): 190,000 B: PrivateTest **0.668**")
    assert lines[0].endswith("target 0.715: missed by 4.7 points. It averages the softmax outputs of 2 files:\n"
                             "  1. A in int8, trained 200 epochs\n  2. B in kmeans-4, trained 40 epochs")
    assert "72,610 B, A + QAT in kmeans-4-bn2, trained 200 epochs: PrivateTest" in lines[1]
    assert "PrivateTest **0.669** with mirror TTA" in lines[1] and lines[1].endswith("target 0.660: met.")
    assert "1 files" not in lines[1]
    assert lines[2] == ("- seed MobileNet, 73,663 parameters, trained 120 epochs: PrivateTest 0.604 (0.608 with "
                        f"mirror TTA) against the original study's {config.HEADLINE_TARGETS['mobilenet']:.3f}: "
                        "missed by 3.0 points.")
    assert report.glance_lines(pd.DataFrame(), pd.DataFrame()) == []
    unscored = deliverables.iloc[[1]].assign(private_tta_acc=float("nan"), public_acc=0.64, private_acc=0.65)
    line = report.glance_lines(unscored, headline.iloc[:0])[0]  # no TTA scores: the plain files' accuracy ships
    assert "PrivateTest **0.650** without TTA, as it ships (PublicTest 0.640" in line
    assert line.endswith("target 0.660: missed by 1.0 points.")


def test_distillation_table_puts_each_student_beside_its_twin_on_one_row():
    def row(training, model, private, public, gain=None, cpu=0.3):
        return {"pair": "S + KD", "training": training, "model": model, "params": 100, "schedule": "wsd15",
                "epochs": 15, "best_val_acc": 0.5, "public_acc": public, "private_acc": private,
                "public_gain": gain, "private_gain": gain, "cpu_h": cpu, "run_id": model}
    pairs = pd.DataFrame([row("labels only", "S", 0.55, 0.54),
                          row("distilled (kdh-cnn1-online-T2-a0.5)", "S + KD", 0.57, 0.56, 2.0, 0.35),
                          row("labels only", "S", 0.55, 0.54),
                          row("distilled (kdh-cnn1-T4-a0.7)", "S + KD", 0.53, 0.52, -2.0)])
    table = report.distillation_side_by_side(pairs)
    assert len(table) == 2 and table.distilled.tolist() == ["kdh-cnn1-online-T2-a0.5", "kdh-cnn1-T4-a0.7"]
    first = table.iloc[0]
    assert (first.twin_private, first.private_acc, first.private_gain, first.twin_cpu_h, first.cpu_h) == (
        0.55, 0.57, 2.0, 0.3, 0.35)
    assert report.distillation_side_by_side(pd.DataFrame()).empty
