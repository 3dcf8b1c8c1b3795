"""Ensembles of compressed files: greedy selection on PublicTest, the folder, its predictions, a fresh clone."""
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from fer_utils import compress, config, deliverable, ensemble, measure, models, predict

N = 40


def designed(labels: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Outputs that are confidently right (0.9 on the label) where ``right``, else weakly wrong (0.4 on the next class)."""
    p = np.full((len(labels), 7), 0.6 / 6)
    p[np.arange(len(labels)), labels] = 0.1
    p[np.arange(len(labels)), (labels + 1) % 7] = 0.4
    good = np.full(7, 0.1 / 6)
    for i in np.flatnonzero(right):
        p[i] = good
        p[i, labels[i]] = 0.9
    return p


@pytest.fixture
def three_files(tmp_path):
    """Three int8 files of one architecture (runs a, b, c) whose cached outputs make a the best single file
    (right on the first 65 %), a + b right everywhere (b on the last 60 %), c (the middle 60 %) a worse partner
    of either."""
    labels = np.arange(N) % 7
    idx = np.arange(N)
    right = {"a": idx < 0.65 * N, "b": idx >= 0.4 * N, "c": (idx >= 0.3 * N) & (idx < 0.9 * N)}
    runs_root, cache = tmp_path / "runs", tmp_path / "cache"
    rows = []
    for rid in "abc":
        path = measure.codec_path(rid, "int8", runs_root)
        path.parent.mkdir(parents=True)
        size = compress.encode(models.build("mobilenet", 0.15), path, "int8")  # each its own random weights
        digest = measure.file_digest(path)
        cache.mkdir(exist_ok=True)
        out = designed(labels, right[rid]).astype(np.float32)
        np.savez(cache / f"{digest}.npz", PublicTest=out, PrivateTest=out, PublicTest_tta=out, PrivateTest_tta=out)
        acc = float(right[rid].mean())
        rows.append({"run_id": rid, "model": f"model {rid}", "codec": "int8", "bytes": size, "public_acc": round(acc, 4),
                     "private_acc": round(acc, 4), "file_sha256": digest})
    prepared = {"tests": {s: (np.zeros((N, 48, 48, 1), np.float32), labels) for s in ensemble.SPLITS}}
    return runs_root, cache, pd.DataFrame(rows), prepared


def test_greedy_adds_members_while_public_accuracy_rises(three_files, tmp_path):
    runs_root, cache, codecs, prepared = three_files
    code = deliverable.code_bytes(tmp_path / "code")
    ab = int(codecs.bytes.iloc[0] + codecs.bytes.iloc[1])  # files a and b
    budgets = {"three": config.ByteBudget(code + int(codecs.bytes.sum())), "two": config.ByteBudget(code + ab),
               "one": config.ByteBudget(code + int(codecs.bytes.max()))}
    table = ensemble.search(codecs, budgets, prepared, tmp_path / "ensembles.csv", code, runs_root, cache)
    rows = table.set_index("budget")
    assert rows.loc["three", "run_id"] == "a; b"  # c adds nothing once a and b are in: the search stops
    assert rows.loc["two", "members"] == 2 and rows.loc["two", "public_acc"] == 1.0
    assert rows.loc["one", "members"] == 1 and rows.loc["one", "run_id"] == "a"  # one file: the best that fits
    assert rows.loc["two", "bytes"] == ab and rows.loc["two", "codec"] == "int8; int8"
    # a member whose file changed since (another digest) makes the row invalid
    changed = codecs.assign(file_sha256=codecs.file_sha256.where(codecs.run_id != "b", "0" * 64))
    assert ensemble.valid_rows(ensemble.read_table(tmp_path / "ensembles.csv"), changed)["run_id"].tolist() == ["a"]
    # on a machine without the files nothing new is found and the valid rows stand
    again = ensemble.search(codecs, budgets, prepared, tmp_path / "ensembles.csv", code, tmp_path / "elsewhere", cache)
    assert again["run_id"].tolist() == ["a; b", "a; b", "a"]


def test_an_ensemble_deliverable_is_chosen_assembled_predicted_and_rebuilt(three_files, tmp_path):
    runs_root, cache, codecs, prepared = three_files
    results_dir = tmp_path / "results"
    code = deliverable.code_bytes(tmp_path / "code")
    ab = int(codecs.bytes.iloc[0] + codecs.bytes.iloc[1])  # files a and b
    budgets = {"two": config.ByteBudget(code + ab, 0.9)}
    found = ensemble.search(codecs, budgets, prepared, tmp_path / "ensembles.csv", code, runs_root, cache)
    table = deliverable.choose(codecs, budgets, results_dir, runs_root, tmp_path / "build", ensembles=found)
    (row,) = table.to_dict("records")
    assert row["members"] == 2 and row["run_id"] == "a; b" and row["target_met"]
    assert row["folder_bytes"] == code + ab  # du of the assembled folder, as predicted
    assert sorted(p.name for p in (results_dir / "weights").iterdir()) == ["best-two-1.int8", "best-two-2.int8"]
    folder = tmp_path / "build" / "two-2"
    assert sorted(p.name for p in folder.iterdir()) == ["predict.pyz", "weights-1.int8", "weights-2.int8"]
    files, model, codec = deliverable.chosen_files(table, results_dir)["two"]
    assert [f.name for f in files] == ["best-two-1.int8", "best-two-2.int8"] and codec == "int8; int8"

    # the folder predicts as the decoded members do in process, byte-identically on rerun
    images = np.random.default_rng(3).integers(0, 256, (25, 48, 48, 1), dtype=np.uint8)
    test_csv = tmp_path / "test.csv"
    test_csv.write_text("id,feature\n" + "".join(f"{i},{' '.join(map(str, im.ravel().tolist()))}\n"
                                                 for i, im in enumerate(images)))
    outs = []
    for name in ("x.csv", "y.csv"):
        run = subprocess.run([sys.executable, str(folder / "predict.pyz"), "--weights", str(folder), "--input",
                              str(test_csv), "--output", str(tmp_path / name)], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]
    expected = predict.predict_labels([compress.decode(folder / f"weights-{i}.int8") for i in (1, 2)], images)
    assert [int(line.split(",")[1]) for line in outs[0].decode().splitlines()[1:]] == expected.tolist()

    # a fresh clone (no run files) chooses the same ensemble and rebuilds it from the committed files
    again = deliverable.choose(codecs, budgets, results_dir, tmp_path / "elsewhere", tmp_path / "build2",
                               ensembles=ensemble.search(codecs, budgets, prepared, tmp_path / "ensembles.csv", code,
                                                         tmp_path / "elsewhere", cache))
    assert again["run_id"].tolist() == ["a; b"] and again["folder_bytes"].tolist() == [code + ab]
    # the kept folder names its members as the codec rows name their runs now
    renamed = codecs.assign(model=["A now", "B now", "C now"])
    kept = ensemble.search(renamed, budgets, prepared, tmp_path / "ensembles.csv", code, tmp_path / "elsewhere", cache)
    assert kept["run_id"].tolist() == ["a; b"] and kept["model"].tolist() == ["A now; B now"]


def test_the_search_scores_folders_as_they_ship_with_mirror_tta(three_files, tmp_path):
    runs_root, cache, codecs, prepared = three_files
    labels = prepared["tests"]["PublicTest"][1]
    c = codecs.set_index("run_id").loc["c"]
    with np.load(cache / f"{c.file_sha256}.npz") as z:
        plain = {k: z[k] for k in z.files}
    everywhere = designed(labels, np.ones(N, dtype=bool)).astype(np.float32)
    np.savez(cache / f"{c.file_sha256}.npz", **{**plain, "PublicTest_tta": everywhere, "PrivateTest_tta": everywhere})
    code = deliverable.code_bytes(tmp_path / "code")
    budgets = {"two": config.ByteBudget(code + int(codecs.bytes.iloc[0] + codecs.bytes.iloc[1]), 0.99)}
    shipped = ensemble.search(codecs, budgets, prepared, tmp_path / "tta.csv", code, runs_root, cache, mirror=True)
    (row,) = shipped.to_dict("records")
    assert row["run_id"] == "c" and row["members"] == 1  # c alone is right everywhere with its mirror
    assert row["public_tta_acc"] == 1.0 and row["public_acc"] < 1.0
    plain_search = ensemble.search(codecs, budgets, prepared, tmp_path / "plain.csv", code, runs_root, cache, mirror=False)
    assert plain_search["run_id"].tolist() == ["a; b"]  # without TTA the pair wins
    # the deliverable is the search's folder, ranked as it ships, though codec rows score a higher plain accuracy
    better_plain = codecs.assign(public_acc=1.0)
    (chosen,) = deliverable.choose(better_plain, budgets, tmp_path / "results", runs_root, tmp_path / "build",
                                   ensembles=shipped, prepared=prepared).to_dict("records")
    assert chosen["run_id"] == "c" and chosen["members"] == 1
    assert (tmp_path / "results" / "weights" / "best-two.int8").exists()


def test_one_member_predicts_exactly_as_the_file_alone():
    p = np.random.default_rng(0).dirichlet(np.ones(7), size=50)
    assert np.array_equal(predict.mean_probabilities([p]), p)
    with pytest.raises(ValueError, match="at least one member"):
        predict.mean_probabilities([])


def test_a_folder_without_weights_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no weights"):
        predict.weight_files(tmp_path)


def test_the_pool_keeps_each_runs_undominated_files_of_runs_near_the_best():
    codecs = pd.DataFrame([
        {"run_id": "a", "codec": "int8", "bytes": 100, "public_acc": 0.62},
        {"run_id": "a", "codec": "kmeans-5", "bytes": 70, "public_acc": 0.62},  # as good and smaller: int8 goes
        {"run_id": "a", "codec": "kmeans-4", "bytes": 60, "public_acc": 0.60},  # smaller, worse: stays
        {"run_id": "b", "codec": "int8", "bytes": 300, "public_acc": 0.70},  # does not fit
        {"run_id": "b", "codec": "kmeans-3", "bytes": 50, "public_acc": 0.50},  # fits, but b is far behind
    ])
    kept = ensemble.pool(codecs, room=200)
    assert list(zip(kept.run_id, kept.codec)) == [("a", "kmeans-5"), ("a", "kmeans-4")]


def test_a_missing_file_is_written_again_from_the_runs_weights_or_measured_again(tmp_path):
    from fer_utils import data, runs

    model = models.build("mobilenet", 0.15)
    runs.weights_path("r", tmp_path).parent.mkdir(parents=True)
    model.save_weights(runs.weights_path("r", tmp_path))
    run = {"run_id": "r", "arch": "mobilenet", "width": 0.15, "params": model.count_params(), "data_source": "synthetic",
           "timestamp": "t0"}
    prepared = runs.prepare(data.synthetic(140, seed=2), config.PROFILES["smoke"])
    table = tmp_path / "codecs.csv"
    (row,) = measure.measure_codecs(run, ["int8"], prepared, table, tmp_path).itertuples(index=False)
    path = measure.codec_path("r", "int8", tmp_path)
    path.unlink()
    assert ensemble.file_here(row, tmp_path) is None  # without its run's row nothing is written
    found = ensemble.file_here(row, tmp_path, run)
    assert found == (path, row) and measure.file_digest(path) == row.file_sha256  # the same bytes again
    path.unlink()
    other = row._replace(file_sha256="0" * 64)  # measured on other weights (say float32, here a float16 copy)
    assert ensemble.file_here(other, tmp_path, run) is None and not path.exists()  # no table to measure into
    found_path, now = ensemble.file_here(other, tmp_path, run, prepared, table)
    assert found_path == path and now.file_sha256 == measure.file_digest(path)  # measured again: its row now
    assert measure.read_table(table).file_sha256.tolist() == [now.file_sha256]  # replacing the old one
    older = now._replace(file_sha256=None)  # a row from before digests were kept cannot name its file
    assert ensemble.file_here(older, tmp_path) is None
    assert ensemble.file_here(older, tmp_path, run, prepared, table)[1].file_sha256 == measure.file_digest(path)


def test_a_committed_deliverable_file_stands_in_for_a_missing_codec_file(tmp_path):
    """A fresh clone has no run folders, and a float16 copy of a run's weights may encode to other bytes
    than the float32 weights that were measured: the committed deliverable file with the row's sha256
    is the measured file, so it is used (copied to the run folder's codec path) and the row stays."""
    from fer_utils import runs

    model = models.build("mobilenet", 0.15)
    src = tmp_path / "elsewhere.int8"
    compress.encode(model, src, "int8")
    committed = tmp_path / "results" / "weights"
    committed.mkdir(parents=True)
    (committed / "best-strong-2.int8").write_bytes(src.read_bytes())
    (committed / "notes.txt").write_text("not a deliverable file")
    row = SimpleNamespace(run_id="gone", codec="int8", file_sha256=measure.file_digest(src), bytes=src.stat().st_size)
    assert ensemble.committed_copy(row.file_sha256, committed) == committed / "best-strong-2.int8"
    assert ensemble.committed_copy("0" * 64, committed) is None
    runs_root = tmp_path / "runs"
    assert not runs.has_weights("gone", runs_root)  # no weights, no registry row: only the committed file
    found = ensemble.file_here(row, runs_root, committed=committed)
    path = measure.codec_path("gone", "int8", runs_root)
    assert found == (path, row) and path.read_bytes() == src.read_bytes()
    lost = SimpleNamespace(**{**vars(row), "run_id": "lost", "file_sha256": "1" * 64})  # nothing has its bytes
    assert ensemble.file_here(lost, runs_root, committed=committed) is None
    assert not measure.codec_path("lost", "int8", runs_root).exists()


def test_a_float16_copy_alone_is_not_measured_again(tmp_path, monkeypatch):
    """A fresh clone has a run's float16 copy, not the float32 weights its codec rows measured: a row
    whose bytes the copy does not reproduce has no file here (the committed row stands), while one it
    reproduces keeps its row."""
    from fer_utils import data, runs

    model = models.build("mobilenet", 0.15)
    runs.export_weights(model, "r", tmp_path / "results")
    copy = runs.exported_path("r", tmp_path / "results")
    monkeypatch.setattr(runs, "_exported", lambda run_id: copy if run_id == "r" else None)
    run = {"run_id": "r", "arch": "mobilenet", "width": 0.15, "params": model.count_params(), "data_source": "synthetic",
           "timestamp": "t0"}
    runs_root, table = tmp_path / "runs", tmp_path / "codecs.csv"
    assert runs.has_weights("r", runs_root) and not runs.weights_path("r", runs_root).exists()
    prepared = runs.prepare(data.synthetic(140, seed=2), config.PROFILES["smoke"])
    path = measure.codec_path("r", "int8", runs_root)
    compress.encode(runs.load_trained(run, runs_root), tmp_path / "same.int8", "int8")
    same = SimpleNamespace(run_id="r", codec="int8", file_sha256=measure.file_digest(tmp_path / "same.int8"), bytes=0)
    assert ensemble.file_here(same, runs_root, run, prepared, table, committed=tmp_path) == (path, same)
    path.unlink()
    other = SimpleNamespace(**{**vars(same), "file_sha256": "0" * 64})  # measured on the float32 weights
    assert ensemble.file_here(other, runs_root, run, prepared, table, committed=tmp_path) is None
    assert not path.exists() and not table.exists()  # nothing measured, no file left behind


def test_every_start_is_tried_so_a_large_best_file_does_not_crowd_out_a_better_pair():
    labels = np.arange(N) % 7
    idx = np.arange(N)
    big = {"run_id": "big", "codec": "int8", "bytes": 150, **{s: designed(labels, idx < 0.7 * N) for s in ensemble.SPLITS}}
    a = {"run_id": "a", "codec": "int8", "bytes": 90, **{s: designed(labels, idx < 0.65 * N) for s in ensemble.SPLITS}}
    b = {"run_id": "b", "codec": "int8", "bytes": 90, **{s: designed(labels, idx >= 0.4 * N) for s in ensemble.SPLITS}}
    assert [m["run_id"] for m in ensemble.greedy([big, a, b], labels, room=200)] == ["big"]  # no room left for a pair
    assert [m["run_id"] for m in ensemble.best_ensemble([big, a, b], labels, room=200)] == ["a", "b"]  # 1.0 > 0.7


def test_cached_outputs_are_computed_once_and_read_back_exactly(tmp_path):
    cache, calls = tmp_path / "c" / "x.npz", []
    exact = np.array([[0.1, 0.2, 0.7], [1 / 3, 1 / 3, 1 / 3]])  # not representable in float32

    def compute(found):
        calls.append(dict(found))
        return {**found, "a": exact}

    first = ensemble.cached_outputs(cache, compute)
    again = ensemble.cached_outputs(cache, compute)
    assert len(calls) == 1 and calls[0] == {}  # the second call reads the file
    assert again["a"].dtype == np.float64 and np.array_equal(again["a"], first["a"])  # float64: what was scored
    assert not list(cache.parent.glob("*.tmp.npz"))  # written atomically, nothing left beside it
    # a cache that no longer serves: compute sees what it holds, may keep part, and the file gains the rest
    more = ensemble.cached_outputs(cache, lambda found: {**found, "b": exact * 2}, reuse=lambda found: "b" in found)
    assert set(more) == {"a", "b"}
    with np.load(cache) as z:
        assert set(z.files) == {"a", "b"} and np.array_equal(z["b"], exact * 2)


def test_codec_outputs_gain_only_their_missing_tta_keys(three_files, monkeypatch):
    runs_root, cache, codecs, prepared = three_files
    c = codecs.iloc[0]
    with np.load(cache / f"{c.file_sha256}.npz") as z:
        plain = {k: z[k] for k in ("PublicTest", "PrivateTest")}
    np.savez(cache / f"{c.file_sha256}.npz", **plain)  # an older cache: plain outputs only
    seen = []

    def fake(model, x, mirror=False, plain=None):
        seen.append(mirror)
        return np.full((len(x), 7), 1 / 7)

    monkeypatch.setattr(compress, "decode", lambda path: None)
    monkeypatch.setattr(predict, "probabilities", fake)
    got = ensemble.outputs(runs_root / "unused", c.file_sha256, prepared, cache, mirror=True)
    assert seen == [True, True]  # the two TTA splits only: the plain outputs came from the cache
    assert np.array_equal(got["PublicTest"], plain["PublicTest"]) and set(got) == {
        "PublicTest", "PrivateTest", "PublicTest_tta", "PrivateTest_tta"}
