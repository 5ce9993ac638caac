"""Tuning depth and L2 (and the recipe) with KerasTuner: resumable, several processes.

Three modules, one job each: :mod:`~keras_resnet.tuning.space` (the search
space, :func:`spec_for` and the HyperModel), :mod:`~keras_resnet.tuning.search`
(:func:`tune`, its loop and results) and :mod:`~keras_resnet.tuning.state` (the
ledger, lock and claims on disk); :mod:`~keras_resnet.tuning.runner` runs a
trial, :mod:`~keras_resnet.tuning.cli` is the ``tune`` command.

Importing this package loads neither Keras nor KerasTuner; the names below
load them when first used. Example:

```python
import keras_resnet as kr

data = kr.load_data("digits")
best, search = kr.tune("cifar_resnet20", data, algorithm="random", max_trials=12,
                       epochs=8, directory="tuner")
print(kr.tuning.results_table(search))
# kr.train(best, data, **json.load(open("tuner/cifar_resnet20_random/best_recipe.json")))
```
"""

from __future__ import annotations

import importlib
from typing import Any

from keras_resnet.tuning.cli import add_tune_parser, cmd_tune

_LAZY = {
    "HP_NAMES": "space", "RECIPE_HPS": "space", "ResNetHyperModel": "space",
    "as_data": "space", "base_depth": "space", "default_depths": "space",
    "spec_for": "space", "ALGORITHMS": "search", "Search": "search",
    "results_table": "search", "tune": "search",
}

__all__ = ["add_tune_parser", "cmd_tune", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"keras_resnet.tuning.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'keras_resnet.tuning' has no attribute {name!r}")
