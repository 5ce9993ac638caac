"""Block types and their metadata, without Keras.

A block type is a name, the function that builds its residual branch, and the
facts the shape walk and the spec checks need: the input rank, whether it is a
pre-activation block, its default expansion, which optional ``BlockSpec``
fields it honours and which options of its own it takes (with their
defaults). Nothing here imports Keras: a spec can be validated and planned
anywhere. The built-in types are declared here; :mod:`keras_resnet.blocks`
(the Keras side) binds their branch functions.

Example, a block with an option of its own:

```python
@kr.register_block("se_basic", options={"pool": None, "se_ratio": 0.25})
def se_basic(x, ctx):
    ...  # ctx.options["se_ratio"] is the block's value (0.25 unless the spec says)

kr.BlockSpec("se_basic", 32, options={"se_ratio": 0.5})
```
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keras_resnet import _checks as C

BlockFn = Callable[[Any, Any], Any]

#: Optional ``BlockSpec`` fields a block type may honour (the spec's own fields).
BLOCK_OPTIONS = ("bottleneck_ratio", "stride_1x1", "dropout", "pool")

#: Defaults of those fields (a field left at its default is "not used").
FIELD_DEFAULTS = {"bottleneck_ratio": None, "stride_1x1": False, "dropout": 0.0,
                  "pool": None}

RESERVED = ("pool",)


@dataclass(frozen=True)
class BlockType:
    """A registered block type.

    Args:
        name: The name used in ``BlockSpec.type``.
        build: ``fn(x, ctx) -> y`` building the residual branch (None for a
            built-in whose Keras function is not bound yet).
        input_rank: 3 for ``(height, width, channels)`` feature maps, 1 for
            ``(units,)`` vectors.
        preact: Pre-activation block: the builder normalises and activates the
            input before the branch (parameterised shortcuts read that
            pre-activated input, identity/zero-pad shortcuts the raw one), and
            adds no activation after the addition.
        expansion: Default ``bottleneck_ratio`` (output channels / ``filters``);
            only used when ``"bottleneck_ratio"`` is in ``options``.
        options: Optional ``BlockSpec`` fields this type honours.
        own_options: The type's own options and their defaults
            (``BlockSpec.options`` keys).
    """

    name: str
    build: BlockFn | None = None
    input_rank: int = 3
    preact: bool = False
    expansion: int = 1
    options: frozenset = frozenset()
    own_options: Mapping = field(default_factory=dict)

    def out_channels(self, block: Any) -> int:
        """Channels (or units) the block outputs."""
        if "bottleneck_ratio" in self.options:
            return block.filters * (block.bottleneck_ratio or self.expansion)
        return block.filters

    def resolved_options(self, block: Any) -> dict:
        """The block's own options: the type's defaults updated with the spec's."""
        given = getattr(block, "options", None) or {}
        return {**self.own_options, **given}


REGISTRY: dict[str, BlockType] = {}

_OPTION_TYPES = (bool, int, float, str)


def _check_option_default(name: str, value: Any) -> Any:
    if value is not None and not isinstance(value, _OPTION_TYPES):
        C.fail(f"options[{name!r}]", "must default to None, a bool, an int, a float or "
               "a string (JSON-ready)", value, TypeError)
    return value


def check_option(path: str, value: Any, default: Any) -> Any:
    """Checks a block's own option against the type of its default.

    ``bool`` and ``int`` are not mixed; an int is accepted for a float option;
    a None default accepts any JSON scalar.
    """
    if default is None:
        if value is not None and not isinstance(value, _OPTION_TYPES):
            C.fail(path, "must be None, a bool, a number or a string", value, TypeError)
        return value
    if isinstance(default, bool):
        return C.check_bool(path, value)
    if isinstance(default, int):
        return C.check_int(path, value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            C.fail(path, f"must be a number (got {C.type_name(value)})", value, TypeError)
        return C.check_float(path, value)
    return C.check_str(path, value)


def register_block(
    name: str,
    build: BlockFn | None = None,
    *,
    input_rank: int = 3,
    preact: bool = False,
    expansion: int = 1,
    options: Iterable[str] | Mapping[str, Any] = (),
    overwrite: bool = False,
) -> Any:
    """Registers a block type, as a decorator or a plain call.

    Args:
        name: Name for ``BlockSpec.type``.
        build: ``fn(x, ctx) -> y`` that builds the residual branch from the
            block input ``x`` with the helpers of ``ctx`` (a
            :class:`~keras_resnet.blocks.BlockContext`). Omit it to use
            ``register_block`` as a decorator.
        input_rank: 3 for image feature maps, 1 for vectors (MLP blocks).
        preact: Whether the block is a pre-activation block.
        expansion: Default output/inner channel ratio (bottleneck blocks).
        options: The options the block honours: names among the optional
            ``BlockSpec`` fields ``"bottleneck_ratio"``, ``"stride_1x1"``,
            ``"dropout"``, ``"pool"``, or a dict that may also name options of
            the block's own with their defaults (None, bool, int, float or
            str), e.g. ``{"pool": None, "se_ratio": 0.25}``. A ``BlockSpec``
            sets its own options with ``options={"se_ratio": 0.5}``; the
            branch function reads ``ctx.options["se_ratio"]``.
        overwrite: Replace an existing registration of ``name``.

    Returns:
        ``build`` (so the decorator form leaves the function usable).

    Example:

    ```python
    @kr.register_block("double_conv", options=("pool",))
    def double_conv(x, ctx):
        x = ctx.conv_norm_act(x, ctx.filters, 3, downsample=True, index=1)
        return ctx.conv_norm_act(x, ctx.filters, 3, act=False, last=True, index=2)
    ```
    """
    C.check_str("name", name)
    if not name.isidentifier():
        C.fail("name", "must be an identifier (letters, digits, '_')", name)
    if name in RESERVED:
        C.fail("name", "is reserved (it names a transition entry)", name)
    C.check_choice("input_rank", input_rank, (1, 3))
    C.check_bool("preact", preact)
    C.check_int("expansion", expansion, minimum=1, maximum=64)
    if isinstance(options, str):
        C.fail("options", "must be a list of option names or a dict of defaults "
               "(a string is not a list)", options, TypeError)
    fields, own = set(), {}
    if isinstance(options, Mapping):
        for key, default in options.items():
            C.check_str("options", key)
            if key in BLOCK_OPTIONS:
                fields.add(key)
            else:
                if not key.isidentifier():
                    C.fail("options", "names must be identifiers", key)
                own[key] = _check_option_default(key, default)
    else:
        for opt in options:
            fields.add(C.check_choice("options", opt, BLOCK_OPTIONS))
    opts = frozenset(fields)
    if input_rank == 1 and ({"pool", "stride_1x1"} & opts):
        C.fail("options", "'pool' and 'stride_1x1' need input_rank=3", sorted(opts))

    def _register(fn: BlockFn) -> BlockFn:
        if not callable(fn):
            C.fail("build", "must be a callable fn(x, ctx)", fn, TypeError)
        current = REGISTRY.get(name)
        if current is not None and current.build is not None and not overwrite:
            raise C.InvalidInput(
                f"block type {name!r} is already registered; pass overwrite=True "
                "to replace it"
            )
        REGISTRY[name] = BlockType(name, fn, input_rank, preact, expansion, opts,
                                   dict(own))
        return fn

    return _register if build is None else _register(build)


def bind_builtin(name: str, build: BlockFn) -> None:
    """Attaches the Keras branch function of a built-in type (blocks.py calls it)."""
    current = REGISTRY[name]
    if current.build is None:
        REGISTRY[name] = BlockType(current.name, build, current.input_rank,
                                   current.preact, current.expansion, current.options,
                                   current.own_options)


def unregister_block(name: str) -> None:
    """Removes a registered block type (tests and notebooks use this)."""
    REGISTRY.pop(name, None)


def get_block_type(name: str, path: str = "type") -> BlockType:
    """Looks a block type up; an unknown name lists the known ones."""
    if name not in REGISTRY:
        known = ", ".join(repr(k) for k in sorted(REGISTRY))
        raise C.InvalidInput(
            f"{path} must be a registered block type{C.close_matches(name, REGISTRY)}."
            f" Known types: {known}, and 'pool' for a transition entry."
            f" Received: type={name!r}"
        )
    return REGISTRY[name]


def list_blocks() -> list[str]:
    """The registered block types.

    Returns:
        Their names, sorted (the built-ins and any registered since).
    """
    return sorted(REGISTRY)


# The built-in types' metadata; blocks.py binds their branch functions.
_BUILTINS: dict[str, dict[str, Any]] = {
    "basic": dict(options=frozenset({"dropout", "pool"})),
    "bottleneck": dict(expansion=4, options=frozenset(BLOCK_OPTIONS)),
    "preact_basic": dict(preact=True, options=frozenset({"dropout", "pool"})),
    "preact_bottleneck": dict(preact=True, expansion=4, options=frozenset(BLOCK_OPTIONS)),
    "dense": dict(input_rank=1, options=frozenset({"dropout"})),
}
for _name, _meta in _BUILTINS.items():
    REGISTRY[_name] = BlockType(_name, **_meta)
del _name, _meta
