"""The data layer: loaders, validation errors that name the line, discovery, splits."""
import gzip
import re

import numpy as np
import pytest
from PIL import Image

from conftest import PIX, real_data_path
from fer_utils import data


def pixels(rng):
    return " ".join(map(str, rng.integers(0, 256, 2304)))


# --------------------------------------------------------------------------- loaders
def test_kaggle_csv_round_trip(kaggle_csv, rng):
    rows = [(3, pixels(rng), "Training"), (0, pixels(rng), "PublicTest"), (6, pixels(rng), "PrivateTest")]
    ds = data.load_kaggle_csv(kaggle_csv(rows))
    assert ds.images.shape == (3, 48, 48, 1) and ds.images.dtype == np.uint8
    assert ds.labels.tolist() == [3, 0, 6]
    assert ds.splits.tolist() == ["Training", "PublicTest", "PrivateTest"]
    first = np.array(rows[0][1].split(), dtype=np.uint8).reshape(48, 48)
    assert np.array_equal(ds.images[0, :, :, 0], first)
    assert not ds.synthetic and "FER2013" in ds.label


def test_kaggle_csv_gzip_and_crlf(tmp_path, rng):
    text = "emotion,pixels,Usage\r\n" + f"2,{pixels(rng)},Training\r\n"
    path = tmp_path / "fer2013.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    ds = data.load_kaggle_csv(path)
    assert len(ds) == 1 and ds.labels[0] == 2


def test_write_then_load_is_lossless(tmp_path):
    ds = data.synthetic(70, seed=3)
    back = data.load_kaggle_csv(data.write_kaggle_csv(ds, tmp_path / "s.csv.gz"))
    assert np.array_equal(back.images, ds.images)
    assert np.array_equal(back.labels, ds.labels)
    assert back.splits.tolist() == ds.splits.tolist()


def test_course_csvs(tmp_path, rng):
    (tmp_path / "train.csv").write_text("label,feature\n" + f"4,{pixels(rng)}\n1,{pixels(rng)}\n")
    (tmp_path / "test.csv").write_text("id,feature\n" + f"0,{pixels(rng)}\n1,{pixels(rng)}\n2,{PIX}\n")
    ds = data.load_course_csv(tmp_path / "train.csv", tmp_path / "test.csv")
    assert len(ds) == 5
    assert ds.labels.tolist() == [4, 1, -1, -1, -1]
    assert ds.splits.tolist() == ["Training"] * 2 + ["Test"] * 3
    assert ds.meta["test_ids"].tolist() == [0, 1, 2]
    # load_path recognises both the file and the folder
    assert len(data.load_path(tmp_path / "train.csv")) == 5
    assert len(data.load_path(tmp_path)) == 5


def test_image_folders(tmp_path, rng):
    for sub, cls, name in [("train", "happy", "Training_1.png"), ("train", "Angry", "Training_2.jpg"),
                           ("test", "sad", "PublicTest_3.png"), ("test", "sad", "PrivateTest_4.png"),
                           ("test", "6", "x.png")]:
        (tmp_path / sub / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(tmp_path / sub / cls / name)
    ds = data.load_image_folders(tmp_path)
    assert sorted(zip(ds.splits.tolist(), ds.labels.tolist())) == sorted(
        [("Training", 3), ("Training", 0), ("PublicTest", 4), ("PrivateTest", 4), ("Test", 6)])
    assert ds.images.shape == (5, 48, 48, 1)


# --------------------------------------------------------------------------- bad input
def _raises(path, line, pattern):
    with pytest.raises(ValueError) as err:
        data.load_kaggle_csv(path)
    msg = str(err.value)
    assert str(path) in msg, msg
    if line is not None:
        assert f"line {line}" in msg, msg
    assert re.search(pattern, msg), msg


def test_wrong_pixel_count_names_line(kaggle_csv):
    path = kaggle_csv([(0, PIX, "Training"), (1, " ".join(["3"] * 2303), "Training")])
    _raises(path, 3, r"expected 2304 pixels .* found 2303")


def test_non_integer_pixel_names_line(kaggle_csv):
    path = kaggle_csv([(0, PIX, "Training"), (0, PIX, "Training"), (1, "12.5 " + " ".join(["3"] * 2303), "Training")])
    _raises(path, 4, r"pixel '12\.5' is not an integer")


def test_out_of_range_pixel_names_line(kaggle_csv):
    path = kaggle_csv([(1, "256 " + " ".join(["3"] * 2303), "Training")])
    _raises(path, 2, r"pixel value 256 is outside 0\.\.255")


def test_negative_pixel_names_line(kaggle_csv):
    path = kaggle_csv([(1, "-4 " + " ".join(["3"] * 2303), "Training")])
    _raises(path, 2, r"pixel '-4' is not an integer in 0\.\.255")


@pytest.mark.parametrize("label", ["7", "-1", "x"])
def test_bad_label_names_line(kaggle_csv, label):
    path = kaggle_csv([(0, PIX, "Training"), (label, PIX, "Training")])
    _raises(path, 3, r"emotion .* (outside 0\.\.6|not an integer)")


def test_unknown_usage_names_line(kaggle_csv):
    path = kaggle_csv([(0, PIX, "Training"), (0, PIX, "Validation")])
    _raises(path, 3, r"unknown Usage 'Validation'")


def test_missing_column_names_header_line(kaggle_csv):
    path = kaggle_csv([(0, PIX, "Training")], header="emotion,pixels,Split")
    _raises(path, 1, r"missing column\(s\) Usage")


def test_wrong_field_count_names_line(kaggle_csv):
    path = kaggle_csv([(0, PIX, "Training,extra")])
    _raises(path, 2, r"expected 3 comma-separated fields, found 4")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    _raises(path, None, r"file is empty")
    with pytest.raises(ValueError, match="file is empty"):
        data.load_path(path)


def test_header_only_file(kaggle_csv):
    _raises(kaggle_csv([]), None, r"no data rows")


def test_course_csv_bad_label_names_line(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(f"label,feature\n0,{PIX}\n9,{PIX}\n")
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}, line 3: label 9 is outside 0\.\.6"):
        data.load_course_csv(path)


def test_unreadable_image_names_path(tmp_path):
    bad = tmp_path / "train" / "fear" / "Training_9.png"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match=rf"{re.escape(str(bad))}: unreadable image"):
        data.load_image_folders(tmp_path)


def test_wrong_image_size_names_path(tmp_path):
    bad = tmp_path / "train" / "fear" / "a.png"
    bad.parent.mkdir(parents=True)
    Image.fromarray(np.zeros((40, 48), np.uint8)).save(bad)
    with pytest.raises(ValueError, match=rf"{re.escape(str(bad))}: image is 48x40, expected 48x48"):
        data.load_image_folders(tmp_path)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nope.csv: file not found"):
        data.load_kaggle_csv("nope.csv")


# --------------------------------------------------------------------------- discovery
def test_discovery_order(tmp_path, monkeypatch, kaggle_csv):
    monkeypatch.setattr(data.paths, "DATA_DIR", tmp_path / "data")
    monkeypatch.delenv("FER2013_PATH", raising=False)
    assert data.discover(verbose=False) == ("synthetic", None)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text(f"label,feature\n0,{PIX}\n")
    assert data.discover(verbose=False)[0] == "data/train.csv"
    (tmp_path / "data" / "fer2013.csv.gz").write_bytes(b"")
    assert data.discover(verbose=False)[0] == "data/fer2013.csv.gz"
    env = kaggle_csv([(0, PIX, "Training")])
    monkeypatch.setenv("FER2013_PATH", str(env))
    assert data.discover(verbose=False) == ("FER2013_PATH", env)
    monkeypatch.setenv("FER2013_PATH", str(tmp_path / "missing.csv"))
    with pytest.raises(FileNotFoundError, match="FER2013_PATH"):
        data.discover(verbose=False)


def test_load_prints_choice(monkeypatch, kaggle_csv, capsys):
    monkeypatch.setenv("FER2013_PATH", str(kaggle_csv([(0, PIX, "Training")])))
    ds = data.load()
    out = capsys.readouterr().out
    assert "data source: FER2013_PATH" in out and "loaded 1 images" in out
    assert len(ds) == 1


# --------------------------------------------------------------------------- synthetic
def test_synthetic_is_deterministic():
    a, b, c = data.synthetic(300, seed=1), data.synthetic(300, seed=1), data.synthetic(300, seed=2)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)
    assert a.synthetic and "synthetic" in a.label


def test_synthetic_proportions_follow_fer2013():
    ds = data.synthetic(3000, seed=0)
    assert len(ds) == 3000
    table = np.array([data.FER2013_COUNTS[s] for s in data.SPLITS], dtype=float)
    expected = table / table.sum() * 3000
    got = ds.counts().drop(columns="total").loc[list(data.SPLITS)].to_numpy()
    assert np.abs(got - expected).max() <= 1.0
    frac = np.bincount(ds.labels, minlength=7) / len(ds)
    assert frac[1] == frac.min() and frac[3] == frac.max()  # Disgust rarest, Happy commonest


def test_synthetic_default_goes_through_csv_loader(tmp_path, monkeypatch):
    monkeypatch.setattr(data.paths, "BUILD_DIR", tmp_path)
    ds = data.synthetic_default(n=140, seed=5)
    (cache,) = (tmp_path / "data").glob("synthetic-n140-seed5-*.csv.gz")
    assert ds.synthetic and ds.source == str(cache)
    assert np.array_equal(ds.images, data.synthetic(140, 5).images)


# --------------------------------------------------------------------------- splits
def test_train_val_split_is_stratified_and_disjoint():
    ds = data.synthetic(2000, seed=0)
    train, val = data.train_val_split(ds, 0.1, seed=0)
    n_train = int(np.sum(ds.splits == "Training"))
    assert len(train) + len(val) == n_train
    assert set(train.splits) == set(val.splits) == {"Training"}
    full = np.bincount(ds.subset("Training").labels, minlength=7)
    assert np.all(np.abs(np.bincount(val.labels, minlength=7) - 0.1 * full) <= 1)
    again = data.train_val_split(ds, 0.1, seed=0)[1]
    assert np.array_equal(val.images, again.images)


# --------------------------------------------------------------------------- real data
REAL = real_data_path()


@pytest.mark.skipif(REAL is None, reason="real FER2013 not found (set FER2013_PATH or provide ../shared/data/fer2013)")
def test_real_fer2013_counts():
    ds = data.load_kaggle_csv(REAL)
    assert len(ds) == 35887
    counts = ds.counts()
    for split, expected in data.FER2013_COUNTS.items():
        assert tuple(counts.loc[split, list(data.CLASSES)]) == expected
    assert counts.loc["Training", "total"] == 28709
    assert counts.loc["PublicTest", "total"] == counts.loc["PrivateTest", "total"] == 3589
