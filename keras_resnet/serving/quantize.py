"""Quantization: the data it needs, and how TFLite and ONNX are quantized.

| ``quantize`` | TFLite | ONNX |
|---|---|---|
| ``"int8"`` | full integer, calibrated | static int8 (QDQ), calibrated |
| ``"dynamic"`` | int8 weights | int8 weights, activations at run time (slow: warns) |
| ``"float16"`` | float16 weights | - |

Both ``"int8"`` exports are calibrated on the same representative examples
and judged by the same accuracy gate (``max_accuracy_drop``). A full-integer
TFLite model takes and returns float32, or int8 with ``io_dtype="int8"``; an
int8 ONNX model takes and returns float32 (its first operator quantizes).

This module owns the examples: :func:`examples` turns what a user passes
(a :class:`~keras_resnet.Data`, arrays, ``(x, y)`` pairs, a dataset) into a
checked float32 array, the one form the converters and the worker take.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from keras_resnet import _checks as C

# Examples used for int8 calibration when they come from a run folder's data.
REPRESENTATIVE_EXAMPLES = 300


def _bad(field: str, requirement: str, received: str) -> None:
    raise ValueError(f"{field} {requirement}. Received: {received}")


def _pairs(data: Any, split: str) -> Any:
    """The split of a ``Data`` (``train`` or ``validation``), else ``data`` itself."""
    if hasattr(data, "train") and hasattr(data, "validation"):
        part = getattr(data, split)
        if part is None:
            raise ValueError(f"the data {getattr(data, 'name', '')!r} has no {split} split")
        return part
    return data


def _collect(data: Any, field: str, limit: int | None) -> tuple:
    """``(x, y or None)`` as NumPy arrays from arrays, pairs or an iterable of batches."""
    if isinstance(data, np.ndarray):
        return data[:limit], None
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], np.ndarray):
        return data[0][:limit], np.asarray(data[1])[:limit]
    if isinstance(data, (list, tuple)) and data and all(
            isinstance(a, np.ndarray) and a.ndim >= 1 for a in data):
        return np.stack(data)[:limit], None
    if isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
        C.fail(field, "must be a kr.Data, an array of examples, an (x, y) pair of arrays "
               f"or a dataset of batches (got {C.type_name(data)})", data, TypeError)
    xs, ys, count = [], [], 0
    for batch in data:
        x, y = batch if isinstance(batch, (tuple, list)) and len(batch) == 2 else (batch, None)
        x = np.asarray(x)
        xs.append(x)
        if y is not None:
            ys.append(np.asarray(y))
        count += len(x)
        if limit is not None and count >= limit:
            break
    if not xs:
        C.fail(field, "must hold at least one example", data)
    x = np.concatenate(xs)[:limit]
    y = np.concatenate(ys)[:limit] if len(ys) == len(xs) else None
    return x, y


def examples(data: Any, input_shape: tuple, field: str, split: str = "train",
             limit: int | None = None, labels: bool = False) -> tuple:
    """Checked float32 examples (and integer labels) from what a user passes.

    Args:
        data: A :class:`~keras_resnet.Data` (its ``split`` is used), an array
            of examples, an ``(x, y)`` pair, or an iterable of ``(x, y)`` / ``x``
            batches (e.g. a ``tf.data.Dataset``).
        input_shape: The model's input shape without the batch axis (None
            sizes take any size).
        field: The argument's name, for errors.
        split: Which split of a ``Data``.
        limit: Most examples to take.
        labels: Labels are required (validation); one-hot labels become integers.

    Returns:
        ``(x, y)``: float32 examples and int labels (None when not ``labels``).
    """
    x, y = _collect(_pairs(data, split), field, limit)
    want = tuple(input_shape)
    if x.ndim != len(want) + 1 or any(w is not None and w != g
                                      for w, g in zip(want, x.shape[1:])):
        _bad(field, f"must hold examples of the model's input shape {want}",
             f"examples of shape {tuple(x.shape[1:])}")
    if len(x) == 0:
        _bad(field, "must hold at least one example", "0 examples")
    x = x.astype("float32")
    if not np.isfinite(x).all():
        _bad(field, "must hold finite values", "examples with NaN or inf")
    if not labels:
        return x, None
    if y is None:
        _bad(field, "must have labels: a kr.Data, an (x, y) pair or a dataset of "
             "(x, y) batches", "examples without labels")
    y = np.asarray(y)
    if y.ndim == 2:
        y = y.argmax(-1)
    if y.shape != (len(x),):
        _bad(field, f"must have one label per example ({len(x)})",
             f"labels of shape {y.shape}")
    return x, y.astype("int64")


def configure_tflite(converter: Any, quantize: str | None, io_dtype: str,
                     representative: np.ndarray | None) -> None:
    """Sets a ``tf.lite.TFLiteConverter`` up for ``quantize``."""
    import tensorflow as tf

    if quantize is None:
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        rep = np.asarray(representative, "float32")
        converter.representative_dataset = lambda: ([row[None]] for row in rep)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io_dtype == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8


@contextlib.contextmanager
def _quiet_onnxruntime() -> Iterator[None]:
    """onnxruntime.quantization logs advice on the root logger at every call:
    silenced while it runs, the user's logging left as it was."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


#: Operator types static int8 quantizes; any other op (e.g. the final Softmax)
#: keeps float32 input and output, so probabilities are not rounded to 1/256.
ONNX_INT8_OPS = ("Conv", "Gemm", "MatMul", "Add", "Mul", "Relu", "Clip", "MaxPool",
                 "AveragePool", "GlobalAveragePool", "Pad", "Reshape", "Squeeze",
                 "Unsqueeze", "Flatten", "Transpose", "Concat", "Split", "Slice", "Resize")
#: Examples per calibration run of onnxruntime, one at a time as TFLite's calibration
#: takes them: on ResNet-50 at 224x224, 64 examples took the same time at batch 1, 4
#: and 16, with a peak memory of 1.5, 2.1 and 4.7 GB.
ONNX_CALIBRATION_BATCH = 1


def onnx_int8_options() -> dict:
    """The settings of ``quantize="int8"`` for ONNX (``onnxruntime.quantization.quantize_static``).

    - QDQ format (QuantizeLinear/DequantizeLinear pairs around float ops): the
      form onnxruntime fuses into its integer kernels (QLinearConv...) and the
      one other runtimes read.
    - uint8 activations, int8 weights (U8S8): the fast pairing of
      onnxruntime's x86 kernels (VNNI, AVX2); int8 activations (S8S8) ran about
      2x slower on an AVX-512 VNNI CPU.
    - Per-channel weights: one scale per output channel (what TFLite does);
      per-tensor scales cost accuracy on convolutions whose channels differ.
    - 7-bit weights (``reduce_range``): CPUs without VNNI multiply uint8 by
      int8 with 16-bit saturating sums (AVX2's ``vpmaddubsw``); with 7-bit
      weights no sum saturates, so the accuracy measured at export holds on
      every x86 CPU. On VNNI CPUs it costs no speed.
    - MinMax calibration over the representative examples (the range TFLite's
      int8 converter takes too): on digits it kept top-1 exactly, as entropy and
      percentile calibration did, at a fraction of their time.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType

    return dict(quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                calibrate_method=CalibrationMethod.MinMax,
                op_types_to_quantize=list(ONNX_INT8_OPS))


def quantize_onnx(src: str, dst: str, quantize: str = "dynamic",
                  representative: np.ndarray | None = None, **options: Any) -> None:
    """Quantizes an ONNX file with onnxruntime.

    ``"int8"``: static quantization, calibrated on ``representative``, with
    :func:`onnx_int8_options` (``options`` overrides them, for benchmarks of
    variants). The float model is first prepared with onnxruntime's
    ``quant_pre_process`` (shape inference and graph clean-up, which let more
    operators be quantized). Activations are quantized with scales fixed at
    export, so onnxruntime runs integer kernels end to end: on an AVX-512 VNNI
    CPU about 3-4x faster than float32 ONNX for ResNet-50.

    ``"dynamic"`` (``quantize_dynamic``): int8 per-channel 7-bit weights,
    activations quantized at run time. Smaller, but slower than float32 on the
    CPUs measured (see :data:`~keras_resnet.serving.formats.SLOWER_THAN_FLOAT`).

    Args:
        src: The float32 ONNX file.
        dst: The file to write.
        quantize: ``"int8"`` or ``"dynamic"``.
        representative: float32 examples of the model's input (``"int8"``).
        **options: Arguments of ``quantize_static`` replacing the defaults.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_onnxruntime():
        if quantize == "dynamic":
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=True)
            return
        if representative is None:
            raise ValueError("quantize='int8' needs representative examples")
        import onnxruntime as ort
        from onnxruntime.quantization import CalibrationDataReader, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        name = ort.InferenceSession(src, providers=["CPUExecutionProvider"]
                                    ).get_inputs()[0].name
        rep = np.asarray(representative, "float32")

        class Reader(CalibrationDataReader):  # type: ignore[misc]
            def __init__(self) -> None:
                self.batches = iter(range(0, len(rep), ONNX_CALIBRATION_BATCH))

            def get_next(self) -> dict | None:
                i = next(self.batches, None)
                return None if i is None else {name: rep[i:i + ONNX_CALIBRATION_BATCH]}

        with tempfile.TemporaryDirectory(prefix="keras_resnet_quantize_") as work:
            prepared = os.path.join(work, "prepared.onnx")
            # Symbolic shape inference (it needs sympy) is for dynamic shapes of
            # transformers; a convnet's shapes are inferred by ONNX's own.
            quant_pre_process(src, prepared, skip_symbolic_shape=True)
            quantize_static(prepared, dst, Reader(), **{**onnx_int8_options(), **options})


def to_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float examples as a TFLite input tensor wants them (int8: scale and zero point)."""
    if detail["dtype"] == np.float32:
        return x
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(detail["dtype"])


def from_output(y: np.ndarray, detail: dict) -> np.ndarray:
    """A TFLite output tensor as float (int8: dequantized)."""
    if detail["dtype"] == np.float32:
        return y
    scale, zero = detail["quantization"]
    return ((y.astype("float32") - zero) * scale).astype("float32")
