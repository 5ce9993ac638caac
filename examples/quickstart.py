"""Quickstart: a spec, build_resnet, train on the built-in digits, evaluate, save.

    python examples/quickstart.py [--epochs 10] [--out runs/examples/quickstart]

The model is an ordinary Keras model: compile, fit, evaluate and save as usual.
"""

import argparse
import os

import keras
import numpy as np

import keras_resnet as kr


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default="runs/examples/quickstart")
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)

    data = kr.load_data("digits")  # scikit-learn's 8x8 digits: no download
    (x, y), (x_val, y_val) = data.train, data.validation
    spec = kr.ModelSpec(
        input_shape=data.input_shape,  # (8, 8, 1)
        stem=kr.StemSpec(filters=16, kernel_size=3, strides=1, pool=None),
        blocks=[
            kr.BlockSpec("basic", 16, repeat=2),
            kr.BlockSpec("basic", 32, repeat=2, strides=2),  # 8x8 -> 4x4, 16 -> 32 channels
        ],
        shortcut="A",  # zero-pad where the shape changes: no extra parameters
        l2=1e-4,
        classes=data.classes,
    )
    model = kr.build_resnet(spec)
    print(kr.stage_table(model))

    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, validation_data=(x_val, y_val), epochs=args.epochs, batch_size=64,
              verbose=2)
    loss, accuracy = model.evaluate(x_val, y_val, verbose=0)
    print(f"validation accuracy: {accuracy:.4f}")

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "quickstart.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)  # no custom_objects needed
    same = np.array_equal(model.predict(x_val, verbose=0), reloaded.predict(x_val, verbose=0))
    print(f"saved {path}; reloaded model gives the same predictions: {same}")
    print("spec travels with the model:", kr.spec_of(reloaded) == spec)
    return accuracy


if __name__ == "__main__":
    main()
