"""Scale-out and precision: MirroredStrategy (TF), DataParallel (JAX), mixed precision."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import keras
import pytest

import keras_resnet as kr

SPEC = """kr.ModelSpec(input_shape=(8, 8, 1), stem=kr.StemSpec(8, 3, 1, pool=None),
                   blocks=[kr.BlockSpec("basic", 8), kr.BlockSpec("basic", 16, strides=2)],
                   classes=10)"""


def run(code, **env):
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TF")
def test_mirrored_strategy_on_two_logical_cpus():
    out = run(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras_resnet as kr
        spec = {SPEC}
        r = kr.train(spec, "digits", epochs=2, batch_size=64, distribute="auto", verbose=0,
                     seed=0)
        loss = r.history["loss"]
        assert loss[1] < loss[0], loss
        print("OK", len(loss))
    """, KERAS_BACKEND="tensorflow")
    assert out.strip().endswith("OK 2")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs jax")
def test_jax_data_parallel_on_two_host_devices():
    out = run(f"""
        import keras_resnet as kr
        from keras_resnet.training import distribution
        spec = {SPEC}
        with distribution("auto") as d:
            print(d.name, d.replicas)
        r = kr.train(spec, "digits", epochs=2, batch_size=64, distribute="auto", verbose=0,
                     seed=0)
        loss = r.history["loss"]
        assert loss[1] < loss[0], loss
        import keras
        assert keras.distribution.distribution() is None  # restored afterwards
        print("OK", len(loss))
    """, KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    assert "DataParallel over 2 cpu devices 2" in out and out.strip().endswith("OK 2")


def test_auto_on_one_device_is_plain_training():
    from keras_resnet.training import distribution

    with distribution("auto") as d:
        assert d is None
    with pytest.raises(ValueError, match=r"^distribute must be one of"):
        with distribution("horovod"):
            pass


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_softmax_float32(policy):
    spec = eval(SPEC)  # noqa: S307 - the literal above
    result = kr.train(spec, "digits", epochs=1, batch_size=128, mixed_precision=policy,
                      verbose=0)
    model = result.model
    assert model.get_layer("stage1_block1_conv1").compute_dtype == policy.split("_")[1]
    assert model.get_layer("stage1_block1_conv1").variable_dtype == "float32"
    assert model.get_layer("predictions").compute_dtype == "float32"
    assert str(model.output.dtype) == "float32"
    assert keras.config.dtype_policy().name == "float32"  # restored
