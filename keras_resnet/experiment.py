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
:class:`~keras_resnet.Recipe` (the tuner's too), so a killed experiment started
again with the same ``out_dir`` skips the finished models and resumes the
interrupted one from its last epoch.

Example:

```python
result = kr.compare(depths=(20, 56), data="digits", out_dir="runs/compare")
result.models["plain56"]["train_error"], result.models["resnet56"]["train_error"]
```
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any

from keras_resnet import _checks as C
from keras_resnet._io import atomic_write_text
from keras_resnet._table import text_table
from keras_resnet.data import Data, load_data
from keras_resnet.training import Recipe, train
from keras_resnet.training.run import is_finished

#: The defaults of the ``keras-resnet compare`` main job, chosen so the effect
#: shows on the built-in digits data in a few minutes on 2 CPU cores, for any
#: seed (see the README for the measured numbers of 3 seeds).
DEFAULTS = dict(depths=(20, 32, 44, 56), epochs=20, batch_size=32, learning_rate=0.05,
                warmup_epochs=1, schedule="step")


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
    from keras_resnet import presets

    if (depth - 2) % 6 != 0 or depth < 8:
        raise ValueError(f"depths must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110...). "
                         f"Received: depth={depth}")
    n = (depth - 2) // 6
    spec = presets.get("cifar_resnet20")  # the paper's layout; only the depth changes
    blocks = [dataclasses.replace(b, repeat=n) for b in spec.blocks]
    return spec.replace(blocks=blocks, shortcut=shortcut, name=f"cifar{depth}")


def compare(
    depths: tuple = DEFAULTS["depths"],
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
) -> CompareResult:
    """Trains plain and residual twins at several depths and compares them.

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
        verbose: Keras progress output per model.

    Returns:
        A :class:`CompareResult`.
    """
    recipe = Recipe(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                    warmup_epochs=warmup_epochs, schedule=schedule, augment=augment,
                    seed=seed)  # checks them before any work
    if not isinstance(depths, (list, tuple)) or len(depths) < 2:
        C.fail("depths", "must list at least two depths", depths)
    depths = sorted({C.check_int("depths[]", d, minimum=8, maximum=2000) for d in depths})
    specs = {d: _cifar_spec(d, C.check_choice("shortcut", shortcut, ("A", "B", "C", "D")))
             for d in depths}
    if out_dir is not None:
        out_dir = os.fspath(out_dir)
        if os.path.exists(os.path.join(out_dir, "results.json")) and not overwrite:
            raise FileExistsError(
                f"{out_dir!r} already holds a finished comparison (results.json); pass "
                "overwrite=True (--overwrite) to run it again, or choose another folder")
        os.makedirs(out_dir, exist_ok=True)
    if not isinstance(data, Data):
        data = load_data(data, seed=seed)

    import keras

    from keras_resnet.plots import plot_training_error

    models: dict = {}
    for depth in depths:
        for residual, name in zip((False, True), _names(depth)):
            keras.backend.clear_session()
            run_dir = None if out_dir is None else os.path.join(out_dir, name)
            start = time.perf_counter()
            if run_dir is not None and is_finished(run_dir) and not overwrite:
                model, history = _load_finished(run_dir)
            else:
                if verbose:
                    print(f"--- {name}: {'residual' if residual else 'plain'}, depth {depth}",
                          flush=True)
                result = _train_twin(specs[depth], residual, data, recipe, out_dir=run_dir,
                                     overwrite=overwrite, verbose=verbose)
                model, history = result.model, result.history
            models[name] = _measure(model, data, history, depth, residual,
                                    time.perf_counter() - start)
    effect = _effect(models, depths)
    if out_dir is not None:
        settings = dict(depths=depths, data=data.name, epochs=epochs, batch_size=batch_size,
                        learning_rate=learning_rate, warmup_epochs=warmup_epochs,
                        schedule=schedule, shortcut=shortcut, seed=seed, augment=augment,
                        recipe=recipe.to_dict())
        plot_training_error(models, os.path.join(out_dir, "figure.png"), overwrite=True,
                            title=f"{data.name}: plain (dashed) vs residual (solid)")
        atomic_write_text(os.path.join(out_dir, "results.json"),
                          json.dumps({"settings": settings, "effect": effect,
                                      "models": models}, indent=2) + "\n",
                          overwrite=True)
    if verbose:
        print(table(models))
    return CompareResult(models, out_dir, effect)


def _train_twin(spec: Any, residual: bool, data: Data, recipe: Recipe, **kwargs: Any) -> Any:
    """:func:`train` on the plain or residual twin of ``spec``."""
    if isinstance(getattr(spec, "residual", None), bool):  # plain or residual is spec data
        return train(spec.replace(residual=residual), data, recipe=recipe, **kwargs)
    with warnings.catch_warnings():  # specs without the field: the builder's argument
        warnings.simplefilter("ignore", DeprecationWarning)
        return train(spec, data, recipe=recipe, residual=residual, **kwargs)


def _load_finished(run_dir: str) -> tuple:
    import keras

    with open(os.path.join(run_dir, "history.json")) as fh:
        history = json.load(fh)
    # keras_resnet is imported, so its layers are registered for loading
    return keras.models.load_model(os.path.join(run_dir, "model.keras")), history


def _measure(model: Any, data: Any, history: dict, depth: int, residual: bool,
             seconds: float) -> dict:
    """Final errors evaluated in inference mode, plus the per-epoch curve."""
    from keras_resnet.report import trainable_params

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
