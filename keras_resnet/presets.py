"""Named specs, as data.

Each preset is one row of :data:`TABLE`: a family (which fixes stem, widths,
strides and options) and the number of blocks per stage. :func:`get` expands a
row into a :class:`~keras_resnet.spec.ModelSpec`; nothing else is code.

Example:

```python
import dataclasses
import keras_resnet as kr

spec = kr.presets.get("cifar_resnet56")
wider = dataclasses.replace(spec, l2=5e-4)
model = kr.build_resnet("cifar_resnet20")
```
"""

from __future__ import annotations

import builtins
import copy

from keras_resnet import _checks as C
from keras_resnet.spec import ModelSpec

#: Families: everything but the depth. ``stages`` lists (block type, filters,
#: strides of the stage's first block) per stage.
FAMILIES: dict[str, dict] = {
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
}

#: Preset name -> (family, blocks per stage, description, residual).
TABLE: dict[str, tuple] = {
    **{f"cifar_resnet{6 * n + 2}": ("cifar", [n] * 3,
                                    f"CIFAR ResNet-{6 * n + 2} (He et al. 2015, §4.2)",
                                    True)
       for n in (3, 5, 7, 9, 18, 200)},
    **{f"cifar_plain{6 * n + 2}": ("cifar", [n] * 3,
                                   f"CIFAR plain-{6 * n + 2}: ResNet-{6 * n + 2} "
                                   "without shortcuts (He et al. 2015, Fig. 6)", False)
       for n in (3, 5, 7, 9, 18, 200)},
}

PRESETS = TABLE  # name lookup used by the builders


def _expand(name: str) -> dict:
    family, depths, _, _ = TABLE[name]
    fam = FAMILIES[family]
    spec = copy.deepcopy(fam["spec"])
    spec["blocks"] = [
        {"type": btype, "filters": filters, "repeat": n, "strides": strides}
        for (btype, filters, strides), n in zip(fam["stages"], depths)
    ]
    spec["name"] = name
    return spec


def list() -> builtins.list[str]:  # noqa: A001 - the API name the users ask for
    """Returns the preset names."""
    return sorted(TABLE)


def get(name: str) -> ModelSpec:
    """Returns the spec of a preset.

    Args:
        name: A name from :func:`list`, e.g. ``"cifar_resnet20"``.

    Returns:
        The ``ModelSpec`` (edit it with ``dataclasses.replace``).
    """
    C.check_str("name", name)
    if name not in TABLE:
        raise ValueError(
            f"name must be a preset{C.close_matches(name, TABLE)}. Presets: "
            f"{', '.join(list())}. Received: name={name!r}"
        )
    return ModelSpec.from_dict(_expand(name))


def is_residual(name: str) -> bool:
    """Whether a preset names a residual (True) or a plain (False) network."""
    get(name)
    return TABLE[name][3]


def twin(name: str) -> str | None:
    """The preset with the same layers and the other kind (plain <-> residual)."""
    get(name)
    family, depths, _, residual = TABLE[name]
    for other, (fam, dep, _, res) in TABLE.items():
        if fam == family and dep == depths and res != residual:
            return other
    return None


def describe(name: str) -> str:
    """One-line description of a preset."""
    get(name)
    return TABLE[name][2]
