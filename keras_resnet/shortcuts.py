"""The shortcut layers (He et al. 2015, §3.3 and §4.2): the Keras side of the rule.

:func:`~keras_resnet.plan.resolve_shortcut` (Keras-free, in the plan) is the
*one* place that decides which shortcut a block gets; the shape walk,
validation, the summary table and the plots all ask it. :func:`make_shortcut`
builds the layers of the decided kind; the builder calls it.

The table of what each option builds is in :mod:`keras_resnet.plan`, beside the rule.

Pre-activation blocks project without BN (their sum is normalised by the next
block, He et al. 2016), and read the pre-activated input for projections.
"""

from __future__ import annotations

from typing import Any

import keras

from keras_resnet.blocks import BlockContext
from keras_resnet.layers import ZeroPadShortcut
from keras_resnet.plan import resolve_shortcut

__all__ = ["make_shortcut", "resolve_shortcut"]  # resolve_shortcut: where 0.1.0 had it

def make_shortcut(
    x: Any,
    kind: str,
    ctx: BlockContext,
    *,
    in_channels: int,
    preact: bool = False,
) -> Any:
    """Builds the shortcut layers for a resolved ``kind``.

    Args:
        x: Input of the shortcut (raw input, or pre-activated input for the
            projections of pre-activation blocks).
        kind: A value returned by :func:`resolve_shortcut`.
        ctx: The block's context (sizes, name prefix, layer helpers).
        in_channels: Channels (units) of ``x``.
        preact: The block is a pre-activation block (projections get no BN).

    Returns:
        The shortcut tensor, shaped like the residual branch's output.
    """
    if kind == "identity":
        return x
    rank = len(x.shape) - 1  # 3 for feature maps, 1 for vectors
    s = ctx.strides
    if kind == "A":
        if s > 1 and ctx.pool is not None:
            x = ctx.pool_layer(x, ctx.pool, s, s, name=ctx.name("shortcut_pool"))
            s = 1
        return ZeroPadShortcut(strides=s, extra_channels=ctx.out_channels - in_channels,
                               data_format=ctx.data_format,
                               name=ctx.name("shortcut_pad"))(x)
    if rank == 1:
        x = ctx.dense(x, ctx.out_channels, name=ctx.name("shortcut_dense"),
                      followed_by_norm=not preact)
    else:
        if kind == "D" and s > 1:
            x = keras.layers.AveragePooling2D(s, strides=s, padding="same",
                                              data_format=ctx.data_format,
                                              name=ctx.name("shortcut_pool"))(x)
            s = 1
        x = ctx.conv(x, ctx.out_channels, 1, s, name=ctx.name("shortcut_conv"),
                     followed_by_norm=not preact)
    if preact:
        return x
    return ctx.norm(x, name=ctx.name("shortcut_bn"))
