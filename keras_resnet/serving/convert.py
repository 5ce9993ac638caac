"""Writing SavedModel, TFLite and ONNX files with TensorFlow's converters.

Runs where TensorFlow is the Keras backend: in the exporting process on
TensorFlow, in a TensorFlow worker process (from the ``.keras`` file) on JAX.
TFLite goes SavedModel -> ``tf.lite.TFLiteConverter`` (one path for float and
quantized files); ONNX is Keras' own exporter (tf2onnx), then onnxruntime's
static (``"int8"``, calibrated on the same representative examples as TFLite
int8) or dynamic quantization when asked.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from keras_resnet.serving.quantize import configure_tflite, quantize_onnx


def _called(model: Any) -> None:
    shape = [d if d is not None else 32 for d in model.inputs[0].shape[1:]]
    model(np.zeros([1] + shape, "float32"))  # the ONNX exporter wants a model that was called


def convert(model: Any, dst: str, format: str, quantize: str | None = None,  # noqa: A002
            io_dtype: str = "float32", representative: np.ndarray | None = None) -> None:
    """Writes ``model`` as ``format`` at ``dst`` (needs the TensorFlow backend).

    Args:
        model: A Keras model.
        dst: The file or folder to write.
        format: ``"saved_model"``, ``"tflite"`` or ``"onnx"``.
        quantize: See :mod:`keras_resnet.serving.quantize`.
        io_dtype: ``"int8"`` for a full-integer TFLite model's input and output.
        representative: float32 examples for int8 calibration (TFLite and ONNX).
    """
    if format == "saved_model":
        model.export(dst, format="tf_saved_model", verbose=False)
        return
    with tempfile.TemporaryDirectory(prefix="keras_resnet_convert_") as work:
        if format == "tflite":
            import tensorflow as tf

            saved = os.path.join(work, "saved_model")
            model.export(saved, format="tf_saved_model", verbose=False)
            converter = tf.lite.TFLiteConverter.from_saved_model(saved)
            configure_tflite(converter, quantize, io_dtype, representative)
            with open(dst, "wb") as fh:
                fh.write(converter.convert())
            return
        _called(model)
        target = os.path.join(work, "float.onnx") if quantize else dst
        model.export(target, format="onnx", verbose=False)
        if quantize:
            quantize_onnx(target, dst, quantize, representative)
