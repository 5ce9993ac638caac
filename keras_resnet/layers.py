"""Serializable custom layers (only what built-in Keras layers cannot express)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_resnet")
class ZeroPadShortcut(keras.layers.Layer):
    """Option-A shortcut: strided subsampling, then zero-padding of the channels.

    Parameter-free (He et al. 2015, §3.3 option A): ``x[:, ::s, ::s, :]`` and
    ``extra_channels`` zero channels appended last. Works on feature maps
    ``(batch, height, width, channels)`` and on vectors ``(batch, units)``
    (then ``strides`` must be 1).

    Args:
        strides: Spatial subsampling factor.
        extra_channels: Zero channels appended.
        **kwargs: Base ``Layer`` arguments (``name``, ``dtype``...).

    Example:

    >>> layer = ZeroPadShortcut(strides=2, extra_channels=16)
    >>> layer(keras.ops.ones((1, 32, 32, 16))).shape
    (1, 16, 16, 32)
    """

    def __init__(self, strides: int = 1, extra_channels: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.strides = int(strides)
        self.extra_channels = int(extra_channels)
        if self.strides < 1:
            raise ValueError(f"strides must be >= 1. Received: strides={strides}")
        if self.extra_channels < 0:
            raise ValueError(
                f"extra_channels must be >= 0. Received: extra_channels={extra_channels}"
            )

    def call(self, x: Any) -> Any:
        if self.strides > 1:
            s = self.strides
            if keras.backend.backend() == "tensorflow":
                # The same values; TensorFlow's gradient of a strided slice is slower
                # than a 1x1 max-pool's (benchmarks/zero_pad.py: 1.2x per training
                # step). On JAX the slice is the fastest formulation.
                x = ops.max_pool(x, 1, strides=s, padding="valid")
            else:
                x = x[:, ::s, ::s, :]
        if self.extra_channels:
            pad = [[0, 0]] * (len(x.shape) - 1) + [[0, self.extra_channels]]
            x = ops.pad(x, pad)
        return x

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        shape = list(input_shape)
        if self.strides > 1:
            for i in (1, 2):
                if shape[i] is not None:
                    shape[i] = -(-shape[i] // self.strides)
        shape[-1] = shape[-1] + self.extra_channels
        return tuple(shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(strides=self.strides, extra_channels=self.extra_channels)
        return config
