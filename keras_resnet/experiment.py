"""The experiment: deeper plain nets train worse, residual nets do not.

He et al. 2015 (Fig. 1, 4, 6): as a plain network gets deeper its *training*
error goes up, while the residual network with the same layers keeps it low.
:func:`compare` trains the plain and residual twins of the paper's CIFAR nets
(depth 6n+2, option-A shortcuts, so the twins have exactly the same parameters)
at two or more depths, on the same data with the same recipe and seed, and
writes what the paper shows:

- ``results.json``: final training and validation error of every model, its
  parameters, time, and whether the effect showed;
- ``<model>/history.csv``: the per-epoch log of each model (and its
  ``model.keras``, ``spec.json``, ``history.json``);
- ``figure.png``: training error against epoch, plain dashed and residual
  solid, one colour per depth (the paper's Figure 6).

Every model is trained by :func:`keras_resnet.train` with one
:class:`~keras_resnet.Recipe` (the tuner's too), in worker processes side by
side (:mod:`keras_resnet.workers`), so a killed experiment started again with
the same ``out_dir`` skips the finished models and resumes the interrupted
ones from their last epoch.

Example:

```python
result = kr.compare(depths=(20, 56), data="digits", out_dir="runs/compare")
result.models["plain56"]["train_error"], result.models["resnet56"]["train_error"]
```
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import keras

from keras_resnet import _checks as C
from keras_resnet import presets
from keras_resnet._io import atomic_write_text
from keras_resnet._table import text_table
from keras_resnet.data import Data, load_data
from keras_resnet.flops import flops
from keras_resnet.plots import plot_training_error
from keras_resnet.report import trainable_params
from keras_resnet.training import Recipe, TrainingDiverged, train
from keras_resnet.training.recipe import SMALL_STEP_MACS
from keras_resnet.training.run import is_finished
from keras_resnet.workers import TaskFailed, run_tasks, usable_cores

#: The defaults of the ``keras-resnet compare`` main job, chosen so the effect
#: shows on the built-in digits data in a few minutes on 2 CPU cores, for any
#: seed (see the README for the measured numbers of 3 seeds).
DEFAULTS: dict[str, Any] = dict(depths=(20, 32, 44, 56), epochs=20, batch_size=32,
                                learning_rate=0.05, warmup_epochs=1, schedule="step")


@dataclass
class CompareResult:
    """What :func:`compare` returns.

    Attributes:
        models: ``{name: {"depth", "residual", "params", "train_error",
            "val_error", "train_error_curve", "seconds"}}``.
        out_dir: Where the results, logs and figure are.
        effect: ``{"plain_degrades": bool, "residual_at_or_below_plain": bool}``
            for the deepest vs the shallowest depth.
    """

    models: dict
    out_dir: str | None
    effect: dict


def _names(depth: int) -> tuple:
    return f"plain{depth}", f"resnet{depth}"


def _cifar_spec(depth: int, shortcut: str) -> Any:
    if (depth - 2) % 6 != 0 or depth < 8:
        raise ValueError(f"depths must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110...). "
                         f"Received: depth={depth}")
    n = (depth - 2) // 6
    spec = presets.get("cifar_resnet20")  # the paper's layout; only the depth changes
    blocks = [dataclasses.replace(b, repeat=n) for b in spec.blocks]
    return spec.replace(blocks=blocks, shortcut=shortcut, name=f"cifar{depth}")


def compare(
    depths: Sequence[int] = DEFAULTS["depths"],
    data: Any = "digits",
    *,
    epochs: int = DEFAULTS["epochs"],
    batch_size: int = DEFAULTS["batch_size"],
    learning_rate: float = DEFAULTS["learning_rate"],
    warmup_epochs: int = DEFAULTS["warmup_epochs"],
    schedule: str = DEFAULTS["schedule"],
    shortcut: str = "A",
    seed: int = 0,
    augment: bool = False,
    out_dir: str | None = "runs/compare",
    overwrite: bool = False,
    verbose: int | str = 2,
    jobs: int | str = "auto",
    threads: int | str = "auto",
) -> CompareResult:
    """Trains plain and residual twins at several depths and compares them.

    The models are independent: they train side by side in ``jobs`` worker
    processes (:mod:`keras_resnet.workers`) of ``threads`` threads each, the
    deepest first. Each model's numbers depend on its seed, recipe, data and
    thread count only, not on ``jobs`` or on which worker ran it: two runs with
    the same settings on the same machine give the same ``results.json``
    numbers, whatever ``jobs``.

    Args:
        depths: Depths 6n+2 of the paper's CIFAR nets (at least two).
        data: A :class:`~keras_resnet.data.Data` or a source for
            :func:`~keras_resnet.data.load_data` (default: the built-in digits).
        epochs: Epochs per model.
        batch_size: Batch size.
        learning_rate: Initial SGD learning rate (momentum 0.9).
        warmup_epochs: Epochs at a tenth of the rate first.
        schedule: ``"step"``, ``"cosine"`` or ``"constant"``.
        shortcut: Shortcut option of the residual nets (``"A"``: the twins have
            equal parameters).
        seed: One seed for every model (same initial draws, same batches).
        augment: The paper's CIFAR augmentation.
        out_dir: Folder for ``results.json``, ``figure.png`` and one folder per
            model; None keeps everything in memory.
        overwrite: Start again in an ``out_dir`` that holds a finished
            experiment (an unfinished one is resumed).
        verbose: 0 prints nothing; otherwise one line per model start, epoch
            and end, then the table.
        jobs: Worker processes. ``"auto"``: one per usable core divided by
            ``threads`` (at most one per model); see :func:`plan_jobs`.
        threads: Threads per worker. ``"auto"``: 1 when the deepest model's
            training step is small (forward multiply-adds per batch at most
            ``keras_resnet.training.recipe.SMALL_STEP_MACS``: per-step
            overhead dominates, and processes side by side use the cores
            better than threads), else every usable core. It changes float
            results (TensorFlow's CPU kernels), so it is recorded in
            ``results.json``.

    Returns:
        A :class:`CompareResult`.
    """
    recipe = Recipe(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                    warmup_epochs=warmup_epochs, schedule=schedule, augment=augment,
                    seed=seed)  # checks them before any work
    if not isinstance(depths, (list, tuple)) or len(depths) < 2:
        C.fail("depths", "must list at least two depths", depths)
    depths = sorted({C.check_int("depths[]", d, minimum=8, maximum=2000) for d in depths})
    shortcut = C.check_choice("shortcut", shortcut, ("A", "B", "C", "D"))
    specs = {d: _cifar_spec(d, shortcut) for d in depths}
    if jobs != "auto":
        jobs = C.check_int("jobs", jobs, minimum=1, maximum=4096)
    if threads != "auto":
        threads = C.check_int("threads", threads, minimum=1, maximum=4096)
    if out_dir is not None:
        out_dir = os.fspath(out_dir)
        if os.path.exists(os.path.join(out_dir, "results.json")) and not overwrite:
            raise FileExistsError(
                f"{out_dir!r} already holds a finished comparison (results.json); pass "
                "overwrite=True (--overwrite) to run it again, or choose another folder")
        os.makedirs(out_dir, exist_ok=True)
    if not isinstance(data, Data):
        data = load_data(data, seed=seed)

    names = [(depth, residual, name) for depth in depths
             for residual, name in zip((False, True), _names(depth))]
    n_jobs, n_threads = plan_jobs(specs[depths[-1]], data, batch_size, len(names), jobs,
                                  threads)
    progress = _Progress(verbose, len(names), epochs)
    if verbose:
        print(f"training {len(names)} models in {n_jobs} worker process"
              f"{'es' if n_jobs > 1 else ''} of {n_threads} thread"
              f"{'s' if n_threads > 1 else ''}",
              flush=True)
    with _data_ref(data) as ref:
        tasks = [{"id": name, "fn": "keras_resnet.experiment:run_model",
                  "kwargs": dict(name=name, depth=depth, residual=residual, shortcut=shortcut,
                                 data=ref, recipe=recipe.to_dict(),
                                 run_dir=None if out_dir is None else
                                 os.path.join(out_dir, name), overwrite=overwrite)}
                 for depth, residual, name in sorted(names, key=lambda t: -t[0])]
        try:
            done = run_tasks(tasks, n_jobs, threads=n_threads, on_event=progress)
        except TaskFailed as e:
            if e.error_type == "TrainingDiverged":
                raise TrainingDiverged(str(e)) from None
            raise
    models = {name: done[name] for _, _, name in names}
    effect = _effect(models, depths)
    if out_dir is not None:
        settings = dict(depths=depths, data=data.name, epochs=epochs, batch_size=batch_size,
                        learning_rate=learning_rate, warmup_epochs=warmup_epochs,
                        schedule=schedule, shortcut=shortcut, seed=seed, augment=augment,
                        recipe=recipe.to_dict(), threads=n_threads)
        plot_training_error(models, os.path.join(out_dir, "figure.png"), overwrite=True,
                            title=f"{data.name}: plain (dashed) vs residual (solid)")
        atomic_write_text(os.path.join(out_dir, "results.json"),
                          json.dumps({"settings": settings, "effect": effect,
                                      "models": models}, indent=2) + "\n",
                          overwrite=True)
    if verbose:
        print(table(models))
    return CompareResult(models, out_dir, effect)


def plan_jobs(spec: Any, data: Data, batch_size: int, models: int, jobs: int | str = "auto",
              threads: int | str = "auto") -> tuple[int, int]:
    """``(jobs, threads)`` for training ``models`` independent models like ``spec``.

    The rule (a property of the work and the cores, never of one host's
    timing): a training step whose forward pass costs at most
    ``SMALL_STEP_MACS`` multiply-adds per batch is bound by per-step overhead,
    so each worker gets one thread and there is one worker per usable core
    (``os.sched_getaffinity``); a bigger step gets every core in one worker.
    ``jobs`` never exceeds ``models``.

    Args:
        spec: The biggest model's spec (built for the data to count its cost).
        data: The data (its input shape and classes).
        batch_size: The batch size.
        models: How many models there are.
        jobs: ``"auto"`` or a number of workers.
        threads: ``"auto"`` or a number of threads per worker.

    Returns:
        ``(jobs, threads)``.
    """
    cores = usable_cores()
    if threads == "auto":
        shape = tuple(data.input_shape)
        macs = flops(spec.replace(input_shape=shape, classes=data.classes)) * batch_size
        n_threads = 1 if macs <= SMALL_STEP_MACS else cores
    else:
        n_threads = int(threads)
    n_jobs = max(1, cores // n_threads) if jobs == "auto" else int(jobs)
    return max(1, min(n_jobs, models)), n_threads


class _Progress:
    """One line per model start, epoch and end, as the workers report them."""

    def __init__(self, verbose: Any, models: int, epochs: int) -> None:
        self.verbose, self.models, self.epochs, self.done = verbose, models, epochs, 0

    def __call__(self, event: dict) -> None:
        kind, name = event.get("event"), event.get("id")
        if kind == "result":
            self.done += 1
        if not self.verbose:
            return
        if kind == "start":
            print(f"[{name}] started (worker {event['worker']})", flush=True)
        elif kind == "loaded":
            print(f"[{name}] already finished: loaded from its folder", flush=True)
        elif kind == "resumed":
            print(f"[{name}] resuming after epoch {event['epoch']}", flush=True)
        elif kind == "epoch":
            val = event.get("val_error")
            print(f"[{name}] epoch {event['epoch']}/{self.epochs}: loss {event['loss']:.4f}, "
                  f"train err {100 * event['train_error']:.2f}%"
                  + ("" if val is None else f", val err {100 * val:.2f}%")
                  + f" ({event['seconds']:.1f}s)", flush=True)
        elif kind == "result":
            m = event["value"]
            val = m["val_error"]
            print(f"[{name}] done ({self.done}/{self.models}): train err "
                  f"{100 * m['train_error']:.2f}%"
                  + ("" if val is None else f", val err {100 * val:.2f}%")
                  + f", {m['seconds']:.0f}s", flush=True)


@contextlib.contextmanager
def _data_ref(data: Data) -> Iterator[dict]:
    """How a worker gets the data: its load arguments, or a pickle of the arrays."""
    if data.load_args is not None:
        yield {"load_args": data.load_args}
        return
    if not data.is_numpy:
        raise ValueError("compare() trains in worker processes, which load the data "
                         "again: pass a source (e.g. a folder) or NumPy data, not a "
                         "tf.data Data made by hand. Received: data=" + repr(data))
    folder = tempfile.mkdtemp(prefix="kr-data-")
    path = os.path.join(folder, "data.pkl")
    with open(path, "wb") as fh:
        pickle.dump(data, fh)
    try:
        yield {"pickle": path}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_DATA: dict = {}


def _resolve_data(ref: dict) -> Data:
    key = json.dumps(ref, sort_keys=True)
    if key not in _DATA:  # once per worker
        if "load_args" in ref:
            _DATA[key] = load_data(**ref["load_args"])
        else:
            with open(ref["pickle"], "rb") as fh:
                _DATA[key] = pickle.load(fh)
    return _DATA[key]


def run_model(*, name: str, depth: int, residual: bool, shortcut: str, data: dict,
              recipe: dict, run_dir: str | None, overwrite: bool,
              report: Callable[[dict], None]) -> dict:
    """One model of :func:`compare`, in a worker: train (or load) and measure it.

    Returns:
        The model's entry of ``results.json``.
    """
    keras.backend.clear_session()
    data_ = _resolve_data(data)
    recipe_ = Recipe.from_dict(recipe)
    start = time.perf_counter()
    if run_dir is not None and is_finished(run_dir) and not overwrite:
        report({"event": "loaded"})
        model, history = _load_finished(run_dir)
    else:
        result = _train_twin(_cifar_spec(depth, shortcut), residual, data_, recipe_,
                             out_dir=run_dir, overwrite=overwrite, verbose=0,
                             callbacks=[_Report(report)])
        model, history = result.model, result.history
    return _measure(model, data_, history, depth, residual, time.perf_counter() - start)


class _Report(keras.callbacks.Callback):
    """Sends one event per finished epoch to the parent."""

    async_safe = True

    def __init__(self, report: Callable[[dict], None]) -> None:
        super().__init__()
        self.report, self._start, self._first = report, 0.0, True

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._first and epoch:
            self.report({"event": "resumed", "epoch": epoch})
        self._first = False
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        val = logs.get("val_accuracy")
        self.report({"event": "epoch", "epoch": epoch + 1,
                     "loss": float(logs.get("loss", float("nan"))),
                     "train_error": 1.0 - float(logs.get("accuracy", float("nan"))),
                     "val_error": None if val is None else 1.0 - float(val),
                     "seconds": time.perf_counter() - self._start})


def _train_twin(spec: Any, residual: bool, data: Data, recipe: Recipe, **kwargs: Any) -> Any:
    """:func:`train` on the plain or residual twin of ``spec``."""
    return train(presets.with_residual(spec, residual), data, recipe=recipe, **kwargs)


def _load_finished(run_dir: str) -> tuple:
    with open(os.path.join(run_dir, "history.json")) as fh:
        history = json.load(fh)
    # keras_resnet is imported, so its layers are registered for loading
    return keras.models.load_model(os.path.join(run_dir, "model.keras")), history


def _measure(model: Any, data: Any, history: dict, depth: int, residual: bool,
             seconds: float) -> dict:
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
        "depth": depth,
        "residual": residual,
        "params": trainable_params(model),
        "train_error": error(data.train),
        "val_error": error(data.validation),
        "train_error_curve": [round(1.0 - a, 6) for a in history.get("accuracy", [])],
        "val_error_curve": [round(1.0 - a, 6) for a in history.get("val_accuracy", [])],
        "seconds": round(seconds, 1),
    }


def _effect(models: dict, depths: list) -> dict:
    shallow, deep = depths[0], depths[-1]
    plain_s, _ = _names(shallow)
    plain_d, res_d = _names(deep)
    return {
        "shallowest": shallow,
        "deepest": deep,
        "plain_degrades": models[plain_d]["train_error"] > models[plain_s]["train_error"],
        "residual_at_or_below_plain": (models[res_d]["train_error"]
                                       <= models[plain_d]["train_error"]),
    }


def table(models: dict) -> str:
    """The results as a text table (one row per model)."""
    rows = [[name, f"{m['params']:,}", f"{100 * m['train_error']:.2f}%",
             "-" if m["val_error"] is None else f"{100 * m['val_error']:.2f}%",
             f"{m['seconds']:.0f}s"] for name, m in models.items()]
    return text_table(["model", "params", "train err", "val err", "time"], rows,
                      right=[1, 2, 3, 4])
