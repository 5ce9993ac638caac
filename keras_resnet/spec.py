"""The spec data model: what a network is, as plain data.

A :class:`ModelSpec` is a frozen dataclass that fully describes a plain or
residual network: the input, a stem, a list of blocks, the head and the
network-wide options (shortcut type, L2 strength, normalisation, ...). It is
validated completely when it is created, before any Keras layer exists, and
round-trips exactly through ``to_dict``/``from_dict`` and JSON (and YAML when
PyYAML is installed).

Whether the network is residual or plain is data too (``ModelSpec.residual``),
never inferred from a name. This module, :mod:`keras_resnet.plan` and
:mod:`keras_resnet.registry` import nothing from Keras (see
:mod:`keras_resnet._runtime` for the two checks that read Keras' state when it
is loaded: the image data format and activation/initializer names).

Example:

```python
import keras_resnet as kr

spec = kr.ModelSpec(
    input_shape=(32, 32, 3),
    stem=kr.StemSpec(filters=16, kernel_size=3, strides=1, pool=None),
    blocks=[
        kr.BlockSpec("basic", 16, repeat=3),
        kr.BlockSpec("basic", 32, repeat=3, strides=2),
        kr.BlockSpec("basic", 64, repeat=3, strides=2),
    ],
    shortcut="A",
    l2=1e-4,
    classes=10,
)
assert kr.ModelSpec.from_json(spec.to_json()) == spec
```
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import os
import random
from dataclasses import KW_ONLY, dataclass, field, fields
from typing import Any, Literal

from keras_resnet import _checks as C
from keras_resnet import preprocessing as P
from keras_resnet._io import atomic_write_text
from keras_resnet._runtime import image_data_format, keras_getter
from keras_resnet.plan import make_plan
from keras_resnet.registry import check_option, get_block_type

SHORTCUTS = ("A", "B", "C", "D")
POOLS = ("max", "avg")
STEM_TYPES = ("conv", "deep", "dense")
PADDINGS = ("same", "symmetric", "torch")
NORMS = ("batch", None)
HEAD_POOLINGS = (None, "avg", "max")
USE_BIAS = (True, False, "auto")

MAX_FILTERS = 65536
MAX_REPEAT = 10000
MAX_STRIDES = 64


@dataclass(frozen=True)
class StemSpec:
    """The layers before the first block.

    Args:
        filters: Output channels of the stem (units for a ``"dense"`` stem).
        kernel_size: Kernel size of the stem convolution (``"conv"`` stems).
        strides: Stride of the stem convolution.
        pool: ``"max"``, ``"avg"`` or None: pooling after the stem convolution.
        pool_size: Window of that pooling.
        pool_strides: Stride of that pooling.
        type: ``"conv"`` (one conv, as in He et al. 2015), ``"deep"`` (three
            3x3 convs of ``filters // 2``, ``filters // 2`` and ``filters``
            channels, the ResNet-C/D stem; ``kernel_size`` is unused) or
            ``"dense"`` (one Dense layer, for 1-D inputs; only ``filters`` and
            ``norm_act`` apply).
        norm_act: Follow the stem with normalisation and activation. Pre-activation
            networks (``keras.applications`` V2) set it to False, since their
            first block normalises its input itself.
    """

    filters: int = 64
    kernel_size: int = 7
    strides: int = 2
    pool: Literal["max", "avg"] | None = "max"
    pool_size: int = 3
    pool_strides: int = 2
    type: Literal["conv", "deep", "dense"] = "conv"
    norm_act: bool = True

    def to_dict(self, compact: bool = False) -> dict:
        """Returns the stem as a JSON-ready dict (``compact`` leaves out defaults)."""
        return _fields_dict(self, compact)

    @classmethod
    def from_dict(cls, data: dict, path: str = "stem") -> StemSpec:
        """Builds a stem from a dict; unknown keys are an error."""
        if not isinstance(data, dict):
            C.fail(path, "must be a dict or None", data, TypeError)
        C.check_keys(path, data, [f.name for f in fields(cls)])
        return cls(**data)


@dataclass(frozen=True)
class BlockSpec:
    """A stage: ``repeat`` blocks of one type.

    Args:
        type: Registered block type: ``"basic"``, ``"bottleneck"``,
            ``"preact_basic"``, ``"preact_bottleneck"``, ``"dense"`` or one
            registered with :func:`keras_resnet.register_block`.
        filters: Channels of the block (for bottleneck blocks the inner width:
            the block outputs ``filters * bottleneck_ratio`` channels, as in
            ``keras.applications`` and torchvision), or units of a dense block.
        repeat: How many blocks of this kind follow each other.
        strides: Downsampling factor of the first block (the others keep the
            resolution), named as in Keras layers.
        pool: None, ``"max"`` or ``"avg"``: the first block's residual branch
            downsamples by pooling (window and stride = ``strides``) instead of
            a strided convolution; needs ``strides > 1``.
        shortcut: Overrides the model-wide ``ModelSpec.shortcut`` for these
            blocks (``"A"``, ``"B"``, ``"C"``, ``"D"``); None inherits it.
        bottleneck_ratio: Bottleneck blocks only: output channels / inner
            channels. None means the block's default (4).
        stride_1x1: Bottleneck blocks only: put the stride on the first 1x1
            conv (the original MSRA / ``keras.applications`` ResNet "v1") rather
            than on the 3x3 conv ("v1.5", torchvision's default).
        dropout: Dropout rate between the convolutions of the residual branch
            (as in Wide ResNets); 0 disables it.
        options: The block type's own options (registered with
            ``register_block(..., options={"se_ratio": 0.25})``), e.g.
            ``{"se_ratio": 0.5}``; options left out take the type's default.
    """

    type: str
    filters: int
    _: KW_ONLY
    repeat: int = 1
    strides: int = 1
    pool: Literal["max", "avg"] | None = None
    shortcut: Literal["A", "B", "C", "D"] | None = None
    bottleneck_ratio: int | None = None
    stride_1x1: bool = False
    dropout: float = 0.0
    options: dict = field(default_factory=dict)

    def to_dict(self, compact: bool = False) -> dict:
        """Returns the block as a JSON-ready dict (``compact`` leaves out defaults)."""
        return _fields_dict(self, compact, keep=("type", "filters"))

    @classmethod
    def from_dict(cls, data: dict, path: str = "block") -> BlockSpec:
        """Builds a block spec from a dict; unknown keys are an error."""
        if not isinstance(data, dict):
            C.fail(path, "must be a dict", data, TypeError)
        C.check_keys(path, data, [f.name for f in fields(cls)])
        for required in ("type", "filters"):
            if required not in data:
                raise C.InvalidInput(f"{path}.{required} is required. Received: {data!r}")
        return cls(**data)


@dataclass(frozen=True)
class PoolSpec:
    """A transition layer in the block list: pooling with no shortcut around it.

    Args:
        pool: ``"max"`` or ``"avg"``.
        strides: Downsampling factor.
        pool_size: Pooling window; None means ``strides``.
    """

    pool: Literal["max", "avg"] = "max"
    strides: int = 2
    pool_size: int | None = None
    type: Literal["pool"] = field(default="pool", init=False)

    def to_dict(self, compact: bool = False) -> dict:
        """Returns the entry as a JSON-ready dict (``compact`` leaves out defaults)."""
        return _fields_dict(self, compact, keep=("type",))

    @classmethod
    def from_dict(cls, data: dict, path: str = "block") -> PoolSpec:
        """Builds a pool entry from a dict (``{"type": "pool", ...}``)."""
        C.check_keys(path, data, ["type", "pool", "strides", "pool_size"])
        return cls(**{k: v for k, v in data.items() if k != "type"})


Entry = BlockSpec | PoolSpec


class _Options(dict):
    """A block's own options: a read-only, hashable dict (specs are frozen)."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise C.InvalidInputType("a BlockSpec's options are read-only; use "
                        "dataclasses.replace(block, options={...})")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _read_only  # type: ignore[assignment]


def _fields_dict(obj: Any, compact: bool, keep: tuple = ()) -> dict:
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        default = (f.default if f.default_factory is dataclasses.MISSING
                   else f.default_factory())
        if compact and f.name not in keep and value == default:
            continue
        out[f.name] = dict(value) if isinstance(value, dict) else value
    return out


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A whole network: input, stem, blocks, head and network-wide options.

    All fields are keyword-only. The spec is validated when created; an invalid
    field raises ``ValueError`` or ``TypeError`` naming the field's path and the
    value received, e.g. ``blocks[2].strides must be >= 1. Received: strides=0``.

    Args:
        blocks: List of :class:`BlockSpec` and :class:`PoolSpec` entries.
        input_shape: ``(height, width, channels)`` for convolutional nets
            (height and width may be None) or ``(features,)`` for MLPs. Read
            in Keras' image data format, as ``keras.applications``: under
            ``"channels_first"`` it is ``(channels, height, width)``.
        stem: A :class:`StemSpec`, or None to feed the input straight into the
            first block.
        residual: True for the residual network (each block adds its shortcut),
            False for its plain twin: the same layers without any shortcut or
            addition. The plain presets (``"plain34"``, ``"cifar_plain20"``)
            set it to False; :func:`~keras_resnet.build_plain` builds any spec
            with False.
        shortcut: Network-wide shortcut option, where a block changes shape:
            ``"A"`` zero-pads the extra channels of a subsampled input (no
            parameters), ``"B"`` projects with a 1x1 conv (Dense for MLP blocks)
            + BN, ``"C"`` projects on every block, ``"D"`` average-pools then
            projects (ResNet-D). Blocks that keep the shape get the identity
            (except under ``"C"``).
        classes: Number of classes of the classifier.
        include_top: Add global pooling and the classifier.
        pooling: Without top: None (return the feature map), ``"avg"`` or
            ``"max"`` global pooling.
        classifier_activation: Activation of the classifier (None for logits).
        l2: L2 weight decay on every conv/dense kernel (``keras.regularizers.L2``);
            0 disables it.
        l2_bias: Also decay the biases.
        l2_norm: Also decay BatchNormalization's gamma and beta.
        zero_init_residual: Start the last normalisation (or, without one, the
            last kernel and bias) of each residual branch at zero, so each
            residual block starts as the identity map.
        use_bias: True (every conv/dense has a bias, as ``keras.applications``
            ResNet50), False (none but the classifier's), or ``"auto"`` (only
            layers not followed by a normalisation layer, as the papers,
            torchvision and ``keras.applications`` V2).
        norm: ``"batch"`` or None (no normalisation).
        bn_momentum: BatchNormalization momentum (Keras convention: 0.9 is
            PyTorch's 0.1).
        bn_epsilon: BatchNormalization epsilon.
        activation: Activation name, e.g. ``"relu"``.
        kernel_initializer: Initializer name, e.g. ``"he_normal"`` (He et al.).
        padding: ``"same"`` (Keras padding; asymmetric for strided convs on
            even inputs), ``"symmetric"`` (explicit ``ZeroPadding2D`` of
            ``kernel_size // 2`` before each strided conv/pool, as
            ``keras.applications``, needed to port their weights exactly) or
            ``"torch"`` (the same, except that max pooling ignores its padding,
            as PyTorch's ``MaxPool2d(padding=1)``: it pads with -inf; differs
            from ``"symmetric"`` only where a max pool reads values that may be
            negative, as in the stem of timm's and keras-hub's ResNet V2).
        preprocessing: What the network expects as input, as a function of
            raw 8-bit RGB images (see :mod:`keras_resnet.preprocessing`):
            ``"unit"`` (``x / 255``, this package's loaders and training),
            ``"caffe"`` and ``"tf"`` (``keras.applications`` ResNet and ResNet
            V2), ``"torch"`` (ImageNet mean/std), ``"none"``, or
            ``{"scale": s, "offset": o}`` (``x * s + o``, keras-hub's image
            converters). Recorded with the weights; a spec or ``.keras``
            file without it means ``"unit"``.
        drop_path_rate: Stochastic depth (Huang et al. 2016, timm's name): the
            rate at which training drops a whole residual branch of an example,
            rising linearly over the blocks from 0 at the first to this value at
            the last (timm's rule); identity at inference. In ``[0, 1)``; needs
            ``residual=True`` (a plain network has no shortcut to keep).
        name: Model name; None means ``"resnet"``/``"plain"``.
    """

    blocks: tuple
    input_shape: tuple = (224, 224, 3)
    stem: StemSpec | None = StemSpec()
    residual: bool = True
    shortcut: Literal["A", "B", "C", "D"] = "B"
    classes: int = 1000
    include_top: bool = True
    pooling: Literal["avg", "max"] | None = None
    classifier_activation: str | None = "softmax"
    l2: float = 0.0
    l2_bias: bool = False
    l2_norm: bool = False
    zero_init_residual: bool = False
    use_bias: bool | Literal["auto"] = "auto"
    norm: Literal["batch"] | None = "batch"
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    activation: str = "relu"
    kernel_initializer: str = "he_normal"
    padding: Literal["same", "symmetric", "torch"] = "same"
    preprocessing: str | dict = P.DEFAULT
    drop_path_rate: float = 0.0
    name: str | None = None

    def __post_init__(self) -> None:
        _validate(self)

    # ------------------------------------------------------------------ dicts
    def to_dict(self, compact: bool = False) -> dict:
        """Returns the spec as a JSON-ready dict.

        Args:
            compact: Leave out fields at their default value (shorter files;
                the full form keeps its meaning if a default ever changes).

        Returns:
            A dict that ``ModelSpec.from_dict`` turns back into an equal spec.
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "blocks":
                value = [b.to_dict(compact) for b in value]
            elif compact and value == f.default:
                continue
            elif f.name == "stem":
                value = None if value is None else value.to_dict(compact)
            elif f.name == "input_shape":
                value = list(value)
            elif f.name == "preprocessing":
                value = P.to_config(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> ModelSpec:
        """Builds and validates a spec from a dict such as ``to_dict()`` returns.

        Args:
            data: The spec as a dict. Unknown keys are an error.

        Returns:
            A validated ``ModelSpec``.
        """
        if not isinstance(data, dict):
            C.fail("spec", "must be a dict", data, TypeError)
        C.check_keys("", data, [f.name for f in fields(cls)])
        if "blocks" not in data:
            raise C.InvalidInput(
                "blocks is required: a list of block entries such as "
                "{'type': 'basic', 'filters': 64}. Received: no 'blocks' key"
            )
        kwargs = dict(data)
        blocks = kwargs["blocks"]
        if not isinstance(blocks, (list, tuple)):
            C.fail("blocks", "must be a list of block dicts", blocks, TypeError)
        kwargs["blocks"] = tuple(
            _entry_from_dict(b, f"blocks[{i}]") for i, b in enumerate(blocks)
        )
        if isinstance(kwargs.get("stem"), dict):
            kwargs["stem"] = StemSpec.from_dict(kwargs["stem"])
        return cls(**kwargs)

    # ------------------------------------------------------------------- json
    def to_json(self, indent: int | None = 2, compact: bool = False) -> str:
        """Returns the spec as JSON text (``compact`` leaves out defaults)."""
        return json.dumps(self.to_dict(compact), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        """Builds a spec from JSON text (see :meth:`load` for files)."""
        if not isinstance(text, (str, bytes)):
            C.fail("text", "must be JSON text (use ModelSpec.load for files)",
                   text, TypeError)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise C.InvalidInput(f"spec is not valid JSON: {e}") from None
        return cls.from_dict(data)

    def to_yaml(self, compact: bool = False) -> str:
        """Returns the spec as YAML text (needs PyYAML; ``compact`` leaves out defaults)."""
        yaml = _yaml()
        return yaml.safe_dump(self.to_dict(compact), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> ModelSpec:
        """Builds a spec from YAML text (needs PyYAML)."""
        yaml = _yaml()
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise C.InvalidInput(f"spec is not valid YAML: {problem}{where}") from None
        return cls.from_dict(data)

    # ------------------------------------------------------------------ files
    @classmethod
    def load(cls, path: str | os.PathLike) -> ModelSpec:
        """Reads a spec from a ``.json``, ``.yaml`` or ``.yml`` file.

        Args:
            path: The file.

        Returns:
            The validated spec.
        """
        path = os.fspath(path)
        if os.path.isdir(path):
            raise C.InvalidInput(f"spec file {path!r} is a directory, not a file")
        if not os.path.exists(path):
            raise FileNotFoundError(f"spec file {path!r} does not exist")
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except UnicodeDecodeError:
            raise C.InvalidInput(f"spec file {path!r} is not a text file") from None
        try:
            if path.lower().endswith((".yaml", ".yml")):
                return cls.from_yaml(text)
            return cls.from_json(text)
        except (ValueError, TypeError) as e:
            raise type(e)(f"{path}: {e}") from None

    def save(self, path: str | os.PathLike, overwrite: bool = False,
             compact: bool = False) -> str:
        """Writes the spec as JSON (or YAML for ``.yaml``/``.yml``), atomically.

        Args:
            path: Target file.
            overwrite: Replace an existing file. Without it an existing file
                raises ``FileExistsError``.
            compact: Leave out fields at their default value.

        Returns:
            The path written.
        """
        path = os.fspath(path)
        text = self.to_yaml(compact) if path.lower().endswith((".yaml", ".yml")) else (
            self.to_json(compact=compact) + "\n")
        atomic_write_text(path, text, overwrite=overwrite)
        return path

    def replace(self, **changes: Any) -> ModelSpec:
        """Returns a copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    @property
    def is_mlp(self) -> bool:
        """True when the input is 1-D (a dense network)."""
        return len(self.input_shape) == 1


def _yaml():
    try:
        import yaml
    except ImportError:
        raise ImportError(
            "YAML specs need PyYAML: pip install pyyaml (or use JSON)"
        ) from None
    return yaml


def _entry_from_dict(data: Any, path: str) -> Entry:
    if isinstance(data, (BlockSpec, PoolSpec)):
        return data
    if not isinstance(data, dict):
        C.fail(path, "must be a dict with a 'type' key", data, TypeError)
    if data.get("type") == "pool":
        return PoolSpec.from_dict(data, path)
    return BlockSpec.from_dict(data, path)


# ---------------------------------------------------------------- validation
def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _validate_stem(stem: Any) -> StemSpec | None:
    if stem is None:
        return None
    if isinstance(stem, dict):
        stem = StemSpec.from_dict(stem)
    if not isinstance(stem, StemSpec):
        C.fail("stem", "must be a StemSpec, a dict or None", stem, TypeError)
    return StemSpec(
        filters=C.check_int("stem.filters", stem.filters, minimum=1,
                            maximum=MAX_FILTERS),
        kernel_size=C.check_int("stem.kernel_size", stem.kernel_size, minimum=1,
                                maximum=31),
        strides=C.check_int("stem.strides", stem.strides, minimum=1,
                            maximum=MAX_STRIDES),
        pool=C.check_choice("stem.pool", stem.pool, (None,) + POOLS),
        pool_size=C.check_int("stem.pool_size", stem.pool_size, minimum=1,
                              maximum=31),
        pool_strides=C.check_int("stem.pool_strides", stem.pool_strides,
                                 minimum=1, maximum=MAX_STRIDES),
        type=C.check_choice("stem.type", stem.type, STEM_TYPES),
        norm_act=C.check_bool("stem.norm_act", stem.norm_act),
    )


def _validate_block(b: Any, path: str) -> Entry:
    if isinstance(b, dict):
        b = _entry_from_dict(b, path)
    if isinstance(b, PoolSpec):
        pool = C.check_choice(f"{path}.pool", b.pool, POOLS)
        strides = C.check_int(f"{path}.strides", b.strides, minimum=1,
                              maximum=MAX_STRIDES)
        size = b.pool_size
        if size is not None:
            size = C.check_int(f"{path}.pool_size", size, minimum=1, maximum=31)
        return PoolSpec(pool=pool, strides=strides, pool_size=size)
    if not isinstance(b, BlockSpec):
        C.fail(path, "must be a BlockSpec, a PoolSpec or a dict", b, TypeError)
    btype = get_block_type(C.check_str(f"{path}.type", b.type), path=f"{path}.type")
    filters = C.check_int(f"{path}.filters", b.filters, minimum=1, maximum=MAX_FILTERS)
    repeat = C.check_int(f"{path}.repeat", b.repeat, minimum=1, maximum=MAX_REPEAT)
    strides = C.check_int(f"{path}.strides", b.strides, minimum=1, maximum=MAX_STRIDES)
    pool = C.check_choice(f"{path}.pool", b.pool, (None,) + POOLS)
    shortcut = C.check_choice(f"{path}.shortcut", b.shortcut, (None,) + SHORTCUTS)
    ratio = b.bottleneck_ratio
    if ratio is not None:
        ratio = C.check_int(f"{path}.bottleneck_ratio", ratio, minimum=1, maximum=64)
    stride_1x1 = C.check_bool(f"{path}.stride_1x1", b.stride_1x1)
    dropout = C.check_float(f"{path}.dropout", b.dropout, minimum=0.0, maximum=1.0,
                            exclusive_maximum=True)
    # Options a block type does not take are an error, not silently ignored.
    for option, value, default in (
        ("bottleneck_ratio", ratio, None),
        ("stride_1x1", stride_1x1, False),
        ("dropout", dropout, 0.0),
        ("pool", pool, None),
    ):
        if value != default and option not in btype.options:
            C.fail(f"{path}.{option}",
                   f"does not apply to {btype.name!r} blocks (they take: "
                   f"{', '.join(sorted(btype.options)) or 'no options'})", value)
    if btype.input_rank == 1 and strides != 1:
        C.fail(f"{path}.strides", f"must be 1 for {btype.name!r} blocks "
               "(they have no spatial dimensions)", strides)
    if pool is not None and strides == 1:
        C.fail(f"{path}.pool", "needs strides > 1 (the pooling window and "
               "stride); set strides=2 to halve the resolution", pool)
    options = _validate_options(b.options, btype, f"{path}.options")
    return BlockSpec(btype.name, filters, repeat=repeat, strides=strides, pool=pool,
                     shortcut=shortcut, bottleneck_ratio=ratio,
                     stride_1x1=stride_1x1, dropout=dropout, options=options)


def _validate_options(options: Any, btype: Any, path: str) -> _Options:
    """A block's own options: known to its type, of the type of their default."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        C.fail(path, "must be a dict of the block type's own options", options, TypeError)
    allowed = btype.own_options
    out = {}
    for key, value in options.items():
        if not isinstance(key, str) or key not in allowed:
            known = ", ".join(sorted(allowed)) or "no options of their own"
            raise C.InvalidInput(
                f"{path}.{key} is not an option of {btype.name!r} blocks"
                f"{C.close_matches(key, allowed)} (they take: {known}). "
                f"Received: {key}={value!r}"
            )
        out[key] = check_option(f"{path}.{key}", value, allowed[key])
    return _Options(sorted(out.items()))


def _validate_input_shape(shape: Any) -> tuple:
    first = image_data_format() == "channels_first"
    layout = "(channels, height, width)" if first else "(height, width, channels)"
    if not isinstance(shape, (tuple, list)):
        C.fail("input_shape", f"must be a tuple {layout} or (features,)", shape,
               TypeError)
    shape = tuple(shape)
    if len(shape) not in (1, 3):
        C.fail("input_shape", f"must have 3 entries {layout} or 1 (features,)", shape)
    names = ("channels", "height", "width") if first else ("height", "width", "channels")
    out: list[int | None] = []
    for i, dim in enumerate(shape):
        # the channels (or features) must be known; height and width may be None
        last = len(shape) == 1 or names[i] == "channels"
        if dim is None and not last:
            out.append(None)
            continue
        what = "features" if len(shape) == 1 else names[i]
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
            C.fail(f"input_shape[{i}]", f"({what}) must be an integer"
                   + ("" if last else " or None"), dim, TypeError)
        dim = int(dim)
        if dim < 1 or dim > 1 << 20:
            C.fail(f"input_shape[{i}]", f"({what}) must be between 1 and {1 << 20}",
                   dim)
        out.append(dim)
    return tuple(out)


def _validate_name(path: str, value: Any, kind: str) -> Any:
    """Check a Keras activation/initializer name without building anything.

    Uses Keras when it is loaded (see :mod:`keras_resnet._runtime`); without
    it only the type is checked. Creating a Keras initializer draws a default
    seed from Python's ``random``; the state is restored so that validating a
    spec never changes what a seeded build produces.
    """
    C.check_str(path, value)
    getter = keras_getter(kind)
    if getter is None:
        return value
    state = random.getstate()
    try:
        getter(value)
    except (ValueError, TypeError):
        C.fail(path, "must be a name Keras knows (e.g. 'relu', 'he_normal')", value)
    finally:
        random.setstate(state)
    return value


def _channels(spec: ModelSpec) -> int | None:
    """Channels of the input images (None for vectors), in Keras' data format."""
    shape = spec.input_shape
    if len(shape) != 3:
        return None
    return shape[0] if image_data_format() == "channels_first" else shape[2]


def _validate(spec: ModelSpec) -> None:
    blocks = spec.blocks
    if not isinstance(blocks, (list, tuple)):
        C.fail("blocks", "must be a list of BlockSpec/PoolSpec entries", blocks,
               TypeError)
    if len(blocks) == 0:
        C.fail("blocks", "must hold at least one block", blocks)
    _set(spec, "blocks", tuple(_validate_block(b, f"blocks[{i}]")
                               for i, b in enumerate(blocks)))
    if not any(isinstance(b, BlockSpec) for b in spec.blocks):
        C.fail("blocks", "must hold at least one block that is not a 'pool' entry",
               [b.type for b in spec.blocks])
    _set(spec, "input_shape", _validate_input_shape(spec.input_shape))
    _set(spec, "stem", _validate_stem(spec.stem))
    C.check_bool("residual", spec.residual)
    _set(spec, "shortcut", C.check_choice("shortcut", spec.shortcut, SHORTCUTS))
    _set(spec, "classes", C.check_int("classes", spec.classes, minimum=1,
                                      maximum=1 << 24))
    C.check_bool("include_top", spec.include_top)
    _set(spec, "pooling", C.check_choice("pooling", spec.pooling, HEAD_POOLINGS))
    if spec.classifier_activation is not None:
        _validate_name("classifier_activation", spec.classifier_activation,
                       "activations")
    _set(spec, "l2", C.check_float("l2", spec.l2, minimum=0.0, maximum=1.0))
    C.check_bool("l2_bias", spec.l2_bias)
    C.check_bool("l2_norm", spec.l2_norm)
    C.check_bool("zero_init_residual", spec.zero_init_residual)
    C.check_choice("use_bias", spec.use_bias, USE_BIAS)
    C.check_choice("norm", spec.norm, NORMS)
    _set(spec, "bn_momentum", C.check_float("bn_momentum", spec.bn_momentum,
                                            minimum=0.0, maximum=1.0,
                                            exclusive_maximum=True))
    _set(spec, "bn_epsilon", C.check_float("bn_epsilon", spec.bn_epsilon,
                                           minimum=1e-12, maximum=1.0))
    _validate_name("activation", spec.activation, "activations")
    _validate_name("kernel_initializer", spec.kernel_initializer, "initializers")
    C.check_choice("padding", spec.padding, PADDINGS)
    _set(spec, "preprocessing", P.check(spec.preprocessing, _channels(spec)))
    _set(spec, "drop_path_rate", C.check_float("drop_path_rate", spec.drop_path_rate,
                                               minimum=0.0, maximum=1.0,
                                               exclusive_maximum=True))
    if spec.drop_path_rate > 0 and not spec.residual:
        C.fail("drop_path_rate", "needs a residual network (residual=True): stochastic "
               "depth drops a block's residual branch and keeps its shortcut, and a plain "
               "network has no shortcut; set drop_path_rate=0 for the plain twin",
               spec.drop_path_rate)
    if spec.name is not None:
        C.check_str("name", spec.name)
        if not spec.name or not all(c.isalnum() or c in "_-." for c in spec.name):
            C.fail("name", "must be a non-empty name of letters, digits, '_', "
                   "'-' and '.'", spec.name)
    # Cross-field checks (ranks, shortcut options, input size) walk the shapes.
    make_plan(spec)
