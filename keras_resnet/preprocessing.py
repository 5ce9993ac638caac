"""Input conventions as data: what a network expects its images to be.

A network's weights only mean something for the inputs they were trained on.
``ModelSpec.preprocessing`` records that convention, so it travels with the
spec, the ``.keras`` file and the run folder, and every tool that feeds the
model (``kr.preprocess_input``, ``kr.load_image``, the :class:`Preprocess`
layer of an export) applies the same one. Each convention turns *raw* images,
8-bit RGB values in ``[0, 255]`` as an image file decodes, into the model's
input:

| name | what it does to raw ``x`` | used by |
|---|---|---|
| ``"unit"`` | ``x / 255``: values in ``[0, 1]`` | this package's loaders, ``kr.train`` |
| ``"caffe"`` | RGB to BGR, minus the ImageNet BGR mean | ``keras.applications`` ResNet50 |
| ``"tf"`` | ``x / 127.5 - 1``: values in ``[-1, 1]`` | ``keras.applications`` ResNet50V2 |
| ``"torch"`` | ``x / 255``, minus ImageNet's mean, over its std | torchvision |
| ``"none"`` | nothing | models that preprocess inside |
| ``{"scale": s, "offset": o}`` | ``x * s + o`` (per channel: lists) | keras-hub's converters |

The named conventions repeat ``keras.applications.imagenet_utils.
preprocess_input`` operation by operation, so the results are equal to the
last bit. A spec (or ``.keras`` file) written before this field existed
means ``"unit"``: what this package's training always fed.

This module imports no Keras (a spec can be validated anywhere); it applies
a convention to NumPy arrays. ``kr.preprocess_input`` and the
:class:`~keras_resnet.layers.Preprocess` layer apply it to backend tensors
with the same steps.

Example:

```python
import numpy as np
from keras_resnet import preprocessing

raw = np.array([[[0, 128, 255]]], dtype="uint8")      # one RGB pixel
preprocessing.apply(raw, "tf")                          # [[[-1., 0.00392163, 1.]]]
preprocessing.apply(raw, {"scale": 1 / 255, "offset": 0.0})
```
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from keras_resnet import _checks as C
from keras_resnet._runtime import floatx

#: ImageNet's channel means and standard deviations (RGB, values in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: ImageNet's BGR channel means in [0, 255] (Caffe's, keras.applications' "caffe").
CAFFE_MEAN = (103.939, 116.779, 123.68)

#: Named conventions: whether the channels are reversed (RGB to BGR) first, then
#: the element-wise steps in order (each a NumPy/keras.ops binary operation and its
#: constant, a number or one per channel).
MODES: dict[str, dict[str, Any]] = {
    "unit": {"bgr": False, "steps": (("divide", 255.0),),
             "about": "x / 255: values in [0, 1] (this package's loaders and kr.train)"},
    "caffe": {"bgr": True, "steps": (("subtract", CAFFE_MEAN),),
              "about": "RGB to BGR, minus the ImageNet BGR mean, no scaling "
                       "(keras.applications ResNet50/101/152)"},
    "tf": {"bgr": False, "steps": (("divide", 127.5), ("subtract", 1.0)),
           "about": "x / 127.5 - 1: values in [-1, 1] (keras.applications ResNet V2)"},
    "torch": {"bgr": False, "steps": (("divide", 255.0), ("subtract", IMAGENET_MEAN),
                                      ("divide", IMAGENET_STD)),
              "about": "x / 255, minus the ImageNet mean, over the ImageNet std "
                       "(torchvision)"},
    "none": {"bgr": False, "steps": (), "about": "nothing: the input is fed as it is"},
}

#: What a spec without a ``preprocessing`` field means.
DEFAULT = "unit"
#: Keys of the explicit form (keras-hub's ``ImageConverter``: ``x * scale + offset``).
EXPLICIT_KEYS = ("scale", "offset")

#: keras-hub's ResNet converters (ported from timm): ImageNet mean/std as scale/offset.
KERAS_HUB_IMAGENET = {
    "scale": [1.0 / 255.0 / s for s in IMAGENET_STD],
    "offset": [-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)],
}


class Explicit(dict):
    """The explicit form ``{"scale": ..., "offset": ...}``: read-only and hashable
    (specs are frozen); per-channel values are tuples."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a spec's preprocessing is read-only; use "
                        "spec.replace(preprocessing={...})")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _read_only  # type: ignore[assignment]


def _number(path: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        C.fail(path, f"must be a number or a list of one number per channel (got "
               f"{C.type_name(value)})", value, TypeError)
    value = float(value)
    if not math.isfinite(value):
        C.fail(path, "must be a finite number", value)
    return value


def _constant(path: str, value: Any, channels: int | None) -> Any:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if channels is None or len(value) != channels:
            need = (f"a list of {channels} (one per channel)" if channels is not None
                    else "a single number (the input has no channels)")
            C.fail(path, f"must be a number or {need}", list(value))
        return tuple(_number(f"{path}[{i}]", v) for i, v in enumerate(value))
    return _number(path, value)


def check(value: Any, channels: int | None = 3, path: str = "preprocessing") -> Any:
    """Validates a preprocessing value and returns its canonical form.

    Args:
        value: A name from :data:`MODES`, or a dict ``{"scale": s, "offset": o}``
            (each a number, a list of one number per channel, or None).
        channels: Channels of the images it applies to; None for inputs
            without channels (vectors), which take no per-channel constants.
        path: The field's name in error messages.

    Returns:
        The name, or an :class:`Explicit` dict with tuples for lists.

    Raises:
        ValueError, TypeError: naming ``path``, the value and what is allowed.
    """
    if isinstance(value, str):
        if value not in MODES:
            C.fail(path, f"must be one of {', '.join(map(repr, MODES))} or a dict "
                   f"{{'scale': ..., 'offset': ...}}{C.close_matches(value, MODES)}", value)
        per_channel = MODES[value]["bgr"] or any(
            isinstance(c, tuple) for _, c in MODES[value]["steps"])
        if per_channel and channels != 3:
            what = f"{channels}-channel images" if channels else "vectors"
            C.fail(path, f"{value!r} needs 3-channel RGB images (it works per channel); "
                   f"this spec takes {what}", value)
        return value
    if not isinstance(value, Mapping):
        C.fail(path, "must be a preprocessing name or a dict {'scale': ..., 'offset': ...}"
               f" (got {C.type_name(value)})", value, TypeError)
    C.check_keys(path, value, EXPLICIT_KEYS)
    return Explicit((key, _constant(f"{path}.{key}", value.get(key), channels))
                    for key in EXPLICIT_KEYS)


def channels_of(value: Any) -> int | None:
    """The channels a preprocessing value implies (3 for the per-channel names, the
    length of a list in the explicit form), or None when it fits any input."""
    if isinstance(value, str):
        mode = MODES.get(value)
        if mode and (mode["bgr"] or any(isinstance(c, tuple) for _, c in mode["steps"])):
            return 3
        return None
    if isinstance(value, Mapping):
        for v in value.values():
            if isinstance(v, (list, tuple)):
                return len(v)
    return None


def to_config(value: Any) -> Any:
    """The JSON-ready form of a canonical value (lists for tuples)."""
    if isinstance(value, Mapping):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
    return value


def steps(value: Any) -> tuple[bool, tuple]:
    """``(bgr, steps)`` of a canonical value: reverse the channels first, then
    apply each ``(operation, constant)``; operations are ``"divide"``,
    ``"subtract"``, ``"multiply"`` and ``"add"``."""
    if isinstance(value, str):
        return MODES[value]["bgr"], MODES[value]["steps"]
    out = []
    if value.get("scale") is not None:
        out.append(("multiply", value["scale"]))
    if value.get("offset") is not None:
        out.append(("add", value["offset"]))
    return False, tuple(out)


def describe(value: Any) -> str:
    """A one-line description of a preprocessing value."""
    if isinstance(value, str):
        return f"{value!r}: {MODES[value]['about']}"
    return f"x * {value.get('scale')} + {value.get('offset')} (per channel for lists)"


def channel_axis(data_format: str) -> int:
    """The channels' axis of an image or a batch of images (counted from the end)."""
    C.check_choice("data_format", data_format, ("channels_last", "channels_first"))
    return -1 if data_format == "channels_last" else -3


def apply(x: Any, value: Any, data_format: str = "channels_last") -> np.ndarray:
    """Applies a preprocessing to raw images held in a NumPy array.

    The steps of ``keras.applications.imagenet_utils.preprocess_input`` (same
    operations, same order, same dtype), without changing ``x`` in place.

    Args:
        x: One image or a batch, raw values (``uint8`` or float in ``[0, 255]``);
            integer arrays become ``keras.config.floatx()`` (float32).
        value: A preprocessing value (see :func:`check`).
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Returns:
        A new float array of the same shape.
    """
    value = check(value, channels=None if np.ndim(x) < 3 else _channels(x, data_format))
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(floatx())
    axis = channel_axis(data_format)
    bgr, ops = steps(value)
    if bgr:
        x = np.flip(x, axis)
    for op, constant in ops:
        c = np.asarray(constant, dtype=x.dtype)
        if c.ndim and axis == -3:
            c = c.reshape((-1, 1, 1))
        x = getattr(np, op)(x, c)
    return np.array(x, copy=True) if not ops and not bgr else x


def _channels(x: Any, data_format: str) -> int:
    return int(np.shape(x)[channel_axis(data_format)])
