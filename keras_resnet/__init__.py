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
"""

from keras_resnet import presets
from keras_resnet._version import __version__  # noqa: E402
from keras_resnet.blocks import BlockContext
from keras_resnet.builders import (
    ResNetModel,
    as_spec,
    build,
    build_plain,
    build_resnet,
    residual_of,
    spec_of,
)
from keras_resnet.data import Data, load_data
from keras_resnet.experiment import CompareResult, compare
from keras_resnet.flops import flops, layer_flops
from keras_resnet.layers import ZeroPadShortcut
from keras_resnet.plan import Plan, Step, make_plan, resolve_shortcut
from keras_resnet.plots import plot
from keras_resnet.registry import BlockType, list_blocks, register_block
from keras_resnet.serving import ExportResult, export
from keras_resnet.spec import BlockSpec, ModelSpec, PoolSpec, StemSpec

# The compatibility module keras_resnet.train is loaded here, before `train` is
# bound to the function: a later `import keras_resnet.train` then cannot replace
# kr.train with the module.
from keras_resnet.train import TrainingDiverged, TrainResult, compile_model, train
from keras_resnet.training import EpochBackup, Recipe


def __getattr__(name: str):
    # kr.tune and kr.tuning load KerasTuner only when first used.
    if name in ("tune", "tuning"):
        import importlib

        tuning = importlib.import_module("keras_resnet.tuning")
        return tuning if name == "tuning" else tuning.tune
    raise AttributeError(f"module 'keras_resnet' has no attribute {name!r}")


__all__ = [
    "BlockContext",
    "Data",
    "TrainResult",
    "EpochBackup",
    "Recipe",
    "TrainingDiverged",
    "BlockSpec",
    "CompareResult",
    "ExportResult",
    "BlockType",
    "ModelSpec",
    "Plan",
    "PoolSpec",
    "ResNetModel",
    "StemSpec",
    "Step",
    "ZeroPadShortcut",
    "__version__",
    "as_spec",
    "build",
    "build_plain",
    "build_resnet",
    "compare",
    "residual_of",
    "export",
    "compile_model",
    "load_data",
    "train",
    "tune",
    "flops",
    "layer_flops",
    "list_blocks",
    "make_plan",
    "plot",
    "presets",
    "register_block",
    "resolve_shortcut",
    "spec_of",
]
