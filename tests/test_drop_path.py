"""Stochastic depth: timm's linear rule, dropped branches in training, identity at inference."""

import math

import keras
import numpy as np
import pytest

import keras_resnet as kr
from keras_resnet.layers import DropPath

SPEC = kr.ModelSpec(input_shape=(8, 8, 3), stem=kr.StemSpec(8, 3, 1, pool=None),
                    blocks=[kr.BlockSpec("basic", 8, repeat=2),
                            kr.BlockSpec("basic", 16, repeat=2, strides=2),
                            kr.BlockSpec("bottleneck", 4, repeat=1, strides=2)],
                    shortcut="B", classes=3)


def drop_layers(model):
    return [layer for layer in model.layers if isinstance(layer, DropPath)]


def test_rates_rise_linearly_over_the_blocks():
    plan = kr.make_plan(SPEC.replace(drop_path_rate=0.2))
    rates = [s.drop_path for s in plan.steps]
    np.testing.assert_allclose(rates, np.linspace(0, 0.2, 5))  # timm: linspace(0, rate, n)
    model = kr.build_resnet(SPEC, drop_path_rate=0.2)
    # the first block's rate is 0: no layer there
    assert [(layer.name, layer.rate) for layer in drop_layers(model)] == [
        (f"{s.name}_drop_path", s.drop_path) for s in plan.steps[1:]]
    assert drop_layers(kr.build_resnet(SPEC)) == []
    assert kr.make_plan(SPEC.replace(blocks=[kr.BlockSpec("basic", 8)],
                                     drop_path_rate=0.5)).steps[0].drop_path == 0.0


def test_inference_equals_the_same_weights_without_drop_path():
    keras.utils.set_random_seed(0)
    dropped = kr.build_resnet(SPEC, drop_path_rate=0.3)
    plain_rate = kr.build_resnet(SPEC)
    for layer in plain_rate.layers:  # by name: DropPath layers change the weights' order
        layer.set_weights(dropped.get_layer(layer.name).get_weights())
    x = np.random.RandomState(0).uniform(0, 1, (4, 8, 8, 3)).astype("float32")
    np.testing.assert_array_equal(dropped.predict(x, verbose=0),
                                  plain_rate.predict(x, verbose=0))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(dropped(x, training=False)),
                                  keras.ops.convert_to_numpy(plain_rate(x, training=False)))
    assert not np.allclose(keras.ops.convert_to_numpy(dropped(x, training=True)),
                           keras.ops.convert_to_numpy(plain_rate(x, training=True)))


def test_share_of_dropped_branches_matches_each_blocks_rate():
    """n examples per block: the count of dropped branches is Binomial(n, rate);
    it must lie within 5 standard deviations of n * rate (a false alarm about
    once in 1.7 million runs), and kept branches are scaled by 1 / (1 - rate)."""
    keras.utils.set_random_seed(1)
    n = 2000
    model = kr.build_resnet(SPEC, drop_path_rate=0.6)
    layers = drop_layers(model)
    probe = keras.Model(model.inputs, [t for layer in layers
                                       for t in (layer.input, layer.output)])
    x = np.random.RandomState(2).uniform(0, 1, (n, 8, 8, 3)).astype("float32")
    outs = [keras.ops.convert_to_numpy(t) for t in probe(x, training=True)]
    for layer, branch, out in zip(layers, outs[::2], outs[1::2]):
        dropped = np.all(out.reshape(n, -1) == 0, axis=1)
        assert not np.any(np.all(branch.reshape(n, -1) == 0, axis=1))  # zeros come from it
        bound = 5 * math.sqrt(n * layer.rate * (1 - layer.rate))
        assert abs(dropped.sum() - n * layer.rate) <= bound, (layer.name, dropped.sum())
        np.testing.assert_allclose(out[~dropped], branch[~dropped] / (1 - layer.rate),
                                   rtol=1e-5, atol=1e-6)


def test_drop_path_layer_alone():
    layer = DropPath(0.25, seed=3)
    x = keras.ops.ones((4000, 2, 2, 1))
    y = keras.ops.convert_to_numpy(layer(x, training=True)).reshape(4000, -1)
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y[:, 0] == 0).sum() - 1000) <= 5 * math.sqrt(4000 * 0.25 * 0.75)
    assert np.array_equal(keras.ops.convert_to_numpy(layer(x)), keras.ops.convert_to_numpy(x))
    assert DropPath.from_config(layer.get_config()).rate == 0.25
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)\. Received: rate=1.0"):
        DropPath(1.0)


def test_round_trips_keep_it(tmp_path):
    spec = SPEC.replace(drop_path_rate=0.1)
    assert kr.ModelSpec.from_json(spec.to_json()) == spec
    assert kr.ModelSpec.from_json(spec.to_json(compact=True)).drop_path_rate == 0.1
    model = kr.build_resnet(spec)
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.models.load_model(path)
    assert kr.spec_of(again).drop_path_rate == 0.1
    assert [layer.rate for layer in drop_layers(again)] == [
        layer.rate for layer in drop_layers(model)]


def test_pretrained_weights_load_with_drop_path(tmp_path, monkeypatch):
    """keras.applications' weights (matched by position) land in the right layers."""
    keras.utils.set_random_seed(4)
    ka = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3))
    monkeypatch.setattr(keras.applications, "ResNet50", lambda **kwargs: ka)
    model = kr.build_resnet("resnet50", weights="imagenet", drop_path_rate=0.1,
                            input_shape=(32, 32, 3))
    assert kr.spec_of(model).preprocessing == "caffe" and drop_layers(model)
    x = np.random.RandomState(5).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), ka.predict(x, verbose=0),
                               atol=1e-5)
    with pytest.raises(ValueError, match="cannot port weights by position into a model "
                                         "with drop-path layers"):
        kr.presets.port_weights(ka, model)


def test_plain_networks_refuse_it():
    with pytest.raises(ValueError, match=r"^drop_path_rate needs a residual network"):
        kr.build_plain(SPEC.replace(drop_path_rate=0.1))
    with pytest.raises(ValueError, match=r"^drop_path_rate needs a residual network"):
        kr.build_plain(SPEC, drop_path_rate=0.1)
    assert kr.build_plain(SPEC)  # rate 0 is fine
