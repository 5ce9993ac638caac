"""Serializable custom layers (only what built-in Keras layers cannot express)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_resnet import _checks as C


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
