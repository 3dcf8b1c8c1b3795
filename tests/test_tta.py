"""Mirror test-time augmentation: deterministic, and a mirror-symmetric image keeps its prediction."""
import numpy as np

from fer_utils import models, predict


def test_mirror_tta_is_deterministic_and_leaves_symmetric_images_alone(rng):
    from fer_utils.seeding import set_seed

    set_seed(0)
    model = models.build("mobilenet", 0.35)
    x = rng.random((6, 48, 48, 1)).astype(np.float32)
    sym = np.concatenate([x[:, :, :24], x[:, :, :24][:, :, ::-1]], axis=2)  # equal to its own mirror
    assert np.array_equal(sym, sym[:, :, ::-1])
    plain = predict.probabilities(model, sym)
    assert np.array_equal(predict.probabilities(model, sym, mirror=True), plain)
    once, twice = predict.probabilities(model, x, mirror=True), predict.probabilities(model, x, mirror=True)
    assert np.array_equal(once, twice)
    # the mean of the image's and its mirror's outputs, and mirroring the input gives the same mean
    flipped = predict.probabilities(model, np.ascontiguousarray(x[:, :, ::-1]))
    assert np.allclose(once, (predict.probabilities(model, x) + flipped) / 2)
    assert np.allclose(predict.probabilities(model, np.ascontiguousarray(x[:, :, ::-1]), mirror=True), once)
    labels = predict.predict_labels(model, (x * 255).astype(np.uint8), mirror=True)
    assert labels.shape == (6,) and labels.dtype.kind == "i"


def test_evaluate_scores_an_ensemble_and_one_model_exactly_as_itself(rng):
    from fer_utils import runs

    x = rng.random((30, 48, 48, 1), dtype=np.float32)
    y = rng.integers(0, 7, 30)
    prepared = {"val": (x, y), "tests": {"PublicTest": (x, y)}}
    a, b = models.build("mobilenet", 0.15), models.build("mobilenet", 0.15)
    assert runs.evaluate([a], prepared, mirror=True) == runs.evaluate(a, prepared, mirror=True)
    both = predict.mean_probabilities([predict.probabilities(m, x, mirror=True) for m in (a, b)])
    assert runs.evaluate([a, b], prepared, mirror=True)["PublicTest_tta"] == float(np.mean(both.argmax(1) == y))
