"""The experiment: deeper plain nets train worse, residual nets do not.

He et al. 2015 (Fig. 1, 4, 6): as a plain network gets deeper its *training*
error goes up, while the residual network with the same layers keeps it low.
:func:`compare` trains the plain and residual twins of the paper's CIFAR nets
(depth 6n+2, option-A shortcuts, so the twins have exactly the same parameters)
at two or more depths, on the same data with the same recipe and seed, and
writes what the paper shows:

- ``results.json``: final training and validation error of every model, its
  parameters, time, and whether the effect showed;
- ``<model>/``: the run folder of each model (``history.csv``, ``model.keras``,
  ``spec.json``, ``history.json``; see :class:`~keras_resnet.RunFolder`);
- ``figure.png``: training error against epoch, plain dashed and residual
  solid, one colour per depth (the paper's Figure 6).

Every model is trained by ``kr.train`` with one :class:`~keras_resnet.Recipe`
(the tuner's too), in worker processes side by side
(:mod:`keras_resnet.parallel`), so a killed experiment started again with the
same ``out_dir`` skips the finished models and resumes the interrupted ones
from their last epoch.

Example:

```python
result = kr.compare(depths=(20, 56), data="digits", out_dir="runs/compare")
result.models["plain56"]["train_error"], result.models["resnet56"]["train_error"]
```
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras

from keras_resnet import _checks as C
from keras_resnet import parallel, presets
from keras_resnet._io import atomic_write_text
from keras_resnet._table import text_table
from keras_resnet.data import Data, as_data
from keras_resnet.flops import is_small_step
from keras_resnet.plots import plot_training_error
from keras_resnet.report import trainable_params
from keras_resnet.runfolder import RunFolder
from keras_resnet.training import Recipe, train

#: The recipe of the ``keras-resnet compare`` main job, chosen so the effect
#: shows on the built-in digits data in a few minutes on 2 CPU cores, for any
#: seed: 20 epochs, batch 32, SGD 0.05 with one warm-up epoch, /10 at 50% and 75%.
MAIN_RECIPE = Recipe(epochs=20, batch_size=32, learning_rate=0.05, warmup_epochs=1,
                     schedule="step")
#: The depths of the main job (the paper's Fig. 6 has 20, 32, 44 and 56).
DEPTHS = (20, 32, 44, 56)
RESULTS, FIGURE = "results.json", "figure.png"


@dataclass
class CompareResult:
    """What :func:`compare` returns.

    Attributes:
        models: ``{name: {"depth", "residual", "params", "train_error",
            "val_error", "train_error_curve", "val_error_curve", "seconds"}}``.
        out_dir: Where the results, run folders and figure are (None: nowhere).
        effect: ``{"plain_degrades": bool, "residual_at_or_below_plain": bool,
            "shallowest", "deepest"}`` for the deepest vs the shallowest depth.
        recipe: The recipe every model trained with.
        threads: Threads of each worker (it changes float results).
    """

    models: dict
    out_dir: str | None
    effect: dict
    recipe: Recipe | None = None
    threads: int = 1


def compare(
    depths: Sequence[int] = DEPTHS,
    data: Any = "digits",
    *,
    recipe: Recipe | dict | None = None,
    shortcut: str = "A",
    out_dir: str | os.PathLike | None = "runs/compare",
    overwrite: bool = False,
    verbose: int | str = "auto",
    jobs: int | str = "auto",
    threads: int | str = "auto",
    **recipe_fields: Any,
) -> CompareResult:
    """Trains plain and residual twins at several depths and compares them.

    The models are independent: they train side by side in ``jobs`` worker
    processes of ``threads`` threads each, the deepest first. Each model's
    numbers depend on its seed, recipe, data and thread count only, not on
    ``jobs`` or on which worker ran it: two runs with the same settings on the
    same machine give the same ``results.json`` numbers, whatever ``jobs``.

    Args:
        depths: Depths 6n+2 of the paper's CIFAR nets (at least two).
        data: A :class:`~keras_resnet.Data` (``kr.Data.from_arrays`` for arrays)
            or a source for :func:`~keras_resnet.load_data` (default: the
            built-in digits).
        recipe: The recipe of every model (default :data:`MAIN_RECIPE`).
        shortcut: Shortcut option of the residual nets (``"A"``: the twins have
            equal parameters).
        out_dir: Folder for ``results.json``, ``figure.png`` and one run folder
            per model; None keeps everything in memory.
        overwrite: Start again in an ``out_dir`` that holds a finished
            experiment (an unfinished one is resumed).
        verbose: Keras' meaning: 0 prints nothing; otherwise (``"auto"``, 1,
            2) one line per model start, epoch and end, then the table.
        jobs: Worker processes. ``"auto"``: one per usable core divided by
            ``threads`` (at most one per model).
        threads: Threads per worker. ``"auto"``: 1 when the deepest model's
            training step is small (``keras_resnet.flops.is_small_step``:
            per-step overhead dominates, and processes side by side use the
            cores better than threads), else every usable core. It changes
            float results (TensorFlow's CPU kernels), so it is recorded in
            ``results.json``.
        **recipe_fields: Recipe fields that change ``recipe`` (``epochs``,
            ``seed``, ...).

    Returns:
        A :class:`CompareResult`.
    """
    recipe = Recipe.of(MAIN_RECIPE if recipe is None else recipe, **recipe_fields)
    depths = _check_depths(depths)
    shortcut = C.check_choice("shortcut", shortcut, ("A", "B", "C", "D"))
    C.check_choice("verbose", verbose, ("auto", 0, 1, 2))
    folder = _check_out_dir(out_dir, overwrite)
    data = as_data(data, seed=recipe.seed or 0)
    names = {name: (depth, residual) for depth in sorted(depths, reverse=True)
             for residual, name in ((False, f"plain{depth}"), (True, f"resnet{depth}"))}
    small = is_small_step(presets.cifar(depths[-1], shortcut).replace(
        input_shape=tuple(data.input_shape), classes=data.classes), recipe.batch_size)
    jobs, threads = parallel.plan_jobs(len(names), jobs, threads, small_steps=small)
    progress = _Progress(verbose, len(names), recipe.epochs)
    progress.say(f"training {len(names)} models in {jobs} worker process"
                 f"{'es' if jobs > 1 else ''} of {threads} thread{'s' if threads > 1 else ''}")
    with folder.lock() if folder else contextlib.nullcontext(), \
            tempfile.TemporaryDirectory(prefix="kr-compare-") as scratch:
        ref = data.to_ref(scratch)
        tasks = {name: dict(depth=depth, spec=presets.cifar(depth, shortcut, residual).to_dict(),
                            data=ref, recipe=recipe.to_dict(), overwrite=overwrite,
                            out_dir=folder and os.path.join(folder.path, name))
                 for name, (depth, residual) in names.items()}
        done = parallel.run_all(run_model, tasks, jobs, threads, on_event=progress)
    models = {name: done[name] for name in sorted(names, key=lambda n: (names[n][0],
                                                                        names[n][1]))}
    effect = _effect(models, depths)
    if folder is not None:
        _write(folder, models, effect, recipe, data, shortcut, threads)
    progress.say(table(models))
    return CompareResult(models, None if folder is None else folder.path, effect, recipe,
                         threads)


def _check_depths(depths: Any) -> list:
    if not isinstance(depths, (list, tuple)) or len(depths) < 2:
        C.fail("depths", "must list at least two depths", depths)
    for d in depths:
        presets.cifar(d)  # 6n+2, checked
    return sorted(set(depths))


def _check_out_dir(out_dir: Any, overwrite: bool) -> RunFolder | None:
    """The experiment's folder; a finished one is refused unless ``overwrite``."""
    C.check_bool("overwrite", overwrite)
    if out_dir is None:
        return None
    folder = RunFolder(out_dir)
    if os.path.exists(folder.file(RESULTS)) and not overwrite:
        raise FileExistsError(
            f"{folder.path!r} already holds a finished comparison ({RESULTS}); pass "
            "overwrite=True (--overwrite) to run it again, or choose another folder")
    folder.check_writable()
    return folder


def _write(folder: RunFolder, models: dict, effect: dict, recipe: Recipe, data: Data,
           shortcut: str, threads: int) -> None:
    settings = dict(depths=sorted({m["depth"] for m in models.values()}), data=data.name,
                    shortcut=shortcut, recipe=recipe.to_dict(), threads=threads)
    plot_training_error(models, folder.file(FIGURE), overwrite=True,
                        title=f"{data.name}: plain (dashed) vs residual (solid)")
    atomic_write_text(folder.file(RESULTS), json.dumps(
        {"settings": settings, "effect": effect, "models": models}, indent=2) + "\n",
        overwrite=True)


class _Progress:
    """One line per model start, epoch and end, as the workers report them."""

    def __init__(self, verbose: Any, models: int, epochs: int) -> None:
        self.verbose, self.models, self.epochs, self.done = verbose, models, epochs, 0

    def say(self, line: str) -> None:
        if self.verbose:
            print(line, flush=True)

    def __call__(self, event: dict) -> None:
        kind, name = event.get("event"), event.get("id")
        if kind == "start":
            self.say(f"[{name}] started (worker {event['worker']})")
        elif kind == "loaded":
            self.say(f"[{name}] already finished: loaded from its folder")
        elif kind == "resumed":
            self.say(f"[{name}] resuming after epoch {event['epoch']}")
        elif kind == "epoch":
            val = event.get("val_error")
            self.say(f"[{name}] epoch {event['epoch']}/{self.epochs}: loss "
                     f"{event['loss']:.4f}, train err {100 * event['train_error']:.2f}%"
                     + ("" if val is None else f", val err {100 * val:.2f}%")
                     + f" ({event['seconds']:.1f}s)")
        elif kind == "done":
            self.done += 1
            val = event["val_error"]
            self.say(f"[{name}] done ({self.done}/{self.models}): train err "
                     f"{100 * event['train_error']:.2f}%"
                     + ("" if val is None else f", val err {100 * val:.2f}%")
                     + f", {event['seconds']:.0f}s")


def run_model(*, depth: int, spec: dict, data: dict, recipe: dict, out_dir: str | None,
              overwrite: bool) -> dict:
    """One model of :func:`compare`, in a worker: train (or load) and measure it.

    Returns:
        The model's entry of ``results.json``.
    """
    keras.backend.clear_session()
    data_, folder = Data.from_ref(data), out_dir and RunFolder(out_dir)
    start = time.perf_counter()
    if folder and folder.status() == folder.FINISHED and not overwrite:
        parallel.report({"event": "loaded"})
        model, history = keras.models.load_model(folder.file(folder.MODEL)), folder.history()
    else:
        result = train(spec, data_, recipe=recipe, out_dir=out_dir, overwrite=overwrite,
                       verbose=0, callbacks=[_Report()])
        model, history = result.model, result.history
    measured = _measure(model, data_, history or {}, time.perf_counter() - start)
    measured = {"depth": depth, "residual": bool(spec["residual"]), **measured}
    parallel.report({"event": "done", **measured})
    return measured


class _Report(keras.callbacks.Callback):
    """Sends one event per finished epoch to the parent."""

    async_safe = True

    def __init__(self) -> None:
        super().__init__()
        self._start, self._first = 0.0, True

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._first and epoch:
            parallel.report({"event": "resumed", "epoch": epoch})
        self._first = False
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        val = logs.get("val_accuracy")
        parallel.report({"event": "epoch", "epoch": epoch + 1,
                         "loss": float(logs.get("loss", float("nan"))),
                         "train_error": 1.0 - float(logs.get("accuracy", float("nan"))),
                         "val_error": None if val is None else 1.0 - float(val),
                         "seconds": time.perf_counter() - self._start})


def _measure(model: Any, data: Data, history: dict, seconds: float) -> dict:
    """Final errors evaluated in inference mode, plus the per-epoch curve."""
    def error(split: Any) -> float | None:
        if split is None:
            return None
        if isinstance(split, tuple):
            logs = model.evaluate(split[0], split[1], batch_size=256, verbose=0,
                                  return_dict=True)
        else:
            logs = model.evaluate(split, verbose=0, return_dict=True)
        return round(1.0 - float(logs["accuracy"]), 6)

    return {
        "params": trainable_params(model),
        "train_error": error(data.train),
        "val_error": error(data.validation),
        "train_error_curve": [round(1.0 - a, 6) for a in history.get("accuracy", [])],
        "val_error_curve": [round(1.0 - a, 6) for a in history.get("val_accuracy", [])],
        "seconds": round(seconds, 1),
    }


def _effect(models: dict, depths: list) -> dict:
    shallow, deep = depths[0], depths[-1]
    return {
        "shallowest": shallow,
        "deepest": deep,
        "plain_degrades": (models[f"plain{deep}"]["train_error"]
                           > models[f"plain{shallow}"]["train_error"]),
        "residual_at_or_below_plain": (models[f"resnet{deep}"]["train_error"]
                                       <= models[f"plain{deep}"]["train_error"]),
    }


def table(models: dict) -> str:
    """The results as a text table (one row per model)."""
    rows = [[name, f"{m['params']:,}", f"{100 * m['train_error']:.2f}%",
             "-" if m["val_error"] is None else f"{100 * m['val_error']:.2f}%",
             f"{m['seconds']:.0f}s"] for name, m in models.items()]
    return text_table(["model", "params", "train err", "val err", "time"], rows,
                      right=[1, 2, 3, 4])
