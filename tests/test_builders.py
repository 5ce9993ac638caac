"""build_resnet / build_plain: parameter counts, twins, init, L2, arguments."""

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import keras
import numpy as np
import pytest
from conftest import cifar_spec, trainable

import keras_resnet as kr

SHORTCUT_LAYERS = ("_shortcut_", "_add")


def test_cifar20_parameter_counts():
    """The issue's 20-layer net: plain, A, B, C (and D)."""
    counts = {"plain": trainable(kr.build_plain(cifar_spec()))}
    for option in "ABCD":
        counts[option] = trainable(kr.build_resnet(cifar_spec(shortcut=option)))
    assert counts == {"plain": 269_722, "A": 269_722, "B": 272_474, "C": 283_962,
                      "D": 272_474}


def test_plain_is_resnet_minus_shortcut_path():
    for option in "ABCD":
        spec = cifar_spec(shortcut=option)
        resnet, plain = kr.build_resnet(spec), kr.build_plain(spec)
        res_layers = {layer.name: type(layer) for layer in resnet.layers}
        plain_layers = {layer.name: type(layer) for layer in plain.layers}
        kept = {n: t for n, t in res_layers.items()
                if not any(s in n for s in SHORTCUT_LAYERS)}
        assert kept == plain_layers
        assert not any(isinstance(layer, keras.layers.Add) for layer in plain.layers)
        assert sum(isinstance(layer, keras.layers.Add) for layer in resnet.layers) == 9


def test_plain_and_a_have_equal_parameters_and_weights():
    spec = cifar_spec()
    keras.utils.set_random_seed(1)
    resnet = kr.build_resnet(spec)
    plain = kr.build_plain(spec)
    assert resnet.count_params() == plain.count_params()
    # same layer names -> same weight shapes, so weights move between twins
    plain.set_weights(resnet.get_weights())


def seed_mlp(norm, width=32):
    return kr.ModelSpec(input_shape=(width,), stem=None,
                        blocks=[kr.BlockSpec("dense", width, repeat=3)],
                        include_top=False, norm=norm, zero_init_residual=True)


@pytest.mark.parametrize("norm", ["batch", None])
def test_zero_init_residual_is_identity(norm):
    """The seed's argument: with W = 0 and b = 0, a[l+2] = g(a[l]) = a[l] for a[l] >= 0."""
    model = kr.build_resnet(seed_mlp(norm))
    x = np.random.RandomState(0).rand(16, 32).astype("float32") * 5
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x, training=False)), x,
                               rtol=1e-6, atol=1e-6)
    # negative inputs are clipped by g = relu: identity only on x >= 0
    y = keras.ops.convert_to_numpy(model(-x, training=False))
    np.testing.assert_array_equal(y, 0)
    # without zero init the blocks are not the identity
    other = kr.build_resnet(seed_mlp(norm).replace(zero_init_residual=False))
    assert np.abs(keras.ops.convert_to_numpy(other(x, training=False)) - x).max() > 1e-2


def test_zero_init_targets_the_last_norm_of_each_branch():
    spec = cifar_spec(zero_init_residual=True)
    model = kr.build_resnet(spec)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma = keras.ops.convert_to_numpy(layer.gamma)
            last = layer.name.endswith("_bn2") and layer.name.startswith("stage")
            assert (np.all(gamma == 0) if last else np.all(gamma == 1)), layer.name
    # the plain twin has no residual branch: nothing is zeroed
    plain = kr.build_plain(spec)
    assert all(np.all(keras.ops.convert_to_numpy(layer.gamma) == 1)
               for layer in plain.layers
               if isinstance(layer, keras.layers.BatchNormalization))


def test_zero_init_preact_zeroes_last_conv():
    spec = kr.ModelSpec(input_shape=(8, 8, 3), stem=kr.StemSpec(8, 3, 1, pool=None),
                        blocks=[kr.BlockSpec("preact_basic", 8, repeat=2)],
                        zero_init_residual=True, classes=2)
    model = kr.build_resnet(spec)
    for b in (1, 2):
        conv = model.get_layer(f"stage1_block{b}_conv2")
        assert np.all(keras.ops.convert_to_numpy(conv.kernel) == 0)
        assert np.any(keras.ops.convert_to_numpy(
            model.get_layer(f"stage1_block{b}_conv1").kernel) != 0)


def kernels(model):
    return [w for layer in model.layers for w in layer.weights
            if w.path.endswith("/kernel")]


def test_l2_one_term_per_kernel_equal_to_l2_sum_w2():
    l2 = 3e-4
    model = kr.build_resnet(cifar_spec(shortcut="B", l2=l2))
    ks = kernels(model)
    assert len(model.losses) == len(ks) == 19 + 2 + 1  # 19 convs, 2 projections, classifier
    expected = l2 * sum(float(np.sum(keras.ops.convert_to_numpy(k) ** 2)) for k in ks)
    total = float(sum(keras.ops.convert_to_numpy(t) for t in model.losses))
    assert total == pytest.approx(expected, rel=1e-5)


def test_l2_bias_and_norm_are_opt_in():
    base = cifar_spec(l2=1e-4, use_bias=True)
    n_kernels = len(kernels(kr.build_resnet(base)))
    n_bn = sum(isinstance(layer, keras.layers.BatchNormalization)
               for layer in kr.build_resnet(base).layers)
    assert len(kr.build_resnet(base.replace(l2_bias=True)).losses) == 2 * n_kernels
    assert len(kr.build_resnet(base.replace(l2_norm=True)).losses) == n_kernels + 2 * n_bn
    assert kr.build_resnet(base.replace(l2=0.0)).losses == []
    assert kr.build_resnet(base, l2=0.0).losses == []  # the argument overrides


def test_bias_rule():
    def biased(model):
        return {layer.name for layer in model.layers
                if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
                and layer.use_bias}

    assert biased(kr.build_resnet(cifar_spec())) == {"predictions"}
    every = biased(kr.build_resnet(cifar_spec(use_bias=True)))
    assert len(every) == 19 + 1
    pre = kr.ModelSpec(input_shape=(8, 8, 3), stem=kr.StemSpec(8, 3, 1, pool=None,
                                                               norm_act=False),
                       blocks=[kr.BlockSpec("preact_basic", 16)], classes=2)
    # "auto": bias only where no norm follows (stem without norm, last conv, projection)
    assert biased(kr.build_resnet(pre)) == {"stem_conv", "stage1_block1_conv2",
                                           "stage1_block1_shortcut_conv", "predictions"}
    assert biased(kr.build_resnet(pre.replace(use_bias=False))) == {"predictions"}


def test_keras_applications_style_arguments():
    spec = cifar_spec()
    m = kr.build_resnet(spec, include_top=False, pooling="avg")
    assert m.output.shape == (None, 64)
    m = kr.build_resnet(spec, include_top=False, pooling="max")
    assert isinstance(m.layers[-1], keras.layers.GlobalMaxPooling2D)
    m = kr.build_resnet(spec, include_top=False)
    assert m.output.shape == (None, 8, 8, 64)
    m = kr.build_resnet(spec, classes=3, classifier_activation=None, name="net")
    assert m.output.shape == (None, 3) and m.name == "net"
    assert m.get_layer("predictions").activation.__name__ == "linear"
    assert kr.spec_of(m).classes == 3 and spec.classes == 10  # spec itself unchanged
    inp = keras.Input((48, 48, 3))
    m = kr.build_resnet(spec, input_tensor=inp)
    assert m.input_shape == (None, 48, 48, 3) and m.inputs[0] is inp
    with pytest.raises(ValueError, match=r"^pooling must be one of None, 'avg', 'max'"):
        kr.build_resnet(spec, pooling="sum")


def test_input_tensor_with_layers_before_it():
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="rescale")(inp)
    m = kr.build_resnet(cifar_spec(), input_tensor=x)
    assert m.layers[1].name == "rescale"
    assert kr.spec_of(m).input_shape == (32, 32, 3)


def test_any_input_size_and_too_small():
    m = kr.build_resnet(cifar_spec(input_shape=(None, None, 3)))
    for size in (40, 33, 3):
        out = m.predict(np.zeros((1, size, size, 3), "float32"), verbose=0)
        assert out.shape == (1, 10)
    with pytest.raises(ValueError, match=r"The smallest input that works is 3x3"):
        kr.build_resnet(cifar_spec(), input_shape=(2, 2, 3))
    # ImageNet-style 32x downsampling: 17 is the smallest size (each stride gets >= 2)
    spec = kr.ModelSpec(blocks=[kr.BlockSpec("basic", 8, strides=s) for s in (1, 2, 2, 2)],
                        stem=kr.StemSpec(8))
    assert kr.build_resnet(spec, input_shape=(17, 17, 3)).output.shape == (None, 1000)
    with pytest.raises(ValueError, match=r"downsamples 32x.*smallest input that works is "
                                         r"17x17"):
        kr.build_resnet(spec, input_shape=(16, 16, 3))


def test_deterministic_layer_names_and_no_lambda():
    a = [layer.name for layer in kr.build_resnet(cifar_spec()).layers]
    keras.backend.clear_session()
    b = [layer.name for layer in kr.build_resnet(cifar_spec()).layers]
    assert a == b
    assert "stage2_block1_conv1" in a and "stage2_block1_shortcut_pad" in a
    assert not any(isinstance(layer, keras.layers.Lambda)
                   for layer in kr.build_resnet(cifar_spec()).layers)


def test_save_load_same_outputs_and_spec(tmp_path):
    spec = cifar_spec(shortcut="A", zero_init_residual=False)
    model = kr.build_resnet(spec)
    x = np.random.RandomState(0).rand(4, 32, 32, 3).astype("float32")
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, kr.ResNetModel) and loaded.residual
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert kr.spec_of(loaded) == spec
    plain = kr.build_plain(spec)
    plain.save(str(tmp_path / "p.keras"))
    assert not keras.models.load_model(str(tmp_path / "p.keras")).residual


def test_load_in_a_fresh_process(tmp_path):
    model = kr.build_resnet(cifar_spec(shortcut="D"))
    x = np.random.RandomState(1).rand(2, 32, 32, 3).astype("float32")
    model.save(str(tmp_path / "m.keras"))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", model.predict(x, verbose=0))
    code = textwrap.dedent(f"""
        import numpy as np, keras, keras_resnet as kr
        m = keras.models.load_model({str(tmp_path / 'm.keras')!r})
        x = np.load({str(tmp_path / 'x.npy')!r}); y = np.load({str(tmp_path / 'y.npy')!r})
        assert np.array_equal(m.predict(x, verbose=0), y)
        assert kr.spec_of(m).shortcut == "D"
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def test_jax_backend_builds_without_tensorflow():
    pytest.importorskip("jax")
    code = textwrap.dedent("""
        import sys
        import keras_resnet as kr
        m = kr.build_resnet("cifar_resnet20")
        p = kr.build_plain("cifar_plain20")
        import keras
        assert keras.backend.backend() == "jax"
        assert "tensorflow" not in sys.modules, "tensorflow was imported"
        print(m.count_params(), p.count_params())
    """)
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["271098", "271098"]


def test_preset_of_the_other_kind_is_named_after_its_twin():
    plain = kr.build_plain("resnet34")
    assert plain.residual is False and plain.name == "plain34"
    assert kr.spec_of(plain).residual is False and kr.spec_of(plain).name == "plain34"
    resnet = kr.build_resnet("cifar_plain20")
    assert resnet.residual and resnet.name == "cifar_resnet20"
    assert kr.build_plain("cifar_plain20").name == "cifar_plain20"
    assert kr.build_plain("resnet34", name="mine").name == "mine"


def test_builders_record_the_kind_in_the_spec():
    spec = cifar_spec()
    plain = kr.build_plain(spec)
    assert kr.spec_of(plain).residual is False and kr.spec_of(plain) == spec.replace(
        residual=False)
    assert kr.spec_of(kr.build_resnet(spec.replace(residual=False))).residual is True
    # kr.build builds what the spec says
    built = kr.build(spec.replace(residual=False))
    assert not any(isinstance(layer, keras.layers.Add) for layer in built.layers)
    assert sum(isinstance(layer, keras.layers.Add) for layer in kr.build(spec).layers) == 9
    assert plain.get_config()["spec"]["residual"] is False
    assert "residual" not in plain.get_config()  # the config is the spec


def test_removed_residual_arguments_name_the_replacement():
    """0.3 removed the 0.1 residual= overrides and kr.residual_of: each error names what
    to use instead, and the replacement gives what the old call gave."""
    with pytest.raises(AttributeError, match=r"^keras_resnet\.residual_of was removed in "
                       r"0\.3; use kr\.as_spec\(x\)\.residual or "
                       r"kr\.spec_of\(model\)\.residual$"):
        kr.residual_of  # noqa: B018
    assert kr.as_spec("plain34").residual is False
    assert kr.spec_of(kr.build_plain("cifar_resnet20")).residual is False
    assert kr.as_spec("cifar_resnet20").residual is True
    with pytest.raises(TypeError, match=r"^kr\.build\(spec, residual=\.\.\.\) was removed "
                       r"in 0\.3: .*use kr\.build_plain\(spec\), kr\.build_resnet\(spec\) or "
                       r"spec\.replace\(residual=False\)$"):
        kr.build("cifar_resnet20", residual=False)
    model = kr.build(kr.as_spec("cifar_resnet20").replace(residual=False))
    assert kr.spec_of(model).residual is False and model.residual is False
    assert kr.build_plain("cifar_resnet20").name == "cifar_plain20"
    assert kr.build_resnet("cifar_plain20").residual is True
    with pytest.raises(TypeError, match="positional argument"):
        kr.build("cifar_plain20", True)
    with pytest.raises(TypeError, match=r"^ResNetModel\(spec, residual=\.\.\.\) was removed "
                       r"in 0\.3: .*kr\.build_plain\(spec\)"):
        kr.ResNetModel(cifar_spec(), residual=False)
    assert kr.ResNetModel(cifar_spec(residual=False)).residual is False


def test_with_residual_is_removed_and_the_builders_name_the_twin():
    """presets.with_residual (deprecated in 0.3) is gone, its error naming the builders,
    which do what it did: a preset's plain twin takes the twin's name."""
    with pytest.raises(AttributeError, match=r"^keras_resnet\.presets\.with_residual was "
                       r"deprecated in 0\.3 and is removed; use kr\.build_plain\(spec\) / "
                       r"kr\.build_resnet\(spec\), or spec\.replace\(residual=\.\.\.\)$"):
        kr.presets.with_residual  # noqa: B018
    assert kr.spec_of(kr.build_plain("resnet34")) == kr.presets.get("plain34")
    assert kr.spec_of(kr.build_resnet(cifar_spec())) == cifar_spec()


def test_a_file_written_by_0_1_0_loads_as_plain():
    """tests/data/v010_plain.keras: written by keras_resnet 0.1.0, whose config kept
    "residual": false beside a spec without that field (tests/data/make_v010_plain.py)."""
    here = os.path.join(os.path.dirname(__file__), "data")
    with zipfile.ZipFile(os.path.join(here, "v010_plain.keras")) as z:
        config = json.loads(z.read("config.json"))["config"]
    assert config["residual"] is False and "residual" not in config["spec"]  # 0.1.0 form
    model = keras.models.load_model(os.path.join(here, "v010_plain.keras"))
    assert isinstance(model, kr.ResNetModel) and model.name == "v010_plain"
    assert kr.spec_of(model).residual is False and model.residual is False
    assert not any(isinstance(layer, keras.layers.Add) for layer in model.layers)
    assert not any("shortcut" in layer.name for layer in model.layers)
    io = np.load(os.path.join(here, "v010_plain_io.npz"))
    np.testing.assert_allclose(model.predict(io["x"], verbose=0), io["y"], atol=1e-6)


def test_training_lowers_the_loss():
    keras.utils.set_random_seed(0)
    rng = np.random.RandomState(0)
    x = rng.rand(64, 16, 16, 3).astype("float32")
    y = (x[:, :8].mean(axis=(1, 2, 3)) > x[:, 8:].mean(axis=(1, 2, 3))).astype("int32")
    spec = cifar_spec(input_shape=(16, 16, 3), classes=2)
    model = kr.build_resnet(spec)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    hist = model.fit(x, y, epochs=8, batch_size=16, verbose=0).history["loss"]
    assert hist[-1] < 0.7 * hist[0], hist


def test_everything_reads_the_kind_from_the_spec():
    """One rule for "the network of" a source: counting, drawing, building, training."""
    from keras_resnet.plots import layout
    from keras_resnet.report import stage_rows

    plain = kr.build("cifar_plain20")
    assert not plain.residual and plain.name == "cifar_plain20"
    # A plain preset name (or any spec with residual=False) is counted, tabled and
    # drawn as the plain network.
    assert kr.flops("plain34") == kr.flops(kr.build_plain("plain34")) == 3_644_493_824
    assert kr.flops("resnet34") == 3_663_761_408
    assert kr.flops(kr.presets.get("resnet34").replace(residual=False)) == 3_644_493_824
    assert sum(r["params"] for r in stage_rows("plain18")) == 11_515_688
    assert {b.shortcut for b in layout("cifar_plain20")[0] if b.shortcut} == {"none"}
    assert {b.shortcut for b in layout(cifar_spec(residual=False))[0] if b.shortcut} == {
        "none"}
    # So is a plain model built on top of other layers (a functional model).
    x = keras.Input((32, 32, 3))
    m = kr.build_plain("cifar_plain20", input_tensor=keras.layers.Rescaling(1 / 255)(x))
    assert not isinstance(m, kr.ResNetModel) and kr.spec_of(m).residual is False
    assert {r["shortcuts"] for r in stage_rows(m)} == {"", "- (plain)"}
    assert kr.flops(m, input_shape=(64, 64, 3)) == kr.flops(
        kr.build_plain("cifar_plain20", input_shape=(64, 64, 3)))


def test_train_builds_the_network_a_preset_names():
    result = kr.train("cifar_plain20", "digits", epochs=1, batch_size=256, verbose=0)
    assert result.model.residual is False and result.model.name == "cifar_plain20"
