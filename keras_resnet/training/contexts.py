"""Where and in which precision a model is built and trained.

:func:`distribution` puts a data-parallel engine in force (TensorFlow's
``MirroredStrategy`` or Keras' JAX ``DataParallel``); :func:`precision` sets
the Keras dtype policy. Both restore what was there before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras

from keras_resnet import _checks as C

DISTRIBUTE = (None, "auto", "mirrored", "data_parallel")
PRECISIONS = (None, "mixed_float16", "mixed_bfloat16")


@dataclass
class Distribution:
    """What :func:`distribution` put in force: a description and the replicas."""

    name: str
    replicas: int
    divisible_batches: bool = False  # JAX shards each batch evenly over the devices


@contextlib.contextmanager
def distribution(distribute: Any) -> Iterator[Distribution | None]:
    """Builds and trains under a data-parallel distribution, if one applies.

    Args:
        distribute: None (none), ``"auto"`` (every GPU, or every logical CPU
            device that was configured, when there are two or more),
            ``"mirrored"`` (TensorFlow ``MirroredStrategy`` over those devices),
            ``"data_parallel"`` (Keras' JAX ``DataParallel`` over all devices),
            or a ``tf.distribute.Strategy``.

    Yields:
        A :class:`Distribution` (None when nothing is used).
    """
    if distribute is None:
        yield None
        return
    backend = keras.backend.backend()
    if not isinstance(distribute, str):  # a tf.distribute.Strategy
        with distribute.scope():
            yield Distribution(type(distribute).__name__, distribute.num_replicas_in_sync)
        return
    C.check_choice("distribute", distribute, DISTRIBUTE)
    if backend == "jax" and distribute in ("auto", "data_parallel"):
        import jax

        devices = jax.devices()
        if len(devices) < 2 and distribute == "auto":
            yield None
            return
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield Distribution(f"DataParallel over {len(devices)} {devices[0].platform} "
                               "devices", len(devices), divisible_batches=True)
        finally:
            keras.distribution.set_distribution(previous)
        return
    if backend == "tensorflow" and distribute in ("auto", "mirrored"):
        import tensorflow as tf

        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        if len(devices) < 2 and distribute == "auto":
            yield None
            return
        strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
        with strategy.scope():
            yield Distribution(f"MirroredStrategy over {len(devices)} devices", len(devices))
        return
    raise ValueError(f"distribute={distribute!r} is not available on the {backend} backend "
                     "('mirrored' needs TensorFlow, 'data_parallel' JAX; 'auto' picks). "
                     f"Received: distribute={distribute!r}")


@contextlib.contextmanager
def precision(policy: str | None) -> Iterator[None]:
    """Sets the Keras dtype policy while a model is built, then restores it."""
    C.check_choice("mixed_precision", policy, PRECISIONS)
    if policy is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
