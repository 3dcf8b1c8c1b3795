"""Architectures: the study's two seed models, their width families, and our compact design.

* ``seed_mobilenet()`` — the original compact depthwise/pointwise model, 73,663 parameters.
* ``seed_cnn()`` — the original HW3 plain CNN, 3,258,379 parameters.
* ``mobilenet(width)`` / ``cnn(width)`` — the same layer lists with every channel count
  (and the hidden dense layer) scaled by ``width``; width 1.0 is the seed model.
* ``irnet(width)`` — our design: a cheap stem, inverted-residual depthwise blocks with
  stride instead of full-resolution 5x5 convolutions, global average pooling.

All take ``(48, 48, 1)`` float input scaled to [0, 1] and end in a 7-way softmax.
"""
from __future__ import annotations

import functools

import keras
from keras import layers

from .constants import IMAGE_SIZE, NUM_CLASSES

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
#: widths of the sweeps (increasing parameter count; 1.0 is the seed model). MobileNet: 3,237 to
#: 327,104 parameters (2.0 decades), about half a decade apart at the small end where the depthwise
#: design is expected to win; 3.2 (675,508 parameters, ~8 CPU-hours on the project machine) was
#: dropped for 0.15 and 0.25, which cost minutes
MOBILENET_WIDTHS = (0.15, 0.25, 0.35, 0.5, 0.7, 1.0, 1.5, 2.2)
#: 13,099 to 3,258,379 parameters (2.4 decades)
CNN_WIDTHS = (0.0625, 0.125, 0.25, 0.5, 0.75, 1.0)
#: the two swept families of the study, by architecture name
FAMILY_WIDTHS = {"mobilenet": MOBILENET_WIDTHS, "cnn": CNN_WIDTHS}
#: widths of our design: 1.0 is the <75k-parameter model; the wider ones are deliverable candidates
IRNET_WIDTHS = (1.0, 1.2, 1.7, 2.4)


def _ch(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def mobilenet(width: float = 1.0, name: str | None = None) -> keras.Model:
    """The seed compact model's layer list with channel counts scaled by ``width``."""
    c = [_ch(n, width) for n in (24, 36, 52, 64, 84)]
    hidden = _ch(90, width)
    inp = keras.Input(INPUT_SHAPE)
    x = layers.BatchNormalization()(inp)
    x = layers.Conv2D(c[0], 5, activation="relu")(x)
    x = layers.Conv2D(c[1], 5, activation="relu")(x)
    x = layers.MaxPooling2D(2, strides=2)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Conv2D(c[2], 1, activation="relu")(x)
    x = layers.DepthwiseConv2D(5, padding="same")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(0.4)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Conv2D(c[3], 1, activation="relu")(x)
    x = layers.DepthwiseConv2D(5, padding="same")(x)
    x = layers.DepthwiseConv2D(5, padding="same")(x)
    x = layers.MaxPooling2D(2, strides=2)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Conv2D(c[4], 1, activation="relu")(x)
    x = layers.DepthwiseConv2D(5, padding="same")(x)
    x = layers.DepthwiseConv2D(5, padding="same")(x)
    x = layers.MaxPooling2D(2, strides=2)(x)
    x = layers.Dropout(0.4)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(hidden, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    out = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32")(x)
    return keras.Model(inp, out, name=name or f"mobilenet_w{width:g}")


def cnn(width: float = 1.0, name: str | None = None) -> keras.Model:
    """The HW3 plain CNN with every filter count and the hidden dense layer scaled by ``width``."""
    inp = keras.Input(INPUT_SHAPE)
    x = inp
    for f in (64, 128, 256, 256):
        x = layers.BatchNormalization()(x)
        x = layers.Conv2D(_ch(f, width), 5, padding="same")(x)
        x = layers.LeakyReLU(negative_slope=0.2)(x)
        x = layers.MaxPooling2D(2, strides=2)(x)
        x = layers.Dropout(0.4)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(_ch(256, width))(x)
    x = layers.LeakyReLU(negative_slope=0.2)(x)
    x = layers.Dropout(0.5)(x)
    out = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32")(x)
    return keras.Model(inp, out, name=name or f"cnn_w{width:g}")


def seed_mobilenet() -> keras.Model:
    """The original compact model: 73,663 parameters."""
    return mobilenet(1.0, name="seed_mobilenet")


def seed_cnn() -> keras.Model:
    """The original HW3 plain CNN: 3,258,379 parameters."""
    return cnn(1.0, name="seed_cnn")


def _inverted_residual(x, out_ch: int, stride: int, expand: int, kernel: int = 3):
    in_ch = x.shape[-1]
    h = x
    if expand != 1:
        h = layers.Conv2D(in_ch * expand, 1, use_bias=False)(h)
        h = layers.BatchNormalization()(h)
        h = layers.ReLU()(h)
    h = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False)(h)
    h = layers.BatchNormalization()(h)
    h = layers.ReLU()(h)
    h = layers.Conv2D(out_ch, 1, use_bias=False)(h)
    h = layers.BatchNormalization()(h)
    if stride == 1 and in_ch == out_ch:
        h = layers.Add()([x, h])
    return h


#: our design's stages: (output channels, stride, expansion) per block
IRNET_BLOCKS = ((20, 2, 2), (20, 1, 3), (32, 2, 3), (32, 1, 3), (48, 2, 3), (48, 1, 3), (64, 2, 3))
IRNET_STEM, IRNET_HEAD = 16, 128


def irnet(width: float = 1.0, name: str | None = None) -> keras.Model:
    """Our compact design: more accuracy per byte and far fewer FLOPs than the seed.

    A 3x3 stem at full resolution (16 channels), then inverted-residual blocks
    (1x1 expand → 3x3 depthwise → 1x1 linear project, residual where shapes
    match) that halve the resolution four times, a 1x1 head, global average
    pooling and dropout.
    """
    inp = keras.Input(INPUT_SHAPE)
    x = layers.Conv2D(_ch(IRNET_STEM, width), 3, padding="same", use_bias=False)(inp)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for out_ch, stride, expand in IRNET_BLOCKS:
        x = _inverted_residual(x, _ch(out_ch, width), stride, expand)
    x = layers.Conv2D(_ch(IRNET_HEAD, width), 1, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    out = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32")(x)
    return keras.Model(inp, out, name=name or f"irnet_w{width:g}")


ARCHITECTURES = {"mobilenet": mobilenet, "cnn": cnn, "irnet": irnet}


def build(arch: str, width: float = 1.0) -> keras.Model:
    """Build a family member by name (``mobilenet``, ``cnn``, ``irnet``)."""
    try:
        factory = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHITECTURES)}") from None
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    return factory(width)


def count_params(model: keras.Model) -> int:
    return int(model.count_params())


def layer_macs(layer) -> int:
    """Multiply-adds per image of one convolution or dense layer (0 for the others)."""
    if isinstance(layer, layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        _, h, w, c = layer.output.shape
        return int(h * w * c * kh * kw)
    if isinstance(layer, layers.Conv2D):
        kh, kw = layer.kernel_size
        cin = layer.input.shape[-1]
        _, h, w, cout = layer.output.shape
        return int(h * w * cout * kh * kw * cin // layer.groups)
    if isinstance(layer, layers.Dense):
        return int(layer.input.shape[-1] * layer.units)
    return 0


def flops(model: keras.Model) -> int:
    """Multiply-adds per image of the convolution and dense layers (the ones that matter)."""
    return sum(layer_macs(layer) for layer in model.layers)


@functools.lru_cache(maxsize=None)
def macs_of(arch: str, width: float) -> int:
    """:func:`flops` of ``build(arch, width)``, built once per process (cost estimates of unseen widths)."""
    return flops(build(arch, float(width)))


def layer_table(model: keras.Model):
    """One row per layer: name, type, output shape, parameters, multiply-adds."""
    import pandas as pd

    return pd.DataFrame([{
        "layer": layer.name,
        "type": type(layer).__name__,
        "output": "x".join(str(d) for d in layer.output.shape[1:]),
        "params": int(layer.count_params()),
        "MACs": layer_macs(layer),
    } for layer in model.layers[1:]])


def architecture_table(families=None):
    """Parameters and multiply-adds per image of every family member (``arch``, ``width``, ``params``, ``MACs``)."""
    import pandas as pd

    families = families or [("mobilenet", MOBILENET_WIDTHS), ("cnn", CNN_WIDTHS), ("irnet", (0.5, 0.75, 1.0, 1.5))]
    rows = []
    for arch, widths in families:
        for width in widths:
            model = build(arch, width)
            rows.append({"arch": arch, "width": width, "params": model.count_params(), "MACs": flops(model)})
    return pd.DataFrame(rows)
