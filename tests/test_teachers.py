"""Committed soft targets: written once, read by data set row, refused on other data."""
import numpy as np
import pandas as pd
import pytest
from conftest import real_data_path

from fer_utils import config, data, distill, models, results, runs, teachers


def _file(tmp_path, ds):
    train = ds.subset("Training")
    model = models.build("mobilenet", 0.25)
    probs = teachers.view_probabilities([model], train.images.astype(np.float32) / 255.0)
    order = np.random.default_rng(0).permutation(len(train))  # written in any order
    info = {"data_fingerprint": ds.fingerprint(), "teachers": ["untrained"], "training": {}}
    teachers.write(tmp_path / "t.npz", train.rows[order], probs[order], info)
    return train, probs


def test_round_trip_by_row_and_view(tmp_path):
    ds = data.synthetic(300, seed=1)
    train, probs = _file(tmp_path, ds)
    tf = teachers.read(tmp_path / "t.npz", ds)
    pick = train.rows[[5, 0, 17]]
    plain = tf.probabilities(pick, "plain")
    assert plain.shape == (3, 7) and np.allclose(plain.sum(1), 1)
    assert np.allclose(plain, probs[[5, 0, 17], 0], atol=2e-3)  # float16 log-probabilities
    assert np.allclose(tf.probabilities(pick, "tta"), probs[[5, 0, 17]].mean(1), atol=2e-3)


def test_mirror_view_is_the_mirrored_images_output():
    ds = data.synthetic(60, seed=2)
    x = ds.images.astype(np.float32) / 255.0
    model = models.build("irnet", 0.5)
    probs = teachers.view_probabilities([model], x)
    assert np.allclose(probs[:, 1], model.predict(x[:, :, ::-1], verbose=0), atol=1e-6)


def test_missing_rows_and_other_data_are_errors(tmp_path):
    ds = data.synthetic(300, seed=1)
    train, _ = _file(tmp_path, ds)
    tf = teachers.read(tmp_path / "t.npz", ds)
    test_row = int(ds.subset("PublicTest").rows[0])
    with pytest.raises(ValueError, match=rf"t\.npz: no soft targets for data set row {test_row}"):
        tf.probabilities([train.rows[0], test_row])
    with pytest.raises(ValueError, match="computed on other data"):
        teachers.read(tmp_path / "t.npz", data.synthetic(300, seed=9))
    with pytest.raises(FileNotFoundError, match="teacher file not found"):
        teachers.read(tmp_path / "none.npz")


def test_a_student_is_distilled_from_the_file_alone(tmp_path):
    ds = data.synthetic(400, seed=3)
    _file(tmp_path, ds)
    tf = teachers.read(tmp_path / "t.npz", ds)
    out = distill.distill("irnet", 0.5, tf, config.PROFILES["smoke"], dataset=ds, runs_root=tmp_path / "runs",
                          registry_path=tmp_path / "runs.csv", verbose=0, epochs=1, train_limit=200)
    assert out["run_id"].endswith("-kdh-t-tta-T4-a0.7") and out["epochs"] == 1
    assert out["teachers"] == "untrained"  # the file's teacher runs


COMMITTED = sorted((config.paths.RESULTS_DIR / "teachers").glob("*.npz"))


@pytest.mark.skipif(not COMMITTED, reason="no teacher file committed under results/teachers/ yet")
@pytest.mark.skipif(real_data_path() is None, reason="needs the real FER2013 (../shared/data/fer2013/)")
def test_committed_soft_targets_on_a_slice_of_the_real_data():
    ds = data.load_path(real_data_path())  # that file, whatever data/ holds
    prepared = runs.prepare(ds, config.PROFILES["smoke"])  # a stratified slice of 1,200 training images
    for path in COMMITTED:
        tf = teachers.read(path, ds)
        assert len(tf.rows) == 28_709
        p = tf.probabilities(prepared["rows"]["train"])
        y = prepared["train"][1]
        assert p.shape == (len(y), 7) and np.allclose(p.sum(1), 1)
        # on its own training images the teacher agrees with the labels about as often as the file says
        assert abs(np.mean(p.argmax(1) == y) - tf.info["training"]["tta"]) < 0.05


def test_a_search_trains_the_plain_twin_then_every_grid_point(tmp_path, monkeypatch):
    ds = data.synthetic(400, seed=3)
    _file(tmp_path, ds)
    tf = teachers.read(tmp_path / "t.npz", ds)
    kw = dict(dataset=ds, runs_root=tmp_path / "runs", registry_path=tmp_path / "runs.csv", verbose=0, epochs=1,
              train_limit=200)
    done = distill.search("irnet", 0.5, tf, config.PROFILES["smoke"], temperatures=[2], alphas=[0.5, 0.9], **kw)
    assert [r["run_id"].rsplit("-", 4)[-4:] for r in done[1:]] == [["t", "tta", "T2", "a0.5"], ["t", "tta", "T2", "a0.9"]]
    assert "kd" not in done[0]["run_id"] and all(r["epochs"] == 1 for r in done)
    from fer_utils import registry, results

    pairs = results.distillation_pairs(registry.read(tmp_path / "runs.csv"))
    grid = results.kd_search(pairs)
    assert list(zip(grid.temperature, grid.alpha)) == [(2.0, 0.5), (2.0, 0.9)] and grid.chosen.sum() == 1
    assert grid.loc[grid.chosen, "val_gain"].item() == grid.val_gain.max()
    # a deadline already past stops the search before it trains anything more, and says it is unfinished
    monkeypatch.setenv("FER_DEADLINE", "1")
    assert distill.search("irnet", 0.5, tf, config.PROFILES["smoke"], seed=1, temperatures=[2], alphas=[0.5],
                          **kw) is None
    assert not any(p.name.startswith("irnet-w0.5-smoke-s1") and (p / "result.json").exists()
                   for p in (tmp_path / "runs").iterdir())
    with pytest.raises(ValueError, match="alpha"):
        distill.search("irnet", 0.5, tf, config.PROFILES["smoke"], temperatures=[2], alphas=[1.5], **kw)


def test_the_teacher_table_shows_an_ensembles_best_member(tmp_path):
    from fer_utils import report

    info = {"teachers": ["a", "b"], "training": {"tta": 0.7}, "PrivateTest": {"plain": 0.66, "tta": 0.67},
            "each": {"a": {"PrivateTest": {"plain": 0.64, "tta": 0.645}}, "b": {"PrivateTest": {"plain": 0.6, "tta": 0.61}}}}
    teachers.write(tmp_path / "a+b.npz", np.arange(4), np.full((4, 2, 7), 1 / 7), info)
    single = {**info, "teachers": ["a"], "each": {"a": info["each"]["a"]}}
    teachers.write(tmp_path / "a.npz", np.arange(4), np.full((4, 2, 7), 1 / 7), single)
    tab = teachers.table(tmp_path)
    assert list(tab.file) == ["a+b.npz", "a.npz"] and list(tab.teachers) == ["a + b", "a"]
    assert tab.PrivateTest_tta_best_member.iloc[0] == 0.645 and pd.isna(tab.PrivateTest_tta_best_member.iloc[1])
    text = report.teacher_files_text(tmp_path)
    assert "| a+b.npz | a + b |" in text and "| 0.700 | 0.660 | 0.670 | 0.645 |" in text
    assert report.teacher_files_text(tmp_path / "none") == ""


def test_a_students_teachers_are_recorded_read_from_its_file_or_resolved_as_of_its_start():
    def row(run_id, epochs, tag, finished, wall_h, teachers=None, seed=0):
        return {"run_id": run_id, "arch": "irnet", "width": 1.2, "params": 100, "seed": seed, "epochs": epochs,
                "profile": "full",
                "data_fingerprint": "d", "wall_s": wall_h * 3600, "timestamp": f"2026-01-01T{finished}:00:00+00:00",
                "recipe": f"adam|wsd{epochs}/warm2/decay0.2/peak0.003|bs128" + (f"|tag:{tag}" if tag else ""),
                "teachers": teachers}

    runs_ = pd.DataFrame([
        row("plain40", 40, "", "01", 1), row("plain120", 120, "", "04", 3),
        row("early", 40, "kdh-irnet1.2-online-T2-a0.5", "05", 3),  # started at 02: only plain40 had finished
        row("late", 120, "kdh-irnet1.2-online-T2-a0.5", "09", 4),  # started at 05: plain120, the longest
        row("kd60s1", 60, "kdh-irnet1.2-online-T2-a0.5", "06", 1, seed=1),
        row("ens", 120, "kdh-irnet1.2+irnet1.2s1e60kdh-online-T2-a0.5", "12", 2),
        row("rec", 120, "kdh-irnet1.2-online-T2-a0.5", "13", 1, teachers="x;y"),
        row("file", 40, "kdh-f-tta-T2-a0.5", "14", 1),
        row("none", 40, "kdh-cnn1-online-T2-a0.5", "15", 1),
    ])
    got = results.student_teachers(runs_, {"f": ["a", "b"]}).set_index("run_id")
    assert list(got.index) == ["early", "late", "kd60s1", "ens", "rec", "file", "none"]  # distilled rows only
    assert got.loc["early", "teachers"] == "plain40" and got.loc["early", "how"] == "by name"
    assert got.loc["late", "teachers"] == "plain120"
    assert got.loc["ens", "teachers"] == "plain120;kd60s1" and got.loc["ens", "view"] == "online"
    assert (got.loc["rec", "teachers"], got.loc["rec", "how"]) == ("x;y", "recorded")
    assert (got.loc["file", "teachers"], got.loc["file", "how"], got.loc["file", "view"]) == ("a;b", "teacher file", "tta")
    assert got.loc["none", "teachers"] == ""  # no CNN ever finished here: unresolved, never guessed


def test_which_teacher_rows_get_their_teachers_own_accuracy(tmp_path):
    """A file teacher's accuracy comes from the file, a run teacher's from teacher_runs.csv by the runs
    that taught the student; an unknown teacher stays NaN; the report says it beside the student."""
    from fer_utils import report

    info = {"teachers": ["c"], "training": {"tta": 0.7}, "PrivateTest": {"plain": 0.64, "tta": 0.65}}
    teachers.write(tmp_path / "cnn1.npz", np.arange(4), np.full((4, 2, 7), 1 / 7), info)
    base = {"student": "IRNet (ours) w1", "schedule": "wsd15", "epochs": 15, "method": "kdh", "temperature": 2.0,
            "alpha": 0.5, "public_acc": 0.6, "private_acc": 0.6, "val_gain": 1.0, "public_gain": 1.0,
            "private_gain": 1.0, "cpu_h": 0.3, "comparison": 1}
    kd = pd.DataFrame([
        {**base, "teacher": "cnn1", "targets": "precomputed (tta)", "view": "tta", "val_acc": 0.59, "run_id": "s_file",
         "chosen": False},
        {**base, "teacher": "irnet1.2+irnet1.2s1e60kdh", "targets": "in the loop (augmented view)", "view": "online",
         "val_acc": 0.61, "run_id": "s_ens", "chosen": True},
        {**base, "teacher": "irnet1.7", "targets": "in the loop (augmented view)", "view": "online", "val_acc": 0.58,
         "run_id": "s_unknown", "chosen": False}])
    runs_ = pd.DataFrame([{"run_id": r, "arch": "irnet", "width": 1.0, "seed": 0, "epochs": 15, "profile": "full",
                           "data_fingerprint": "d", "wall_s": 1.0, "timestamp": "2026-01-01T00:00:00+00:00",
                           "recipe": f"adam|wsd15|tag:kdh-{t}-T2-a0.5", "teachers": rec}
                          for r, t, rec in [("s_file", "cnn1-tta", None), ("s_ens", "irnet1.2+irnet1.2s1e60kdh-online", "p;k"),
                                            ("s_unknown", "irnet1.7-online", "q")]])
    scored = pd.DataFrame([{"members": "p;k", "private_acc": 0.671, "private_tta_acc": 0.683},
                           {"members": "k;p", "private_acc": 0.5, "private_tta_acc": 0.5}])
    got = teachers.with_teacher_accuracy(kd, runs_, scored, tmp_path).set_index("run_id")
    assert list(got.loc["s_file", teachers.TEACHER_ACCURACY_COLUMNS]) == [0.64, 0.65]
    assert list(got.loc["s_ens", teachers.TEACHER_ACCURACY_COLUMNS]) == [0.671, 0.683]  # the members in order
    assert got.loc["s_unknown", teachers.TEACHER_ACCURACY_COLUMNS].isna().all()
    assert list(got.reset_index().columns) == ["run_id"] + [c for c in kd.columns if c != "run_id"] + list(
        teachers.TEACHER_ACCURACY_COLUMNS)  # the table itself unchanged, two columns added
    assert teachers.with_teacher_accuracy(kd, runs_, scored.iloc[:0], tmp_path / "none")[
        teachers.TEACHER_ACCURACY_COLUMNS].isna().all().all()
    kd.to_csv(tmp_path / "kd_teachers.csv", index=False)
    scored.to_csv(tmp_path / "teacher_runs.csv", index=False)
    text = report.kd_teachers_text(tmp_path / "kd_teachers.csv", runs_, tmp_path / "teacher_runs.csv", tmp_path)
    assert "validation picks an ensemble of IRNet (ours) w1.2 and IRNet (ours) w1.2 + KD (seed 1, 60 epochs) in the loop" in text
    assert "(the teacher's own PrivateTest 0.671), validation 0.610" in text
    assert "from the teacher file `cnn1.npz` (tta targets; the teacher's own PrivateTest 0.640), validation 0.590" in text
    assert "| teacher_private_acc |" in text
    assert "teacher's own" not in report.kd_teachers_text(tmp_path / "kd_teachers.csv")  # without the sources: as before


def _named_teachers_registry():
    def row(run_id, epochs, tag, finished, wall_h, teachers="", seed=0, private=0.6):
        return {"run_id": run_id, "arch": "irnet", "width": 1.2, "params": 100, "seed": seed, "epochs": epochs,
                "profile": "full", "data_fingerprint": "d", "wall_s": wall_h * 3600, "private_acc": private,
                "private_tta_acc": private + 0.01, "timestamp": f"2026-01-01T{finished}:00:00+00:00",
                "recipe": f"adam|wsd{epochs}/warm2/decay0.2/peak0.003|bs128" + (f"|tag:{tag}" if tag else ""),
                "teachers": teachers}

    return pd.DataFrame([
        row("plain40", 40, "", "01", 1, private=0.60), row("plain120", 120, "", "04", 3, private=0.63),
        row("early", 40, "kdh-irnet1.2-online-T2-a0.5", "05", 3),  # started at 02: plain40 stood for irnet1.2
        row("late", 120, "kdh-irnet1.2-online-T2-a0.5", "09", 4),  # started at 05: plain120
        row("late2", 120, "kdh-irnet1.2-online-T2-a0.5", "10", 1, seed=1),
        row("ens", 120, "kdh-irnet1.2s0e120kdh+irnet1.2-online-T2-a0.5", "12", 2, teachers="late;plain120"),
        row("ens-cos3-qat", 3, "qat-kmeans-3-lr0.00003-teacher-irnet1.2s0e120kdh+irnet1.2-T2-a0.5-wsd120-kdh-x",
            "13", 0.1, teachers="late;plain120"),
    ])


def test_each_teacher_name_says_which_runs_it_stood_for_and_how_many_students_it_taught():
    got = results.teacher_names(_named_teachers_registry())
    assert list(got.columns) == results.TEACHER_NAMES_COLUMNS
    rows = [tuple(r) for r in got[["name", "members", "students"]].itertuples(index=False)]
    # one name, two runs over time: the one that taught most first; the ensemble taught a student and a fine-tune
    assert rows == [("irnet1.2", "plain120", 2), ("irnet1.2", "plain40", 1),
                    ("irnet1.2s0e120kdh+irnet1.2", "late;plain120", 2)]
    words = dict(zip(got["members"], got["teacher"]))
    assert words["plain40"] == "IRNet (ours) w1.2 (40 epochs)" and words["plain120"] == "IRNet (ours) w1.2 (120 epochs)"
    assert words["late;plain120"] == ("an ensemble of IRNet (ours) w1.2 + KD (teacher irnet1.2) (seed 0, 120 epochs) "
                                      "and IRNet (ours) w1.2 (120 epochs)")  # a member says its own teacher
    assert results.teacher_names(_named_teachers_registry().iloc[:2]).empty  # no student: no names


def test_the_teacher_names_legend_gives_each_teachers_own_accuracy(tmp_path):
    from fer_utils import report

    runs_ = _named_teachers_registry()
    own = tmp_path / "teacher_runs.csv"
    pd.DataFrame([{"members": "late;plain120", "private_acc": 0.655, "private_tta_acc": 0.661}]).to_csv(own, index=False)
    text = report.teacher_names_text(runs_, tmp_path / "teachers", own)
    assert "| `irnet1.2s0e120kdh+irnet1.2` | an ensemble of" in text and "| 2 | 0.655 | 0.661 |" in text  # teacher_runs.csv
    assert "| `irnet1.2` | IRNet (ours) w1.2 (40 epochs) | 1 | 0.600 | 0.610 |" in text  # one run: its own row
    assert "`s<seed>e<epochs>`" in text  # says how to read a name
    assert report.teacher_names_text(runs_.iloc[:2], tmp_path / "teachers", own) == ""


def _pool_outputs():
    """Three runs on 4 images of 3 classes (labels 0, 1, 2, 0): ``b`` alone is the best (3 right), ``a``
    and ``c`` right on 2 each; ``a`` + ``b`` right on all 4, all three on 3."""
    y = np.array([0, 1, 2, 0])
    a = np.array([[.9, .1, 0], [0, .9, .1], [0, .6, .4], [.2, .8, 0]])  # right on 0, 1, wrong on 2, 3
    b = np.array([[.6, .4, 0], [.6, .4, 0], [0, 0, 1], [.9, 0, .1]])  # right on 0, 2, 3, wrong on 1
    c = np.array([[.1, .9, 0], [0, 1, 0], [0, .1, .9], [.3, .7, 0]])  # right on 1, 2
    out = {k: {s: v for s in ("val", "PublicTest", "PrivateTest", "PublicTest_tta", "PrivateTest_tta")}
           for k, v in (("a", a), ("b", b), ("c", c))}
    return out, {"val": y, "PublicTest": y, "PrivateTest": y}


def test_the_best_set_of_each_size_is_chosen_on_validation_among_every_set():
    outputs, labels = _pool_outputs()
    assert teachers.set_scores(["a"], outputs, labels)["val"] == 0.5
    best = teachers.best_sets(outputs, labels, max_members=3)
    assert [b["ids"] for b in best] == [["b"], ["a", "b"], ["a", "b", "c"]]
    assert [b["val"] for b in best] == [0.75, 1.0, 0.75]  # a + b: right everywhere; adding c costs one
    assert best[1]["private_tta_acc"] == 1.0 and set(best[1]) == {"ids", "val", "public_acc", "private_acc",
                                                                  "public_tta_acc", "private_tta_acc"}
    # a pool above max_runs keeps its best runs alone on validation
    assert [b["ids"] for b in teachers.best_sets(outputs, labels, max_members=2, max_runs=1)] == [["b"]]


def test_the_pool_is_the_long_holdout_runs_with_weights_and_keeps_its_table_while_it_is_the_same(tmp_path):
    from fer_utils import runs

    def row(run_id, epochs, tag="", profile="full", validation="val10%"):
        return {"run_id": run_id, "arch": "irnet", "width": 1.2, "seed": 0, "epochs": epochs, "profile": profile,
                "data_fingerprint": "d", "timestamp": "2026-01-01T00:00:00+00:00",
                "recipe": f"adam|wsd{epochs}/warm2/decay0.2/peak0.003|best-val|{validation}|bs128" + (f"|tag:{tag}" if tag else "")}

    reg = pd.DataFrame([row("long", 120), row("short", 40), row("other", 120, profile="smoke"),
                        row("long-cos3-qat-kmeans-3-wsd120", 3, "qat-kmeans-3-wsd120"), row("gone", 200),
                        row("long-vpub", 120, "vpub", validation="valPublicTest")])  # it trained on the holdout
    for rid in ("long", "short", "other", "long-cos3-qat-kmeans-3-wsd120", "long-vpub"):  # "gone": no weights here
        path = runs.weights_path(rid, tmp_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    assert list(teachers.pool_runs(reg, "full", "d", 100, tmp_path)["run_id"]) == ["long"]
    key = "long@2026-01-01T00:00:00+00:00"
    kept = pd.DataFrame([{c: None for c in teachers.POOL_COLUMNS} | {"members": 1, "val_acc": 0.5, "key": key}])
    kept.to_csv(tmp_path / "teacher_pool.csv", index=False)
    # the same pool: the table already written stands, nothing is loaded or scored (prepared=None)
    got = teachers.pool_table(reg, None, "full", "d", tmp_path / "teacher_pool.csv", runs_root=tmp_path)
    assert got["val_acc"].tolist() == [0.5]
    # no run long enough: an empty table with its columns, written
    none = teachers.pool_table(reg, None, "full", "d", tmp_path / "empty.csv", min_epochs=500, runs_root=tmp_path)
    assert none.empty and list(pd.read_csv(tmp_path / "empty.csv").columns) == teachers.POOL_COLUMNS


def test_the_pool_text_says_where_members_stop_paying_and_how_far_the_target_is(tmp_path):
    from fer_utils import report

    rows = [(1, 0.670, np.nan), (2, 0.680, 1.0), (3, 0.6803, 0.03), (4, 0.679, -0.13)]
    pool = pd.DataFrame([{"members": k, "models": f"{k} runs", "val_acc": v, "public_acc": v, "private_acc": v,
                          "public_tta_acc": v, "private_tta_acc": v + 0.002, "val_gain": g, "run_ids": "", "pool": 4,
                          "key": "k"} for k, v, g in rows])
    pool.to_csv(tmp_path / "teacher_pool.csv", index=False)
    pd.DataFrame([{"budget": "strong", "target_private": 0.715}]).to_csv(tmp_path / "deliverables.csv", index=False)
    text = report.teacher_pool_text(tmp_path / "teacher_pool.csv", tmp_path / "deliverables.csv")
    assert "has 3 members: validation 0.680, PrivateTest\n0.680 (0.682 with mirror TTA)" in text  # the last row is all 4
    assert "from 3 members on, each member adds less than 0.1 points of validation (at most 0.03)" in text
    assert "lies 3.3 points above even this float32 set" in text  # 0.715 - (0.6803 + 0.002)
    assert "| 4 | 4 runs |" in text  # all of them together, the last row
    assert report.teacher_pool_text(tmp_path / "missing.csv") == ""
    # a gain back above the mark: only the sets after it are spent
    pool.loc[3, "val_gain"], pool.loc[2, "val_gain"] = 0.05, 0.5
    pool.assign(pool=5).to_csv(tmp_path / "teacher_pool.csv", index=False)  # 4 of 5 runs: no "all" row
    assert "from 4 members on, each member adds less than 0.1" in report.teacher_pool_text(tmp_path / "teacher_pool.csv")
    pool.loc[3, "val_gain"] = 0.3
    pool.assign(pool=5).to_csv(tmp_path / "teacher_pool.csv", index=False)
    assert "the largest set tried, 4 members, still adds 0.30 points" in report.teacher_pool_text(tmp_path / "teacher_pool.csv")


def test_rows_of_gives_each_runs_newest_row_in_order_or_none_unless_all_are_there():
    reg = pd.DataFrame([{"run_id": "a", "epochs": 40}, {"run_id": "b", "epochs": 120}, {"run_id": "a", "epochs": 200}])
    got = results.rows_of(["b", "a"], reg)
    assert [r.name for r in got] == ["b", "a"] and got[1]["epochs"] == 200  # a's newest row
    assert [r.name for r in results.rows_of("a;b", reg)] == ["a", "b"]  # the registry's ;-joined form
    assert results.rows_of(["a", "gone"], reg) is None  # one missing: none
    assert results.rows_of([], reg) is None and results.rows_of("", reg) is None and results.rows_of(None, reg) is None
    assert results.rows_of(["a"], None) is None and results.rows_of(["a"], reg.iloc[:0]) is None
    by_id = results.newest_by_id(reg)  # built once, for a caller in a loop: the same rows
    assert [r["epochs"] for r in results.rows_of("b;a", by_id)] == [120, 200] and results.rows_of("gone", by_id) is None


def test_pool_outputs_score_each_run_once_and_again_on_a_validation_split_of_another_length(tmp_path, monkeypatch):
    from fer_utils import predict

    loaded = []
    monkeypatch.setattr(runs, "load_trained", lambda row, root=None: loaded.append(row["run_id"]) or row["run_id"])
    monkeypatch.setattr(predict, "probabilities",
                        lambda model, x, mirror=False, plain=None: np.full((len(x), 7), 0.5 if mirror else 1 / 3))
    pool = pd.DataFrame([{"run_id": "a", "timestamp": "t1"}, {"run_id": "b", "timestamp": "t1"}])

    def prepared(n_val):
        return {"val": (np.zeros((n_val, 48, 48, 1)), np.zeros(n_val)),
                "tests": {"PublicTest": (np.zeros((3, 48, 48, 1)), None), "PrivateTest": (np.zeros((2, 48, 48, 1)), None)}}

    first = teachers.pool_outputs(pool, prepared(4), tmp_path)
    assert loaded == ["a", "b"] and set(first["a"]) == {"val", "val_tta", "PublicTest", "PublicTest_tta",
                                                        "PrivateTest", "PrivateTest_tta"}
    assert first["a"]["PrivateTest"].shape == (2, 7) and first["a"]["val_tta"][0, 0] == 0.5
    again = teachers.pool_outputs(pool, prepared(4), tmp_path)
    assert loaded == ["a", "b"] and np.array_equal(again["b"]["val"], first["b"]["val"])  # read back, not scored
    other = teachers.pool_outputs(pool.iloc[:1], prepared(5), tmp_path)  # another validation split: scored again
    assert loaded == ["a", "b", "a"] and other["a"]["val"].shape == (5, 7)
    newer = teachers.pool_outputs(pool.assign(timestamp="t2").iloc[1:], prepared(5), tmp_path)  # a run finished again
    assert loaded == ["a", "b", "a", "b"] and newer["b"]["val"].shape == (5, 7)


def test_which_teacher_says_apart_two_members_of_one_name(tmp_path):
    """An ensemble teacher whose two members share a name (seed 0, 200 epochs, distilled from different
    teachers) is said member by member from the runs that taught, each with its own teacher, as the
    teacher-name legend says it; without the registry, by the name alone."""
    from fer_utils import report

    def run(rid, arch, width, epochs, tag, teachers_=None):
        return {"run_id": rid, "arch": arch, "width": width, "seed": 0, "epochs": epochs, "profile": "full",
                "data_fingerprint": "d", "wall_s": 1.0, "timestamp": "2026-01-01T00:00:00+00:00",
                "recipe": f"adam|wsd{epochs}|tag:{tag}", "teachers": teachers_}

    name = "irnet1.2s0e200kdh+irnet1.2s0e200kdh"
    runs_ = pd.DataFrame([run("from_ens", "irnet", 1.2, 200, "kdh-irnet1.2-online-T2-a0.5", "x"),
                          run("from_cnn", "irnet", 1.2, 200, "kdh-cnn1-online-T2-a0.5", "y"),
                          run("s", "irnet", 1.0, 15, f"kdh-{name}-online-T2-a0.5", "from_ens;from_cnn")])
    kd = pd.DataFrame([{"student": "IRNet (ours) w1", "schedule": "wsd15", "epochs": 15, "method": "kdh",
                        "temperature": 2.0, "alpha": 0.5, "teacher": name, "targets": "in the loop (augmented view)",
                        "view": "online", "val_acc": 0.6, "public_acc": 0.6, "private_acc": 0.6, "val_gain": 1.0,
                        "public_gain": 1.0, "private_gain": 1.0, "cpu_h": 0.3, "run_id": "s", "chosen": True,
                        "comparison": 1}])
    kd.to_csv(tmp_path / "kd_teachers.csv", index=False)
    text = report.kd_teachers_text(tmp_path / "kd_teachers.csv", runs_)
    assert ("validation picks an ensemble of IRNet (ours) w1.2 + KD (teacher irnet1.2) (seed 0, 200 epochs) and "
            "IRNet (ours) w1.2 + KD (seed 0, 200 epochs) in the loop") in text
    alone = report.kd_teachers_text(tmp_path / "kd_teachers.csv")
    assert ("validation picks an ensemble of IRNet (ours) w1.2 + KD (seed 0, 200 epochs) and "
            "IRNet (ours) w1.2 + KD (seed 0, 200 epochs) in the loop") in alone
