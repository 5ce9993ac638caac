"""Fine-tuning: freezing by stage name, a new head, and the example."""

import os
import re

import keras
import numpy as np
import pytest
from test_presets import randomize_bn

import keras_resnet as kr
from keras_resnet.finetune import freeze, replace_head, stage_names, unfreeze

ROOT = os.path.join(os.path.dirname(__file__), "..")
SPEC = kr.presets.get("cifar_resnet20").replace(input_shape=(8, 8, 1), classes=5)


def arrays(n=64, seed=0, classes=5):
    rng = np.random.RandomState(seed)
    return rng.uniform(0, 1, (n, 8, 8, 1)).astype("float32"), rng.randint(0, classes, n)


def values(layer):
    return [np.array(w) for w in layer.get_weights()]


def test_stage_names_and_errors():
    assert stage_names("resnet50") == ["stem", "stage1", "stage2", "stage3", "stage4",
                                          "head"]
    model = kr.build_resnet(SPEC)
    assert stage_names(model) == ["stem", "stage1", "stage2", "stage3", "head"]
    with pytest.raises(ValueError, match=r"^stages must be one of 'stem', 'stage1', "
                                         r"'stage2', 'stage3', 'head' \(did you mean "
                                         r"'stage3'.*\)\. Received: stages='stage9'$"):
        freeze(model, "stage9")
    with pytest.raises(ValueError, match="give stages or up_to, not both"):
        freeze(model, "stem", up_to="stage1")
    with pytest.raises(TypeError, match="was not built by keras_resnet"):
        freeze(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))


def test_freeze_selects_layers_by_stage():
    model = kr.build_resnet(SPEC)
    freeze(model, up_to="stage1")
    frozen = {layer.name.split("_")[0] for layer in model.layers
              if layer.weights and not layer.trainable}
    assert frozen == {"stem", "stage1"}
    unfreeze(model)
    assert all(layer.trainable for layer in model.layers)
    freeze(model)  # everything but the head
    assert [layer.name for layer in model.layers if layer.weights and layer.trainable] == [
        "predictions"]
    unfreeze(model, ["stage3"])
    assert model.get_layer("stage3_block1_conv1").trainable
    assert not model.get_layer("stage2_block1_conv1").trainable


def test_frozen_batch_norm_runs_in_inference_mode_while_training():
    keras.utils.set_random_seed(0)
    model = kr.build_resnet(SPEC)
    randomize_bn(model)
    freeze(model, up_to="stage1")
    x, y = arrays()
    stem_bn = keras.Model(model.inputs, model.get_layer("stem_bn").output)
    # a frozen BN normalises with its moving statistics, training or not
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(stem_bn(x, training=True)),
                                  keras.ops.convert_to_numpy(stem_bn(x, training=False)))
    live_bn = keras.Model(model.inputs, model.get_layer("stage2_block1_bn1").output)
    assert not np.allclose(keras.ops.convert_to_numpy(live_bn(x, training=True)),
                           keras.ops.convert_to_numpy(live_bn(x, training=False)), atol=1e-3)
    before = {layer.name: values(layer) for layer in model.layers if layer.weights}
    kr.train(model, kr.Data.from_arrays(x, y), epochs=2, batch_size=16, optimizer="adam",
             learning_rate=1e-2, verbose=0)
    for layer in model.layers:
        if not layer.weights:
            continue
        same = all(np.array_equal(a, b) for a, b in zip(before[layer.name], values(layer)))
        # frozen layers (BN moving statistics included) did not move; the others did
        assert same == (not layer.trainable), layer.name


def test_replace_head_keeps_the_body_the_spec_and_the_preprocessing():
    keras.utils.set_random_seed(1)
    base = kr.build_resnet(SPEC.replace(classes=10), preprocessing="none")
    freeze(base, "stem")
    model = replace_head(base, classes=3, classifier_activation=None)
    spec = kr.spec_of(model)
    assert spec == kr.spec_of(base).replace(classes=3, classifier_activation=None)
    assert spec.preprocessing == "none"
    assert model.get_layer("predictions").kernel.shape == (64, 3)
    assert base.get_layer("predictions").kernel.shape == (64, 10)  # unchanged
    for layer in model.layers:
        if layer.weights and layer.name != "predictions":
            old = base.get_layer(layer.name)
            assert all(np.array_equal(a, b) for a, b in zip(values(old), values(layer)))
            assert layer.trainable == old.trainable
    headless = kr.build_resnet(SPEC, include_top=False, pooling="avg")
    assert kr.spec_of(replace_head(headless, classes=4)).include_top


def parse(out):
    match = re.search(r"validation accuracy on 5-9: fine-tuned ([0-9.]+), from scratch "
                      r"([0-9.]+)", out)
    assert match, out
    return float(match.group(1)), float(match.group(2))
