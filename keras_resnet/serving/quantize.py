"""Quantization: the data it needs, and how TFLite and ONNX are quantized.

| ``quantize`` | TFLite | ONNX |
|---|---|---|
| ``"dynamic"`` | int8 weights, float activations | int8 weights (``quantize_dynamic``) |
| ``"float16"`` | float16 weights | - |
| ``"int8"`` | full integer, calibrated on representative data | - |

A full-integer TFLite model takes and returns float32, or int8 with
``io_dtype="int8"``.

This module owns the examples: :func:`examples` turns what a user passes
(a :class:`~keras_resnet.Data`, arrays, ``(x, y)`` pairs, a dataset) into a
checked float32 array, the one form the converters and the worker take.
"""

from __future__ import annotations

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


def quantize_onnx(src: str, dst: str) -> None:
    """Dynamic int8 quantization of an ONNX file (weights int8, activations at run time).

    Per-channel 7-bit weights (``reduce_range``): on CPUs without VNNI the
    8-bit kernels saturate; on a digits-trained net full 8-bit per-channel
    weights lost 1.1 points of top-1 where 7-bit lost none (onnxruntime's own
    advice for these machines).
    """
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # its pre-processing advice, every time
    quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=True,
                     reduce_range=True)


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
