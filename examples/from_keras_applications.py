"""Coming from keras.applications: the same ResNet50, the same weights, the same outputs.

    python examples/from_keras_applications.py [--size 64] [--weights FILE.h5]

The `resnet50` preset builds exactly the layers of keras.applications.ResNet50 in
the same order, so weights move over with set_weights / kr.presets.port_weights,
and keras.applications weight files load directly (weights="path.h5", or
weights="imagenet" where a network is available).
"""

import argparse

import keras
import numpy as np

import keras_resnet as kr


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="input size (224 for ImageNet)")
    parser.add_argument("--weights", default=None,
                        help="a keras.applications weights file (default: random weights)")
    args = parser.parse_args(argv)
    shape = (args.size, args.size, 3)

    # What a keras.applications user has ...
    ka = keras.applications.ResNet50(weights=args.weights, input_shape=shape)
    # ... and the same network here (any keras.applications argument works).
    ours = kr.build_resnet("resnet50", input_shape=shape)
    print(f"parameters: keras.applications {ka.count_params():,}, "
          f"keras_resnet {ours.count_params():,}")

    kr.presets.port_weights(ka, ours)  # checks every shape, then set_weights
    x = keras.applications.resnet.preprocess_input(
        np.random.RandomState(0).uniform(0, 255, (4,) + shape).astype("float32"))
    diff = np.abs(ka.predict(x, verbose=0) - ours.predict(x, verbose=0)).max()
    print(f"max abs difference of the outputs: {diff:.2e}")

    # What changes: the spec is data, so the network can be edited and rebuilt.
    spec = kr.spec_of(ours)
    print(f"{spec.name}: {len(spec.blocks)} stages, shortcut {spec.shortcut!r}, "
          f"stride on the first 1x1: {spec.blocks[1].stride_1x1}")
    plain = kr.build_plain(spec)
    print(f"its plain twin has {plain.count_params():,} parameters")
    return diff


if __name__ == "__main__":
    main()
