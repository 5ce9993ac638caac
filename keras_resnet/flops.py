"""Cost of a forward pass, counted from the built layers."""

from __future__ import annotations

import math
from typing import Any

import keras

from keras_resnet import _checks as C
from keras_resnet.builders import as_spec, build, spec_of


def _layer_macs(layer: Any) -> int:
    # In Keras 3 the depthwise and separable convs are not Conv2D subclasses.
    convs = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
    if isinstance(layer, convs):
        out = tuple(layer.output.shape)
        cin = layer.input.shape[-1]
        if layer.data_format == "channels_first":  # (batch, c, h, w) -> (batch, h, w, c)
            out = (out[0], out[2], out[3], out[1])
            cin = layer.input.shape[1]
        kh, kw = layer.kernel_size
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            return out[1] * out[2] * kh * kw * out[3]
        if isinstance(layer, keras.layers.SeparableConv2D):
            mid = cin * layer.depth_multiplier  # depthwise, then a 1x1 to the filters
            return out[1] * out[2] * (kh * kw * mid + mid * out[3])
        return out[1] * out[2] * kh * kw * (cin // layer.groups) * out[3]
    if isinstance(layer, keras.layers.Dense):
        positions = math.prod(layer.input.shape[1:-1]) if len(layer.input.shape) > 2 else 1
        return positions * layer.input.shape[-1] * layer.units
    return 0


def layer_flops(model: keras.Model) -> dict:
    """Multiply-adds of each conv/dense layer: ``{layer name: MACs}``.

    Args:
        model: A model with static spatial input dimensions.

    Returns:
        A dict from layer name to multiply-accumulate count (one image).
    """
    shape = model.inputs[0].shape[1:]
    if any(d is None for d in shape):
        raise C.InvalidInput(
            "flops need a fixed input size; pass input_shape=, e.g. "
            f"kr.flops(spec, input_shape=(224, 224, 3)). Received: input_shape={shape}"
        )
    out = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.update(layer_flops(layer))
            continue
        macs = _layer_macs(layer)
        if macs:
            out[layer.name] = int(macs)
    return out


def flops(model_or_spec: Any, input_shape: tuple | None = None) -> int:
    """Multiply-adds (MACs) of one forward pass of one image.

    Counts the multiply-accumulates of convolution and dense layers, the
    convention of the papers and of torchvision's "GFLOPS" column (which are
    multiply-adds). Batch normalisation, activations, pooling, additions and
    zero-padding shortcuts are not counted (well under 1% for these nets).

    At 224x224 this gives, in billions: ResNet-18 1.81, ResNet-34 3.66, and
    for the 50/101/152-layer nets 4.09, 7.80, 11.51 with the stride on the 3x3
    (the ``*_v1_5`` presets; torchvision reports the same 4.09, 7.80, 11.51)
    or 3.86, 7.57, 11.28 with the stride on the first 1x1 (the ``resnet50``
    ... presets, mirroring ``keras.applications``; He et al. 2015 Table 1
    rounds these to 3.8, 7.6, 11.3).

    Args:
        model_or_spec: A Keras model, or anything :func:`~keras_resnet.build`
            accepts (the network its spec describes, plain or residual as
            ``spec.residual`` says, is built).
        input_shape: Input shape to count at, when the spec's is not fixed or
            another size is wanted.

    Returns:
        The number of multiply-adds.

    Example:

    >>> kr.flops("resnet18") / 1e9  # doctest: +SKIP
    1.82
    """
    model = model_or_spec
    if not isinstance(model_or_spec, keras.Model) or input_shape is not None:
        if isinstance(model_or_spec, keras.Model):
            try:
                spec = spec_of(model_or_spec)
            except TypeError:
                raise C.InvalidInput("input_shape= can only be changed for models built by "
                                 "keras_resnet") from None
        else:
            spec = as_spec(model_or_spec)
        model = build(spec, input_shape=input_shape) if input_shape else build(spec)
    return sum(layer_flops(model).values())


#: Forward multiply-adds per batch at or below which a training step counts as
#: small: per-step overhead (Python, dispatch, callbacks) then costs more than
#: the arithmetic on a CPU, so ``steps_per_execution`` and one process per core
#: pay (CIFAR ResNet-56 on 8x8 digits, batch 32: 0.25 G; ResNet-50 at 64x64,
#: batch 32: 10.7 G). A property of the work, not of a host's timing.
SMALL_STEP_MACS = 2e9


def is_small_step(model_or_spec: Any, batch_size: int) -> bool:
    """Whether a training step of ``batch_size`` examples is small (see
    :data:`SMALL_STEP_MACS`); False when the input size is not fixed.

    Args:
        model_or_spec: A Keras model, or anything :func:`~keras_resnet.build`
            accepts (built for its own input shape).
        batch_size: Examples per step.

    Returns:
        Whether the step's forward multiply-adds are at most ``SMALL_STEP_MACS``.
    """
    try:
        return flops(model_or_spec) * batch_size <= SMALL_STEP_MACS
    except (ValueError, AttributeError, TypeError):
        return False
