"""Architectures: exact parameter counts of the seed models, the families, our design, FLOPs."""
import pytest

from fer_utils import models


def test_seed_mobilenet_has_73663_params():
    model = models.seed_mobilenet()
    assert model.count_params() == 73_663
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)


def test_seed_cnn_has_3258379_params():
    model = models.seed_cnn()
    assert model.count_params() == 3_258_379
    assert model.output_shape == (None, 7)


@pytest.mark.parametrize("arch,widths", [("mobilenet", models.MOBILENET_WIDTHS), ("cnn", models.CNN_WIDTHS)])
def test_families_increase_and_span_1_5_decades(arch, widths):
    counts = [models.build(arch, w).count_params() for w in widths]
    assert all(a < b for a, b in zip(counts, counts[1:]))
    assert counts[-1] / counts[0] >= 10 ** 1.5
    assert 1.0 in widths  # the seed model is a sweep point


def layer_spec(model) -> list[str]:
    """Each layer as the original report's layer list names it: type and the settings that matter."""
    out = []
    for layer in model.layers[1:]:  # after the input
        c, kind = layer.get_config(), type(layer).__name__
        if kind == "Conv2D":
            out.append(f"Conv2D {c['filters']} {c['kernel_size'][0]}x{c['kernel_size'][1]} {c['padding']} {c['activation']}")
        elif kind == "DepthwiseConv2D":
            out.append(f"DepthwiseConv2D {c['kernel_size'][0]}x{c['kernel_size'][1]} {c['padding']}")
        elif kind == "MaxPooling2D":
            out.append(f"MaxPooling2D {c['pool_size'][0]}/{c['strides'][0]}")
        elif kind == "Dropout":
            out.append(f"Dropout {c['rate']:g}")
        elif kind == "Dense":
            out.append(f"Dense {c['units']} {c['activation']}")
        elif kind == "LeakyReLU":
            out.append(f"LeakyReLU {c['negative_slope']:g}")
        else:
            out.append(kind)
    return out


#: the original report's compact model, layer by layer
SEED_MOBILENET = [
    "BatchNormalization", "Conv2D 24 5x5 valid relu", "Conv2D 36 5x5 valid relu", "MaxPooling2D 2/2",
    "BatchNormalization", "Conv2D 52 1x1 valid relu", "DepthwiseConv2D 5x5 same", "MaxPooling2D 2/2", "Dropout 0.4",
    "BatchNormalization", "Conv2D 64 1x1 valid relu", "DepthwiseConv2D 5x5 same", "DepthwiseConv2D 5x5 same",
    "MaxPooling2D 2/2",
    "BatchNormalization", "Conv2D 84 1x1 valid relu", "DepthwiseConv2D 5x5 same", "DepthwiseConv2D 5x5 same",
    "MaxPooling2D 2/2", "Dropout 0.4",
    "Flatten", "Dense 90 relu", "Dropout 0.5", "Dense 7 softmax",
]
#: the HW3 plain CNN: four BatchNorm / 5x5 conv / LeakyReLU / max-pool / dropout blocks, a 256-unit head
SEED_CNN = [layer for f in (64, 128, 256, 256) for layer in (
    "BatchNormalization", f"Conv2D {f} 5x5 same linear", "LeakyReLU 0.2", "MaxPooling2D 2/2", "Dropout 0.4")] + [
    "Flatten", "Dense 256 linear", "LeakyReLU 0.2", "Dropout 0.5", "Dense 7 softmax"]


def test_seed_models_have_the_original_layer_lists():
    assert layer_spec(models.seed_mobilenet()) == SEED_MOBILENET
    assert layer_spec(models.seed_cnn()) == SEED_CNN
    # width 1.0 of each family is that list too, and another width changes the channels only
    assert layer_spec(models.mobilenet(1.0)) == SEED_MOBILENET and layer_spec(models.cnn(1.0)) == SEED_CNN
    half = layer_spec(models.mobilenet(0.5))
    assert half[1] == "Conv2D 12 5x5 valid relu" and [s.split()[0] for s in half] == [s.split()[0] for s in SEED_MOBILENET]


def test_our_design_is_compact_and_cheap():
    ours, seed = models.irnet(1.0), models.seed_mobilenet()
    assert ours.count_params() < 75_000
    assert models.flops(ours) * 4 < models.flops(seed)
    assert ours.output_shape == (None, 7)


def test_flops_of_seed_mobilenet_by_hand():
    # first 5x5 conv: 44*44 outputs * 24 filters * 25 taps; the second: 40*40*36*25*24
    table = models.layer_table(models.seed_mobilenet())
    convs = table[table.type == "Conv2D"]["MACs"].tolist()
    assert convs[0] == 44 * 44 * 24 * 25 and convs[1] == 40 * 40 * 36 * 25 * 24
    assert table["params"].sum() == 73_663
    assert models.flops(models.seed_mobilenet()) == table["MACs"].sum()


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture 'resnet'"):
        models.build("resnet")


def test_only_the_cnn_family_trains_in_bfloat16():
    from fer_utils.sweep import precision_for

    assert precision_for("cnn") == "mixed_bfloat16"
    assert precision_for("mobilenet") == precision_for("irnet") == "float32"


def test_sweep_points_cover_both_families_in_increasing_size():
    from fer_utils.sweep import sweep_points

    pts = sweep_points(["mobilenet", "cnn"])
    families = [arch for arch, _ in pts]
    assert families == sorted(families, key=["mobilenet", "cnn"].index)  # family by family, in the order asked
    for fam in ("mobilenet", "cnn"):
        counts = [models.build(a, w).count_params() for a, w in pts if a == fam]
        assert len(counts) >= 6 and all(a < b for a, b in zip(counts, counts[1:]))  # cheapest first
    assert sweep_points(["cnn", "mobilenet"])[0][0] == "cnn"
    with pytest.raises(ValueError, match="unknown sweep family"):
        sweep_points(["vgg"])


def test_pareto_front_keeps_only_undominated_rows():
    import pandas as pd

    from fer_utils.plots import pareto_front

    df = pd.DataFrame({"bytes": [10, 20, 30, 40, 15], "private_acc": [0.5, 0.6, 0.55, 0.7, 0.45]})
    assert pareto_front(df)["bytes"].tolist() == [10, 20, 40]
