"""Size, latency and accuracy of each export format and quantization, measured once.

    python benchmarks/export_sizes.py [--epochs 3] [--resnet50-size 224] [--skip-resnet50]

Every number comes from ``kr.export`` itself (the check in fresh processes):
size on disk, median latency of one image (batch 1; LiteRT interpreter,
onnxruntime) with one thread and with every core, and its ratio to the Keras
model's ``predict_on_batch`` measured alike, top-1 on digits' validation split
(cifar_resnet20 trained on digits). For latency side by side in one process,
interleaved, with the matmul peak, use ``benchmarks/latency.py``. ResNet-50
has random weights: it is measured on outputs only, with "top-1" = agreement
with the float Keras model's class on 50 random images. Prints a Markdown table for the README.
"""

import argparse
import os
import sys
import tempfile
import time
import warnings

import numpy as np

CASES = [("keras", None), ("tflite", None), ("tflite", "float16"), ("tflite", "dynamic"),
         ("tflite", "int8"), ("onnx", None), ("onnx", "dynamic"), ("onnx", "int8")]
SUFFIX = {"keras": ".keras", "tflite": ".tflite", "onnx": ".onnx"}


def measure(kr, name, model, rep, val, folder, drop, runs):
    rows = []
    for fmt, q in CASES:
        path = os.path.join(folder, f"{name}_{q or 'float32'}{SUFFIX[fmt]}")
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dynamic ONNX's slowness: measured here
            r = kr.export(model, path, fmt, quantize=q, representative_data=rep
                          if q == "int8" else None, validation_data=val,
                          max_accuracy_drop=drop, latency_runs=runs)
        a = r.accuracy
        rows.append([name, fmt, q or "float32", f"{r.size_bytes / 1e6:.3f}",
                     f"{r.latency_ms_1thread:.3f}", f"{r.latency_ms:.3f}",
                     f"{r.latency_ratio:.2f}", f"{a['keras_top1']:.4f}",
                     f"{a['export_top1']:.4f}", f"{a['agreement']:.4f}",
                     f"{a['max_abs_diff']:.2g}", f"{time.perf_counter() - start:.0f}"])
        print(" | ".join(rows[-1]), flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--resnet50-size", type=int, default=224)
    parser.add_argument("--skip-resnet50", action="store_true")
    parser.add_argument("--latency-runs", type=int, default=20)
    args = parser.parse_args()
    import keras

    import keras_resnet as kr

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        keras.utils.set_random_seed(0)
        data = kr.load_data("digits")
        r20 = kr.train("cifar_resnet20", data, epochs=args.epochs, batch_size=64,
                       learning_rate=0.05, verbose=0).model
        rows += measure(kr, "cifar_resnet20 (digits)", r20, data, data,
                        os.path.join(tmp, "r20"), 1.0, args.latency_runs)
        if not args.skip_resnet50:
            s = args.resnet50_size
            keras.utils.set_random_seed(0)
            r50 = kr.build_resnet("resnet50", input_shape=(s, s, 3))
            rng = np.random.RandomState(0)
            rep = rng.uniform(0, 1, (100, s, s, 3)).astype("float32")
            x = rng.uniform(0, 1, (50, s, s, 3)).astype("float32")
            val = (x, r50.predict(x, verbose=0).argmax(-1))  # top-1 = agreement with Keras
            rows += measure(kr, f"resnet50 {s}x{s} (random)", r50, rep, val,
                            os.path.join(tmp, "r50"), 100.0, args.latency_runs)
    header = ["model", "format", "quantize", "size MB", "ms 1 thread", "ms all cores",
              "× Keras", "top-1 Keras", "top-1 export", "agreement", "max abs diff",
              "export s"]
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * 3 + "---:|" * (len(header) - 3))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
