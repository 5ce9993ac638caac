"""How tests/data/v010_plain.keras was made: run against keras_resnet 0.1.0.

keras_resnet 0.1.0 (commit cb7b686) saved a ResNetModel's config as
``{"spec": <spec dict without "residual">, "residual": False, ...}``. The file
is a tiny plain net (shortcut A, so its residual twin would add ZeroPadShortcut
and Add layers); the outputs for a fixed input are kept beside it.

    PYTHONPATH=<0.1.0 checkout> python tests/data/make_v010_plain.py
"""

import os

import numpy as np

import keras_resnet as kr

HERE = os.path.dirname(os.path.abspath(__file__))

spec = kr.ModelSpec(
    input_shape=(8, 8, 3),
    stem=kr.StemSpec(filters=4, kernel_size=3, strides=1, pool=None),
    blocks=[kr.BlockSpec("basic", 4, repeat=2),
            kr.BlockSpec("basic", 8, repeat=1, strides=2)],
    shortcut="A",
    classes=3,
    name="v010_plain",
)
import keras  # noqa: E402

keras.utils.set_random_seed(0)
model = kr.build_plain(spec)
x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
model.save(os.path.join(HERE, "v010_plain.keras"))
np.savez(os.path.join(HERE, "v010_plain_io.npz"), x=x, y=model.predict(x, verbose=0))
print(model.get_config())
