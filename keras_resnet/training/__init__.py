"""Training: one recipe, a crash-safe backup, a run folder.

- ``recipe``: :class:`Recipe`, the one owner of optimizer, loss, schedule and
  warm-up, augmentation, batch order and the standard callbacks (shared by
  ``kr.train``, ``kr.compare`` and the tuner);
- ``pipeline``: the batches (the ``(seed, epoch)`` order, augmentation);
- ``contexts``: distribution and precision;
- ``backup``: :class:`EpochBackup`, the per-epoch backup callback;
- ``run``: the run folder (files, ``run.json``, the resume check);
- ``train``: :func:`train`, which puts them together.
"""

from keras_resnet.training.backup import EpochBackup
from keras_resnet.training.contexts import (
    Distribution,
    MultiProcess,
    distribution,
    precision,
)
from keras_resnet.training.recipe import (
    OPTIMIZERS,
    SCHEDULES,
    Recipe,
    TrainingDiverged,
    learning_rate_at,
    prepare,
)
from keras_resnet.training.train import TrainResult, train

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "Distribution",
    "EpochBackup",
    "MultiProcess",
    "Recipe",
    "TrainResult",
    "TrainingDiverged",
    "distribution",
    "learning_rate_at",
    "precision",
    "prepare",
    "train",
]
