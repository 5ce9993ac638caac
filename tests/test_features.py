"""Feature pyramids: stage outputs by level, from the plan."""

import keras
import numpy as np
import pytest

import keras_resnet as kr
from keras_resnet.features import ResNetFeatures, feature_model


def shapes(model):
    return {k: tuple(v.shape[1:]) for k, v in model.output.items()}


def test_resnet50_at_224_gives_keras_hubs_levels():
    features = feature_model("resnet50")
    assert shapes(features) == {"P2": (56, 56, 256), "P3": (28, 28, 512),
                                "P4": (14, 14, 1024), "P5": (7, 7, 2048)}
    levels = kr.make_plan(kr.presets.get("resnet50")).levels()
    assert [(lv.step, lv.stride) for lv in levels.values()] == [
        ("stage1_block3", 4), ("stage2_block4", 8), ("stage3_block6", 16),
        ("stage4_block3", 32)]


def test_levels_come_from_the_plan_not_from_names():
    # keras.applications' V2 strides on a stage's last block: its spec splits stages
    v2 = kr.make_plan(kr.presets.get("resnet50v2")).levels()
    assert {k: (lv.step, lv.shape) for k, lv in v2.items()} == {
        "P2": ("stage1_block2", (56, 56, 256)), "P3": ("stage3_block3", (28, 28, 512)),
        "P4": ("stage5_block5", (14, 14, 1024)), "P5": ("stage7_block3", (7, 7, 2048))}
    cifar = kr.make_plan(kr.presets.get("cifar_resnet20")).levels()
    assert {k: lv.shape for k, lv in cifar.items()} == {
        "P0": (32, 32, 16), "P1": (16, 16, 32), "P2": (8, 8, 64)}
    odd = kr.ModelSpec(input_shape=(27, 27, 3), stem=kr.StemSpec(8, 3, 3, pool=None),
                       blocks=[kr.BlockSpec("basic", 8), kr.BlockSpec("basic", 8, strides=2)])
    assert list(kr.make_plan(odd).levels()) == ["S3", "S6"]
    mlp = kr.ModelSpec(input_shape=(16,), stem=None, blocks=[kr.BlockSpec("dense", 8)])
    assert kr.make_plan(mlp).levels() == {}
    with pytest.raises(ValueError, match="feature pyramids need a network on images"):
        feature_model(mlp)


def test_invalid_level_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"^levels: 'P5' is not a level of this network\. "
                                         r"Its levels: 'P0' \(stride 1, 32x32x16\), 'P1' "
                                         r"\(stride 2, 16x16x32\), 'P2' \(stride 4, 8x8x64\)"
                                         r"\. Received: levels=\['P1', 'P5'\]$"):
        feature_model("cifar_resnet20", levels=["P1", "P5"])
    with pytest.raises(ValueError, match="did you mean 'P2'"):
        feature_model("cifar_resnet20", levels="p2")
    with pytest.raises(ValueError, match="must be a level name or a non-empty list"):
        feature_model("cifar_resnet20", levels=[])
    with pytest.raises(TypeError, match="must be a level name or a non-empty list"):
        feature_model("cifar_resnet20", levels=3)


def test_weights_come_from_the_model_and_plain_twins_work():
    spec = kr.presets.get("cifar_resnet20").replace(input_shape=(16, 16, 3))
    x = np.random.RandomState(0).uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    for model in (kr.build_resnet(spec), kr.build_plain(spec)):
        features = feature_model(model, levels=["P2", "P1"])
        assert features.levels == ["P1", "P2"]
        assert kr.spec_of(features).residual == kr.spec_of(model).residual
        last = keras.Model(model.inputs, model.get_layer("stage3_block3_out").output)
        np.testing.assert_array_equal(features.predict(x, verbose=0)["P2"],
                                      last.predict(x, verbose=0))
    adds = [layer for layer in feature_model(kr.build_plain(spec)).layers
            if isinstance(layer, keras.layers.Add)]
    assert adds == []


def test_keras_round_trips(tmp_path):
    model = kr.build_resnet("cifar_resnet20", input_shape=(16, 16, 3), preprocessing="tf")
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    features = feature_model(reloaded, levels=["P1", "P2"])
    assert kr.spec_of(features).preprocessing == "tf"  # the convention travels
    x = np.random.RandomState(1).uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    expected = feature_model(model, levels=["P1", "P2"]).predict(x, verbose=0)
    got = features.predict(x, verbose=0)
    assert all(np.array_equal(got[k], expected[k]) for k in expected)
    fpath = str(tmp_path / "features.keras")
    features.save(fpath)
    again = keras.models.load_model(fpath)
    assert isinstance(again, ResNetFeatures) and again.levels == ["P1", "P2"]
    again_out = again.predict(x, verbose=0)
    assert all(np.array_equal(again_out[k], expected[k]) for k in expected)


def test_channels_first_specs():
    old = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        spec = kr.presets.get("resnet50")  # (3, 224, 224)
        features = feature_model(spec, levels=["P2", "P5"])
        assert shapes(features) == {"P2": (256, 56, 56), "P5": (2048, 7, 7)}
    finally:
        keras.config.set_image_data_format(old)


def test_a_dense_prediction_head_on_the_pyramid_trains():
    """Per-pixel classes (inside or outside a square) from P0..P2 of a small net."""
    keras.utils.set_random_seed(0)
    size, n = 16, 256
    rng = np.random.RandomState(0)
    x = rng.uniform(0, 0.2, (n, size, size, 1)).astype("float32")
    y = np.zeros((n, size, size), "int32")
    for i in range(n):
        r, c, s = rng.randint(0, 10), rng.randint(0, 10), rng.randint(3, 7)
        x[i, r:r + s, c:c + s] += 0.8
        y[i, r:r + s, c:c + s] = 1
    spec = kr.ModelSpec(input_shape=(size, size, 1), stem=kr.StemSpec(8, 3, 1, pool=None),
                        blocks=[kr.BlockSpec("basic", 8), kr.BlockSpec("basic", 16, strides=2),
                                kr.BlockSpec("basic", 16, strides=2)], shortcut="B")
    pyramid = feature_model(spec)
    assert pyramid.levels == ["P0", "P1", "P2"]
    inputs = keras.Input((size, size, 1))
    maps = pyramid(inputs)
    merged = keras.layers.Concatenate()([
        keras.layers.UpSampling2D(2 ** int(k[1:]))(keras.layers.Conv2D(8, 1)(maps[k]))
        if k != "P0" else keras.layers.Conv2D(8, 1)(maps[k]) for k in pyramid.levels])
    logits = keras.layers.Conv2D(2, 1)(keras.layers.Activation("relu")(merged))
    segmenter = keras.Model(inputs, logits)
    segmenter.compile(optimizer=keras.optimizers.Adam(3e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = segmenter.fit(x, y, epochs=4, batch_size=32, verbose=0).history["loss"]
    assert history[-1] < 0.5 * history[0], history
