"""The training recipe shared by every run and fine-tune: augmentation, targets, its registry spelling.

Augmentation runs as Keras preprocessing layers inside the compiled training step
(:func:`training_model`), so it needs no tf.data pipeline and never touches evaluation.
"""
from __future__ import annotations

import keras
import numpy as np

from . import config
from .constants import NUM_CLASSES


AUGMENT = config.augment_text()


RECIPE = f"adam1e-3|{AUGMENT}|plateau/5|es-best|val10%"


PRECISIONS = config.PRECISIONS


def describe(prof: config.Profile, precision: str = "float32") -> str:
    """The recipe string of a registry row: optimizer, augmentation, the profile's schedule, the precision.

    Budgeted runs read ``adam|aug:…|wsd200/warm2/decay0.2/peak0.003|best-val|val10%|bs128`` (``valPublicTest``
    where PublicTest picks the best epoch, ``Profile.validation``); the
    first recipe's rows keep their old spelling (``…|plateau/5|es-best|val10%|ep60/es10/lr4/bs64``).
    """
    sched = prof.lr_schedule()
    if sched is None:
        text = f"{RECIPE}|ep{prof.epochs}/es{prof.patience}/lr{prof.lr_patience}/bs{prof.batch_size}"
    else:
        text = f"adam|{config.augment_text(prof.augment)}|{sched.describe()}|best-val|{config.VALIDATION_PARTS[prof.validation]}|bs{prof.batch_size}"
    return text + (f"|{PRECISIONS[precision]}" if PRECISIONS[precision] else "")


def augmenter(seed: int, augment: str = "standard"):
    """The augmentation pipeline (``augment``: a key of :data:`config.AUGMENTS`): Keras preprocessing layers, seeded."""
    config.augment_text(augment)  # an unknown name is a clear error
    a = config.AUGMENTS[augment]
    layers = [keras.layers.RandomFlip("horizontal", seed=seed)]
    # a factor of 0 (``flip``) leaves its layer out rather than running an identity transform
    if a["rot"]:
        layers.append(keras.layers.RandomRotation(a["rot"], fill_mode="nearest", seed=seed + 1))
    if a["trans"]:
        layers.append(keras.layers.RandomTranslation(a["trans"], a["trans"], fill_mode="nearest", seed=seed + 2))
    if a["zoom"]:
        layers.append(keras.layers.RandomZoom(a["zoom"], fill_mode="nearest", seed=seed + 3))
    return keras.Sequential(layers, name="augment")


@keras.saving.register_keras_serializable(package="fer_utils")
class WithTeacher(keras.layers.Layer):
    """The student and a frozen teacher on the same (augmented) batch: ``[student's softmax | teacher's]``.

    The last layer of :func:`training_model`'s wrapper when a teacher runs in the loop
    (:mod:`fer_utils.distill`, ``view="online"``): the teacher sees exactly the view the student is
    trained on, in inference mode (its BatchNorm and dropout fixed) and without gradients.
    """

    def __init__(self, student, teacher, **kwargs):
        super().__init__(**kwargs)
        self.student, self.teacher = student, teacher
        self.teacher.trainable = False

    def call(self, x, training=None):
        ops = keras.ops
        t = ops.stop_gradient(ops.cast(self.teacher(x, training=False), "float32"))
        return ops.concatenate([ops.cast(self.student(x, training=training), "float32"), t], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * NUM_CLASSES)

    def get_config(self):
        return {**super().get_config(), "student": keras.saving.serialize_keras_object(self.student),
                "teacher": keras.saving.serialize_keras_object(self.teacher)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        student = keras.saving.deserialize_keras_object(config.pop("student"))
        teacher = keras.saving.deserialize_keras_object(config.pop("teacher"))
        return cls(student, teacher, **config)


@keras.saving.register_keras_serializable(package="fer_utils")
class MirrorPaired(keras.layers.Layer):
    """The mirror augmentation with its draw in the output: ``[student's softmax | 1 where mirrored, else 0]``.

    In training each image is mirrored left-right with probability 1/2 (seeded; the draw's state is
    saved with a checkpoint, like the augmentation layers'); in inference nothing is mirrored and the
    flag is 0. The wrapper of :func:`training_model` with ``paired=True``: a loss reading the flag
    (:class:`fer_utils.distill.PairedDistillationLoss`) gives each image the teacher's distribution of
    the very view the student saw, precomputed for the image and for its mirror.
    """

    def __init__(self, student, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.student, self.seed = student, int(seed)
        self.generator = keras.random.SeedGenerator(self.seed)

    def call(self, x, training=None):
        ops = keras.ops
        n = ops.shape(x)[0]
        if training:
            flag = ops.cast(keras.random.uniform((n, 1), seed=self.generator) < 0.5, "float32")
            x = ops.where(ops.reshape(flag, (-1, 1, 1, 1)) > 0, ops.flip(x, axis=2), x)
        else:
            flag = ops.zeros((n, 1), "float32")
        return ops.concatenate([ops.cast(self.student(x, training=training), "float32"), flag], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], NUM_CLASSES + 1)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed,
                "student": keras.saving.serialize_keras_object(self.student)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        student = keras.saving.deserialize_keras_object(config.pop("student"))
        return cls(student, **config)


def training_model(model, seed: int, teacher=None, augment: str = "standard", paired: bool = False):
    """``model`` behind the augmentation layers, for ``fit`` only.

    Keras' random preprocessing layers act only when ``training=True``, so the
    augmentation runs inside the compiled training step on every backend (no
    tf.data needed) and never at evaluation. The wrapper shares ``model``'s
    weights; only ``model`` itself is saved as a run's weights. With a ``teacher`` (a Keras model),
    the wrapper's last layer is :class:`WithTeacher` and its output ``[model's | teacher's]``
    softmax on the same view. ``paired`` (``augment="flip"`` only, no ``teacher``): the mirror is drawn by
    :class:`MirrorPaired`, whose output ``[model's softmax | mirrored flag]`` lets precomputed targets
    follow it. :func:`student_of` finds ``model`` again.
    """
    if paired:
        if augment != "flip" or teacher is not None:
            raise ValueError(f"paired targets follow the mirror alone: they need augment 'flip' and no teacher "
                             f"in the loop, got augment {augment!r}" + (" and a teacher" if teacher is not None else ""))
        return keras.Sequential([keras.Input(model.input_shape[1:]), MirrorPaired(model, seed, name="mirror_paired")],
                                name=f"train_{model.name}")
    last = model if teacher is None else WithTeacher(model, teacher, name="with_teacher")
    return keras.Sequential([keras.Input(model.input_shape[1:]), augmenter(seed, augment), last],
                            name=f"train_{model.name}")


def student_of(wrapper):
    """The model a :func:`training_model` wrapper trains (also a wrapper read back from a checkpoint)."""
    last = wrapper.layers[-1]
    return last.student if isinstance(last, (WithTeacher, MirrorPaired)) else last


def fit_targets(y: np.ndarray) -> np.ndarray:
    """What ``fit`` is given without distillation: one-hot labels."""
    return np.eye(NUM_CLASSES, dtype=np.float32)[y]
