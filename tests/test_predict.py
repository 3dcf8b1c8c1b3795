"""The deliverable: predicting from a compressed file alone, byte-identical submissions, bad input."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fer_utils import compress, data, deliverable, models, predict, seeding


@pytest.fixture(scope="module")
def setup_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("deliv")
    ds = data.synthetic(120, seed=7)
    flat = ds.images.reshape(len(ds), -1)
    (tmp / "test.csv").write_text("id,feature\n" + "".join(
        f"{i},{' '.join(map(str, row.tolist()))}\n" for i, row in enumerate(flat)))
    model = models.irnet(0.5)
    weights = tmp / "model.int8"
    compress.encode(model, weights, "int8")
    return tmp, ds, weights


def test_zipapp_predicts_byte_identically(setup_files):
    tmp, ds, weights = setup_files
    size = deliverable.assemble(weights, tmp / "deliverable")
    files = sorted(p.name for p in (tmp / "deliverable").iterdir())
    assert files == ["predict.pyz", "weights.int8"]
    assert size >= sum(p.stat().st_size for p in (tmp / "deliverable").iterdir())
    outs = []
    for name in ("a.csv", "b.csv"):
        run = subprocess.run([sys.executable, str(tmp / "deliverable" / "predict.pyz"), "--weights",
                              str(tmp / "deliverable" / "weights.int8"), "--input", str(tmp / "test.csv"),
                              "--output", str(tmp / name)], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        outs.append((tmp / name).read_bytes())
    assert outs[0] == outs[1]
    lines = outs[0].decode().splitlines()
    assert lines[0] == "id,label" and len(lines) == len(ds) + 1
    # the same labels as the decoded model predicts in process
    expected = predict.predict_labels(compress.decode(weights), ds.images)
    assert [int(line.split(",")[1]) for line in lines[1:]] == expected.tolist()


def test_kaggle_schema_input(setup_files, tmp_path):
    _, ds, weights = setup_files
    csv = data.write_kaggle_csv(ds, tmp_path / "k.csv")
    labels = predict.run(weights, csv, tmp_path / "sub.csv")
    ids = [int(line.split(",")[0]) for line in (tmp_path / "sub.csv").read_text().splitlines()[1:]]
    assert ids == list(range(len(ds))) and len(labels) == len(ds)


def test_bad_inputs_give_clear_errors(setup_files, tmp_path, capsys):
    tmp, _, weights = setup_files
    assert predict.main(["--weights", str(tmp_path / "none.bin"), "--input", str(tmp / "test.csv"),
                         "--output", str(tmp_path / "o.csv")]) == 2
    assert "none.bin: weights file not found" in capsys.readouterr().err
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n")
    assert predict.main(["--weights", str(weights), "--input", str(wrong), "--output", str(tmp_path / "o.csv")]) == 2
    assert "wrong.csv, line 1: unrecognised header" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.int8"
    corrupt.write_bytes(weights.read_bytes()[:-40])
    assert predict.main(["--weights", str(corrupt), "--input", str(tmp / "test.csv"),
                         "--output", str(tmp_path / "o.csv")]) == 2
    assert "corrupt weights file" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_minify_keeps_behaviour():
    src = 'def f(x):\n    """doc"""\n    # comment\n    return x + 1\n'
    out = deliverable.minify(src)
    assert "doc" not in out and "comment" not in out
    scope = {}
    exec(out, scope)
    assert scope["f"](1) == 2


def test_deliverable_choice_is_the_best_public_file_within_each_budget(tmp_path):
    from fer_utils import compress, config, deliverable, measure, models

    runs_root, results_dir = tmp_path / "runs", tmp_path / "results"
    rows = []
    for rid, width, public in (("small", 0.15, 0.40), ("large", 0.5, 0.50)):
        path = measure.codec_path(rid, "int8", runs_root)
        path.parent.mkdir(parents=True)
        size = compress.encode(models.build("mobilenet", width), path, "int8")
        rows.append({"run_id": rid, "model": rid, "codec": "int8", "bytes": size, "public_acc": public,
                     "private_acc": public + 0.01})
    codecs = pd.DataFrame(rows)
    sizes = {r: deliverable.assemble(measure.codec_path(r, "int8", runs_root), tmp_path / r) for r in ("small", "large")}
    assert sizes["small"] < sizes["large"]
    budgets = {"roomy": config.ByteBudget(sizes["large"], 0.5), "tight": config.ByteBudget(sizes["small"], 0.42),
               "none": config.ByteBudget(100)}
    table = deliverable.choose(codecs, budgets, results_dir, runs_root, tmp_path / "build")
    assert table.set_index("budget")["run_id"].to_dict() == {"roomy": "large", "tight": "small"}  # none fits "none"
    assert table.set_index("budget")["target_met"].to_dict() == {"roomy": True, "tight": False}
    assert table.set_index("budget")["folder_bytes"].to_dict() == {"roomy": sizes["large"], "tight": sizes["small"]}
    assert sorted(p.name for p in (results_dir / "weights").iterdir()) == ["best-roomy.int8", "best-tight.int8"]
    assert pd.read_csv(results_dir / "deliverables.csv")["run_id"].tolist() == ["large", "small"]
    # a fresh clone (no codec files here) chooses again from the rows and rebuilds from the committed files
    again = deliverable.choose(codecs, budgets, results_dir, tmp_path / "elsewhere", tmp_path / "build2")
    assert again["run_id"].tolist() == ["large", "small"]
    assert again["folder_bytes"].tolist() == [sizes["large"], sizes["small"]]
    # a better file measured elsewhere, neither here nor committed, cannot be shipped: a clear error
    better = pd.concat([codecs, pd.DataFrame([dict(rows[0], run_id="elsewhere", public_acc=0.45)])])
    with pytest.raises(FileNotFoundError, match="tight budget's best file"):
        deliverable.choose(better, budgets, results_dir, tmp_path / "elsewhere", tmp_path / "build3")
    files = deliverable.chosen_files(table, results_dir)
    assert files["tight"] == ([results_dir / "weights" / "best-tight.int8"], "small", "int8")


def test_a_fresh_clone_ships_any_committed_file_with_the_chosen_rows_sha256(tmp_path):
    """Without run folders, a budget's new choice is built from whichever committed ``best-*`` file holds
    its row's bytes (by sha256, each file hashed once), not only from the same choice's own copy."""
    from fer_utils import compress, config, deliverable, measure, models

    runs_root, results_dir = tmp_path / "runs", tmp_path / "results"
    path = measure.codec_path("large", "int8", runs_root)
    path.parent.mkdir(parents=True)
    size = compress.encode(models.build("mobilenet", 0.5), path, "int8")
    codecs = pd.DataFrame([{"run_id": "large", "model": "large", "codec": "int8", "bytes": size, "public_acc": 0.5,
                            "private_acc": 0.51, "file_sha256": measure.file_digest(path)}])
    roomy = {"roomy": config.ByteBudget(10**6, 0.5)}
    deliverable.choose(codecs, roomy, results_dir, runs_root, tmp_path / "build")
    weights = results_dir / "weights"
    assert deliverable.committed_files(weights) == {measure.file_digest(path): weights / "best-roomy.int8"}
    # a new budget chooses the same file on a machine without the run folder: the roomy copy serves it
    both = {**roomy, "other": config.ByteBudget(10**6, 0.5)}
    table = deliverable.choose(codecs, both, results_dir, tmp_path / "elsewhere", tmp_path / "build2")
    assert table["run_id"].tolist() == ["large", "large"]
    assert (weights / "best-other.int8").read_bytes() == path.read_bytes()
    # a row whose bytes nothing here holds is still a clear error
    lost = codecs.assign(file_sha256="0" * 64)
    with pytest.raises(FileNotFoundError, match="by sha256"):
        deliverable.choose(lost, {"third": config.ByteBudget(10**6)}, results_dir, tmp_path / "elsewhere",
                           tmp_path / "build3")


def test_the_target_judges_the_folder_as_it_ships_with_mirror_tta(tmp_path, monkeypatch):
    from fer_utils import compress, config, deliverable, measure, models

    runs_root, results_dir = tmp_path / "runs", tmp_path / "results"
    path = measure.codec_path("only", "int8", runs_root)
    path.parent.mkdir(parents=True)
    seeding.set_seed(0)  # the same random weights whatever ran before
    size = compress.encode(models.build("mobilenet", 0.15), path, "int8")
    model = compress.decode(path)
    images = np.random.default_rng(5).integers(0, 256, (200, 48, 48, 1), dtype=np.uint8)
    labels = predict.predict_labels(model, images, mirror=True)  # what the shipped folder outputs: all right
    plain = predict.predict_labels(model, images, mirror=False)
    x = images.astype(np.float32) / 255.0
    prepared = {"tests": {s: (x, labels) for s in ("PublicTest", "PrivateTest")}}
    plain_acc = round(float(np.mean(plain == labels)), 4)
    codecs = pd.DataFrame([{"run_id": "only", "model": "only", "codec": "int8", "bytes": size, "public_acc": plain_acc,
                            "private_acc": plain_acc, "file_sha256": measure.file_digest(path)}])
    code = deliverable.code_bytes(tmp_path / "code")
    budgets = {"b": config.ByteBudget(code + size, 1.0)}
    (row,) = deliverable.choose(codecs, budgets, results_dir, runs_root, tmp_path / "build", prepared=prepared).to_dict("records")
    assert row["public_tta_acc"] == row["private_tta_acc"] == 1.0 and row["private_acc"] == plain_acc
    assert row["target_met"]  # judged on what predict.pyz outputs by default, not on the plain files
    assert list(pd.read_csv(results_dir / "deliverables.csv").columns) == list(deliverable.CHOICE_COLUMNS)
    # without test data the same choice keeps its TTA columns from the table
    (kept,) = deliverable.choose(codecs, budgets, results_dir, runs_root, tmp_path / "build").to_dict("records")
    assert kept["private_tta_acc"] == 1.0 and kept["target_met"]
    # a deliverable shipped without TTA is judged on its plain predictions
    assert plain_acc < 1.0  # the mirror changes some of these predictions
    monkeypatch.setattr(predict, "MIRROR_TTA", False)
    (off,) = deliverable.choose(codecs, budgets, results_dir, runs_root, tmp_path / "build", prepared=prepared).to_dict("records")
    assert not off["target_met"]


def test_a_file_that_predicts_otherwise_than_measured_is_an_error(tmp_path, rng):
    from fer_utils import compress, measure, models

    path = measure.codec_path("r", "int8", tmp_path)
    path.parent.mkdir(parents=True)
    compress.encode(models.build("mobilenet", 0.15), path, "int8")
    images = rng.integers(0, 256, (20, 48, 48, 1), dtype=np.uint8)
    labels = rng.integers(0, 7, 20)
    from fer_utils import predict
    acc = float(np.mean(predict.predict_labels(compress.decode(path), images, mirror=False) == labels))
    row = {"run_id": "r", "model": "m", "codec": "int8", "bytes": path.stat().st_size}
    ok = measure.check_from_files(pd.DataFrame([{**row, "private_acc": acc}]), images, labels, tmp_path)
    assert ok["from file"].tolist() == [round(acc, 4)]
    with pytest.raises(ValueError, match=r"weights.int8: PrivateTest accuracy from the file alone"):
        measure.check_from_files(pd.DataFrame([{**row, "private_acc": acc + 0.1}]), images, labels, tmp_path)
    other = {**row, "private_acc": acc, "file_sha256": "0" * 64}  # the row measured another file
    with pytest.raises(ValueError, match=r"weights.int8: not the file its codec row measured"):
        measure.check_from_files(pd.DataFrame([other]), images, labels, tmp_path)


def test_the_shaken_zipapp_decodes_every_codec_as_the_package_does(tmp_path):
    """predict.pyz keeps only what prediction reaches (deliverable.shake): every codec family still
    decodes through it to exactly the weights the full package decodes."""
    import json

    model = models.irnet(0.5)
    files = []
    for codec in ("fp16", "int8", "int8-fold", "kmeans-4", "kmeans-3-dw8", "pruned-kmeans-4", "kmeans-4-bn2", "seed"):
        path = tmp_path / f"w.{codec}"
        compress.encode(model, path, codec)
        files.append(path)
    deliverable.write_zipapp(tmp_path / "predict.pyz")
    script = ("import sys, json, numpy as np; sys.path.insert(0, sys.argv[1]); from fer_utils import compress; "
              "print(json.dumps({p: [float(np.sum(np.abs(w), dtype=np.float64)) for w in compress.decode(p).get_weights()] "
              "for p in sys.argv[2:]}))")
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "predict.pyz"), *map(str, files)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    shaken = json.loads(run.stdout.strip().splitlines()[-1])
    for path in files:
        full = [float(np.sum(np.abs(w), dtype=np.float64)) for w in compress.decode(path).get_weights()]
        assert shaken[str(path)] == full, path.name


def test_shake_drops_only_the_functions_nothing_reaches():
    sources = {"predict": "from . import data\nfrom .data import helper as h\ndef main():\n    return data.used() + h()\n"
                          "def unused():\n    return data.never()\n",
               "data": "LIMIT = 3\ndef used():\n    return _inner()\ndef _inner():\n    return LIMIT\n"
                       "def helper():\n    return 1\ndef never():\n    return 2\nclass Kept:\n    def m(self):\n        return 0\n"}
    trees = deliverable.shake(sources)
    names = {m: [getattr(n, "name", None) for n in t.body] for m, t in trees.items()}
    assert [n for n in names["predict"] if n] == ["main"]
    assert [n for n in names["data"] if n] == ["used", "_inner", "helper", "Kept"]
