"""Top classes of a trained model for image files (``keras-resnet predict``).

Any model file (``.keras``, a run folder, a SavedModel, ``.tflite``, ``.onnx``)
is opened with its own runtime (:func:`~keras_resnet.serving.open_model`).
Every image is checked first (:func:`~keras_resnet.imagecheck.check_image_files`:
a file the model could not read stops the command before any prediction,
naming it), then read at the model's input size and given the preprocessing
the model records (``kr.preprocess_input``: what its weights expect). Classes
are named by ``labels.json`` of the run folder, or the model card beside an
export.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from keras_resnet import _checks as C
from keras_resnet import preprocessing as P
from keras_resnet.imagecheck import check_image_files
from keras_resnet.serving.runtime import ExportedModel, open_model


def _labels(labels: str | list | None, found: list | None, classes: int) -> list:
    if labels is None:
        names: Any = found or [str(i) for i in range(classes)]
    elif isinstance(labels, list):
        names = labels
    else:
        with open(labels, encoding="utf-8") as fh:
            names = json.load(fh)
    if not isinstance(names, list) or len(names) != classes:
        C.fail("labels", f"must be a list of {classes} class names", str(names)[:80])
    return [str(n) for n in names]


def read_image(filepath: str, model: ExportedModel) -> np.ndarray:
    """An image file as ``model``'s input: resized to its input size as
    ``keras.utils.load_img`` does, then given the model's recorded preprocessing.

    Args:
        filepath: Image file (PNG, JPEG, ...).
        model: An opened model (:func:`~keras_resnet.serving.open_model`).

    Returns:
        A float32 array of the model's image shape ``(height, width, channels)``.
    """
    h, w, c = model.image_shape
    mode = {1: "grayscale", 3: "rgb", 4: "rgba"}.get(c)
    if mode is None:
        C.fail("model", "must take images of 1, 3 or 4 channels", model.image_shape)
    try:
        img = keras.utils.load_img(filepath, color_mode=mode,
                                   target_size=None if h is None or w is None else (h, w))
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds
        raise C.InvalidInput(f"{filepath!r} is not a readable image ({e})") from None
    x = keras.utils.img_to_array(img, data_format="channels_last", dtype="float32")
    return np.asarray(P.apply(x, model.preprocessing, "channels_last"), "float32")


def predict_files(model: Any, images: list, top: int = 3,
                  labels: str | list | None = None) -> Iterator[tuple]:
    """Yields ``(image path, [(class name, probability), ...])`` for each image.

    Args:
        model: A ``.keras`` file, a run folder of ``kr.train``, a SavedModel
            folder, an exported ``.tflite`` / ``.onnx`` file (run by LiteRT /
            onnxruntime), or a loaded Keras model.
        images: Image file paths; all are checked before the first prediction.
        top: How many classes to return per image.
        labels: Class names: a list, a JSON file, or None for ``labels.json``
            next to the model (``keras-resnet train`` writes it), the class
            names of the model card next to an export, or class numbers.

    Example:

    ```python
    for path, top in kr.serving.predict_files("runs/r20", ["seven.png"], top=2):
        print(path, top)        # seven.png [('7', 0.98), ('1', 0.01)]
    ```
    """
    C.check_int("top", top, minimum=1)
    if isinstance(model, keras.Model):
        exported = _in_memory(model)
    else:
        exported = open_model(model)
    if len(exported.image_shape) != 3:
        C.fail("model", "must take images (predict reads image files)",
               exported.input_shape)
    check_image_files([os.fspath(i) for i in images])
    names = _labels(labels, exported.class_names, exported.classes)
    for path in images:
        p = exported.predict(read_image(path, exported)[None])[0]
        order = np.argsort(-p)[: min(top, exported.classes)]
        yield path, [(names[i], float(p[i])) for i in order]


def _in_memory(model: keras.Model) -> ExportedModel:
    """A loaded Keras model, opened as a file would be (saved to a temporary file)."""
    with tempfile.TemporaryDirectory(prefix="kr-predict-") as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        return open_model(path)  # loaded into memory: the file may go
