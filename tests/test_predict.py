"""The deliverable: predicting from a compressed file alone, byte-identical submissions, bad input."""
import subprocess
import sys

import pytest

from fer_utils import compress, data, deliverable, models, predict


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
