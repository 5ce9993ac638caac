"""What the Keras-free core may know of Keras: only what is already loaded.

The spec, the plan and the registry never import Keras (so a spec can be
validated, planned and counted anywhere). Two checks still depend on Keras'
state: the global image data format (``keras.config.image_data_format()``,
which says where the channels of ``input_shape`` are) and whether an
activation or initializer name is one Keras knows. They read the Keras module
*if it is already imported* (``import keras_resnet`` imports it through the
builders); without Keras loaded the data format is ``"channels_last"`` and
names are only checked to be strings. Nothing here imports anything.
"""

from __future__ import annotations

import sys
from typing import Any

DATA_FORMATS = ("channels_last", "channels_first")


def loaded_keras() -> Any:
    """The Keras module if it is imported, else None."""
    return sys.modules.get("keras")


def image_data_format() -> str:
    """Keras' global image data format, or ``"channels_last"`` without Keras."""
    keras = loaded_keras()
    if keras is None:
        return "channels_last"
    return keras.config.image_data_format()


def keras_getter(kind: str) -> Any:
    """``keras.activations.get`` / ``keras.initializers.get``, or None without Keras."""
    keras = loaded_keras()
    if keras is None:
        return None
    return getattr(keras, kind).get


def floatx() -> str:
    """Keras' default float type (``keras.config.floatx()``), or ``"float32"`` without Keras."""
    keras = loaded_keras()
    if keras is None:
        return "float32"
    return keras.config.floatx()
