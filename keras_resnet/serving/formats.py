"""The export formats: file suffix, check tolerance, quantizations, what each needs.

Keras-free data, read by the exporter, the converter and the worker process.
This is the one place that says which quantizations each format takes
(:data:`QUANTIZE`), which of them take int8 input and output
(:data:`INT8_IO`), and which are slower than float32 where measured
(:data:`SLOWER_THAN_FLOAT`, a warning at export).
"""

from __future__ import annotations

import importlib.util

from keras_resnet import _checks as C

FORMATS = ("keras", "saved_model", "tflite", "onnx")
#: Keras' own names of the formats (``Model.export(format=...)``) -> ours.
KERAS_NAMES = {"tf_saved_model": "saved_model", "litert": "tflite"}
SUFFIX = {"keras": ".keras", "tflite": ".tflite", "onnx": ".onnx"}
# Largest allowed difference between a float export's outputs and the model's.
TOLERANCE = {"keras": 1e-5, "saved_model": 1e-5, "tflite": 1e-4, "onnx": 1e-5}
# What each format can be quantized to (None: float32, as trained).
QUANTIZE = {"keras": (None,), "saved_model": (None,),
            "tflite": (None, "dynamic", "float16", "int8"),
            "onnx": (None, "int8", "dynamic")}
IO_DTYPES = ("float32", "int8")
# Formats whose full-integer model can also take and return int8 (io_dtype="int8").
INT8_IO = ("tflite",)
# Quantizations that run slower than the float32 export of the same format on every
# CPU and model measured (benchmarks/latency.py); exporting one warns with this advice.
SLOWER_THAN_FLOAT: dict[tuple[str, str | None], str] = {
    ("onnx", "dynamic"): (
        "quantize='dynamic' ONNX runs slower than float32 ONNX: onnxruntime quantizes "
        "every activation at run time and its ConvInteger kernels are slow on CPU (several "
        "times slower than float32 for ResNet-50 and cifar_resnet20, on an AVX-512 VNNI "
        "x86 CPU too). Use quantize='int8' (static int8, calibrated on representative "
        "data: smaller and faster than float32), or quantize=None"),
}
# Default largest drop of validation top-1 accuracy, in percentage points.
MAX_ACCURACY_DROP = 1.0


def canonical(format: str) -> str:  # noqa: A002
    """Our name of a format given in our words or Keras' (``"litert"`` is ``"tflite"``,
    ``"tf_saved_model"`` is ``"saved_model"``)."""
    if isinstance(format, str) and format in KERAS_NAMES:
        return KERAS_NAMES[format]
    return C.check_choice("format", format, FORMATS + tuple(KERAS_NAMES))


def check_format(format: str, quantize: str | None, io_dtype: str) -> None:  # noqa: A002
    """Raises the one-line error for a format, quantization or I/O type that do not go together."""
    C.check_choice("format", format, FORMATS)
    allowed = QUANTIZE[format]
    if quantize not in allowed or not (quantize is None or isinstance(quantize, str)):
        C.fail("quantize", f"must be one of {', '.join(map(repr, allowed))} for "
               f"format={format!r}", quantize)
    C.check_choice("io_dtype", io_dtype, IO_DTYPES)
    if io_dtype != "float32" and (quantize != "int8" or format not in INT8_IO):
        C.fail("io_dtype", "can be 'int8' only with quantize='int8' (full-integer "
               f"TFLite); this export has format={format!r}, quantize={quantize!r}",
               io_dtype)


def advice(format: str, quantize: str | None) -> str | None:  # noqa: A002
    """The warning for a quantization slower than float32 (None when it is not)."""
    return SLOWER_THAN_FLOAT.get((format, quantize))


def require(format: str, quantize: str | None = None) -> None:  # noqa: A002
    """Raises ImportError naming the extra to install when a format's tools are missing."""
    needs = {"keras": [], "saved_model": ["tensorflow"], "tflite": ["tensorflow"],
             "onnx": ["tensorflow", "tf2onnx", "onnxruntime"]}[format]
    if format == "onnx" and quantize:
        needs = needs + ["onnx"]
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        extra = "onnx" if format == "onnx" else "cpu"
        raise ImportError(
            f"format={format!r} needs {', '.join(missing)}: "
            f"pip install 'keras-resnet-builder[{extra}]'"
        )
