"""Presets: a regression table, keras.applications parity, the paper's numbers."""

import time

import keras
import numpy as np
import pytest
from conftest import trainable

import keras_resnet as kr

# (preset, input shape, trainable parameters, multiply-adds). Changing an
# architecture changes a row here: update it only on purpose.
REGRESSION = [
    ("cifar_plain110", (32, 32, 3), 1727962, 252887680),
    ("cifar_plain20", (32, 32, 3), 269722, 40551040),
    ("cifar_plain32", (32, 32, 3), 464154, 68862592),
    ("cifar_plain44", (32, 32, 3), 658586, 97174144),
    ("cifar_plain56", (32, 32, 3), 853018, 125485696),
    ("cifar_resnet110", (32, 32, 3), 1727962, 252887680),
    ("cifar_resnet20", (32, 32, 3), 269722, 40551040),
    ("cifar_resnet32", (32, 32, 3), 464154, 68862592),
    ("cifar_resnet44", (32, 32, 3), 658586, 97174144),
    ("cifar_resnet56", (32, 32, 3), 853018, 125485696),
    ("plain101", (224, 224, 3), 41821416, 7210532864),
    ("plain152", (224, 224, 3), 57488104, 10922754048),
    ("plain18", (224, 224, 3), 11515688, 1794805760),
    ("plain34", (224, 224, 3), 21623848, 3644493824),
    ("plain50", (224, 224, 3), 22803176, 3498311680),
    ("resnet101", (224, 224, 3), 44601832, 7570194432),
    ("resnet101_v1_5", (224, 224, 3), 44549160, 7801405440),
    ("resnet101d", (224, 224, 3), 44568392, 8041046016),
    ("resnet101v2", (224, 224, 3), 44577896, 7194476544),
    ("resnet152", (224, 224, 3), 60268520, 11282415616),
    ("resnet152_v1_5", (224, 224, 3), 60192808, 11513626624),
    ("resnet152d", (224, 224, 3), 60212040, 11753267200),
    ("resnet152v2", (224, 224, 3), 60236904, 10906697728),
    ("resnet18", (224, 224, 3), 11689512, 1814073344),
    ("resnet18_vd", (224, 224, 3), 11712968, 2066558976),
    ("resnet18d", (224, 224, 3), 11708744, 2053713920),
    ("resnet200_vd", (224, 224, 3), 74738504, 15247122432),
    ("resnet34", (224, 224, 3), 21797672, 3663761408),
    ("resnet34_vd", (224, 224, 3), 21821128, 3916247040),
    ("resnet34d", (224, 224, 3), 21816904, 3903401984),
    ("resnet50", (224, 224, 3), 25583592, 3857973248),
    ("resnet50_v1_5", (224, 224, 3), 25557032, 4089184256),
    ("resnet50d", (224, 224, 3), 25576264, 4328824832),
    ("resnet50v2", (224, 224, 3), 25568360, 3482255360),
    ("resnetv2_101", (224, 224, 3), 44541480, 7801405440),
    ("resnetv2_152", (224, 224, 3), 60185128, 11513626624),
    ("resnetv2_50", (224, 224, 3), 25549352, 4089184256),
    ("wrn_16_8", (32, 32, 3), 10961370, 1548145664),
    ("wrn_28_10", (32, 32, 3), 36479194, 5243328768),
    ("wrn_40_4", (32, 32, 3), 8949210, 1298582016),
]
DEEP = [
    ("cifar_plain1202", (32, 32, 3), 19421274, 2829238912),
    ("cifar_resnet1202", (32, 32, 3), 19421274, 2829238912),
]


def build(name, **kwargs):
    return kr.build(name, **kwargs)  # plain or residual as the preset's spec says


@pytest.mark.parametrize("name,shape,params,macs", REGRESSION)
def test_regression_table(name, shape, params, macs):
    model = build(name)
    assert kr.spec_of(model).input_shape == shape
    assert trainable(model) == params
    assert kr.flops(model) == macs


def test_table_covers_every_preset():
    assert sorted(r[0] for r in REGRESSION + DEEP) == kr.presets.names()
    plain = {r[0] for r in REGRESSION + DEEP if "plain" in r[0]}
    assert {n for n in kr.presets.names() if not kr.presets.get(n).residual} == plain


@pytest.mark.slow
@pytest.mark.parametrize("name,shape,params,macs", DEEP)
def test_resnet1202_builds_without_recursion_error(name, shape, params, macs, tmp_path):
    start = time.perf_counter()
    model = build(name, zero_init_residual=True)
    seconds = time.perf_counter() - start
    assert trainable(model) == params and kr.flops(model) == macs
    assert len(model.layers) > 3600  # 1202 layers with weights, plus BN, ReLU, adds
    assert seconds < 120, f"building {name} took {seconds:.0f}s"
    model.save(tmp_path / "deep.keras")
    loaded = keras.models.load_model(tmp_path / "deep.keras")
    x = np.random.RandomState(0).rand(2, 32, 32, 3).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)


def test_paper_cifar_parameter_counts():
    """He et al. 2015 Table 6: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M, 19.4M."""
    paper = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7, 1202: 19.4}
    counts = {r[0]: r[2] for r in REGRESSION + DEEP}
    for depth, millions in paper.items():
        assert round(counts[f"cifar_resnet{depth}"] / 1e6, 2 if depth < 100 else 1) == millions
        # option A: the plain twin has exactly the same parameters
        assert counts[f"cifar_plain{depth}"] == counts[f"cifar_resnet{depth}"]


def test_torchvision_and_reference_counts():
    counts = {r[0]: r[2] for r in REGRESSION}
    assert counts["resnet18"] == 11_689_512 and counts["resnet34"] == 21_797_672
    assert counts["resnet50_v1_5"] == 25_557_032  # torchvision resnet50
    assert counts["resnet101_v1_5"] == 44_549_160 and counts["resnet152_v1_5"] == 60_192_808
    assert counts["wrn_28_10"] == 36_479_194  # 36.5M (Zagoruyko & Komodakis)
    assert counts["resnet50d"] == 25_576_264  # timm resnet50d


@pytest.mark.parametrize("name,reference", [
    ("resnet18", 1.81), ("resnet34", 3.66), ("resnet50_v1_5", 4.09),
    ("resnet101_v1_5", 7.80), ("resnet152_v1_5", 11.51),
    ("resnet50", 3.8), ("resnet101", 7.6), ("resnet152", 11.3),  # paper Table 1 (v1)
])
def test_flops_match_reported(name, reference):
    macs = {r[0]: r[3] for r in REGRESSION}[name]
    assert macs / 1e9 == pytest.approx(reference, rel=0.02)


def test_list_get_edit_and_errors():
    names = kr.presets.names()
    # the 0.1 aliases were removed in 0.3; the errors name the replacements
    with pytest.raises(AttributeError, match=r"^keras_resnet\.presets\.list was removed in "
                       r"0\.3; use presets\.names\(\)$"):
        kr.presets.list()
    with pytest.raises(AttributeError, match=r"^keras_resnet\.presets\.is_residual was "
                       r"removed in 0\.3; use presets\.get\(name\)\.residual$"):
        kr.presets.is_residual("plain34")
    assert kr.presets.get("plain34").residual is False
    assert names == sorted(kr.presets.TABLE)
    assert not hasattr(kr.presets, "PRESETS")
    assert {"resnet18", "resnet50", "plain34", "resnet50v2", "resnet50_v1_5", "resnet50d",
            "cifar_resnet20", "cifar_plain56", "wrn_28_10", "wrn_16_8", "wrn_40_4"} <= set(names)
    spec = kr.presets.get("cifar_resnet56")
    wider = spec.replace(l2=5e-4)
    assert wider.l2 == 5e-4 and kr.presets.get("cifar_resnet56").l2 == 0.0
    with pytest.raises(ValueError, match=r"name must be a preset \(did you mean "
                                         r"'resnet50'.*\)\. Presets: "):
        kr.presets.get("resnet05")
    assert kr.presets.twin("cifar_resnet56") == "cifar_plain56"
    assert kr.presets.twin("plain34") == "resnet34"
    assert kr.presets.twin("wrn_28_10") is None
    # a preset name works wherever a spec does
    assert kr.build_plain("resnet34").count_params() == build("plain34").count_params()


def test_v2_layout_strides_on_last_block():
    spec = kr.presets.get("resnet50v2")
    strided = [(b.filters, b.strides, b.shortcut) for b in spec.blocks if b.strides > 1]
    assert strided == [(64, 2, "A"), (128, 2, "A"), (256, 2, "A")]
    assert spec.stem.norm_act is False and spec.use_bias == "auto"


def randomize_bn(model, seed=0):
    """Give every BN layer non-trivial statistics so parity checks them too."""
    rng = np.random.RandomState(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
            layer.beta.assign(rng.uniform(-0.2, 0.2, c).astype("float32"))
            layer.moving_mean.assign(rng.uniform(-0.2, 0.2, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, c).astype("float32"))


def parity(name, app, size=64):
    """Parameter count and outputs against keras.applications (logits, 64x64)."""
    keras.utils.set_random_seed(0)
    ka = getattr(keras.applications, app)(weights=None, classifier_activation=None,
                                          input_shape=(size, size, 3))
    randomize_bn(ka)
    ours = kr.build_resnet(name, classifier_activation=None, input_shape=(size, size, 3))
    assert ours.count_params() == ka.count_params()
    kr.presets.port_weights(ka, ours)
    x = np.random.RandomState(1).uniform(-1, 1, (2, size, size, 3)).astype("float32")
    diff = np.abs(ka.predict(x, verbose=0) - ours.predict(x, verbose=0)).max()
    assert diff <= 1e-5, diff
    return diff


@pytest.mark.parametrize("name,app", [("resnet50", "ResNet50"), ("resnet50v2", "ResNet50V2")])
def test_keras_applications_parity(name, app):
    parity(name, app)


@pytest.mark.slow
@pytest.mark.parametrize("name,app", [("resnet101", "ResNet101"), ("resnet152", "ResNet152"),
                                      ("resnet101v2", "ResNet101V2"),
                                      ("resnet152v2", "ResNet152V2")])
def test_keras_applications_parity_deeper(name, app):
    parity(name, app)


@pytest.mark.parametrize("app,count", [
    ("ResNet50", 25_636_712), ("ResNet101", 44_707_176), ("ResNet152", 60_419_944),
    ("ResNet50V2", 25_613_800), ("ResNet101V2", 44_675_560), ("ResNet152V2", 60_380_648)])
def test_keras_applications_counts_at_224(app, count):
    """include_top=True, classes=1000, 224x224: count_params() as keras.applications."""
    name = app.lower()
    model = kr.build_resnet(name, include_top=True, classes=1000, input_shape=(224, 224, 3))
    assert model.count_params() == count
    assert kr.presets.keras_application(name) == app


def test_weights_path_from_keras_applications(tmp_path):
    keras.utils.set_random_seed(3)
    ka = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=7,
                                     classifier_activation=None)
    randomize_bn(ka)
    x = np.random.RandomState(2).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    expected = ka.predict(x, verbose=0)
    ka.save_weights(str(tmp_path / "r50.weights.h5"))
    ka.save(str(tmp_path / "r50.h5"))  # legacy HDF5, as keras.applications downloads
    for path in ("r50.weights.h5", "r50.h5"):
        ours = kr.build_resnet("resnet50", weights=str(tmp_path / path),
                               input_shape=(64, 64, 3), classes=7,
                               classifier_activation=None)
        np.testing.assert_allclose(ours.predict(x, verbose=0), expected, atol=1e-5)


def test_weights_errors(monkeypatch):
    with pytest.raises(FileNotFoundError, match="weights file 'nope.h5' does not exist"):
        kr.build_resnet("resnet50", weights="nope.h5")
    with pytest.raises(ValueError, match=r"weights='imagenet' is available for the presets "
                                         r"that mirror keras.applications \(resnet101, "):
        kr.build_resnet("resnet18", weights="imagenet")

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(OSError, match=r"could not get the ImageNet weights of ResNet50 "
                                      r"through keras.applications"):
        kr.build_resnet("resnet50", weights="imagenet")


def test_port_weights_refuses_different_architectures():
    ka = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="cannot port weights"):
        kr.presets.port_weights(ka, kr.build_resnet("resnet50_v1_5",
                                                    input_shape=(64, 64, 3)))


def test_flops_of_spec_and_other_input_size():
    assert kr.flops("cifar_resnet20") == 40_551_040
    # at 64x64 every feature map has 4x the positions (classifier unchanged)
    assert kr.flops("cifar_resnet20", input_shape=(64, 64, 3)) == 4 * (40_551_040 - 640) + 640
    with pytest.raises(ValueError, match="flops need a fixed input size"):
        kr.flops(kr.build_resnet("cifar_resnet20", input_shape=(None, None, 3)))
    per_layer = kr.layer_flops(kr.build_resnet("cifar_resnet20"))
    assert per_layer["stem_conv"] == 32 * 32 * 3 * 3 * 3 * 16
    assert per_layer["predictions"] == 64 * 10


def test_layer_flops_of_depthwise_separable_and_grouped_convs():
    # Keras 3's depthwise/separable convs are not Conv2D subclasses: counted on their own.
    x = keras.Input((8, 8, 4))
    y = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(x)
    y = keras.layers.SeparableConv2D(16, 3, padding="same", name="sep")(y)
    y = keras.layers.Conv2D(6, 3, padding="same", groups=2, name="grouped")(y)
    assert kr.layer_flops(keras.Model(x, y)) == {
        "dw": 8 * 8 * 3 * 3 * 8,                      # one 3x3 per output channel
        "sep": 8 * 8 * (3 * 3 * 8 + 8 * 16),          # depthwise + pointwise
        "grouped": 8 * 8 * 3 * 3 * (16 // 2) * 6,
    }


def test_the_depth_rule_and_the_paper_cifar_nets():
    """One depth rule (presets.with_depth), used by the experiment and the tuner."""
    r20 = kr.presets.get("cifar_resnet20")
    assert kr.presets.depth_of(r20) == 3 and kr.presets.depth_of(kr.presets.get("resnet50")) == 6
    assert kr.presets.with_depth(r20, 3) is r20
    r56 = kr.presets.cifar(56)
    assert [b.repeat for b in r56.blocks] == [9, 9, 9] and r56.name == "cifar56"
    assert r56.residual and r56.shortcut == "A"
    assert r56 == kr.presets.with_depth(r20, 9).replace(name="cifar56")
    assert r56.replace(name=None, l2=0.0) == kr.presets.get("cifar_resnet56").replace(
        name=None, l2=0.0)
    plain = kr.presets.cifar(8, "B", residual=False)
    assert plain.residual is False and plain.shortcut == "B"
    assert [b.repeat for b in plain.blocks] == [1, 1, 1]
    assert [b.repeat for b in kr.presets.with_depth(kr.presets.get("resnet50"), 3).blocks] == [
        2, 2, 3, 2]  # the others in proportion, half rounds up
    with pytest.raises(ValueError, match=r"^depths\[\] must be 6n\+2 .*Received: "
                                         r"depths=21$"):
        kr.presets.cifar(21)
    with pytest.raises(ValueError, match=r"^depth must be >= 1"):
        kr.presets.with_depth(r20, 0)
