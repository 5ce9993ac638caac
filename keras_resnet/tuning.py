"""KerasTuner integration: search depth and L2 strength (and more), resumable, distributed.

:class:`ResNetHyperModel` is a ``keras_tuner.HyperModel`` whose ``build(hp)``
returns a compiled network built from a base spec (or preset);
:func:`spec_for` is the one function that turns hyperparameter values into a
:class:`~keras_resnet.spec.ModelSpec`; :func:`tune` runs a search and writes
the best spec as JSON next to the tuner state, so ``kr.build_resnet(path)``
rebuilds the winner exactly.

Hyperparameters (names as KerasTuner records them):

| name | meaning | searched by default |
|---|---|---|
| ``depth`` | blocks in the deepest stage; the others scale along | yes: ~1/3x to ~7/3x the base |
| ``l2`` | L2 weight decay on every kernel (``ModelSpec.l2``) | yes: log-uniform 1e-6 to 1e-2 |
| ``use_l2`` | only with ``allow_zero_l2=True``: False means ``l2 = 0`` | with the flag |
| ``width`` | multiplier on every block's and the stem's filters | no (True: 0.5, 1, 2) |
| ``shortcut`` | the model-wide shortcut option ``"A"``-``"D"`` | no (True: every valid one) |
| ``block_type`` | swaps conv blocks, e.g. basic <-> preact_basic | no (True: the base's twin) |
| ``learning_rate`` | initial learning rate | no (True: log-uniform 1e-4 to 0.1) |
| ``optimizer`` | ``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"`` | no (True: sgd, adam) |
| ``batch_size``, ``epochs`` | passed to ``fit`` (``HyperModel.fit`` is overridden) | no |

Each argument of the same name takes: None (the default above), True (search
the default range), False (not searched: the base's value), a single value
(fixed: recorded as a ``Fixed`` hyperparameter), a list or tuple (a ``Choice``)
or a dict ``{"min": ..., "max": ..., "step": ..., "sampling": "linear"|"log"}``
(an ``Int`` or ``Float`` range; not for the string-valued ones).

**Zero L2.** A log-uniform range cannot reach 0, and a ``Choice`` holding 0
would lose the continuous range, so "no weight decay" is a separate Boolean
``use_l2`` with ``l2`` in its conditional scope: the range stays log-uniform,
"no decay" gets a fair share of the trials, and Bayesian optimisation sees no
dead dimension (an inactive ``l2`` is not recorded). It exists only with
``allow_zero_l2=True``; a fixed ``l2=0`` or a list holding 0 needs the flag
too, so nobody switches weight decay off by accident.

**Resume.** A search started again with the same ``directory`` and
``project_name`` (and ``overwrite=False``) resumes, also after SIGKILL at any
point: every state file KerasTuner writes (``oracle.json``, each
``trial.json``, the tuner's and the build config) is written atomically
(temporary file + rename), and on reload the oracle finishes what a kill
interrupted (a trial whose result was recorded is ended, never re-run; a trial
killed while training is run again; a trial file written just before the
kill but unknown to the oracle is dropped).

**Distributed.** Set ``KERASTUNER_TUNER_ID`` (``chief``, ``tuner0``,
``tuner1``...), ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` and run
the same :func:`tune` call in every process, all on the same ``directory``: the
chief serves the oracle and returns the best spec once every worker has
finished; workers run trials and return ``(None, tuner)``.

Example:

```python
import keras_resnet as kr

data = kr.load_data("digits")
best, tuner = kr.tune("cifar_resnet20", data, algorithm="random", max_trials=12,
                      epochs=8, directory="tuner")
model = kr.build_resnet("tuner/cifar_resnet20_random/best_spec.json")
print(kr.tuning.results_table(tuner))
```
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import numbers
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace as _dc_replace
from typing import Any

import keras
import keras_tuner as kt
import numpy as np
from keras_tuner.src import utils as _kt_utils
from keras_tuner.src.engine.objective import MultiObjective as _MultiObjective

from keras_resnet import _checks as C
from keras_resnet._io import atomic_write_text
from keras_resnet.builders import as_spec, build, residual_of
from keras_resnet.spec import MAX_FILTERS, MAX_REPEAT, SHORTCUTS, BlockSpec, ModelSpec
from keras_resnet.train import OPTIMIZERS, compile_model

__all__ = [
    "HP_NAMES",
    "ResNetHyperModel",
    "add_tune_parser",
    "base_depth",
    "default_depths",
    "results_table",
    "spec_for",
    "tune",
]

#: Hyperparameter names, in the order ``build`` declares them.
HP_NAMES = ("depth", "use_l2", "l2", "width", "shortcut", "block_type",
            "learning_rate", "optimizer", "batch_size", "epochs")
#: Block types ``block_type`` may swap between (same input rank, same options
#: but the bottleneck ones); the pre/post-activation twins.
CONV_BLOCKS = ("basic", "preact_basic", "bottleneck", "preact_bottleneck")
_TWIN = {"basic": "preact_basic", "preact_basic": "basic",
         "bottleneck": "preact_bottleneck", "preact_bottleneck": "bottleneck"}
#: Learning rate per optimizer when it is neither fixed nor searched.
DEFAULT_LEARNING_RATES = {"sgd": 0.1, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3}
ALGORITHMS = ("hyperband", "random", "bayesian")
DEFAULT_L2_RANGE = (1e-6, 1e-2)


# --------------------------------------------------------------- spec_for
def _half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def _block_entries(spec: ModelSpec) -> list:
    return [b for b in spec.blocks if isinstance(b, BlockSpec)]


def base_depth(spec: Any) -> int:
    """The ``depth`` of a spec: the number of blocks in its deepest stage.

    A stage is one ``BlockSpec`` entry of ``spec.blocks`` (as in the summary
    table); ``PoolSpec`` entries do not count.

    Args:
        spec: Anything :func:`~keras_resnet.as_spec` accepts.

    Returns:
        The largest ``repeat`` of the spec's block entries (3 for
        ``cifar_resnet20``, 6 for ``resnet50``).
    """
    return max(b.repeat for b in _block_entries(as_spec(spec)))


def default_depths(depth: int) -> list:
    """The default ``depth`` choices around a base depth.

    About 1/3, 2/3, 1, 5/3 and 7/3 times the base (rounded half up, at least
    1): ``[1, 2, 3, 5, 7]`` for the CIFAR ResNet-20 (n=3, i.e. ResNet-8 to
    ResNet-44), ``[2, 4, 6, 10, 14]`` for a base whose deepest stage has 6.

    Args:
        depth: The base's depth (see :func:`base_depth`).

    Returns:
        Sorted distinct choices that include ``depth``.
    """
    depth = C.check_int("depth", depth, minimum=1, maximum=MAX_REPEAT)
    out = {max(1, min(MAX_REPEAT, (depth * k + 1) // 3)) for k in (1, 2, 3, 5, 7)}
    return sorted(out | {depth})


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return C.check_int(name, value, minimum=1, maximum=MAX_REPEAT)


def _swap_block(b: BlockSpec, target: str) -> BlockSpec:
    if b.type not in CONV_BLOCKS or b.type == target:
        return b
    changes: dict = {"type": target}
    if "bottleneck" not in target:  # options only bottleneck blocks take
        changes.update(bottleneck_ratio=None, stride_1x1=False)
    return _dc_replace(b, **changes)


def spec_for(base_spec: Any, values: Mapping) -> ModelSpec:
    """Applies hyperparameter values to a base spec.

    The one place that decides what each hyperparameter means; the
    HyperModel builds from it and :func:`tune` exports the best spec with it.
    Keys that are absent keep the base's value, so ``spec_for(base, {})`` is
    the base. Training settings (``learning_rate``, ``optimizer``,
    ``batch_size``, ``epochs``) and KerasTuner's own ``tuner/...`` entries are
    ignored; unknown keys are an error.

    * ``depth``: blocks in the deepest stage (largest ``repeat`` of the
      ``BlockSpec`` entries); every entry becomes
      ``max(1, round(repeat * depth / deepest))``, rounded half up. For
      equal-stage nets such as the CIFAR ResNets it is the paper's n (6n+2
      layers).
    * ``l2``: the spec's L2 strength; ``use_l2=False`` sets it to 0.
    * ``width``: multiplies every block's ``filters`` and the stem's (rounded
      half up, at least 1).
    * ``shortcut``: the model-wide option; block-level overrides stay.
    * ``block_type``: every basic/bottleneck (pre-activation or not) block
      becomes this type; bottleneck-only options are dropped when going to a
      basic type. The stem is left as it is.

    Args:
        base_spec: Anything :func:`~keras_resnet.as_spec` accepts.
        values: ``{hyperparameter name: value}``, e.g.
            ``trial.hyperparameters.values``.

    Returns:
        The validated ``ModelSpec`` (its ``name`` is the base's).

    Example:

    ```python
    base = kr.presets.get("cifar_resnet20")
    spec = kr.tuning.spec_for(base, {"depth": 5, "l2": 1e-4})  # ResNet-32, L2 1e-4
    ```
    """
    base = as_spec(base_spec)
    if not isinstance(values, Mapping):
        C.fail("values", "must be a dict of hyperparameter values", values, TypeError)
    for key in values:
        if not isinstance(key, str):
            C.fail("values", "keys must be hyperparameter names (strings)", key, TypeError)
        if key not in HP_NAMES and not key.startswith("tuner/"):
            raise ValueError(
                f"values has an unknown hyperparameter {key!r}"
                f"{C.close_matches(key, HP_NAMES)}. Known: {', '.join(HP_NAMES)}. "
                f"Received: {key}={values[key]!r}")
    blocks = list(base.blocks)
    stem = base.stem
    changes: dict = {}
    if values.get("depth") is not None:
        depth = _as_int("depth", values["depth"])
        deepest = base_depth(base)
        blocks = [_dc_replace(b, repeat=max(1, (2 * b.repeat * depth + deepest)
                                            // (2 * deepest)))
                  if isinstance(b, BlockSpec) else b for b in blocks]
    if values.get("width") is not None:
        width = _check_value("width", values["width"], allow_zero_l2=False)

        def scale(f: int) -> int:
            return max(1, min(MAX_FILTERS, _half_up(f * width)))

        blocks = [_dc_replace(b, filters=scale(b.filters)) if isinstance(b, BlockSpec)
                  else b for b in blocks]
        if stem is not None:
            stem = _dc_replace(stem, filters=scale(stem.filters))
    if values.get("block_type") is not None:
        target = C.check_choice("block_type", values["block_type"], CONV_BLOCKS)
        if not any(b.type in CONV_BLOCKS for b in _block_entries(base)):
            C.fail("block_type", f"needs a base with {'/'.join(CONV_BLOCKS)} blocks; "
                   f"this one has {sorted({b.type for b in _block_entries(base)})}",
                   target)
        blocks = [_swap_block(b, target) if isinstance(b, BlockSpec) else b
                  for b in blocks]
    if values.get("shortcut") is not None:
        changes["shortcut"] = C.check_choice("shortcut", values["shortcut"], SHORTCUTS)
    if "use_l2" in values and not C.check_bool("use_l2", values["use_l2"]):
        changes["l2"] = 0.0
    elif values.get("l2") is not None:
        changes["l2"] = C.check_float("l2", values["l2"], minimum=0.0, maximum=1.0)
    if blocks != list(base.blocks):
        changes["blocks"] = tuple(blocks)
    if stem != base.stem:
        changes["stem"] = stem
    return base.replace(**changes) if changes else base


# ------------------------------------------------------- hyperparameter settings
def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _check_value(name: str, v: Any, allow_zero_l2: bool) -> Any:
    """Checks one value of a hyperparameter; returns it normalised."""
    if name == "depth":
        return _as_int(name, v)
    if name in ("batch_size", "epochs"):
        return C.check_int(name, v, minimum=1, maximum=1 << 20)
    if name == "l2":
        v = C.check_float(name, v, minimum=0.0, maximum=1.0)
        if v == 0 and not allow_zero_l2:
            C.fail(name, "is 0 (no weight decay), which is allowed only with "
                   "allow_zero_l2=True", v)
        return v
    if name == "width":
        v = C.check_float(name, v, minimum=0.0, maximum=64.0)
        if v <= 0:
            C.fail(name, "must be > 0", v)
        return v
    if name == "learning_rate":
        v = C.check_float(name, v, minimum=0.0, maximum=10.0)
        if v <= 0:
            C.fail(name, "must be > 0", v)
        return v
    if name == "shortcut":
        return C.check_choice(name, v, SHORTCUTS)
    if name == "block_type":
        return C.check_choice(name, v, CONV_BLOCKS)
    if name == "optimizer":
        return C.check_choice(name, v, OPTIMIZERS)
    raise AssertionError(name)  # pragma: no cover


_RANGE_KEYS = ("min", "max", "step", "sampling", "default")
_STRING_HPS = ("shortcut", "block_type", "optimizer")
_INT_HPS = ("depth", "batch_size", "epochs")


def _setting(name: str, value: Any, allow_zero_l2: bool) -> dict | None:
    """Normalises a user's hyperparameter argument to a setting dict (None: off)."""
    if value is False:
        return None
    if isinstance(value, Mapping):
        if name in _STRING_HPS:
            C.fail(name, "takes a value or a list of choices, not a range", value,
                   TypeError)
        C.check_keys(name, value, _RANGE_KEYS)
        for key in ("min", "max"):
            if key not in value:
                raise ValueError(f"{name} range needs 'min' and 'max'. Received: "
                                 f"{name}={dict(value)!r}")
        lo = _check_value(name, value["min"], allow_zero_l2)
        hi = _check_value(name, value["max"], allow_zero_l2)
        if lo >= hi:
            raise ValueError(f"{name} range needs min < max. Received: {name}="
                             f"{dict(value)!r}")
        sampling = C.check_choice(f"{name}.sampling", value.get("sampling", "linear"),
                                  ("linear", "log"))
        if sampling == "log" and lo <= 0:
            raise ValueError(f"{name} log-uniform range needs min > 0; to allow "
                             "l2=0 pass allow_zero_l2=True (a use_l2 switch). "
                             f"Received: {name}={dict(value)!r}")
        step = value.get("step")
        if step is not None:
            step = C.check_float(f"{name}.step", step, minimum=0.0)
            if name in _INT_HPS:
                step = C.check_int(f"{name}.step", int(step) if float(step).is_integer()
                                   else step, minimum=1)
        out = {"kind": "range", "min": lo, "max": hi, "step": step, "sampling": sampling}
        if value.get("default") is not None:
            d = _check_value(name, value["default"], allow_zero_l2)
            if not lo <= d <= hi:
                raise ValueError(f"{name} default must lie in [min, max]. Received: "
                                 f"{name}={dict(value)!r}")
            out["default"] = d
        return out
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            C.fail(name, "choices must not be empty", value)
        values = [_check_value(name, v, allow_zero_l2) for v in value]
        if len(set(values)) != len(values):
            C.fail(name, "choices must be distinct", list(value))
        if len(values) == 1:
            return {"kind": "fixed", "value": values[0]}
        return {"kind": "choice", "values": values}
    if isinstance(value, str) or _is_number(value):
        return {"kind": "fixed", "value": _check_value(name, value, allow_zero_l2)}
    C.fail(name, "must be None, True, False, a value, a list of choices or a "
           "{'min', 'max'} range", value, TypeError)


def _points(setting: dict | None) -> list:
    """Values worth checking for validity: every choice, or a range's ends."""
    if setting is None:
        return [None]
    if setting["kind"] == "fixed":
        return [setting["value"]]
    if setting["kind"] == "choice":
        return list(setting["values"])
    return [setting["min"], setting["max"]]


def _declare(hp: kt.HyperParameters, name: str, setting: dict, default: Any = None) -> Any:
    kind = setting["kind"]
    if kind == "fixed":
        return hp.Fixed(name, setting["value"])
    if kind == "choice":
        values = setting["values"]
        dflt = default if default in values else values[0]
        return hp.Choice(name, values, default=dflt)
    lo, hi = setting["min"], setting["max"]
    dflt = setting.get("default")
    if dflt is None and default is not None and lo <= default <= hi:
        dflt = default
    if name in _INT_HPS:
        return hp.Int(name, lo, hi, step=setting["step"], sampling=setting["sampling"],
                      default=dflt)
    return hp.Float(name, float(lo), float(hi), step=setting["step"],
                    sampling=setting["sampling"], default=dflt)


class ResNetHyperModel(kt.HyperModel):
    """A ``keras_tuner.HyperModel`` over a base spec: searches depth and L2 (and more).

    ``build(hp)`` declares the hyperparameters, turns their values into a spec
    with :func:`spec_for`, builds the network (residual or its plain twin)
    and compiles it with :func:`~keras_resnet.compile_model` (sparse
    cross-entropy, accuracy). It clears the Keras session first, so a long
    search does not grow in memory, and seeds the run (``seed``) so a trial
    can be reproduced from its spec.

    Args:
        base: The base spec: a ``ModelSpec``, its dict, a spec file or a
            preset name. What the hyperparameters do not change is kept.
        depth: Blocks in the deepest stage (see :func:`spec_for`). Default:
            :func:`default_depths` of the base, e.g. 1, 2, 3, 5, 7 for
            ``cifar_resnet20``.
        l2: L2 strength. Default: log-uniform 1e-6 to 1e-2.
        width: Filter multiplier. Default: not searched (True: 0.5, 1, 2).
        shortcut: Model-wide shortcut option. Default: the base's (True: every
            option that gives a valid network for the base).
        block_type: Block type for the conv blocks. Default: the base's (True:
            the base's type and its pre/post-activation twin).
        learning_rate: Initial learning rate. Default: 0.1 for SGD, 1e-3 for
            the others (True: log-uniform 1e-4 to 0.1).
        optimizer: Optimizer name (see :func:`~keras_resnet.train.make_optimizer`).
            Default: ``"sgd"`` (True: sgd, adam).
        batch_size: Batch size for ``fit``. Default: whatever ``fit`` is given.
        epochs: Epochs for ``fit`` (not with Hyperband, which sets them).
            Default: whatever ``fit`` is given.
        allow_zero_l2: Allow ``l2 = 0``: a range gets a Boolean ``use_l2``
            (False means no decay), and fixed values or choices may hold 0.
        residual: True for residual networks, False for the plain twin; None
            follows a preset's name (``cifar_plain20`` is plain), else True.
        input_shape: Override the base's input shape (e.g. ``(8, 8, 1)``).
        classes: Override the base's number of classes.
        momentum: Momentum of SGD and RMSprop.
        label_smoothing: Label smoothing of the loss.
        seed: Seed set (``keras.utils.set_random_seed``) before each build;
            None leaves the random state alone.
        name: Name of the HyperModel.

    Each hyperparameter argument takes None (its default), True (search the
    default range), False (not searched), a value (``Fixed``), a list
    (``Choice``) or a dict ``{"min", "max", "step", "sampling", "default"}``
    (``Int``/``Float`` range).

    Example:

    ```python
    hm = kr.tuning.ResNetHyperModel("cifar_resnet20", input_shape=(8, 8, 1),
                                    depth=[1, 3, 5], l2={"min": 1e-5, "max": 1e-3,
                                                         "sampling": "log"})
    tuner = keras_tuner.RandomSearch(hm, objective="val_accuracy", max_trials=5)
    ```
    """

    def __init__(
        self,
        base: Any,
        *,
        depth: Any = None,
        l2: Any = None,
        width: Any = None,
        shortcut: Any = None,
        block_type: Any = None,
        learning_rate: Any = None,
        optimizer: Any = None,
        batch_size: Any = None,
        epochs: Any = None,
        allow_zero_l2: bool = False,
        residual: bool | None = None,
        input_shape: Sequence | None = None,
        classes: int | None = None,
        momentum: float = 0.9,
        label_smoothing: float = 0.0,
        seed: int | None = 0,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        C.check_bool("allow_zero_l2", allow_zero_l2)
        if residual is None:
            residual = residual_of(base)
        C.check_bool("residual", residual)
        self.momentum = C.check_float("momentum", momentum, minimum=0.0, maximum=1.0,
                                      exclusive_maximum=True)
        self.label_smoothing = C.check_float("label_smoothing", label_smoothing,
                                             minimum=0.0, maximum=1.0,
                                             exclusive_maximum=True)
        if seed is not None:
            seed = C.check_int("seed", seed, minimum=0, maximum=2**31 - 1)
        spec = as_spec(base)
        changes: dict = {}
        if input_shape is not None:
            if not isinstance(input_shape, (list, tuple)):
                C.fail("input_shape", "must be a tuple such as (8, 8, 1)", input_shape,
                       TypeError)
            changes["input_shape"] = tuple(input_shape)
        if classes is not None:
            changes["classes"] = C.check_int("classes", classes, minimum=1)
        self.base = spec.replace(**changes) if changes else spec
        self.residual = residual
        self.seed = seed
        self.allow_zero_l2 = allow_zero_l2
        conv_types = [b.type for b in _block_entries(self.base) if b.type in CONV_BLOCKS]
        own_type = max(set(conv_types), key=conv_types.count) if conv_types else None
        valid_shortcuts = [s for s in SHORTCUTS if _valid(self.base, {"shortcut": s})]
        # What True means for each hyperparameter (None means True for depth
        # and l2, which are searched by default, and False for the others).
        search_defaults = {
            "depth": default_depths(base_depth(self.base)),
            "l2": {"min": DEFAULT_L2_RANGE[0], "max": DEFAULT_L2_RANGE[1], "sampling": "log"},
            "width": [0.5, 1.0, 2.0],
            "shortcut": valid_shortcuts,
            "block_type": [own_type, _TWIN[own_type]] if own_type else None,
            "learning_rate": {"min": 1e-4, "max": 0.1, "sampling": "log"},
            "optimizer": ["sgd", "adam"],
            "batch_size": [32, 64, 128],
            "epochs": None,
        }
        given = dict(depth=depth, l2=l2, width=width, shortcut=shortcut,
                     block_type=block_type, learning_rate=learning_rate,
                     optimizer=optimizer, batch_size=batch_size, epochs=epochs)
        if own_type is None and block_type is not None and block_type is not False:
            C.fail("block_type", f"needs a base with {'/'.join(CONV_BLOCKS)} blocks",
                   block_type)
        self.settings: dict = {}
        for hp_name, value in given.items():
            if value is None:
                value = hp_name in ("depth", "l2")
            if value is True:
                value = search_defaults[hp_name]
                if value is None:
                    C.fail(hp_name, "has no default range: give a value or a list of "
                           "choices", True, TypeError)
            self.settings[hp_name] = _setting(hp_name, value, allow_zero_l2)
        l2s = self.settings["l2"]
        self._zero_switch = bool(allow_zero_l2 and l2s is not None and l2s["kind"] == "range")
        self._check_combinations()

    # ------------------------------------------------------------ checks
    def _check_combinations(self) -> None:
        """Every discrete combination (and each range's ends) gives a valid spec."""
        names = ("depth", "width", "shortcut", "block_type")
        grids = [_points(self.settings[n]) for n in names]
        total = math.prod(len(g) for g in grids)
        if total > 2000:
            return  # too many to check up front; build() reports a bad one clearly
        combos: list = [{}]
        for n, grid in zip(names, grids):
            combos = [{**c, n: v} for c in combos for v in grid]
        for values in combos:
            values = {k: v for k, v in values.items() if v is not None}
            try:
                spec_for(self.base, values)
            except (ValueError, TypeError) as e:
                shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
                raise ValueError(
                    f"the search space holds an invalid network ({shown}): {e}. "
                    "Restrict the choices of depth/width/shortcut/block_type") from None

    # ------------------------------------------------------------ hyperparameters
    def declare_values(self, hp: kt.HyperParameters) -> dict:
        """Declares the hyperparameters on ``hp`` and returns their active values.

        Args:
            hp: A ``keras_tuner.HyperParameters``.

        Returns:
            ``{name: value}`` for every declared, active hyperparameter (the
            dict :func:`spec_for` takes).
        """
        values: dict = {}
        for hp_name in HP_NAMES:
            if hp_name == "use_l2":
                continue
            setting = self.settings[hp_name]
            if setting is None:
                continue
            default = _base_value(self.base, hp_name)
            if hp_name == "l2" and self._zero_switch:
                use = hp.Boolean("use_l2", default=True)
                values["use_l2"] = use
                with hp.conditional_scope("use_l2", [True]):
                    value = _declare(hp, "l2", setting, default)
                if use:
                    values["l2"] = value
                continue
            values[hp_name] = _declare(hp, hp_name, setting, default)
        return values

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        """Declares the search space without building a model (KerasTuner hook)."""
        self.declare_values(hp)

    def spec(self, values: Mapping) -> ModelSpec:
        """The spec for hyperparameter ``values`` (:func:`spec_for` on this base)."""
        return spec_for(self.base, values)

    def training_values(self, values: Mapping) -> dict:
        """Optimizer and learning rate for ``values`` (defaults filled in)."""
        optimizer = values.get("optimizer") or "sgd"
        lr = values.get("learning_rate") or DEFAULT_LEARNING_RATES[optimizer]
        return {"optimizer": optimizer, "learning_rate": float(lr)}

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        """Builds and compiles the network for the values in ``hp``.

        Args:
            hp: A ``keras_tuner.HyperParameters``.

        Returns:
            A compiled ``keras.Model`` (a :class:`~keras_resnet.ResNetModel`).
        """
        values = self.declare_values(hp)
        spec = self.spec(values)
        train = self.training_values(values)
        keras.backend.clear_session(free_memory=True)
        # Seed right before the layers, so the model depends only on the seed
        # and the spec.
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)
        model = build(spec, self.residual)
        return compile_model(model, train["optimizer"], train["learning_rate"],
                             self.momentum, self.label_smoothing)

    def fit(self, hp: kt.HyperParameters, model: keras.Model, *args: Any,
            **kwargs: Any) -> Any:
        """Trains ``model``; a searched ``batch_size``/``epochs`` replaces ``fit``'s own.

        Args:
            hp: The trial's ``keras_tuner.HyperParameters``.
            model: The model ``build`` returned.
            *args: Passed to ``model.fit`` (e.g. ``x, y``).
            **kwargs: Passed to ``model.fit`` (``validation_data``, ``epochs``,
                ``callbacks``...).

        Returns:
            The ``History`` of ``model.fit``.
        """
        for hp_name in ("batch_size", "epochs"):
            if self.settings[hp_name] is not None and hp_name in hp.values:
                kwargs[hp_name] = hp.values[hp_name]
        with _release_traced_gradients():
            return model.fit(*args, **kwargs)

    def get_config(self) -> dict:
        """What defines the search: base spec, settings and training options."""
        return {"base": self.base.to_dict(), "residual": self.residual,
                "settings": self.settings, "allow_zero_l2": self.allow_zero_l2,
                "momentum": self.momentum, "label_smoothing": self.label_smoothing,
                "seed": self.seed}

    def describe(self, values: Mapping) -> dict:
        """Effective values of a trial: depth, l2 and every searched hyperparameter."""
        spec = self.spec(values)
        out = {"depth": base_depth(spec),
               "blocks": "-".join(str(b.repeat) for b in _block_entries(spec)),
               "l2": spec.l2}
        for hp_name in ("width", "shortcut", "block_type"):
            if self.settings[hp_name] is not None:
                out[hp_name] = values.get(hp_name)
        train = self.training_values(values)
        for hp_name in ("learning_rate", "optimizer"):
            if self.settings[hp_name] is not None:
                out[hp_name] = train[hp_name]
        for hp_name in ("batch_size", "epochs"):
            if self.settings[hp_name] is not None:
                out[hp_name] = values.get(hp_name)
        return out


@contextlib.contextmanager
def _release_traced_gradients() -> Iterator[None]:
    """Drops the gradient functions TensorFlow registered for good during a fit.

    On the TensorFlow backend, Keras' optimizer all-reduces the gradients in
    every traced train step, even without a distribution strategy;
    ``tf.custom_gradient`` then registers a ``CustomGradient-N`` function in
    TensorFlow's process-wide gradient registry, which is never emptied and
    whose closure holds the whole traced train graph. ``clear_session`` does
    not reach it, so every trial leaked its graphs (about 12 MB a trial for a
    two-block net on 8x8 digits). The entries serve only while the step is
    traced; the ones added during the fit are dropped when it ends.
    """
    registry = _tf_gradient_registry()
    before = set(registry) if registry is not None else set()
    try:
        yield
    finally:
        if registry is not None:
            for name in set(registry) - before:
                if isinstance(name, str) and name.startswith("CustomGradient-"):
                    registry.pop(name, None)


def _tf_gradient_registry() -> dict | None:
    if keras.backend.backend() != "tensorflow":
        return None
    try:  # a private TensorFlow table: if it moves, leave everything as it is
        from tensorflow.python.framework import ops

        registry = ops._gradient_registry._registry
    except (ImportError, AttributeError):
        return None
    return registry if isinstance(registry, dict) else None


def _valid(base: ModelSpec, values: dict) -> bool:
    try:
        spec_for(base, values)
    except (ValueError, TypeError):
        return False
    return True


def _base_value(base: ModelSpec, hp_name: str) -> Any:
    if hp_name == "depth":
        return base_depth(base)
    if hp_name == "l2":
        return base.l2 if base.l2 > 0 else 1e-4  # the paper's CIFAR weight decay
    if hp_name == "shortcut":
        return base.shortcut
    if hp_name == "width":
        return 1.0
    return None


# ------------------------------------------------------------ atomic state files
def _write_json(path: str, obj: Any) -> str:
    """Writes JSON through a temporary file and a rename (remote paths: as KerasTuner)."""
    text = json.dumps(obj)
    if "://" in path:  # gs:// and friends: no rename there; keep KerasTuner's writer
        _kt_utils.save_json(path, obj)
    else:
        atomic_write_text(path, text, overwrite=True)
    return text


def _objective_names(objective: Any) -> list:
    if isinstance(objective, _MultiObjective):
        return list(objective.name_to_direction)
    return [objective.name]


class _ResumableOracle:
    """Oracle mixin: atomic state files, and a reload that repairs a killed search.

    KerasTuner 1.4.8 writes ``trial.json`` and ``oracle.json`` in place, one
    after the other, so SIGKILL can leave a half-written file (the search
    cannot reload) or the two out of step: a trial recorded COMPLETED whose
    oracle state still lists it as running is run again on reload, and a trial
    file the oracle never recorded stays RUNNING for ever. Here every file is
    written atomically and :meth:`reload` settles each case.
    """

    def save(self) -> None:
        _write_json(self._get_oracle_fname(), self.get_state())

    def _save_trial(self, trial: Any) -> None:
        _write_json(os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"),
                    trial.get_state())

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self._kr_loaded = {"ongoing": list(state.get("ongoing_trials", {}).values()),
                           "retry": list(state.get("retry_queue", [])),
                           "ended": set(state.get("end_order", [])),
                           "run_times": dict(state.get("run_times", {}))}

    def reload(self) -> None:
        self._kr_loaded = None
        super().reload()
        self.resume_report = self._repair()

    def _repair(self) -> dict:
        report: dict = {"dropped": [], "finished": [], "rerun": []}
        loaded = getattr(self, "_kr_loaded", None)
        if loaded is None:
            return report
        # A trial file written by create_trial just before a kill, before the
        # oracle saved its state: the oracle never handed it out. Drop it (the
        # next trial takes its id and file), as if it had never been created.
        for tid in [t for t in self.trials if t not in set(self.start_order)]:
            del self.trials[tid]
            report["dropped"].append(tid)
        # Trials that were running at the kill: the base reload queued them all
        # for a re-run; keep only those whose result was not recorded.
        self._retry_queue = list(loaded["retry"])
        names = _objective_names(self.objective)
        for tid in loaded["ongoing"]:
            trial = self.trials.get(tid)
            if trial is None or tid in loaded["ended"] or tid in loaded["retry"]:
                continue  # end_trial got as far as saving the oracle: nothing lost
            status = trial.status
            has_result = all(trial.metrics.exists(n) for n in names)
            if status == "COMPLETED" or (status == "RUNNING" and has_result):
                trial.status = "COMPLETED"
            elif status in ("FAILED", "INVALID") and not loaded["run_times"].get(tid):
                pass  # end_trial wrote the trial file, not the oracle's state
            else:
                self._retry_queue.append(tid)
                report["rerun"].append(tid)
                continue
            verbose = self._display.verbose
            self._display.verbose = 0
            try:
                self.end_trial(trial)  # redo the oracle's bookkeeping, then save
            finally:
                self._display.verbose = verbose
            report["finished"].append(tid)
        if any(report.values()):
            self.save()
        return report


class _RandomOracle(_ResumableOracle, kt.oracles.RandomSearchOracle):
    pass


class _BayesianOracle(_ResumableOracle, kt.oracles.BayesianOptimizationOracle):
    pass


class _HyperbandOracle(_ResumableOracle, kt.oracles.HyperbandOracle):
    pass


def _is_worker() -> bool:
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in os.environ.get(
        "KERASTUNER_TUNER_ID", "")


def _is_chief() -> bool:
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" in os.environ.get(
        "KERASTUNER_TUNER_ID", "")


def _rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


class _ResNetTuner(kt.Hyperband):
    """The tuner :func:`tune` runs, for every algorithm (the oracle decides).

    It inherits Hyperband's two trial hooks (continue training from the
    previous round's checkpoint; both act only on Hyperband's ``tuner/...``
    values, which other oracles never set) and adds: atomic tuner files,
    per-trial timings and a one-line progress report, and a chief that exits
    as soon as the last worker is done.
    """

    def __init__(self, oracle: Any, hypermodel: ResNetHyperModel, *, progress: bool,
                 **kwargs: Any) -> None:
        # kt.Hyperband.__init__ would make its own oracle: go to kt.Tuner's.
        kt.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)
        self.progress = progress
        self.trial_stats: dict = {}
        self._trial_t0: float | None = None
        self._trials_run = 0

    # atomic tuner state (``<tuner_id>.json``)
    def save(self) -> None:
        if not self._is_worker():
            self.oracle.save()
        _write_json(self._get_tuner_fname(), self.get_state())

    def pre_create_trial(self) -> None:
        self._trial_t0 = time.perf_counter()

    def on_trial_begin(self, trial: Any) -> None:
        super().on_trial_begin(trial)
        t0 = self._trial_t0 if self._trial_t0 is not None else time.perf_counter()
        self.trial_stats[trial.trial_id] = {"start": t0, "build_s": 0.0, "fit_s": 0.0}

    def _try_build(self, hp: Any) -> keras.Model:
        # ResNetHyperModel.build clears the session and collects garbage itself;
        # kt.Tuner._try_build would do both again first (about 0.2-0.4 s a trial).
        return self._build_hypermodel(hp)

    def _build_and_fit_model(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        # As kt.Tuner's, timed, with the build config written atomically.
        from keras_tuner.src.engine import tuner_utils

        stats = self.trial_stats.setdefault(trial.trial_id,
                                            {"start": time.perf_counter(),
                                             "build_s": 0.0, "fit_s": 0.0})
        hp = trial.hyperparameters
        t0 = time.perf_counter()
        model = self._try_build(hp)
        t1 = time.perf_counter()
        results = self.hypermodel.fit(hp, model, *args, **kwargs)
        t2 = time.perf_counter()
        stats["build_s"] += t1 - t0
        stats["fit_s"] += t2 - t1
        _write_json(self._get_build_config_fname(trial.trial_id), model.get_build_config())
        tuner_utils.validate_trial_results(results, self.oracle.objective,
                                           "HyperModel.fit()")
        return results

    def on_trial_end(self, trial: Any) -> None:
        super().on_trial_end(trial)
        self._trials_run += 1
        stats = self.trial_stats.get(trial.trial_id)
        if stats is None:
            return
        stats["total_s"] = time.perf_counter() - stats.pop("start")
        stats["other_s"] = stats["total_s"] - stats["fit_s"]
        stats["rss_mb"] = _rss_mb()
        stats["status"] = trial.status
        if self.progress:
            print(self._progress_line(trial, stats), flush=True)

    def _progress_line(self, trial: Any, stats: dict) -> str:
        values = _user_values(trial.hyperparameters.values)
        shown = _format_values(self.hypermodel.describe(values))
        name = _objective_label(self.oracle.objective)
        try:
            score = self.oracle.get_trial(trial.trial_id).score
        except Exception:  # noqa: BLE001 - a report line must not end a search
            score = None
        result = (f"{name}={score:.4f}" if isinstance(score, (int, float)) and score
                  == score else trial.status)
        if "tuner/epochs" in trial.hyperparameters.values:
            shown += f" epochs={trial.hyperparameters.values['tuner/epochs']}"
        return (f"[tune] trial {trial.trial_id} ({self._trials_run} run here): {shown} -> "
                f"{result}  {stats['total_s']:.1f}s (fit {stats['fit_s']:.1f}s, "
                f"other {stats['other_s']:.1f}s)")

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        if not _is_chief():
            return super().search(*fit_args, **fit_kwargs)
        # The chief serves the oracle until every worker is done. KerasTuner's
        # own loop checks every 20 s; this one every 0.2 s and stops the server.
        if "verbose" in fit_kwargs:
            self.oracle.verbose = fit_kwargs["verbose"]
        self.save()
        _serve_oracle(self.oracle)


def _serve_oracle(oracle: Any, poll_s: float = 0.2) -> None:
    try:
        from concurrent import futures

        import grpc
        from keras_tuner.src import protos
        from keras_tuner.src.distribute.oracle_chief import OracleServicer, exit_chief
    except ImportError:  # pragma: no cover - other KerasTuner layouts
        from keras_tuner.src.distribute import oracle_chief

        oracle_chief.start_server(oracle)
        return
    ip, port = os.environ["KERASTUNER_ORACLE_IP"], os.environ["KERASTUNER_ORACLE_PORT"]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(f"{ip}:{port}")
    except RuntimeError as e:
        raise OSError(f"the chief cannot serve the oracle on {ip}:{port} ({e}); is "
                      "the port in use?") from None
    if not bound:
        raise OSError(f"the chief cannot serve the oracle on {ip}:{port}; is the port "
                      "in use?")
    server.start()
    try:
        while not (servicer.stop_triggered and exit_chief(oracle)):
            time.sleep(poll_s)
    finally:
        server.stop(grace=2).wait(5)


def _user_values(values: Mapping) -> dict:
    return {k: v for k, v in values.items() if not k.startswith("tuner/")}


def _format_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if v != 0 else "0"
    return str(v)


def _format_values(d: Mapping) -> str:
    return " ".join(f"{k}={_format_value(v)}" for k, v in d.items() if k != "blocks")


def _objective_label(objective: Any) -> str:
    return getattr(objective, "name", str(objective))


# ----------------------------------------------------------------- tune()
def _check_project_dir(path: str) -> None:
    """A project folder is only ever written into or deleted if it is a tuner's."""
    if not os.path.exists(path):
        return
    if not os.path.isdir(path):
        raise ValueError(f"tuner project {path!r} exists and is not a folder. Received: "
                         f"project path={path!r}")
    for entry in os.listdir(path):
        full = os.path.join(path, entry)
        ok = (entry.endswith(".json") and os.path.isfile(full)) or (
            entry.startswith("trial_") and os.path.isdir(full)) or (
            entry.startswith(".") and ".tmp-" in entry)  # an interrupted atomic write
        if not ok:
            raise ValueError(
                f"{path!r} holds {entry!r}, which a tuner does not write: it is not a "
                "tuner project, so it is neither resumed nor deleted. Choose another "
                "directory or project_name")


def _check_data(x: Any, y: Any, validation_data: Any, base: ModelSpec) -> tuple:
    """Returns (x, y, validation_data, input_shape, classes, is_numpy)."""
    from keras_resnet.data import Data, load_data

    if isinstance(x, str):
        x = load_data(x, flatten=base.is_mlp)
    if isinstance(x, Data):
        if y is not None:
            C.fail("y", "must be None when x is a Data object (it holds the labels)", y,
                   TypeError)
        data = x
        if validation_data is None:
            validation_data = data.validation
        if data.is_numpy:
            x, y = data.train
        else:
            x, y = data.train, None
        return x, y, validation_data, tuple(data.input_shape), data.num_classes, data.is_numpy
    if isinstance(x, np.ndarray) or hasattr(x, "__array__"):
        x = np.asarray(x)
        if y is None:
            C.fail("y", "is required with array inputs", y, TypeError)
        y = np.asarray(y)
        if x.ndim < 2 or len(x) != len(y) or len(x) == 0:
            raise ValueError(f"x and y must hold the same number (> 0) of examples. "
                             f"Received: x.shape={x.shape}, y.shape={y.shape}")
        if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1) or not np.issubdtype(
                y.dtype, np.integer):
            raise ValueError("y must hold integer class labels (sparse, one per "
                             f"example). Received: y.shape={y.shape}, dtype={y.dtype}")
        classes = int(y.max()) + 1
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                C.fail("validation_data", "must be a pair (x_val, y_val)", validation_data,
                       TypeError)
            validation_data = (np.asarray(validation_data[0]),
                               np.asarray(validation_data[1]))
            classes = max(classes, int(validation_data[1].max()) + 1)
        return x, y, validation_data, tuple(x.shape[1:]), classes, True
    # A tf.data.Dataset or a PyDataset: shapes come from the base spec.
    return x, y, validation_data, None, None, False


def tune(
    base: Any,
    x: Any,
    y: Any = None,
    *,
    validation_data: Any = None,
    algorithm: str = "hyperband",
    max_trials: int | None = 10,
    epochs: Any = 10,
    batch_size: Any = 128,
    directory: str | os.PathLike = "tuner",
    project_name: str | None = None,
    overwrite: bool = False,
    objective: Any = "val_accuracy",
    seed: int | None = 0,
    executions_per_trial: int = 1,
    hyperband_factor: int = 3,
    verbose: int = 1,
    depth: Any = None,
    l2: Any = None,
    width: Any = None,
    shortcut: Any = None,
    block_type: Any = None,
    learning_rate: Any = None,
    optimizer: Any = None,
    allow_zero_l2: bool = False,
    residual: bool | None = None,
    **search_kwargs: Any,
) -> tuple:
    """Searches depth and L2 (and more) for a base spec; returns the best spec.

    Runs a KerasTuner search of a :class:`ResNetHyperModel` and writes, in
    ``<directory>/<project_name>/`` next to the tuner state:
    ``best_spec.json`` (``kr.build_resnet(path)`` rebuilds the best network
    exactly, tuned ``l2`` and depth included), ``best_hyperparameters.json``
    (values, score, trial id, training settings) and ``tune_config.json``
    (what defines the search; a resumed search must match it).

    Everything is checked before any work starts. With ``overwrite=False`` an
    existing search in the same project is resumed (also after SIGKILL: no
    finished trial is run again, no result is lost); ``overwrite=True``
    deletes it first, but only if the folder holds nothing but tuner files.

    Args:
        base: The base spec (``ModelSpec``, dict, spec file or preset name),
            or a :class:`ResNetHyperModel` (then the hyperparameter arguments
            must be left out). Its input shape and classes are set from the
            data.
        x: Training inputs, a :class:`~keras_resnet.data.Data` from
            :func:`~keras_resnet.load_data` (training and validation data,
            shapes and classes in one), a data source name such as
            ``"digits"``, or a ``tf.data.Dataset``.
        y: Training labels (integers), with array ``x``.
        validation_data: ``(x_val, y_val)`` or a dataset; needed for the
            ``val_...`` objectives (default: the ``Data`` object's).
        algorithm: ``"hyperband"``, ``"random"`` or ``"bayesian"``.
        max_trials: Trials in all, resumed ones included. Hyperband's own
            schedule (``epochs``, ``hyperband_factor``) decides its trials;
            ``max_trials`` then caps them (None: no cap).
        epochs: Epochs per trial (Hyperband: the most a trial gets), or, for
            random/bayesian, a list/range to search as the ``epochs``
            hyperparameter.
        batch_size: Batch size, or a list/range to search (``batch_size``
            hyperparameter). Ignored for datasets, which are batched.
        directory: Folder of the tuner projects.
        project_name: Project folder inside ``directory``; default
            ``"<base name>_<algorithm>"``.
        overwrite: Delete an existing project first instead of resuming it.
        objective: What to optimise: ``"val_accuracy"`` (default),
            ``"val_loss"``, ``"accuracy"``, ``"loss"`` or a
            ``keras_tuner.Objective``. A trial's score is its best epoch's.
        seed: Seeds the oracle and each trial's initialisation and shuffling
            (so the best spec trained again gives the trial's score within
            noise); None leaves everything random.
        executions_per_trial: Trainings per trial (their scores are averaged).
        hyperband_factor: Hyperband's reduction factor.
        verbose: 0 silent, 1 one line per trial (default), 2 also KerasTuner's
            tables and Keras' progress bars.
        depth, l2, width, shortcut, block_type, learning_rate, optimizer,
            allow_zero_l2, residual: See :class:`ResNetHyperModel`.
        **search_kwargs: Passed on to ``tuner.search`` and so to ``model.fit``
            (``callbacks``, ``validation_split``, ``shuffle``...).

    Returns:
        ``(best_spec, tuner)``: the best ``ModelSpec`` and the KerasTuner
        tuner (``tuner.oracle`` has the trials, ``tuner.best_spec_path`` the
        JSON file). A distributed worker returns ``(None, tuner)``: the chief
        has the result.

    Example:

    ```python
    data = kr.load_data("digits")
    best, tuner = kr.tune("cifar_resnet20", data, algorithm="random",
                          max_trials=12, epochs=8)
    print(best.l2, kr.tuning.base_depth(best))
    print(kr.tuning.results_table(tuner))
    ```
    """
    # ---------------- arguments, all checked before any work
    C.check_choice("algorithm", algorithm, ALGORITHMS)
    if max_trials is not None:
        max_trials = C.check_int("max_trials", max_trials, minimum=1, maximum=1 << 20)
    elif algorithm != "hyperband":
        C.fail("max_trials", f"is required for algorithm={algorithm!r}", max_trials,
               TypeError)
    if isinstance(directory, os.PathLike):
        directory = os.fspath(directory)
    C.check_str("directory", directory)
    if not directory:
        C.fail("directory", "must not be empty", directory)
    C.check_bool("overwrite", overwrite)
    if seed is not None:
        seed = C.check_int("seed", seed, minimum=0, maximum=2**31 - 2)
    executions_per_trial = C.check_int("executions_per_trial", executions_per_trial,
                                       minimum=1, maximum=100)
    hyperband_factor = C.check_int("hyperband_factor", hyperband_factor, minimum=2,
                                   maximum=100)
    verbose = C.check_choice("verbose", verbose, (0, 1, 2))
    if isinstance(objective, str):
        C.check_choice("objective", objective,
                       ("val_accuracy", "val_loss", "accuracy", "loss"))
    elif not isinstance(objective, kt.Objective):
        C.fail("objective", "must be a metric name or a keras_tuner.Objective",
               objective, TypeError)
    epochs_hp = None if _is_number(epochs) else epochs
    if epochs_hp is None:
        epochs = C.check_int("epochs", epochs, minimum=1, maximum=100000)
    elif algorithm == "hyperband":
        C.fail("epochs", "must be one number with algorithm='hyperband' (Hyperband "
               "chooses each trial's epochs)", epochs, TypeError)
    batch_hp = None if (batch_size is None or _is_number(batch_size)) else batch_size
    if batch_hp is None and batch_size is not None:
        batch_size = C.check_int("batch_size", batch_size, minimum=1, maximum=1 << 20)

    hp_args = dict(depth=depth, l2=l2, width=width, shortcut=shortcut,
                   block_type=block_type, learning_rate=learning_rate,
                   optimizer=optimizer)
    if isinstance(base, ResNetHyperModel):
        given = [k for k, v in hp_args.items() if v is not None]
        if given or allow_zero_l2 or residual is not None or epochs_hp or batch_hp:
            raise TypeError(
                "tune() got a ResNetHyperModel and hyperparameter arguments "
                f"({', '.join(given) or 'allow_zero_l2/residual/epochs/batch_size'}); "
                "set them on the HyperModel instead")
        hypermodel = base
        base_spec = hypermodel.base
    else:
        base_spec = as_spec(base)
    x, y, validation_data, input_shape, classes, is_numpy = _check_data(
        x, y, validation_data, base_spec)
    if not isinstance(base, ResNetHyperModel):
        if residual is None:
            residual = residual_of(base)
        hypermodel = ResNetHyperModel(
            base_spec, **hp_args, batch_size=batch_hp, epochs=epochs_hp,
            allow_zero_l2=allow_zero_l2, residual=residual,
            input_shape=input_shape, classes=classes, seed=seed)
    elif input_shape is not None and tuple(hypermodel.base.input_shape) != input_shape:
        raise ValueError(f"the HyperModel's input_shape {hypermodel.base.input_shape} "
                         f"does not match the data's {input_shape}")
    obj_name = objective if isinstance(objective, str) else objective.name
    if (obj_name.startswith("val_") and validation_data is None
            and "validation_split" not in search_kwargs):
        raise ValueError(f"objective {obj_name!r} needs validation data: pass "
                         "validation_data=(x_val, y_val) or validation_split=0.2. "
                         f"Received: validation_data=None")
    if project_name is None:
        project_name = f"{hypermodel.base.name or 'resnet'}_{algorithm}"
    C.check_str("project_name", project_name)
    if (not project_name or project_name in (".", "..") or os.sep in project_name
            or (os.altsep and os.altsep in project_name)):
        C.fail("project_name", "must be a folder name (no path separators)", project_name)

    # ---------------- the project folder: resume, or delete only tuner files
    project_dir = os.path.join(directory, project_name)
    worker = _is_worker()
    if not worker:
        _check_project_dir(project_dir)
        if overwrite and os.path.isdir(project_dir):
            shutil.rmtree(project_dir)
    config = {"algorithm": algorithm, "objective": obj_name,
              "epochs": epochs if epochs_hp is None else None,
              "hyperband_factor": hyperband_factor if algorithm == "hyperband" else None,
              "executions_per_trial": executions_per_trial,
              "hypermodel": hypermodel.get_config()}
    config = json.loads(json.dumps(config))
    config_path = os.path.join(project_dir, "tune_config.json")
    if os.path.exists(config_path):
        with open(config_path, encoding="utf-8") as fh:
            old = json.load(fh)
        differ = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        if differ:
            raise ValueError(
                f"{project_dir!r} holds a search with a different "
                f"{', '.join(differ)}; resume it with the same arguments, or pass "
                "overwrite=True or another project_name")
    elif not worker:
        os.makedirs(project_dir, exist_ok=True)
        _write_json(config_path, config)
    # KerasTuner reloads only when the tuner's own file exists, which it first
    # writes after the first trial ends: a kill just before that would restart
    # from scratch over recorded trials. Create it as soon as the oracle has state.
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "tuner0")
    tuner_file = os.path.join(project_dir, f"{tuner_id}.json")
    if not worker and os.path.exists(os.path.join(project_dir, "oracle.json")) and (
            not os.path.exists(tuner_file)):
        _write_json(tuner_file, {})

    # ---------------- the tuner
    oracle_seed = None if seed is None else seed + 1  # KerasTuner treats 0 as "random"
    common = dict(objective=objective, seed=oracle_seed)
    if algorithm == "random":
        oracle = _RandomOracle(max_trials=max_trials, **common)
    elif algorithm == "bayesian":
        oracle = _BayesianOracle(max_trials=max_trials, **common)
    else:
        oracle = _HyperbandOracle(max_epochs=epochs, factor=hyperband_factor, **common)
        oracle.max_trials = max_trials
    if verbose < 2:
        oracle.verbose = 0
    tuner = _ResNetTuner(oracle, hypermodel, progress=verbose >= 1, directory=directory,
                         project_name=project_name, overwrite=False,
                         executions_per_trial=executions_per_trial)
    tuner.best_spec_path = os.path.join(project_dir, "best_spec.json")
    report = getattr(tuner.oracle, "resume_report", None)
    if verbose and not worker and report is not None:
        done = sum(t.status == "COMPLETED" for t in tuner.oracle.trials.values())
        print(f"[tune] resuming {project_dir}: {done} trial(s) completed"
              + (f", {len(report['finished'])} recovered" if report["finished"] else "")
              + (f", {len(report['rerun'])} to run again (killed while training)"
                 if report["rerun"] else ""), flush=True)

    fit_kwargs: dict = dict(search_kwargs)
    if validation_data is not None:
        fit_kwargs["validation_data"] = validation_data
    fit_kwargs["epochs"] = epochs if epochs_hp is None else max(_points(
        hypermodel.settings["epochs"]))
    if is_numpy and batch_size is not None and batch_hp is None:
        fit_kwargs["batch_size"] = batch_size
    fit_kwargs["verbose"] = 1 if verbose == 2 else 0
    args = (x,) if y is None else (x, y)
    tuner.search(*args, **fit_kwargs)

    if worker:
        return None, tuner
    best_spec = _export_best(tuner, project_dir)
    return best_spec, tuner


def _completed(oracle: Any) -> list:
    trials = [t for t in oracle.trials.values() if t.status == "COMPLETED"
              and t.score is not None and t.score == t.score]
    return sorted(trials, key=lambda t: t.score,
                  reverse=oracle.objective.direction == "max")


def _export_best(tuner: Any, project_dir: str) -> ModelSpec:
    trials = _completed(tuner.oracle)
    if not trials:
        failed = [t for t in tuner.oracle.trials.values() if t.status != "COMPLETED"]
        last = (failed[-1].message or "").strip().splitlines()[-1:] if failed else []
        raise RuntimeError(
            f"no trial of {project_dir!r} completed"
            + (f"; the last error: {last[0]}" if last else ""))
    best = trials[0]
    hm = tuner.hypermodel
    values = _user_values(best.hyperparameters.values)
    spec = hm.spec(values)
    spec.save(tuner.best_spec_path, overwrite=True)
    _write_json(os.path.join(project_dir, "best_hyperparameters.json"), {
        "trial_id": best.trial_id, "score": best.score,
        "objective": _objective_label(tuner.oracle.objective),
        "values": values, "residual": hm.residual,
        "training": hm.training_values(values),
        "epochs": best.hyperparameters.values.get("tuner/epochs"),
        "seed": hm.seed})
    return spec


def results_table(tuner: Any, num_trials: int = 10) -> str:
    """The best trials of a search as a text table (best first).

    Columns: rank, trial id, depth (blocks in the deepest stage), blocks per
    stage, l2, every other searched hyperparameter, and the objective (the
    trial's best epoch).

    Args:
        tuner: The tuner :func:`tune` returned.
        num_trials: Rows at most.

    Returns:
        The table, with a line counting completed and failed trials.
    """
    num_trials = C.check_int("num_trials", num_trials, minimum=1)
    oracle = tuner.oracle
    hm = tuner.hypermodel
    name = _objective_label(oracle.objective)
    trials = _completed(oracle)
    rows = []
    for rank, t in enumerate(trials[:num_trials], start=1):
        d = hm.describe(_user_values(t.hyperparameters.values))
        extra = {k: _format_value(v) for k, v in d.items()
                 if k not in ("depth", "blocks", "l2")}
        epochs = t.hyperparameters.values.get("tuner/epochs")
        if epochs is not None:
            extra["epochs"] = str(epochs)
        rows.append({"rank": str(rank), "trial": t.trial_id, "depth": str(d["depth"]),
                     "blocks": d["blocks"], "l2": _format_value(d["l2"]), **extra,
                     name: f"{t.score:.4f}"})
    header = ["rank", "trial", "depth", "blocks", "l2"]
    for r in rows:
        header += [k for k in r if k not in header and k != name]
    header.append(name)
    widths = {h: max([len(h)] + [len(r.get(h, "")) for r in rows]) for h in header}
    lines = ["  ".join(h.ljust(widths[h]) for h in header),
             "  ".join("-" * widths[h] for h in header)]
    for r in rows:
        lines.append("  ".join(r.get(h, "").ljust(widths[h]) for h in header))
    statuses = [t.status for t in oracle.trials.values()]
    lines.append(f"{len(trials)} completed, {statuses.count('FAILED')} failed, "
                 f"{len(statuses) - len(trials) - statuses.count('FAILED')} other "
                 f"({name}: best epoch of each trial)")
    return "\n".join(lines)


# ------------------------------------------------------------------ CLI
def _parse_setting(text: str | None, kind: type) -> Any:
    """``"3"`` fixed, ``"1,3,5"`` choices, ``"1e-5:1e-2"`` a log range (``lin:`` linear)."""
    if text is None:
        return None
    sampling = "log"
    if text.startswith("lin:"):
        text, sampling = text[4:], "linear"
    try:
        if ":" in text:
            lo, hi = text.split(":", 1)
            return {"min": kind(lo), "max": kind(hi), "sampling": sampling}
        parts = [kind(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a {kind.__name__} list or range: {text!r}"
                                         ) from None
    return parts[0] if len(parts) == 1 else parts


def cmd_tune(args: argparse.Namespace) -> int:
    """Handler of ``keras-resnet tune``."""
    from keras_resnet.data import load_data

    base_spec = as_spec(args.base)
    data = load_data(args.data, flatten=base_spec.is_mlp, seed=args.seed or 0)
    hp_args = {"depth": _parse_setting(args.depth, int),
               "l2": _parse_setting(args.l2, float)}
    if args.plain:
        hp_args["residual"] = False
    started = time.perf_counter()
    best, tuner = tune(
        args.base, data, algorithm=args.algorithm, max_trials=args.max_trials,
        epochs=args.epochs, batch_size=args.batch_size, directory=args.directory,
        project_name=args.project_name, overwrite=args.overwrite, seed=args.seed,
        allow_zero_l2=args.allow_zero_l2, verbose=args.verbose, **hp_args)
    if best is None:
        print(f"[tune] worker {os.environ.get('KERASTUNER_TUNER_ID')} done in "
              f"{time.perf_counter() - started:.0f}s")
        return 0
    print()
    print(results_table(tuner, args.top))
    print()
    print(f"best spec: {tuner.best_spec_path} (depth {base_depth(best)}, "
          f"l2 {_format_value(best.l2)}); rebuild with kr.build_resnet(path)")
    print(f"search time: {time.perf_counter() - started:.0f}s")
    return 0


def add_tune_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Registers the ``tune`` subcommand of ``keras-resnet``.

    Args:
        subparsers: What ``ArgumentParser.add_subparsers()`` returned.

    Returns:
        The ``tune`` parser (its handler is :func:`cmd_tune`).

    Example:

    ```sh
    keras-resnet tune --base cifar_resnet20 --data digits --max-trials 12 --epochs 8 \\
        --algorithm random --directory tuner
    ```
    """
    p = subparsers.add_parser(
        "tune", help="search depth and L2 (KerasTuner); resumable, distributed",
        description="Search depth and L2 strength for a base spec with KerasTuner. "
        "Prints a line per trial and a table of the best trials; the best spec is "
        "written to DIR/PROJECT/best_spec.json. Run again with the same directory "
        "to resume. For distributed tuning set KERASTUNER_TUNER_ID, "
        "KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT in each process.")
    p.add_argument("--base", required=True,
                   help="preset name or spec file (.json, .yaml) to start from")
    p.add_argument("--data", default="digits",
                   help="'digits' (built in) or a folder of images, one sub-folder "
                   "per class (default: digits)")
    p.add_argument("--algorithm", choices=ALGORITHMS, default="hyperband")
    p.add_argument("--max-trials", type=int, default=10,
                   help="trials in all, resumed ones included (default: 10)")
    p.add_argument("--epochs", type=int, default=10,
                   help="epochs per trial; Hyperband: the most (default: 10)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--depth", metavar="D|D1,D2|MIN:MAX",
                   help="blocks in the deepest stage: a value, choices or a range "
                   "(default: about 1/3x to 7/3x the base's)")
    p.add_argument("--l2", metavar="L|L1,L2|MIN:MAX",
                   help="L2 strength: a value, choices or a log range (default "
                   "1e-6:1e-2)")
    p.add_argument("--allow-zero-l2", action="store_true",
                   help="also try no weight decay (a use_l2 switch)")
    p.add_argument("--plain", action="store_true", help="tune the plain twin")
    p.add_argument("--directory", default="tuner", help="tuner folder (default: tuner)")
    p.add_argument("--project-name", help="project folder (default: BASE_ALGORITHM)")
    p.add_argument("--overwrite", action="store_true",
                   help="start the project again instead of resuming it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top", type=int, default=10, help="rows of the final table")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                   help="0 quiet, 1 a line per trial, 2 KerasTuner's and Keras' output")
    p.set_defaults(func=cmd_tune)
    return p


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: keras-resnet tune --help")
