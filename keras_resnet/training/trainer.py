"""``kr.train``: a recipe, a run folder and a placement, put together.

:func:`train` is the keyword layer users call; :func:`run` is the sequence
every training run follows (seed, build, compile, fit; see
:mod:`keras_resnet.training.recipe`), under a distribution and precision when
asked, and with a run folder (:class:`~keras_resnet.RunFolder`): settings in
``run.json``, a CSV log, a per-epoch :class:`~keras_resnet.training.EpochBackup`
(a run killed even with SIGKILL resumes from its last finished epoch when
started again with the same settings), and at the end the model, its spec and
its history. A loss that turns NaN stops the run with
:class:`TrainingDiverged` before anything is written over a good model.

Example:

```python
result = kr.train("cifar_resnet20", "digits", epochs=10, out_dir="runs/r20")
result.history["accuracy"][-1]
```
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from keras_resnet import _checks as C
from keras_resnet._io import raise_disk_full
from keras_resnet.builders import ResNetModel, as_spec, build, spec_of
from keras_resnet.data import Data, as_data
from keras_resnet.imagecheck import write_bad_files
from keras_resnet.runfolder import RunFolder, describe
from keras_resnet.training.backup import EpochBackup
from keras_resnet.training.contexts import (
    MultiProcess,
    Placement,
    check_multi_process_backend,
    remove_scratch,
    same_on_every_process,
    scratch_dir,
)
from keras_resnet.training.pipeline import check_share
from keras_resnet.training.recipe import Recipe, TrainingDiverged


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
    model: Any,
    data: Any = "digits",
    y: Any = None,
    *,
    validation_data: Any = None,
    recipe: Recipe | dict | None = None,
    out_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    tensorboard: bool = False,
    verbose: int | str = "auto",
    callbacks: Sequence | None = None,
    distribute: Any = None,
    mixed_precision: str | None = None,
    steps_per_execution: int | str = "auto",
    **recipe_fields: Any,
) -> TrainResult:
    """Trains a model with a :class:`Recipe` (the paper's, by default).

    The recipe's fields are keyword arguments here too, so
    ``kr.train(spec, data, **recipe.to_dict())`` and
    ``kr.train(spec, data, recipe=recipe)`` train alike; fields given with
    ``recipe=`` change those of it.

    Args:
        model: A Keras model, or a spec / preset name / spec file (then the
            network is built for the data: its input shape and classes come
            from ``data``).
        data: A :class:`~keras_resnet.Data`, a source for
            :func:`~keras_resnet.load_data` (``"digits"``, a folder...), or
            training inputs as ``model.fit`` takes them (NumPy arrays, with ``y``).
        y: Integer labels, with array ``data``.
        validation_data: ``(x_val, y_val)``, with array ``data``.
        recipe: The recipe (a ``Recipe`` or its dict; default ``Recipe()``:
            SGD, momentum 0.9, learning rate 0.1 divided by 10 at 50% and 75%,
            batch 128, 30 epochs).
        out_dir: Run folder (see :class:`~keras_resnet.RunFolder`):
            ``run.json`` first, ``history.csv`` and the resume backup while
            running, then ``model.keras``, ``spec.json``, ``history.json``,
            ``labels.json``. A folder with an unfinished run is resumed if its
            settings are the same (else ``ValueError`` naming each difference);
            a folder another process is training in is refused. None writes
            nothing.
        overwrite: Start over in ``out_dir`` whatever it holds (a finished run
            is replaced at the end, an unfinished one is not resumed).
        tensorboard: Also log to ``out_dir/logs`` for TensorBoard.
        verbose: Keras' ``fit`` verbosity: ``"auto"``, 0 (silent), 1 (progress
            bars), 2 (one line per epoch).
        callbacks: More Keras callbacks.
        distribute: Data-parallel training: ``"auto"`` uses every GPU (or
            every configured logical CPU device) when there are two or more,
            ``"mirrored"`` (TensorFlow) / ``"data_parallel"`` (JAX) ask for one,
            a ``tf.distribute.Strategy`` is used as given; None trains on one
            device. ``"multi_process"`` or a
            :class:`~keras_resnet.training.MultiProcess` (JAX backend): one job
            over several processes, each started with the same arguments and
            its own ``KERAS_DISTRIBUTION_PROCESS_ID``; each trains on its share
            of every batch, only process 0 writes ``out_dir`` (which the others
            read to resume: it must be on a filesystem they share), and an error
            in a process is a :class:`~keras_resnet.training.ProcessGroupError`
            (see :func:`~keras_resnet.training.exit_on_error`). ``batch_size``
            is the global batch.
        mixed_precision: ``"mixed_float16"`` or ``"mixed_bfloat16"``: layers
            compute in half precision, variables and the softmax stay float32
            (float16 gets loss scaling). Measured on a CPU with bfloat16
            arithmetic (AVX-512 BF16, 2 cores): ``"mixed_bfloat16"`` trains
            ResNet-50 at 64x64 to 224x224 1.3x to 1.45x faster on TensorFlow,
            gives no gain for the CIFAR nets on small images nor on JAX's CPU
            backend, and changes the numbers a run computes (see the docs'
            "Export and quantization" page, bfloat16). Never on by default.
        steps_per_execution: Training steps per call into the backend: speed
            only, the weights come out the same. ``"auto"``: 16 when a step is
            small (see ``keras_resnet.flops.SMALL_STEP_MACS``), else 1.
        **recipe_fields: Any :class:`Recipe` field (``epochs``, ``batch_size``,
            ``optimizer``, ``learning_rate``, ``momentum``, ``schedule``,
            ``warmup_epochs``, ``label_smoothing``, ``augment``, ``metrics``,
            ``seed``).

    Returns:
        A :class:`TrainResult`.

    Raises:
        TrainingDiverged: the loss became NaN/inf; the previous model in
            ``out_dir`` is left as it was.
        ValueError: bad arguments, or ``out_dir`` holds an unfinished run with
            other settings.

    Example:

    ```python
    result = kr.train("cifar_resnet20", "digits", epochs=10, out_dir="runs/r20")
    kr.train(model, x_train, y_train, validation_data=(x_val, y_val), epochs=5)
    ```
    """
    if "residual" in recipe_fields:
        raise C.InvalidInputType("train() got residual=, removed in 0.3: plain or residual "
                                 "is the spec's field (kr.build_plain(spec) or "
                                 "spec.replace(residual=False))")
    recipe = Recipe.of(recipe, **recipe_fields)
    placement = Placement(distribute, mixed_precision)
    folder = None if out_dir is None else RunFolder(out_dir)
    _check(recipe, placement, folder, overwrite, tensorboard, steps_per_execution)
    held = folder.lock() if folder is not None and not placement.multi_process \
        else contextlib.nullcontext()
    with held:
        cache = {} if folder is None else {"check_cache": folder.file(folder.IMAGE_CHECK)}
        data = as_data(data, y, validation_data, seed=recipe.seed or 0,
                       flatten=_wants_vectors(model), batch_size=recipe.batch_size, **cache)
        return run(model, data, recipe, folder, placement, overwrite=overwrite,
                   callbacks=list(callbacks or ()), verbose=verbose,
                   steps_per_execution=steps_per_execution, tensorboard=tensorboard)


def run(model: Any, data: Data, recipe: Recipe, folder: RunFolder | None = None,
        placement: Placement | None = None, *, overwrite: bool = False,
        callbacks: Sequence = (), verbose: int | str = "auto",
        steps_per_execution: int | str = "auto", tensorboard: bool = False) -> TrainResult:
    """One training run, as the objects say: the sequence :func:`train` follows.

    Seed and build (:meth:`Recipe.build`), start or resume the run folder,
    compile (:meth:`Recipe.compile`), fit (:meth:`Recipe.fit`), finish the
    folder. The caller holds the folder's lock (:func:`train` does).

    Args:
        model: A Keras model or anything :func:`~keras_resnet.as_spec` accepts.
        data: The data.
        recipe: The recipe.
        folder: The run folder, or None to write nothing.
        placement: Distribution and precision (default: one device, float32).
        overwrite: Start over whatever the folder holds.
        callbacks: More Keras callbacks.
        verbose: Keras' ``fit`` verbosity.
        steps_per_execution: See :func:`train`.
        tensorboard: Also log to the folder's ``logs``.

    Returns:
        A :class:`TrainResult`.
    """
    placement = placement or Placement()
    with placement.scope() as strategy:
        job = _Job.of(folder, strategy)
        with folder.lock() if job.index == 0 and job.count > 1 and folder \
                else contextlib.nullcontext():
            model = _build(model, data, recipe, placement)
            spec = model.spec if isinstance(model, ResNetModel) else None
            inner = _spec_of(model)  # also of a model that holds one (a new head, a wrapper)
            data = data.as_input_of(inner and inner.preprocessing)  # what its weights expect
            epoch, previous = job.start(spec, recipe, data, overwrite)
            if steps_per_execution == "auto" and strategy is not None and \
                    keras.backend.backend() == "tensorflow":
                steps_per_execution = 1  # k steps per call fail under a tf.distribute strategy
            recipe.compile(model, steps_per_execution=steps_per_execution)
            if verbose and strategy is not None:
                print(f"training with {strategy.name}", flush=True)
            if verbose and epoch and folder is not None:
                print(f"resuming from the backup of epoch {epoch} in {folder.path}",
                      flush=True)
            try:
                fit = recipe.fit(model, data, callbacks=job.callbacks(tensorboard) + list(
                    callbacks), initial_epoch=epoch, verbose=verbose,
                    multiple=job.multiple, shard=(job.index, job.count))
            except TrainingDiverged as e:
                job.put_back(previous)
                raise TrainingDiverged(f"{e}. Nothing was saved" + (
                    f" over {folder.path}" if folder else "")) from None
            except OSError as e:  # the CSV log: the backup and finished files are intact
                raise_disk_full(e, folder.path if folder else "?")
                raise
            history = job.finish(model, spec, fit, data.class_names)
    return TrainResult(model, history, None if folder is None else folder.path, spec, recipe,
                       job.index, job.count)


@dataclass
class _Job:
    """Who writes what in a run: process 0 writes the run folder; the other
    processes of a multi-process job write the same files, at the same moments,
    to a private scratch folder (Keras' saving and loading assign variables, and
    under ``DataParallel`` each assignment is a step every process must take),
    and all resume from process 0's backup."""

    folder: RunFolder | None
    own: RunFolder | None
    index: int = 0
    count: int = 1
    multiple: int = 1

    @classmethod
    def of(cls, folder: RunFolder | None, strategy: Any) -> _Job:
        index, count = (strategy.process_index, strategy.process_count) if strategy \
            else (0, 1)
        own = folder if index == 0 or folder is None else RunFolder(scratch_dir(index))
        multiple = strategy.replicas if strategy and strategy.divisible_batches else 1
        return cls(folder, own, index, count, multiple)

    def start(self, spec: Any, recipe: Recipe, data: Data, overwrite: bool) -> tuple:
        """``(epoch to start at, the finished run being replaced or None)``."""
        if self.own is None or self.folder is None:
            return 0, None
        previous = self.own.snapshot()
        run = describe(None if spec is None else spec.to_dict(), recipe.to_dict(),
                       data.identity())
        epoch = self.own.start(run, overwrite=overwrite)
        if data.bad_files:  # image files the check left out (skip_bad_files=True)
            write_bad_files(self.own.path, data.bad_files, overwrite=True)
        if self.own is not self.folder:  # the others resume from process 0's backup
            epoch = 0 if overwrite else self.folder.backup_epoch()
        if self.count > 1:
            same_on_every_process(epoch, "the epoch to resume from (the run folder must "
                                  "be on a filesystem every process shares)")
        return epoch, previous

    def callbacks(self, tensorboard: bool) -> list:
        if self.own is None or self.folder is None:
            return []
        own = self.own
        return [keras.callbacks.CSVLogger(own.file(own.HISTORY_CSV), append=True),
                # After the CSV row, so a kill between the two re-runs (never skips) an
                # epoch.
                EpochBackup(self.folder.file(own.BACKUP), save_to=own.file(own.BACKUP)),
                *([keras.callbacks.TensorBoard(own.file(own.LOGS))] if tensorboard else [])]

    def put_back(self, previous: dict | None) -> None:
        if self.own is not None and previous is not None:
            self.own.restore(previous)

    def finish(self, model: keras.Model, spec: Any, fit: Any, labels: list) -> dict:
        if self.own is None:
            return {k: [float(v) for v in vals] for k, vals in fit.history.items()}
        history = self.own.csv_history()
        self.own.finish(model.save, None if spec is None else spec.to_json() + "\n",
                        history, labels)
        if self.own is not self.folder:
            remove_scratch(self.own.path)
        return history


def _check(recipe: Recipe, placement: Placement, folder: RunFolder | None,
           overwrite: bool, tensorboard: bool, steps_per_execution: int | str) -> None:
    """What can be checked before any work."""
    C.check_bool("overwrite", overwrite)
    C.check_bool("tensorboard", tensorboard)
    if steps_per_execution != "auto":
        C.check_int("steps_per_execution", steps_per_execution, minimum=1, maximum=100000)
    if tensorboard and folder is None:
        C.fail("tensorboard", "needs out_dir (the logs go to out_dir/logs)", tensorboard)
    if folder is not None:
        folder.check_not_finished(overwrite)
        folder.check_writable()
    if placement.multi_process:
        check_multi_process_backend()
        d = placement.distribute
        config = (d if isinstance(d, MultiProcess) else MultiProcess()).resolved()
        if recipe.seed is None:
            C.fail("seed", "must be set in a multi-process run: every process builds the "
                   "same weights from it", None)
        check_share(recipe.batch_size, config.num_processes or 1)


def _build(model: Any, data: Data, recipe: Recipe, placement: Placement) -> keras.Model:
    """:meth:`Recipe.build`, plus: a model built by this package is built again from
    its spec when the placement needs it (a strategy or a dtype policy must be
    in force while the layers are created), with its weights."""
    if not (isinstance(model, keras.Model) and placement.rebuilds):
        return recipe.build(model, data)
    if not isinstance(model, ResNetModel):
        C.fail("model", "must be a spec or a model built by keras_resnet with distribute= "
               "or mixed_precision= (it is rebuilt under them)", type(model).__name__,
               TypeError)
    weights = model.get_weights()
    if recipe.seed is not None:
        keras.utils.set_random_seed(recipe.seed)
    rebuilt = build(model.spec)
    rebuilt.set_weights(weights)
    return rebuilt


def _spec_of(model: keras.Model) -> Any:
    """The spec of a model built by this package (also one given a new head, or
    wrapped), else None."""
    try:
        return spec_of(model)
    except TypeError:
        return None


def _wants_vectors(model: Any) -> bool:
    if isinstance(model, keras.Model):
        return len(model.inputs[0].shape) == 2
    try:
        return as_spec(model).is_mlp
    except (ValueError, TypeError, FileNotFoundError):
        return False


def weights_digest(model: keras.Model) -> str:
    """SHA-256 of a model's weights: equal on every process of a multi-process
    job, and equal to that of the saved model."""
    sha = hashlib.sha256()
    for array in model.get_weights():
        array = np.ascontiguousarray(array)
        sha.update(f"{array.dtype.str}{array.shape}".encode())
        sha.update(array.tobytes())
    return sha.hexdigest()

