"""Weight codecs: round trips with an error bound per codec, BatchNorm folding, bad files."""
import numpy as np
import pytest

from fer_utils import compress, models


def randomised(model, seed=0):
    """Give BatchNorm layers non-trivial statistics so folding and round trips are really tested."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for var in layer.weights:
            role = var.path.split("/")[-1]
            if role in ("gamma", "moving_variance"):
                var.assign(rng.uniform(0.5, 1.5, var.shape).astype(np.float32))
            elif role in ("beta", "moving_mean"):
                var.assign(rng.normal(0, 0.2, var.shape).astype(np.float32))
    return model


@pytest.fixture(scope="module")
def mobile():
    return randomised(models.seed_mobilenet())


@pytest.fixture(scope="module")
def ours():
    return randomised(models.irnet(0.5), seed=1)


def weights(model):
    return [(layer, role, np.asarray(var.numpy())) for layer, var, role in compress.weight_slots(model)]


@pytest.mark.parametrize("codec", ["seed", "fp16"])
def test_float16_codecs_are_exact_to_float16(tmp_path, mobile, codec):
    size = compress.encode(mobile, tmp_path / "w", codec)
    assert size == (tmp_path / "w").stat().st_size
    back = compress.decode(tmp_path / "w")
    for (_, _, a), (_, _, b) in zip(weights(mobile), weights(back)):
        assert np.array_equal(a.astype(np.float16).astype(np.float32), b)


def test_int8_error_is_at_most_half_a_step(tmp_path, ours):
    compress.encode(ours, tmp_path / "w", "int8")
    back = compress.decode(tmp_path / "w")
    n_kernels = 0
    for (layer, role, a), (_, _, b) in zip(weights(ours), weights(back)):
        if compress.is_kernel(layer, role):
            n_kernels += 1
            _, scale = compress.quantize_int8(a, compress.channel_axis(layer))
            step = np.moveaxis(np.ones_like(a), compress.channel_axis(layer), -1) * scale.astype(np.float32)
            err = np.abs(np.moveaxis(a - b, compress.channel_axis(layer), -1))
            assert np.all(err <= step / 2 * (1 + 1e-3) + 1e-7)
        else:
            assert np.array_equal(a.astype(np.float16).astype(np.float32), b)
    assert n_kernels > 10


@pytest.mark.parametrize("make", [lambda: models.seed_mobilenet(), lambda: models.irnet(0.5)])
def test_batchnorm_folding_preserves_outputs(make):
    model = randomised(make(), seed=2)
    x = np.random.default_rng(0).random((4, 48, 48, 1)).astype(np.float32)
    before = model(x, training=False).numpy()
    twin = compress._clone(model)
    plan = compress.fold_batchnorm(twin)
    assert plan  # something was folded
    np.testing.assert_allclose(twin(x, training=False).numpy(), before, atol=2e-5)


def test_int8_fold_is_smaller_and_close(tmp_path, mobile):
    plain = compress.encode(mobile, tmp_path / "a", "int8")
    folded = compress.encode(mobile, tmp_path / "b", "int8-fold")
    assert folded < plain
    x = np.random.default_rng(1).random((8, 48, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(compress.decode(tmp_path / "b")(x).numpy(), mobile(x).numpy(), atol=2e-3)


@pytest.mark.parametrize("bits", [2, 4, 6])
def test_kmeans_uses_at_most_2_to_the_n_values_and_the_nearest(tmp_path, ours, bits):
    compress.encode(ours, tmp_path / "w", f"kmeans-{bits}")
    back = compress.decode(tmp_path / "w")
    for (layer, role, a), (_, _, b) in zip(weights(ours), weights(back)):
        if compress.is_kernel(layer, role):
            book = np.unique(b)
            assert book.size <= 2 ** bits
            nearest = book[np.abs(a.ravel()[:, None] - book[None, :]).argmin(axis=1)]
            assert np.allclose(np.abs(a.ravel() - b.ravel()), np.abs(a.ravel() - nearest), atol=1e-6)
        else:
            assert np.array_equal(a.astype(np.float16).astype(np.float32), b)


def test_kmeans_dw8_keeps_depthwise_kernels_within_half_an_int8_step(tmp_path, ours):
    k4 = compress.encode(ours, tmp_path / "k", "kmeans-4")
    dw8 = compress.encode(ours, tmp_path / "d", "kmeans-4-dw8")
    back = compress.decode(tmp_path / "d")
    for (layer, role, a), (_, _, b) in zip(weights(ours), weights(back)):
        if type(layer).__name__ == "DepthwiseConv2D" and role == "kernel":
            step = np.abs(a).max(axis=(0, 1, 3)).astype(np.float16).astype(np.float32) / 127
            assert np.all(np.abs(a - b) <= step[None, :, None] / 2 + 1e-3 * step[None, :, None] + 1e-7)
        elif compress.is_kernel(layer, role):
            assert np.unique(b).size <= 16
    assert k4 < dw8 < 2 * k4  # the depthwise kernels are a small share of the weights
    with pytest.raises(ValueError, match="unknown codec"):
        compress.encode(ours, tmp_path / "x", "kmeans-4-dw4")


@pytest.mark.parametrize("codec", ["kmeans-4", "int8", "pruned-kmeans-3"])
def test_bn2_stores_batchnorm_as_scale_and_shift(tmp_path, ours, codec):
    """``-bn2``: the same kernels bit for bit, each BatchNorm's inference map kept to float16, two arrays
    instead of four (identity statistics), and a smaller file."""
    plain = compress.encode(ours, tmp_path / "a", codec)
    size = compress.encode(ours, tmp_path / "b", f"{codec}-bn2")
    a, b = compress.decode(tmp_path / "a"), compress.decode(tmp_path / "b")
    n_bn = 0
    for (layer, role, wa), (twin, _, wb) in zip(weights(a), weights(b)):
        if compress.is_kernel(layer, role):
            assert np.array_equal(wa, wb)
        elif type(layer).__name__ == "BatchNormalization" and role == "gamma":
            scale, shift = compress.bn_affine(layer)
            scale2, shift2 = compress.bn_affine(twin)
            np.testing.assert_allclose(scale2, scale, rtol=2e-3)
            np.testing.assert_allclose(shift2, shift, rtol=2e-3, atol=2e-3 * np.abs(shift).max())
            n_bn += scale.size
            assert not twin.moving_mean.numpy().any()
    # every BN gives up two of its four float16 arrays (less what lzma had saved on them)
    assert n_bn and plain - size > 0.7 * 2 * 2 * n_bn
    x = np.random.default_rng(5).random((8, 48, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(b(x, training=False).numpy(), a(x, training=False).numpy(), atol=5e-3)


def test_bn2_of_a_codec_on_its_grid_keeps_the_grid(tmp_path, ours):
    """A quantisation-aware fine-tune's file written with ``-bn2``: the codebook is found again exactly."""
    compress.encode(ours, tmp_path / "k", "kmeans-3")
    on_grid = compress.decode(tmp_path / "k")
    compress.encode(on_grid, tmp_path / "kb", "kmeans-3-bn2")
    for (layer, role, a), (_, _, b) in zip(weights(on_grid), weights(compress.decode(tmp_path / "kb"))):
        if compress.is_kernel(layer, role):
            assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="unknown codec 'seed-bn2'"):
        compress.encode(ours, tmp_path / "s", "seed-bn2")


def test_kmeans_sizes_shrink_with_bits(tmp_path, mobile):
    sizes = [compress.encode(mobile, tmp_path / f"k{b}", f"kmeans-{b}") for b in (2, 4, 6)]
    assert sizes[0] < sizes[1] < sizes[2]
    assert sizes[1] < 0.6 * mobile.count_params()  # 4 bits: well under 0.6 bytes per parameter


@pytest.mark.parametrize("codec", ["pruned-int8", "pruned-kmeans-4", "pruned-fp16"])
def test_pruned_codecs_keep_zeros_exact(tmp_path, codec):
    model = randomised(models.irnet(0.5), seed=3)
    dense = compress.encode(model, tmp_path / "dense", codec.replace("pruned-", ""))
    for layer, var, role in compress.weight_slots(model):
        if compress.is_kernel(layer, role):
            w = var.numpy()
            var.assign(np.where(np.abs(w) < np.quantile(np.abs(w), 0.7), 0, w))
    size = compress.encode(model, tmp_path / "w", codec)
    assert size < dense
    back = compress.decode(tmp_path / "w")
    for (layer, role, a), (_, _, b) in zip(weights(model), weights(back)):
        if compress.is_kernel(layer, role):
            assert np.array_equal(a == 0, b == 0)


def test_bit_packing_round_trip():
    rng = np.random.default_rng(0)
    for bits in range(1, 9):
        idx = rng.integers(0, 2 ** bits, 1001)
        packed = compress.pack_bits(idx, bits)
        assert len(packed) == compress.packed_size(idx.size, bits)
        assert np.array_equal(compress.unpack_bits(packed, bits, idx.size), idx)
    assert compress.packed_size(1001, 4) == 501 and compress.packed_size(1001, 6) == 1001


def test_corrupt_and_missing_files(tmp_path, ours):
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        compress.decode(tmp_path / "missing.bin")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not a fer_utils weights file"):
        compress.decode(junk)
    compress.encode(ours, tmp_path / "w", "int8")
    raw = (tmp_path / "w").read_bytes()
    (tmp_path / "cut").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="corrupt weights file"):
        compress.decode(tmp_path / "cut")
    compress.encode(ours, tmp_path / "s.npz", "seed")
    (tmp_path / "s_cut.npz").write_bytes((tmp_path / "s.npz").read_bytes()[:200])
    with pytest.raises(ValueError, match="corrupt weights file"):
        compress.decode(tmp_path / "s_cut.npz")


def test_unknown_codec(tmp_path, ours):
    with pytest.raises(ValueError, match="unknown codec 'zip'"):
        compress.encode(ours, tmp_path / "w", "zip")


def test_magnitude_pruning_hits_the_target_sparsity():
    from fer_utils import prune

    model = randomised(models.irnet(0.5), seed=4)
    masks = prune.magnitude_masks(model, 0.6)
    prune.apply_masks(model, masks)
    for i, (layer, var, role) in enumerate(compress.weight_slots(model)):
        if compress.is_kernel(layer, role):
            w = var.numpy()
            assert abs((w == 0).mean() - 0.6) < 0.6 / w.size + 1e-9 + 1 / w.size
    with pytest.raises(ValueError, match="sparsity"):
        prune.magnitude_masks(model, 1.0)
