"""Predict from compressed weights files alone, as the course graded it.

    python -m fer_utils.predict --weights FILE [FILE ...] --input test.csv --output submission.csv

The input is the course's ``test.csv`` (``id,feature``) or a Kaggle-schema CSV
(``emotion,pixels,Usage``; ids are the 0-based row numbers). The output is the
Kaggle submission ``id,label``. Several files (or a folder: its ``weights*`` files in name
order) are an ensemble: their softmax outputs are averaged, in that order. Predicting twice
gives byte-identical files.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

BATCH_SIZE = 256
#: mirror test-time augmentation by default (``--no-tta`` turns it off), decided by measurement:
#: on both chosen deliverables it raised PublicTest accuracy (``results/deliverables.csv``, notebook 04)
MIRROR_TTA = True


def load_inputs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(ids, uint8 images) of a course test CSV or a Kaggle-schema CSV."""
    from . import data

    header = data.read_header(path)
    if "id" in header and "feature" in header:
        ds = data.load_course_test_csv(path)
        return ds.meta["test_ids"], ds.images
    if "emotion" in header and "pixels" in header:
        ds = data.load_kaggle_csv(path)
        return np.arange(len(ds)), ds.images
    raise ValueError(f"{path}, line 1: unrecognised header {header!r}; expected id,feature (course test.csv) "
                     "or emotion,pixels,Usage (Kaggle)")


def probabilities(model, x: np.ndarray, mirror: bool = False, plain: np.ndarray | None = None) -> np.ndarray:
    """Softmax outputs (float64) for images scaled to [0, 1], shape (n, 48, 48, 1).

    ``mirror``: test-time augmentation, the mean of each image's outputs and its left-right
    mirror's (``plain``: the unmirrored outputs, when already computed). Deterministic; an image
    equal to its mirror keeps its outputs exactly.
    """
    if plain is None:
        plain = model.predict(x, batch_size=BATCH_SIZE, verbose=0).astype(np.float64)
    if not mirror:
        return plain
    flipped = model.predict(np.ascontiguousarray(x[:, :, ::-1]), batch_size=BATCH_SIZE, verbose=0)
    return (plain + flipped.astype(np.float64)) / 2.0


def mean_probabilities(members: list[np.ndarray]) -> np.ndarray:
    """An ensemble's output: its members' probabilities summed in the given order, over their number
    (one member: its own probabilities, exactly)."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    total = np.zeros_like(members[0], dtype=np.float64)
    for p in members:
        total = total + p
    return total / len(members)


def predict_labels(model, images: np.ndarray, mirror: bool = MIRROR_TTA) -> np.ndarray:
    """Labels of uint8 ``images`` from a model, or from a list of models (an ensemble, :func:`mean_probabilities`)."""
    x = images.astype(np.float32) / 255.0
    models = model if isinstance(model, (list, tuple)) else [model]
    return np.argmax(mean_probabilities([probabilities(m, x, mirror) for m in models]), axis=1)


def weight_files(weights) -> list[Path]:
    """The files of ``weights``: a file, several files (their order is the ensemble's), or a folder
    (its ``weights*`` files, in name order: how a deliverable folder holds an ensemble)."""
    items = [Path(w) for w in (weights if isinstance(weights, (list, tuple)) else [weights])]
    out = []
    for w in items:
        if w.is_dir():
            found = sorted(p for p in w.iterdir() if p.is_file() and p.name.startswith("weights"))
            if not found:
                raise FileNotFoundError(f"{w}: folder holds no weights* file")
            out += found
        elif not w.is_file():
            raise FileNotFoundError(f"{w}: weights file not found")
        else:
            out.append(w)
    return out


def write_submission(path: Path, ids: np.ndarray, labels: np.ndarray) -> None:
    lines = ["id,label"] + [f"{int(i)},{int(lab)}" for i, lab in zip(ids, labels)]
    Path(path).write_text("\n".join(lines) + "\n")


def run(weights, input_path: Path, output: Path, mirror: bool = MIRROR_TTA) -> np.ndarray:
    """Write the submission of a weights file, or of an ensemble of them (:func:`weight_files`)."""
    from . import compress

    model = [compress.decode(w) for w in weight_files(weights)]
    ids, images = load_inputs(Path(input_path))
    labels = predict_labels(model, images, mirror)
    write_submission(output, ids, labels)
    return labels


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write a Kaggle submission from compressed weights files.")
    parser.add_argument("--weights", required=True, type=Path, nargs="+",
                        help="a weights file; several (or a folder of weights* files): an ensemble, outputs averaged")
    parser.add_argument("--input", required=True, type=Path)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=MIRROR_TTA,
                        help="average each image's prediction with its mirror's (default: %(default)s)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        labels = run(args.weights, args.input, args.output, args.tta)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(labels):,} predictions to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
