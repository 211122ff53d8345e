"""The plan's ``bn_fold`` rule: at inference a Conv2D or Dense without activation feeding only
a BatchNormalization runs as one call with the normalization folded into its kernel and bias,
within float32 rounding of the two layers run apart; never in a training plan, never when the
convolution's output is also used elsewhere."""
import numpy as np
import pytest

import pycnn
from pycnn import layers


def _model(extra_use=False, activation=None):
    inp = pycnn.Input(shape=(10, 10, 3))
    c = layers.Conv2D(8, 3, use_bias=False, activation=activation)(inp)
    x = layers.BatchNormalization()(c)
    x = layers.Flatten()(layers.Activation("relu")(x))
    x = layers.BatchNormalization()(layers.Dense(6)(x))
    outputs = [x, layers.Flatten()(c)] if extra_use else x
    model = pycnn.Model(inp, outputs)
    r = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            g, b, mean, var = layer.get_weights()
            layer.set_weights([g * 1.3, b + 0.2, r.standard_normal(mean.shape).astype("f4"),
                               var * 2 + r.random(var.shape).astype("f4")])
    return model


def test_inference_folds_both_pairs_and_matches_the_layers_apart():
    model = _model()
    x = np.random.default_rng(1).standard_normal((7, 10, 10, 3)).astype(np.float32)
    folded = model.predict(x, verbose=0)
    pairs = model.compiled_plan(False).fused_pairs
    assert [tuple(type(l).__name__ for l in p) for p in pairs] == \
        [("Conv2D", "BatchNormalization"), ("Dense", "BatchNormalization")]
    model.set_fusion("bn_fold", False)
    apart = model.predict(x, verbose=0)
    assert model.compiled_plan(False).fused_pairs == []
    np.testing.assert_allclose(folded, apart, rtol=1e-5, atol=1e-5)


def test_training_plans_never_fold():
    model = _model()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((4, 10, 10, 3), np.float32), np.zeros((4, 6), np.float32), verbose=0)
    assert model.compiled_plan(True).fused_pairs == []


@pytest.mark.parametrize("variant", ["output_used_twice", "relu_conv"])
def test_no_fold_when_the_output_is_used_elsewhere_or_activated(variant):
    model = _model(extra_use=variant == "output_used_twice",
                   activation="relu" if variant == "relu_conv" else None)
    kinds = [tuple(type(l).__name__ for l in p) for p in model.compiled_plan(False).fused_pairs]
    assert ("Conv2D", "BatchNormalization") not in kinds
    assert ("Dense", "BatchNormalization") in kinds


def test_folding_follows_weight_changes_between_batches():
    model = _model()
    x = np.random.default_rng(2).standard_normal((3, 10, 10, 3)).astype(np.float32)
    before = model.predict(x, verbose=0)
    bn = model.layers[2]
    g, b, mean, var = bn.get_weights()
    bn.set_weights([g, b + 1.0, mean, var])
    after = model.predict(x, verbose=0)
    model.set_fusion("bn_fold", False)
    np.testing.assert_allclose(after, model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    assert not np.allclose(before, after)
