"""channels_first: the builder, the plan, the zero-pad shortcut, FLOPs and the summary
honour keras.config.image_data_format(), as keras.applications does.

TensorFlow's CPU convolutions only *run* channels_last, so the forward-pass
comparison runs on JAX (in a subprocess); building is checked on both.
"""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import trainable

import keras_resnet as kr
from keras_resnet.report import stage_rows


@pytest.fixture
def channels_first():
    old = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        yield
    finally:
        keras.config.set_image_data_format(old)


def test_presets_build_channels_first_with_equal_parameters(channels_first):
    spec = kr.presets.get("cifar_resnet20")
    assert spec.input_shape == (3, 32, 32)  # presets follow the data format
    model = kr.build("cifar_resnet20")
    assert model.input_shape == (None, 3, 32, 32)
    assert model.get_layer("stage2_block1_add").output.shape == (None, 32, 16, 16)
    assert model.get_layer("stage2_block1_shortcut_pad").output.shape == (None, 32, 16, 16)
    assert trainable(model) == 269_722
    plan = kr.make_plan(spec)
    assert plan.data_format == "channels_first" and plan.features_shape == (64, 8, 8)
    assert kr.flops(model) == 40_551_040  # as channels_last
    rows = stage_rows(model)
    assert [r["output_shape"] for r in rows][:4] == [(16, 32, 32), (16, 32, 32),
                                                     (32, 16, 16), (64, 8, 8)]
    assert sum(r["params"] for r in rows) == 269_722


def test_resnet50_features_with_one_channel_and_any_size(channels_first):
    # keras.applications style: input_shape is read in the active data format
    m = kr.build_resnet("resnet50", include_top=False, input_shape=(1, None, None))
    assert m.input_shape == (None, 1, None, None) and m.output_shape == (None, 2048, None, None)
    keras.config.set_image_data_format("channels_last")
    last = kr.build_resnet("resnet50", include_top=False, input_shape=(None, None, 1))
    three = kr.build_resnet("resnet50", include_top=False)
    assert trainable(m) == trainable(last) == trainable(three) - 7 * 7 * 2 * 64
    with pytest.raises(TypeError, match=r"input_shape\[2\] \(channels\) must be an integer"):
        kr.build_resnet("resnet50", include_top=False, input_shape=(1, None, None))


def test_user_spec_is_read_in_the_active_format(channels_first):
    spec = kr.ModelSpec(input_shape=(2, 16, 16), stem=kr.StemSpec(8, 3, 1, pool=None),
                        blocks=[kr.BlockSpec("bottleneck", 4, strides=2)], shortcut="D",
                        classes=3)
    m = kr.build_resnet(spec)
    assert m.get_layer("stage1_block1_add").output.shape == (None, 16, 8, 8)
    with pytest.raises(TypeError, match=r"^input_shape\[0\] \(channels\) must be an "
                                        r"integer"):
        kr.ModelSpec(input_shape=(None, 16, 16), blocks=[kr.BlockSpec("basic", 8)])


def test_saved_channels_first_model_reloads_channels_first(tmp_path, channels_first):
    model = kr.build_plain("cifar_plain20", input_shape=(3, 16, 16))
    model.save(tmp_path / "cf.keras")
    keras.config.set_image_data_format("channels_last")
    loaded = keras.models.load_model(tmp_path / "cf.keras")
    assert loaded.input_shape == (None, 3, 16, 16) and loaded.residual is False
    assert keras.config.image_data_format() == "channels_last"  # restored


def test_zero_pad_shortcut_channels_first_values():
    layer = kr.ZeroPadShortcut(strides=2, extra_channels=3, data_format="channels_first")
    x = np.random.RandomState(0).rand(2, 4, 5, 5).astype("float32")
    assert layer.compute_output_shape((None, 4, 5, 5)) == (None, 7, 3, 3)
    if keras.backend.backend() != "tensorflow":  # TF-CPU pools channels_last only
        y = keras.ops.convert_to_numpy(layer(x))
        np.testing.assert_array_equal(y[:, :4], x[:, :, ::2, ::2])
        np.testing.assert_array_equal(y[:, 4:], 0)
    assert layer.get_config()["data_format"] == "channels_first"


def test_channels_first_outputs_equal_channels_last_on_jax():
    pytest.importorskip("jax")
    if keras.backend.backend() != "jax":  # a JAX subprocess: the JAX suite runs it once
        pytest.skip("runs in the JAX suite (KERAS_BACKEND=jax), which CI runs too")
    code = textwrap.dedent("""
        import keras, numpy as np, keras_resnet as kr
        x = np.random.RandomState(0).rand(2, 16, 16, 3).astype("float32")
        mixed = kr.ModelSpec(  # deep stem, symmetric padding, D and B shortcuts, pooling
            input_shape=(16, 16, 3), padding="symmetric", shortcut="D", classes=5,
            stem=kr.StemSpec(8, strides=2, pool="max", type="deep"),
            blocks=[kr.BlockSpec("bottleneck", 4, strides=2, stride_1x1=True),
                    kr.PoolSpec("avg", strides=1, pool_size=3),
                    kr.BlockSpec("preact_basic", 12, shortcut="B")])
        cifar8 = kr.presets.get("cifar_resnet20").replace(  # one block per stage, option A
            blocks=[kr.BlockSpec("basic", 16), kr.BlockSpec("basic", 32, strides=2),
                    kr.BlockSpec("basic", 64, strides=2)])
        for name, spec in (("cifar", cifar8), ("mixed", mixed)):
            keras.config.set_image_data_format("channels_last")
            last = kr.build(spec, input_shape=(16, 16, 3), classes=5)
            keras.config.set_image_data_format("channels_first")
            first = kr.build(spec, input_shape=(3, 16, 16), classes=5)
            first.set_weights(last.get_weights())  # kernels have the same shapes
            a = keras.ops.convert_to_numpy(last(x, training=False))
            b = keras.ops.convert_to_numpy(first(x.transpose(0, 3, 1, 2), training=False))
            assert np.abs(a - b).max() < 1e-5, (name, np.abs(a - b).max())
            print(name, "ok")
    """)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split().count("ok") == 2
