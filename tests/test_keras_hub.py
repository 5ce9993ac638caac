"""keras-hub's ResNet weights load into the equal presets (offline: random weights).

keras-hub builds its backbones without a network (only ``from_preset``
downloads), so every supported configuration is built here with random weights
and random BatchNormalization statistics, ported, and compared output to output.
The code is backend-independent (NumPy in, NumPy out): CI's JAX run covers it.
"""

import re

import keras
import numpy as np
import pytest
from test_presets import randomize_bn

import keras_resnet as kr
from keras_resnet import preprocessing as P
from keras_resnet import weights as W
from keras_resnet.builders import from_keras_hub

keras_hub = pytest.importorskip("keras_hub")

DEPTHS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3],
          152: [3, 8, 36, 3], 200: [3, 12, 48, 3]}
SIZE = 64


def hub_config(preset):
    """keras-hub's ResNetBackbone arguments of one of its ResNet presets.

    (Their parameter counts agree with keras-hub's preset metadata: checked by
    building them, e.g. resnet_vd_18 11,722,824 with its 1000-way classifier.)
    """
    depth = int(re.search(r"_(\d+)_", preset).group(1))
    vd, v2 = preset.startswith("resnet_vd_"), preset.startswith("resnet_v2_")
    block = ("basic_block" if depth < 50 else "bottleneck_block") + ("_vd" if vd else "")
    return dict(input_conv_filters=[32, 32, 64] if vd else [64],
                input_conv_kernel_sizes=[3, 3, 3] if vd else [7],
                stackwise_num_filters=[64, 128, 256, 512], stackwise_num_blocks=DEPTHS[depth],
                stackwise_num_strides=[1, 2, 2, 2], block_type=block, use_pre_activation=v2)


def hub_backbone(preset, seed=0):
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.ResNetBackbone(**hub_config(preset),
                                               image_shape=(SIZE, SIZE, 3))
    randomize_bn(backbone, seed)
    return backbone


def images(n=2, seed=1):
    return np.random.RandomState(seed).uniform(-1, 1, (n, SIZE, SIZE, 3)).astype("float32")


def assert_same_outputs(hub_model, ours):
    x = images()
    diff = np.abs(np.asarray(hub_model.predict(x, verbose=0))
                  - np.asarray(ours.predict(x, verbose=0))).max()
    assert diff <= 1e-5, diff
    return diff


FAST = ["resnet_18_imagenet", "resnet_50_imagenet", "resnet_v2_50_imagenet",
        "resnet_vd_18_imagenet", "resnet_vd_50_imagenet"]
DEEP = ["resnet_101_imagenet", "resnet_152_imagenet", "resnet_v2_101_imagenet",
        "resnet_vd_34_imagenet", "resnet_vd_101_imagenet", "resnet_vd_152_imagenet",
        "resnet_vd_200_imagenet"]


def check_port(preset):
    backbone = hub_backbone(preset)
    model = from_keras_hub(backbone)
    spec = kr.spec_of(model)
    assert spec.name == W.KERAS_HUB_PRESETS[preset]
    assert not spec.include_top and spec.input_shape == (SIZE, SIZE, 3)
    assert model.count_params() == backbone.count_params()
    assert spec.preprocessing == P.check(P.KERAS_HUB_IMAGENET)
    assert_same_outputs(backbone, model)


@pytest.mark.parametrize("preset", FAST)
def test_port_matches_keras_hub(preset):
    check_port(preset)


@pytest.mark.slow
@pytest.mark.parametrize("preset", DEEP)
def test_port_matches_keras_hub_deep(preset):
    check_port(preset)


def test_every_keras_hub_preset_has_a_preset_here():
    for preset, ours in W.KERAS_HUB_PRESETS.items():
        backbone = keras_hub.models.ResNetBackbone(**hub_config(preset))
        assert W.keras_hub_spec(backbone).name == ours, preset


def test_timm_v2_needs_the_max_pool_that_ignores_padding():
    """Zero padding before the V2 stem's max pool (keras.applications') differs."""
    backbone = hub_backbone("resnet_v2_50_imagenet")
    ported = from_keras_hub(backbone)
    zero = kr.build_resnet(kr.spec_of(ported).replace(padding="symmetric"))
    zero.set_weights(ported.get_weights())
    x = images()
    assert np.abs(zero.predict(x, verbose=0) - backbone.predict(x, verbose=0)).max() > 1e-3


def test_classifier_head_is_ported():
    backbone = hub_backbone("resnet_18_imagenet")
    classifier = keras_hub.models.ResNetImageClassifier(backbone=backbone, num_classes=7)
    head = classifier.get_layer("predictions")
    rng = np.random.RandomState(2)
    head.set_weights([rng.normal(size=w.shape).astype("float32") for w in head.get_weights()])
    model = from_keras_hub(classifier)
    spec = kr.spec_of(model)
    assert spec.include_top and spec.classes == 7 and spec.classifier_activation is None
    assert_same_outputs(classifier, model)
    # the backbone alone, from the classifier
    body = from_keras_hub(classifier, include_top=False)
    assert_same_outputs(backbone, body)


def test_port_into_an_existing_model_and_its_checks():
    backbone = hub_backbone("resnet_vd_18_imagenet")
    target = kr.build_resnet("resnet18_vd", include_top=False, input_shape=(SIZE, SIZE, 3))
    W.port_keras_hub(backbone, target)
    assert_same_outputs(backbone, target)
    wrong = kr.build_resnet("resnet18d", include_top=False, input_shape=(SIZE, SIZE, 3))
    with pytest.raises(ValueError, match=r"the keras-hub model is preset 'resnet18_vd', "
                                         r"which differs from 'resnet18d' in blocks: 5 "
                                         r"entries vs 4; .*blocks\[0\]\.shortcut: 'C' vs "
                                         r"None"):
        W.port_keras_hub(backbone, wrong)
    with pytest.raises(ValueError, match="the target has a classifier and the source is a "
                                         "backbone"):
        W.port_keras_hub(backbone, kr.build_resnet("resnet18_vd",
                                                   input_shape=(SIZE, SIZE, 3)))


def test_configurations_without_a_spec_say_what_differs():
    config = dict(hub_config("resnet_18_imagenet"), input_conv_filters=[64, 64],
                  input_conv_kernel_sizes=[7, 3])
    with pytest.raises(ValueError, match=r"^input_conv_filters must be one convolution, or "
                                         r"three 3x3 convolutions"):
        W.keras_hub_spec(keras_hub.models.ResNetBackbone(**config))
    odd = keras_hub.models.ResNetBackbone(**dict(hub_config("resnet_50_imagenet"),
                                                 stackwise_num_blocks=[1, 1, 1, 1]))
    spec = W.keras_hub_spec(odd)  # no preset, but a spec all the same
    assert spec.name is None and [b.repeat for b in spec.blocks] == [1, 1, 1, 1]
    with pytest.raises(TypeError, match="source must be a keras-hub ResNetBackbone"):
        W.keras_hub_spec(keras.Sequential([keras.Input((3,))]))


def test_weights_keras_hub_preset_loads_through_from_preset(monkeypatch):
    """weights="keras_hub:<preset>" as on a machine with a network (download faked)."""
    backbone = hub_backbone("resnet_18_imagenet")
    converter = keras_hub.layers.ResNetImageConverter(
        image_size=(SIZE, SIZE), scale=[0.01, 0.02, 0.03], offset=[-1.0, -2.0, -3.0])
    asked = []

    def backbone_from_preset(preset, **kwargs):
        asked.append(preset)
        return backbone

    monkeypatch.setattr(keras_hub.models.Backbone, "from_preset", backbone_from_preset)
    monkeypatch.setattr(keras_hub.layers.ImageConverter, "from_preset",
                        lambda preset, **kwargs: converter)
    model = kr.build_resnet("resnet18", weights="keras_hub:resnet_18_imagenet",
                            include_top=False, input_shape=(SIZE, SIZE, 3))
    assert asked == ["resnet_18_imagenet"]
    assert kr.spec_of(model).preprocessing == {"scale": (0.01, 0.02, 0.03),
                                               "offset": (-1.0, -2.0, -3.0)}
    assert_same_outputs(backbone, model)


def test_weights_keras_hub_errors_before_building(monkeypatch):
    with pytest.raises(ValueError, match=r"weights='keras_hub:resnet_vd_18_imagenet' are "
                                         r"weights of preset 'resnet18_vd'; this spec "
                                         r"\('resnet18'\) differs in"):
        kr.build_resnet("resnet18", weights="keras_hub:resnet_vd_18_imagenet")
    with pytest.raises(ValueError, match="must name a keras-hub preset"):
        kr.build_resnet("resnet18", weights="keras_hub:")

    def offline(preset, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(keras_hub.models.Backbone, "from_preset", offline)
    with pytest.raises(OSError, match="could not load keras-hub preset 'resnet_18_imagenet'"):
        kr.build_resnet("resnet18", weights="keras_hub:resnet_18_imagenet",
                        include_top=False)
    monkeypatch.setitem(__import__("sys").modules, "keras_hub", None)
    with pytest.raises(ImportError, match=r"pip install 'keras-resnet-builder\[hub\]'"):
        kr.build_resnet("resnet18", weights="keras_hub:resnet_18_imagenet")


def test_sources_table():
    assert W.sources("resnet18") == {"keras.applications": [],
                                     "keras_hub": ["keras_hub:resnet_18_imagenet"]}
    assert W.sources("resnet50") == {"keras.applications": ["imagenet"], "keras_hub": []}
    table = W.table_markdown()
    assert "| `resnet50d` |" in table and "| `cifar_resnet20` |" not in table
