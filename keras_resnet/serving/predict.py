"""Top classes of a trained model for image files (``keras-resnet predict``).

Reads images the way training saw them (resized, scaled to [0, 1]) and names
the classes from ``labels.json`` of the run folder. An exported ``.tflite`` or
``.onnx`` file is run by its own runtime
(:func:`~keras_resnet.serving.runtime.open_model`), its classes named by
``labels.json`` or the model card beside it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from keras_resnet import _checks as C
from keras_resnet.builders import outputs_logits
from keras_resnet.serving.load import load_model, model_file
from keras_resnet.serving.runtime import open_model


def _labels(model_path: str, labels: str | list | None, classes: int) -> list:
    if isinstance(labels, list):
        names = labels
    else:
        path = labels or os.path.join(os.path.dirname(os.path.abspath(model_path)),
                                      "labels.json")
        if labels is None and not os.path.exists(path):
            return [str(i) for i in range(classes)]
        with open(path, encoding="utf-8") as fh:
            names = json.load(fh)
    if not isinstance(names, list) or len(names) != classes:
        raise ValueError(f"labels must be a list of {classes} class names. Received: "
                         f"{str(names)[:80]}")
    return [str(n) for n in names]


def load_image(path: str, input_shape: tuple) -> np.ndarray:
    """Reads an image as the model's input: resized, scaled to [0, 1] as in training.

    Args:
        path: Image file (PNG, JPEG, ...).
        input_shape: The model's ``(height, width, channels)``; None sizes keep
            the image's own.

    Returns:
        A float32 array of shape ``input_shape``.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file {path!r} does not exist")
    h, w, c = input_shape
    mode = {1: "grayscale", 3: "rgb", 4: "rgba"}.get(c)
    if mode is None:
        raise ValueError(f"the model takes {c} channels; images have 1, 3 or 4")
    try:
        img = keras.utils.load_img(path, color_mode=mode,
                                   target_size=None if h is None or w is None else (h, w))
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds
        raise ValueError(f"{path!r} is not a readable image ({e})") from None
    return keras.utils.img_to_array(img, dtype="float32") / 255.0


def predict_files(model: Any, images: list, top: int = 3,
                  labels: str | list | None = None) -> Iterator[tuple]:
    """Yields ``(image path, [(class name, probability), ...])`` for each image.

    Args:
        model: A ``.keras`` file, a run folder of ``kr.train``, a loaded model,
            or an exported ``.tflite`` / ``.onnx`` file (run by LiteRT /
            onnxruntime, see :func:`~keras_resnet.serving.runtime.open_model`).
        images: Image file paths.
        top: How many classes to return per image.
        labels: Class names: a list, a JSON file, or None for ``labels.json``
            next to the model (``keras-resnet train`` writes it), the class
            names of the model card next to an exported file, or class numbers.
    """
    C.check_int("top", top, minimum=1)
    model_path = model_file(model) if isinstance(model, str) else ""
    if model_path.lower().endswith((".tflite", ".onnx")):
        # An exported file runs with its own runtime (LiteRT, onnxruntime); its class
        # names come from labels.json or the model card beside it.
        exported = open_model(model_path)
        names = _labels(model_path, labels if labels is not None else exported.class_names,
                        exported.classes)
        for path in images:
            p = exported.predict(load_image(path, exported.image_shape)[None])[0]
            order = np.argsort(-p)[: min(top, exported.classes)]
            yield path, [(names[i], float(p[i])) for i in order]
        return
    if isinstance(model, str):
        model = load_model(model)
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3:
        raise ValueError(f"predict takes image models; this one takes {shape} vectors")
    logits = outputs_logits(model)
    classes = int(model.outputs[0].shape[-1])
    names = _labels(model_path, labels, classes)
    for path in images:
        x = load_image(path, shape)[None]
        p = np.asarray(model.predict(x, verbose=0))[0]
        if logits:
            p = keras.ops.convert_to_numpy(keras.ops.softmax(p))
        order = np.argsort(-p)[: min(top, classes)]
        yield path, [(names[i], float(p[i])) for i in order]
