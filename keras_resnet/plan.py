"""Shape tracking and the shortcut decision, without building any layer.

The walk knows every block's input and output shape and its resolved shortcut,
so validation can reject a spec before Keras is touched, the builder can
build from it, and summaries, plots and tests can ask "which blocks got a
projection?" without a model. No Keras is imported here.

Every downsampling step (strided conv, pooling) maps a spatial size ``n`` to
``ceil(n / s)``, whichever padding mode is used, and needs ``n >= s``.

Shapes are in the image data format the plan is made for: ``(height, width,
channels)`` for ``"channels_last"`` (the default), ``(channels, height,
width)`` for ``"channels_first"``, as the Keras layers built from the plan.

The shortcut rule (He et al. 2015, §3.3 and §4.2), decided by
:func:`resolve_shortcut` alone:

| option | same shape | resolution or width changes |
|---|---|---|
| ``"A"`` | identity | subsample (stride or pooling), zero-pad new channels |
| ``"B"`` | identity | 1x1 conv with the block's stride + BN (Dense for MLPs) |
| ``"C"`` | 1x1 conv + BN | 1x1 conv + BN |
| ``"D"`` | identity | average-pool by the stride, then 1x1 conv + BN |

Option A has no parameters; D is the ResNet-D trick (He et al. 2019, "Bag of
Tricks"). The layers are made by :func:`keras_resnet.shortcuts.make_shortcut`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keras_resnet import _checks as C
from keras_resnet._runtime import DATA_FORMATS, image_data_format
from keras_resnet.registry import get_block_type


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
            raise C.InvalidInput(
                f"{where}.shortcut 'A' (zero-padding) cannot reduce the channels "
                f"from {in_channels} to {out_channels}; use shortcut 'B', 'C' or 'D' "
                f"for this block. Received: shortcut='A'"
            )
        return "A"
    if option == "D" and input_rank == 1:
        return "B"
    return option


@dataclass(frozen=True)
class Step:
    """One block (or transition entry) of the walk.

    Attributes:
        index: Position of its entry in ``spec.blocks``.
        repeat: 0-based repeat within the entry (0 for transition entries).
        name: Layer-name prefix, e.g. ``"stage2_block1"`` or ``"stage3_pool"``.
        type: Block type name, or ``"pool"``.
        in_shape: Shape entering the block (without batch).
        out_shape: Shape leaving the block.
        strides: Downsampling factor of this step.
        shortcut: ``"identity"``, ``"A"``, ``"B"``, ``"C"``, ``"D"``, or ``"none"``
            for transition entries.
        preact: Whether it is a pre-activation block.
        in_channels: Channels (units) entering the block.
        out_channels: Channels (units) leaving the block.
        total_stride: Product of every downsampling from the input to this
            step's output (stem included).
        drop_path: Stochastic-depth rate of this block's residual branch
            (``spec.drop_path_rate`` scaled linearly over the blocks).
    """

    index: int
    repeat: int
    name: str
    type: str
    in_shape: tuple
    out_shape: tuple
    strides: int
    shortcut: str
    preact: bool = False
    in_channels: int = 0
    out_channels: int = 0
    total_stride: int = 1
    drop_path: float = 0.0


@dataclass(frozen=True)
class Level:
    """One level of a feature pyramid: the last feature map at one stride.

    Attributes:
        name: ``"P{k}"`` for a total stride of ``2**k`` (keras-hub's and the
            detection literature's convention: ``"P2"`` is stride 4), else
            ``"S{stride}"``.
        step: The step whose output it is (``"stem"`` for the stem's).
        stride: Total stride from the input.
        shape: Shape of the feature map (without batch).
    """

    name: str
    step: str
    stride: int
    shape: tuple


def level_name(stride: int) -> str:
    """``"P{log2(stride)}"`` for a power of two, else ``"S{stride}"``."""
    k = stride.bit_length() - 1
    return f"P{k}" if stride == 1 << k else f"S{stride}"


@dataclass(frozen=True)
class Plan:
    """The result of walking a spec.

    Attributes:
        input_shape: The spec's input shape.
        stem_shape: Shape after the stem (the input shape without stem).
        steps: One :class:`Step` per block repeat and transition entry.
        features_shape: Shape entering the head.
        total_stride: Product of all downsampling factors.
        data_format: ``"channels_last"`` or ``"channels_first"``: the layout of
            every shape above.
        stem_stride: Downsampling of the stem (1 without stem).
        has_stem: Whether the spec has a stem.
    """

    input_shape: tuple
    stem_shape: tuple
    steps: tuple
    features_shape: tuple
    total_stride: int
    data_format: str = "channels_last"
    stem_stride: int = 1
    has_stem: bool = False

    @property
    def preact_tail(self) -> bool:
        """True when the last block is pre-activation (the head then adds BN-act)."""
        blocks = [s for s in self.steps if s.type != "pool"]
        return bool(blocks) and blocks[-1].preact

    def shortcuts(self) -> dict:
        """``{step name: shortcut kind}`` for every block."""
        return {s.name: s.shortcut for s in self.steps if s.type != "pool"}

    def stages(self) -> list:
        """Stage names in order: ``"stem"`` (if any), then ``"stage1"``,
        ``"stage2"``... (one per entry of ``spec.blocks``, the prefix of its layers)."""
        names = ["stem"] if self.has_stem else []
        for step in self.steps:
            stage = step.name.split("_", 1)[0]
            if stage not in names:
                names.append(stage)
        return names

    def levels(self) -> dict:
        """The feature pyramid: ``{level name: Level}``, shallowest first.

        One level per total stride reached: the output of the last step
        (block or pooling entry; the stem when no step runs at its stride) at
        that stride. For the ImageNet ResNets these are ``"P2"`` to ``"P5"``
        (strides 4 to 32: the outputs of the four stages); for the CIFAR nets
        ``"P0"`` to ``"P2"``. Networks on vectors have no levels.
        """
        if len(self.input_shape) != 3:
            return {}
        candidates = [("stem", self.stem_stride, self.stem_shape)] if self.has_stem else []
        candidates += [(s.name, s.total_stride, s.out_shape) for s in self.steps]
        last: dict = {}
        for step, stride, shape in candidates:
            last[stride] = Level(level_name(stride), step, stride, tuple(shape))
        return {level.name: level for level in sorted(last.values(), key=lambda lv: lv.stride)}


def _down(n: int | None, s: int) -> int | None:
    return None if n is None else -(-n // s)


def _min_size(strides: list) -> int:
    """Smallest spatial size n for which every step gets at least its stride."""
    n = 1
    while True:
        size, ok = n, True
        for _, s in strides:
            if size < s:
                ok = False
                break
            size = -(-size // s)
        if ok:
            return n
        n += 1


def to_hwc(shape: tuple, data_format: str) -> tuple:
    """A 3-D shape in ``data_format`` as ``(height, width, channels)``."""
    if len(shape) == 3 and data_format == "channels_first":
        return (shape[1], shape[2], shape[0])
    return tuple(shape)


def from_hwc(shape: tuple, data_format: str) -> tuple:
    """``(height, width, channels)`` in ``data_format``'s order."""
    if len(shape) == 3 and data_format == "channels_first":
        return (shape[2], shape[0], shape[1])
    return tuple(shape)


def make_plan(spec: Any, data_format: str | None = None) -> Plan:
    """Walks ``spec``, resolving shapes and shortcuts.

    Args:
        spec: A ``ModelSpec`` (its fields already type-checked).
        data_format: ``"channels_last"`` or ``"channels_first"``: how
            ``spec.input_shape`` is read and the plan's shapes are written.
            None means Keras' global ``image_data_format()`` (``"channels_last"``
            when Keras is not loaded).

    Returns:
        The :class:`Plan`.

    Raises:
        ValueError: a block does not fit its input (wrong rank, a shortcut
            option that cannot express the change) or the input is too small
            for the network's downsampling; the message names the block.
    """
    if data_format is None:
        data_format = image_data_format()
    C.check_choice("data_format", data_format, DATA_FORMATS)
    fmt = data_format
    shape = to_hwc(tuple(spec.input_shape), fmt)
    rank = len(shape)
    downs: list = []  # (where, stride) for every downsampling step
    stem = spec.stem
    if stem is not None:
        if rank == 1 and stem.type != "dense":
            raise C.InvalidInput(
                f"stem.type must be 'dense' (or stem=None) for a 1-D "
                f"input_shape={tuple(spec.input_shape)}. Received: type={stem.type!r}"
            )
        if rank == 3 and stem.type == "dense":
            raise C.InvalidInput(
                f"stem.type 'dense' needs a 1-D input_shape; this one is "
                f"{tuple(spec.input_shape)}: use 'conv' or 'deep'. Received: type='dense'"
            )
        if rank == 3:
            if stem.strides > 1:
                downs.append(("stem", stem.strides))
            shape = (_down(shape[0], stem.strides), _down(shape[1], stem.strides),
                     stem.filters)
            if stem.pool is not None:
                if stem.pool_strides > 1:
                    downs.append(("stem.pool", stem.pool_strides))
                shape = (_down(shape[0], stem.pool_strides),
                         _down(shape[1], stem.pool_strides), stem.filters)
        else:
            shape = (stem.filters,)
    stem_shape = shape
    stem_stride = 1
    for _, s in downs:
        stem_stride *= s
    total_stride = stem_stride
    blocks = sum(e.repeat for e in spec.blocks if e.type != "pool")
    rate = float(getattr(spec, "drop_path_rate", 0.0) or 0.0) if spec.residual else 0.0
    block_index = 0
    steps = []
    for i, entry in enumerate(spec.blocks):
        where = f"blocks[{i}]"
        if entry.type == "pool":
            if len(shape) != 3:
                raise C.InvalidInput(
                    f"{where} is a 'pool' entry, which needs a (height, width, "
                    f"channels) input; its input is {from_hwc(shape, fmt)}. "
                    f"Received: type='pool'"
                )
            out: tuple = (_down(shape[0], entry.strides), _down(shape[1], entry.strides),
                          shape[2])
            if entry.strides > 1:
                downs.append((where, entry.strides))
            total_stride *= entry.strides
            steps.append(Step(i, 0, f"stage{i + 1}_pool", "pool", from_hwc(shape, fmt),
                              from_hwc(out, fmt), entry.strides, "none",
                              in_channels=shape[-1], out_channels=out[-1],
                              total_stride=total_stride))
            shape = out
            continue
        btype = get_block_type(entry.type, f"{where}.type")
        if btype.input_rank != len(shape):
            need = "(units,) vectors" if btype.input_rank == 1 else (
                "(height, width, channels) feature maps")
            raise C.InvalidInput(
                f"{where} is a {entry.type!r} block, which takes {need}, but its "
                f"input has shape {from_hwc(shape, fmt)}. Received: type={entry.type!r}"
            )
        out_channels = btype.out_channels(entry)
        option = entry.shortcut or spec.shortcut
        for r in range(entry.repeat):
            strides = entry.strides if r == 0 else 1
            kind = resolve_shortcut(option, in_channels=shape[-1],
                                    out_channels=out_channels, strides=strides,
                                    input_rank=btype.input_rank, where=where)
            out = ((_down(shape[0], strides), _down(shape[1], strides), out_channels)
                   if len(shape) == 3 else (out_channels,))
            if strides > 1:
                downs.append((where, strides))
            total_stride *= strides
            # timm's rule: linspace(0, rate, blocks), the first block never dropped
            drop = rate * block_index / (blocks - 1) if blocks > 1 else 0.0
            block_index += 1
            steps.append(Step(i, r, f"stage{i + 1}_block{r + 1}", btype.name,
                              from_hwc(shape, fmt), from_hwc(out, fmt), strides, kind,
                              btype.preact, shape[-1], out[-1], total_stride, drop))
            shape = out
    total = 1
    for _, s in downs:
        total *= s
    _check_size(spec.input_shape, to_hwc(tuple(spec.input_shape), fmt), downs, total)
    return Plan(tuple(spec.input_shape), from_hwc(stem_shape, fmt), tuple(steps),
                from_hwc(shape, fmt), total, fmt, stem_stride, stem is not None)


def _check_size(input_shape: tuple, hwc: tuple, downs: list, total: int) -> None:
    if len(input_shape) != 3:
        return
    for axis, n in (("height", hwc[0]), ("width", hwc[1])):
        if n is None:
            continue
        size = n
        for where, s in downs:
            if size < s:
                smallest = _min_size(downs)
                route = ", ".join(f"{w} /{st}" for w, st in downs)
                raise C.InvalidInput(
                    f"input_shape is too small for this network: it downsamples "
                    f"{total}x ({route}) and {where} would get a {axis} of {size}, "
                    f"smaller than its stride {s}. The smallest input that works is "
                    f"{smallest}x{smallest}. Received: input_shape={input_shape}"
                )
            size = -(-size // s)
