"""Export a trained model as a SavedModel and serve it from a fresh process.

    python examples/export_and_serve.py [--epochs 3] [--out runs/examples/export]

kr.export writes to a temporary folder, reloads the export in a new Python
process to check its outputs, and only then renames it into place. Serving
needs only TensorFlow: tf.saved_model.load(...).serve(x), or
keras.layers.TFSMLayer to use it inside a Keras model.
"""

import argparse
import os
import subprocess
import sys
import textwrap

import numpy as np

import keras_resnet as kr

SERVE = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    import keras
    path, x_file = sys.argv[1], sys.argv[2]
    x = np.load(x_file)
    loaded = tf.saved_model.load(path)              # keep a reference to it
    y1 = loaded.serve(tf.constant(x)).numpy()
    layer = keras.layers.TFSMLayer(path, call_endpoint="serve")
    y2 = keras.ops.convert_to_numpy(layer(x))
    print("classes:", y1.argmax(-1).tolist())
    print("same from TFSMLayer:", bool(np.allclose(y1, y2, atol=1e-6)))
""")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="runs/examples/export")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    result = kr.train("cifar_resnet20", "digits", epochs=args.epochs, batch_size=64,
                      learning_rate=0.05, verbose=2)
    path = os.path.join(args.out, "saved_model")
    export = kr.export(result.model, path, format="saved_model", overwrite=True)
    print(f"exported to {path}; checked in a fresh process, max abs difference "
          f"{export.max_abs_diff:.2g}")

    x = kr.load_data("digits").validation[0][:8]
    np.save(os.path.join(args.out, "x.npy"), x)
    print("Keras model says:", result.model.predict(x, verbose=0).argmax(-1).tolist())
    served = subprocess.run(
        [sys.executable, "-c", SERVE, path, os.path.join(args.out, "x.npy")],
        capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": "tensorflow",
                                             "TF_CPP_MIN_LOG_LEVEL": "3"})
    print("fresh process says:", served.stdout.strip() or served.stderr[-500:])
    return served.returncode


if __name__ == "__main__":
    sys.exit(main())
