"""``kr.train``: a recipe, a run folder and the contexts, put together.

:func:`train` follows the sequence every user of the recipe follows (seed,
build, compile, fit; see :mod:`keras_resnet.training.recipe`), under a
distribution and precision when asked, and with ``out_dir`` keeps a run
folder (:mod:`keras_resnet.training.run`): settings in ``run.json``, a CSV
log, a per-epoch :class:`~keras_resnet.training.EpochBackup` (a run killed
even with SIGKILL resumes from its last finished epoch when started again
with the same settings), and at the end the model, its spec and its history.
A loss that turns NaN stops the run with :class:`TrainingDiverged` before
anything is written over a good model.

Example:

```python
result = kr.train("cifar_resnet20", "digits", epochs=10, out_dir="runs/r20")
result.history["accuracy"][-1]
```
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import keras

from keras_resnet import _checks as C
from keras_resnet import presets
from keras_resnet.builders import ResNetModel, as_spec, build
from keras_resnet.data import Data, load_data
from keras_resnet.training import run as run_folder
from keras_resnet.training.backup import EpochBackup
from keras_resnet.training.contexts import (
    PRECISIONS,
    MultiProcess,
    check_multi_process_backend,
    distribution,
    is_multi_process,
    precision,
    remove_scratch,
    same_on_every_process,
    scratch_dir,
)
from keras_resnet.training.pipeline import check_share
from keras_resnet.training.recipe import Recipe, TrainingDiverged, prepare

_UNSET: Any = object()


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: The trained model.
        history: ``{metric: [value per epoch]}`` over the whole run, resumed
            epochs included.
        out_dir: Where the model, spec and logs were written (None if nowhere).
        spec: The ``ModelSpec`` of the model (None for foreign models).
        recipe: The :class:`Recipe` it was trained with.
        process_index: This process of a multi-process job (0 otherwise; only
            process 0 writes ``out_dir``).
        process_count: Processes of the job (1 when there is one).
    """

    model: Any
    history: dict
    out_dir: str | None
    spec: Any = None
    recipe: Recipe | None = None
    process_index: int = 0
    process_count: int = 1


def train(
    model_or_spec: Any,
    data: Any = "digits",
    *,
    recipe: Recipe | None = None,
    epochs: int = _UNSET,
    batch_size: int = _UNSET,
    optimizer: str = _UNSET,
    learning_rate: float = _UNSET,
    momentum: float = _UNSET,
    schedule: str = _UNSET,
    warmup_epochs: int = _UNSET,
    label_smoothing: float = _UNSET,
    augment: bool = _UNSET,
    seed: int | None = _UNSET,
    residual: bool | None = None,
    out_dir: str | None = None,
    overwrite: bool = False,
    tensorboard: bool = False,
    verbose: int | str = "auto",
    callbacks: list | None = None,
    distribute: Any = None,
    mixed_precision: str | None = None,
    steps_per_execution: int | str = "auto",
) -> TrainResult:
    """Trains a model with a :class:`Recipe` (the paper's, by default).

    The recipe's fields are keyword arguments here too, so
    ``kr.train(spec, data, **recipe.to_dict())`` and
    ``kr.train(spec, data, recipe=recipe)`` train alike; keywords given with
    ``recipe=`` change those fields of it.

    Args:
        model_or_spec: A Keras model, or a spec / preset name / spec file (then
            the network is built for the data: its input shape and classes
            are taken from ``data``).
        data: A :class:`~keras_resnet.data.Data`, or a source for
            :func:`~keras_resnet.data.load_data` (``"digits"``, a folder...).
        recipe: The recipe (default ``Recipe()``: SGD, momentum 0.9, learning
            rate 0.1 divided by 10 at 50% and 75%, batch 128, 30 epochs).
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
        seed: Seed for ``keras.utils.set_random_seed`` before the model is
            built, and of the batch order (None leaves the random state).
        residual: Deprecated: plain or residual is the spec's ``residual``
            field. With a spec, True builds the residual net and False its
            plain twin.
        out_dir: Run folder: ``run.json`` (the settings, written first),
            ``history.csv`` and the resume backup while running, then
            ``model.keras``, ``spec.json``, ``history.json``, ``labels.json``.
            A folder with an unfinished run is resumed if its settings are the
            same (else ``ValueError`` naming each difference). None writes
            nothing.
        overwrite: Start over in ``out_dir`` whatever it holds (a finished
            run is replaced at the end, an unfinished one is not resumed).
        tensorboard: Also log to ``out_dir/logs`` for TensorBoard.
        verbose: Keras ``fit`` verbosity (progress bars by default).
        callbacks: Extra Keras callbacks.
        distribute: Data-parallel training: ``"auto"`` uses every GPU (or
            every configured logical CPU device) when there are two or more,
            ``"mirrored"`` (TensorFlow) / ``"data_parallel"`` (JAX) ask for one,
            a ``tf.distribute.Strategy`` is used as given; None trains on one
            device. ``"multi_process"`` or a
            :class:`~keras_resnet.training.MultiProcess` (JAX backend): one job
            over several processes, each started with the same arguments and
            its own ``KERAS_DISTRIBUTION_PROCESS_ID``; each trains on its share
            of every batch, only process 0 writes ``out_dir`` (which the others
            read to resume: it must be on a filesystem they share), and a
            process that meets an error ends at once with one line (so its
            peers do too); ``"auto"`` picks it when the
            ``KERAS_DISTRIBUTION_*`` variables are set. ``batch_size`` is the
            global batch.
        mixed_precision: ``"mixed_float16"`` or ``"mixed_bfloat16"``: layers
            compute in half precision, variables and the softmax stay float32
            (float16 gets loss scaling).
        steps_per_execution: Training steps per call into the backend: speed
            only, the weights come out the same. ``"auto"``: 16 when a step
            is small (forward multiply-adds per batch at most
            ``training.recipe.SMALL_STEP_MACS``), else 1. Per-batch callbacks
            see every k-th batch.

    Returns:
        A :class:`TrainResult`.

    Raises:
        TrainingDiverged: the loss became NaN/inf; the previous model in
            ``out_dir`` is left as it was.
        ValueError: bad arguments, or ``out_dir`` holds an unfinished run with
            other settings.
    """
    given: dict[str, Any] = dict(epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                 learning_rate=learning_rate, momentum=momentum, schedule=schedule,
                 warmup_epochs=warmup_epochs, label_smoothing=label_smoothing,
                 augment=augment, seed=seed)
    given = {k: v for k, v in given.items() if v is not _UNSET}
    if recipe is None:
        recipe = Recipe(**given)
    elif not isinstance(recipe, Recipe):
        C.fail("recipe", f"must be a keras_resnet Recipe (got {C.type_name(recipe)})",
               recipe, TypeError)
    elif given:
        recipe = recipe.replace(**given)
    if residual is not None:
        C.check_bool("residual", residual)
        warnings.warn("train(residual=...) is deprecated: plain or residual is the "
                      "spec's `residual` field (spec.replace(residual=False))",
                      DeprecationWarning, stacklevel=2)
        if not isinstance(model_or_spec, keras.Model):
            model_or_spec = presets.with_residual(as_spec(model_or_spec), residual)
    C.check_choice("mixed_precision", mixed_precision, PRECISIONS)
    if steps_per_execution != "auto":
        C.check_int("steps_per_execution", steps_per_execution, minimum=1, maximum=100000)
    if out_dir is not None:
        out_dir = os.fspath(out_dir)
        run_folder.check_finished(out_dir, overwrite)  # before any work
    if is_multi_process(distribute):
        _check_multi_process(distribute, recipe)
    if not isinstance(data, Data):
        data = load_data(data, seed=recipe.seed or 0,
                         flatten=_wants_vectors(model_or_spec))

    with distribution(distribute) as strategy, precision(mixed_precision):
        index, count = (strategy.process_index, strategy.process_count) if strategy \
            else (0, 1)
        # Only process 0 of a multi-process job writes out_dir. The others write the
        # same files, at the same moments, to a private scratch folder: Keras' saving
        # and loading assign variables, and under DataParallel each assignment is a
        # collective every process must join.
        run_dir = out_dir if index == 0 or out_dir is None else scratch_dir(index)
        model = _model(model_or_spec, data, recipe,
                       rebuild=strategy is not None or mixed_precision is not None)
        spec = _spec_of(model)
        initial_epoch, cbs, previous = 0, [], None
        if out_dir is not None and run_dir is not None:
            previous = run_folder.read_finished(run_dir)  # kept if this run diverges
            initial_epoch = run_folder.start(run_dir, run_folder.describe(spec, recipe, data),
                                             overwrite=overwrite)
            if run_dir != out_dir:  # the others resume from process 0's backup
                initial_epoch = run_folder.resume_epoch(out_dir, overwrite)
            csv_path = os.path.join(run_dir, run_folder.HISTORY_CSV)
            cbs.append(keras.callbacks.CSVLogger(csv_path, append=True))
            # After the CSV row, so a kill between the two re-runs (never skips) an epoch.
            cbs.append(EpochBackup(os.path.join(out_dir, run_folder.BACKUP_DIR),
                                   save_to=os.path.join(run_dir, run_folder.BACKUP_DIR)))
            if tensorboard:
                cbs.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "logs")))
        if count > 1:
            same_on_every_process(initial_epoch, "the epoch to resume from (the run folder "
                                  "must be on a filesystem every process shares)")
        cbs += list(callbacks or [])
        recipe.compile(model, steps_per_execution=steps_per_execution)
        if strategy is not None and verbose:
            print(f"training with {strategy.name}", flush=True)
        if initial_epoch and verbose:
            print(f"resuming from the backup of epoch {initial_epoch} in {out_dir}",
                  flush=True)
        multiple = strategy.replicas if strategy and strategy.divisible_batches else 1
        try:
            fit = recipe.fit(model, data, callbacks=cbs, initial_epoch=initial_epoch,
                             verbose=verbose, multiple=multiple, shard=(index, count))
        except TrainingDiverged as e:
            if run_dir is not None and previous is not None:
                run_folder.put_back(run_dir, previous)
            raise TrainingDiverged(f"{e}. Nothing was saved"
                                   + (f" over {out_dir}" if out_dir else "")) from None
    if run_dir is None:
        history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    else:
        history = run_folder.read_csv_history(csv_path)
        run_folder.finish(run_dir, model, spec, history, data.class_names)
        if run_dir != out_dir:
            remove_scratch(run_dir)
    return TrainResult(model, history, out_dir, spec, recipe, index, count)


def _check_multi_process(distribute: Any, recipe: Recipe) -> None:
    """What a multi-process job needs, checked before any work: the processes
    and a seed (every process must build the same weights), and a batch each
    process gets an equal share of."""
    check_multi_process_backend()
    config = (distribute if isinstance(distribute, MultiProcess) else MultiProcess()).resolved()
    if recipe.seed is None:
        raise ValueError("seed must be set in a multi-process run: every process builds "
                         "the same weights from it. Received: seed=None")
    check_share(recipe.batch_size, config.num_processes or 1)


def _model(model_or_spec: Any, data: Data, recipe: Recipe, rebuild: bool) -> keras.Model:
    """:func:`prepare`, plus: a model built by this package is built again from
    its spec under ``rebuild`` (a distribution strategy or a precision policy
    must be in force while the layers are created) and given its weights."""
    if isinstance(model_or_spec, keras.Model) and rebuild:
        if not isinstance(model_or_spec, ResNetModel):
            raise ValueError("distribute= and mixed_precision= need a spec or a model built "
                             "by keras_resnet (it is rebuilt under them); pass the spec")
        if recipe.seed is not None:
            keras.utils.set_random_seed(recipe.seed)
        weights = model_or_spec.get_weights()
        model = build(model_or_spec.spec)
        model.set_weights(weights)
        return model
    return prepare(model_or_spec, data, recipe)


def _spec_of(model: keras.Model) -> Any:
    return model.spec if isinstance(model, ResNetModel) else None


def _wants_vectors(model_or_spec: Any) -> bool:
    if isinstance(model_or_spec, keras.Model):
        return len(model_or_spec.inputs[0].shape) == 2
    try:
        return as_spec(model_or_spec).is_mlp
    except (ValueError, TypeError, FileNotFoundError):
        return False

