"""keras_resnet: plain and residual Keras 3 networks from a short spec.

```python
import keras_resnet as kr

spec = kr.ModelSpec(
    input_shape=(32, 32, 3),
    stem=kr.StemSpec(filters=16, kernel_size=3, strides=1, pool=None),
    blocks=[kr.BlockSpec("basic", 16, repeat=3),
            kr.BlockSpec("basic", 32, repeat=3, strides=2),
            kr.BlockSpec("basic", 64, repeat=3, strides=2)],
    shortcut="A", l2=1e-4, classes=10)
resnet = kr.build_resnet(spec)   # residual
plain = kr.build_plain(spec)     # the same network without shortcuts
```

``import keras_resnet`` loads the spec and the builder side (and registers
this package's layers, so ``keras.models.load_model`` reads its ``.keras``
files); the workflows (``kr.train``, ``kr.compare``, ``kr.tune``,
``kr.export``, ``kr.plot``, data loading) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from keras_resnet import _checks, presets, weights
from keras_resnet._version import __version__
from keras_resnet.blocks import BlockContext
from keras_resnet.builders import (
    ResNetModel,
    as_spec,
    build,
    build_plain,
    build_resnet,
    from_keras_hub,
    spec_of,
)
from keras_resnet.features import ResNetFeatures, feature_model
from keras_resnet.finetune import freeze, replace_head, stage_names, unfreeze
from keras_resnet.flops import flops, layer_flops
from keras_resnet.inputs import load_image, preprocess_input
from keras_resnet.layers import DropPath, MaxPoolPadding2D, Preprocess, ZeroPadShortcut
from keras_resnet.plan import Plan, Step, make_plan, resolve_shortcut
from keras_resnet.registry import BlockType, list_blocks, register_block
from keras_resnet.spec import BlockSpec, ModelSpec, PoolSpec, StemSpec

#: Public names loaded on first use: name -> module.
_LAZY = {
    "Data": "data", "load_data": "data",
    "RunFolder": "runfolder",
    "Recipe": "training", "train": "training", "TrainResult": "training",
    "TrainingDiverged": "training", "EpochBackup": "training",
    "compare": "experiment", "CompareResult": "experiment",
    "tune": "tuning", "TuneResult": "tuning",
    "export": "serving", "ExportResult": "serving",
    "plot": "plots", "stage_table": "report",
}
_MODULES = ("training", "tuning", "serving", "experiment", "parallel", "data")
#: Names removed: name -> (when, what to use instead).
_REMOVED = {
    "residual_of": ("removed in 0.3", "kr.as_spec(x).residual or kr.spec_of(model).residual"),
    "compile_model": ("deprecated in 0.3 and is removed",
                      "kr.Recipe(optimizer=..., learning_rate=...).compile(model)"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"keras_resnet.{_LAZY[name]}"), name)
        globals()[name] = value  # once: later lookups do not come here
        return value
    if name in _MODULES:
        return importlib.import_module(f"keras_resnet.{name}")
    _checks.no_attribute("keras_resnet", name, _REMOVED)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_MODULES))


__all__ = [
    "DropPath",
    "MaxPoolPadding2D",
    "Preprocess",
    "ResNetFeatures",
    "feature_model",
    "freeze",
    "from_keras_hub",
    "load_image",
    "preprocess_input",
    "replace_head",
    "stage_names",
    "unfreeze",
    "weights",
    "BlockContext",
    "BlockSpec",
    "BlockType",
    "CompareResult",
    "Data",
    "EpochBackup",
    "ExportResult",
    "ModelSpec",
    "Plan",
    "PoolSpec",
    "Recipe",
    "ResNetModel",
    "RunFolder",
    "StemSpec",
    "Step",
    "TrainResult",
    "TrainingDiverged",
    "TuneResult",
    "ZeroPadShortcut",
    "__version__",
    "as_spec",
    "build",
    "build_plain",
    "build_resnet",
    "compare",
    "export",
    "flops",
    "layer_flops",
    "list_blocks",
    "load_data",
    "make_plan",
    "plot",
    "presets",
    "register_block",
    "resolve_shortcut",
    "spec_of",
    "stage_table",
    "train",
    "tune",
]
