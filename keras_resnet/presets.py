"""Named specs, as data.

Each preset is one row of :data:`TABLE`: a family from :data:`FAMILIES` (stem,
stage widths and strides, network-wide options) plus the blocks per stage and,
for wide nets, a width multiplier. :func:`get` expands a row into a
:class:`~keras_resnet.spec.ModelSpec`; nothing else is code.

| family | presets | layout |
|---|---|---|
| ``imagenet_basic`` | ``resnet18/34`` | He et al. 2015 Table 1, no conv biases |
| ``imagenet_v1`` | ``resnet50/101/152`` | ``keras.applications.ResNet50``: stride on 1x1 |
| ``imagenet_v1_5`` | ``resnet50/101/152_v1_5`` | stride on the 3x3, no biases (torchvision) |
| ``imagenet_v2`` | ``resnet50/101/152v2`` | ``keras.applications.ResNet50V2`` |
| ``imagenet_d`` | ``resnet18/34/50/101/152d`` | deep stem, avg-pool shortcuts |
| ``imagenet_vd_basic`` | ``resnet18/34_vd`` | ResNet-D, first block projects (PaddleClas) |
| ``imagenet_d`` | ``resnet200_vd`` | ResNet-D, 3/12/48/3 bottleneck blocks (PaddleClas) |
| ``timm_v2`` | ``resnetv2_50/101/152`` | pre-activation, stride on the first block (timm) |
| ``cifar`` | ``cifar_resnet20/32/44/56/110/1202`` | He et al. 2015 §4.2, option A |
| ``wrn`` | ``wrn_16_8``, ``wrn_28_10``, ``wrn_40_4`` | Zagoruyko & Komodakis 2016 |

ResNet-D is He et al. 2019 ("Bag of Tricks"). The ResNet-18...152 and CIFAR
presets have plain twins (``plain18``, ``cifar_plain56``, ...): the same spec
with ``residual=False`` (a field of their table row, not a rule on the name),
built without shortcuts.

Input shapes are written ``(height, width, channels)`` here; :func:`get` puts
the channels first when Keras' image data format is ``"channels_first"``.

Example:

```python
import dataclasses
import keras_resnet as kr

spec = kr.presets.get("cifar_resnet56")
spec = dataclasses.replace(spec, l2=5e-4)
model = kr.build_resnet("resnet50", weights=None)
plain = kr.build_plain("plain34")
```
"""

from __future__ import annotations

import builtins
import copy
import dataclasses
from typing import Any

from keras_resnet import _checks as C
from keras_resnet._runtime import image_data_format
from keras_resnet.plan import from_hwc
from keras_resnet.spec import ModelSpec

_IMAGENET: dict[str, Any] = {
    "input_shape": [224, 224, 3],
    "stem": {"filters": 64, "kernel_size": 7, "strides": 2, "pool": "max"},
    "padding": "symmetric",
    "shortcut": "B",
    "classes": 1000,
}
# keras.applications' BN epsilon and (Keras' default) initializer, so a fresh
# model matches theirs in distribution too.
_KERAS_APPS = {**_IMAGENET, "bn_epsilon": 1.001e-5, "kernel_initializer": "glorot_uniform"}
_WIDTHS = (64, 128, 256, 512)


def _stages(btype: str, strides: tuple = (1, 2, 2, 2)) -> builtins.list:
    """The four ImageNet stages of 64/128/256/512 filters (times the expansion)."""
    return [(btype, w, s) for w, s in zip(_WIDTHS, strides)]


#: Families: everything but the depth. ``stages``: (block type, filters, strides)
#: per stage; ``block``: extra BlockSpec fields; ``stride_last``: the stage's
#: stride goes on its last block (``keras.applications`` V2), whose shortcut is
#: ``last_shortcut``.
FAMILIES: dict[str, dict] = {
    "imagenet_basic": {
        "spec": _IMAGENET,
        "stages": _stages("basic"),
    },
    "imagenet_v1": {
        "spec": {**_KERAS_APPS, "use_bias": True},
        "stages": _stages("bottleneck"),
        "block": {"stride_1x1": True},
    },
    "imagenet_v1_5": {
        "spec": _IMAGENET,
        "stages": _stages("bottleneck"),
    },
    "imagenet_v2": {
        "spec": {**_KERAS_APPS, "stem": {**_IMAGENET["stem"], "norm_act": False}},
        "stages": _stages("preact_bottleneck", (2, 2, 2, 1)),
        "stride_last": True,
        "last_shortcut": "A",
    },
    "imagenet_d": {
        "spec": {**_IMAGENET, "stem": {**_IMAGENET["stem"], "type": "deep"},
                 "shortcut": "D"},
        "stages": _stages("bottleneck"),
    },
    # PaddleClas' ResNet18_vd/34_vd (keras-hub's resnet_vd): ResNet-D whose first
    # block also projects (1x1 conv + BN) although its shape does not change.
    "imagenet_vd_basic": {
        "spec": {**_IMAGENET, "stem": {**_IMAGENET["stem"], "type": "deep"},
                 "shortcut": "D"},
        "stages": _stages("basic"),
        "first_block": {"shortcut": "C"},
    },
    # timm's resnetv2_50/101/152 (keras-hub's ResNetV2): pre-activation bottlenecks
    # with the stride on the first block's 3x3, projections from the pre-activated
    # input, no biases, and a stem max pool that ignores its padding.
    "timm_v2": {
        "spec": {**_IMAGENET, "stem": {**_IMAGENET["stem"], "norm_act": False},
                 "use_bias": False, "padding": "torch"},
        "stages": _stages("preact_bottleneck"),
    },
    "imagenet_d_basic": {
        "spec": {**_IMAGENET, "stem": {**_IMAGENET["stem"], "type": "deep"},
                 "shortcut": "D"},
        "stages": _stages("basic"),
    },
    # He et al. 2015, §4.2: 3x3 stem of 16, stages of 16/32/64 on 32/16/8 maps,
    # option A shortcuts (plain and residual twins have equal parameters).
    "cifar": {
        "spec": {
            "input_shape": [32, 32, 3],
            "stem": {"filters": 16, "kernel_size": 3, "strides": 1, "pool": None},
            "shortcut": "A",
            "classes": 10,
        },
        "stages": [("basic", 16, 1), ("basic", 32, 2), ("basic", 64, 2)],
    },
    # Zagoruyko & Komodakis 2016: pre-activation basic blocks of 16k/32k/64k,
    # 1x1 projections where the shape changes, no biases, final BN-ReLU.
    "wrn": {
        "spec": {
            "input_shape": [32, 32, 3],
            "stem": {"filters": 16, "kernel_size": 3, "strides": 1, "pool": None,
                     "norm_act": False},
            "shortcut": "B",
            "use_bias": False,
            "classes": 10,
        },
        "stages": [("preact_basic", 16, 1), ("preact_basic", 32, 2),
                   ("preact_basic", 64, 2)],
    },
}


def _row(family: str, depths: builtins.list, about: str, residual: bool = True,
         width: int = 1, keras_app: str | None = None) -> dict:
    return {"family": family, "depths": depths, "about": about, "residual": residual,
            "width": width, "keras_app": keras_app}


_DEPTHS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3],
           152: [3, 8, 36, 3], 200: [3, 12, 48, 3]}

#: Preset name -> row. ``keras_app`` names the ``keras.applications`` model whose
#: layers (and weights) the preset mirrors exactly.
TABLE: dict[str, dict] = {
    **{f"resnet{d}": _row("imagenet_basic", _DEPTHS[d], f"ResNet-{d} (He et al. 2015)")
       for d in (18, 34)},
    **{f"resnet{d}": _row("imagenet_v1", _DEPTHS[d],
                          f"ResNet-{d}, as keras.applications.ResNet{d}",
                          keras_app=f"ResNet{d}")
       for d in (50, 101, 152)},
    **{f"plain{d}": _row("imagenet_basic" if d < 50 else "imagenet_v1", _DEPTHS[d],
                         f"plain-{d}: ResNet-{d} without shortcuts", residual=False)
       for d in (18, 34, 50, 101, 152)},
    **{f"resnet{d}_v1_5": _row("imagenet_v1_5", _DEPTHS[d],
                               f"ResNet-{d} v1.5: stride on the 3x3 (torchvision)")
       for d in (50, 101, 152)},
    **{f"resnet{d}v2": _row("imagenet_v2", _DEPTHS[d],
                            f"ResNet-{d} V2 (pre-activation), as "
                            f"keras.applications.ResNet{d}V2",
                            keras_app=f"ResNet{d}V2")
       for d in (50, 101, 152)},
    **{f"resnet{d}d": _row("imagenet_d_basic" if d < 50 else "imagenet_d", _DEPTHS[d],
                           f"ResNet-{d}-D: deep stem, avg-pool shortcuts (He et al. 2019)")
       for d in (18, 34, 50, 101, 152)},
    **{f"resnet{d}_vd": _row("imagenet_vd_basic", _DEPTHS[d],
                             f"ResNet-{d}-vd: ResNet-{d}-D with a projection on the first "
                             "block (PaddleClas, keras-hub's resnet_vd)")
       for d in (18, 34)},
    "resnet200_vd": _row("imagenet_d", _DEPTHS[200],
                         "ResNet-200-vd: ResNet-D of 3/12/48/3 bottleneck blocks "
                         "(PaddleClas, keras-hub's resnet_vd_200)"),
    **{f"resnetv2_{d}": _row("timm_v2", _DEPTHS[d],
                             f"ResNet-{d} V2 as timm's resnetv2_{d} and keras-hub's "
                             "ResNetV2: stride on the first block, no biases")
       for d in (50, 101, 152)},
    **{f"cifar_resnet{6 * n + 2}": _row("cifar", [n] * 3,
                                        f"CIFAR ResNet-{6 * n + 2} (He et al. 2015, §4.2)")
       for n in (3, 5, 7, 9, 18, 200)},
    **{f"cifar_plain{6 * n + 2}": _row("cifar", [n] * 3,
                                       f"CIFAR plain-{6 * n + 2}: ResNet-{6 * n + 2} "
                                       "without shortcuts (He et al. 2015, Fig. 6)",
                                       residual=False)
       for n in (3, 5, 7, 9, 18, 200)},
    **{f"wrn_{d}_{k}": _row("wrn", [(d - 4) // 6] * 3,
                            f"Wide ResNet-{d}-{k} (Zagoruyko & Komodakis 2016)", width=k)
       for d, k in ((16, 8), (28, 10), (40, 4))},
}


def _stage_blocks(fam: dict, btype: str, filters: int, n: int, strides: int,
                  first: bool = False) -> builtins.list:
    extra = fam.get("block", {})
    if first and fam.get("first_block"):
        # the network's first block differs (its own entry, e.g. shortcut "C")
        head = [{"type": btype, "filters": filters, "strides": strides, **extra,
                 **fam["first_block"]}]
        return head + ([{"type": btype, "filters": filters, "repeat": n - 1, **extra}]
                       if n > 1 else [])
    if fam.get("stride_last") and strides > 1:
        head = [{"type": btype, "filters": filters, "repeat": n - 1, **extra}] if n > 1 else []
        return head + [{"type": btype, "filters": filters, "strides": strides,
                        "shortcut": fam["last_shortcut"], **extra}]
    return [{"type": btype, "filters": filters, "repeat": n, "strides": strides, **extra}]


def to_dict(name: str) -> dict:
    """The spec of a preset in dict form (what :func:`get` validates)."""
    row = _row_of(name)
    fam = FAMILIES[row["family"]]
    spec = copy.deepcopy(fam["spec"])
    spec["blocks"] = []
    for i, ((btype, filters, strides), n) in enumerate(zip(fam["stages"], row["depths"])):
        spec["blocks"] += _stage_blocks(fam, btype, filters * row["width"], n, strides,
                                        first=i == 0)
    spec["residual"] = row["residual"]
    spec["input_shape"] = builtins.list(from_hwc(tuple(spec["input_shape"]), image_data_format()))
    spec["name"] = name
    return spec


def _row_of(name: Any) -> dict:
    """The table row of a preset; an unknown name is a ValueError with close matches."""
    C.check_str("name", name)
    if name not in TABLE:
        raise C.InvalidInput(
            f"name must be a preset{C.close_matches(name, TABLE)}. Presets: "
            f"{', '.join(names())}. Received: name={name!r}"
        )
    return TABLE[name]


def names() -> builtins.list[str]:
    """Returns the preset names, sorted."""
    return sorted(TABLE)


def get(name: str) -> ModelSpec:
    """Returns the spec of a preset.

    Args:
        name: A name from :func:`names`, e.g. ``"cifar_resnet20"``; an unknown
            name raises ``ValueError`` listing the close matches.

    Returns:
        The ``ModelSpec`` (edit it with ``dataclasses.replace``/``spec.replace``).
    """
    return ModelSpec.from_dict(to_dict(name))


def twin(name: str) -> str | None:
    """The preset with the same layers and the other kind (plain <-> residual)."""
    row = _row_of(name)
    for other, r in TABLE.items():
        if (r["family"], r["depths"], r["width"]) == (row["family"], row["depths"],
                                                     row["width"]) and (
                r["residual"] != row["residual"]):
            return other
    return None


def _as_kind(spec: ModelSpec, residual: bool) -> ModelSpec:
    """``spec`` as the residual network or its plain twin (what the builders use).

    A preset turned into the other kind takes its twin's name (the plain
    twin of ``"resnet34"`` is ``"plain34"``), so models and files say what
    they hold. The names come from the table, the kind from ``residual``.

    Args:
        spec: A ``ModelSpec``.
        residual: True for the residual network, False for the plain one.

    Returns:
        The spec with ``residual`` set (``spec`` itself if it already is).
    """
    C.check_bool("residual", residual)
    if spec.residual == residual:
        return spec
    name = spec.name
    row = TABLE.get(name) if name else None
    if name and row is not None and row["residual"] != residual:
        name = twin(name) or name
    return spec.replace(residual=residual, name=name)


def describe(name: str) -> str:
    """One-line description of a preset."""
    return _row_of(name)["about"]


def keras_application(name: str) -> str | None:
    """Name of the ``keras.applications`` model a preset mirrors exactly, or None."""
    return _row_of(name)["keras_app"]


#: Spec fields that may differ from the preset while its weights still apply.
HEAD_FIELDS = ("input_shape", "include_top", "pooling", "classes",
               "classifier_activation", "l2", "l2_bias", "l2_norm",
               "zero_init_residual", "name", "preprocessing", "drop_path_rate")

#: The input each ``keras.applications`` ResNet's weights expect: the ``mode`` of
#: its ``preprocess_input`` (``keras.applications.resnet`` / ``resnet_v2``).
KERAS_APPLICATIONS_PREPROCESSING = {
    "ResNet50": "caffe", "ResNet101": "caffe", "ResNet152": "caffe",
    "ResNet50V2": "tf", "ResNet101V2": "tf", "ResNet152V2": "tf",
}


def keras_application_of(spec: ModelSpec) -> str | None:
    """The ``keras.applications`` model whose layers ``spec`` mirrors, or None.

    A spec mirrors one when it equals that preset up to :data:`HEAD_FIELDS`.
    """
    row = TABLE.get(spec.name) if spec.name else None
    if spec.name is None or row is None or row["keras_app"] is None:
        return None
    preset = get(spec.name)
    same = spec.replace(**{f: getattr(preset, f) for f in HEAD_FIELDS})
    return row["keras_app"] if same == preset else None


def spec_holder(model: Any) -> Any:
    """The model (``model`` itself or one inside it) that carries a keras_resnet
    spec, or None."""
    if isinstance(getattr(model, "_resnet_spec", None), ModelSpec):
        return model
    for layer in getattr(model, "layers", []):
        found = spec_holder(layer) if hasattr(layer, "layers") else None
        if found is not None:
            return found
    return None


def record_preprocessing(model: Any, preprocessing: Any) -> Any:
    """Records on a model (its spec) the preprocessing its weights expect.

    Weights come with an input convention; after loading weights into a model
    built by keras_resnet, this makes ``kr.spec_of(model).preprocessing`` (and
    its ``.keras`` file) say it. The layers do not change.

    Args:
        model: A model built by keras_resnet (or one containing such a model).
        preprocessing: A value ``ModelSpec.preprocessing`` accepts.

    Returns:
        ``model``.
    """
    holder = spec_holder(model)
    if holder is None:
        raise TypeError(f"model {getattr(model, 'name', model)!r} was not built by "
                        "keras_resnet (no spec to record the preprocessing in)")
    holder._resnet_spec = holder._resnet_spec.replace(preprocessing=preprocessing)
    return model


def port_weights(source: Any, target: Any, preprocessing: Any = "auto") -> Any:
    """Copies the weights of a ``keras.applications`` model into an equal preset.

    The presets that mirror ``keras.applications`` build the same layers in the
    same order, so this is ``target.set_weights(source.get_weights())`` after
    checking, weight by weight, that the shapes agree.

    Args:
        source: e.g. ``keras.applications.ResNet50(weights=...)``.
        target: e.g. ``kr.build_resnet("resnet50")``.
        preprocessing: What the target records as its input convention:
            ``"auto"`` records ``keras.applications``' (``"caffe"`` for ResNet50/
            101/152, ``"tf"`` for the V2 nets) when the target mirrors one of
            them and leaves it otherwise; None leaves it; any other value is
            recorded.

    Returns:
        ``target``.

    Example:

    ```python
    ka = keras.applications.ResNet50(weights=None)
    model = kr.presets.port_weights(ka, kr.build_resnet("resnet50"))
    ```
    """
    holder = spec_holder(target)
    if holder is not None and holder._resnet_spec.drop_path_rate > 0:
        raise ValueError(
            "cannot port weights by position into a model with drop-path layers (they "
            "change the order of its weights): port into the same spec with "
            "drop_path_rate=0, or build with weights=..., which does that for you")
    src, dst = source.weights, target.weights
    if len(src) != len(dst):
        raise C.InvalidInput(
            f"cannot port weights: {source.name!r} has {len(src)} weight tensors and "
            f"{target.name!r} has {len(dst)}; the architectures differ"
        )
    for a, b in zip(src, dst):
        if tuple(a.shape) != tuple(b.shape):
            raise C.InvalidInput(
                f"cannot port weights: {a.path} has shape {tuple(a.shape)} but "
                f"{b.path} has shape {tuple(b.shape)}; the architectures differ"
            )
    target.set_weights(source.get_weights())
    if preprocessing == "auto":
        holder = spec_holder(target)
        app = keras_application_of(holder._resnet_spec) if holder is not None else None
        preprocessing = KERAS_APPLICATIONS_PREPROCESSING.get(app or "")
    if preprocessing is not None:
        record_preprocessing(target, preprocessing)
    return target


def depth_of(spec: ModelSpec) -> int:
    """The depth of a spec: the largest ``repeat`` of its block entries (3 for
    ``cifar_resnet20``, 6 for ``resnet50``), what :func:`with_depth` sets."""
    repeats = [b.repeat for b in spec.blocks if b.type != "pool"]
    if not repeats:
        C.fail("blocks", "must hold at least one block entry (not only pool entries)",
               len(spec.blocks))
    return max(repeats)


def with_depth(spec: ModelSpec, depth: int) -> ModelSpec:
    """The same network with ``depth`` blocks in its deepest stage, the others in
    proportion: the one depth rule (the experiment, the tuner and the CIFAR
    presets use it).

    Each block entry's repeat becomes ``max(1, round(repeat * depth /
    deepest))``, rounding half up: for the CIFAR nets (three stages of n) the
    depth is the paper's n, and the net has ``6n + 2`` layers.

    Args:
        spec: A ``ModelSpec``.
        depth: Blocks in the deepest stage.

    Returns:
        The spec with its block entries' repeats changed (pool entries stay).

    Example:

    ```python
    spec = kr.presets.with_depth(kr.presets.get("cifar_resnet20"), 9)  # ResNet-56
    ```
    """
    depth = C.check_int("depth", depth, minimum=1, maximum=10000)
    deepest = depth_of(spec)
    blocks = tuple(b if b.type == "pool" else dataclasses.replace(
        b, repeat=max(1, (2 * b.repeat * depth + deepest) // (2 * deepest)))
        for b in spec.blocks)
    return spec if blocks == tuple(spec.blocks) else spec.replace(blocks=blocks)


def cifar(layers: int, shortcut: str = "A", residual: bool = True) -> ModelSpec:
    """The paper's CIFAR network with ``layers = 6n + 2`` layers (He et al. 2015, §4.2).

    Args:
        layers: 8, 14, 20, 32, 44, 56, 110, ... (``6n + 2``, n >= 1).
        shortcut: The shortcut option (``"A"``: plain and residual twins have
            the same parameters).
        residual: False for the plain twin.

    Returns:
        The spec, named ``"cifar<layers>"``.
    """
    layers = C.check_int("depths[]", layers, minimum=8, maximum=60002)
    if (layers - 2) % 6:
        C.fail("depths[]", "must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110...)", layers)
    spec = with_depth(get("cifar_resnet20"), (layers - 2) // 6)
    return spec.replace(shortcut=shortcut, residual=residual, name=f"cifar{layers}")


#: Names removed: name -> (when, what to use instead).
_REMOVED = {
    "list": ("removed in 0.3", "presets.names()"),
    "is_residual": ("removed in 0.3", "presets.get(name).residual"),
    "with_residual": ("deprecated in 0.3 and is removed", "kr.build_plain(spec) / "
                      "kr.build_resnet(spec), or spec.replace(residual=...)"),
}


def __getattr__(name: str) -> Any:
    C.no_attribute("keras_resnet.presets", name, _REMOVED)


#: Convolutional block types and their pre-activation twins (basic <-> preact_basic).
CONV_TWINS = {"basic": "preact_basic", "preact_basic": "basic",
              "bottleneck": "preact_bottleneck", "preact_bottleneck": "bottleneck"}


def with_width(spec: ModelSpec, width: float) -> ModelSpec:
    """The same network with every block's and the stem's filters times ``width``
    (rounded half up, at least 1): Wide ResNets' k, or a thinner net below 1.

    Args:
        spec: A ``ModelSpec``.
        width: The multiplier (> 0).

    Returns:
        The spec with its filters changed.
    """
    width = C.check_float("width", width, minimum=0.0, maximum=64.0)
    if width <= 0:
        C.fail("width", "must be > 0", width)

    def scale(f: int) -> int:
        return max(1, min(65536, int(f * width + 0.5)))

    blocks = tuple(b if b.type == "pool" else dataclasses.replace(b, filters=scale(b.filters))
                   for b in spec.blocks)
    stem = spec.stem and dataclasses.replace(spec.stem, filters=scale(spec.stem.filters))
    return spec.replace(blocks=blocks, stem=stem)


def with_block_type(spec: ModelSpec, block_type: str) -> ModelSpec:
    """The same network with every convolutional block of ``block_type`` (a plain
    conv block and its pre-activation twin swap; bottleneck-only options are
    dropped for basic types).

    Args:
        spec: A ``ModelSpec`` with basic/bottleneck (pre-activation or not) blocks.
        block_type: One of :data:`CONV_TWINS`.

    Returns:
        The spec with its conv blocks changed.
    """
    C.check_choice("block_type", block_type, tuple(CONV_TWINS))
    if not any(b.type in CONV_TWINS for b in spec.blocks):
        C.fail("block_type", f"needs a base with {'/'.join(CONV_TWINS)} blocks; this one "
               f"has {sorted({b.type for b in spec.blocks})}", block_type)
    extra: dict = {} if "bottleneck" in block_type else {"bottleneck_ratio": None,
                                                        "stride_1x1": False}
    blocks = tuple(dataclasses.replace(b, type=block_type, **extra)
                   if b.type in CONV_TWINS and b.type != block_type else b
                   for b in spec.blocks)
    return spec.replace(blocks=blocks)
