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
model = recipe.build("cifar_resnet20", data)   # seed, then build for the data
recipe.compile(model)
history = recipe.fit(model, data, callbacks=[...])
```

Imports Keras, never TensorFlow.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from keras_resnet import _checks as C
from keras_resnet.builders import as_spec, build, outputs_logits
from keras_resnet.data import Data
from keras_resnet.flops import is_small_step
from keras_resnet.training.pipeline import batches

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("step", "cosine", "constant")
#: The learning rate of each named optimizer when the recipe gives none.
DEFAULT_LEARNING_RATES = {"sgd": 0.1, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; nothing was saved over earlier results."""


def _keras_config(value: Any, kind: str) -> Any:
    """A Keras optimizer or metric object as its serialized config (JSON-ready),
    so a recipe holding one still compares, prints and writes to ``run.json``."""
    if isinstance(value, (keras.optimizers.Optimizer, keras.metrics.Metric)):
        return keras.saving.serialize_keras_object(value)
    if isinstance(value, dict) and "class_name" in value:
        return value
    C.fail(kind, "must be a name or a Keras object", value, TypeError)


@dataclass(frozen=True)
class Recipe:
    """How a model is trained; the defaults are He et al.'s CIFAR recipe.

    SGD with momentum 0.9, learning rate 0.1 divided by 10 at 50% and 75% of
    training (the paper's 32k and 48k of 64k iterations), batch 128; weight
    decay comes from the spec's ``l2``. ``kr.train``, ``kr.compare`` and
    every tuning trial train through a recipe, in the same sequence
    (:meth:`build`, :meth:`compile`, :meth:`fit`), so a result found by one
    reproduces in the others. Its fields are also keyword arguments of
    ``kr.train``, ``kr.compare`` and ``kr.tune``.

    Attributes:
        epochs: Epochs in total.
        batch_size: Batch size (NumPy data; folders are batched when loaded).
        optimizer: ``"sgd"`` (with momentum, the paper's), ``"adam"``,
            ``"adamw"``, ``"rmsprop"``, or a ``keras.optimizers.Optimizer``
            (kept as its config; a fresh copy is made for every model).
        learning_rate: Initial learning rate; None: 0.1 for SGD, 1e-3 for the
            others, a Keras optimizer's own rate.
        momentum: Momentum of SGD and RMSprop (Adam and AdamW ignore it).
        schedule: ``"step"`` (/10 at 50% and 75% of the epochs), ``"cosine"``
            (to 0) or ``"constant"``.
        warmup_epochs: Epochs at a tenth of the rate first (the paper's
            ResNet-110 warm-up).
        label_smoothing: Label smoothing of the loss (0 disables it).
        augment: The paper's CIFAR augmentation (random shift of 1/8 of the
            size with zero fill, i.e. pad 4 and crop at 32x32, plus a random
            horizontal flip) on training batches; the draws depend only on
            the seed, the epoch and the batch.
        metrics: Metrics to report: names (``"accuracy"``) or
            ``keras.metrics.Metric`` objects (kept as their config).
        seed: Seed of ``keras.utils.set_random_seed`` before the model is built
            and of the batch order; None leaves the random state as it is (the
            batch order then uses 0).

    Example:

    ```python
    recipe = kr.Recipe(epochs=20, batch_size=32, learning_rate=0.05)
    recipe.learning_rate_at(15)        # 0.005
    recipe.replace(augment=True).to_dict()
    kr.Recipe(optimizer=keras.optimizers.AdamW(3e-4, weight_decay=0.05))
    ```
    """

    epochs: int = field(default=30, metadata={"help": "epochs in total"})
    batch_size: int = field(default=128, metadata={"help": "examples per training step"})
    optimizer: Any = field(default="sgd", metadata={
        "help": "sgd (momentum), adam, adamw or rmsprop", "choices": OPTIMIZERS})
    learning_rate: float | None = field(default=None, metadata={
        "help": "initial learning rate (default: 0.1 for sgd, 1e-3 for the others)"})
    momentum: float = field(default=0.9, metadata={"help": "momentum of sgd and rmsprop"})
    schedule: str = field(default="step", metadata={
        "help": "step (/10 at 50% and 75% of the epochs), cosine or constant",
        "choices": SCHEDULES})
    warmup_epochs: int = field(default=0, metadata={
        "help": "epochs at a tenth of the learning rate first"})
    label_smoothing: float = field(default=0.0, metadata={
        "help": "label smoothing of the loss (0: none)"})
    augment: bool = field(default=False, metadata={
        "help": "the paper's CIFAR augmentation (random shifts of 1/8 of the size, "
                "horizontal flips)"})
    metrics: tuple = field(default=("accuracy",), metadata={
        "help": "metrics to report (Keras names)"})
    seed: int | None = field(default=0, metadata={
        "help": "seed of the initial weights and of the batch order"})

    def __post_init__(self) -> None:
        optimizer = self.optimizer
        if isinstance(optimizer, str) or optimizer is None:
            optimizer = C.check_choice("optimizer", optimizer, OPTIMIZERS)
        else:
            optimizer = _keras_config(optimizer, "optimizer")
        rate = self.learning_rate
        if rate is None:
            rate = (DEFAULT_LEARNING_RATES[optimizer] if isinstance(optimizer, str)
                    else optimizer["config"].get("learning_rate"))
        if not isinstance(self.metrics, (list, tuple)):
            C.fail("metrics", "must be a list of names or Keras metrics", self.metrics,
                   TypeError)
        checked = dict(
            epochs=C.check_int("epochs", self.epochs, minimum=1, maximum=100000),
            batch_size=C.check_int("batch_size", self.batch_size, minimum=1,
                                   maximum=1 << 20),
            optimizer=optimizer,
            learning_rate=C.check_float("learning_rate", rate, minimum=0.0),
            momentum=C.check_float("momentum", self.momentum, minimum=0.0, maximum=1.0,
                                   exclusive_maximum=True),
            schedule=C.check_choice("schedule", self.schedule, SCHEDULES),
            label_smoothing=C.check_float("label_smoothing", self.label_smoothing,
                                          minimum=0.0, maximum=1.0,
                                          exclusive_maximum=True),
            augment=C.check_bool("augment", self.augment),
            metrics=tuple(m if isinstance(m, str) else _keras_config(m, "metrics[]")
                          for m in self.metrics),
            seed=None if self.seed is None else C.check_int("seed", self.seed, minimum=0),
        )
        checked["warmup_epochs"] = C.check_int("warmup_epochs", self.warmup_epochs,
                                               minimum=0, maximum=checked["epochs"])
        for name, value in checked.items():  # ints as int, numbers as float
            object.__setattr__(self, name, value)

    @classmethod
    def of(cls, recipe: Recipe | Mapping | None = None, **fields: Any) -> Recipe:
        """A recipe from what a user passes: a ``Recipe``, its dict or None
        (the defaults), with ``fields`` changed.

        Args:
            recipe: The base recipe.
            **fields: Recipe fields to change (unknown names are an error).

        Returns:
            The recipe.
        """
        if recipe is None:
            base = cls()
        elif isinstance(recipe, Recipe):
            base = recipe
        elif isinstance(recipe, Mapping):
            base = cls.from_dict(dict(recipe))
        else:
            C.fail("recipe", "must be a keras_resnet Recipe or its dict", recipe,
                   TypeError)
        return base.replace(**fields) if fields else base

    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict (the keyword arguments of ``kr.train``)."""
        out = dataclasses.asdict(self)
        out["metrics"] = list(self.metrics)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Recipe:
        """A recipe from :meth:`to_dict`'s dict; unknown keys are an error.

        Args:
            d: Some or all of the fields (missing ones take their defaults); the
                ``recipe`` of a run folder's ``run.json`` works too.

        Returns:
            The recipe.
        """
        if not isinstance(d, dict):
            C.fail("recipe", f"must be a dict (got {C.type_name(d)})", d, TypeError)
        C.check_keys("recipe", d, [f.name for f in dataclasses.fields(cls)])
        return cls(**d)

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed (and checked again).

        A new ``optimizer`` without a ``learning_rate`` takes that optimizer's
        default rate.
        """
        C.check_keys("recipe", changes, [f.name for f in dataclasses.fields(self)])
        if "optimizer" in changes and "learning_rate" not in changes:
            changes["learning_rate"] = None
        return dataclasses.replace(self, **changes)

    def learning_rate_at(self, epoch: int) -> float:
        """Learning rate of an epoch (0-based); see :func:`learning_rate_at`."""
        return learning_rate_at(epoch, self.epochs, float(self.learning_rate or 0.0),
                                self.schedule, self.warmup_epochs)

    def make_optimizer(self) -> keras.optimizers.Optimizer:
        """A fresh optimizer (weight decay comes from the model's L2 terms)."""
        lr, momentum = self.learning_rate, self.momentum
        if isinstance(self.optimizer, dict):
            optimizer = keras.saving.deserialize_keras_object(copy.deepcopy(self.optimizer))
            optimizer.learning_rate = lr
            return optimizer
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

    def make_metrics(self) -> list:
        """Fresh metric objects (``"accuracy"`` is sparse categorical accuracy)."""
        out = []
        for metric in self.metrics:
            if metric == "accuracy":
                out.append(keras.metrics.SparseCategoricalAccuracy(name="accuracy"))
            elif isinstance(metric, dict):
                out.append(keras.saving.deserialize_keras_object(copy.deepcopy(metric)))
            else:
                out.append(metric)
        return out

    def build(self, model_or_spec: Any, data: Data) -> keras.Model:
        """Seeds the random state, then builds the model for the data.

        The first step of every training run: ``keras.utils.set_random_seed(
        seed)`` (unless the seed is None), then a spec (or preset name or
        spec file) is built with the data's input shape and classes. A Keras
        model is returned as it is (after seeding).

        Args:
            model_or_spec: A spec, preset name, spec file or Keras model.
            data: The data the model is for.

        Returns:
            The model, not yet compiled.
        """
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)
        if isinstance(model_or_spec, keras.Model):
            return model_or_spec
        spec = as_spec(model_or_spec)  # plain or residual as spec.residual says
        return build(spec.replace(input_shape=tuple(data.input_shape), classes=data.classes))

    def compile(self, model: keras.Model, *,
                steps_per_execution: int | str = "auto") -> keras.Model:
        """Compiles a classifier: optimizer, loss (integer labels) and metrics.

        The one way this package compiles: ``kr.train``, ``kr.compare`` and the
        tuner's trials call it.

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
                      metrics=self.make_metrics(), steps_per_execution=steps_per_execution)
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
            raise C.InvalidInput("the model must be compiled first (recipe.compile(model)). "
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


#: What ``steps_per_execution="auto"`` chooses for small steps.
AUTO_STEPS_PER_EXECUTION = 16


def auto_steps_per_execution(model: keras.Model, batch_size: int) -> int:
    """:data:`AUTO_STEPS_PER_EXECUTION` when a step is small (see
    :data:`keras_resnet.flops.SMALL_STEP_MACS`), else 1; on every backend.

    A rule on the size of the work, not on a host's timing. TensorFlow runs
    the k steps in one graph call (one dispatch and one ``tf.data`` hand-over
    for k batches). Keras' JAX trainer runs them as k calls of the same jitted
    one-step function in a Python loop, which still saves the per-batch
    callback calls and their asynchronous hand-over (measured on a model
    whose step is all overhead: about 300 down to 150 microseconds per step);
    it changes nothing else, so it never costs.
    """
    return AUTO_STEPS_PER_EXECUTION if is_small_step(model, batch_size) else 1


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
