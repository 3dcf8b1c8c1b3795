"""Weight codecs: a trained model's weights into one file and back into the same architecture.

Codecs (``CODECS``):

* ``seed`` — the original method: every weight array cast to float16, all
  flattened into one vector stored with the shapes, ``np.savez_compressed``.
* ``fp16`` — the same float16 values in our container (no zip overhead, best
  of zlib / lzma).
* ``int8`` — symmetric per-output-channel linear quantisation of every kernel
  (scales in float16); biases and BatchNorm kept in float16.
* ``int8-fold`` — BatchNorm folded into the neighbouring convolution first
  where that is exact, then ``int8``.
* ``kmeans-N`` (N = 2..8) — N-bit weight sharing per kernel: a float16
  codebook of 2**N values found by 1-D k-means, indices bit-packed.
* ``kmeans-N-dw8`` — ``kmeans-N``, but depthwise kernels (few weights, one
  3x3 or 5x5 filter per channel, poorly served by a codebook shared across
  channels) in per-channel ``int8``.
* ``pruned-<codec>`` — for a model whose kernels were magnitude-pruned: a
  bitmap of the non-zero kernel entries, then ``<codec>`` on the survivors.
* ``<codec>-bn2`` — ``<codec>``, but each BatchNormalization stored as the two float16
  arrays it computes at inference, scale ``gamma / sqrt(var + eps)`` and shift
  ``beta - mean * scale``, instead of its four (gamma, beta, mean, variance): the
  same function in half the bytes (an eighth of a 4-bit IRNet file), the kernels
  untouched, so a quantisation-aware fine-tune's grid is kept exactly.

Every codec but ``seed`` writes our container: a 4-byte magic, a byte naming
the lossless stage (raw, zlib or lzma, whichever is smallest), then the
compressed payload: a short JSON header (architecture, width, codec) and the
arrays in the model's weight order. Shapes are not stored: the decoder
rebuilds the architecture and reads them from it.
"""
from __future__ import annotations

import io
import json
import lzma
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

MAGIC = b"FERW"
_LOSSLESS = {0: "raw", 1: "zlib", 2: "lzma"}
BN_EPS_DEFAULT = 1e-3


# --------------------------------------------------------------------------- weights
def weight_slots(model) -> list[tuple[object, object, str]]:
    """(layer, variable, role) for every weight, in a fixed order; role is the variable's name."""
    slots = []
    for layer in model.layers:
        for var in layer.weights:
            slots.append((layer, var, var.path.split("/")[-1]))
    return slots


def is_kernel(layer, role: str) -> bool:
    return role == "kernel" and type(layer).__name__ in ("Conv2D", "DepthwiseConv2D", "Dense")


def channel_axis(layer) -> int:
    """Output-channel axis of a kernel: depthwise kernels are (kh, kw, channels, multiplier)."""
    return 2 if type(layer).__name__ == "DepthwiseConv2D" else -1


def model_spec(model) -> dict:
    """Architecture and width, read from the model's name (``seed_*`` or ``<arch>_w<width>``)."""
    seeds = {"seed_mobilenet": ("mobilenet", 1.0), "seed_cnn": ("cnn", 1.0)}
    if model.name in seeds:
        arch, width = seeds[model.name]
    else:
        arch, w = model.name.rsplit("_w", 1)
        width = float(w)
    return {"arch": arch, "width": float(width)}


def build_from_spec(spec: dict):
    from . import models

    return models.build(spec["arch"], float(spec["width"]))


# --------------------------------------------------------------------------- quantisers
def quantize_int8(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel int8: ``w ≈ q * scale`` with |q| <= 127, scale float16 per channel."""
    moved = np.moveaxis(w, axis, -1)
    amax = np.abs(moved.reshape(-1, moved.shape[-1])).max(axis=0)
    scale = (np.where(amax > 0, amax, 1.0) / 127.0).astype(np.float16)
    scale = np.where(scale == 0, np.float16(np.finfo(np.float16).tiny), scale)
    q = np.clip(np.round(moved / scale.astype(np.float32)), -127, 127).astype(np.int8)
    return np.moveaxis(q, -1, axis), scale


def dequantize_int8(q: np.ndarray, scale: np.ndarray, axis: int) -> np.ndarray:
    moved = np.moveaxis(q.astype(np.float32), axis, -1) * scale.astype(np.float32)
    return np.moveaxis(moved, -1, axis)


def kmeans_1d(values: np.ndarray, k: int, iters: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """1-D k-means started from the k quantiles; returns (float16 codebook sorted, indices).

    Quantile starts put more centroids where the weights are dense (near zero). On the
    trained seed model at 4 bits this kept full accuracy where a linear start
    (evenly spaced from min to max) lost 0.3 / 0.8 points, at 9 % more bytes. Values that
    already take at most ``k`` float16 values (a quantisation-aware fine-tune's) are their own
    codebook, so encoding them again changes nothing.
    """
    v = values.astype(np.float32).ravel()
    uniq = np.unique(v)
    if uniq.size <= k and np.array_equal(uniq.astype(np.float16).astype(np.float32), uniq):
        return uniq.astype(np.float16), np.searchsorted(uniq, v)  # already on a grid: kept exactly
    k = int(min(k, max(1, uniq.size)))
    centers = np.quantile(v, (np.arange(k) + 0.5) / k).astype(np.float32)
    for _ in range(iters):
        new = lloyd_step(v, centers)
        if np.allclose(new, centers):
            break
        centers = new
    book = np.unique(centers.astype(np.float16))
    return book, _nearest(v, book.astype(np.float32))


def lloyd_step(v: np.ndarray, sorted_centers: np.ndarray) -> np.ndarray:
    """One k-means step in 1-D: each center moves to the mean of the values nearest to it (a center
    no value is nearest to stays); returns the new centers, sorted, float32."""
    idx = _nearest(v, sorted_centers)
    sums = np.bincount(idx, weights=v, minlength=sorted_centers.size)
    counts = np.bincount(idx, minlength=sorted_centers.size)
    return np.sort(np.where(counts > 0, sums / np.maximum(counts, 1), sorted_centers)).astype(np.float32)


def _nearest(v: np.ndarray, sorted_centers: np.ndarray) -> np.ndarray:
    if sorted_centers.size == 1:
        return np.zeros(v.shape, np.int64)
    mids = (sorted_centers[1:] + sorted_centers[:-1]) / 2
    return np.searchsorted(mids, v)


#: from this many bits up, k-means indices are stored one per byte: the lossless stage (lzma)
#: then entropy-codes their skewed distribution better than it can a bit-packed stream
#: (measured on the trained seed model: 5 bits 38.4 kB as bytes vs 44.2 kB packed)
BYTE_INDEX_BITS = 5


def pack_bits(idx: np.ndarray, bits: int) -> bytes:
    """Pack unsigned integers < 2**bits into a little-endian bit stream (one per byte from BYTE_INDEX_BITS)."""
    idx = np.asarray(idx, dtype=np.uint32).ravel()
    if bits >= BYTE_INDEX_BITS:
        return idx.astype(np.uint8).tobytes()
    bitmat = ((idx[:, None] >> np.arange(bits, dtype=np.uint32)) & 1).astype(np.uint8)
    return np.packbits(bitmat.ravel(), bitorder="little").tobytes()


def packed_size(count: int, bits: int) -> int:
    return count if bits >= BYTE_INDEX_BITS else (count * bits + 7) // 8


def unpack_bits(buf: bytes, bits: int, count: int) -> np.ndarray:
    if bits >= BYTE_INDEX_BITS:
        return np.frombuffer(buf, dtype=np.uint8, count=count).astype(np.int64)
    flat = np.unpackbits(np.frombuffer(buf, dtype=np.uint8), bitorder="little")[: count * bits]
    return (flat.reshape(count, bits).astype(np.int64) << np.arange(bits)).sum(axis=1)


# --------------------------------------------------------------------------- BatchNorm folding
def fold_plan(model) -> dict[str, tuple[str, str]]:
    """BatchNorm layers that fold exactly into a neighbouring convolution.

    ``{bn_name: ("pre", conv_name)}`` for BN → Conv2D where the convolution has a
    bias and needs no zero padding (valid padding or 1x1), and
    ``{bn_name: ("post", conv_name)}`` for Conv2D/DepthwiseConv2D → BN where the
    BN is the convolution's only consumer.
    """
    consumers: dict[str, list] = {}
    for layer in model.layers[1:]:
        inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        for t in inputs:
            consumers.setdefault(t._keras_history.operation.name, []).append(layer)
    plan = {}
    for layer in model.layers:
        if type(layer).__name__ != "BatchNormalization":
            continue
        producer = layer.input._keras_history.operation
        users = consumers.get(layer.name, [])
        if type(producer).__name__ in ("Conv2D", "DepthwiseConv2D") and len(consumers.get(producer.name, [])) == 1:
            plan[layer.name] = ("post", producer.name)
        elif (len(users) == 1 and type(users[0]).__name__ == "Conv2D" and users[0].use_bias
              and (users[0].padding == "valid" or tuple(users[0].kernel_size) == (1, 1))):
            plan[layer.name] = ("pre", users[0].name)
    return plan


def fold_batchnorm(model) -> dict[str, tuple[str, str]]:
    """Fold BatchNorm into neighbouring convolutions in place; the folded BNs become identities.

    A "post" BN keeps its shift in ``beta`` (the convolutions here may have no
    bias); a "pre" BN is absorbed entirely. Returns the plan that was applied.
    """
    plan = fold_plan(model)
    by_name = {layer.name: layer for layer in model.layers}
    for bn_name, (kind, conv_name) in plan.items():
        bn, conv = by_name[bn_name], by_name[conv_name]
        gamma, beta, mean, var = (np.asarray(v.numpy(), np.float64) for v in bn.weights)
        a = gamma / np.sqrt(var + bn.epsilon)
        b = beta - mean * a
        kernel = np.asarray(conv.kernel.numpy(), np.float64)
        if kind == "post":
            axis = channel_axis(conv)
            shape = [1] * kernel.ndim
            shape[axis] = -1
            conv.kernel.assign((kernel * a.reshape(shape)).astype(np.float32))
            if conv.use_bias:
                conv.bias.assign((np.asarray(conv.bias.numpy(), np.float64) * a + b).astype(np.float32))
                b = np.zeros_like(b)
            new_beta = b
        else:  # pre: conv(a*x + b) = conv'(x) with kernel scaled per input channel
            conv.kernel.assign((kernel * a.reshape(1, 1, -1, 1)).astype(np.float32))
            shift = np.einsum("hwio,i->o", kernel, b)
            conv.bias.assign((np.asarray(conv.bias.numpy(), np.float64) + shift).astype(np.float32))
            new_beta = np.zeros_like(b)
        bn.gamma.assign(np.ones_like(gamma, np.float32))
        bn.beta.assign(new_beta.astype(np.float32))
        bn.moving_mean.assign(np.zeros_like(mean, np.float32))
        bn.moving_variance.assign(np.full_like(var, 1.0 - bn.epsilon, np.float32))
    return plan


# --------------------------------------------------------------------------- container
def _write_container(path: Path, header: dict, blob: bytes) -> int:
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    payload = struct.pack("<I", len(head)) + head + blob
    options = {0: payload, 1: zlib.compress(payload, 9),
               2: lzma.compress(payload, format=lzma.FORMAT_RAW,
                                filters=[{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}])}
    kind = min(options, key=lambda k: len(options[k]))
    path = Path(path)
    path.write_bytes(MAGIC + bytes([kind]) + options[kind])
    return os.path.getsize(path)


def _read_container(path: Path) -> tuple[dict, bytes]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: weights file not found")
    raw = path.read_bytes()
    if raw[:4] != MAGIC or len(raw) < 5 or raw[4] not in _LOSSLESS:
        raise ValueError(f"{path}: not a fer_utils weights file (bad magic or lossless stage)")
    try:
        body = raw[5:]
        if raw[4] == 1:
            body = zlib.decompress(body)
        elif raw[4] == 2:
            body = lzma.decompress(body, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
        (n,) = struct.unpack("<I", body[:4])
        header = json.loads(body[4:4 + n])
    except (zlib.error, lzma.LZMAError, struct.error, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: corrupt weights file ({exc})") from exc
    return header, body[4 + n:]


class _Reader:
    def __init__(self, blob: bytes, path: Path):
        self.blob, self.pos, self.path = blob, 0, path

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.blob):
            raise ValueError(f"{self.path}: corrupt weights file (truncated payload)")
        out = self.blob[self.pos:self.pos + n]
        self.pos += n
        return out

    def array(self, dtype, count: int) -> np.ndarray:
        dt = np.dtype(dtype)
        return np.frombuffer(self.take(dt.itemsize * count), dtype=dt).copy()


# --------------------------------------------------------------------------- encoders
BN2 = "-bn2"


def _split_bn2(codec: str) -> tuple[str, bool]:
    """(the codec without its ``-bn2`` suffix, whether it had one)."""
    return (codec[:-len(BN2)], True) if codec.endswith(BN2) else (codec, False)


def _parse_codec(codec: str) -> tuple[bool, str, int]:
    """('pruned-'?, base codec, bits); base is fp16, int8, int8-fold, kmeans or kmeans-dw8. A ``-bn2``
    suffix (how BatchNorm is stored, not how kernels are quantised) is allowed and ignored here."""
    core = _split_bn2(codec)[0]
    pruned = core.startswith("pruned-")
    base = core[len("pruned-"):] if pruned else core
    if base in ("fp16", "int8", "int8-fold"):
        return pruned, base, 8 if base.startswith("int8") else 16
    parts = base.split("-")
    if parts[0] == "kmeans" and len(parts) in (2, 3) and parts[1].isdigit() and parts[2:] in ([], ["dw8"]):
        bits = int(parts[1])
        if not 1 <= bits <= 8:
            raise ValueError(f"kmeans bits must be in 1..8, got {bits}")
        return pruned, "kmeans-dw8" if parts[2:] else "kmeans", bits
    raise ValueError(f"unknown codec {codec!r}; expected one of {', '.join(CODECS)}, "
                     f"pruned-<codec> or <codec>{BN2} (not seed)")


def _affine_bn(layer, plan: dict) -> bool:
    """A BatchNormalization stored as (scale, shift) under ``-bn2``: one with both gamma and beta, not folded."""
    return (type(layer).__name__ == "BatchNormalization" and layer.name not in plan
            and bool(layer.scale) and bool(layer.center))


def bn_affine(layer) -> tuple[np.ndarray, np.ndarray]:
    """A BatchNormalization's inference map ``x * scale + shift`` (float64)."""
    gamma, beta, mean, var = (np.asarray(v.numpy(), np.float64)
                              for v in (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance))
    scale = gamma / np.sqrt(var + layer.epsilon)
    return scale, beta - mean * scale


def _int8_here(base: str, layer) -> bool:
    """``kmeans-N-dw8`` stores depthwise kernels in per-channel int8."""
    return base == "kmeans-dw8" and type(layer).__name__ == "DepthwiseConv2D"


def _skip_bn(plan: dict, layer, role: str) -> bool:
    """Folded BN arrays that need not be stored (identity values, rebuilt by the decoder)."""
    if layer.name not in plan:
        return False
    kind = plan[layer.name][0]
    return not (kind == "post" and role == "beta")


def _clone(model):
    import keras

    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    return twin


def encode(model, path: str | os.PathLike, codec: str = "int8") -> int:
    """Write ``model``'s weights with ``codec``; returns the file size in bytes (``os.path.getsize``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if codec == "seed":
        return _encode_seed(model, path)
    pruned, base, bits = _parse_codec(codec)
    bn2 = _split_bn2(codec)[1]
    spec = model_spec(model)
    plan = {}
    if base == "int8-fold":
        model = _clone(model)
        plan = fold_batchnorm(model)
    out = io.BytesIO()
    for layer, var, role in weight_slots(model):
        if _skip_bn(plan, layer, role):
            continue
        if bn2 and _affine_bn(layer, plan):
            if role == "gamma":  # the layer's two arrays in its first slot; its other slots hold nothing
                out.write(np.concatenate(bn_affine(layer)).astype(np.float16).tobytes())
            continue
        w = np.asarray(var.numpy(), np.float32)
        if not is_kernel(layer, role):
            out.write(w.astype(np.float16).tobytes())
            continue
        mask = w != 0 if pruned else np.ones(w.shape, bool)
        if pruned:
            out.write(np.packbits(mask.ravel(), bitorder="little").tobytes())
        if base.startswith("int8") or _int8_here(base, layer):
            q, scale = quantize_int8(w, channel_axis(layer))
            out.write(scale.tobytes())
            out.write(q[mask].tobytes())
        elif base.startswith("kmeans"):
            book, idx = kmeans_1d(w[mask], 2 ** bits) if mask.any() else (np.zeros(1, np.float16), np.zeros(0, int))
            out.write(bytes([book.size - 1]))
            out.write(book.tobytes())
            out.write(pack_bits(idx, bits))
        else:
            out.write(w[mask].astype(np.float16).tobytes())
    header = {"arch": spec["arch"], "width": spec["width"], "codec": codec}
    return _write_container(path, header, out.getvalue())


def decode(path: str | os.PathLike):
    """Rebuild the model a weights file describes, from the file alone."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: weights file not found")
    if path.read_bytes()[:2] == b"PK":
        return _decode_seed(path)
    header, blob = _read_container(path)
    try:
        model = build_from_spec(header)
        pruned, base, bits = _parse_codec(header["codec"])
        bn2 = _split_bn2(header["codec"])[1]
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: corrupt weights file header ({exc})") from exc
    plan = fold_plan(model) if base == "int8-fold" else {}
    rd = _Reader(blob, path)
    for layer, var, role in weight_slots(model):
        shape = tuple(var.shape)
        n = int(np.prod(shape))
        if _skip_bn(plan, layer, role):
            identity = {"gamma": 1.0, "beta": 0.0, "moving_mean": 0.0, "moving_variance": 1.0 - layer.epsilon}
            var.assign(np.full(shape, identity[role], np.float32))
            continue
        if bn2 and _affine_bn(layer, plan):
            if role == "gamma":  # x * scale + shift: gamma = scale, beta = shift, mean 0, variance 1 - eps
                ab = rd.array(np.float16, 2 * n).astype(np.float32)
                layer.gamma.assign(ab[:n])
                layer.beta.assign(ab[n:])
                layer.moving_mean.assign(np.zeros(n, np.float32))
                layer.moving_variance.assign(np.full(n, 1.0 - layer.epsilon, np.float32))
            continue
        if not is_kernel(layer, role):
            var.assign(rd.array(np.float16, n).astype(np.float32).reshape(shape))
            continue
        if pruned:
            mask = np.unpackbits(np.frombuffer(rd.take((n + 7) // 8), np.uint8), bitorder="little")[:n]
            mask = mask.astype(bool).reshape(shape)
        else:
            mask = np.ones(shape, bool)
        m = int(mask.sum())
        if base.startswith("int8") or _int8_here(base, layer):
            axis = channel_axis(layer)
            scale = rd.array(np.float16, shape[axis])
            q = np.zeros(shape, np.int8)
            q[mask] = rd.array(np.int8, m)
            w = dequantize_int8(q, scale, axis)
        else:
            if base.startswith("kmeans"):
                k = rd.take(1)[0] + 1
                book = rd.array(np.float16, k).astype(np.float32)
                idx = unpack_bits(rd.take(packed_size(m, bits)), bits, m)
                if m and idx.max() >= k:
                    raise ValueError(f"{path}: corrupt weights file (codebook index out of range)")
                vals = book[idx]
            else:
                vals = rd.array(np.float16, m).astype(np.float32)
            w = np.zeros(shape, np.float32)
            w[mask] = vals
        var.assign(w)
    if rd.pos != len(blob):
        raise ValueError(f"{path}: corrupt weights file ({len(blob) - rd.pos} unexpected trailing bytes)")
    return model


def _encode_seed(model, path: Path) -> int:
    weights = [np.asarray(w) for w in model.get_weights()]
    flat = np.concatenate([w.ravel() for w in weights]).astype(np.float16)
    shapes = np.array([len(w.shape) for w in weights] + [d for w in weights for d in w.shape], dtype=np.int32)
    spec = model_spec(model)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, weights=flat, shapes=shapes,
                            arch=np.array(spec["arch"]), width=np.array(spec["width"]))
    return os.path.getsize(path)


def _decode_seed(path: Path):
    try:
        with np.load(path) as z:
            flat, shapes = z["weights"], z["shapes"]
            spec = {"arch": str(z["arch"]), "width": float(z["width"])}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: corrupt weights file ({exc})") from exc
    model = build_from_spec(spec)
    expected = [tuple(w.shape) for w in model.get_weights()]
    ndims = shapes[: len(expected)]
    dims = shapes[len(expected):].tolist()
    got, pos = [], 0
    for nd in ndims:
        got.append(tuple(dims[pos:pos + nd]))
        pos += nd
    if got != expected or flat.size != sum(int(np.prod(s)) for s in expected):
        raise ValueError(f"{path}: corrupt weights file (shapes do not match {spec['arch']} width {spec['width']})")
    arrays, pos = [], 0
    for shp in expected:
        size = int(np.prod(shp))
        arrays.append(flat[pos:pos + size].astype(np.float32).reshape(shp))
        pos += size
    model.set_weights(arrays)
    return model


CODECS = ("seed", "fp16", "int8", "int8-fold", "kmeans-2", "kmeans-3", "kmeans-4", "kmeans-5", "kmeans-6",
          "kmeans-3-dw8", "kmeans-4-dw8", "kmeans-4-bn2", "kmeans-5-bn2")
