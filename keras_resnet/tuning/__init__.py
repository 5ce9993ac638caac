"""Tuning depth and L2 (and the recipe) with KerasTuner: resumable, trials side by side.

:mod:`~keras_resnet.tuning.space`: the search space, :func:`spec_for` and the
HyperModel; :mod:`~keras_resnet.tuning.search`: :func:`tune`, its trials and
its :class:`TuneResult`; :mod:`~keras_resnet.tuning.ledger`: the ledger, lock
and claims on disk. Importing this package loads neither Keras nor KerasTuner;
the names below do, when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

#: The search algorithms (KerasTuner's oracles).
ALGORITHMS = ("hyperband", "random", "bayesian", "grid")
#: What a trial can score (its best epoch).
OBJECTIVES = ("val_accuracy", "val_loss", "accuracy", "loss")
#: Hyperparameter names, in the order they are declared.
HP_NAMES = ("depth", "use_l2", "l2", "width", "shortcut", "block_type", "drop_path_rate",
            "learning_rate", "optimizer", "batch_size", "epochs", "schedule", "augment")
#: The ones that change the recipe, not the network.
RECIPE_HPS = ("learning_rate", "optimizer", "batch_size", "epochs", "schedule", "augment")

_LAZY = {
    "ResNetHyperModel": "space", "base_depth": "space", "default_depths": "space",
    "spec_for": "space", "recipe_for": "space", "Search": "search", "TuneResult": "search",
    "tune": "search",
}

__all__ = ["ALGORITHMS", "HP_NAMES", "OBJECTIVES", "RECIPE_HPS", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"keras_resnet.tuning.{_LAZY[name]}"), name)
    if name == "results_table":
        raise AttributeError("kr.tuning.results_table(result) was deprecated in 0.3 and is "
                             "removed; use result.table()")
    raise AttributeError(f"module 'keras_resnet.tuning' has no attribute {name!r}")
