"""What a model takes as input: raw images through its recorded preprocessing.

:func:`preprocess_input` applies a model's ``ModelSpec.preprocessing`` (see
:mod:`keras_resnet.preprocessing`) to raw images; :func:`load_image` reads an
image file the way ``keras.utils.load_img`` does, at the model's input size,
and preprocesses it. With ``keras.applications``' weights the results equal
``keras.applications.<family>.preprocess_input`` exactly.

Example:

```python
import numpy as np
import keras_resnet as kr

model = kr.build_resnet("cifar_resnet20")             # records "unit": x / 255
raw = np.random.randint(0, 256, (2, 32, 32, 3), dtype="uint8")
x = kr.preprocess_input(raw, model)                    # float32 in [0, 1]
probabilities = model.predict(x, verbose=0)
```
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np

from keras_resnet import preprocessing as P
from keras_resnet import presets
from keras_resnet.builders import as_spec
from keras_resnet.layers import apply_preprocessing
from keras_resnet.plan import to_hwc
from keras_resnet.spec import ModelSpec


def input_convention(model_or_spec: Any) -> tuple:
    """``(spec, data_format)`` of a model built by keras_resnet or of a spec.

    Args:
        model_or_spec: A model (or one containing one), a ``ModelSpec``, its
            dict form, a spec file or a preset name.

    Returns:
        The spec and the image data format its input is in (the model's, or
        Keras' global one for a spec).
    """
    if isinstance(model_or_spec, keras.Model):
        holder = presets.spec_holder(model_or_spec)
        if holder is None:
            raise TypeError(
                f"model {model_or_spec.name!r} was not built by keras_resnet, so it "
                "records no preprocessing; use its own library's preprocess_input")
        return holder._resnet_spec, getattr(holder, "_resnet_data_format",
                                            keras.config.image_data_format())
    spec = model_or_spec if isinstance(model_or_spec, ModelSpec) else as_spec(model_or_spec)
    return spec, keras.config.image_data_format()


def preprocess_input(images: Any, model_or_spec: Any, data_format: str | None = None) -> Any:
    """Turns raw images into what a model expects, as its spec records.

    The model's ``ModelSpec.preprocessing`` (``"unit"``: ``x / 255``;
    ``"caffe"``/``"tf"``: ``keras.applications``' ResNet and ResNet V2
    conventions; ``"torch"``; ``"none"``; or keras-hub's ``{"scale",
    "offset"}``). Integer inputs become ``keras.config.floatx()``; float inputs
    keep their dtype; the input is not changed in place.

    Args:
        images: Raw images, values in ``[0, 255]``: one image or a batch, as a
            NumPy array (or list) or a backend tensor.
        model_or_spec: A model built by keras_resnet, or a spec / preset name.
        data_format: Layout of ``images``; None means the model's (a spec's:
            Keras' global one).

    Returns:
        A NumPy array for NumPy input, a tensor for a tensor.

    Example:

    ```python
    model = kr.build_resnet("resnet50", weights="imagenet")   # records "caffe"
    x = kr.preprocess_input(raw_uint8_images, model)          # = keras.applications'
    ```
    """
    spec, model_format = input_convention(model_or_spec)
    data_format = data_format or model_format
    if isinstance(images, (np.ndarray, list, tuple, np.generic)):
        return P.apply(np.asarray(images), spec.preprocessing, data_format)
    return apply_preprocessing(images, spec.preprocessing, data_format)


def load_image(filepath: str | os.PathLike, model_or_spec: Any) -> np.ndarray:
    """Reads an image file as a model's input: resized, preprocessed as recorded.

    ``keras.utils.load_img`` (nearest-neighbour resizing to the model's input
    size; a size of None keeps the image's), ``keras.utils.img_to_array`` in
    the model's data format, then :func:`preprocess_input`: what
    ``keras.applications``' pipeline (``load_img``, ``img_to_array``,
    ``preprocess_input``) gives for their weights.

    Args:
        filepath: An image file (PNG, JPEG, BMP, GIF).
        model_or_spec: A model built by keras_resnet, or a spec / preset name.
            Its channels choose the colour mode (1: grey, 3: RGB, 4: RGBA).

    Returns:
        A float array shaped as one input of the model (no batch axis).

    Example:

    ```python
    x = kr.load_image("cat.jpg", model)
    probabilities = model.predict(x[None], verbose=0)[0]
    ```
    """
    filepath = os.fspath(filepath)
    if not os.path.isfile(filepath):
        raise FileNotFoundError(f"image file {filepath!r} does not exist")
    spec, data_format = input_convention(model_or_spec)
    if spec.is_mlp:
        raise ValueError(f"load_image needs a model on images; this one takes "
                         f"{spec.input_shape} vectors")
    h, w, c = to_hwc(tuple(spec.input_shape), data_format)
    mode = {1: "grayscale", 3: "rgb", 4: "rgba"}.get(c)
    if mode is None:
        raise ValueError(f"the model takes {c} channels; image files have 1, 3 or 4")
    try:
        img = keras.utils.load_img(filepath, color_mode=mode,
                                   target_size=None if h is None or w is None else (h, w))
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds
        raise ValueError(f"{filepath!r} is not a readable image ({e})") from None
    x = keras.utils.img_to_array(img, data_format=data_format)
    return P.apply(x, spec.preprocessing, data_format)
