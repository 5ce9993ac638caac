"""Export a trained model as a SavedModel and an int8 TFLite file, and serve them.

    python examples/export_and_serve.py [--epochs 3] [--out runs/examples/export]

kr.export writes to a temporary folder, reloads the export in a new Python
process to check its outputs, and only then renames it into place. Serving
needs only TensorFlow: tf.saved_model.load(...).serve(x), or
keras.layers.TFSMLayer to use it inside a Keras model. The int8 file is
calibrated on training examples and its validation accuracy is measured
against the Keras model's; both land in the model card beside it.
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

    data = kr.load_data("digits")
    small = kr.export(result.model, os.path.join(args.out, "r20_int8.tflite"), "tflite",
                      quantize="int8", representative_data=data, validation_data=data,
                      overwrite=True)
    acc = small.accuracy
    print(f"int8 TFLite: {small.size_bytes:,} bytes, {small.latency_ms:.2f} ms/image; "
          f"validation top-1 {acc['export_top1']:.4f} vs Keras {acc['keras_top1']:.4f} "
          f"(agreement {acc['agreement']:.4f}); card: {small.card}")
    return served.returncode


if __name__ == "__main__":
    sys.exit(main())
