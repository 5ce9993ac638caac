"""Serving: load a trained model, export it (checked, quantized, with a card), predict.

One job per module:

- :mod:`~keras_resnet.serving.load`: ``.keras`` files and run folders;
- :mod:`~keras_resnet.serving.exporter`: :func:`export` (temp path, verify,
  card, rename);
- :mod:`~keras_resnet.serving.formats`: suffixes, tolerances, quantizations;
- :mod:`~keras_resnet.serving.convert`: TensorFlow's converters;
- :mod:`~keras_resnet.serving.quantize`: calibration data and quantization;
- :mod:`~keras_resnet.serving.verify`: the fresh-process check and its verdict;
- :mod:`~keras_resnet.serving.runtime`: :func:`open_model`, any model file
  run by its own runtime (Keras, LiteRT, onnxruntime) with one interface;
- :mod:`~keras_resnet.serving.machine`: the CPU and thread counts latencies
  are measured with;
- :mod:`~keras_resnet.serving._worker`: the fresh process;
- :mod:`~keras_resnet.serving.card`: ``model_card.json`` and ``MODEL_CARD.md``;
- :mod:`~keras_resnet.serving.predict`: top classes for image files.

Serving needs nothing from training: it reads a run folder's files.
"""

from typing import Any

from keras_resnet import _checks as C
from keras_resnet.serving.exporter import ExportResult, export
from keras_resnet.serving.load import load_model
from keras_resnet.serving.predict import predict_files, read_image
from keras_resnet.serving.runtime import ExportedModel, open_model
from keras_resnet.serving.verify import AccuracyDropError, ExportVerificationError, Latency

__all__ = ["AccuracyDropError", "ExportResult", "ExportVerificationError", "ExportedModel",
           "Latency", "export", "load_model", "open_model", "predict_files", "read_image"]

#: Names removed: name -> (when, what to use instead).
_REMOVED = {"load_image": ("deprecated in 0.3 and is removed",
                           "kr.load_image(filepath, model), which applies the model's "
                           "recorded preprocessing")}


def __getattr__(name: str) -> Any:
    C.no_attribute("keras_resnet.serving", name, _REMOVED)
