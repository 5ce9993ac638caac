"""Running an export with its own runtime, as a user would (the worker's side).

``.keras`` through Keras, SavedModel through ``tf.saved_model.load``, TFLite
through the LiteRT interpreter (``ai_edge_litert``, else TensorFlow's), ONNX
through onnxruntime. Inputs and outputs are float32 here: an int8 TFLite
model's input is quantized and its output dequantized with their own scales.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_resnet.serving.load import load_model
from keras_resnet.serving.quantize import from_output, to_input


def _interpreter(path: str) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806
    return Interpreter(model_path=path)


def runner(path: str, format: str, example_shape: tuple) -> tuple:  # noqa: A002
    """Loads an export once.

    Returns:
        ``(run, io)``: ``run(x)`` maps a float32 batch to float32 outputs;
        ``io`` describes the TFLite input/output types (None for other formats).
    """
    if format == "keras":
        model = load_model(path)
        return (lambda x: np.asarray(keras.ops.convert_to_numpy(
            model.predict_on_batch(x)))), None
    if format == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(path)  # keep a reference: serve() needs its variables

        def serve(x: np.ndarray) -> np.ndarray:
            return loaded.serve(tf.constant(x)).numpy()

        return serve, None
    if format == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return (lambda x: np.asarray(session.run(None, {name: x})[0])), None
    interpreter = _interpreter(path)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], [1] + list(example_shape))
    interpreter.allocate_tensors()

    def run(x: np.ndarray) -> np.ndarray:
        rows = []
        for row in x:
            interpreter.set_tensor(inp["index"], to_input(row[None], inp))
            interpreter.invoke()
            rows.append(from_output(interpreter.get_tensor(out["index"]), out)[0])
        return np.stack(rows)

    io = {side: {"dtype": np.dtype(d["dtype"]).name,
                 "scale": float(d["quantization"][0]),
                 "zero_point": int(d["quantization"][1])} for side, d in (("input", inp),
                                                                           ("output", out))}
    return run, io


def run_export(path: str, format: str, x: np.ndarray) -> np.ndarray:  # noqa: A002
    """Runs an export on ``x`` with the format's own runtime (what users would do)."""
    return runner(path, format, x.shape[1:])[0](x)


def latency_ms(run: Callable, example: np.ndarray, runs: int, warmup: int = 3) -> float:
    """Median wall time of ``run`` on one example (batch 1), in milliseconds."""
    x = example[None]
    for _ in range(warmup):
        run(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)
