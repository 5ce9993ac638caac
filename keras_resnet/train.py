"""Training with the paper's recipe, progress bars, logs and resume after a crash.

:func:`train` compiles and fits a model (or builds one from a spec) with He et
al.'s CIFAR recipe by default: SGD with momentum 0.9, learning rate 0.1 divided
by 10 at 50% and 75% of training (the paper's 32k and 48k of 64k iterations),
weight decay through the spec's ``l2``, batch 128, optional warm-up at a tenth
of the rate (the paper's ResNet-110). With ``out_dir`` it appends a CSV log,
backs up every epoch (a run killed even with SIGKILL resumes from its last
finished epoch when started again), and writes the model, its spec and its
history. A loss that turns NaN stops the run with :class:`TrainingDiverged`
before anything is written over a good model.

Example:

```python
result = kr.train("cifar_resnet20", "digits", epochs=10, out_dir="runs/r20")
result.history["accuracy"][-1]
```
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from keras_resnet import _checks as C
from keras_resnet._io import atomic_path, atomic_write_text
from keras_resnet.builders import outputs_logits
from keras_resnet.data import Data, load_data

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("step", "cosine", "constant")
DISTRIBUTE = (None, "auto", "mirrored", "data_parallel")
PRECISIONS = (None, "mixed_float16", "mixed_bfloat16")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; nothing was saved over earlier results."""


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: The trained model.
        history: ``{metric: [value per epoch]}`` over the whole run, resumed
            epochs included.
        out_dir: Where the model, spec and logs were written (None if nowhere).
        spec: The ``ModelSpec`` of the model (None for foreign models).
    """

    model: Any
    history: dict
    out_dir: str | None
    spec: Any = None


def make_optimizer(name: str = "sgd", learning_rate: float = 0.1,
                   momentum: float = 0.9) -> keras.optimizers.Optimizer:
    """An optimizer by name (weight decay comes from the model's L2 terms).

    Args:
        name: ``"sgd"`` (with momentum, the paper's), ``"adam"``, ``"adamw"`` or
            ``"rmsprop"``.
        learning_rate: Initial learning rate (a schedule may change it).
        momentum: Momentum of SGD and RMSprop.

    Returns:
        A Keras optimizer.
    """
    C.check_choice("optimizer", name, OPTIMIZERS)
    learning_rate = C.check_float("learning_rate", learning_rate, minimum=0.0)
    momentum = C.check_float("momentum", momentum, minimum=0.0, maximum=1.0,
                             exclusive_maximum=True)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate)
    return keras.optimizers.RMSprop(learning_rate, momentum=momentum)


def compile_model(model: keras.Model, optimizer: str = "sgd", learning_rate: float = 0.1,
                  momentum: float = 0.9, label_smoothing: float = 0.0) -> keras.Model:
    """Compiles a classifier the way :func:`train` does.

    Integer labels, cross-entropy on the model's softmax (or logits when its
    classifier has no activation), and accuracy.

    Args:
        model: A classifier.
        optimizer: See :func:`make_optimizer`.
        learning_rate: Initial learning rate.
        momentum: Momentum of SGD and RMSprop.
        label_smoothing: Label smoothing (0 disables it).

    Returns:
        The same model, compiled.
    """
    logits = outputs_logits(model)
    label_smoothing = C.check_float("label_smoothing", label_smoothing, minimum=0.0,
                                    maximum=1.0, exclusive_maximum=True)
    if label_smoothing > 0:
        loss = _SmoothedSparseCE(label_smoothing, from_logits=logits)
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=logits)
    model.compile(optimizer=make_optimizer(optimizer, learning_rate, momentum), loss=loss,
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


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


class _StopOnNaN(keras.callbacks.Callback):
    """Stops at the first NaN/inf loss and remembers it (TerminateOnNaN + a flag)."""

    def __init__(self) -> None:
        super().__init__()
        self.bad = None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad = (batch, float(loss))
            self.model.stop_training = True


BACKUP_DIR = "backup"  # in out_dir while a run is unfinished; removed when it ends
BACKUP_STATE = "state.json"


class _Backup(keras.callbacks.Callback):
    """Backs up weights and optimizer state after every epoch, crash-safely.

    ``keras.callbacks.BackupAndRestore`` writes its HDF5 file in place, so a
    SIGKILL during the write leaves a file that cannot be opened and the run
    cannot resume. Here each epoch's weights go to their own file (written to
    a temporary name and renamed), then ``state.json`` is replaced atomically
    to name it, then older files are removed: whenever the process dies,
    ``state.json`` names a complete file.
    """

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if _has_nan(logs or {}):
            return  # a diverged epoch is no state to resume from
        name = f"epoch-{epoch + 1:05d}.weights.h5"
        with atomic_path(os.path.join(self.folder, name), overwrite=True) as tmp:
            self.model.save_weights(tmp)
        atomic_write_text(os.path.join(self.folder, BACKUP_STATE),
                          json.dumps({"epoch": epoch + 1, "weights": name}) + "\n",
                          overwrite=True)
        for old in os.listdir(self.folder):
            if old.endswith(".weights.h5") and old != name:
                os.remove(os.path.join(self.folder, old))


def _restore(model: keras.Model, folder: str) -> int:
    """Loads the last backup in ``folder`` into ``model``; returns its epoch (0: none)."""
    state_path = os.path.join(folder, BACKUP_STATE)
    if not os.path.exists(state_path):
        return 0
    with open(state_path, encoding="utf-8") as fh:
        state = json.load(fh)
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)  # its slots are in the file
    model.load_weights(os.path.join(folder, state["weights"]))
    return int(state["epoch"])


def _read_csv_history(path: str) -> dict:
    """History from the CSV log; a re-run epoch (after a kill) keeps its last row."""
    if not os.path.exists(path):
        return {}
    rows: dict = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                rows[int(row["epoch"])] = row
            except (KeyError, ValueError):
                continue
    history: dict = {}
    for epoch in sorted(rows):
        for key, value in rows[epoch].items():
            if key == "epoch" or value in (None, ""):
                continue
            history.setdefault(key, []).append(float(value))
    return history


def _prepare(model_or_spec: Any, data: Data, residual: bool | None,
             rebuild: bool) -> tuple:
    """A model for ``data``: specs get the data's input shape and classes.

    With ``rebuild`` (a distribution strategy or a precision policy must be in
    force while the layers are created) a model built by this package is built
    again from its spec and given its weights.
    """
    from keras_resnet.builders import ResNetModel, as_spec, build, residual_of

    if isinstance(model_or_spec, keras.Model):
        if not rebuild:
            spec = model_or_spec.spec if isinstance(model_or_spec, ResNetModel) else None
            return model_or_spec, spec
        if not isinstance(model_or_spec, ResNetModel):
            raise ValueError("distribute= and mixed_precision= need a spec or a model built "
                             "by keras_resnet (it is rebuilt under them); pass the spec")
        weights = model_or_spec.get_weights()
        model = build(model_or_spec.spec, model_or_spec.residual)
        model.set_weights(weights)
        return model, model.spec
    spec = as_spec(model_or_spec)
    spec = spec.replace(input_shape=tuple(data.input_shape), classes=data.num_classes)
    if residual is None:
        residual = residual_of(model_or_spec)  # before as_spec drops the preset name
    model = build(spec, residual)
    return model, model.spec


@dataclass
class Distribution:
    """What :func:`distribution` put in force: a description and the replicas."""

    name: str
    replicas: int
    divisible_batches: bool = False  # JAX shards each batch evenly over the devices


@contextlib.contextmanager
def distribution(distribute: Any) -> Iterator[Distribution | None]:
    """Builds and trains under a data-parallel distribution, if one applies.

    Args:
        distribute: None (none), ``"auto"`` (every GPU, or every logical CPU
            device that was configured, when there are two or more),
            ``"mirrored"`` (TensorFlow ``MirroredStrategy`` over those devices),
            ``"data_parallel"`` (Keras' JAX ``DataParallel`` over all devices),
            or a ``tf.distribute.Strategy``.

    Yields:
        A :class:`Distribution` (None when nothing is used).
    """
    if distribute is None:
        yield None
        return
    backend = keras.backend.backend()
    if not isinstance(distribute, str):  # a tf.distribute.Strategy
        with distribute.scope():
            yield Distribution(type(distribute).__name__, distribute.num_replicas_in_sync)
        return
    C.check_choice("distribute", distribute, DISTRIBUTE)
    if backend == "jax" and distribute in ("auto", "data_parallel"):
        import jax

        devices = jax.devices()
        if len(devices) < 2 and distribute == "auto":
            yield None
            return
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield Distribution(f"DataParallel over {len(devices)} {devices[0].platform} "
                               "devices", len(devices), divisible_batches=True)
        finally:
            keras.distribution.set_distribution(previous)
        return
    if backend == "tensorflow" and distribute in ("auto", "mirrored"):
        import tensorflow as tf

        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        if len(devices) < 2 and distribute == "auto":
            yield None
            return
        strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
        with strategy.scope():
            yield Distribution(f"MirroredStrategy over {len(devices)} devices", len(devices))
        return
    raise ValueError(f"distribute={distribute!r} is not available on the {backend} backend "
                     "('mirrored' needs TensorFlow, 'data_parallel' JAX; 'auto' picks). "
                     f"Received: distribute={distribute!r}")


@contextlib.contextmanager
def precision(policy: str | None) -> Iterator[None]:
    """Sets the Keras dtype policy while a model is built, then restores it."""
    C.check_choice("mixed_precision", policy, PRECISIONS)
    if policy is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


class _AugmentedBatches(keras.utils.PyDataset):
    """Shuffled NumPy batches, augmented on the fly (any backend).

    ``multiple``: every batch is cut to a multiple of it (JAX data parallelism
    shards batches evenly), which skips at most ``multiple - 1`` examples of
    the last batch. The order of epoch ``e`` depends only on ``(seed, e)``, so
    a resumed run sees the batches an uninterrupted one would have.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, augment: Any,
                 seed: int, shuffle: bool = True, multiple: int = 1,
                 epoch: int = 0) -> None:
        super().__init__()
        self.x, self.y, self.batch_size, self.augment = x, y, batch_size, augment
        self.shuffle, self.multiple, self.seed, self.epoch = shuffle, multiple, seed, epoch
        self.order = self._order()

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.x))
        return np.random.RandomState([self.seed, self.epoch]).permutation(len(self.x))

    def __len__(self) -> int:
        full, rest = divmod(len(self.x), self.batch_size)
        return full + (rest >= self.multiple)

    def __getitem__(self, i: int) -> tuple:
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        idx = idx[: len(idx) - len(idx) % self.multiple]
        xb = self.x[idx]
        if self.augment is not None:
            xb = keras.ops.convert_to_numpy(self.augment(xb, training=True))
        return xb, self.y[idx]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()


def train(
    model_or_spec: Any,
    data: Any = "digits",
    *,
    epochs: int = 30,
    batch_size: int = 128,
    optimizer: str = "sgd",
    learning_rate: float = 0.1,
    momentum: float = 0.9,
    schedule: str = "step",
    warmup_epochs: int = 0,
    label_smoothing: float = 0.0,
    augment: bool = False,
    residual: bool | None = None,
    out_dir: str | None = None,
    overwrite: bool = False,
    tensorboard: bool = False,
    seed: int | None = 0,
    verbose: int | str = "auto",
    callbacks: list | None = None,
    distribute: Any = None,
    mixed_precision: str | None = None,
) -> TrainResult:
    """Trains a model with the paper's recipe (by default).

    Args:
        model_or_spec: A Keras model, or a spec / preset name / spec file (then
            the network is built for the data: its input shape and classes
            are taken from ``data``).
        data: A :class:`~keras_resnet.data.Data`, or a source for
            :func:`~keras_resnet.data.load_data` (``"digits"``, a folder...).
        epochs: Epochs in total (a resumed run counts the finished ones).
        batch_size: Batch size (NumPy data).
        optimizer: ``"sgd"``, ``"adam"``, ``"adamw"`` or ``"rmsprop"``.
        learning_rate: Initial learning rate.
        momentum: SGD/RMSprop momentum.
        schedule: ``"step"`` (/10 at 50% and 75%), ``"cosine"`` or ``"constant"``.
        warmup_epochs: Epochs at a tenth of the rate first (ResNet-110 recipe).
        label_smoothing: Label smoothing of the loss.
        augment: The paper's CIFAR augmentation (pad 4, random crop, flip) on
            training batches.
        residual: With a spec: build the residual net (True) or its plain twin
            (False); None builds what the spec names (``"cifar_plain20"`` is
            plain, other specs residual; see :func:`~keras_resnet.residual_of`).
        out_dir: Folder for ``model.keras``, ``spec.json``, ``history.json``,
            ``history.csv`` and the resume backup. None writes nothing.
        overwrite: Replace a finished run in ``out_dir`` (an unfinished one is
            resumed).
        tensorboard: Also log to ``out_dir/logs`` for TensorBoard.
        seed: Seed for ``keras.utils.set_random_seed`` (None leaves it).
        verbose: Keras ``fit`` verbosity (progress bars by default).
        callbacks: Extra Keras callbacks.
        distribute: Data-parallel training: ``"auto"`` uses every GPU (or
            every configured logical CPU device) when there are two or more,
            ``"mirrored"`` (TensorFlow) / ``"data_parallel"`` (JAX) ask for one,
            a ``tf.distribute.Strategy`` is used as given; None trains on one
            device. ``batch_size`` is the global batch.
        mixed_precision: ``"mixed_float16"`` or ``"mixed_bfloat16"``: layers
            compute in half precision, variables and the softmax stay float32
            (float16 gets loss scaling).

    Returns:
        A :class:`TrainResult`.

    Raises:
        TrainingDiverged: the loss became NaN/inf; the previous model in
            ``out_dir`` is left as it was.
    """
    epochs = C.check_int("epochs", epochs, minimum=1, maximum=100000)
    batch_size = C.check_int("batch_size", batch_size, minimum=1, maximum=1 << 20)
    C.check_choice("schedule", schedule, SCHEDULES)
    warmup_epochs = C.check_int("warmup_epochs", warmup_epochs, minimum=0, maximum=epochs)
    C.check_bool("augment", augment)
    if residual is not None:
        C.check_bool("residual", residual)
    make_optimizer(optimizer, learning_rate, momentum)  # validates before any work
    if out_dir is not None:
        out_dir = os.fspath(out_dir)
        _check_out_dir(out_dir, overwrite)
    if seed is not None:
        keras.utils.set_random_seed(C.check_int("seed", seed, minimum=0))

    C.check_choice("mixed_precision", mixed_precision, PRECISIONS)
    if not isinstance(data, Data):
        data = load_data(data, seed=seed or 0, flatten=_wants_vectors(model_or_spec))
    with distribution(distribute) as strategy, precision(mixed_precision):
        model, spec = _prepare(model_or_spec, data, residual,
                               rebuild=strategy is not None or mixed_precision is not None)
        compile_model(model, optimizer, learning_rate, momentum, label_smoothing)
        if strategy is not None and verbose:
            print(f"training with {strategy.name}", flush=True)
        multiple = strategy.replicas if strategy and strategy.divisible_batches else 1
        return _fit(model, spec, data, epochs=epochs, batch_size=batch_size,
                    learning_rate=learning_rate, schedule=schedule,
                    warmup_epochs=warmup_epochs, augment=augment, out_dir=out_dir,
                    tensorboard=tensorboard, seed=seed, verbose=verbose,
                    callbacks=callbacks, multiple=multiple)


def _fit(model: keras.Model, spec: Any, data: Data, *, epochs: int, batch_size: int,
         learning_rate: float, schedule: str, warmup_epochs: int, augment: bool,
         out_dir: str | None, tensorboard: bool, seed: int | None, verbose: Any,
         callbacks: list | None, multiple: int = 1) -> TrainResult:
    """Callbacks, batches, ``fit``, and the run's files (see :func:`train`)."""
    stop = _StopOnNaN()
    cbs = [stop, keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: learning_rate_at(epoch, epochs, learning_rate, schedule,
                                           warmup_epochs))]
    csv_path, initial_epoch = None, 0
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        csv_path = os.path.join(out_dir, "history.csv")
        cbs.append(keras.callbacks.CSVLogger(csv_path, append=True))
        # After the CSV row, so a kill between the two re-runs (never skips) an epoch.
        backup = os.path.join(out_dir, BACKUP_DIR)
        cbs.append(_Backup(backup))
        initial_epoch = _restore(model, backup)
        if tensorboard:
            cbs.append(keras.callbacks.TensorBoard(os.path.join(out_dir, "logs")))
    cbs += list(callbacks or [])

    validation = data.validation
    if data.is_numpy:
        x, y = data.train
        train_data = _AugmentedBatches(x, y, batch_size,
                                       _augmenter(data) if augment else None, seed or 0,
                                       multiple=multiple, epoch=initial_epoch)
        if validation is not None and multiple > 1:
            validation = _AugmentedBatches(*validation, batch_size, None, 0,
                                           shuffle=False, multiple=multiple)
    else:
        train_data = data.train
        if augment:
            # Layer by layer: each preprocessing layer runs on TensorFlow inside
            # tf.data whatever the Keras backend (a Sequential would not switch).
            layers = _augmenter(data).layers

            def augment_batch(xb: Any, yb: Any) -> tuple:
                for layer in layers:
                    xb = layer(xb, training=True)
                return xb, yb

            train_data = train_data.map(augment_batch)
    # Batches come shuffled: our NumPy batches reshuffle every epoch, folders are
    # shuffled by image_dataset_from_directory.
    if initial_epoch and verbose:
        print(f"resuming from the backup of epoch {initial_epoch} in {out_dir}", flush=True)
    fit_history = model.fit(train_data, validation_data=validation, epochs=epochs,
                            initial_epoch=min(initial_epoch, epochs), callbacks=cbs,
                            verbose=verbose, shuffle=False)
    if stop.bad is not None or _has_nan(fit_history.history):
        raise TrainingDiverged(
            f"training diverged: the loss became {stop.bad[1] if stop.bad else 'NaN'} "
            f"(learning rate {learning_rate}); lower learning_rate or add warmup_epochs. "
            "Nothing was saved" + (f" over {out_dir}" if out_dir else "")
        )
    history = _read_csv_history(csv_path) if csv_path else {
        k: [float(v) for v in vals] for k, vals in fit_history.history.items()}
    if out_dir is not None:
        _write_run(out_dir, model, spec, history, data.class_names)
    return TrainResult(model, history, out_dir, spec)


def _wants_vectors(model_or_spec: Any) -> bool:
    from keras_resnet.builders import as_spec

    if isinstance(model_or_spec, keras.Model):
        return len(model_or_spec.inputs[0].shape) == 2
    try:
        return as_spec(model_or_spec).is_mlp
    except (ValueError, TypeError, FileNotFoundError):
        return False


def _augmenter(data: Data) -> Any:
    from keras_resnet.data import cifar_augmentation

    if len(data.input_shape) != 3:
        raise ValueError("augment=True needs image data; these are vectors. "
                         f"Received: input_shape={data.input_shape}")
    pad = max(1, data.input_shape[0] // 8)  # 4 pixels at 32x32, as the paper
    return cifar_augmentation(data.input_shape, pad=pad)


def _has_nan(logs: dict) -> bool:
    """Whether the loss of a history (a list per key) or of epoch logs is NaN/inf."""
    loss = logs.get("loss", [])
    return any(not math.isfinite(float(v)) for v in np.atleast_1d(loss))


def _check_out_dir(out_dir: str, overwrite: bool) -> None:
    finished = os.path.exists(os.path.join(out_dir, "model.keras"))
    resumable = os.path.isdir(os.path.join(out_dir, BACKUP_DIR))
    if finished and not resumable and not overwrite:
        raise FileExistsError(
            f"{out_dir!r} already holds a finished run (model.keras); pass "
            "overwrite=True (--overwrite) to train again, or choose another folder"
        )
    if overwrite and finished and not resumable:
        for name in ("history.csv", "history.json"):
            path = os.path.join(out_dir, name)
            if os.path.exists(path):
                os.remove(path)


def _write_run(out_dir: str, model: keras.Model, spec: Any, history: dict,
               class_names: list) -> None:
    """model.keras, spec.json, history.json and labels.json, each written atomically."""
    with atomic_path(os.path.join(out_dir, "model.keras"), overwrite=True) as tmp:
        model.save(tmp)
    if spec is not None:
        spec.save(os.path.join(out_dir, "spec.json"), overwrite=True)
    atomic_write_text(os.path.join(out_dir, "history.json"),
                      json.dumps(history, indent=2) + "\n", overwrite=True)
    atomic_write_text(os.path.join(out_dir, "labels.json"),
                      json.dumps(list(class_names)) + "\n", overwrite=True)
    shutil.rmtree(os.path.join(out_dir, BACKUP_DIR), ignore_errors=True)
