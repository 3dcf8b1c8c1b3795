"""Sweep rows with seeds: per-size means and spread, the noise, the crossing and the sweep's cost."""
import math

import pandas as pd
import pytest

from fer_utils import config, results


def _rows(spec):
    """[(arch, width, params, seed, public, private, wall_s)] -> registry-like rows."""
    return pd.DataFrame([{"arch": a, "width": w, "params": p, "seed": s, "public_acc": pu, "private_acc": pr,
                          "best_val_acc": round(pu + 0.01, 4), "wall_s": ws, "epochs": 40, "recipe": "adam|wsd40/warm2/decay0.2/peak0.003|bs128",
                          "timestamp": f"2026-12-01T00:00:{i:02d}", "train_images_per_s": 25838 / 60}
                         for i, (a, w, p, s, pu, pr, ws) in enumerate(spec)])


def test_family_points_average_seeds_and_measure_their_spread():
    rows = _rows([("mobilenet", 0.5, 20000, 0, 0.50, 0.52, 3600), ("mobilenet", 0.5, 20000, 1, 0.52, 0.54, 3600),
                  ("mobilenet", 0.5, 20000, 2, 0.54, 0.56, 3600), ("mobilenet", 1.0, 70000, 0, 0.58, 0.60, 7200)])
    pts = results.family_points(rows)
    assert list(pts.width) == [0.5, 1.0] and list(pts.seeds) == [3, 1]
    half = pts.iloc[0]
    assert math.isclose(half.mean_acc, 0.53) and math.isclose(half.mean_min, 0.51) and math.isclose(half.mean_max, 0.55)
    assert half.spread_points == 4.0 and half.std_points == 2.0 and half.cpu_h == 3.0 and half.cpu_h_per_run == 1.0
    assert math.isnan(pts.iloc[1].std_points) and pts.iloc[1].spread_points == 0.0
    status = results.sweep_status(pts, "mobilenet", [0.5, 1.0, 2.0])  # what the report and figures read
    assert status["on"] == [0.5, 1.0] and status["missing"] == [2.0]
    noise = results.seed_noise(pts)
    assert noise == {"std_points": 2.0, "range_points": 4.0, "sizes": 1, "by_family": {"mobilenet": 1}, "max_seeds": 3}
    assert results.seed_noise(pts[pts.seeds == 1]) is None


def test_the_crossing_is_interpolated_in_log_parameters():
    cross = {"before": {"params": 10_000, "gap_points": 2.0}, "after": {"params": 1_000_000, "gap_points": -2.0}}
    assert results.crossing_params(cross) == pytest.approx(100_000)
    gap = pd.DataFrame({"model": ["a", "b", "c"], "params": [1e4, 1e5, 1e6], "gap_points": [3.0, 1.0, -1.0]})
    assert results.crossing_params(results.crossing(gap)) == pytest.approx(10 ** 5.5)


def test_sweep_cost_from_measured_wall_time_per_epoch():
    rows = _rows([("cnn", 0.5, 800000, 0, 0.6, 0.6, 1200)])  # 40 epochs in 1200 s: 30 s per epoch
    cost = results.sweep_cost(rows, [("cnn", 0.5), ("cnn", 2.0)], epochs=60)
    assert cost.seconds.iloc[0] == 1800 and cost.hours.iloc[0] == 0.5
    assert math.isnan(cost.seconds.iloc[1]) and math.isnan(cost.hours.iloc[1])  # never trained
    assert cost.basis.tolist() == ["CNN w0.5", ""]
    # a newer row trained on a lent GPU is no measure of the CPU's time per epoch
    gpu = pd.concat([rows, _rows([("cnn", 0.5, 800000, 0, 0.6, 0.6, 40)]).assign(
        timestamp="2026-12-02T00:00:00", backend="jax-gpu")], ignore_index=True)
    assert results.sweep_cost(gpu, [("cnn", 0.5)], epochs=60).seconds.iloc[0] == 1800


def test_an_untrained_width_is_timed_from_its_familys_nearest_width_scaled_up_by_multiply_adds():
    rows = _rows([("cnn", 0.5, 800000, 0, 0.6, 0.6, 1200), ("cnn", 0.25, 200000, 0, 0.6, 0.6, 800)])
    macs = {0.125: 50, 0.25: 100, 0.5: 400, 1.0: 1600, 2.0: 6400}
    cost = results.sweep_cost(rows, [("cnn", 2.0), ("cnn", 0.125), ("cnn", 0.5), ("irnet", 1.0)], epochs=40,
                              macs=lambda arch, w: macs[w])
    # w2.0 nearest measured in multiply-adds is w0.5 (30 s per epoch), 16x the work
    assert cost.seconds.iloc[0] == pytest.approx(30 * 16 * 40) and cost.basis.iloc[0] == "CNN w0.5, scaled by multiply-adds"
    # w0.125 is nearest w0.25 (20 s per epoch): never scaled down
    assert cost.seconds.iloc[1] == pytest.approx(800) and cost.basis.iloc[1].startswith("CNN w0.25")
    assert cost.seconds.iloc[2] == 1200 and cost.basis.iloc[2] == "CNN w0.5"  # measured itself
    assert math.isnan(cost.seconds.iloc[3]) and cost.basis.iloc[3] == ""  # no run in its family


def test_two_runs_at_a_time_scale_a_time_measured_alone_but_not_one_measured_beside_another():
    from fer_utils import config

    rows = _rows([("cnn", 0.5, 800000, 0, 0.6, 0.6, 1200), ("cnn", 0.25, 200000, 0, 0.6, 0.6, 800),
                  ("mobilenet", 1.0, 70000, 0, 0.6, 0.6, 400)]).assign(shared=[0.0, 0.9, float("nan")])
    points = [("cnn", 0.5), ("cnn", 0.25), ("mobilenet", 1.0)]
    alone = results.sweep_cost(rows, points, epochs=40)
    assert alone.seconds.tolist() == [1200, 800, 400] and alone.shared.tolist()[:2] == [0.0, 0.9]
    paired = results.sweep_cost(rows, points, epochs=40, concurrent=2)
    s = config.SHARED_SLOWDOWN
    assert paired.seconds.tolist() == pytest.approx([1200 * s, 800, 400 * s])  # not recorded: as if alone
    assert paired.basis.tolist() == [f"CNN w0.5, x{s:g} (measured alone)", "CNN w0.25",
                                     f"seed MobileNet, x{s:g} (measured alone)"]


def test_sweep_todo_lists_runs_without_a_row_at_the_sweep_budget():
    rows = _rows([("cnn", 0.5, 800000, 0, 0.6, 0.6, 1200), ("cnn", 1.0, 3000000, 0, 0.6, 0.6, 4000)])
    rows.loc[1, "recipe"] = "adam|ep60/es10/lr4/bs64"  # first recipe: counts for speed, not as done
    plan = [("cnn", 0.5, 0), ("cnn", 0.5, 1), ("cnn", 1.0, 0), ("mobilenet", 1.0, 0)]
    todo = results.sweep_todo(rows, 40, plan)
    assert list(zip(todo.arch, todo.width, todo.seed)) == [("cnn", 0.5, 1), ("cnn", 1.0, 0), ("mobilenet", 1.0, 0)]
    assert todo.seconds.tolist()[:2] == [1200, 4000] and math.isnan(todo.seconds.iloc[2])


def test_peak_lr_check_sets_each_probed_model_s_peaks_beside_its_plain_runs():
    from fer_utils import report

    rows = _rows([("cnn", 1.0, 3258379, 0, 0.62, 0.62, 4000), ("cnn", 1.0, 3258379, 0, 0.64, 0.66, 4100),
                  ("cnn", 1.0, 3258379, 0, 0.60, 0.60, 4200), ("mobilenet", 1.0, 73663, 0, 0.57, 0.59, 3600),
                  ("cnn", 1.0, 3258379, 0, 0.70, 0.70, 9000)])
    rows = rows.assign(profile="full", shared=0.0)
    rows.loc[1, "recipe"] = "adam|wsd40/warm2/decay0.2/peak0.001|bs128|bf16|tag:lr0.001"
    rows.loc[2, "recipe"] = "adam|wsd40/warm2/decay0.2/peak0.0003|bs128|bf16|tag:lr0.0003"
    rows.loc[4, "recipe"] = "adam|wsd60/warm2/decay0.2/peak0.001|bs128|tag:lr0.001"  # another budget
    assert results.peak_lr_of(rows.recipe.iloc[2]) == 3e-4 and results.peak_lr_of("adam|ep60/es10/lr4/bs64") is None
    assert results.peak_lr_of("adam|cosine3/warm0/peak3e-05|bs128") == 3e-5
    table = results.peak_lr_check(rows, 40)
    # the seed MobileNet has no variant: not in the check; the CNN's three peaks, increasing
    assert list(table.model) == ["HW3 CNN"] * 3 and list(table.peak_lr) == [3e-4, 1e-3, 3e-3]
    assert list(table.epochs) == [40] * 3
    every = results.peak_lr_check(rows)  # every budget a variant trained on: 40, then 60 (the variant alone)
    assert list(zip(every.epochs, every.peak_lr)) == [(40, 3e-4), (40, 1e-3), (40, 3e-3), (60, 1e-3)]
    assert every.iloc[:3].equals(table)
    assert list(table.mean_acc) == [0.60, 0.65, 0.62] and list(table.val_acc) == [0.61, 0.65, 0.63]
    assert results.peak_lr_check(rows.iloc[0:0], 40).empty and results.peak_lr_check(rows.iloc[[0, 3]], 40).empty

    text = report.peak_lr_paragraph(table, 3e-3, noise_std=0.7)
    assert text.startswith("- HW3 CNN, 40 epochs: the recipe's peak 0.003 (1 seed): validation 0.630, mean of the "
                           "tests 0.620")
    assert "peak 0.001 (1 seed): validation 0.650, mean of the tests 0.650, +3.0 points (beyond twice" in text
    assert "peak 0.0003 (1 seed): validation 0.610, mean of the tests 0.600, -2.0 points (beyond" in text
    assert text.endswith("Validation prefers peak 0.001, by 2.0 points (beyond twice the seed-to-seed noise, 1.4 points).")
    tie = table.assign(val_acc=[0.61, 0.63, 0.63])  # a tie with the recipe's peak keeps it
    assert report.peak_lr_paragraph(tie, 3e-3).endswith("No other peak beats the recipe's on validation: peak 0.003 stays.")
    assert "no run at the recipe's peak 0.003 on this" in report.peak_lr_paragraph(table[table.peak_lr != 3e-3], 3e-3)
    lines = report.peak_lr_paragraph(every, 3e-3).splitlines()  # one line per model and budget
    assert len(lines) == 2 and lines[1] == ("- HW3 CNN, 60 epochs: no run at the recipe's peak 0.003 on this "
                                            "budget to compare with.")
    assert "No run with another peak" in report.peak_lr_paragraph(table.iloc[0:0], 3e-3)


def test_schedule_check_sets_a_cosine_variant_beside_the_plain_runs_of_its_budget():
    from fer_utils import report

    rows = _rows([("cnn", 1.0, 3258379, 0, 0.62, 0.62, 4000), ("cnn", 1.0, 3258379, 1, 0.64, 0.62, 4000),
                  ("cnn", 1.0, 3258379, 0, 0.66, 0.66, 4100), ("cnn", 1.0, 3258379, 0, 0.60, 0.60, 4200)])
    rows = rows.assign(profile="full", shared=0.0)
    rows.loc[0:1, "recipe"] = "adam|wsd120/warm2/decay0.2/peak0.003|bs128|bf16"
    rows.loc[2, "recipe"] = "adam|cosine120/warm2/peak0.003|bs128|bf16|tag:cos"
    rows.loc[3, "recipe"] = "adam|wsd40/warm2/decay0.2/peak0.003|bs128|bf16"  # no variant on 40: left out
    table = results.schedule_check(rows)
    assert list(zip(table.epochs, table.schedule, table.seeds)) == [(120, "cosine", 1), (120, "wsd", 2)]
    assert list(table.mean_acc) == [0.66, 0.625]
    assert results.schedule_check(rows.iloc[[0, 1, 3]]).empty  # no variant, no check

    text = report.schedule_paragraph(table, "wsd", noise_std=0.7)
    assert text == ("- HW3 CNN, 120 epochs: the recipe's warm-up / stable / decay (2 seeds): validation 0.640, "
                    "mean of the tests 0.625; cosine (1 seed): validation 0.670, mean of the tests 0.660, "
                    "+3.5 points (beyond twice the seed-to-seed noise, 1.4 points). Validation prefers cosine, by 3.0 "
                    "points (beyond twice the seed-to-seed noise, 1.4 points).")
    close = report.schedule_paragraph(table.assign(val_acc=[0.645, 0.64]), "wsd", noise_std=0.7)
    assert close.endswith("Validation prefers cosine, by 0.5 points (within twice the seed-to-seed noise, 1.4 points).")
    assert report.schedule_paragraph(table.assign(val_acc=[0.60, 0.63]), "wsd").endswith(
        "No other shape beats the recipe's on validation: warm-up / stable / decay stays.")
    assert "No run with another schedule shape" in report.schedule_paragraph(table.iloc[0:0], "wsd")


def test_a_point_never_mixes_recipes():
    rows = _rows([("cnn", 0.5, 800000, 0, 0.50, 0.50, 3600), ("cnn", 0.5, 800000, 1, 0.60, 0.60, 3600)])
    rows.loc[0, "recipe"] = "adam|ep60/es10/lr4/bs64"  # seed 0 on the first recipe, older
    pts = results.family_points(rows)
    assert pts.seeds.tolist() == [1] and pts.mean_acc.tolist() == [0.6]


def test_batch_size_check_sets_each_variant_beside_the_plain_seeds():
    from fer_utils import report

    rows = _rows([("mobilenet", 1.0, 73663, 0, 0.56, 0.58, 4000), ("mobilenet", 1.0, 73663, 1, 0.57, 0.59, 4200),
                  ("mobilenet", 1.0, 73663, 2, 0.55, 0.57, 4400), ("mobilenet", 1.0, 73663, 0, 0.57, 0.60, 5000),
                  ("mobilenet", 0.5, 21233, 0, 0.50, 0.52, 1500), ("mobilenet", 1.0, 73663, 0, 0.59, 0.61, 9000)])
    rows = rows.assign(profile="full", shared=[0.9, 0.1, float("nan"), 0.8, 0.0, 0.0])
    rows.loc[3, "recipe"] = "adam|wsd40/warm2/decay0.2/peak0.003|bs64|tag:bs64"  # the variant
    rows.loc[5, "recipe"] = "adam|wsd60/warm2/decay0.2/peak0.003|bs128"  # another budget: not compared
    rows = pd.concat([rows, rows.iloc[[0]].assign(recipe="adam|wsd40/warm2/decay0.2/peak0.003|bs128|tag:kdh-x")])
    assert results.batch_size_of(rows.recipe.iloc[3]) == 64 and results.batch_size_of("adam|ep60/es10/lr4/bs64") is None
    table = results.batch_size_check(rows, "mobilenet", 1.0, 40)
    assert list(table.batch_size) == [64, 128] and list(table.seeds) == [1, 3]
    plain = table.iloc[1]
    assert math.isclose(plain.mean_acc, 0.57) and math.isclose(plain.mean_min, 0.56) and math.isclose(plain.mean_max, 0.58)
    assert plain.cpu_h_per_run == round(4200 / 3600, 2) and plain.shared == 0.5  # NaN left out of the mean
    assert results.batch_size_check(rows.iloc[0:0], "mobilenet", 1.0, 40).empty

    text = report.batch_size_paragraph(table, 128, noise_std=0.8)
    assert "batch 128 (3 seeds)" in text and "seeds from 0.560 to 0.580" in text
    assert "Batch 64 (1 seed): 0.585, +1.5 points against batch 128" in text
    assert "trained mostly beside another run" in text and "within twice the seed-to-seed noise (1.6 points" in text
    assert "the batch size matters" in report.batch_size_paragraph(table, 128, noise_std=0.5)
    assert "No other batch size" in report.batch_size_paragraph(table[table.batch_size == 128], 128)
    assert "No run of the recipe's batch size (128)" in report.batch_size_paragraph(table[table.batch_size == 64], 128)


def test_protocol_check_sets_the_original_protocol_beside_the_holdout_on_the_same_budget_and_precision():
    from fer_utils import report

    rows = _rows([("cnn", 1.0, 3258379, 0, 0.62, 0.64, 9000), ("cnn", 1.0, 3258379, 0, 0.66, 0.655, 10000),
                  ("cnn", 1.0, 3258379, 1, 0.63, 0.64, 9000), ("cnn", 1.0, 3258379, 1, 0.63, 0.70, 9000),
                  ("mobilenet", 1.0, 73663, 0, 0.57, 0.60, 3600), ("mobilenet", 1.0, 73663, 0, 0.58, 0.62, 3600),
                  ("cnn", 1.0, 3258379, 0, 0.70, 0.70, 9000)])
    rows = rows.assign(profile="full", private_tta_acc=[0.645, 0.66, 0.65, 0.71, 0.61, 0.63, 0.70])
    hold, pub = "adam|wsd120/warm2/decay0.2/peak0.003|best-val|val10%|bs128", "|valPublicTest|"
    rows["recipe"] = [hold + "|bf16", hold.replace("|val10%|", pub) + "|bf16|tag:vpub", hold + "|bf16",
                      hold.replace("|val10%|", pub) + "|tag:vpub",  # float32: another precision, with no holdout twin
                      hold, hold.replace("|val10%|", pub) + "|tag:lr0.001-vpub",  # a peak-LR variant: not compared
                      hold.replace("wsd120", "wsd40") + "|bf16"]  # another budget: not compared
    assert results.precision_of(rows.recipe.iloc[0]) == "mixed_bfloat16" and results.precision_of(hold) == "float32"
    assert config.validation_of(rows.recipe.iloc[1]) == "public" and config.validation_of("adam|ep60/es10/lr4/bs64") == "holdout"
    table = results.protocol_check(rows)
    assert list(table.columns) == results.PROTOCOL_COLUMNS
    got = [tuple(r) for r in table[["model", "epochs", "precision", "protocol", "seeds"]].itertuples(index=False)]
    assert got == [("HW3 CNN", 120, "mixed_bfloat16", "holdout", 2), ("HW3 CNN", 120, "mixed_bfloat16", "public", 1),
                   ("HW3 CNN", 120, "float32", "public", 1)]
    assert list(table.private_acc) == [0.64, 0.655, 0.70] and list(table.private_tta_acc) == [0.6475, 0.66, 0.71]
    assert table.val_acc.iloc[1] == 0.67  # what picked the epoch: PublicTest itself here
    assert results.protocol_check(rows.iloc[0:0]).empty and results.protocol_check(rows.iloc[[0, 2, 4]]).empty

    text = report.protocol_paragraph(table)
    lines = text.split("\n")
    assert lines[0] == ("- HW3 CNN, 120 epochs (bf16): PrivateTest 0.655 on the original's protocol (1 seed; "
                        "0.660 with mirror TTA), against 0.640 with the holdout (2 seeds; 0.647 with mirror TTA): "
                        "+1.5 points from training on all of Training and picking the epoch on PublicTest. "
                        "Against the original study's 0.674: missed by 1.9 points.")  # plain, as the glance judges
    assert lines[1].startswith("- HW3 CNN, 120 epochs: PrivateTest 0.700")
    assert lines[1].endswith("no run with the holdout on this budget and precision to compare with. "
                             "Against the original study's 0.674: met.")
    assert "No run on the original study's protocol has finished yet" in report.protocol_paragraph(table.iloc[0:0])
    noisy = report.protocol_paragraph(table, noise_std=0.7).split("\n")
    assert "on PublicTest (beyond twice the seed-to-seed noise, 1.4 points, measured on the mean of the tests)." in noisy[0]
    assert "within" in report.protocol_paragraph(table, noise_std=0.8).split("\n")[0]  # 1.5 points < 1.6
    assert noisy[1] == lines[1]  # no holdout run: no gap to judge


def test_augment_check_sets_each_light_variant_beside_the_runs_that_differ_in_the_augmentation_alone():
    from fer_utils import report

    std, light = config.augment_text("standard"), config.augment_text("light")
    assert std == "aug:flip,rot0.05,trans0.1,zoom0.1" and light == "aug:flip,rot0.025,trans0.05,zoom0.05"
    rows = _rows([("cnn", 1.0, 3258379, 0, 0.60, 0.62, 3600), ("cnn", 1.0, 3258379, 0, 0.63, 0.64, 3600),
                  ("cnn", 1.0, 3258379, 0, 0.61, 0.61, 3600), ("cnn", 1.0, 3258379, 1, 0.62, 0.63, 3600),
                  ("mobilenet", 1.0, 73663, 0, 0.55, 0.56, 1800), ("mobilenet", 1.0, 73663, 0, 0.57, 0.58, 1800),
                  ("irnet", 1.2, 100796, 0, 0.64, 0.66, 1800)])
    sched = "|wsd40/warm2/decay0.2/peak{}|best-val|val10%|bs128"
    rows = rows.assign(profile="full", run_id=[f"r{i}" for i in range(len(rows))])
    rows["recipe"] = [f"adam|{std}{sched.format(0.001)}|bf16|tag:lr0.001",
                      f"adam|{light}{sched.format(0.001)}|bf16|tag:lr0.001-auglight",
                      f"adam|{std}{sched.format(0.003)}|bf16",  # another peak: not the light run's twin
                      f"adam|{std}{sched.format(0.001)}|bf16|tag:lr0.001",  # the twin's second seed
                      f"adam|{std}{sched.format(0.003)}", f"adam|{light}{sched.format(0.003)}|tag:auglight",
                      f"adam|{light}{sched.format(0.003)}|tag:kdh-x-online-T2-a0.5-auglight"]  # distilled: left out
    assert config.augment_of(rows.recipe.iloc[1]) == "light" and config.augment_of("adam|ep60/es10/lr4/bs64") is None
    table = results.augment_check(rows)
    assert list(table.columns) == results.AUGMENT_COLUMNS
    got = [tuple(r) for r in table[["model", "epochs", "precision", "peak_lr", "augment", "seeds", "run_ids"]].itertuples(index=False)]
    assert got == [("HW3 CNN", 40, "mixed_bfloat16", 0.001, "standard", 2, "r0;r3"),
                   ("HW3 CNN", 40, "mixed_bfloat16", 0.001, "light", 1, "r1"),
                   ("seed MobileNet", 40, "float32", 0.003, "standard", 1, "r4"),
                   ("seed MobileNet", 40, "float32", 0.003, "light", 1, "r5")]
    assert table.val_acc.iloc[0] == pytest.approx(0.62) and table.train_acc.isna().all()
    assert results.augment_check(rows.iloc[[0, 2, 3, 4]]).empty and results.augment_check(rows.iloc[0:0]).empty

    text = report.augment_section(type("S", (), {"results": __import__("pathlib").Path("/nonexistent"),
                                                 "profile": config.PROFILES["full"]})())
    assert "No run with another augmentation has finished yet" in text
    assert "rotation up to 18°, shift up to 10 %, zoom up to 10 %" in text and "rotation up to 9°" in text
    table.loc[0, "train_acc"] = 0.6862
    said = report.fit_sentence(table)
    assert said.startswith("On the standard augmentation HW3 CNN after 40 epochs classifies 0.686 of its own training "
                           "images right (clean: no augmentation, no dropout) against 0.620 on validation (+6.6 points).")
    assert "held back by its regularisation" in said
    table.loc[0, "train_acc"] = 0.7201  # 10.0 points: no longer called held back
    assert "overfits" in report.fit_sentence(table) and report.fit_sentence(table.iloc[[1]]) == ""
    lines = report.variant_paragraph(table, "augment", "standard", str, "augmentation").split("\n")
    assert lines[0].startswith("- HW3 CNN, 40 epochs: the recipe's standard (2 seeds): validation 0.620")
    assert lines[0].endswith("light (1 seed): validation 0.640, mean of the tests 0.635, +1.7 points. "
                             "Validation prefers light, by 2.0 points.")
