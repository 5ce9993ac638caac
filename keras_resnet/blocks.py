"""Block branch functions and their context: the Keras side of block types.

A block type only builds its *residual branch* (the ``F(x)`` of
``y = g(F(x) + shortcut(x))``). The builder adds the shortcut, the addition and
the output activation uniformly, so the residual network and its plain twin are
one code path and every block type, built-in or registered by a user, gets the
same shortcut rule (see :mod:`keras_resnet.plan`). The registry of block types
and their metadata is Keras-free (:mod:`keras_resnet.registry`); this module
binds the built-in branch functions to it and gives block functions their
:class:`BlockContext`.

Built-in types:

| name | branch | outputs |
|---|---|---|
| ``basic`` | 3x3 conv-BN-act, 3x3 conv-BN | ``filters`` |
| ``bottleneck`` | 1x1, 3x3, 1x1 conv-BN (stride on the 3x3) | ``filters * 4`` |
| ``preact_basic`` | BN-act-3x3, BN-act-3x3 (He et al. 2016) | ``filters`` |
| ``preact_bottleneck`` | BN-act-1x1, BN-act-3x3, BN-act-1x1 | ``filters * 4`` |
| ``dense`` | Dense-BN-act, Dense-BN (``a[l+2] = g(z[l+2] + a[l])``) | ``filters`` |

Bottleneck blocks take ``bottleneck_ratio`` (the 4) and ``stride_1x1`` (stride on
the first 1x1 conv, the original "v1").

Example, a squeeze-and-excitation basic block with its own option:

```python
import keras
import keras_resnet as kr

@kr.register_block("se_basic", options={"dropout": 0.0, "pool": None, "se_ratio": 0.25})
def se_basic(x, ctx):
    x = ctx.conv_norm_act(x, ctx.filters, 3, downsample=True, index=1)
    x = ctx.conv_norm_act(x, ctx.out_channels, 3, act=False, last=True, index=2)
    squeeze = max(1, int(ctx.out_channels * ctx.options["se_ratio"]))
    s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=ctx.name("se_pool"))(x)
    s = keras.layers.Conv2D(squeeze, 1, activation="relu", name=ctx.name("se_reduce"))(s)
    s = keras.layers.Conv2D(ctx.out_channels, 1, activation="sigmoid",
                            name=ctx.name("se_expand"))(s)
    return keras.layers.Multiply(name=ctx.name("se_scale"))([x, s])

kr.BlockSpec("se_basic", 32, options={"se_ratio": 0.5})
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras

from keras_resnet.layers import MaxPoolPadding2D
from keras_resnet.registry import (  # noqa: F401 - re-exported where 0.1.0 had them
    BLOCK_OPTIONS,
    REGISTRY,
    BlockFn,
    BlockType,
    bind_builtin,
    get_block_type,
    list_blocks,
    register_block,
    unregister_block,
)

if TYPE_CHECKING:  # pragma: no cover
    from keras_resnet.spec import BlockSpec, ModelSpec

class BlockContext:
    """What a block function gets: its sizes, its name and layer helpers.

    The helpers apply the network-wide choices of the spec (L2, bias rule,
    initializer, padding mode, normalisation, activation) so block functions
    stay short and every block follows them.

    Attributes:
        spec: The ``ModelSpec``.
        block: The ``BlockSpec`` of this stage.
        prefix: Layer-name prefix, e.g. ``"stage2_block1"``.
        filters: ``block.filters`` (inner width of bottleneck blocks).
        out_channels: Channels (units) the branch must output.
        strides: Downsampling factor of this block (1 after the first repeat).
        pool: Pooling kind that replaces the strided conv, or None.
        zero_init: Whether the last layer marked ``last=True`` starts at zero.
        options: The block type's own options (its registered defaults
            updated with ``block.options``).
        data_format: ``"channels_last"`` or ``"channels_first"``: the layout
            every layer helper builds for.
        channel_axis: The channels axis of a feature map (batch included).
    """

    def __init__(
        self,
        spec: ModelSpec,
        block: BlockSpec | None,
        prefix: str,
        *,
        out_channels: int = 0,
        strides: int = 1,
        zero_init: bool = False,
        data_format: str | None = None,
    ) -> None:
        self.spec = spec
        self.block = block
        self.prefix = prefix
        self.filters = block.filters if block is not None else 0
        self.out_channels = out_channels
        self.strides = strides
        self.pool = block.pool if (block is not None and strides > 1) else None
        self.zero_init = zero_init
        self.data_format = data_format or keras.config.image_data_format()
        self.channel_axis = 1 if self.data_format == "channels_first" else -1
        btype = REGISTRY.get(block.type) if block is not None else None
        self.options = btype.resolved_options(block) if btype is not None else {}

    # ----------------------------------------------------------------- names
    def name(self, suffix: str) -> str:
        """Layer name ``{prefix}_{suffix}``."""
        return f"{self.prefix}_{suffix}"

    # ---------------------------------------------------------------- layers
    def _reg(self, on: bool) -> Any:
        return keras.regularizers.L2(self.spec.l2) if (on and self.spec.l2 > 0) else None

    def _bias(self, followed_by_norm: bool) -> bool:
        use_bias = self.spec.use_bias
        if use_bias == "auto":
            return not (followed_by_norm and self.spec.norm is not None)
        return bool(use_bias)

    def conv(
        self,
        x: Any,
        filters: int,
        kernel_size: int,
        strides: int = 1,
        *,
        name: str,
        followed_by_norm: bool,
        zero: bool = False,
    ) -> Any:
        """Conv2D with the spec's L2, bias rule, initializer and padding mode.

        With ``padding="symmetric"`` or ``"torch"`` a strided conv with a kernel
        larger than 1 is preceded by ``ZeroPadding2D(kernel_size // 2)`` and uses
        ``"valid"`` padding (PyTorch / ``keras.applications`` alignment).
        """
        padding = "same"
        if self.spec.padding != "same" and strides > 1 and kernel_size > 1:
            x = keras.layers.ZeroPadding2D(kernel_size // 2, data_format=self.data_format,
                                           name=f"{name}_pad")(x)
            padding = "valid"
        use_bias = self._bias(followed_by_norm)
        return keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            data_format=self.data_format,
            use_bias=use_bias,
            kernel_initializer="zeros" if zero else self.spec.kernel_initializer,
            kernel_regularizer=self._reg(True),
            bias_regularizer=self._reg(self.spec.l2_bias) if use_bias else None,
            name=name,
        )(x)

    def dense(
        self, x: Any, units: int, *, name: str, followed_by_norm: bool, zero: bool = False
    ) -> Any:
        """Dense layer with the spec's L2, bias rule and initializer."""
        use_bias = self._bias(followed_by_norm)
        return keras.layers.Dense(
            units,
            use_bias=use_bias,
            kernel_initializer="zeros" if zero else self.spec.kernel_initializer,
            kernel_regularizer=self._reg(True),
            bias_regularizer=self._reg(self.spec.l2_bias) if use_bias else None,
            name=name,
        )(x)

    def norm(self, x: Any, *, name: str, zero: bool = False) -> Any:
        """BatchNormalization (or nothing when ``spec.norm`` is None)."""
        if self.spec.norm is None:
            return x
        reg = self._reg(self.spec.l2_norm)
        # Vectors have their units last whatever the image data format.
        axis = self.channel_axis if len(x.shape) == 4 else -1
        return keras.layers.BatchNormalization(
            axis=axis,
            momentum=self.spec.bn_momentum,
            epsilon=self.spec.bn_epsilon,
            gamma_initializer="zeros" if zero else "ones",
            gamma_regularizer=reg,
            beta_regularizer=reg,
            name=name,
        )(x)

    def act(self, x: Any, *, name: str) -> Any:
        """The spec's activation."""
        return keras.layers.Activation(self.spec.activation, name=name)(x)

    def pool_layer(self, x: Any, kind: str, size: int, strides: int, *, name: str) -> Any:
        """Max or average pooling: "same" padding, or symmetric padding (zeros;
        -inf before max pooling under ``padding="torch"``, which max pooling ignores)."""
        padding = "same"
        if self.spec.padding != "same" and size > strides:
            if kind == "max" and self.spec.padding == "torch":
                x = MaxPoolPadding2D(size // 2, data_format=self.data_format,
                                     name=f"{name}_pad")(x)
            else:
                x = keras.layers.ZeroPadding2D(size // 2, data_format=self.data_format,
                                               name=f"{name}_pad")(x)
            padding = "valid"
        cls = keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D
        return cls(size, strides=strides, padding=padding, data_format=self.data_format,
                   name=name)(x)

    def dropout(self, x: Any, *, name: str) -> Any:
        """Dropout at ``block.dropout`` (nothing when it is 0)."""
        rate = self.block.dropout if self.block is not None else 0.0
        if rate <= 0:
            return x
        return keras.layers.Dropout(rate, name=name)(x)

    # ------------------------------------------------------------ composites
    def conv_norm_act(
        self,
        x: Any,
        filters: int,
        kernel_size: int,
        *,
        index: int,
        downsample: bool = False,
        act: bool = True,
        last: bool = False,
    ) -> Any:
        """Conv, norm and (optionally) activation: layers ``conv{i}``, ``bn{i}``, ``act{i}``.

        Args:
            x: Input tensor.
            filters: Output channels.
            kernel_size: Kernel size.
            index: Number used in the layer names.
            downsample: This conv carries the block's downsampling: strided,
                or (when the block pools) followed by pooling.
            act: Add the activation.
            last: The branch's last normalisation (or, without norm, conv):
                zero-initialised when ``zero_init_residual`` is on.
        """
        has_norm = self.spec.norm is not None
        x = self.conv(x, filters, kernel_size, self._conv_strides(downsample),
                      name=self.name(f"conv{index}"), followed_by_norm=True,
                      zero=last and self.zero_init and not has_norm)
        x = self.norm(x, name=self.name(f"bn{index}"), zero=last and self.zero_init)
        if act:
            x = self.act(x, name=self.name(f"act{index}"))
        return self._branch_pool(x, downsample)

    def _conv_strides(self, downsample: bool) -> int:
        """Stride of a conv: the block's, if it carries the downsampling by stride."""
        return self.strides if (downsample and self.pool is None) else 1

    def _branch_pool(self, x: Any, downsample: bool) -> Any:
        """The pooling that replaces the stride, after the conv that carries it."""
        if downsample and self.pool is not None:
            x = self.pool_layer(x, self.pool, self.strides, self.strides,
                                name=self.name("pool"))
        return x

    def norm_act_conv(
        self,
        x: Any,
        filters: int,
        kernel_size: int,
        *,
        index: int,
        downsample: bool = False,
        last: bool = False,
    ) -> Any:
        """Pre-activation unit: norm, activation, conv (``bn{i}``, ``act{i}``, ``conv{i}``).

        Index 1 has no norm/activation here: the builder pre-activates the
        block input once (``preact_bn``/``preact_act``) so the shortcut can
        read it. ``last`` zero-initialises the conv's kernel and bias.
        """
        if index > 1:
            x = self.norm(x, name=self.name(f"bn{index}"))
            x = self.act(x, name=self.name(f"act{index}"))
        x = self.conv(x, filters, kernel_size, self._conv_strides(downsample),
                      name=self.name(f"conv{index}"), followed_by_norm=not last,
                      zero=last and self.zero_init)
        return self._branch_pool(x, downsample)


# --------------------------------------------------------------- built-ins
def basic(x: Any, ctx: BlockContext) -> Any:
    """Two 3x3 convs (He et al. 2015, Fig. 2 left)."""
    x = ctx.conv_norm_act(x, ctx.filters, 3, index=1, downsample=True)
    x = ctx.dropout(x, name=ctx.name("drop"))
    return ctx.conv_norm_act(x, ctx.out_channels, 3, index=2, act=False, last=True)


def bottleneck(x: Any, ctx: BlockContext) -> Any:
    """1x1 reduce, 3x3, 1x1 expand (He et al. 2015, Fig. 5 right)."""
    on_1x1 = bool(ctx.block and ctx.block.stride_1x1)
    x = ctx.conv_norm_act(x, ctx.filters, 1, index=1, downsample=on_1x1)
    x = ctx.conv_norm_act(x, ctx.filters, 3, index=2, downsample=not on_1x1)
    x = ctx.dropout(x, name=ctx.name("drop"))
    return ctx.conv_norm_act(x, ctx.out_channels, 1, index=3, act=False, last=True)


def preact_basic(x: Any, ctx: BlockContext) -> Any:
    """BN-act-3x3, BN-act-3x3 (He et al. 2016, "Identity Mappings")."""
    x = ctx.norm_act_conv(x, ctx.filters, 3, index=1, downsample=True)
    x = ctx.dropout(x, name=ctx.name("drop"))
    return ctx.norm_act_conv(x, ctx.out_channels, 3, index=2, last=True)


def preact_bottleneck(x: Any, ctx: BlockContext) -> Any:
    """BN-act-1x1, BN-act-3x3, BN-act-1x1 (He et al. 2016)."""
    on_1x1 = bool(ctx.block and ctx.block.stride_1x1)
    x = ctx.norm_act_conv(x, ctx.filters, 1, index=1, downsample=on_1x1)
    x = ctx.norm_act_conv(x, ctx.filters, 3, index=2, downsample=not on_1x1)
    x = ctx.dropout(x, name=ctx.name("drop"))
    return ctx.norm_act_conv(x, ctx.out_channels, 1, index=3, last=True)


def dense(x: Any, ctx: BlockContext) -> Any:
    """Two Dense layers: ``a[l+2] = g(W2 g(W1 a[l] + b1) + b2 + a[l])`` (the seed)."""
    has_norm = ctx.spec.norm is not None
    x = ctx.dense(x, ctx.filters, name=ctx.name("dense1"), followed_by_norm=True)
    x = ctx.norm(x, name=ctx.name("bn1"))
    x = ctx.act(x, name=ctx.name("act1"))
    x = ctx.dropout(x, name=ctx.name("drop"))
    x = ctx.dense(x, ctx.out_channels, name=ctx.name("dense2"), followed_by_norm=True,
                  zero=ctx.zero_init and not has_norm)
    return ctx.norm(x, name=ctx.name("bn2"), zero=ctx.zero_init)


for _name, _fn in (("basic", basic), ("bottleneck", bottleneck),
                   ("preact_basic", preact_basic), ("preact_bottleneck", preact_bottleneck),
                   ("dense", dense)):
    bind_builtin(_name, _fn)
del _name, _fn
