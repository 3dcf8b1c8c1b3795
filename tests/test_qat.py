"""Quantisation-aware fine-tuning: the result sits exactly on the codec's grid."""
import numpy as np
import pytest

from fer_utils import compress, config, data, models, qat, registry


def test_kmeans_keeps_values_already_on_a_grid():
    grid = np.array([-0.5, -0.125, 0.0, 0.25, 1.5], np.float16)
    values = np.random.default_rng(0).choice(grid, size=(9, 9)).astype(np.float32)
    book, idx = compress.kmeans_1d(values, 8)
    assert np.array_equal(book.astype(np.float32)[idx].reshape(values.shape), values)


@pytest.mark.parametrize("codec", ["int8", "kmeans-3", "kmeans-3-dw8"])
def test_projection_is_on_the_grid_and_idempotent(codec, rng):
    model = models.build("mobilenet", 0.25)
    proj = qat.GridProjector(model, codec)
    for i, (layer, var) in enumerate(proj.kernels):
        w = rng.normal(0, 0.1, tuple(var.shape)).astype(np.float32)
        once = proj.project(i, w)
        var.assign(once)
        if not proj._int8(layer):
            assert np.unique(once).size <= 8
        assert np.array_equal(proj.project(i, once), once)  # a point of the grid stays put
        assert np.abs(once - w).mean() < np.abs(w).mean()  # and it is near the weights it snapped


def test_unsupported_codecs_are_refused():
    for codec in ("fp16", "int8-fold", "pruned-kmeans-4", "seed"):
        with pytest.raises(ValueError, match="supports|unknown codec"):
            qat.check_codec(codec)


def test_fine_tune_round_trips_and_resumes(tmp_path):
    ds = data.synthetic(400, seed=5)
    reg = tmp_path / "runs.csv"
    prof = config.PROFILES["smoke"]
    from fer_utils import train

    src = train.train("mobilenet", 0.25, prof, dataset=ds, runs_root=tmp_path / "runs", registry_path=reg,
                      verbose=0, epochs=1, train_limit=200)
    assert not qat.on_grid(runs_load(src, tmp_path), "kmeans-3")  # a plain run is not on the 3-bit grid

    out = qat.fine_tune(src, "kmeans-3", prof, epochs=2, dataset=ds, runs_root=tmp_path / "runs",
                        registry_path=reg, verbose=0, train_limit=200, deadline=0.0)
    assert out is None  # no time at all: nothing trained, resumable
    out = qat.fine_tune(src, "kmeans-3", prof, epochs=2, dataset=ds, runs_root=tmp_path / "runs",
                        registry_path=reg, verbose=0, train_limit=200)
    assert out["run_id"] == src["run_id"].replace(
        "-wsd1", "-cos2-qat-kmeans-3-lr0.00003-wsd1") and "tag:qat-kmeans-3-lr0.00003-wsd1" in out["recipe"]
    tuned = runs_load(out, tmp_path)
    assert qat.on_grid(tuned, "kmeans-3")  # encode + decode gives exactly these weights
    assert sorted(p.name for p in (tmp_path / "runs" / out["run_id"] / "qat").iterdir()) == ["e0001.npz", "e0002.npz"]
    rows = registry.read(reg)
    assert set(rows.run_id) == {src["run_id"], out["run_id"]}


def runs_load(result, tmp_path):
    from fer_utils import runs

    return runs.load_trained(result, tmp_path / "runs")


def test_qat_tags_name_their_codec_and_source():
    from fer_utils import results

    assert results.qat_parts("qat-kmeans-4-dw8-wsd200-kdh-cnn1-T4-a0.7-bf16") == ("kmeans-4-dw8", "kdh-cnn1-T4-a0.7")
    assert results.qat_parts("kdh-cnn1-T4-a0.7") == ("", "kdh-cnn1-T4-a0.7")
    assert results.model_label("irnet", 1.0, "qat-int8-wsd60") == "IRNet (ours) w1 + QAT int8"
    assert results.qat_source("irnet-w1-full-s0-abc-cos3-qat-kmeans-3-wsd60-bf16") == "irnet-w1-full-s0-abc-wsd60-bf16"


def test_qat_pairs_put_each_fine_tune_beside_its_source():
    import pandas as pd

    from fer_utils import results

    src, tuned = "m-w1-full-s0-f-wsd60", "m-w1-full-s0-f-cos3-qat-kmeans-3-wsd60"
    runs = pd.DataFrame([
        {"run_id": src, "arch": "mobilenet", "width": 0.5, "params": 1000, "public_acc": 0.60, "private_acc": 0.62,
         "recipe": "adam|wsd60", "epochs": 60, "wall_s": 7200, "timestamp": "1"},
        {"run_id": tuned, "arch": "mobilenet", "width": 0.5, "params": 1000, "public_acc": 0.59, "private_acc": 0.615,
         "recipe": "adam|cos3|tag:qat-kmeans-3-wsd60", "epochs": 3, "wall_s": 360, "timestamp": "2"}])
    codecs = pd.DataFrame([{"run_id": src, "codec": "kmeans-3", "bytes": 500, "public_acc": 0.50, "private_acc": 0.52},
                           {"run_id": tuned, "codec": "kmeans-3", "bytes": 480, "public_acc": 0.59, "private_acc": 0.615}])
    (row,) = results.qat_pairs(runs, codecs).to_dict("records")
    assert row["model"] == "MobileNet w0.5" and row["codec"] == "kmeans-3"
    assert row["fine_tune"] == "3 epochs, peak LR 0.0003, BatchNorm trained" and row["source_epochs"] == 60
    assert row["targets"] == "labels only"
    assert row["augment"] == row["source_augment"] == "standard"  # recipes older than the augmentation study
    assert row["private_drop_before"] == 10.0 and row["private_drop_after"] == 0.5
    assert row["qat_epochs"] == 3 and row["qat_cpu_h"] == 0.1 and row["bytes_after"] == 480
    assert results.qat_pairs(runs, codecs[codecs.run_id == src]).empty  # no row for the fine-tune yet: left out
    # a fine-tune moved to the mirror alone says so beside its source's augmentation
    moved = "m-w1-full-s0-f-cos3-qat-kmeans-3-augflip-wsd60"
    runs.loc[len(runs)] = {**runs.iloc[1].to_dict(), "run_id": moved, "timestamp": "3",
                           "recipe": f"adam|{config.augment_text('flip')}|cos3|tag:qat-kmeans-3-augflip-wsd60"}
    codecs.loc[len(codecs)] = {**codecs.iloc[1].to_dict(), "run_id": moved}
    both = results.qat_pairs(runs, codecs).set_index("run_id")
    assert (both.loc[moved, "augment"], both.loc[moved, "source_augment"]) == ("flip", "standard")
    assert both.loc[moved, "fine_tune"] == both.loc[tuned, "fine_tune"] and both.loc[tuned, "augment"] == "standard"


def test_a_fine_tune_at_another_rate_has_its_own_name():
    from fer_utils import results

    src = {"arch": "irnet", "width": 1.0, "profile": "full", "seed": 0, "data_fingerprint": "abc",
           "run_id": "irnet-w1-full-s0-abc-wsd60"}
    assert qat.tag(src, "kmeans-3", 3e-4, freeze_bn=False) == "qat-kmeans-3-wsd60"  # the first fine-tunes' names
    slow = qat.tag(src, "kmeans-3", 5e-5, freeze_bn=True)
    assert slow == "qat-kmeans-3-fbn-lr0.00005-wsd60"
    assert results.qat_parts(slow) == ("kmeans-3", "")
    assert results.model_label("irnet", 1.0, slow) == "IRNet (ours) w1 + QAT kmeans-3 (frozen BN, peak LR 5e-05)"
    assert results.qat_source("irnet-w1-full-s0-abc-cos3-qat-kmeans-3-fbn-lr0.00005-wsd60") == src["run_id"]


def test_a_fine_tune_on_another_augmentation_is_named_and_read_back():
    from fer_utils import results

    src = {"arch": "irnet", "width": 1.2, "profile": "full", "seed": 0, "data_fingerprint": "abc",
           "run_id": "irnet-w1.2-full-s0-abc-wsd200-kdh-cnn1-online-T2-a0.5",
           "recipe": f"adam|{config.augment_text('standard')}|wsd200/warm2/decay0.2/peak0.003"}
    assert results.augment_name(src) == "standard"
    assert results.augment_name({"recipe": "adam|plateau"}) == "standard"  # a row older than the recipe's aug part
    name = qat.tag(src, "kmeans-4-dw8", 1e-4, False, teacher={"arch": "cnn", "width": 1.0}, temperature=2,
                   alpha=0.5, augment="flip")
    assert name == "qat-kmeans-4-dw8-lr0.0001-augflip-teacher-cnn1-T2-a0.5-wsd200-kdh-cnn1-online-T2-a0.5"
    spec = results.qat_spec(name)
    assert (spec["codec"], spec["augment"], spec["teacher"], spec["peak_lr"]) == ("kmeans-4-dw8", "flip", "cnn1", 1e-4)
    assert spec["source_tag"] == "kdh-cnn1-online-T2-a0.5" and results.budget_of(f"adam|tag:{name}") == 200
    assert results.qat_source(f"irnet-w1.2-full-s0-abc-cos10-{name}") == src["run_id"]
    assert results.model_label("irnet", 1.2, name) == (
        "IRNet (ours) w1.2 + KD + QAT kmeans-4-dw8 (peak LR 0.0001, flip augmentation, teacher cnn1)")
    assert results._qat_how({"recipe": f"adam|tag:{name}", "epochs": 10}) == "10 epochs, peak LR 0.0001, BatchNorm trained"
    # the source's own augmentation is not named, whether given or left to the default
    assert qat.tag(src, "int8", 3e-5, False, augment="standard") == qat.tag(src, "int8", 3e-5, False)
    flipped = {**src, "recipe": f"adam|{config.augment_text('flip')}|wsd120", "run_id": "irnet-w1.2-full-s0-abc-wsd120-augflip"}
    assert results.augment_name(flipped) == "flip"
    assert qat.tag(flipped, "int8", 3e-5, False, augment="flip") == "qat-int8-lr0.00003-wsd120-augflip"
    assert results.qat_spec("qat-int8-lr0.00003-wsd120-augflip")["augment"] is None


def test_a_fine_tune_trains_on_its_sources_augmentation_unless_told(tmp_path, smoke_kw):
    from fer_utils import train

    prof, kw = config.PROFILES["smoke"], smoke_kw
    flipped = train.train("irnet", 0.5, prof, epochs=1, augment="flip", **kw)
    own = qat.fine_tune(flipped, "int8", prof, epochs=1, **kw)
    assert config.augment_of(own["recipe"]) == "flip"  # not the profile's standard one
    assert own["run_id"].endswith("-cos1-qat-int8-lr0.00003-wsd1-augflip")
    plain = train.train("irnet", 0.5, prof, epochs=1, **kw)
    moved = qat.fine_tune(plain, "int8", prof, epochs=1, augment="flip", **kw)
    assert config.augment_of(moved["recipe"]) == "flip"
    assert moved["run_id"].endswith("-cos1-qat-int8-lr0.00003-augflip-wsd1")
    with pytest.raises(ValueError, match="unknown augmentation 'mirror'"):
        qat.fine_tune(plain, "int8", prof, epochs=1, augment="mirror", **kw)


def test_a_fine_tune_stands_at_its_source_budget():
    from fer_utils import results

    assert results.budget_of("adam|cosine3/warm0/peak0.0003|best-val|tag:qat-kmeans-3-wsd60") == 60
    assert results.budget_of("adam|cosine3/warm0/peak0.0003|best-val|tag:qat-kmeans-3") is None  # first recipe
    assert results.budget_of("adam|wsd200/warm2/decay0.2/peak0.003|bs128") == 200


def test_a_fine_tune_with_its_teacher_in_the_loop_is_named_and_read_back():
    from fer_utils import results

    src = {"arch": "irnet", "width": 1.2, "profile": "full", "seed": 0, "data_fingerprint": "abc",
           "run_id": "irnet-w1.2-full-s0-abc-wsd40-kdh-cnn1-online-T2-a0.5"}
    name = qat.tag(src, "kmeans-4", 3e-5, False, teacher={"arch": "cnn", "width": 1.0}, temperature=2, alpha=0.5)
    assert name == "qat-kmeans-4-lr0.00003-teacher-cnn1-T2-a0.5-wsd40-kdh-cnn1-online-T2-a0.5"
    spec = results.qat_spec(name)
    assert (spec["codec"], spec["teacher"], spec["temperature"], spec["alpha"]) == ("kmeans-4", "cnn1", 2.0, 0.5)
    assert spec["peak_lr"] == 3e-5 and spec["source_tag"] == "kdh-cnn1-online-T2-a0.5"
    assert results.qat_spec("qat-kmeans-4-lr0.00003-wsd40-kdh-cnn1-online-T2-a0.5")["teacher"] is None
    assert results.qat_source(f"irnet-w1.2-full-s0-abc-cos3-{name}") == src["run_id"]
    assert results.model_label("irnet", 1.2, name) == "IRNet (ours) w1.2 + KD + QAT kmeans-4 (peak LR 3e-05, teacher cnn1)"
    run = {"recipe": f"adam|cosine3|tag:{name}", "epochs": 3}
    assert results._qat_how(run) == "3 epochs, peak LR 3e-05, BatchNorm trained"
    assert results._qat_targets(run) == "teacher HW3 CNN in the loop (T 2, alpha 0.5)"
    # an ensemble teacher (distilled runs named with seed and epochs) reads back whole
    pair = [{"arch": "irnet", "width": 1.2, "seed": 1, "epochs": 200, "recipe": "adam|tag:kdh-cnn1-online-T2-a0.5"},
            {"arch": "irnet", "width": 1.2, "seed": 0, "epochs": 120, "recipe": "adam"}]
    both = qat.tag(src, "kmeans-3", 3e-5, False, teacher=pair, temperature=2, alpha=0.5)
    assert both == "qat-kmeans-3-lr0.00003-teacher-irnet1.2s1e200kdh+irnet1.2-T2-a0.5-wsd40-kdh-cnn1-online-T2-a0.5"
    assert results.qat_spec(both)["teacher"] == "irnet1.2s1e200kdh+irnet1.2"
    assert results.qat_source(f"irnet-w1.2-full-s0-abc-cos3-{both}") == src["run_id"]
    assert results._qat_targets({"recipe": f"adam|cosine3|tag:{both}"}) == (
        "teacher an ensemble of IRNet (ours) w1.2 + KD (seed 1, 200 epochs) and IRNet (ours) w1.2 in the loop "
        "(T 2, alpha 0.5)")


def test_a_fine_tune_with_a_teacher_ends_on_the_grid_and_resumes(tmp_path, smoke_kw):
    import keras

    from fer_utils import distill, recipe, results, train

    prof, kw = config.PROFILES["smoke"], smoke_kw
    teacher = train.train("irnet", 0.5, prof, epochs=1, seed=1, **kw)
    src = train.train("irnet", 0.5, prof, epochs=1, **kw)
    first = qat.fine_tune(src, "int8", prof, epochs=2, teacher=teacher, temperature=2.0, alpha=0.5,
                          stop_after=1, **kw)
    assert first is None  # stopped after epoch 1 of 2: resumable, shadow weights kept
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if "-teacher-irnet0.5s1e1-T2-a0.5" in p.name)
    saved = keras.models.load_model(run_dir / "last.keras")
    assert isinstance(saved.layers[-1], recipe.WithTeacher) and isinstance(saved.loss, distill.OnlineDistillationLoss)
    out = qat.fine_tune(src, "int8", prof, epochs=2, teacher=teacher, temperature=2.0, alpha=0.5, **kw)
    assert out["epochs"] == 2 and out["run_id"] == run_dir.name
    assert "|tag:qat-int8-lr0.00003-teacher-irnet0.5s1e1-T2-a0.5-wsd1" in out["recipe"]
    assert results.qat_spec("qat-int8-lr0.00003-teacher-irnet0.5s1e1-T2-a0.5-wsd1")["teacher"] == "irnet0.5s1e1"
    assert qat.on_grid(runs_load(out, tmp_path), "int8")  # the teacher changes the targets, not the grid
    with pytest.raises(ValueError, match="teacher run .* other data"):
        qat.fine_tune(src, "int8", prof, teacher={**teacher, "data_fingerprint": "other"}, **kw)


def test_a_fine_tunes_teachers_of_one_name_read_apart_by_their_recorded_runs():
    import pandas as pd

    from fer_utils import results

    # two teacher members share a name (seed 0, 200 epochs, KD) but not a teacher: the registry tells them apart
    by_cnn, by_pair = "irnet-w1.2-full-s0-f-wsd200-kdh-cnn1-online-T2-a0.5", "irnet-w1.2-full-s0-f-wsd200-kdh-irnet1.2s1e120kdh+irnet1.2-online-T2-a0.5"
    runs = pd.DataFrame([
        {"run_id": by_cnn, "arch": "irnet", "width": 1.2, "seed": 0, "epochs": 200, "recipe": "adam|tag:kdh-cnn1-online-T2-a0.5"},
        {"run_id": by_pair, "arch": "irnet", "width": 1.2, "seed": 0, "epochs": 200,
         "recipe": "adam|tag:kdh-irnet1.2s1e120kdh+irnet1.2-online-T2-a0.5"}])
    tag = "qat-kmeans-3-lr0.00003-teacher-irnet1.2s0e200kdh+irnet1.2s0e200kdh-T2-a0.5-wsd100-kdh-cnn1-online-T2-a0.5"
    run = {"recipe": f"adam|cosine3|tag:{tag}", "teachers": f"{by_pair};{by_cnn}"}
    text = results._qat_targets(run, runs)
    same = "IRNet (ours) w1.2 + KD (seed 0, 200 epochs)"
    assert results._qat_targets(run) == f"teacher an ensemble of {same} and {same} in the loop (T 2, alpha 0.5)"
    assert text.count(same) == 1 and "(teacher irnet1.2s1e120kdh+irnet1.2) (seed 0, 200 epochs)" in text
    assert text.index("teacher irnet1.2s1e120kdh") < text.index(same)  # in the recorded order
    # a teacher run missing from the registry, or none recorded: the name alone, as before
    assert results._qat_targets(run, runs[runs.run_id == by_cnn]) == results._qat_targets(run)
    assert results._qat_targets({**run, "teachers": float("nan")}, runs) == results._qat_targets(run)
    # an older row records no teachers: its tag's name resolves as the command line did, among runs finished before it
    older = {"recipe": "adam|cosine3|tag:qat-kmeans-3-lr0.00003-teacher-cnn1-T2-a0.5-wsd40", "teachers": "",
             "profile": "full", "data_fingerprint": "f", "timestamp": "2026-12-02T12:00:00+00:00", "wall_s": 600}
    cnns = pd.DataFrame([{"run_id": f"cnn-w1-full-s0-f-wsd{e}", "arch": "cnn", "width": 1.0, "seed": 0, "epochs": e,
                          "recipe": f"adam|wsd{e}/warm2/decay0.2/peak0.003", "profile": "full",
                          "params": 1, "data_fingerprint": "f", "wall_s": 1,
                          "timestamp": t} for e, t in ((40, "2026-12-01T00:00:00+00:00"), (120, "2026-12-03T00:00:00+00:00"))])
    assert results._qat_targets(older, cnns) == "teacher HW3 CNN (40 epochs) in the loop (T 2, alpha 0.5)"
