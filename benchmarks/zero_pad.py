"""Formulations of the option-A shortcut (subsample + zero-pad channels), timed.

    python benchmarks/zero_pad.py [--backend tensorflow|jax]

Each variant maps (64, 32, 32, 16) to (64, 16, 16, 32) inside a small jitted
model (forward and backward); medians of interleaved repetitions. Used to pick
the formulation of keras_resnet.layers.ZeroPadShortcut.
"""

import argparse
import os
import statistics
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    os.environ["KERAS_BACKEND"] = args.backend
    import keras
    import numpy as np
    from keras import ops

    class SlicePad(keras.layers.Layer):
        def call(self, x):
            return ops.pad(x[:, ::2, ::2, :], [[0, 0], [0, 0], [0, 0], [0, 16]])

    class SliceConcat(keras.layers.Layer):
        def call(self, x):
            x = x[:, ::2, ::2, :]
            return ops.concatenate([x, ops.zeros_like(x)], axis=-1)

    class PoolPad(keras.layers.Layer):
        def call(self, x):
            x = ops.max_pool(x, 1, strides=2)
            return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, 16]])

    class ReshapePad(keras.layers.Layer):
        def call(self, x):
            b, h, w, c = ops.shape(x)
            x = ops.reshape(x, (-1, h // 2, 2, w // 2, 2, c))[:, :, 0, :, 0, :]
            return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, 16]])

    variants = {"strided slice + pad": SlicePad, "strided slice + concat zeros": SliceConcat,
                "1x1 max-pool + pad": PoolPad, "reshape + pad (even sizes)": ReshapePad}

    def model_with(layer_cls):
        inp = keras.Input((32, 32, 16))
        x = keras.layers.Conv2D(16, 3, padding="same")(inp)
        y = keras.layers.Conv2D(32, 3, strides=2, padding="same")(x)
        out = keras.layers.Add()([y, layer_cls()(x)])
        out = keras.layers.GlobalAveragePooling2D()(out)
        model = keras.Model(inp, keras.layers.Dense(10)(out))
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    x = np.random.rand(64, 32, 32, 16).astype("float32")
    y = np.random.randint(0, 10, 64)
    models = {name: model_with(cls) for name, cls in variants.items()}
    for m in models.values():  # compile / trace
        for _ in range(3):
            m.train_on_batch(x, y)
            m.predict_on_batch(x)
    times = {name: {"train": [], "infer": []} for name in variants}
    for _ in range(args.reps):
        for name, m in models.items():
            t = time.perf_counter()
            for _ in range(10):
                m.train_on_batch(x, y)
            times[name]["train"].append((time.perf_counter() - t) / 10)
            t = time.perf_counter()
            for _ in range(10):
                m.predict_on_batch(x)
            times[name]["infer"].append((time.perf_counter() - t) / 10)
    base = statistics.median(times["strided slice + pad"]["train"])
    print(f"backend {keras.backend.backend()}: median ms per step (ratio vs slice + pad)")
    for name in variants:
        tr = statistics.median(times[name]["train"])
        inf = statistics.median(times[name]["infer"])
        print(f"  {name:30s} train {1000 * tr:7.2f} ({base / tr:.3f})  infer {1000 * inf:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
