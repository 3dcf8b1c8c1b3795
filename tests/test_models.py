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


def test_width_one_is_the_seed_model():
    assert models.mobilenet(1.0).count_params() == models.seed_mobilenet().count_params()
    assert models.cnn(1.0).count_params() == models.seed_cnn().count_params()


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
    assert len([p for p in pts if p[0] == "mobilenet"]) >= 5 and len([p for p in pts if p[0] == "cnn"]) >= 5
    with pytest.raises(ValueError, match="unknown sweep family"):
        sweep_points(["vgg"])


def test_pareto_front_keeps_only_undominated_rows():
    import pandas as pd

    from fer_utils.plots import pareto_front

    df = pd.DataFrame({"bytes": [10, 20, 30, 40, 15], "private_acc": [0.5, 0.6, 0.55, 0.7, 0.45]})
    assert pareto_front(df)["bytes"].tolist() == [10, 20, 40]
