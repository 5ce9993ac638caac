"""Pretrained weights: which presets have them, and the port from keras-hub.

Two sources give ImageNet weights to presets of this package, each with the
input convention its weights expect (recorded in ``ModelSpec.preprocessing``):

* ``keras.applications`` (``weights="imagenet"``): ResNet50/101/152 and their
  V2, for the presets of the same name (:func:`keras_resnet.presets.port_weights`).
* keras-hub (``weights="keras_hub:<preset>"``, needs ``pip install keras-hub``
  and a network the first time): its ``ResNetBackbone`` presets (ported from
  timm and PaddleClas) for the presets in :data:`KERAS_HUB_PRESETS`.
  :func:`port_keras_hub` copies from a keras-hub model a user already has;
  :func:`keras_hub_spec` says which spec a keras-hub ResNet is.

keras-hub's layers and ours are paired by position (block ``k`` of keras-hub's
``stack{s}`` is the ``k``-th block of the plan) and by role within a block;
every tensor's shape is checked before anything is copied.

Example:

```python
import keras_hub
import keras_resnet as kr

hub = keras_hub.models.ResNetBackbone(
    input_conv_filters=[64], input_conv_kernel_sizes=[7],
    stackwise_num_filters=[64, 128, 256, 512], stackwise_num_blocks=[2, 2, 2, 2],
    stackwise_num_strides=[1, 2, 2, 2], block_type="basic_block")
kr.weights.keras_hub_spec(hub).name              # 'resnet18'
model = kr.from_keras_hub(hub)                    # resnet18, keras-hub's weights
```
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

from keras_resnet import _checks as C
from keras_resnet import preprocessing as P
from keras_resnet import presets
from keras_resnet.plan import make_plan
from keras_resnet.spec import BlockSpec, ModelSpec, StemSpec

#: keras-hub's ResNet presets and the preset of this package with their layout.
KERAS_HUB_PRESETS: dict[str, str] = {
    "resnet_18_imagenet": "resnet18",
    "resnet_50_imagenet": "resnet50_v1_5",
    "resnet_101_imagenet": "resnet101_v1_5",
    "resnet_152_imagenet": "resnet152_v1_5",
    "resnet_v2_50_imagenet": "resnetv2_50",
    "resnet_v2_101_imagenet": "resnetv2_101",
    "resnet_vd_18_imagenet": "resnet18_vd",
    "resnet_vd_34_imagenet": "resnet34_vd",
    "resnet_vd_50_imagenet": "resnet50d",
    "resnet_vd_50_ssld_imagenet": "resnet50d",
    "resnet_vd_50_ssld_v2_imagenet": "resnet50d",
    "resnet_vd_50_ssld_v2_fix_imagenet": "resnet50d",
    "resnet_vd_101_imagenet": "resnet101d",
    "resnet_vd_101_ssld_imagenet": "resnet101d",
    "resnet_vd_152_imagenet": "resnet152d",
    "resnet_vd_200_imagenet": "resnet200_vd",
}

#: The prefix of a ``weights=`` value that names a keras-hub preset.
KERAS_HUB_PREFIX = "keras_hub:"

_BLOCK_TYPES = {"basic_block": ("basic", False), "bottleneck_block": ("bottleneck", False),
                "basic_block_vd": ("basic", True), "bottleneck_block_vd": ("bottleneck", True)}


def sources(name: str) -> dict:
    """Which pretrained weights a preset can load.

    Args:
        name: A preset name.

    Returns:
        ``{"keras.applications": [...], "keras_hub": [...]}``: the ``weights=``
        values that work for it (empty lists when none).
    """
    presets.get(name)  # a clear error for unknown names
    apps = ["imagenet"] if presets.keras_application(name) else []
    hub = [KERAS_HUB_PREFIX + h for h, p in KERAS_HUB_PRESETS.items() if p == name]
    return {"keras.applications": apps, "keras_hub": hub}


def table_markdown() -> str:
    """The Markdown table of the presets with pretrained weights (for the docs)."""
    lines = ["| preset | keras.applications (`weights=`) | keras-hub (`weights=`) | "
             "preprocessing |", "|---|---|---|---|"]
    for name in presets.names():
        found = sources(name)
        if not (found["keras.applications"] or found["keras_hub"]):
            continue
        app = presets.keras_application(name)
        apps = f'`"imagenet"` ({app})' if app else ""
        hub = ", ".join(f'`"{w}"`' for w in found["keras_hub"])
        modes = ([f'`"{presets.KERAS_APPLICATIONS_PREPROCESSING[app]}"`'] if app else []) + (
            ["keras-hub's converter"] if hub else [])
        lines.append(f"| `{name}` | {apps} | {hub} | {' / '.join(modes)} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ keras-hub
def import_keras_hub() -> Any:
    """keras_hub, or an ImportError that says how to install it."""
    try:
        import keras_hub
    except ImportError:
        raise ImportError(
            "keras-hub's weights need the keras-hub package: pip install "
            "'keras-resnet-builder[hub]' (or pip install keras-hub)"
        ) from None
    return keras_hub


def _parts(source: Any) -> tuple:
    """(backbone, classifier or None) of a keras-hub ResNet model."""
    backbone = getattr(source, "backbone", None)
    if backbone is not None and hasattr(backbone, "stackwise_num_blocks"):
        return backbone, source
    if hasattr(source, "stackwise_num_blocks") and hasattr(source, "block_type"):
        return source, None
    raise TypeError(
        "source must be a keras-hub ResNetBackbone or ResNetImageClassifier. "
        f"Received: source of type {type(source).__name__}"
    )


def _stem(backbone: Any) -> dict:
    filters = list(backbone.input_conv_filters)
    kernels = list(backbone.input_conv_kernel_sizes)
    preact = bool(backbone.use_pre_activation)
    if any(k % 2 == 0 for k in kernels):
        C.fail("input_conv_kernel_sizes", "must be odd to be expressed as a spec "
               "(keras-hub pads an even kernel asymmetrically)", kernels)
    if len(filters) == 1:
        return {"filters": filters[0], "kernel_size": kernels[0], "strides": 2,
                "pool": "max", "norm_act": not preact}
    last = filters[-1]
    if len(filters) == 3 and kernels == [3, 3, 3] and filters == [max(1, last // 2)] * 2 + [last]:
        return {"type": "deep", "filters": last, "kernel_size": 7, "strides": 2,
                "pool": "max", "norm_act": not preact}
    C.fail("input_conv_filters", "must be one convolution, or three 3x3 convolutions of "
           "[f // 2, f // 2, f] filters (the 'deep' stem) to be expressed as a spec; "
           f"input_conv_kernel_sizes={kernels}", filters)


def keras_hub_spec(source: Any) -> ModelSpec:
    """The spec of the network a keras-hub ResNet model is.

    Reads the configuration of a ``keras_hub.models.ResNetBackbone`` (or of a
    ``ResNetImageClassifier``'s backbone and head) and returns the equal
    :class:`~keras_resnet.ModelSpec`, named after the preset it equals up to
    the head fields (``presets.HEAD_FIELDS``), if any. Its preprocessing is
    keras-hub's ImageNet convention (see :func:`keras_hub_preprocessing`).

    Args:
        source: A keras-hub ``ResNetBackbone`` or ``ResNetImageClassifier``.

    Returns:
        The spec: input shape as the backbone's ``image_shape``, a classifier
        as the classifier's (``include_top=False`` for a backbone).

    Raises:
        ValueError: the configuration has no equal spec; the message names the
            keras-hub setting.
    """
    backbone, classifier = _parts(source)
    block_type = backbone.block_type
    if block_type not in _BLOCK_TYPES:
        C.fail("block_type", f"must be one of {', '.join(map(repr, _BLOCK_TYPES))}",
               block_type)
    kind, vd = _BLOCK_TYPES[block_type]
    preact = bool(backbone.use_pre_activation)
    strides = list(backbone.stackwise_num_strides)
    if vd and (preact or any(s not in (1, 2) for s in strides)):
        raise ValueError(
            f"block_type={block_type!r} is expressed as a spec only without "
            "pre-activation and with strides of 1 or 2 (its shortcut pools by 2). "
            f"Received: use_pre_activation={preact}, stackwise_num_strides={strides}")
    btype = f"preact_{kind}" if preact else kind
    stem = _stem(backbone)
    channels = stem["filters"]
    blocks: list = []
    for i, (filters, n, s) in enumerate(zip(backbone.stackwise_num_filters,
                                            backbone.stackwise_num_blocks, strides)):
        out = filters * (4 if kind == "bottleneck" else 1)
        projects = block_type != "basic_block" or i > 0  # keras-hub's first_shortcut
        if not projects and (out != channels or s != 1):
            raise ValueError(
                f"stack{i} changes shape without a projection in keras-hub (its "
                f"block_type={block_type!r} has none in the first stack). Received: "
                f"stackwise_num_filters[{i}]={filters}, stackwise_num_strides[{i}]={s}")
        if projects and out == channels and s == 1:
            # keras-hub projects although the shape does not change: shortcut "C"
            blocks.append(BlockSpec(btype, filters, repeat=1, strides=s, shortcut="C"))
            if n > 1:
                blocks.append(BlockSpec(btype, filters, repeat=n - 1))
        else:
            blocks.append(BlockSpec(btype, filters, repeat=n, strides=s))
        channels = out
    head: dict = {"include_top": False, "pooling": None}
    if classifier is not None:
        if getattr(classifier, "pooling", "avg") != "avg":
            C.fail("pooling", "of a keras-hub classifier must be 'avg' (a ModelSpec "
                   "classifier averages)", classifier.pooling)
        activation = classifier.activation
        if activation is not None and not isinstance(activation, str):
            activation = getattr(activation, "__name__", None)
        head = {"include_top": True, "classes": int(classifier.num_classes),
                "classifier_activation": activation}
    shape = tuple(backbone.image_shape)
    spec = ModelSpec(
        input_shape=shape, stem=StemSpec(**stem), blocks=tuple(blocks), shortcut="D" if vd else "B",
        use_bias=False if preact else "auto", padding="torch" if preact else "symmetric",
        preprocessing=keras_hub_preprocessing(), **head)
    return spec.replace(name=_matching_preset(spec))


def _matching_preset(spec: ModelSpec) -> str | None:
    """The preset that equals ``spec`` up to the head fields, or None."""
    for name in sorted(set(KERAS_HUB_PRESETS.values())) + presets.names():
        preset = presets.get(name)
        if _architecture_differences(preset, spec) == []:
            return name
    return None


def _architecture_differences(a: ModelSpec, b: ModelSpec) -> list:
    """``["field: a_value vs b_value", ...]`` over the fields that shape the weights."""
    out = []
    for f in dataclasses.fields(ModelSpec):
        if f.name in presets.HEAD_FIELDS:
            continue
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if va == vb:
            continue
        if f.name == "blocks":
            if len(va) != len(vb):
                out.append(f"blocks: {len(va)} entries vs {len(vb)}")
            for i, (x, y) in enumerate(zip(va, vb)):
                for g in dataclasses.fields(x):
                    if getattr(x, g.name) != getattr(y, g.name):
                        out.append(f"blocks[{i}].{g.name}: {getattr(x, g.name)!r} vs "
                                   f"{getattr(y, g.name)!r}")
        else:
            out.append(f"{f.name}: {va!r} vs {vb!r}")
    return out


def keras_hub_preprocessing(source: Any = None) -> Any:
    """The preprocessing keras-hub feeds a ResNet: its image converter's
    ``scale``/``offset``.

    Args:
        source: A keras-hub image converter, or a task (classifier) whose
            preprocessor has one; None for the convention of keras-hub's ResNet
            presets (ImageNet mean/std, ``x * [1/(255 std)] + [-mean/std]``).

    Returns:
        A ``ModelSpec.preprocessing`` value (the explicit form).
    """
    converter = source
    preprocessor = getattr(source, "preprocessor", None)
    if preprocessor is not None:
        converter = getattr(preprocessor, "image_converter", None)
    if converter is None or not hasattr(converter, "scale"):
        return P.check(P.KERAS_HUB_IMAGENET)

    def plain(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, (list, tuple)):
            return [float(v) for v in value]
        return float(value)

    value = {"scale": plain(converter.scale), "offset": plain(converter.offset)}
    return P.check(value, P.channels_of(value))


def _pairs(backbone: Any, classifier: Any, target: Any) -> list:
    """[(our layer, keras-hub layer)] for every layer with weights."""
    spec = target._resnet_spec
    plan = make_plan(spec, getattr(target, "_resnet_data_format", None))
    names: list = []
    stem = spec.stem
    if stem is not None:
        if stem.type == "deep":
            names += [(f"stem_conv{i}", f"conv{i}_conv") for i in (1, 2, 3)]
            names += [(f"stem_bn{i}", f"conv{i}_bn") for i in (1, 2, 3)]
        else:
            names += [("stem_conv", "conv1_conv"), ("stem_bn", "conv1_bn")]
    hub_blocks = [f"stack{s}_block{b}" for s, n in enumerate(backbone.stackwise_num_blocks)
                  for b in range(n)]
    steps = [step for step in plan.steps if step.type != "pool"]
    if len(steps) != len(hub_blocks):
        raise ValueError(f"cannot port keras-hub weights: the backbone has "
                         f"{len(hub_blocks)} blocks and {target.name!r} has {len(steps)}")
    for step, hub in zip(steps, hub_blocks):
        ours = step.name
        names += [(f"{ours}_shortcut_conv", f"{hub}_0_conv"),
                  (f"{ours}_shortcut_bn", f"{hub}_0_bn")]
        for i in (1, 2, 3):
            names.append((f"{ours}_conv{i}", f"{hub}_{i}_conv"))
            names.append((f"{ours}_bn{i}", f"{hub}_{i - 1 if step.preact else i}_bn"))
        if step.preact:
            names.append((f"{ours}_preact_bn", f"{hub}_pre_activation_bn"))
    names.append(("post_bn", "post_bn"))
    ours_by_name = {layer.name: layer for layer in target.layers if layer.weights}
    hub_by_name = {layer.name: layer for layer in backbone.layers if layer.weights}
    if classifier is not None:
        names.append(("predictions", "predictions"))
        hub_by_name["predictions"] = classifier.get_layer("predictions")
    pairs = []
    for ours, hub in names:
        a, b = ours_by_name.pop(ours, None), hub_by_name.pop(hub, None)
        if a is None and b is None:
            continue
        if a is None or b is None:
            missing = f"{target.name!r} has no layer {ours!r}" if a is None else (
                f"the keras-hub model has no layer {hub!r}")
            raise ValueError(f"cannot port keras-hub weights: {hub!r} has no counterpart "
                             f"({missing}); the architectures differ")
        pairs.append((a, b))
    left = sorted(ours_by_name) + sorted(hub_by_name)
    if left:
        raise ValueError(f"cannot port keras-hub weights: layers without a counterpart: "
                         f"{', '.join(left[:6])}; the architectures differ")
    return pairs


def port_keras_hub(source: Any, target: Any, preprocessing: Any = "auto") -> Any:
    """Copies a keras-hub ResNet's weights into a model built by keras_resnet.

    Args:
        source: A keras-hub ``ResNetBackbone``, or a ``ResNetImageClassifier``
            (its classifier is copied too when the target has one).
        target: A model of the same architecture, e.g.
            ``kr.build_resnet(kr.weights.keras_hub_spec(source))``; a headless
            target takes the backbone of a classifier.
        preprocessing: What the target records as its input convention:
            ``"auto"`` is keras-hub's (the classifier's image converter when it
            has one, else keras-hub's ResNet convention); None leaves it.

    Returns:
        ``target``, with the weights copied (every shape checked first).

    Raises:
        ValueError: the architectures differ (the message names the first
            difference of the specs, or the layer or tensor).
    """
    backbone, classifier = _parts(source)
    holder = presets.spec_holder(target)
    if holder is None:
        raise TypeError(f"target {getattr(target, 'name', target)!r} was not built by "
                        "keras_resnet")
    theirs = keras_hub_spec(backbone)
    diffs = _architecture_differences(theirs, holder._resnet_spec)
    if diffs:
        what = f"preset {theirs.name!r}" if theirs.name else "a spec of no preset"
        raise ValueError(f"cannot port keras-hub weights: the keras-hub model is {what}, "
                         f"which differs from {holder.name!r} in " + "; ".join(diffs[:4]))
    if holder._resnet_spec.include_top and classifier is None:
        raise ValueError("cannot port keras-hub weights: the target has a classifier "
                         "and the source is a backbone; build the target with "
                         "include_top=False or port from a ResNetImageClassifier")
    pairs = _pairs(backbone, classifier if holder._resnet_spec.include_top else None, holder)
    for ours, hub in pairs:
        if type(ours) is not type(hub):
            raise ValueError(f"cannot port keras-hub weights: {hub.name} is a "
                             f"{type(hub).__name__} and {ours.name} a {type(ours).__name__}")
        for a, b in zip(hub.weights, ours.weights):
            if tuple(a.shape) != tuple(b.shape):
                raise ValueError(
                    f"cannot port keras-hub weights: {a.path} has shape {tuple(a.shape)} "
                    f"but {b.path} has shape {tuple(b.shape)}; the architectures differ"
                    + (" (classes?)" if ours.name == "predictions" else ""))
    for ours, hub in pairs:
        ours.set_weights(hub.get_weights())
    if preprocessing == "auto":
        preprocessing = keras_hub_preprocessing(classifier)
    if preprocessing is not None:
        presets.record_preprocessing(holder, preprocessing)
    return target


def check_keras_hub_weights(spec: ModelSpec, weights: str) -> str:
    """Validates ``weights="keras_hub:<preset>"`` for a spec before anything is built.

    Args:
        spec: The spec to build.
        weights: The ``weights`` argument.

    Returns:
        The keras-hub preset name (or handle).
    """
    preset = weights[len(KERAS_HUB_PREFIX):]
    if not preset:
        C.fail("weights", "must name a keras-hub preset after 'keras_hub:', e.g. "
               "'keras_hub:resnet_18_imagenet'", weights)
    ours = KERAS_HUB_PRESETS.get(preset)
    if ours is not None:
        diffs = _architecture_differences(presets.get(ours), spec)
        if diffs:
            raise ValueError(
                f"weights={weights!r} are weights of preset {ours!r}; this spec "
                f"({spec.name!r}) differs in " + "; ".join(diffs[:4])
                + f". Build {ours!r} for them. Received: weights={weights!r}")
    import_keras_hub()
    return preset


def load_keras_hub(preset: str, include_top: bool) -> tuple:
    """Loads a keras-hub ResNet preset (downloads it the first time).

    Args:
        preset: A keras-hub preset name or handle, e.g. ``"resnet_18_imagenet"``.
        include_top: Load the classifier (``ImageClassifier``) rather than the
            backbone alone.

    Returns:
        ``(model, preprocessing)``: the keras-hub model and the preprocessing
        its image converter applies.
    """
    keras_hub = import_keras_hub()
    try:
        if include_top:
            source = keras_hub.models.ImageClassifier.from_preset(preset)
        else:
            source = keras_hub.models.Backbone.from_preset(preset)
    except Exception as e:  # noqa: BLE001 - download or preset errors of any kind
        raise OSError(f"could not load keras-hub preset {preset!r} ({e}). It needs a "
                      "network the first time (keras-hub caches it).") from e
    converter = None
    try:
        converter = keras_hub.layers.ImageConverter.from_preset(preset)
    except Exception:  # noqa: BLE001 - a preset without converter
        warnings.warn(f"keras-hub preset {preset!r} has no image converter; recording "
                      "keras-hub's ImageNet preprocessing for ResNets", stacklevel=3)
    return source, keras_hub_preprocessing(converter)
