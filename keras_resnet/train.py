"""Compatibility module: training moved to :mod:`keras_resnet.training`.

``kr.train`` and the names below keep working; new code imports from
``keras_resnet.training`` (the recipe from ``keras_resnet.training.recipe``).
"""

from keras_resnet.training.contexts import (
    DISTRIBUTE,
    PRECISIONS,
    Distribution,
    distribution,
    precision,
)
from keras_resnet.training.recipe import (
    OPTIMIZERS,
    SCHEDULES,
    TrainingDiverged,
    compile_model,
    learning_rate_at,
    make_optimizer,
)
from keras_resnet.training.run import BACKUP_DIR
from keras_resnet.training.train import TrainResult, train

__all__ = ["BACKUP_DIR", "DISTRIBUTE", "OPTIMIZERS", "PRECISIONS", "SCHEDULES",
           "Distribution", "TrainResult", "TrainingDiverged", "compile_model",
           "distribution", "learning_rate_at", "make_optimizer", "precision", "train"]
