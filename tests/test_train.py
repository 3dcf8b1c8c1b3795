"""The training engine: a run killed with SIGKILL after one epoch resumes at epoch 2."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fer_utils import data, distill, paths, recipe, registry, runs, teachers


def _cli(env, *args):
    return subprocess.run([sys.executable, "-m", "fer_utils.train", "--arch", "irnet", "--width", "0.5",
                           "--profile", "smoke", "--epochs", "3", "--train-limit", "200",
                           "--registry", env["TEST_REGISTRY"], *args],
                          cwd=paths.ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_kill_and_resume_continues_at_epoch_2(tmp_path):
    csv = data.write_kaggle_csv(data.synthetic(300, seed=4), tmp_path / "tiny.csv")
    env = dict(os.environ, FER2013_PATH=str(csv), FER_RUNS_DIR=str(tmp_path / "runs"),
               FER_KILL_AFTER_EPOCH="1", TF_CPP_MIN_LOG_LEVEL="2",
               TEST_REGISTRY=str(tmp_path / "runs.csv"))
    first = _cli(env)
    assert first.returncode == -9, first.stderr[-2000:]  # really killed by SIGKILL
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "state.json").read_text())["epoch"] == 1
    assert not (run_dir / "result.json").exists()

    # the killed process could not remove its mark; another live "training" process marks itself too
    active = Path(env["FER_ACTIVE_DIR"])
    assert [m.name for m in active.iterdir()] and all(not runs._alive(int(m.name)) for m in active.iterdir())
    other = subprocess.Popen(["sleep", "600"])
    try:
        (active / str(other.pid)).write_text("another run")
        env.pop("FER_KILL_AFTER_EPOCH")
        second = _cli(env)
    finally:
        other.kill()
        other.wait()
    assert second.returncode == 0, second.stderr[-2000:]
    assert [m.name for m in active.iterdir()] == [str(other.pid)]  # the dead mark removed, its own gone
    assert "resuming after epoch 1" in second.stdout
    assert "epoch 1/3" not in second.stdout and "epoch 2/3" in second.stdout
    log = pd.read_csv(run_dir / "log.csv")
    assert log["epoch"].tolist() == [1, 2, 3]  # epoch 1 not repeated, none missing
    result = json.loads((run_dir / "result.json").read_text())
    assert result["epochs"] == 3 and result["params"] > 0
    # epochs 2-3 trained beside the live process; epoch 1 (killed before sharing was seen) alone
    state = json.loads((run_dir / "state.json").read_text())
    assert state["shared_seconds"] == pytest.approx(state["tracked_seconds"] - float(log["seconds"].iloc[0]), abs=0.02)
    assert result["shared"] == round(state["shared_seconds"] / state["tracked_seconds"], 2) and 0 < result["shared"] < 1

    # a finished run is read back, never retrained, and its registry row is not duplicated
    third = _cli(env)
    assert third.returncode == 0 and "read back, not retrained" in third.stdout
    rows = pd.read_csv(tmp_path / "runs.csv")
    assert (rows["run_id"] == result["run_id"]).sum() == 1
    copied = pd.read_csv(tmp_path / "logs" / f"{result['run_id']}.csv")
    assert copied["epoch"].tolist() == [1, 2, 3]


def test_soft_targets_mix_teacher_and_labels():
    import numpy as np

    class Teacher:
        def predict(self, x, batch_size, verbose):
            return np.tile([0.7, 0.1, 0.05, 0.05, 0.04, 0.03, 0.03], (len(x), 1))

    y = np.array([3, 0])
    t = distill.soft_targets(Teacher(), np.zeros((2, 48, 48, 1)), y, temperature=1.0, alpha=0.5)
    assert np.allclose(t.sum(axis=1), 1)
    assert np.isclose(t[0, 3], 0.5 * 0.05 + 0.5) and np.isclose(t[1, 0], 0.5 * 0.7 + 0.5)
    hot = distill.soft_targets(Teacher(), np.zeros((1, 48, 48, 1)), y[:1], temperature=4.0, alpha=1.0)
    assert hot[0].max() < 0.7  # a higher temperature flattens the teacher
    import pytest
    with pytest.raises(ValueError, match="temperature"):
        distill.soft_targets(Teacher(), np.zeros((1, 48, 48, 1)), y[:1], temperature=0, alpha=0.5)


def test_deadline_leaves_a_resumable_unfinished_run(tmp_path):
    import time

    from fer_utils import train

    ds = data.synthetic(200, seed=5)
    kw = dict(dataset=ds, runs_root=tmp_path / "runs", registry_path=tmp_path / "runs.csv", verbose=0,
              epochs=2, train_limit=100)
    # no time left: nothing is trained, nothing is registered
    assert train.train("irnet", 0.5, "smoke", **kw, deadline=time.time() - 1) is None
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert not (run_dir / "result.json").exists() and not (tmp_path / "runs.csv").exists()
    # the same call without a deadline trains it to the end
    result = train.train("irnet", 0.5, "smoke", **kw)
    assert result["epochs"] == 2 and len(pd.read_csv(tmp_path / "runs.csv")) == 1


def test_deadline_inside_an_epoch_records_nothing_of_it(tmp_path):
    from fer_utils import config, train

    state = {"epoch": 3, "best_val": 0.5, "best_epoch": 3, "wait": 0, "lr_wait": 0, "train_seconds": 9.0,
             "stopped_early": False}
    before = dict(state)

    class Net:  # stands in for the trained model and its wrapper
        stop_training = False

    cb = train.RunCheckpoint(tmp_path, state, config.PROFILES["smoke"], progress=False, net=Net(), deadline=0.0)
    cb.set_model(Net())
    cb.on_epoch_begin(3)
    cb.on_train_batch_end(0)
    assert cb.model.stop_training
    cb.on_epoch_end(3, {"val_accuracy": 0.9, "loss": 1.0, "accuracy": 0.9, "val_loss": 1.0})
    assert state == before  # the cut epoch changed nothing
    assert not (tmp_path / "state.json").exists() and not (tmp_path / "log.csv").exists()


def test_precision_is_part_of_run_id_and_recipe():
    import pytest

    from fer_utils import config, train

    prof = config.PROFILES["full-plateau"]
    assert runs.run_id("cnn", 1.0, "full", 0, "abc") == "cnn-w1-full-s0-abc"
    assert (runs.profile_run_id("cnn", 1.0, config.PROFILES["full"], 0, "abc", "kdh-x", "mixed_bfloat16")
            == "cnn-w1-full-s0-abc-wsd200-kdh-x-bf16")
    assert runs.run_id("cnn", 1.0, "full", 0, "abc", precision="mixed_bfloat16") == "cnn-w1-full-s0-abc-bf16"
    assert recipe.describe(prof, "mixed_bfloat16").endswith("|ep60/es10/lr4/bs64|bf16")
    assert "bf16" not in recipe.describe(prof)
    with pytest.raises(ValueError, match="precision"):
        train.train("cnn", 1.0, "smoke", dataset=data.synthetic(50, seed=1), precision="float8")


def test_a_run_is_never_read_back_under_another_schedule(tmp_path):
    from dataclasses import replace

    import pytest

    from fer_utils import config, train

    kw = dict(dataset=data.synthetic(200, seed=6), runs_root=tmp_path / "runs", registry_path=tmp_path / "r.csv",
              verbose=0, train_limit=100)
    smoke = config.PROFILES["smoke"]
    first = train.train("irnet", 0.5, smoke, epochs=1, **kw)
    assert train.train("irnet", 0.5, smoke, epochs=1, **kw) == first  # same schedule: read back
    # a budget is part of a budgeted run's name: another budget is another run, never this one read back
    other = train.train("irnet", 0.5, smoke, epochs=2, **kw)
    assert first["run_id"].endswith("-wsd1") and other["run_id"].endswith("-wsd2")
    with pytest.raises(ValueError, match=r"another schedule \(learning_rate 0.003 -> 0.001\)"):
        train.train("irnet", 0.5, replace(smoke, learning_rate=1e-3), epochs=1, **kw)
    plateau = replace(smoke, schedule="plateau")  # the first recipe's name carries no budget
    train.train("irnet", 0.5, plateau, epochs=1, **kw)
    with pytest.raises(ValueError, match=r"another schedule \(epochs 1 -> 2\)"):
        train.train("irnet", 0.5, plateau, epochs=2, **kw)
    assert len(pd.read_csv(tmp_path / "r.csv")) == 3


def test_distillation_loss_is_hintons_on_softmax_outputs():
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, (5, 7))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)  # the student's softmax output
    teacher = rng.dirichlet(np.ones(7), 5)
    y = rng.integers(0, 7, 5)
    T, alpha = 3.0, 0.6
    soft_t = teacher ** (1 / T) / (teacher ** (1 / T)).sum(1, keepdims=True)
    soft_s = np.exp(z / T) / np.exp(z / T).sum(1, keepdims=True)  # softmax(logits / T)
    expected = alpha * T ** 2 * -(soft_t * np.log(soft_s)).sum(1) + (1 - alpha) * -np.log(p[np.arange(5), y])
    packed = np.concatenate([soft_t, np.eye(7)[y]], axis=1).astype(np.float32)
    loss = distill.DistillationLoss(T, alpha)
    assert np.isclose(float(loss(packed, p.astype(np.float32))), expected.mean(), rtol=1e-4)
    # the accuracy reads the one-hot half
    acc = distill.HardLabelAccuracy()
    acc.update_state(packed, p.astype(np.float32))
    assert np.isclose(float(acc.result()), np.mean(p.argmax(1) == y))
    # both survive a save / load (a resumed run reloads its compiled wrapper)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert (restored.temperature, restored.alpha) == (T, alpha)


def test_distilled_run_trains_resumably_with_its_own_loss(tmp_path):
    import keras

    from fer_utils import config, train

    ds = data.synthetic(200, seed=5)
    prof = config.PROFILES["smoke"]
    kw = dict(dataset=ds, runs_root=tmp_path / "runs", registry_path=tmp_path / "runs.csv", verbose=0,
              epochs=1, train_limit=120)
    teacher = train.train("irnet", 0.5, prof, **kw)
    student = distill.distill("irnet", 0.5, teacher, prof, temperature=2.0, alpha=0.5, **kw)
    assert student["run_id"].endswith("-kdh-irnet0.5-T2-a0.5") and "|tag:kdh-irnet0.5-T2-a0.5" in student["recipe"]
    wrapper = keras.models.load_model(tmp_path / "runs" / student["run_id"] / "last.keras")
    assert isinstance(wrapper.loss, distill.DistillationLoss) and wrapper.loss.temperature == 2.0
    log = pd.read_csv(tmp_path / "runs" / student["run_id"] / "log.csv")
    assert {"accuracy", "val_accuracy"} <= set(log.columns) and 0 <= log["val_accuracy"].iloc[0] <= 1
    mixed = distill.distill("irnet", 0.5, teacher, prof, method="mix", **kw)
    assert mixed["run_id"].endswith("-kd-irnet0.5-T4-a0.7")  # the first method keeps its old name


def test_a_teacher_in_the_loop_sees_the_students_augmented_view():
    import keras
    import numpy as np

    def linear():
        keras.utils.set_random_seed(1)
        return keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(),
                                 keras.layers.Dense(7, activation="softmax")])

    student, teacher = linear(), linear()  # the same weights: equal halves iff the same view
    wrapper = recipe.training_model(student, seed=3, teacher=teacher)
    assert recipe.student_of(wrapper) is student and recipe.student_of(recipe.training_model(student, 3)) is student
    x = np.random.default_rng(0).random((8, 48, 48, 1)).astype(np.float32)
    out = np.asarray(wrapper(x, training=True))
    assert out.shape == (8, 14)
    np.testing.assert_allclose(out[:, :7], out[:, 7:], rtol=1e-5, atol=1e-6)
    assert not np.allclose(out[:, :7], np.asarray(student(x)), atol=1e-4)  # augmented, not the clean image
    np.testing.assert_allclose(np.asarray(wrapper(x, training=False))[:, :7], np.asarray(student(x)), rtol=1e-5)
    assert not teacher.trainable and len(wrapper.trainable_weights) == len(student.trainable_weights)


def test_online_distillation_loss_equals_hintons_on_precomputed_targets():
    import numpy as np

    rng = np.random.default_rng(1)
    student, teacher = rng.dirichlet(np.ones(7), 6), rng.dirichlet(np.ones(7), 6)
    y = rng.integers(0, 7, 6)
    T, alpha = 2.0, 0.5
    packed = distill.pack(distill.soften(teacher, T), y)
    offline = float(distill.DistillationLoss(T, alpha)(packed, student.astype(np.float32)))
    both = np.concatenate([student, teacher], axis=1).astype(np.float32)
    online = float(distill.OnlineDistillationLoss(T, alpha)(np.eye(7, dtype=np.float32)[y], both))
    assert np.isclose(online, offline, rtol=1e-5)
    acc = distill.HardLabelAccuracy(online=True)
    acc.update_state(np.eye(7)[y], both)
    assert np.isclose(float(acc.result()), np.mean(student.argmax(1) == y))


def test_online_distillation_resumes_with_its_teacher_frozen(tmp_path, smoke_kw):
    import keras
    import numpy as np

    from fer_utils import config, results, train

    prof, kw = config.PROFILES["smoke"], smoke_kw
    teacher = train.train("irnet", 0.5, prof, epochs=1, **kw)
    first = distill.distill("irnet", 0.5, teacher, prof, temperature=2.0, alpha=0.5, view="online", epochs=2,
                            stop_after=1, **kw)
    assert first is None  # stopped after epoch 1 of 2: resumable
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if p.name.endswith("-kdh-irnet0.5-online-T2-a0.5"))
    saved = keras.models.load_model(run_dir / "last.keras")
    assert isinstance(saved.layers[-1], recipe.WithTeacher) and isinstance(saved.loss, distill.OnlineDistillationLoss)
    reference = runs.load_trained(teacher, tmp_path / "runs")
    for got, want in zip(saved.layers[-1].teacher.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6)  # the teacher did not learn
    student = distill.distill("irnet", 0.5, teacher, prof, temperature=2.0, alpha=0.5, view="online", epochs=2, **kw)
    assert student["epochs"] == 2 and student["params"] == teacher["params"]
    assert "|tag:kdh-irnet0.5-online-T2-a0.5" in student["recipe"]
    assert results.kd_teacher("kdh-irnet0.5-online-T2-a0.5") == ("irnet0.5", "online")
    with pytest.raises(ValueError, match="in the loop"):
        distill.distill("irnet", 0.5, teacher, prof, method="mix", view="online", **kw)


def test_an_ensemble_of_teachers_runs_in_the_loop_as_the_mean_of_their_softmax(tmp_path, smoke_kw):
    import keras
    import numpy as np

    from fer_utils import config, results, train

    prof, kw = config.PROFILES["smoke"], smoke_kw
    first = train.train("irnet", 0.5, prof, epochs=1, **kw)
    second = train.train("irnet", 0.5, prof, seed=1, epochs=1, **kw)
    pair = [first, second]
    assert distill.distill("irnet", 0.5, pair, prof, temperature=2.0, alpha=0.5, view="online", epochs=2,
                           stop_after=1, **kw) is None
    tag = "kdh-irnet0.5+irnet0.5s1e1-online-T2-a0.5"
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if p.name.endswith(tag))
    saved = keras.models.load_model(run_dir / "last.keras")  # the checkpoint a resumed run reads
    teacher = saved.layers[-1].teacher
    x = kw["dataset"].images[:16].astype(np.float32) / 255.0
    want = np.mean([runs.load_trained(t, tmp_path / "runs").predict(x, verbose=0) for t in pair], axis=0)
    # IRNet teachers compute in float32 (config.teacher_policy: bfloat16 measured slower for them)
    assert {layer.dtype_policy.compute_dtype for layer in teacher.layers[1:-1]} == {"float32"}
    np.testing.assert_allclose(np.asarray(teacher(x, training=False), dtype=np.float64), want, atol=1e-5)
    student = distill.distill("irnet", 0.5, pair, prof, temperature=2.0, alpha=0.5, view="online", epochs=2, **kw)
    assert student["epochs"] == 2 and f"|tag:{tag}" in student["recipe"]
    assert results.kd_teacher(tag) == ("irnet0.5+irnet0.5s1e1", "online")
    assert distill.ensemble_model([first_model := runs.load_trained(first, tmp_path / "runs")]) is first_model
    # the row records which runs taught it, and the teachers' table scores them as the student saw them
    assert student["teachers"] == f"{first['run_id']};{second['run_id']}"
    reg = registry.read(kw["registry_path"])
    assert reg.set_index("run_id").loc[student["run_id"], "teachers"] == student["teachers"]
    assert pd.isna(reg.set_index("run_id").loc[first["run_id"], "teachers"])  # a plain run: blank
    prepared = runs.prepare(kw["dataset"], runs.requested(prof, train_limit=120))
    path = tmp_path / "teacher_runs.csv"
    table = teachers.run_teachers_table(reg, prepared, "smoke", kw["dataset"].fingerprint(), path, tmp_path / "runs")
    assert len(table) == 1 and table.students.iloc[0] == 1 and table.members.iloc[0] == student["teachers"]
    want = runs.evaluate([runs.load_trained(t, tmp_path / "runs") for t in pair], prepared, mirror=True)
    assert table.val_acc.iloc[0] == round(want["val"], 4)
    assert table.private_tta_acc.iloc[0] == round(want["PrivateTest_tta"], 4)
    assert table.best_member_private_tta_acc.iloc[0] == max(first["private_tta_acc"], second["private_tta_acc"])
    assert table.best_student_private_acc.iloc[0] == student["private_acc"]
    assert table.targets.iloc[0] == "in the loop (augmented view)"
    # measured once: a kept row is read back for the same teacher runs, not scored again
    pd.read_csv(path).assign(val_acc=0.5).to_csv(path, index=False)
    again = teachers.run_teachers_table(reg, prepared, "smoke", kw["dataset"].fingerprint(), path, tmp_path / "runs")
    assert again.val_acc.iloc[0] == 0.5


def test_a_request_names_its_run_folder_and_counts_its_finished_epochs(tmp_path):
    from fer_utils import config

    prof = config.get_profile("full")
    assert runs.requested(prof) == prof
    asked = runs.requested(prof, epochs=40, train_limit=500)
    assert (asked.epochs, asked.train_limit, asked.name) == (40, 500, "full")
    assert runs.profile_run_id("cnn", 0.5, asked, 1, "abc").startswith("cnn-w0.5-full-s1-abc-wsd40")
    folder = runs.run_folder("cnn", 0.5, asked, 1, "abc", precision="mixed_bfloat16", runs_root=tmp_path)
    assert folder == tmp_path / runs.profile_run_id("cnn", 0.5, asked, 1, "abc", precision="mixed_bfloat16")
    assert folder.name.endswith("-bf16")
    assert runs.epochs_done(tmp_path / "missing") == 0
    (tmp_path / "state.json").write_text(json.dumps({"epoch": 7, "best_val": 0.5}))
    assert runs.epochs_done(tmp_path) == 7


def test_a_run_id_too_long_for_its_file_names_is_a_clear_error_before_anything_is_written(tmp_path):
    from fer_utils import config, train

    prof = config.get_profile("full")
    base = runs.profile_run_id("irnet", 1.2, prof, 2, "abc")
    # a QAT fine-tune of a QAT fine-tune of a run distilled from three teachers (how it came about)
    tag = "qat-kmeans-3-" + "teacher-irnet1.2s0e200kdh+irnet1.2s1e200kdh+irnet1.2s0e200kdh-T2-a0.5-" * 3 + "x"
    with pytest.raises(ValueError, match=rf"bytes long;.*at most {runs.MAX_RUN_ID} bytes.*fine-tune the original"):
        runs.run_folder("irnet", 1.2, prof, 2, "abc", tag, runs_root=tmp_path)
    with pytest.raises(ValueError, match="bytes long"):
        train.train("irnet", 1.2, "smoke", dataset=data.synthetic(50, seed=1), runs_root=tmp_path, tag=tag)
    assert list(tmp_path.iterdir()) == []  # no folder, no log: the file system's own error came after mkdir
    fits = "k" * (runs.MAX_RUN_ID - len(base) - 1)  # the longest tag that still fits
    folder = runs.run_folder("irnet", 1.2, prof, 2, "abc", fits, runs_root=tmp_path)
    assert len(folder.name) == runs.MAX_RUN_ID and runs.check_run_id(folder.name) == folder.name
    folder.mkdir()  # the folder, and the longest file named after it, can be made
    (tmp_path / f"{folder.name}.fp16").write_bytes(b"")
    with pytest.raises(ValueError, match="bytes long"):
        runs.check_run_id(folder.name + "k")


def test_another_batch_size_is_a_tagged_variant_of_the_plain_run(tmp_path):
    from fer_utils import config, results, train

    full, plateau = config.PROFILES["full"], config.PROFILES["full-plateau"]
    asked = runs.requested(full, epochs=40, batch_size=64)
    assert (asked.batch_size, asked.epochs) == (64, 40) and runs.variant_tag("", full, asked) == "bs64"
    assert runs.variant_tag("kdh-x", full, asked) == "kdh-x-bs64"
    # the profile's own batch size, asked for explicitly, is the plain run (same folder as before)
    same = runs.requested(full, epochs=40, batch_size=128)
    assert runs.variant_tag("", full, same) == "" and runs.profile_run_id("mobilenet", 1.0, same, 1, "abc") == (
        "mobilenet-w1-full-s1-abc-wsd40")
    # a profile whose batch size differs from another profile of the same name is not a variant
    assert runs.variant_tag("", plateau, runs.requested(plateau)) == ""
    with pytest.raises(ValueError, match="batch size"):
        runs.requested(full, batch_size=0)

    kw = dict(dataset=data.synthetic(200, seed=5), runs_root=tmp_path / "runs",
              registry_path=tmp_path / "runs.csv", verbose=0, epochs=1, train_limit=100)
    plain = train.train("irnet", 0.5, "smoke", **kw)
    variant = train.train("irnet", 0.5, "smoke", batch_size=32, **kw)
    assert variant["run_id"] == plain["run_id"] + "-bs32"
    assert variant["recipe"].endswith("|bs32|tag:bs32") and "|bs64" in plain["recipe"]
    state = json.loads((tmp_path / "runs" / variant["run_id"] / "state.json").read_text())
    assert state["profile"]["batch_size"] == 32
    # the plain row still stands for the model; the variant is its own tagged row
    rows = pd.read_csv(tmp_path / "runs.csv")
    assert list(results.latest_runs(rows, "smoke")["run_id"]) == [plain["run_id"]]
    assert results.model_label("irnet", 0.5, "bs32").endswith("[bs32]")


def test_another_peak_learning_rate_is_a_tagged_variant_that_trains_at_that_peak(tmp_path):
    from fer_utils import config, qat, results, train

    full = config.PROFILES["full"]
    asked = runs.requested(full, epochs=40, peak_lr=1e-3)
    assert asked.learning_rate == 1e-3 and runs.variant_tag("", full, asked) == "lr0.001"
    assert runs.variant_tag("kdh-x", full, runs.requested(full, peak_lr=1e-3, batch_size=64)) == "kdh-x-lr0.001-bs64"
    assert runs.variant_tag("", full, runs.requested(full, peak_lr=full.learning_rate)) == ""  # the recipe's own
    assert runs.lr_tag(3e-5) == "lr0.00003" and qat.tag(
        {"arch": "irnet", "width": 1.0, "profile": "full", "seed": 0, "data_fingerprint": "abc",
         "run_id": "irnet-w1-full-s0-abc-wsd40"}, "kmeans-4", 3e-5) == "qat-kmeans-4-lr0.00003-wsd40"
    for bad in (0.0, -1e-3, 1.5):
        with pytest.raises(ValueError, match="peak learning rate"):
            runs.requested(full, peak_lr=bad)

    kw = dict(dataset=data.synthetic(200, seed=5), runs_root=tmp_path / "runs",
              registry_path=tmp_path / "runs.csv", verbose=0, epochs=2, train_limit=100)
    plain = train.train("irnet", 0.5, "smoke", **kw)
    variant = train.train("irnet", 0.5, "smoke", peak_lr=1e-3, **kw)
    assert variant["run_id"] == plain["run_id"] + "-lr0.001"
    assert "peak0.001|" in variant["recipe"] and variant["recipe"].endswith("|tag:lr0.001")
    assert results.peak_lr_of(variant["recipe"]) == 1e-3 and results.peak_lr_of(plain["recipe"]) == 3e-3
    # the learning rate it trained at: the peak at the end of the warm-up epoch (smoke: 1 epoch of 2)
    log = pd.read_csv(tmp_path / "runs" / variant["run_id"] / "log.csv")
    assert math.isclose(log["lr"].max(), 1e-3, rel_tol=1e-3)
    # unlike the other variants it competes for the model's headline row: on one budget validation picks
    rows = pd.read_csv(tmp_path / "runs.csv")
    better = rows.sort_values(["best_val_acc", "timestamp"]).iloc[-1]["run_id"]
    assert list(results.latest_runs(rows, "smoke")["run_id"]) == [better]
    assert list(results.latest_runs(rows, "smoke")["model"]) == [results.model_label("irnet", 0.5)]
    assert list(results.latest_runs(rows, "smoke", budget=2)["run_id"]) == [plain["run_id"]]  # the sweeps' rows


def test_another_schedule_shape_is_a_tagged_variant_that_trains_on_that_shape(tmp_path):
    from fer_utils import config, results, train

    full = config.PROFILES["full"]
    asked = runs.requested(full, epochs=120, schedule="cosine")
    assert asked.schedule == "cosine" and asked.lr_schedule().tag() == "cos120"
    assert runs.variant_tag("", full, asked) == "cos"
    assert runs.variant_tag("", full, runs.requested(full, schedule="wsd")) == ""  # the recipe's own shape
    assert runs.variant_tag("kdh-x", full, runs.requested(full, peak_lr=1e-3, schedule="cosine")) == "kdh-x-lr0.001-cos"
    with pytest.raises(ValueError, match="schedule shape is one of wsd, cosine"):
        runs.requested(full, schedule="step")
    with pytest.raises(ValueError, match="replaces a budgeted profile"):  # the first recipe has no budget to shape
        runs.requested(config.PROFILES["full-plateau"], schedule="cosine")

    kw = dict(dataset=data.synthetic(200, seed=5), runs_root=tmp_path / "runs",
              registry_path=tmp_path / "runs.csv", verbose=0, epochs=3, train_limit=100)
    plain = train.train("irnet", 0.5, "smoke", **kw)
    variant = train.train("irnet", 0.5, "smoke", schedule="cosine", **kw)
    assert variant["run_id"] == plain["run_id"].replace("-wsd3", "-cos3-cos")
    assert "|cosine3/warm1/peak0.003|" in variant["recipe"] and variant["recipe"].endswith("|tag:cos")
    assert results.schedule_of(variant["recipe"]) == "cosine" and results.schedule_of(plain["recipe"]) == "wsd"
    assert results.schedule_of("adam|ep60/es10/lr4/bs64") is None
    # the rates it trained at, epoch by epoch (the log's last step of each): both at the peak at the end of
    # warm-up; then the cosine falls at once, below the plain run's constant peak and below its decay
    cos = pd.read_csv(tmp_path / "runs" / variant["run_id"] / "log.csv")["lr"].tolist()
    wsd = pd.read_csv(tmp_path / "runs" / plain["run_id"] / "log.csv")["lr"].tolist()
    assert math.isclose(cos[0], 3e-3, rel_tol=1e-3) and math.isclose(wsd[0], 3e-3, rel_tol=1e-3)
    assert math.isclose(wsd[1], 3e-3, rel_tol=1e-3) and 0 < cos[2] < cos[1] < wsd[1] and cos[2] < wsd[2]
    rows = pd.read_csv(tmp_path / "runs.csv")  # the variant never stands in for the plain run
    assert list(results.latest_runs(rows, "smoke", budget=3)["run_id"]) == [plain["run_id"]]


def test_split_variant_undoes_variant_tag():
    from fer_utils import config

    full = config.PROFILES["full"]
    for tag in ("", "kdh-cnn1-tta-T2-a0.5", "qat-kmeans-4-lr0.00003-wsd40"):
        for asked in (runs.requested(full), runs.requested(full, peak_lr=1e-3),
                      runs.requested(full, batch_size=64), runs.requested(full, peak_lr=1e-3, batch_size=256),
                      runs.requested(full, schedule="cosine"), runs.requested(full, peak_lr=1e-3, schedule="cosine")):
            made = runs.variant_tag(tag, full, asked)
            assert runs.split_variant(made)[0] == tag
            assert runs.split_variant(made) == (tag, runs.variant_tag("", full, asked))
    assert runs.split_variant("kdh-cnn1-tta-T2-a0.5-lr0.001") == ("kdh-cnn1-tta-T2-a0.5", "lr0.001")
    assert runs.split_variant("bs128") == ("", "bs128")


def test_others_training_counts_live_marks_of_other_processes_only(tmp_path):
    other = subprocess.Popen(["sleep", "600"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        with runs.Training("mine", tmp_path):
            assert (tmp_path / str(os.getpid())).read_text() == "mine"
            assert runs.others_training(tmp_path) == 0  # its own mark is not another run
            (tmp_path / str(other.pid)).write_text("other")
            (tmp_path / str(dead.pid)).write_text("killed")
            assert runs.others_training(tmp_path) == 1
            assert not (tmp_path / str(dead.pid)).exists()  # a dead process's mark is cleared
        assert sorted(m.name for m in tmp_path.iterdir()) == [str(other.pid)]
    finally:
        other.kill()
        other.wait()
    assert runs.others_training(tmp_path / "missing") == 0


def test_the_shared_fraction_is_over_the_epochs_that_recorded_it():
    from fer_utils import train

    assert train.shared_fraction({"tracked_seconds": 40.0, "shared_seconds": 30.0}) == 0.75
    assert math.isnan(train.shared_fraction({"train_seconds": 100.0}))  # a state from before it was recorded


def test_an_epoch_is_shared_beside_a_marked_run_or_when_its_process_got_too_little_cpu(monkeypatch):
    monkeypatch.delenv("FER_SHARED_CPU_SHARE", raising=False)
    assert runs.epoch_shared(1, 188.0, 100.0, 2, cpu_bound=True)  # a marked training process beside it
    assert not runs.epoch_shared(0, 188.0, 100.0, 2, cpu_bound=True)  # alone: 94 % of both cores
    assert runs.epoch_shared(0, 100.0, 100.0, 2, cpu_bound=True)  # 50 %: something else took the rest
    assert not runs.epoch_shared(0, 20.0, 100.0, 2, cpu_bound=False)  # on a GPU the CPU share says nothing
    monkeypatch.setenv("FER_SHARED_CPU_SHARE", "0")
    assert not runs.epoch_shared(0, 1.0, 100.0, 2, cpu_bound=True)  # the tests' setting: marks only


def test_the_registry_backend_says_gpu_when_any_epoch_of_the_run_trained_on_one():
    import keras

    from fer_utils import runs

    here = keras.backend.backend() + ("" if runs.trains_on_cpu() else "-gpu")
    assert runs.backend_label() == here
    # resumed on a CPU from a lent GPU's checkpoint: its wall time is not all CPU time
    assert runs.backend_label(gpu_epochs=3) == keras.backend.backend() + "-gpu"


def test_validating_on_publictest_is_a_tagged_variant_that_trains_on_all_of_training(tmp_path):
    from fer_utils import config, results, train

    full = config.PROFILES["full"]
    asked = runs.requested(full, validation="public")
    assert asked.validation == "public" and runs.variant_tag("", full, asked) == "vpub"
    assert runs.variant_tag("kdh-x", full, runs.requested(full, peak_lr=1e-3, validation="public")) == "kdh-x-lr0.001-vpub"
    assert runs.split_variant("kdh-x-lr0.001-vpub") == ("kdh-x", "lr0.001-vpub")
    assert runs.variant_tag("", full, runs.requested(full, validation="holdout")) == ""  # the profile's own
    with pytest.raises(ValueError, match="unknown validation"):
        runs.requested(full, validation="private")
    assert "|valPublicTest|" in recipe.describe(asked) and "|val10%|" in recipe.describe(full)

    ds = data.synthetic(300, seed=3)
    held, public = runs.prepare(ds, full), runs.prepare(ds, asked)
    training = int((ds.splits == "Training").sum())
    assert len(public["train"][0]) == training and len(held["train"][0]) + len(held["val"][0]) == training
    assert (ds.splits[public["rows"]["val"]] == "PublicTest").all()
    assert len(public["val"][0]) == int((ds.splits == "PublicTest").sum())
    assert (ds.splits[public["rows"]["train"]] == "Training").all()
    with pytest.raises(ValueError, match="needs PublicTest rows"):
        runs.prepare(ds.subset("Training"), asked)

    kw = dict(dataset=data.synthetic(200, seed=5), runs_root=tmp_path / "runs",
              registry_path=tmp_path / "runs.csv", verbose=0, epochs=1, train_limit=100)
    plain = train.train("irnet", 0.5, "smoke", **kw)
    variant = train.train("irnet", 0.5, "smoke", validation="public", **kw)
    assert variant["run_id"] == plain["run_id"] + "-vpub" and "|valPublicTest|" in variant["recipe"]
    rows = pd.read_csv(tmp_path / "runs.csv")
    assert list(results.latest_runs(rows, "smoke")["run_id"]) == [plain["run_id"]]  # never stands in for it


def test_a_snapshot_from_before_a_profile_field_existed_is_still_a_branch_source(tmp_path):
    from dataclasses import asdict, replace

    from fer_utils import config

    prof = runs.requested(config.PROFILES["full"], epochs=120)
    snap = tmp_path / "irnet-w1-full-s0-abc-wsd200" / "stable" / "e0096"
    snap.mkdir(parents=True)
    (snap / "last.keras").write_bytes(b"checkpoint")
    old = {k: v for k, v in asdict(replace(prof, epochs=200)).items() if k != "validation"}  # written before it
    (snap / "state.json").write_text(json.dumps({"epoch": 96, "profile": old}))
    assert runs.branch_source(tmp_path, "irnet-w1-full-s0-abc-wsd120", prof) == snap
    # another protocol is another trajectory: no branch
    other = runs.requested(prof, validation="public")
    assert runs.branch_source(tmp_path, "irnet-w1-full-s0-abc-wsd120", other) is None


def test_a_lighter_augmentation_is_a_tagged_variant_that_trains_with_its_own_factors(tmp_path):
    from fer_utils import config, measure, registry, train

    full = config.PROFILES["full"]
    asked = runs.requested(full, peak_lr=1e-3, augment="light")
    assert runs.variant_tag("", full, asked) == "lr0.001-auglight"
    assert runs.split_variant("kdh-x-lr0.001-auglight") == ("kdh-x", "lr0.001-auglight")
    assert "|aug:flip,rot0.025,trans0.05,zoom0.05|" in recipe.describe(asked)
    assert recipe.describe(full).startswith(f"adam|{recipe.AUGMENT}|") and recipe.AUGMENT == "aug:flip,rot0.05,trans0.1,zoom0.1"
    with pytest.raises(ValueError, match="unknown augmentation 'heavy'"):
        runs.requested(full, augment="heavy")
    layers = recipe.augmenter(0, "light").layers
    assert layers[1].factor == (-0.025, 0.025)
    assert layers[2].height_factor == layers[2].width_factor == 0.05 and layers[3].height_factor == 0.05
    assert recipe.augmenter(0).layers[1].factor == (-0.05, 0.05)

    ds = data.synthetic(200, seed=5)
    kw = dict(dataset=ds, runs_root=tmp_path / "runs", registry_path=tmp_path / "runs.csv", verbose=0,
              epochs=1, train_limit=100)
    variant = train.train("irnet", 0.5, "smoke", augment="light", **kw)
    assert variant["run_id"].endswith("-auglight") and "|aug:flip,rot0.025," in variant["recipe"]
    import keras

    wrapper = keras.models.load_model(tmp_path / "runs" / variant["run_id"] / "last.keras")
    assert wrapper.get_layer("augment").layers[1].factor == (-0.025, 0.025)  # what it trained with

    # its clean accuracy on its own training images, cached by run id and timestamp
    import numpy as np
    from dataclasses import replace

    rows = registry.read(tmp_path / "runs.csv")
    every = replace(config.PROFILES["smoke"], train_limit=None)  # all of this small data set's training images
    fit = measure.train_fit(rows, ds, every, tmp_path / "fit.csv", runs_root=tmp_path / "runs")
    x, y = runs.prepare(ds, every, 0)["train"]
    model = runs.load_trained(rows.iloc[0].to_dict(), tmp_path / "runs")
    expected = float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))
    assert list(fit.run_id) == [variant["run_id"]] and fit.images.iloc[0] == len(y)
    assert fit.train_acc.iloc[0] == round(expected, 4)
    again = measure.train_fit(rows, None, every, tmp_path / "fit.csv", runs_root=tmp_path / "runs")
    assert again.values.tolist() == fit.values.tolist()  # read back: the data set is not even needed


def test_the_flip_augmentation_mirrors_and_does_nothing_else():
    import numpy as np
    from fer_utils import config, report

    full = config.PROFILES["full"]
    asked = runs.requested(full, augment="flip")
    assert runs.variant_tag("", full, asked) == "augflip"
    assert "|aug:flip,rot0,trans0,zoom0|" in recipe.describe(asked)
    assert config.augment_of(recipe.describe(asked)) == "flip"
    assert report.augment_details("flip") == "horizontal flip only: no rotation, shift or zoom"
    aug = recipe.augmenter(3, "flip")
    assert [type(layer).__name__ for layer in aug.layers] == ["RandomFlip"]
    x = np.random.default_rng(0).random((64, 48, 48, 1)).astype("float32")
    y = np.asarray(aug(x, training=True))
    same = np.all(y == x, axis=(1, 2, 3))
    mirrored = np.all(y == x[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same | mirrored) and same.any() and mirrored.any()  # each image kept or mirrored, exactly
    assert np.array_equal(np.asarray(aug(x, training=False)), x)


AMD_FLAGS = "fpu vme sse sse2 avx f16c fma avx2 sha_ni vaes"  # an AMD EPYC (Zen 3): no bfloat16 path


@pytest.mark.parametrize("cpuinfo,native", [
    (f"processor\t: 0\nflags\t\t: {AMD_FLAGS}\n", False),
    (f"processor\t: 0\nflags\t\t: {AMD_FLAGS} avx512f avx512_bf16 amx_bf16 amx_tile\n", True),
    ("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n", True),  # aarch64 (Graviton 3)
    (None, None),  # no /proc/cpuinfo (not Linux): unknown
])
def test_native_bfloat16_reads_the_cpu_flags(tmp_path, monkeypatch, cpuinfo, native):
    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo)
    monkeypatch.setattr(runs, "trains_on_cpu", lambda: True)
    assert runs.native_bfloat16(path) is native
    monkeypatch.setattr(runs, "trains_on_cpu", lambda: False)  # a GPU computes bfloat16 natively
    assert runs.native_bfloat16(path) is True


def test_teachers_compute_in_float32_without_native_bfloat16():
    from fer_utils import config

    assert [config.teacher_policy(a) for a in ("cnn", "mobilenet", "irnet")] == \
        ["mixed_bfloat16", "mixed_bfloat16", "float32"]
    assert {config.teacher_policy(a, native_bfloat16=False) for a in ("cnn", "mobilenet", "irnet")} == {"float32"}


def test_a_bfloat16_run_warns_where_the_cpu_emulates_bfloat16(monkeypatch, smoke_kw):
    from fer_utils import train

    monkeypatch.setattr(runs, "native_bfloat16", lambda *a: False)
    kw = dict(smoke_kw, train_limit=40)
    with pytest.warns(RuntimeWarning, match=r"irnet-w0\.25-.*-bf16\] trains in mixed_bfloat16 on a CPU without"):
        first = train.train("irnet", 0.25, "smoke", epochs=1, precision="mixed_bfloat16", **kw)
    assert first["recipe"].endswith("|bf16")  # the run keeps its identity: only the warning differs
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        train.train("irnet", 0.25, "smoke", epochs=1, **kw)  # float32: nothing to say
        train.train("irnet", 0.25, "smoke", epochs=1, precision="mixed_bfloat16", **kw)  # read back: no training
        monkeypatch.setattr(runs, "native_bfloat16", lambda *a: True)
        train.train("irnet", 0.25, "smoke", epochs=1, seed=1, precision="mixed_bfloat16", **kw)


def test_paired_targets_follow_the_mirror_the_student_was_shown():
    import keras
    import numpy as np

    keras.utils.set_random_seed(1)
    student = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(7, activation="softmax")])
    wrapper = recipe.training_model(student, seed=3, augment="flip", paired=True)
    assert recipe.student_of(wrapper) is student
    x = np.random.default_rng(0).random((64, 48, 48, 1)).astype(np.float32)
    out = np.asarray(wrapper(x, training=True))
    assert out.shape == (64, 8) and set(np.unique(out[:, 7])) == {0.0, 1.0}  # both views drawn
    mirrored = out[:, 7] == 1
    # each row is the student on exactly the view its flag names
    np.testing.assert_allclose(out[mirrored, :7], np.asarray(student(x[mirrored, :, ::-1])), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[~mirrored, :7], np.asarray(student(x[~mirrored])), rtol=1e-5, atol=1e-6)
    clean = np.asarray(wrapper(x, training=False))  # evaluation: nothing mirrored
    assert not clean[:, 7].any()
    np.testing.assert_allclose(clean[:, :7], np.asarray(student(x)), rtol=1e-5, atol=1e-6)
    # the loss reads the flagged view's target: equal to Hinton's on the target of that view
    rng = np.random.default_rng(2)
    views, y = rng.dirichlet(np.ones(7), (64, 2)), rng.integers(0, 7, 64)
    T, alpha = 2.0, 0.5
    targets = distill.paired_targets(views, y, views[:4], y[:4], T, alpha)
    assert targets.paired and targets.train.shape == (64, 21) and targets.val.shape == (4, 21)
    seen = np.where(mirrored[:, None], views[:, 1], views[:, 0])
    want = float(distill.DistillationLoss(T, alpha)(distill.pack(distill.soften(seen, T), y), out[:, :7]))
    assert np.isclose(float(targets.loss(targets.train, out)), want, rtol=1e-5)
    targets.metric.update_state(targets.train, out)
    assert np.isclose(float(targets.metric.result()), np.mean(out[:, :7].argmax(1) == y))
    with pytest.raises(ValueError, match="augment 'flip'"):
        recipe.training_model(student, seed=3, augment="standard", paired=True)
    with pytest.raises(ValueError, match=r"\(n, 2, 7\)"):
        distill.paired_targets(views[:, 0], y, views[:4], y[:4], T, alpha)


def test_paired_distillation_resumes_and_reads_its_teacher_from_runs_or_a_file(tmp_path, smoke_kw):
    import keras
    import numpy as np

    from fer_utils import config, results, train

    prof, kw = config.PROFILES["smoke"], smoke_kw
    teacher = train.train("irnet", 0.5, prof, epochs=1, **kw)
    assert distill.distill("irnet", 0.5, teacher, prof, temperature=2.0, alpha=0.5, view="paired", augment="flip",
                           epochs=2, stop_after=1, **kw) is None
    tag = "kdh-irnet0.5-paired-T2-a0.5-augflip"
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if p.name.endswith(tag))
    saved = keras.models.load_model(run_dir / "last.keras")  # the checkpoint a resumed run reads
    assert isinstance(saved.layers[-1], recipe.MirrorPaired) and isinstance(saved.loss, distill.PairedDistillationLoss)
    log = pd.read_csv(run_dir / "log.csv")  # the student's accuracy against the one-hot third of the targets
    assert 0 <= log["val_accuracy"].iloc[0] <= 1 and 0 <= log["accuracy"].iloc[0] <= 1
    student = distill.distill("irnet", 0.5, teacher, prof, temperature=2.0, alpha=0.5, view="paired",
                              augment="flip", epochs=2, **kw)
    assert student["epochs"] == 2 and f"|tag:{tag.removesuffix('-augflip')}" in student["recipe"]
    assert student["teachers"] == teacher["run_id"]
    assert results.kd_teacher(tag.removesuffix("-augflip")) == ("irnet0.5", "paired")
    # a committed teacher file gives the same two views without the teacher's weights
    prepared = runs.prepare(kw["dataset"], runs.requested(prof, train_limit=120))
    rows, probs, info = teachers.compute([teacher], kw["dataset"], prepared, tmp_path / "runs")
    path = tmp_path / "t.npz"
    teachers.write(path, rows, probs, info)
    read = teachers.read(path, kw["dataset"])
    some = np.sort(rows)[:5]
    np.testing.assert_allclose(read.views(some).mean(axis=1), read.probabilities(some, "tta") *
                               read.views(some).mean(axis=1).sum(1, keepdims=True), rtol=1e-12)
    from_file = distill.distill("irnet", 0.5, read, prof, temperature=2.0, alpha=0.5, view="paired", augment="flip",
                                epochs=1, **kw)
    assert "|tag:kdh-t-paired-T2-a0.5" in from_file["recipe"]
    with pytest.raises(ValueError, match="augment 'flip'"):
        distill.distill("irnet", 0.5, teacher, prof, view="paired", epochs=1, **kw)
