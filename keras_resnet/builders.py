"""The builder: spec in, ``keras.Model`` out.

It walks the plan (:mod:`keras_resnet.plan`: shapes and each block's shortcut
decision), then builds the stem, each block's residual branch (the functions
of :mod:`keras_resnet.blocks`), the shortcut layers
(:func:`keras_resnet.shortcuts.make_shortcut`), the additions and the head.
``spec.residual`` says whether shortcuts and additions are built: the plain
twin is the same walk without them. :func:`build` builds what the spec says;
:func:`build_resnet` and :func:`build_plain` build the residual network and
the plain twin of any spec.

Keras' global image data format is honoured: under ``"channels_first"`` every
layer is built for ``(channels, height, width)`` maps, as ``keras.applications``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import keras

from keras_resnet import _checks as C
from keras_resnet import presets
from keras_resnet import weights as W
from keras_resnet.blocks import BlockContext
from keras_resnet.layers import DropPath
from keras_resnet.plan import Plan, Step, make_plan
from keras_resnet.registry import REGISTRY
from keras_resnet.shortcuts import make_shortcut
from keras_resnet.spec import ModelSpec


class _Unset:
    """Marks a builder argument that was not given (the spec's value is used)."""

    def __repr__(self) -> str:
        return "<from spec>"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()

_NO_RESIDUAL = ("{} was removed in 0.3: plain or residual is the spec's field; use "
                "kr.build_plain(spec), kr.build_resnet(spec) or spec.replace(residual=False)")

#: Builder arguments that override the spec field of the same name.
OVERRIDABLE = ("input_shape", "include_top", "pooling", "classes",
               "classifier_activation", "name", "l2", "zero_init_residual",
               "preprocessing", "drop_path_rate")


def as_spec(spec: Any) -> ModelSpec:
    """Turns what users pass as a spec into a validated :class:`ModelSpec`.

    Args:
        spec: A ``ModelSpec``, a dict (``ModelSpec.to_dict()`` form), a path to
            a ``.json``/``.yaml``/``.yml`` file, or a preset name.

    Returns:
        The ``ModelSpec``.
    """
    if isinstance(spec, ModelSpec):
        return spec
    if isinstance(spec, dict):
        return ModelSpec.from_dict(spec)
    if isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec)
        if text in presets.TABLE:
            return presets.get(text)
        if os.path.exists(text) or text.lower().endswith((".json", ".yaml", ".yml")):
            return ModelSpec.load(text)
        raise C.InvalidInput(
            f"spec {text!r} is neither a spec file nor a preset name"
            f"{C.close_matches(text, presets.TABLE)}. Presets: "
            f"{', '.join(presets.names())}. Received: spec={text!r}"
        )
    C.fail("spec", "must be a ModelSpec, a dict, a spec file path or a preset name",
           spec, TypeError)


@contextlib.contextmanager
def deep_recursion(limit: int = 20000) -> Iterator[None]:
    """Raise Python's recursion limit for Keras' graph walks on very deep nets."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


@contextlib.contextmanager
def image_data_format(data_format: str | None) -> Iterator[None]:
    """Sets Keras' global image data format for the block (None: leave it)."""
    old = keras.config.image_data_format()
    if data_format is not None:
        keras.config.set_image_data_format(data_format)
    try:
        yield
    finally:
        keras.config.set_image_data_format(old)


@keras.saving.register_keras_serializable(package="keras_resnet")
class ResNetModel(keras.Model):
    """A functional ``keras.Model`` built from a :class:`ModelSpec`.

    It behaves as any functional model (``fit``, ``predict``, ``summary``,
    ``save``, ``export``); its config is the spec itself (and the image data
    format it was built for), so a saved ``.keras`` file reloads with
    ``keras.models.load_model`` (after ``import keras_resnet``) without
    ``custom_objects`` and ``spec_of(model)`` gives the spec back, residual
    or plain as ``spec.residual`` says. Files written by keras_resnet 0.1.0
    (whose config kept ``"residual"`` beside the spec) load too.
    Prefer :func:`build` / :func:`build_resnet` / :func:`build_plain` to
    calling it directly.

    Args:
        spec: The spec (anything :func:`as_spec` accepts); plain or residual as
            ``spec.residual`` says.
        input_tensor: Optional Keras tensor to use as the model's input.
        **kwargs: ``keras.Model`` arguments (``name``, ``trainable``).
    """

    def __init__(self, spec: Any, input_tensor: Any = None, **kwargs: Any) -> None:
        if "residual" in kwargs:
            raise C.InvalidInputType(_NO_RESIDUAL.format("ResNetModel(spec, residual=...)"))
        spec = as_spec(spec)
        name = kwargs.pop("name", None) or _default_name(spec)
        self._resnet_data_format = keras.config.image_data_format()
        inputs, x = _inputs(spec, input_tensor)
        with deep_recursion():
            outputs = _build_graph(x, spec)
            super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self._resnet_spec = spec

    @property
    def spec(self) -> ModelSpec:
        """The :class:`ModelSpec` this model was built from."""
        return self._resnet_spec

    @property
    def residual(self) -> bool:
        """True for a residual network, False for a plain one (``spec.residual``)."""
        return self._resnet_spec.residual

    @property
    def plan(self) -> Plan:
        """The shape walk of the spec (per-block shapes and shortcuts)."""
        return make_plan(self._resnet_spec, self._resnet_data_format)

    def get_config(self) -> dict:
        return {"spec": self._resnet_spec.to_dict(),
                "data_format": self._resnet_data_format,
                "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict, custom_objects: Any = None) -> ResNetModel:
        config = dict(config)
        spec = dict(config.pop("spec"))
        # keras_resnet 0.1.0 kept the flag beside the spec: fold it in.
        legacy = config.pop("residual", None)
        if legacy is not None and "residual" not in spec:
            spec["residual"] = legacy
        with image_data_format(config.pop("data_format", None)):
            return cls(ModelSpec.from_dict(spec), **config)


def _default_name(spec: ModelSpec) -> str:
    return spec.name or ("resnet" if spec.residual else "plain")


def _inputs(spec: ModelSpec, input_tensor: Any) -> tuple:
    if input_tensor is None:
        x = keras.Input(shape=spec.input_shape, name="input")
        return x, x
    if not keras.backend.is_keras_tensor(input_tensor):
        x = keras.Input(tensor=input_tensor, name="input")
        return x, x
    sources = keras.utils.get_source_inputs(input_tensor)
    return (sources[0] if len(sources) == 1 else sources), input_tensor


def _stem(x: Any, spec: ModelSpec) -> Any:
    stem = spec.stem
    if stem is None:
        return x
    ctx = BlockContext(spec, None, "stem")
    if stem.type == "dense":
        x = ctx.dense(x, stem.filters, name="stem_dense", followed_by_norm=stem.norm_act)
    elif stem.type == "deep":
        half = max(1, stem.filters // 2)
        widths = (half, half, stem.filters)
        for i, width in enumerate(widths, start=1):
            x = ctx.conv(x, width, 3, stem.strides if i == 1 else 1,
                         name=f"stem_conv{i}", followed_by_norm=stem.norm_act or i < 3)
            if stem.norm_act or i < 3:
                x = ctx.norm(x, name=f"stem_bn{i}")
                x = ctx.act(x, name=f"stem_act{i}")
    else:
        x = ctx.conv(x, stem.filters, stem.kernel_size, stem.strides, name="stem_conv",
                     followed_by_norm=stem.norm_act)
    if stem.norm_act and stem.type != "deep":
        x = ctx.norm(x, name="stem_bn")
        x = ctx.act(x, name="stem_act")
    if stem.pool is not None and stem.type != "dense":
        x = ctx.pool_layer(x, stem.pool, stem.pool_size, stem.pool_strides,
                           name="stem_pool")
    return x


def _block(x: Any, step: Step, spec: ModelSpec) -> Any:
    residual = spec.residual
    entry = spec.blocks[step.index]
    btype = REGISTRY[step.type]
    ctx = BlockContext(spec, entry, step.name, out_channels=step.out_channels,
                       strides=step.strides,
                       zero_init=residual and spec.zero_init_residual)
    pre = x
    if btype.preact:
        pre = ctx.norm(x, name=ctx.name("preact_bn"))
        pre = ctx.act(pre, name=ctx.name("preact_act"))
    shortcut = None
    if residual:
        # Projections of pre-activation blocks read the pre-activated input;
        # identity and zero-padding read the raw input (He et al. 2016).
        src = pre if (btype.preact and step.shortcut in ("B", "C", "D")) else x
        shortcut = make_shortcut(src, step.shortcut, ctx, in_channels=step.in_channels,
                                 preact=btype.preact)
    if btype.build is None:
        raise C.InvalidInput(f"block type {step.type!r} has no branch function; register one with "
                         f"kr.register_block. Received: type={step.type!r}")
    y = btype.build(pre, ctx)
    got = tuple(y.shape[1:])
    channels = ctx.channel_axis if len(got) == 3 else -1
    if len(got) != len(step.out_shape) or got[channels] != step.out_shape[channels] or any(
            a is not None and b is not None and a != b
            for a, b in zip(got, step.out_shape)):
        raise C.InvalidInput(
            f"blocks[{step.index}] ({step.type!r}) built a branch of shape {got}, but "
            f"the shape walk expects {step.out_shape}: a block function must output "
            f"ctx.out_channels channels and downsample by ctx.strides exactly once"
        )
    if shortcut is not None:
        if step.drop_path > 0:
            y = DropPath(step.drop_path, name=ctx.name("drop_path"))(y)
        y = keras.layers.Add(name=ctx.name("add"))([shortcut, y])
    if not btype.preact:
        y = ctx.act(y, name=ctx.name("out"))
    return y


def _head(x: Any, spec: ModelSpec, plan: Plan) -> Any:
    ctx = BlockContext(spec, None, "head")
    if plan.preact_tail:
        x = ctx.norm(x, name="post_bn")
        x = ctx.act(x, name="post_act")
    spatial = len(x.shape) == 4
    if spec.include_top:
        if spatial:
            x = keras.layers.GlobalAveragePooling2D(data_format=ctx.data_format,
                                                    name="avg_pool")(x)
        policy = keras.config.dtype_policy()
        reg = keras.regularizers.L2(spec.l2) if spec.l2 > 0 else None
        return keras.layers.Dense(
            spec.classes,
            activation=spec.classifier_activation,
            kernel_regularizer=reg,
            bias_regularizer=reg if spec.l2_bias else None,
            # Keep the softmax in float32 under mixed precision.
            dtype="float32" if policy.name.startswith("mixed") else None,
            name="predictions",
        )(x)
    if spatial and spec.pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(data_format=ctx.data_format,
                                                   name="avg_pool")(x)
    if spatial and spec.pooling == "max":
        return keras.layers.GlobalMaxPooling2D(data_format=ctx.data_format,
                                               name="max_pool")(x)
    return x


def build_trunk(x: Any, spec: ModelSpec, plan: Plan) -> tuple:
    """Builds the stem and the blocks of ``spec`` on ``x``.

    Returns:
        ``(output, features)``: the tensor entering the head, and
        ``{"stem": tensor, step name: tensor, ...}`` (every step's output, for
        feature pyramids).
    """
    features: dict = {}
    x = _stem(x, spec)
    if spec.stem is not None:
        features["stem"] = x
    ctx = BlockContext(spec, None, "transition")
    for step in plan.steps:
        if step.type == "pool":
            entry = spec.blocks[step.index]
            x = ctx.pool_layer(x, entry.pool, entry.pool_size or entry.strides,
                               entry.strides, name=step.name)
        else:
            x = _block(x, step, spec)
        features[step.name] = x
    return x, features


def _build_graph(x: Any, spec: ModelSpec) -> Any:
    plan = make_plan(spec, keras.config.image_data_format())
    x, _ = build_trunk(x, spec, plan)
    return _head(x, spec, plan)


def _resolve(spec: Any, input_tensor: Any, overrides: dict) -> ModelSpec:
    spec = as_spec(spec)
    changes = {k: v for k, v in overrides.items() if not isinstance(v, _Unset)}
    if input_tensor is not None and "input_shape" not in changes:
        shape = tuple(input_tensor.shape[1:])
        if shape != tuple(spec.input_shape):
            changes["input_shape"] = shape
    if changes.get("input_shape") is not None:
        changes["input_shape"] = tuple(changes["input_shape"])
    return spec.replace(**changes) if changes else spec


def _check_weights(spec: ModelSpec, weights: Any) -> str | None:
    """Validates ``weights`` before anything is built.

    Returns:
        The ``keras.applications`` model to take ImageNet weights from, the
        keras-hub preset (``"keras_hub:<preset>"``), or None.
    """
    if weights is None:
        return None
    C.check_str("weights", weights)
    if weights.startswith(W.KERAS_HUB_PREFIX):
        return W.KERAS_HUB_PREFIX + W.check_keras_hub_weights(spec, weights)
    if weights == "imagenet":
        app = presets.keras_application_of(spec)
        if app is None:
            mirrors = [n for n in presets.names() if presets.keras_application(n)]
            raise C.InvalidInput(
                "weights='imagenet' is available for the presets that mirror "
                f"keras.applications ({', '.join(mirrors)}), unchanged but for their "
                f"head. Received: weights='imagenet' for spec {spec.name!r}"
            )
        return app
    if not os.path.isfile(weights):
        raise FileNotFoundError(
            f"weights file {weights!r} does not exist (weights must be None, "
            "'imagenet', 'keras_hub:<preset>' or the path of a .weights.h5/.h5 file)"
        )
    return None


def _load_weights(model: keras.Model, spec: ModelSpec, weights: str,
                  app: str | None) -> None:
    """Loads a weights file, or ImageNet weights through keras.applications."""
    if app is None:
        model.load_weights(weights)
        return
    try:
        source = getattr(keras.applications, app)(
            include_top=spec.include_top, weights=weights,
            input_shape=tuple(spec.input_shape), pooling=spec.pooling,
            classes=spec.classes, classifier_activation=spec.classifier_activation)
    except ValueError:
        raise  # keras.applications' own argument checks (e.g. classes != 1000)
    except Exception as e:  # noqa: BLE001 - the download failed
        raise OSError(
            f"could not get the ImageNet weights of {app} through keras.applications "
            f"({e}). Without network, download them elsewhere and pass the file: "
            f"weights='path/to/{app.lower()}_weights_tf_dim_ordering_tf_kernels.h5'"
        ) from e
    presets.port_weights(source, model, preprocessing=None)


def _build(spec: Any, residual: bool, input_tensor: Any, weights: Any,
           overrides: dict) -> keras.Model:
    spec = presets._as_kind(as_spec(spec), residual)
    spec = _resolve(spec, input_tensor, overrides)
    app = _check_weights(spec, weights)
    hub = None
    if app is not None and app.startswith(W.KERAS_HUB_PREFIX):
        hub, preprocessing = W.load_keras_hub(app[len(W.KERAS_HUB_PREFIX):],
                                              spec.include_top)
        spec = spec.replace(preprocessing=preprocessing)
    elif app is not None:
        # The weights expect keras.applications' input convention: recorded.
        spec = spec.replace(preprocessing=presets.KERAS_APPLICATIONS_PREPROCESSING[app])
    model = None
    if input_tensor is not None and keras.backend.is_keras_tensor(input_tensor):
        sources = keras.utils.get_source_inputs(input_tensor)
        if not any(s is input_tensor for s in sources):
            # The input comes out of other layers: keep them in a plain
            # functional model (it serializes as a graph); spec_of reads the
            # spec from this attribute.
            with deep_recursion():
                model = keras.Model(sources, _build_graph(input_tensor, spec),
                                    name=_default_name(spec))
            model._resnet_spec = spec
    if model is None:
        model = ResNetModel(spec, input_tensor=input_tensor)
    if hub is not None:
        W.port_keras_hub(hub, model, preprocessing=None)
    elif weights is not None and spec.drop_path_rate > 0:
        # DropPath layers change the order of the weights that keras.applications'
        # and legacy .h5 files are matched by: load into the network without them,
        # then copy layer by layer.
        donor = ResNetModel(spec.replace(drop_path_rate=0.0))
        _load_weights(donor, spec, weights, app)
        for layer in model.layers:
            if layer.weights:
                layer.set_weights(donor.get_layer(layer.name).get_weights())
    elif weights is not None:
        _load_weights(model, spec, weights, app)
    return model


def build_resnet(
    spec: Any,
    *,
    include_top: bool = UNSET,
    input_shape: tuple | None = UNSET,
    input_tensor: Any = None,
    pooling: str | None = UNSET,
    classes: int = UNSET,
    classifier_activation: str | None = UNSET,
    name: str | None = UNSET,
    l2: float = UNSET,
    zero_init_residual: bool = UNSET,
    preprocessing: Any = UNSET,
    drop_path_rate: float = UNSET,
    weights: str | None = None,
) -> keras.Model:
    """Builds the residual network of a spec (``spec.residual`` set to True).

    Wherever a block changes resolution (stride or pooling) or width, the
    shortcut chosen by ``spec.shortcut`` (or the block's own ``shortcut``) is
    inserted; elsewhere the shortcut is the identity (see
    :mod:`keras_resnet.shortcuts`). Arguments left out take the spec's value;
    given ones override it (and are validated like the spec).

    Args:
        spec: A ``ModelSpec``, its dict form, a ``.json``/``.yaml`` file or a
            preset name.
        include_top: Add global average pooling and the classifier.
        input_shape: Input shape, e.g. ``(224, 224, 3)`` or ``(None, None, 3)``.
        input_tensor: Optional Keras tensor to use as input (as in
            ``keras.applications``).
        pooling: Without top: None, ``"avg"`` or ``"max"``.
        classes: Number of classes.
        classifier_activation: Activation of the classifier; None for logits.
        name: Model name.
        l2: L2 weight decay on every conv/dense kernel.
        zero_init_residual: Start each residual block as the identity map.
        preprocessing: The input convention to record (``ModelSpec.preprocessing``:
            ``"unit"``, ``"caffe"``, ``"tf"``, ``"torch"``, ``"none"`` or
            ``{"scale": ..., "offset": ...}``). Pretrained ``weights`` record
            their own.
        drop_path_rate: Stochastic depth of the last block (linear from 0 at
            the first), ``ModelSpec.drop_path_rate``.
        weights: None, the path of a weights file (``.weights.h5``, or a
            ``keras.applications`` ``.h5`` file for the presets that mirror
            it), ``"imagenet"`` for those presets (downloaded and cached by
            ``keras.applications``), or ``"keras_hub:<preset>"`` for the presets
            with keras-hub weights (e.g. ``"keras_hub:resnet_18_imagenet"`` for
            ``"resnet18"``; needs keras-hub and, the first time, a network).
            ImageNet weights record the preprocessing they expect in the spec.

    Returns:
        A ``keras.Model`` (a :class:`ResNetModel`); ``spec_of(model).residual``
        is True. A plain preset asked for as residual takes its twin's name
        (``build_resnet("cifar_plain20")`` is ``"cifar_resnet20"``).

    Example:

    ```python
    spec = kr.ModelSpec(input_shape=(32, 32, 3), blocks=[kr.BlockSpec("basic", 16)],
                        stem=kr.StemSpec(16, 3, 1, pool=None), classes=10)
    model = kr.build_resnet(spec, l2=1e-4)
    ```
    """
    args = locals()
    return _build(spec, True, input_tensor, weights, {k: args[k] for k in OVERRIDABLE})


def build_plain(
    spec: Any,
    *,
    include_top: bool = UNSET,
    input_shape: tuple | None = UNSET,
    input_tensor: Any = None,
    pooling: str | None = UNSET,
    classes: int = UNSET,
    classifier_activation: str | None = UNSET,
    name: str | None = UNSET,
    l2: float = UNSET,
    zero_init_residual: bool = UNSET,
    preprocessing: Any = UNSET,
    drop_path_rate: float = UNSET,
    weights: str | None = None,
) -> keras.Model:
    """Builds the plain twin of a spec: the same layers without any shortcut.

    The model's spec has ``residual=False``; a residual preset takes its plain
    twin's name (``build_plain("resnet34")`` is ``"plain34"``).

    With ``shortcut="A"`` the plain and residual networks have exactly the same
    parameters (option A adds none), the fair comparison of He et al. 2015.
    ``zero_init_residual`` is accepted but has no effect: a plain network has
    no residual branch, and zeroing its blocks would cut the signal.

    Args:
        spec: A ``ModelSpec``, its dict form, a ``.json``/``.yaml`` file or a
            preset name.
        include_top: Add global average pooling and the classifier.
        input_shape: Input shape.
        input_tensor: Optional Keras tensor to use as input.
        pooling: Without top: None, ``"avg"`` or ``"max"``.
        classes: Number of classes.
        classifier_activation: Activation of the classifier; None for logits.
        name: Model name (default ``"plain"``).
        l2: L2 weight decay on every conv/dense kernel.
        zero_init_residual: Ignored (see above); kept for a uniform signature.
        preprocessing: The input convention to record (see :func:`build_resnet`).
        drop_path_rate: Must be 0: a plain network has no residual branch to drop.
        weights: None, the path of a weights file, or ``"imagenet"`` (see
            :func:`build_resnet`; ImageNet weights exist for residual nets only).

    Returns:
        A ``keras.Model`` (a :class:`ResNetModel` whose spec has ``residual=False``).

    Example:

    ```python
    plain = kr.build_plain(spec)
    resnet = kr.build_resnet(spec)
    ```
    """
    args = locals()
    return _build(spec, False, input_tensor, weights, {k: args[k] for k in OVERRIDABLE})


def from_keras_hub(source: Any, *, preprocessing: Any = "auto", **kwargs: Any) -> keras.Model:
    """Builds the network of a keras-hub ResNet and gives it its weights (no download).

    The spec is :func:`keras_resnet.weights.keras_hub_spec` of ``source`` (named
    after the preset it equals: ``"resnet18"``, ``"resnet50_v1_5"``,
    ``"resnetv2_50"``, ``"resnet50d"``, ``"resnet18_vd"``...), built in the
    backbone's data format; every tensor's shape is checked before copying.

    Args:
        source: A ``keras_hub.models.ResNetBackbone``, or a
            ``ResNetImageClassifier`` (its classifier is ported too, unless
            ``include_top=False`` is given).
        preprocessing: The input convention to record: ``"auto"`` is
            keras-hub's (the classifier's image converter, else keras-hub's
            ImageNet convention for ResNets); any ``ModelSpec.preprocessing``
            value is recorded as given.
        **kwargs: Arguments of :func:`build_resnet` that keep the weights
            valid (``input_shape``, ``include_top``, ``pooling``, ``name``,
            ``l2``, ``drop_path_rate``...).

    Returns:
        The model (a :class:`ResNetModel`).

    Example:

    ```python
    backbone = keras_hub.models.ResNetBackbone.from_preset("resnet_18_imagenet")
    model = kr.from_keras_hub(backbone, input_shape=(224, 224, 3), pooling="avg")
    ```
    """
    backbone = getattr(source, "backbone", source)
    with image_data_format(getattr(backbone, "data_format", None)):
        model = build_resnet(W.keras_hub_spec(source), **kwargs)
    W.port_keras_hub(source, model, preprocessing=preprocessing)
    return model


def build(spec: Any, **kwargs: Any) -> keras.Model:
    """Builds the network a spec describes: residual or plain as ``spec.residual`` says.

    Args:
        spec: Anything :func:`build_resnet` accepts (a plain preset name such
            as ``"cifar_plain20"`` gives a spec with ``residual=False``).
        **kwargs: Arguments of :func:`build_resnet`.

    Returns:
        The model.

    Example:

    ```python
    kr.build("cifar_plain20")                            # plain: its spec says so
    kr.build(kr.presets.get("cifar_resnet20").replace(residual=False))  # its twin
    ```
    """
    if "residual" in kwargs:
        raise C.InvalidInputType(_NO_RESIDUAL.format("kr.build(spec, residual=...)"))
    spec = as_spec(spec)
    return (build_resnet if spec.residual else build_plain)(spec, **kwargs)


def spec_of(model: keras.Model) -> ModelSpec:
    """Returns the :class:`ModelSpec` a model was built from.

    Works on models from :func:`build_resnet`/:func:`build_plain`, on the same
    models reloaded from ``.keras`` files, and on models that contain one
    (e.g. a ``Sequential`` with a preprocessing layer in front).

    Args:
        model: A Keras model.

    Returns:
        The spec.
    """
    spec = getattr(model, "_resnet_spec", None)
    if isinstance(spec, ModelSpec):
        return spec
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model):
            try:
                return spec_of(layer)
            except TypeError:
                continue
    raise C.InvalidInputType(
        f"model {getattr(model, 'name', model)!r} was not built by keras_resnet "
        f"(no spec found). Received: model of type {type(model).__name__}"
    )


def outputs_logits(model: keras.Model) -> bool:
    """Whether a classifier outputs logits: its last layer has no activation.

    ``classifier_activation=None`` gives a linear ``predictions`` layer; a
    softmax (the default) or any other activation means probabilities.
    """
    activation = getattr(model.layers[-1], "activation", None)
    return getattr(activation, "__name__", "") == "linear"
