"""The training recipe: one object that owns how a model is trained.

:class:`Recipe` holds every training hyperparameter a search may vary and owns
the decisions made from them: the optimizer, the loss (with label smoothing),
the learning-rate schedule with its warm-up, augmentation, the per-epoch batch
order and the standard callbacks. :func:`keras_resnet.train`,
:func:`keras_resnet.compare` and every tuning trial train through it, so a
result found by one reproduces in the others: the same recipe, seed, spec and
data give the same numbers (exactly on CPU).

The sequence every user of the recipe follows (and :func:`keras_resnet.train`
does):

```python
recipe = kr.Recipe(epochs=10, learning_rate=0.05, warmup_epochs=1)
model = prepare("cifar_resnet20", data, recipe)   # seed, then build for the data
recipe.compile(model)
history = recipe.fit(model, data, callbacks=[...])
```

Imports Keras, never TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from keras_resnet import _checks as C
from keras_resnet.builders import as_spec, build, outputs_logits
from keras_resnet.data import Data
from keras_resnet.flops import layer_flops
from keras_resnet.training.pipeline import batches

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("step", "cosine", "constant")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; nothing was saved over earlier results."""


@dataclass(frozen=True)
class Recipe:
    """How a model is trained; the defaults are He et al.'s CIFAR recipe.

    SGD with momentum 0.9, learning rate 0.1 divided by 10 at 50% and 75% of
    training (the paper's 32k and 48k of 64k iterations), batch 128; weight
    decay comes from the spec's ``l2``. The field names are the keyword
    arguments of :func:`keras_resnet.train`, so
    ``kr.train(spec, data, **recipe.to_dict())`` trains with the recipe.

    Attributes:
        epochs: Epochs in total.
        batch_size: Batch size (NumPy data; folders are batched when loaded).
        optimizer: ``"sgd"`` (with momentum, the paper's), ``"adam"``,
            ``"adamw"`` or ``"rmsprop"``.
        learning_rate: Initial learning rate.
        momentum: Momentum of SGD and RMSprop (Adam and AdamW ignore it).
        schedule: ``"step"`` (/10 at 50% and 75% of the epochs), ``"cosine"``
            (to 0) or ``"constant"``.
        warmup_epochs: Epochs at a tenth of the rate first (the paper's
            ResNet-110 warm-up).
        label_smoothing: Label smoothing of the loss (0 disables it).
        augment: The paper's CIFAR augmentation (random shift of 1/8 of the
            size with zero fill, i.e. pad 4 and crop at 32x32, plus a random
            horizontal flip) on training batches.
        seed: Seed of ``keras.utils.set_random_seed`` before the model is built
            (see :func:`prepare`) and of the batch order; None leaves the
            random state as it is (the batch order then uses 0).

    Example:

    ```python
    recipe = kr.Recipe(epochs=20, batch_size=32, learning_rate=0.05)
    recipe.learning_rate_at(15)        # 0.005
    recipe.replace(augment=True).to_dict()
    ```
    """

    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.9
    schedule: str = "step"
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    augment: bool = False
    seed: int | None = 0

    def __post_init__(self) -> None:
        checked = dict(
            epochs=C.check_int("epochs", self.epochs, minimum=1, maximum=100000),
            batch_size=C.check_int("batch_size", self.batch_size, minimum=1,
                                   maximum=1 << 20),
            optimizer=C.check_choice("optimizer", self.optimizer, OPTIMIZERS),
            learning_rate=C.check_float("learning_rate", self.learning_rate, minimum=0.0),
            momentum=C.check_float("momentum", self.momentum, minimum=0.0, maximum=1.0,
                                   exclusive_maximum=True),
            schedule=C.check_choice("schedule", self.schedule, SCHEDULES),
            label_smoothing=C.check_float("label_smoothing", self.label_smoothing,
                                          minimum=0.0, maximum=1.0,
                                          exclusive_maximum=True),
            augment=C.check_bool("augment", self.augment),
            seed=None if self.seed is None else C.check_int("seed", self.seed, minimum=0),
        )
        checked["warmup_epochs"] = C.check_int("warmup_epochs", self.warmup_epochs,
                                               minimum=0, maximum=checked["epochs"])
        for name, value in checked.items():  # ints as int, numbers as float
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict (the keyword arguments of ``kr.train``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Recipe:
        """A recipe from :meth:`to_dict`'s dict; unknown keys are an error.

        Args:
            d: Some or all of the fields (missing ones take their defaults).

        Returns:
            The recipe.
        """
        if not isinstance(d, dict):
            C.fail("recipe", f"must be a dict (got {C.type_name(d)})", d, TypeError)
        C.check_keys("recipe", d, [f.name for f in dataclasses.fields(cls)])
        return cls(**d)

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed (and checked again)."""
        C.check_keys("recipe", changes, [f.name for f in dataclasses.fields(self)])
        return dataclasses.replace(self, **changes)

    def learning_rate_at(self, epoch: int) -> float:
        """Learning rate of an epoch (0-based); see :func:`learning_rate_at`."""
        return learning_rate_at(epoch, self.epochs, self.learning_rate, self.schedule,
                                self.warmup_epochs)

    def make_optimizer(self) -> keras.optimizers.Optimizer:
        """A fresh optimizer (weight decay comes from the model's L2 terms)."""
        lr, momentum = self.learning_rate, self.momentum
        if self.optimizer == "sgd":
            return keras.optimizers.SGD(lr, momentum=momentum)
        if self.optimizer == "adam":
            return keras.optimizers.Adam(lr)
        if self.optimizer == "adamw":
            return keras.optimizers.AdamW(lr)
        return keras.optimizers.RMSprop(lr, momentum=momentum)

    def make_loss(self, model: keras.Model) -> keras.losses.Loss:
        """Sparse cross-entropy on the model's softmax (or logits), smoothed if asked."""
        logits = outputs_logits(model)
        if self.label_smoothing > 0:
            return _SmoothedSparseCE(self.label_smoothing, from_logits=logits)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=logits)

    def compile(self, model: keras.Model, *,
                steps_per_execution: int | str = "auto") -> keras.Model:
        """Compiles a classifier: optimizer, loss (integer labels) and accuracy.

        Args:
            model: A classifier (softmax output, or logits when its last layer
                has no activation).
            steps_per_execution: Training steps per call into the backend
                (Keras' compile argument; it changes speed, not results: the
                same weights come out bit for bit). ``"auto"`` chooses
                :data:`AUTO_STEPS_PER_EXECUTION` for small steps (see
                :func:`auto_steps_per_execution`), else 1. Per-batch
                callbacks then see every k-th batch.

        Returns:
            The same model, compiled.
        """
        if steps_per_execution == "auto":
            steps_per_execution = auto_steps_per_execution(model, self.batch_size)
        steps_per_execution = C.check_int("steps_per_execution", steps_per_execution,
                                          minimum=1, maximum=100000)
        model.compile(optimizer=self.make_optimizer(), loss=self.make_loss(model),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                      steps_per_execution=steps_per_execution)
        if keras.backend.backend() == "tensorflow" and model.built:
            # Keras' TensorFlow trainer leaves the optimizer's variables to the first
            # traced step when no tf.distribute strategy is set, so TensorFlow traces the
            # step twice and lifts every initializer out of the graph: the first epoch of
            # ResNet-56 on digits took about 20 s instead of 13. Building them now (in the
            # model's strategy scope, as Keras does under a strategy) changes no number.
            with model.distribute_strategy.scope():
                model.optimizer.build(model.trainable_variables)
        return model

    def callbacks(self) -> list:
        """The standard callbacks: the learning-rate schedule and the NaN stop.

        Both act at epoch boundaries only, so Keras keeps dispatching batches
        asynchronously (a per-batch callback makes it wait for every batch).

        Returns:
            ``[keras.callbacks.LearningRateScheduler(...), StopOnNaN()]`` (new
            objects on every call).
        """
        return [keras.callbacks.LearningRateScheduler(
                    lambda epoch, lr: self.learning_rate_at(epoch)),
                StopOnNaN()]

    def fit(self, model: keras.Model, data: Data, *, callbacks: Sequence = (),
            initial_epoch: int = 0, verbose: int | str = "auto",
            multiple: int = 1, shard: tuple = (0, 1)) -> keras.callbacks.History:
        """Fits a compiled model to ``data`` with the recipe.

        NumPy data comes in batches whose order in epoch ``e`` depends only on
        ``(seed, e)`` (a resumed run sees the batches an uninterrupted one
        would), augmented if the recipe says so (the draws depend only on
        ``(seed, e)`` too), through ``tf.data`` on TensorFlow (see
        :mod:`keras_resnet.training.pipeline`); ``tf.data`` data (image
        folders) is used as loaded, augmented in the pipeline. The data's
        validation split is evaluated after every epoch. A NaN or infinite
        loss is noticed at the end of its epoch (the epoch's mean loss), so
        no batch waits for the host.

        Args:
            model: A compiled model (see :meth:`compile`).
            data: A :class:`~keras_resnet.data.Data`.
            callbacks: More Keras callbacks, after the standard ones.
            initial_epoch: Epochs already done (a resumed run).
            verbose: Keras ``fit`` verbosity.
            multiple: Cut every NumPy batch to a multiple of this (JAX data
                parallelism shards batches evenly over the devices).
            shard: ``(index, count)``: this process's share of every batch in
                a ``count``-process job (see ``pipeline.shard_epoch``).

        Returns:
            Keras' ``History`` of this call.

        Raises:
            TrainingDiverged: the loss became NaN or infinite.
        """
        if not isinstance(data, Data):
            C.fail("data", f"must be a keras_resnet Data (see kr.load_data; got "
                   f"{C.type_name(data)})", data, TypeError)
        if getattr(model, "optimizer", None) is None:
            raise ValueError("the model must be compiled first (recipe.compile(model)). "
                             f"Received: model={model.name!r}, not compiled")
        initial_epoch = C.check_int("initial_epoch", initial_epoch, minimum=0)
        train_data, validation, feed = batches(data, self, initial_epoch=initial_epoch,
                                               multiple=multiple, shard=shard)
        history = model.fit(train_data, validation_data=validation, epochs=self.epochs,
                            initial_epoch=min(initial_epoch, self.epochs),
                            callbacks=feed + self.callbacks() + list(callbacks),
                            verbose=verbose, shuffle=False)
        bad = first_bad_loss(history.history)
        if bad is not None:
            raise TrainingDiverged(
                f"training diverged: the loss became {bad} (learning rate "
                f"{self.learning_rate}); lower learning_rate or add warmup_epochs")
        return history


#: Forward multiply-adds per batch at or below which a training step counts as
#: small: per-step overhead (Python, dispatch, callbacks) then costs more than
#: the arithmetic on a CPU, so ``steps_per_execution`` and one process per core
#: pay (CIFAR ResNet-56 on 8x8 digits, batch 32: 0.25 G; ResNet-50 at 64x64,
#: batch 32: 10.7 G). A property of the work, not of a host's timing.
SMALL_STEP_MACS = 2e9
#: What ``steps_per_execution="auto"`` chooses for small steps.
AUTO_STEPS_PER_EXECUTION = 16


def step_macs(model: keras.Model, batch_size: int) -> float | None:
    """Forward multiply-adds of one batch (None when the input size is not fixed)."""
    try:
        return float(sum(layer_flops(model).values())) * batch_size
    except (ValueError, AttributeError, TypeError):
        return None


def auto_steps_per_execution(model: keras.Model, batch_size: int) -> int:
    """:data:`AUTO_STEPS_PER_EXECUTION` when a step is small (see
    :data:`SMALL_STEP_MACS`), else 1; on every backend.

    A rule on the size of the work, not on a host's timing. TensorFlow runs
    the k steps in one graph call (one dispatch and one ``tf.data`` hand-over
    for k batches). Keras' JAX trainer runs them as k calls of the same jitted
    one-step function in a Python loop, which still saves the per-batch
    callback calls and their asynchronous hand-over (measured on a model
    whose step is all overhead: about 300 down to 150 microseconds per step);
    it changes nothing else, so it never costs.
    """
    macs = step_macs(model, batch_size)
    return AUTO_STEPS_PER_EXECUTION if macs is not None and macs <= SMALL_STEP_MACS else 1


class StopOnNaN(keras.callbacks.Callback):
    """Stops training after an epoch whose mean loss is NaN or infinite.

    The epoch's mean loss is NaN if any batch's was, so checking once per
    epoch catches what ``keras.callbacks.TerminateOnNaN`` catches per batch,
    without making every batch wait for the host. :meth:`Recipe.fit` then
    raises :class:`TrainingDiverged`.
    """

    async_safe = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if first_bad_loss(logs or {}) is not None:
            self.model.stop_training = True


def prepare(model_or_spec: Any, data: Data, recipe: Recipe) -> keras.Model:
    """Seeds the random state, then builds the model for the data.

    The first step of every training run: ``keras.utils.set_random_seed(
    recipe.seed)`` (unless the seed is None), then a spec (or preset name or
    spec file) is built with the data's input shape and number of classes. A
    Keras model is returned as it is (after seeding).

    Args:
        model_or_spec: A spec, preset name, spec file or Keras model.
        data: The data the model is for.
        recipe: The recipe (its seed).

    Returns:
        The model, not yet compiled.
    """
    if recipe.seed is not None:
        keras.utils.set_random_seed(recipe.seed)
    if isinstance(model_or_spec, keras.Model):
        return model_or_spec

    spec = as_spec(model_or_spec)  # plain or residual as spec.residual says
    return build(spec.replace(input_shape=tuple(data.input_shape), classes=data.classes))


def make_optimizer(name: str = "sgd", learning_rate: float = 0.1,
                   momentum: float = 0.9) -> keras.optimizers.Optimizer:
    """An optimizer by name, as :meth:`Recipe.make_optimizer` makes it.

    Args:
        name: ``"sgd"`` (with momentum, the paper's), ``"adam"``, ``"adamw"`` or
            ``"rmsprop"``.
        learning_rate: Initial learning rate (a schedule may change it).
        momentum: Momentum of SGD and RMSprop.

    Returns:
        A Keras optimizer.
    """
    return Recipe(optimizer=name, learning_rate=learning_rate,
                  momentum=momentum).make_optimizer()


def compile_model(model: keras.Model, optimizer: str = "sgd", learning_rate: float = 0.1,
                  momentum: float = 0.9, label_smoothing: float = 0.0) -> keras.Model:
    """Compiles a classifier the way :func:`keras_resnet.train` does.

    Shorthand for ``Recipe(optimizer=..., ...).compile(model)``: integer
    labels, cross-entropy on the model's softmax (or logits when its
    classifier has no activation), and accuracy.

    Args:
        model: A classifier.
        optimizer: ``"sgd"``, ``"adam"``, ``"adamw"`` or ``"rmsprop"``.
        learning_rate: Initial learning rate.
        momentum: Momentum of SGD and RMSprop.
        label_smoothing: Label smoothing (0 disables it).

    Returns:
        The same model, compiled.
    """
    return Recipe(optimizer=optimizer, learning_rate=learning_rate, momentum=momentum,
                  label_smoothing=label_smoothing).compile(model)


def learning_rate_at(epoch: int, epochs: int, base: float, schedule: str = "step",
                     warmup_epochs: int = 0) -> float:
    """Learning rate of an epoch (0-based) under a schedule.

    ``"step"`` divides by 10 at 50% and 75% of the epochs (He et al. 2015),
    ``"cosine"`` decays to 0, ``"constant"`` keeps ``base``. During the first
    ``warmup_epochs`` the rate is ``base / 10`` (the paper's ResNet-110 warm-up).
    """
    if epoch < warmup_epochs:
        return base / 10
    if schedule == "constant":
        return base
    if schedule == "cosine":
        span = max(1, epochs - warmup_epochs)
        return 0.5 * base * (1 + math.cos(math.pi * (epoch - warmup_epochs) / span))
    drops = sum(epoch >= math.ceil(epochs * f) for f in (0.5, 0.75))
    return base * (0.1 ** drops)


def first_bad_loss(logs: dict) -> float | None:
    """The first NaN/inf loss of a history (a list per key) or of epoch logs."""
    for value in np.atleast_1d(logs.get("loss", [])):
        if not math.isfinite(float(value)):
            return float(value)
    return None


@keras.saving.register_keras_serializable(package="keras_resnet")
class _SmoothedSparseCE(keras.losses.Loss):
    """Sparse categorical cross-entropy with label smoothing."""

    def __init__(self, smoothing: float = 0.1, from_logits: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.smoothing = smoothing
        self.from_logits = from_logits

    def call(self, y_true: Any, y_pred: Any) -> Any:
        classes = keras.ops.shape(y_pred)[-1]
        one_hot = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y_true, (-1,)),
                                                   "int32"), classes)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=self.from_logits, label_smoothing=self.smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "smoothing": self.smoothing,
                "from_logits": self.from_logits}
