import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import keras_resnet as kr  # noqa: E402


def cifar_spec(**changes):
    """The 20-layer CIFAR net of the issue (3 stages of 3 basic blocks, 16/32/64)."""
    spec = kr.ModelSpec(
        input_shape=(32, 32, 3),
        stem=kr.StemSpec(filters=16, kernel_size=3, strides=1, pool=None),
        blocks=[
            kr.BlockSpec("basic", filters=16, repeat=3),
            kr.BlockSpec("basic", filters=32, repeat=3, strides=2),
            kr.BlockSpec("basic", filters=64, repeat=3, strides=2),
        ],
        shortcut="A",
        l2=1e-4,
        classes=10,
    )
    return spec.replace(**changes) if changes else spec


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.fixture
def spec20():
    return cifar_spec()


@pytest.fixture(autouse=True)
def _fresh_keras():
    keras.backend.clear_session()
    yield
