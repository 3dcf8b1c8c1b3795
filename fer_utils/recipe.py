"""The training recipe shared by every run and fine-tune: augmentation, targets, its registry spelling.

Augmentation runs as Keras preprocessing layers inside the compiled training step
(:func:`training_model`), so it needs no tf.data pipeline and never touches evaluation.
"""
from __future__ import annotations

import keras
import numpy as np

from . import config
from .constants import NUM_CLASSES


AUGMENT = "aug:flip,rot0.05,trans0.1,zoom0.1"


RECIPE = f"adam1e-3|{AUGMENT}|plateau/5|es-best|val10%"


PRECISIONS = config.PRECISIONS


def describe(prof: config.Profile, precision: str = "float32") -> str:
    """The recipe string of a registry row: optimizer, augmentation, the profile's schedule, the precision.

    Budgeted runs read ``adam|aug:…|wsd200/warm2/decay0.2/peak0.003|best-val|val10%|bs128``; the
    first recipe's rows keep their old spelling (``…|plateau/5|es-best|val10%|ep60/es10/lr4/bs64``).
    """
    sched = prof.lr_schedule()
    if sched is None:
        text = f"{RECIPE}|ep{prof.epochs}/es{prof.patience}/lr{prof.lr_patience}/bs{prof.batch_size}"
    else:
        text = f"adam|{AUGMENT}|{sched.describe()}|best-val|val10%|bs{prof.batch_size}"
    return text + (f"|{PRECISIONS[precision]}" if PRECISIONS[precision] else "")


def augmenter(seed: int):
    """The augmentation pipeline: Keras preprocessing layers, seeded."""
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomRotation(0.05, fill_mode="nearest", seed=seed + 1),
        keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed + 2),
        keras.layers.RandomZoom(0.1, fill_mode="nearest", seed=seed + 3),
    ], name="augment")


def training_model(model, seed: int):
    """``model`` behind the augmentation layers, for ``fit`` only.

    Keras' random preprocessing layers act only when ``training=True``, so the
    augmentation runs inside the compiled training step on every backend (no
    tf.data needed) and never at evaluation. The wrapper shares ``model``'s
    weights; only ``model`` itself is saved as a run's weights.
    """
    return keras.Sequential([keras.Input(model.input_shape[1:]), augmenter(seed), model],
                            name=f"train_{model.name}")


def fit_targets(y: np.ndarray) -> np.ndarray:
    """What ``fit`` is given without distillation: one-hot labels."""
    return np.eye(NUM_CLASSES, dtype=np.float32)[y]
