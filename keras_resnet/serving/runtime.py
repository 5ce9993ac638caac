"""Running a model file with its own runtime, as a deployment would.

:func:`open_model` opens a ``.keras`` file (or run folder) with Keras, a
SavedModel folder with ``tf.saved_model.load``, a ``.tflite`` file with the
LiteRT interpreter (``ai_edge_litert``, else TensorFlow's) and an ``.onnx``
file with onnxruntime, and gives one :class:`ExportedModel` whatever the
format: float32 inputs in, float32 outputs (or class probabilities) out. An
int8 TFLite model's input is quantized and its output dequantized with their
own scales; a channels-first model also takes channels-last images; the
thread count of LiteRT and onnxruntime is an argument (default: every core).

The fresh process of the export check (:mod:`keras_resnet.serving._worker`)
runs exports through this module, and so do ``kr.serving.predict_files`` and
``keras-resnet predict`` for ``.tflite`` and ``.onnx`` files.

Example:

```python
model = kr.serving.open_model("exported/r20_int8.onnx", threads=1)
probs = model.predict(images)       # (n, classes) float32, rows sum to 1
model.class_names[probs[0].argmax()]
```
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_resnet import _checks as C
from keras_resnet.builders import outputs_logits, spec_of
from keras_resnet.serving.card import JSON_NAME
from keras_resnet.serving.load import load_model, model_file
from keras_resnet.serving.machine import all_cores
from keras_resnet.serving.quantize import from_output, to_input

#: Format of a model path by its suffix (a folder: SavedModel or run folder).
FORMAT_OF_SUFFIX = {".keras": "keras", ".tflite": "tflite", ".onnx": "onnx"}
#: Examples per call into the runtime (bounds memory on long inputs).
BATCH_SIZE = 32


def format_of(path: str | os.PathLike) -> str:
    """``"keras"``, ``"saved_model"``, ``"tflite"`` or ``"onnx"``, from the path."""
    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            return "saved_model"
        return "keras"  # a run folder: its model.keras (load_model says if it is missing)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMAT_OF_SUFFIX:
        C.fail("path", "must be a .keras, .tflite or .onnx file, a SavedModel folder or a "
               "run folder of kr.train", path)
    return FORMAT_OF_SUFFIX[suffix]


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _interpreter(path: str, threads: int) -> tuple:
    try:
        from ai_edge_litert.interpreter import Interpreter
        runtime = f"LiteRT {_version('ai-edge-litert')}"
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806
        runtime = f"TensorFlow Lite {tf.__version__}"
    return Interpreter(model_path=path, num_threads=threads), runtime


class ExportedModel:
    """A model file run by its own runtime, with one interface for every format.

    Open one with :func:`open_model`.

    Attributes:
        path: The file (or folder).
        format: ``"keras"``, ``"saved_model"``, ``"tflite"`` or ``"onnx"``.
        threads: Threads of LiteRT / onnxruntime (None for Keras and
            SavedModel, which use the process' TensorFlow or JAX thread pools).
        runtime: The runtime and its version, e.g. ``"onnxruntime 1.32.0"``.
        input_shape: The model's input shape without the batch axis.
        channels_first: The model takes ``(channels, height, width)``.
        image_shape: ``(height, width, channels)``: what an image file is read
            as (:func:`~keras_resnet.serving.predict.read_image`).
        classes: Number of outputs.
        outputs: ``"logits"`` or ``"probabilities"`` (None: not known, judged
            from the values).
        class_names: From ``labels.json`` beside the file (a run folder's), else
            from the model card ``model_card.json`` beside it, else None.
        preprocessing: What the model expects of raw pixel values (a
            ``ModelSpec.preprocessing`` value): the spec's for a Keras model,
            the model card's for an export (``"none"`` for one exported with
            ``include_preprocessing``); ``"unit"`` (pixels / 255, what
            ``kr.load_data`` gives) when nothing records it.
        io: A TFLite model's input and output types, scales and zero points
            (None for other formats).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        path = os.fspath(path)
        self.path = path
        self.format = format_of(path)
        if threads is not None:
            C.check_int("threads", threads, minimum=1)
            if self.format in ("keras", "saved_model"):
                C.fail("threads", "applies to .tflite and .onnx files; Keras and SavedModel "
                       "models use the process' TensorFlow or JAX thread pools (set "
                       "TF_NUM_INTRAOP_THREADS before the process starts)", threads)
        self.threads = None if self.format in ("keras", "saved_model") else (
            threads or all_cores())
        self.io: dict | None = None
        self.outputs: str | None = None
        self.preprocessing: Any = "unit"
        self._data_format: str | None = None
        self._run = getattr(self, f"_open_{self.format}")(path)
        shape = tuple(self.input_shape)
        # Keras says where its channels are; TFLite and ONNX exports come from TensorFlow,
        # which runs channels-last on CPU, so the shape decides only for other files.
        self.channels_first = len(shape) == 3 and (
            self._data_format == "channels_first" if self._data_format else
            shape[0] in (1, 3, 4) and shape[-1] not in (1, 3, 4))
        self.image_shape = (shape[1], shape[2], shape[0]) if self.channels_first else shape
        self.class_names = self._class_names()

    # -- opening, one method per format ------------------------------------
    def _open_keras(self, path: str) -> Callable:
        model = load_model(path)
        self.path = model_file(path)
        self.runtime = f"Keras {keras.__version__} ({keras.backend.backend()})"
        self.input_shape = tuple(model.inputs[0].shape[1:])
        self.classes = int(model.outputs[0].shape[-1])
        self.outputs = "logits" if outputs_logits(model) else "probabilities"
        self._data_format = next((layer.data_format for layer in model.layers
                                  if isinstance(getattr(layer, "data_format", None), str)),
                                 None)
        try:
            self.preprocessing = spec_of(model).preprocessing
        except TypeError:
            pass  # not built by keras_resnet: pixels / 255, as kr.load_data gives
        self._model = model  # kept alive with the closure

        def run(x: np.ndarray) -> np.ndarray:
            if len(x) <= BATCH_SIZE:  # one call, as a server would make it
                return np.asarray(keras.ops.convert_to_numpy(model.predict_on_batch(x)))
            return np.asarray(model.predict(x, batch_size=BATCH_SIZE, verbose=0))

        return run

    def _open_saved_model(self, path: str) -> Callable:
        import tensorflow as tf

        loaded = tf.saved_model.load(path)  # keep a reference: serve() needs its variables
        spec = loaded.serve.input_signature[0]
        out = next(iter(loaded.signatures["serving_default"].structured_outputs.values()))
        self.runtime = f"TensorFlow {tf.__version__} (SavedModel)"
        self.input_shape = tuple(spec.shape[1:])
        self.classes = int(out.shape[-1])
        self._model = loaded
        return lambda x: loaded.serve(tf.constant(x)).numpy()

    def _open_onnx(self, path: str) -> Callable:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        inp, out = session.get_inputs()[0], session.get_outputs()[0]
        self.runtime = f"onnxruntime {ort.__version__}"
        self.input_shape = tuple(d if isinstance(d, int) else None for d in inp.shape[1:])
        self.classes = int(out.shape[-1])
        self._model = session
        return lambda x: np.asarray(session.run([out.name], {inp.name: x})[0], "float32")

    def _open_tflite(self, path: str) -> Callable:
        interpreter, self.runtime = _interpreter(path, self.threads or 1)
        inp = interpreter.get_input_details()[0]
        out = interpreter.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in inp["shape"][1:])
        self.classes = int(out["shape"][-1])
        self.io = {side: {"dtype": np.dtype(d["dtype"]).name,
                          "scale": float(d["quantization"][0]),
                          "zero_point": int(d["quantization"][1])}
                   for side, d in (("input", inp), ("output", out))}
        self._model = interpreter
        state: dict[str, int | None] = {"batch": None}

        def run(x: np.ndarray) -> np.ndarray:
            if state["batch"] != len(x):
                interpreter.resize_tensor_input(inp["index"], [len(x), *self.input_shape])
                interpreter.allocate_tensors()
                state["batch"] = len(x)
            interpreter.set_tensor(inp["index"], to_input(x, inp))
            interpreter.invoke()
            return np.asarray(from_output(interpreter.get_tensor(out["index"]), out))

        return run

    def _class_names(self) -> list | None:
        """Class names from ``labels.json`` or the model card; the card also says
        the outputs' kind and the export's preprocessing."""
        inside = self.format == "saved_model"
        folder = self.path if inside else os.path.dirname(os.path.abspath(self.path))
        card = _json(os.path.join(folder, JSON_NAME))
        model = card.get("model") if isinstance(card, dict) else None
        names = None
        if isinstance(model, dict):
            entry = (card.get("exports") or {}).get(
                os.path.basename(os.path.abspath(self.path))) or {}
            if entry.get("weights_sha256") in (None, model.get("weights_sha256")):
                if self.outputs is None and model.get("outputs") in ("logits",
                                                                     "probabilities"):
                    self.outputs = model["outputs"]
                if self.format != "keras" and model.get("preprocessing") is not None:
                    raw = str(entry.get("input", "")).startswith("raw pixels")
                    self.preprocessing = "none" if raw else model["preprocessing"]
                names = model.get("class_names")
        labels = _json(os.path.join(folder, "labels.json"))
        for candidate in (labels, names):
            if isinstance(candidate, list) and len(candidate) == self.classes:
                return [str(n) for n in candidate]
        return None

    # -- running --------------------------------------------------------------
    def _as_input(self, x: Any) -> np.ndarray:
        x = np.asarray(x, "float32")
        if x.ndim == len(self.input_shape):
            x = x[None]
        if self.channels_first and x.shape[1:] == tuple(self.image_shape) \
                and x.shape[1:] != tuple(self.input_shape):
            x = np.moveaxis(x, -1, 1)  # channels-last images for a channels-first model
        want = self.input_shape
        if x.ndim != len(want) + 1 or any(w is not None and w != g
                                          for w, g in zip(want, x.shape[1:])):
            C.fail("x", f"must be a batch of the model's inputs {tuple(want)}",
                   f"an array of shape {x.shape}")
        return np.ascontiguousarray(x)

    def __call__(self, x: Any) -> np.ndarray:
        """The model's outputs (logits or probabilities, as it returns them) as float32.

        Args:
            x: A batch of inputs (or one input) of the model's input shape;
                a channels-first model also takes channels-last images.

        Returns:
            ``(n, classes)`` float32.
        """
        x = self._as_input(x)
        if len(x) <= BATCH_SIZE or self.format == "keras":  # Keras batches by itself
            return self._run(x).astype("float32", copy=False)
        parts = [self._run(x[i:i + BATCH_SIZE]) for i in range(0, len(x), BATCH_SIZE)]
        return np.concatenate(parts).astype("float32", copy=False)

    def predict(self, x: Any) -> np.ndarray:
        """Class probabilities: the outputs, with a softmax where they are logits.

        Args:
            x: A batch of inputs (or one input), as for :meth:`__call__`.

        Returns:
            ``(n, classes)`` float32 probabilities.
        """
        y = self(x)
        logits = self.outputs == "logits" or (self.outputs is None and not _distributions(y))
        if logits:
            z = np.exp(y - y.max(-1, keepdims=True))
            y = z / z.sum(-1, keepdims=True)
        return y

    def __repr__(self) -> str:
        threads = f", threads={self.threads}" if self.threads else ""
        return f"ExportedModel({self.path!r}, {self.format}, {self.runtime}{threads})"


def _distributions(y: np.ndarray) -> bool:
    """Rows that are already probabilities (an int8 output's rows sum to 1 within
    its rounding)."""
    return bool(np.all(y >= -1e-6) and np.all(y <= 1 + 1e-6)
                and np.allclose(y.sum(-1), 1, atol=0.05))


def open_model(path: str | os.PathLike, threads: int | None = None) -> ExportedModel:
    """Opens a model file with its own runtime, for predictions.

    Args:
        path: A ``.keras`` file or run folder (Keras), a SavedModel folder
            (TensorFlow), a ``.tflite`` file (LiteRT) or an ``.onnx`` file
            (onnxruntime).
        threads: Threads per inference for ``.tflite`` and ``.onnx`` (default:
            every core this process may use). Keras and SavedModel use the
            process' own thread pools.

    Returns:
        An :class:`ExportedModel`: ``model.predict(x)`` gives float32 class
        probabilities for a batch, ``model(x)`` the raw outputs.

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: an unknown suffix, or ``threads`` for a Keras model.

    Example:

    ```python
    model = open_model("exported/m_int8.tflite")
    model.predict(x[:4]).argmax(-1)
    ```
    """
    if not os.path.exists(os.fspath(path)):
        raise FileNotFoundError(f"model file {os.fspath(path)!r} does not exist")
    return ExportedModel(path, threads)


def run_export(path: str, format: str, x: np.ndarray) -> np.ndarray:  # noqa: A002
    """Runs an export on ``x`` with the format's own runtime (its raw outputs)."""
    model = open_model(path)
    if model.format != format:
        raise ValueError(f"{path!r} is a {model.format} model, not {format}")
    return model(x)


def latencies(runs: dict, example: np.ndarray, repeats: int, warmup: int = 3) -> dict:
    """Median wall time in ms of each callable on one example (batch 1), measured
    in interleaved rounds: every round runs each once, in a rotated order, so a
    slower or busier moment of the machine falls on all of them alike.

    Args:
        runs: Name -> callable taking a batch.
        example: One input (no batch axis).
        repeats: Timed runs of each.
        warmup: Untimed runs of each first.

    Returns:
        Name -> median milliseconds.
    """
    x = example[None]
    names = list(runs)
    for name in names:
        for _ in range(warmup):
            runs[name](x)
    times: dict = {name: [] for name in names}
    for i in range(repeats):
        for name in names[i % len(names):] + names[:i % len(names)]:
            start = time.perf_counter()
            runs[name](x)
            times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}
