"""FER2013 data layer: one dataset type, three on-disk formats, discovery, validation.

Formats
-------
* Kaggle CSV (``emotion,pixels,Usage``), plain or ``.gz``.
* Course CSVs: ``train.csv`` (``label,feature``) and ``test.csv`` (``id,feature``).
* Image folders: ``train/<class>/*.png|jpg`` and ``test/<class>/...``; file names
  starting ``PublicTest_`` / ``PrivateTest_`` keep the original split.

Every problem in a file raises ``ValueError`` naming the file, the line (or the
image path) and the problem; no row is ever dropped silently.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import paths

from .constants import (CLASSES, FER2013_COUNTS, IMAGE_SIZE, NUM_CLASSES, NUM_PIXELS,  # noqa: F401 (re-exported)
                        SPLITS, TEST_SPLIT, UNLABELLED)

_FOLDER_NAMES = {name.lower(): i for i, name in enumerate(CLASSES)}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm"}
_PIXEL_CHARS = b"0123456789 "


@dataclass
class FERDataset:
    """Images ``uint8 (N,48,48,1)``, labels ``int64 (N,)``, split name per row; ``rows``: each image's
    row in the data set it was loaded as (0-based; a subset keeps its images' rows), which is how a
    teacher's committed soft targets find their images (:mod:`fer_utils.teachers`)."""

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    source: str
    synthetic: bool = False
    meta: dict = field(default_factory=dict)
    rows: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1) or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N,48,48,1), got {self.images.dtype} {self.images.shape}")
        if self.labels.shape != (n,) or self.splits.shape != (n,):
            raise ValueError("images, labels and splits must have the same length")
        self.rows = np.arange(n) if self.rows is None else np.asarray(self.rows, dtype=np.int64)
        if self.rows.shape != (n,):
            raise ValueError("rows must have one entry per image")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def label(self) -> str:
        """Short human label for titles and tables; says 'synthetic' when it is."""
        if self.synthetic:
            return synthetic_label(self.meta.get("n", len(self)), self.meta.get("seed", "?"))
        return f"FER2013 ({Path(self.source).name})"

    def subset(self, split: str) -> "FERDataset":
        mask = self.splits == split
        return self.take(np.flatnonzero(mask))

    def take(self, index: np.ndarray) -> "FERDataset":
        return FERDataset(self.images[index], self.labels[index], self.splits[index],
                          self.source, self.synthetic, dict(self.meta), self.rows[index])

    def split_names(self) -> list[str]:
        present = set(self.splits.tolist())
        return [s for s in (*SPLITS, TEST_SPLIT) if s in present]

    def counts(self):
        """Per-split, per-class counts as a DataFrame (rows: splits, columns: classes)."""
        import pandas as pd

        rows = {}
        for split in self.split_names():
            lab = self.labels[self.splits == split]
            rows[split] = [int(np.sum(lab == c)) for c in range(NUM_CLASSES)]
        df = pd.DataFrame.from_dict(rows, orient="index", columns=list(CLASSES))
        df["total"] = df.sum(axis=1)
        return df

    def fingerprint(self) -> str:
        """Short content hash: run folders and results rows are keyed by it."""
        h = hashlib.sha256()
        h.update(self.images.tobytes())
        h.update(self.labels.astype(np.int64).tobytes())
        h.update("\n".join(self.splits.tolist()).encode())
        return h.hexdigest()[:12]


# --------------------------------------------------------------------------- helpers
def _read_bytes(path: Path) -> bytes:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: not a readable gzip file ({exc})") from exc
    return raw


def _lines(path: Path) -> list[bytes]:
    raw = _read_bytes(path)
    lines = raw.split(b"\n")
    if lines and lines[-1].strip() == b"":
        lines.pop()
    lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
    if not lines or (len(lines) == 1 and not lines[0].strip()):
        raise ValueError(f"{path}: file is empty")
    return lines


def _header(path: Path, line: bytes, required: tuple[str, ...]) -> dict[str, int]:
    names = [c.strip().strip('"').strip().lower() for c in line.decode("utf-8", "replace").lstrip("\ufeff").split(",")]
    missing = [c for c in required if c.lower() not in names]
    if missing:
        raise ValueError(
            f"{path}, line 1: missing column(s) {', '.join(missing)}; header is {','.join(names)!r}, "
            f"expected {','.join(required)}")
    return {c: names.index(c.lower()) for c in required}


def _fields(path: Path, lineno: int, line: bytes, ncols: int) -> list[bytes]:
    parts = line.split(b",")
    if len(parts) != ncols:
        raise ValueError(f"{path}, line {lineno}: expected {ncols} comma-separated fields, found {len(parts)}")
    return [p.strip().strip(b'"').strip() for p in parts]


def _parse_int(path: Path, lineno: int, value: bytes, what: str, lo: int | None = None,
               hi: int | None = None) -> int:
    try:
        out = int(value)
    except ValueError:
        raise ValueError(f"{path}, line {lineno}: {what} {value.decode(errors='replace')!r} is not an integer") from None
    if (lo is not None and out < lo) or (hi is not None and out > hi):
        raise ValueError(f"{path}, line {lineno}: {what} {out} is outside {lo}..{hi}")
    return out


def _parse_pixels(path: Path, lineno: int, value: bytes) -> np.ndarray:
    bad = value.translate(None, _PIXEL_CHARS)
    if bad:
        token = next(t for t in value.split() if t.translate(None, b"0123456789"))
        raise ValueError(f"{path}, line {lineno}: pixel {token.decode(errors='replace')!r} is not an integer in 0..255")
    pix = np.fromstring(value, dtype=np.int32, sep=" ") if value.strip() else np.zeros(0, np.int32)
    if pix.size != NUM_PIXELS:
        raise ValueError(f"{path}, line {lineno}: expected {NUM_PIXELS} pixels (48x48), found {pix.size}")
    if pix.max() > 255:
        raise ValueError(f"{path}, line {lineno}: pixel value {int(pix.max())} is outside 0..255")
    return pix.astype(np.uint8)


def _finish(images: list[np.ndarray], labels, splits, path: Path) -> FERDataset:
    if not images:
        raise ValueError(f"{path}: file has a header but no data rows")
    arr = np.stack(images).reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1)
    return FERDataset(arr, np.asarray(labels, dtype=np.int64), np.asarray(splits, dtype=object).astype(str),
                      str(path))


# --------------------------------------------------------------------------- loaders
def load_kaggle_csv(path: str | os.PathLike) -> FERDataset:
    """Load the original Kaggle file (``emotion,pixels,Usage``), plain or gzip."""
    path = Path(path)
    lines = _lines(path)
    cols = _header(path, lines[0], ("emotion", "pixels", "Usage"))
    ncols = len(lines[0].split(b","))
    images, labels, splits = [], [], []
    for i, line in enumerate(lines[1:], start=2):
        f = _fields(path, i, line, ncols)
        labels.append(_parse_int(path, i, f[cols["emotion"]], "emotion", 0, NUM_CLASSES - 1))
        usage = f[cols["Usage"]].decode(errors="replace")
        if usage not in SPLITS:
            raise ValueError(f"{path}, line {i}: unknown Usage {usage!r}; expected one of {', '.join(SPLITS)}")
        splits.append(usage)
        images.append(_parse_pixels(path, i, f[cols["pixels"]]))
    return _finish(images, labels, splits, path)


def load_course_csv(train_path: str | os.PathLike, test_path: str | os.PathLike | None = None) -> FERDataset:
    """Load the course files: ``train.csv`` (``label,feature``) and optional ``test.csv`` (``id,feature``).

    Training rows get split ``Training``; test rows split ``Test`` with label -1
    (the course test file carries no labels). ``meta['test_ids']`` keeps the ids.
    """
    train_path = Path(train_path)
    lines = _lines(train_path)
    cols = _header(train_path, lines[0], ("label", "feature"))
    ncols = len(lines[0].split(b","))
    images, labels, splits = [], [], []
    for i, line in enumerate(lines[1:], start=2):
        f = _fields(train_path, i, line, ncols)
        labels.append(_parse_int(train_path, i, f[cols["label"]], "label", 0, NUM_CLASSES - 1))
        images.append(_parse_pixels(train_path, i, f[cols["feature"]]))
        splits.append("Training")
    ds = _finish(images, labels, splits, train_path)
    if test_path is not None:
        test = load_course_test_csv(test_path)
        ds = concat([ds, test], source=str(train_path))
        ds.meta["test_ids"] = test.meta["test_ids"]
    return ds


def load_course_test_csv(path: str | os.PathLike) -> FERDataset:
    """Load a course ``test.csv`` (``id,feature``): unlabelled rows, split ``Test``."""
    path = Path(path)
    lines = _lines(path)
    cols = _header(path, lines[0], ("id", "feature"))
    ncols = len(lines[0].split(b","))
    images, ids = [], []
    for i, line in enumerate(lines[1:], start=2):
        f = _fields(path, i, line, ncols)
        ids.append(_parse_int(path, i, f[cols["id"]], "id", 0))
        images.append(_parse_pixels(path, i, f[cols["feature"]]))
    ds = _finish(images, [UNLABELLED] * len(ids), [TEST_SPLIT] * len(ids), path)
    ds.meta["test_ids"] = np.asarray(ids, dtype=np.int64)
    return ds


def load_image_folders(root: str | os.PathLike) -> FERDataset:
    """Load ``root/train/<class>/*`` and ``root/test/<class>/*`` image folders.

    Class folders are named after the classes (any case) or their digits 0..6.
    A ``PublicTest_``/``PrivateTest_``/``Training_`` file-name prefix sets the
    split; otherwise ``train`` files are Training and ``test`` files are Test.
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: folder not found")
    images, labels, splits = [], [], []
    subdirs = [d for d in ("train", "test") if (root / d).is_dir()]
    if not subdirs:
        raise ValueError(f"{root}: expected a train/ and/or test/ folder of class folders")
    for sub in subdirs:
        for class_dir in sorted(p for p in (root / sub).iterdir() if p.is_dir()):
            key = class_dir.name.lower()
            if key in _FOLDER_NAMES:
                label = _FOLDER_NAMES[key]
            elif key.isdigit() and int(key) < NUM_CLASSES:
                label = int(key)
            else:
                raise ValueError(f"{class_dir}: unknown class folder; expected one of "
                                 f"{', '.join(c.lower() for c in CLASSES)} or 0..6")
            for img_path in sorted(class_dir.iterdir()):
                if img_path.suffix.lower() not in _IMAGE_SUFFIXES:
                    raise ValueError(f"{img_path}: not an image file (expected {', '.join(sorted(_IMAGE_SUFFIXES))})")
                try:
                    with Image.open(img_path) as im:
                        arr = np.asarray(im.convert("L"), dtype=np.uint8)
                except (UnidentifiedImageError, OSError) as exc:
                    raise ValueError(f"{img_path}: unreadable image ({exc})") from exc
                if arr.shape != (IMAGE_SIZE, IMAGE_SIZE):
                    raise ValueError(f"{img_path}: image is {arr.shape[1]}x{arr.shape[0]}, expected 48x48")
                prefix = img_path.name.split("_", 1)[0]
                split = prefix if prefix in SPLITS else ("Training" if sub == "train" else TEST_SPLIT)
                images.append(arr)
                labels.append(label)
                splits.append(split)
    if not images:
        raise ValueError(f"{root}: no images found")
    return _finish(images, labels, splits, root)


def concat(parts: list[FERDataset], source: str) -> FERDataset:
    return FERDataset(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]),
                      np.concatenate([p.splits for p in parts]), source,
                      any(p.synthetic for p in parts))


def load_path(path: str | os.PathLike) -> FERDataset:
    """Load whichever format ``path`` is: a Kaggle or course CSV, or a folder holding one."""
    path = Path(path)
    if path.is_dir():
        for name in ("fer2013.csv", "fer2013.csv.gz"):
            if (path / name).exists():
                return load_kaggle_csv(path / name)
        if (path / "train.csv").exists():
            test = path / "test.csv"
            return load_course_csv(path / "train.csv", test if test.exists() else None)
        return load_image_folders(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    header = read_header(path)
    if "emotion" in header and "pixels" in header:
        return load_kaggle_csv(path)
    if "label" in header and "feature" in header:
        test = path.with_name("test.csv")
        return load_course_csv(path, test if test.exists() else None)
    if "id" in header and "feature" in header:
        return load_course_test_csv(path)
    raise ValueError(f"{path}, line 1: unrecognised header {header!r}; expected emotion,pixels,Usage "
                     "(Kaggle) or label,feature / id,feature (course)")


def read_header(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            first = fh.readline()
    except OSError as exc:
        raise ValueError(f"{path}: unreadable ({exc})") from exc
    if not first.strip():
        raise ValueError(f"{path}: file is empty")
    return first.decode("utf-8", "replace").lstrip("\ufeff").strip().lower()


# --------------------------------------------------------------------------- discovery
#: size of the embedded synthetic default (same three splits, FER2013 proportions)
SYNTHETIC_DEFAULT_N = 8000
SYNTHETIC_DEFAULT_SEED = 0


def discover(verbose: bool = True) -> tuple[str, Path | None]:
    """Pick the data source: ``FER2013_PATH`` → data/fer2013.csv(.gz) → data/train.csv → data/train/ → synthetic.

    Returns ``(kind, path)``; ``path`` is None for the synthetic default.
    """
    env = os.environ.get("FER2013_PATH")
    if env:
        p = Path(env).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"FER2013_PATH={env}: no such file or folder")
        choice = ("FER2013_PATH", p)
    else:
        choice = ("synthetic", None)
        for name in ("fer2013.csv", "fer2013.csv.gz", "train.csv", "train"):
            if (paths.DATA_DIR / name).exists():
                choice = (f"data/{name}", paths.DATA_DIR / name)
                break
    if verbose:
        where = choice[1] if choice[1] is not None else "embedded synthetic default (no FER2013 found)"
        print(f"data source: {choice[0]} -> {where}")
    return choice


def load(verbose: bool = True) -> FERDataset:
    """Load whichever source :func:`discover` picks, printing the choice and the time taken."""
    kind, path = discover(verbose)
    t0 = time.perf_counter()
    if path is None:
        ds = synthetic_default()
    else:
        ds = load_path(path if path.name != "train" else path.parent)
    if verbose:
        counts = ", ".join(f"{s} {int(np.sum(ds.splits == s)):,}" for s in ds.split_names())
        print(f"loaded {len(ds):,} images ({counts}) from {ds.label} in {time.perf_counter() - t0:.1f} s")
    return ds


def synthetic_label(n, seed) -> str:
    """How synthetic data is named in every title and table."""
    return f"synthetic ({n} faces, seed {seed})"


def synthetic(n: int = SYNTHETIC_DEFAULT_N, seed: int = SYNTHETIC_DEFAULT_SEED) -> FERDataset:
    """Draw the synthetic FER-format data set (see :mod:`fer_utils.synthetic`)."""
    from .synthetic import generate

    images, labels, splits = generate(n, seed)
    return FERDataset(images, labels, splits, f"synthetic(n={n}, seed={seed})", synthetic=True,
                      meta={"n": n, "seed": seed})


def write_kaggle_csv(ds: FERDataset, path: str | os.PathLike) -> Path:
    """Write a dataset in the Kaggle schema (gzip when the name ends in .gz)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = ds.images.reshape(len(ds), -1)
    body = ["emotion,pixels,Usage"]
    body += [f"{int(lab)},{' '.join(map(str, row.tolist()))},{split}"
             for lab, row, split in zip(ds.labels, flat, ds.splits)]
    data = ("\n".join(body) + "\n").encode()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(gzip.compress(data, compresslevel=1, mtime=0) if path.suffix == ".gz" else data)
    tmp.replace(path)
    return path


def synthetic_default(n: int = SYNTHETIC_DEFAULT_N, seed: int = SYNTHETIC_DEFAULT_SEED) -> FERDataset:
    """The embedded default, cached as a Kaggle-schema CSV and read back through the same loader."""
    # keyed by the generator's source too, so a changed generator never reads a stale cache
    version = hashlib.sha256((Path(__file__).parent / "synthetic.py").read_bytes()).hexdigest()[:8]
    cache = paths.BUILD_DIR / "data" / f"synthetic-n{n}-seed{seed}-{version}.csv.gz"
    if not cache.exists():
        write_kaggle_csv(synthetic(n, seed), cache)
    ds = load_kaggle_csv(cache)
    ds.synthetic = True
    ds.meta.update({"n": n, "seed": seed})
    return ds


# --------------------------------------------------------------------------- splits
def train_val_split(ds: FERDataset, val_fraction: float = 0.1, seed: int = 0) -> tuple[FERDataset, FERDataset]:
    """Stratified, seeded validation split carved from the Training rows."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    train_idx = np.flatnonzero(ds.splits == "Training")
    if len(train_idx) == 0:
        raise ValueError(f"{ds.source}: no Training rows to split")
    rng = np.random.default_rng(seed)
    val = []
    for c in range(NUM_CLASSES):
        idx = train_idx[ds.labels[train_idx] == c]
        k = int(round(len(idx) * val_fraction))
        val.append(rng.permutation(idx)[:k])
    val_idx = np.sort(np.concatenate(val))
    keep = np.setdiff1d(train_idx, val_idx)
    return ds.take(keep), ds.take(val_idx)


def stratified_subset(ds: FERDataset, n: int, seed: int = 0) -> FERDataset:
    """At most ``n`` rows, drawn per class in proportion (for the smoke profile)."""
    if n >= len(ds):
        return ds
    rng = np.random.default_rng(seed)
    picks = []
    for c in np.unique(ds.labels):
        idx = np.flatnonzero(ds.labels == c)
        k = max(1, int(round(n * len(idx) / len(ds))))
        picks.append(rng.permutation(idx)[:k])
    return ds.take(np.sort(np.concatenate(picks)))


def pixel_stats(ds: FERDataset):
    """Per split and class: mean and standard deviation of the pixels, and how many images are
    near-blank (pixel standard deviation under 1)."""
    import pandas as pd

    rows = []
    for split in ds.split_names():
        part = ds.subset(split)
        for c, name in enumerate(CLASSES):
            px = part.images[part.labels == c]
            if len(px):
                rows.append({"split": split, "class": name, "mean": px.mean(), "std": px.std(),
                             "near_blank": int((px.reshape(len(px), -1).std(axis=1) < 1).sum())})
    return pd.DataFrame(rows)
