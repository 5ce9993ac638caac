"""Export a trained model, verified in a fresh process, never half-written.

| format | writes | reload with |
|---|---|---|
| ``"keras"`` | ``.keras`` file | ``keras.models.load_model`` (``import keras_resnet``) |
| ``"saved_model"`` | SavedModel folder | ``tf.saved_model.load(p).serve(x)``, ``TFSMLayer`` |
| ``"tflite"`` | ``.tflite`` file | ``ai_edge_litert`` / ``tf.lite.Interpreter`` (``[tflite]``) |
| ``"onnx"`` | ``.onnx`` file | ``onnxruntime`` (extra ``[onnx]``: tf2onnx, onnxruntime) |

SavedModels have the endpoint ``serve`` and the signature ``serving_default``.
Each export is written to a temporary path next to the target, reloaded in a
fresh Python process and compared with the Keras model on a random batch (max
abs difference <= 1e-5, 1e-4 for TFLite), and only then renamed into place, so
a crash or a failed check never leaves a half-written model where a good one
was. An existing target is replaced only with ``overwrite=True``. SavedModel,
TFLite and ONNX need TensorFlow (the exporters are TensorFlow's).

Example:

```python
result = kr.export(model, "exported/resnet", format="saved_model")
result.max_abs_diff   # e.g. 2.4e-07
```
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from keras_resnet import _checks as C
from keras_resnet._io import atomic_path

FORMATS = ("keras", "saved_model", "tflite", "onnx")
TOLERANCE = {"keras": 1e-5, "saved_model": 1e-5, "tflite": 1e-4, "onnx": 1e-5}
_SUFFIX = {"keras": ".keras", "tflite": ".tflite", "onnx": ".onnx"}


class ExportVerificationError(RuntimeError):
    """The reloaded export does not reproduce the model's outputs."""


@dataclass
class ExportResult:
    """What :func:`export` returns.

    Attributes:
        path: Where the export is.
        format: Its format.
        max_abs_diff: Largest difference between the reloaded export's and the
            model's outputs on the check batch (None when not verified).
        seconds: Time to write (and verify) it.
    """

    path: str
    format: str
    max_abs_diff: float | None
    seconds: float


def _sample(model: Any, batch: int = 4, seed: int = 0) -> np.ndarray:
    shape = [d if d is not None else 32 for d in model.inputs[0].shape[1:]]
    return np.random.RandomState(seed).uniform(0, 1, [batch] + shape).astype("float32")


def export(
    model: Any,
    path: str | os.PathLike,
    format: str = "saved_model",  # noqa: A002 - the name users expect
    *,
    overwrite: bool = False,
    verify: bool = True,
) -> ExportResult:
    """Exports a model and checks the result reloads with the same outputs.

    Args:
        model: A Keras model, or the path of a ``.keras`` file.
        path: Target file (``.keras``, ``.tflite``, ``.onnx``) or folder
            (SavedModel).
        format: ``"keras"``, ``"saved_model"``, ``"tflite"`` or ``"onnx"``.
        overwrite: Replace an existing ``path``.
        verify: Reload the export in a fresh process and compare outputs.

    Returns:
        An :class:`ExportResult`.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ExportVerificationError: the reloaded export differs from the model;
            nothing is written at ``path``.
    """
    import keras

    C.check_choice("format", format, FORMATS)
    C.check_bool("overwrite", overwrite)
    C.check_bool("verify", verify)
    path = os.fspath(path)
    suffix = _SUFFIX.get(format)
    if suffix and not path.endswith(suffix):
        C.fail("path", f"must end with {suffix!r} for format={format!r}", path)
    if isinstance(model, (str, os.PathLike)):
        model = load_model(os.fspath(model))
    if not isinstance(model, keras.Model):
        C.fail("model", "must be a keras.Model or a .keras file path", model, TypeError)
    start = time.perf_counter()
    diff = None
    with atomic_path(path, overwrite=overwrite) as tmp:
        _write(model, tmp, format)
        if verify:
            diff = verify_export(model, tmp, format)
    return ExportResult(path, format, diff, time.perf_counter() - start)


_KERAS_FORMATS = {"saved_model": "tf_saved_model", "tflite": "litert", "onnx": "onnx"}


def _write(model: Any, tmp: str, format: str) -> None:  # noqa: A002
    import keras

    if format == "keras":
        model.save(tmp)
        return
    _require(format)
    if format in ("tflite", "onnx") and keras.backend.backend() != "tensorflow":
        # Keras converts these on TensorFlow only: hand the (backend-neutral)
        # .keras file to a TensorFlow process.
        with tempfile.TemporaryDirectory(prefix="keras_resnet_convert_") as work:
            src = os.path.join(work, "model.keras")
            model.save(src)
            _run_helper(["--convert", format, src, tmp], "tensorflow", 1800,
                        RuntimeError, f"converting to {format} on TensorFlow failed")
        return
    _convert(model, tmp, format)


def _run_helper(args: list, backend: str | None, timeout: int, error: type,
                message: str) -> None:
    """Runs this module's command line in a fresh process; raises ``error`` on failure.

    The message ends with the last lines the process printed (its error).
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if backend is not None:
        env["KERAS_BACKEND"] = backend
    proc = subprocess.run([sys.executable, "-m", "keras_resnet.export", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise error(f"{message}: " + " | ".join(tail))


def _convert(model: Any, tmp: str, format: str) -> None:  # noqa: A002
    model(_sample(model, batch=1))  # the ONNX exporter wants a model that was called
    model.export(tmp, format=_KERAS_FORMATS[format], verbose=False)
    if format == "tflite" and not os.path.exists(tmp) and os.path.exists(tmp + ".tflite"):
        os.replace(tmp + ".tflite", tmp)


def _require(format: str) -> None:  # noqa: A002
    needs = {"saved_model": ["tensorflow"], "tflite": ["tensorflow"],
             "onnx": ["tensorflow", "tf2onnx", "onnxruntime"]}[format]
    import importlib.util

    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        extra = "onnx" if format == "onnx" else "cpu"
        raise ImportError(
            f"format={format!r} needs {', '.join(missing)}: "
            f"pip install 'keras-resnet-builder[{extra}]'"
        )


def verify_export(model: Any, path: str, format: str,  # noqa: A002
                  atol: float | None = None) -> float:
    """Reloads an export in a fresh process and compares it with ``model``.

    Args:
        model: The Keras model that was exported.
        path: The export.
        format: Its format.
        atol: Largest allowed difference (default: 1e-5, 1e-4 for TFLite).

    Returns:
        The largest absolute difference.

    Raises:
        ExportVerificationError: the difference exceeds ``atol`` or the export
            does not reload.
    """
    atol = TOLERANCE[format] if atol is None else atol
    x = _sample(model)
    expected = np.asarray(model.predict(x, verbose=0))
    with tempfile.TemporaryDirectory(prefix="keras_resnet_verify_") as tmp:
        np.save(os.path.join(tmp, "x.npy"), x)
        _run_helper([format, path, os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")],
                    None if format == "keras" else "tensorflow",  # the exporters' runtime
                    900, ExportVerificationError,
                    f"the {format} export at {path!r} did not reload in a fresh process")
        got = np.load(os.path.join(tmp, "y.npy"))
    if got.shape != expected.shape:
        raise ExportVerificationError(
            f"the {format} export returns shape {got.shape}, the model {expected.shape}")
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= atol:
        raise ExportVerificationError(
            f"the {format} export differs from the model by {diff:.3g} (allowed "
            f"{atol:g}); nothing was written")
    return diff


def run_export(path: str, format: str, x: np.ndarray) -> np.ndarray:  # noqa: A002
    """Runs an export on ``x`` with the format's own runtime (what users would do)."""
    if format == "keras":
        import keras

        import keras_resnet  # noqa: F401 - registers the custom objects

        return np.asarray(keras.models.load_model(path).predict(x, verbose=0))
    if format == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(path)  # keep a reference: serve() needs its variables
        return loaded.serve(tf.constant(x)).numpy()
    if format == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return np.asarray(session.run(None, {name: x})[0])
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806
    outputs = []
    interpreter = Interpreter(model_path=path)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], [1] + list(x.shape[1:]))
    interpreter.allocate_tensors()
    for row in x:
        interpreter.set_tensor(inp["index"], row[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out["index"])[0])
    return np.stack(outputs)


def load_model(path: str) -> Any:
    """Loads a ``.keras`` file (with this package's layers registered)."""
    import keras

    import keras_resnet  # noqa: F401 - registers the custom objects

    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {path!r} does not exist")
    try:
        return keras.models.load_model(path)
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise ValueError(f"{path!r} is not a readable .keras model ({e})") from None
    except Exception as e:  # noqa: BLE001 - zip/h5 errors of a corrupt file
        raise ValueError(f"{path!r} is not a readable .keras model "
                         f"({type(e).__name__}: {e})") from None


def _main(argv: list) -> int:
    """The helper processes.

    ``python -m keras_resnet.export FORMAT PATH X.npy Y.npy`` runs an export on
    X and saves Y (the check); ``--convert FORMAT SRC.keras DST`` converts.
    """
    if argv[0] == "--convert":
        fmt, src, dst = argv[1:]
        _convert(load_model(src), dst, fmt)
        return 0
    fmt, path, x_path, y_path = argv
    y = run_export(path, fmt, np.load(x_path))
    np.save(y_path, y)
    print(json.dumps({"shape": list(y.shape)}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main(sys.argv[1:]))
