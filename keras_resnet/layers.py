"""Serializable custom layers (only what built-in Keras layers cannot express)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_resnet import _checks as C
from keras_resnet import preprocessing as P


@keras.saving.register_keras_serializable(package="keras_resnet")
class ZeroPadShortcut(keras.layers.Layer):
    """Option-A shortcut: strided subsampling, then zero-padding of the channels.

    Parameter-free (He et al. 2015, §3.3 option A): ``x[:, ::s, ::s, :]`` and
    ``extra_channels`` zero channels appended after the input's channels. Works
    on feature maps ``(batch, height, width, channels)`` (or ``(batch,
    channels, height, width)`` under ``"channels_first"``) and on vectors
    ``(batch, units)`` (then ``strides`` must be 1).

    Args:
        strides: Spatial subsampling factor.
        extra_channels: Zero channels appended.
        data_format: ``"channels_last"`` or ``"channels_first"``; None means
            ``keras.config.image_data_format()`` when the layer is made.
        **kwargs: Base ``Layer`` arguments (``name``, ``dtype``...).

    Example:

    >>> layer = ZeroPadShortcut(strides=2, extra_channels=16)
    >>> layer(keras.ops.ones((1, 32, 32, 16))).shape
    (1, 16, 16, 32)
    """

    def __init__(self, strides: int = 1, extra_channels: int = 0,
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.strides = int(strides)
        self.extra_channels = int(extra_channels)
        self.data_format = data_format or keras.config.image_data_format()
        if self.data_format not in ("channels_last", "channels_first"):
            raise C.InvalidInput("data_format must be 'channels_last' or 'channels_first'. "
                             f"Received: data_format={data_format!r}")
        if self.strides < 1:
            raise C.InvalidInput(f"strides must be >= 1. Received: strides={strides}")
        if self.extra_channels < 0:
            raise C.InvalidInput(
                f"extra_channels must be >= 0. Received: extra_channels={extra_channels}"
            )

    def _axes(self, rank: int) -> tuple:
        """(spatial axes, channel axis) of a tensor of ``rank`` (batch included)."""
        if rank == 2:
            return (), 1
        if self.data_format == "channels_first":
            return (2, 3), 1
        return (1, 2), 3

    def call(self, x: Any) -> Any:
        spatial, channels = self._axes(len(x.shape))
        if self.strides > 1:
            s = self.strides
            if keras.backend.backend() == "tensorflow":
                # The same values; TensorFlow's gradient of a strided slice is slower
                # than a 1x1 max-pool's (benchmarks/zero_pad.py: 1.2x per training
                # step). On JAX the slice is the fastest formulation.
                x = ops.max_pool(x, 1, strides=s, padding="valid",
                                 data_format=self.data_format)
            elif channels == 1:
                x = x[:, :, ::s, ::s]
            else:
                x = x[:, ::s, ::s, :]
        if self.extra_channels:
            pad = [[0, 0]] * len(x.shape)
            pad[channels] = [0, self.extra_channels]
            x = ops.pad(x, pad)
        return x

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        shape = list(input_shape)
        spatial, channels = self._axes(len(shape))
        if self.strides > 1:
            for i in spatial:
                if shape[i] is not None:
                    shape[i] = -(-shape[i] // self.strides)
        shape[channels] = shape[channels] + self.extra_channels
        return tuple(shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(strides=self.strides, extra_channels=self.extra_channels,
                      data_format=self.data_format)
        return config


def _data_format(data_format: str | None) -> str:
    data_format = data_format or keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError("data_format must be 'channels_last' or 'channels_first'. "
                         f"Received: data_format={data_format!r}")
    return data_format


def apply_preprocessing(x: Any, preprocessing: Any, data_format: str | None = None) -> Any:
    """Applies a preprocessing to a backend tensor, with ``keras.ops``.

    The steps of :func:`keras_resnet.preprocessing.apply` (and of
    ``keras.applications``' ``preprocess_input``) on tensors: integer inputs
    become ``keras.config.floatx()``, float inputs keep their dtype.

    Args:
        x: Raw images (one or a batch), values in ``[0, 255]``.
        preprocessing: A value :func:`keras_resnet.preprocessing.check` accepts.
        data_format: Layout of ``x``; None means Keras' global one.

    Returns:
        The preprocessed tensor.
    """
    data_format = _data_format(data_format)
    axis = P.channel_axis(data_format)
    channels = x.shape[axis] if len(x.shape) >= 3 else None
    bgr, steps = P.steps(P.check(preprocessing, channels))
    x = ops.convert_to_tensor(x)
    if "float" not in str(x.dtype):
        x = ops.cast(x, keras.config.floatx())
    if bgr:
        x = ops.flip(x, axis=axis)
    for op, constant in steps:
        c = ops.convert_to_tensor(constant, dtype=x.dtype)
        if isinstance(constant, tuple) and axis == -3:
            c = ops.reshape(c, (-1, 1, 1))
        x = getattr(ops, op)(x, c)
    return x


@keras.saving.register_keras_serializable(package="keras_resnet")
class Preprocess(keras.layers.Layer):
    """Applies a recorded preprocessing, so a model can take raw images.

    Put it in front of a model to get one that takes raw 8-bit images (e.g.
    for an export): the same steps as ``kr.preprocess_input`` (see
    :mod:`keras_resnet.preprocessing`). No weights; integer inputs are cast to
    the layer's compute dtype.

    Args:
        preprocessing: ``"unit"``, ``"caffe"``, ``"tf"``, ``"torch"``,
            ``"none"`` or ``{"scale": ..., "offset": ...}``: usually
            ``kr.spec_of(model).preprocessing``.
        data_format: ``"channels_last"`` or ``"channels_first"``; None means
            ``keras.config.image_data_format()`` when the layer is made.
        **kwargs: Base ``Layer`` arguments (``name``, ``dtype``...).

    Example:

    ```python
    model = kr.build_resnet("resnet50", weights="imagenet")
    raw = keras.Input((224, 224, 3), dtype="uint8")
    outputs = model(kr.Preprocess(kr.spec_of(model).preprocessing)(raw))
    served = keras.Model(raw, outputs)     # takes decoded image files as they are
    ```
    """

    def __init__(self, preprocessing: Any = P.DEFAULT, data_format: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = _data_format(data_format)
        self.preprocessing = P.check(preprocessing, P.channels_of(preprocessing))

    def build(self, input_shape: tuple) -> None:
        axis = P.channel_axis(self.data_format)
        P.check(self.preprocessing, input_shape[axis] if len(input_shape) >= 3 else None)
        self.built = True

    def call(self, x: Any) -> Any:
        if "float" not in str(x.dtype):
            x = ops.cast(x, self.compute_dtype)
        return apply_preprocessing(x, self.preprocessing, self.data_format)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(preprocessing=P.to_config(self.preprocessing),
                      data_format=self.data_format)
        return config


@keras.saving.register_keras_serializable(package="keras_resnet")
class DropPath(keras.layers.Layer):
    """Stochastic depth: drops an example's whole residual branch in training.

    In training each example's input is kept with probability
    ``1 - rate`` and then scaled by ``1 / (1 - rate)`` (so its expected value is
    unchanged), or replaced by zeros: put on a residual branch before the
    addition, the block becomes the identity for that example (Huang et al.
    2016; timm's ``DropPath`` with ``scale_by_keep=True``). At inference it is
    the identity.

    Args:
        rate: Probability of dropping, in ``[0, 1)``.
        seed: Seed of the random draws (None: from Keras' global seed).
        **kwargs: Base ``Layer`` arguments (``name``, ``dtype``...).

    Example:

    >>> layer = DropPath(0.25, seed=1)
    >>> y = layer(keras.ops.ones((8, 4, 4, 2)), training=True)  # each example 0 or 4/3
    """

    def __init__(self, rate: float = 0.0, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        rate = float(rate)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1). Received: rate={rate}")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x: Any, training: bool | None = None) -> Any:
        if not training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        draw = keras.random.uniform(shape, seed=self.seed_generator)
        mask = ops.cast(ops.less(draw, keep), x.dtype) / ops.cast(keep, x.dtype)
        return x * mask

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="keras_resnet")
class MaxPoolPadding2D(keras.layers.Layer):
    """Symmetric padding that a following max pooling ignores: it pads with -inf.

    PyTorch's ``MaxPool2d(padding=p)`` pads this way; ``ZeroPadding2D`` gives the
    same result only when no value is negative (after a ReLU). Used before
    max pooling under ``ModelSpec.padding="torch"``.

    Args:
        padding: Rows and columns added on each side.
        data_format: ``"channels_last"`` or ``"channels_first"``; None means
            ``keras.config.image_data_format()`` when the layer is made.
        **kwargs: Base ``Layer`` arguments (``name``, ``dtype``...).

    Example:

    >>> MaxPoolPadding2D(1)(keras.ops.zeros((1, 4, 4, 3))).shape
    (1, 6, 6, 3)
    """

    def __init__(self, padding: int = 1, data_format: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.padding = int(padding)
        if self.padding < 0:
            raise ValueError(f"padding must be >= 0. Received: padding={padding}")
        self.data_format = _data_format(data_format)

    def _pads(self) -> list:
        p = [self.padding, self.padding]
        if self.data_format == "channels_first":
            return [[0, 0], [0, 0], p, p]
        return [[0, 0], p, p, [0, 0]]

    def call(self, x: Any) -> Any:
        return ops.pad(x, self._pads(), constant_values=float("-inf"))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        shape = list(input_shape)
        axes = (2, 3) if self.data_format == "channels_first" else (1, 2)
        for i in axes:
            if shape[i] is not None:
                shape[i] += 2 * self.padding
        return tuple(shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(padding=self.padding, data_format=self.data_format)
        return config
