"""The shortcut rule (He et al. 2015, §3.3 and §4.2) and the layers it needs.

:func:`resolve_shortcut` is the *one* place that decides which shortcut a block
gets; the shape walk (:mod:`keras_resnet.plan`), validation, the builder, the
summary table and the plots all ask it.

| option | same shape | resolution or width changes |
|---|---|---|
| ``"A"`` | identity | subsample (stride or pooling), zero-pad new channels |
| ``"B"`` | identity | 1x1 conv with the block's stride + BN (Dense for MLPs) |
| ``"C"`` | 1x1 conv + BN | 1x1 conv + BN |
| ``"D"`` | identity | average-pool by the stride, then 1x1 conv + BN |

Option A has no parameters; D is the ResNet-D trick (He et al. 2019, "Bag of
Tricks").

Pre-activation blocks project without BN (their sum is normalised by the next
block, He et al. 2016), and read the pre-activated input for projections.
"""

from __future__ import annotations

from typing import Any

import keras

from keras_resnet.blocks import BlockContext
from keras_resnet.layers import ZeroPadShortcut

#: What :func:`resolve_shortcut` can return: the identity, or the option whose
#: layers the block gets.
KINDS = ("identity", "A", "B", "C", "D")


def resolve_shortcut(
    option: str,
    *,
    in_channels: int,
    out_channels: int,
    strides: int,
    input_rank: int = 3,
    where: str = "block",
) -> str:
    """Decides the shortcut of one block.

    Args:
        option: The block's shortcut option, ``"A"``, ``"B"``, ``"C"`` or ``"D"``.
        in_channels: Channels (units) entering the block.
        out_channels: Channels (units) the residual branch outputs.
        strides: The block's downsampling factor (by stride or pooling).
        input_rank: 3 for feature maps, 1 for vectors (MLP blocks).
        where: Name of the block for error messages, e.g. ``"blocks[2]"``.

    Returns:
        ``"identity"``, ``"A"``, ``"B"``, ``"C"`` or ``"D"``: the layers to build.
        On vectors ``"D"`` has nothing to pool and resolves to ``"B"``.

    Raises:
        ValueError: the option cannot express the shape change (zero-padding
            cannot remove channels).
    """
    if option == "C":
        return "C"
    if strides == 1 and in_channels == out_channels:
        return "identity"
    if option == "A":
        if out_channels < in_channels:
            raise ValueError(
                f"{where}.shortcut 'A' (zero-padding) cannot reduce the channels "
                f"from {in_channels} to {out_channels}; use shortcut 'B', 'C' or 'D' "
                f"for this block. Received: shortcut='A'"
            )
        return "A"
    if option == "D" and input_rank == 1:
        return "B"
    return option


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
    rank = len(x.shape) - 1
    s = ctx.strides
    if kind == "A":
        if s > 1 and ctx.pool is not None:
            x = ctx.pool_layer(x, ctx.pool, s, s, name=ctx.name("shortcut_pool"))
            s = 1
        return ZeroPadShortcut(strides=s, extra_channels=ctx.out_channels - in_channels,
                               name=ctx.name("shortcut_pad"))(x)
    if rank == 1:
        x = ctx.dense(x, ctx.out_channels, name=ctx.name("shortcut_dense"),
                      followed_by_norm=not preact)
    else:
        if kind == "D" and s > 1:
            x = keras.layers.AveragePooling2D(s, strides=s, padding="same",
                                              name=ctx.name("shortcut_pool"))(x)
            s = 1
        x = ctx.conv(x, ctx.out_channels, 1, s, name=ctx.name("shortcut_conv"),
                     followed_by_norm=not preact)
    if preact:
        return x
    return ctx.norm(x, name=ctx.name("shortcut_bn"))
