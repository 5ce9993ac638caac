"""Tuning depth and L2 (and the recipe) with KerasTuner: resumable, trials side by side.

:mod:`~keras_resnet.tuning.space`: the search space, :func:`spec_for` and the
HyperModel; :mod:`~keras_resnet.tuning.search`: :func:`tune`, its trials and
results; :mod:`~keras_resnet.tuning.state`: the ledger, lock and claims on
disk; :mod:`~keras_resnet.tuning.cli`: the ``tune`` command. Importing this
package loads neither Keras nor KerasTuner; the names below do, when first used.
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
        return getattr(importlib.import_module(f"keras_resnet.tuning.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'keras_resnet.tuning' has no attribute {name!r}")
