"""Training: one recipe, a crash-safe backup, a run folder, a placement.

- ``recipe``: :class:`Recipe`, the one owner of optimizer, loss, schedule and
  warm-up, augmentation, batch order and the standard callbacks (shared by
  ``kr.train``, ``kr.compare`` and the tuner), and the one way to build,
  compile and fit with it;
- ``pipeline``: the batches (the ``(seed, epoch)`` order, augmentation);
- ``contexts``: :class:`Placement` (distribution and precision);
- ``backup``: :class:`EpochBackup`, the per-epoch backup callback;
- ``trainer``: :func:`train`, the keyword layer, and :func:`run`, the sequence.

The run folder's files belong to :class:`keras_resnet.RunFolder`.
"""

from typing import Any

from keras_resnet import _checks as C
from keras_resnet.training.backup import EpochBackup
from keras_resnet.training.contexts import (
    Distribution,
    MultiProcess,
    Placement,
    ProcessGroupError,
    distribution,
    exit_on_error,
    precision,
)
from keras_resnet.training.recipe import (
    DEFAULT_LEARNING_RATES,
    OPTIMIZERS,
    SCHEDULES,
    Recipe,
    TrainingDiverged,
    learning_rate_at,
)
from keras_resnet.training.trainer import TrainResult, run, train, weights_digest

__all__ = [
    "DEFAULT_LEARNING_RATES",
    "OPTIMIZERS",
    "SCHEDULES",
    "Distribution",
    "EpochBackup",
    "MultiProcess",
    "Placement",
    "ProcessGroupError",
    "Recipe",
    "TrainResult",
    "TrainingDiverged",
    "distribution",
    "exit_on_error",
    "learning_rate_at",
    "precision",
    "run",
    "train",
    "weights_digest",
]

#: Names removed: name -> (when, what to use instead).
_REMOVED = {"prepare": ("deprecated in 0.3 and is removed", "recipe.build(model, data)")}


def __getattr__(name: str) -> Any:
    C.no_attribute("keras_resnet.training", name, _REMOVED)
