"""The search space: hyperparameters, :func:`spec_for` and the KerasTuner HyperModel.

A trial is :func:`spec_for` + :meth:`ResNetHyperModel.recipe_for` and then what
``kr.train`` does, so the winner trained again with ``kr.train`` scores the same.

| name | meaning | searched by default |
|---|---|---|
| ``depth`` | blocks in the deepest stage; the others scale along | yes: ~1/3x to ~7/3x the base |
| ``l2`` | L2 weight decay on every kernel | yes: log-uniform 1e-6 to 1e-2 |
| ``use_l2`` | only with ``allow_zero_l2=True``: False means ``l2 = 0`` | with the flag |
| ``width`` | multiplier on every block's and the stem's filters | no (True: 0.5, 1, 2) |
| ``shortcut`` | the model-wide shortcut option ``"A"``-``"D"`` | no (True: every valid one) |
| ``block_type`` | swaps conv blocks, e.g. basic <-> preact_basic | no (True: the base's twin) |
| ``learning_rate`` | the recipe's initial learning rate | no (True: log-uniform 1e-4 to 0.1) |
| ``optimizer`` | the recipe's optimizer | no (True: sgd, adam) |
| ``batch_size``, ``epochs`` | the recipe's | no (True: 32, 64, 128; epochs: give choices) |
| ``schedule`` | the recipe's learning-rate schedule | no (True: step, cosine) |
| ``augment`` | the recipe's augmentation on/off | no (True: off, on) |

Each argument of the same name takes None (the default above), True (the
default range), False (not searched), a value (``Fixed``), a list (``Choice``)
or a dict ``{"min", "max", "step", "sampling", "default"}`` (``Int``/``Float``;
not for the string- and bool-valued ones).

**Zero L2.** A log range cannot reach 0, so with ``allow_zero_l2=True`` an
``l2`` range gets a Boolean ``use_l2`` with ``l2`` in its conditional scope.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import replace as _dc_replace
from typing import Any

import keras
import keras_tuner as kt
import numpy as np

from keras_resnet import _checks as C
from keras_resnet.builders import as_spec, build
from keras_resnet.data import Data
from keras_resnet.spec import MAX_FILTERS, MAX_REPEAT, SHORTCUTS, BlockSpec, ModelSpec
from keras_resnet.training.recipe import OPTIMIZERS, SCHEDULES, Recipe

#: Hyperparameter names, in the order ``build`` declares them.
HP_NAMES = ("depth", "use_l2", "l2", "width", "shortcut", "block_type",
            "learning_rate", "optimizer", "batch_size", "epochs", "schedule", "augment")
#: The ones that change the recipe, not the network.
RECIPE_HPS = ("learning_rate", "optimizer", "batch_size", "epochs", "schedule", "augment")
CONV_BLOCKS = ("basic", "preact_basic", "bottleneck", "preact_bottleneck")
_TWIN = {"basic": "preact_basic", "preact_basic": "basic",
         "bottleneck": "preact_bottleneck", "preact_bottleneck": "bottleneck"}
#: Learning rate per optimizer when the optimizer is searched and the rate is not.
DEFAULT_LEARNING_RATES = {"sgd": 0.1, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3}
DEFAULT_L2_RANGE = (1e-6, 1e-2)
#: Allowed values of each hyperparameter: (minimum, maximum) or the choices.
_LIMITS: dict = {"depth": (1, MAX_REPEAT), "batch_size": (1, 1 << 20),
                 "epochs": (1, 1 << 20), "l2": (0.0, 1.0), "width": (0.0, 64.0),
                 "learning_rate": (0.0, 10.0), "shortcut": SHORTCUTS,
                 "block_type": CONV_BLOCKS, "optimizer": OPTIMIZERS,
                 "schedule": SCHEDULES}
_RANGE_KEYS = ("min", "max", "step", "sampling", "default")
_STRING_HPS = ("shortcut", "block_type", "optimizer", "schedule", "augment")
_INT_HPS = ("depth", "batch_size", "epochs")


def _block_entries(spec: ModelSpec) -> list:
    return [b for b in spec.blocks if isinstance(b, BlockSpec)]


def base_depth(spec: Any) -> int:
    """The ``depth`` of a spec: the blocks in its deepest ``BlockSpec`` entry.

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


def _swap_block(b: BlockSpec, target: str) -> BlockSpec:
    if b.type not in CONV_BLOCKS or b.type == target:
        return b
    changes: dict = {"type": target}
    if "bottleneck" not in target:  # options only bottleneck blocks take
        changes.update(bottleneck_ratio=None, stride_1x1=False)
    return _dc_replace(b, **changes)


def spec_for(base_spec: Any, values: Mapping) -> ModelSpec:
    """Applies hyperparameter values to a base spec (the one place that does).

    Absent keys keep the base's value (``spec_for(base, {})`` is the base);
    training hyperparameters and KerasTuner's ``tuner/...`` entries are
    ignored; unknown keys are an error.

    * ``depth``: blocks in the deepest stage; every ``BlockSpec`` entry becomes
      ``max(1, round(repeat * depth / deepest))``, rounded half up (the
      paper's n for the CIFAR ResNets).
    * ``l2``: the spec's L2 strength; ``use_l2=False`` sets it to 0.
    * ``width``: multiplies every block's and the stem's ``filters`` (rounded
      half up, at least 1).
    * ``shortcut``: the model-wide option; block-level overrides stay.
    * ``block_type``: every basic/bottleneck (pre-activation or not) block
      becomes this type; bottleneck-only options are dropped for basic types.

    Args:
        base_spec: Anything :func:`~keras_resnet.as_spec` accepts.
        values: ``{hyperparameter name: value}``, e.g.
            ``trial.hyperparameters.values``.

    Returns:
        The validated ``ModelSpec`` (its ``name`` is the base's).

    Example:

    ```python
    spec = kr.tuning.spec_for("cifar_resnet20", {"depth": 5, "l2": 1e-4})  # ResNet-32
    ```
    """
    base = as_spec(base_spec)
    if not isinstance(values, Mapping):
        C.fail("values", "must be a dict of hyperparameter values", values, TypeError)
    C.check_keys("values", {k: v for k, v in values.items()
                            if not (isinstance(k, str) and k.startswith("tuner/"))}, HP_NAMES)
    v = {k: _check_value(k, values[k], True) for k in ("depth", "width", "block_type",
                                                       "shortcut", "l2")
         if values.get(k) is not None}
    blocks, stem, changes = list(base.blocks), base.stem, {}
    if "depth" in v:
        deepest = base_depth(base)
        blocks = [_dc_replace(b, repeat=max(1, (2 * b.repeat * v["depth"] + deepest)
                                            // (2 * deepest)))
                  if isinstance(b, BlockSpec) else b for b in blocks]
    if "width" in v:
        def scale(f: int) -> int:
            return max(1, min(MAX_FILTERS, int(math.floor(f * v["width"] + 0.5))))

        blocks = [_dc_replace(b, filters=scale(b.filters)) if isinstance(b, BlockSpec)
                  else b for b in blocks]
        if stem is not None:
            stem = _dc_replace(stem, filters=scale(stem.filters))
    if "block_type" in v:
        if not any(b.type in CONV_BLOCKS for b in _block_entries(base)):
            C.fail("block_type", f"needs a base with {'/'.join(CONV_BLOCKS)} blocks; "
                   f"this one has {sorted({b.type for b in _block_entries(base)})}",
                   v["block_type"])
        blocks = [_swap_block(b, v["block_type"]) if isinstance(b, BlockSpec) else b
                  for b in blocks]
    if "shortcut" in v:
        changes["shortcut"] = v["shortcut"]
    if "use_l2" in values and not C.check_bool("use_l2", values["use_l2"]):
        changes["l2"] = 0.0
    elif "l2" in v:
        changes["l2"] = v["l2"]
    if blocks != list(base.blocks):
        changes["blocks"] = tuple(blocks)
    if stem != base.stem:
        changes["stem"] = stem
    return base.replace(**changes) if changes else base


# ------------------------------------------------------- hyperparameter settings
def _check_value(name: str, v: Any, allow_zero_l2: bool) -> Any:
    """Checks one value of a hyperparameter against ``_LIMITS``; returns it normalised."""
    if name == "augment":
        return C.check_bool(name, v)
    limits = _LIMITS[name]
    if isinstance(limits[0], str):
        return C.check_choice(name, v, limits)
    if name in _INT_HPS:
        if name == "depth" and isinstance(v, float) and v.is_integer():
            v = int(v)
        return C.check_int(name, v, minimum=limits[0], maximum=limits[1])
    v = C.check_float(name, v, minimum=limits[0], maximum=limits[1])
    if v == 0 and name != "l2":
        C.fail(name, "must be > 0", v)
    if v == 0 and not allow_zero_l2:
        C.fail(name, "is 0 (no weight decay), which is allowed only with "
               "allow_zero_l2=True", v)
    return v


def _setting(name: str, value: Any, allow_zero_l2: bool) -> dict | None:
    """Normalises a user's hyperparameter argument to a setting dict (None: off)."""
    if value is False:
        return None
    if isinstance(value, Mapping):
        if name in _STRING_HPS:
            C.fail(name, "takes a value or a list of choices, not a range", value,
                   TypeError)
        C.check_keys(name, value, _RANGE_KEYS)
        if "min" not in value or "max" not in value:
            C.fail(name, "range needs 'min' and 'max'", dict(value))
        lo = _check_value(name, value["min"], allow_zero_l2)
        hi = _check_value(name, value["max"], allow_zero_l2)
        if lo >= hi:
            C.fail(name, "range needs min < max", dict(value))
        sampling = C.check_choice(f"{name}.sampling", value.get("sampling", "linear"),
                                  ("linear", "log"))
        if sampling == "log" and lo <= 0:
            C.fail(name, "log-uniform range needs min > 0; to allow l2=0 pass "
                   "allow_zero_l2=True (a use_l2 switch)", dict(value))
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
                C.fail(name, "default must lie in [min, max]", dict(value))
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
    if isinstance(value, (str, bool, numbers.Real)):
        return {"kind": "fixed", "value": _check_value(name, value, allow_zero_l2)}
    C.fail(name, "must be None, True, False, a value, a list of choices or a "
           "{'min', 'max'} range", value, TypeError)


def _points(setting: dict | None) -> list:
    """Values worth checking for validity: every choice, or a range's ends."""
    if setting is None or setting["kind"] == "fixed":
        return [setting and setting["value"]]
    return list(setting.get("values") or (setting["min"], setting["max"]))


def _declare(hp: kt.HyperParameters, name: str, setting: dict, default: Any = None) -> Any:
    kind = setting["kind"]
    if kind == "fixed":
        return hp.Fixed(name, setting["value"])
    if name == "augment":
        return hp.Boolean(name, default=False)
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


def as_data(x: Any, y: Any = None, validation_data: Any = None) -> Data:
    """A :class:`~keras_resnet.data.Data` from what a KerasTuner user passes to ``search``.

    Args:
        x: A ``Data``, a data source name (``"digits"``) or training inputs.
        y: Integer labels, with array ``x``.
        validation_data: ``(x_val, y_val)``, with array ``x``.

    Returns:
        The data (arrays become a NumPy ``Data`` named ``"arrays"``).
    """
    if isinstance(x, str):
        from keras_resnet.data import load_data

        x = load_data(x)
    if isinstance(x, Data):
        if y is not None or validation_data is not None:
            C.fail("y", "must be None when x is a Data object (it holds the labels and "
                   "the validation split)", y, TypeError)
        return x
    if not hasattr(x, "__array__"):
        C.fail("x", "must be a keras_resnet Data (kr.load_data), a data source name or "
               "a NumPy array", x, TypeError)
    x, y = np.asarray(x), np.asarray(y) if y is not None else None
    if y is None or x.ndim < 2 or len(x) != len(y) or len(x) == 0:
        raise ValueError("x and y must hold the same number (> 0) of examples. Received: "
                         f"x.shape={x.shape}, y.shape={None if y is None else y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold integer class labels. Received: dtype={y.dtype}")
    classes = int(y.max()) + 1
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            C.fail("validation_data", "must be a pair (x_val, y_val)", validation_data,
                   TypeError)
        validation_data = (np.asarray(validation_data[0]), np.asarray(validation_data[1]))
        classes = max(classes, int(validation_data[1].max()) + 1)
    return Data("arrays", (x, y), validation_data, tuple(x.shape[1:]), classes,
                [str(i) for i in range(classes)])


class ResNetHyperModel(kt.HyperModel):
    """A ``keras_tuner.HyperModel`` over a base spec and a training recipe.

    ``build(hp)`` seeds, builds :func:`spec_for`'s network and compiles it with
    the trial's recipe; ``fit`` trains it with :meth:`Recipe.fit
    <keras_resnet.training.recipe.Recipe.fit>`: the steps of ``kr.train``. It
    works with every stock KerasTuner tuner; :func:`~keras_resnet.tuning.tune`
    adds resume and several processes.

    Args:
        base: The base spec: a ``ModelSpec``, its dict, a spec file or a
            preset name. What the hyperparameters do not change is kept.
        recipe: The base training recipe (a ``Recipe`` or its dict; default
            ``Recipe()``); searched training hyperparameters replace its fields.
        depth, l2, width, shortcut, block_type: The network's hyperparameters
            (see :func:`spec_for` and the module's table).
        learning_rate, optimizer, batch_size, epochs, schedule, augment: The
            recipe's (see the module's table).
        allow_zero_l2: Allow ``l2 = 0``: a range gets a Boolean ``use_l2``.
        residual: True for residual networks, False for the plain twin; None
            follows the base's ``residual``.
        input_shape: Override the base's input shape (e.g. ``(8, 8, 1)``).
        classes: Override the base's number of classes.
        name: Name of the HyperModel.

    Example:

    ```python
    hm = kr.tuning.ResNetHyperModel("cifar_resnet20", input_shape=(8, 8, 1),
                                    recipe=kr.Recipe(epochs=5), depth=[1, 3, 5])
    tuner = keras_tuner.RandomSearch(hm, objective="val_accuracy", max_trials=5)
    tuner.search(kr.load_data("digits"))
    ```
    """

    def __init__(
        self,
        base: Any,
        *,
        recipe: Recipe | Mapping | None = None,
        depth: Any = None, l2: Any = None, width: Any = None, shortcut: Any = None,
        block_type: Any = None, learning_rate: Any = None, optimizer: Any = None,
        batch_size: Any = None, epochs: Any = None, schedule: Any = None,
        augment: Any = None,
        allow_zero_l2: bool = False,
        residual: bool | None = None,
        input_shape: Sequence | None = None,
        classes: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        C.check_bool("allow_zero_l2", allow_zero_l2)
        self.recipe = _as_recipe(recipe)
        spec = as_spec(base)
        self.residual = C.check_bool("residual", spec.residual if residual is None
                                     else residual)
        changes: dict = {"residual": self.residual}
        if input_shape is not None:
            if not isinstance(input_shape, (list, tuple)):
                C.fail("input_shape", "must be a tuple such as (8, 8, 1)", input_shape,
                       TypeError)
            changes["input_shape"] = tuple(input_shape)
        if classes is not None:
            changes["classes"] = C.check_int("classes", classes, minimum=1)
        self.base = spec.replace(**changes)
        self.allow_zero_l2 = allow_zero_l2
        conv_types = [b.type for b in _block_entries(self.base) if b.type in CONV_BLOCKS]
        own_type = max(set(conv_types), key=conv_types.count) if conv_types else None
        search_defaults = {  # what True means (epochs has no default)
            "depth": default_depths(base_depth(self.base)),
            "l2": {"min": DEFAULT_L2_RANGE[0], "max": DEFAULT_L2_RANGE[1], "sampling": "log"},
            "width": [0.5, 1.0, 2.0], "optimizer": ["sgd", "adam"],
            "shortcut": [s for s in SHORTCUTS if _valid(self.base, {"shortcut": s})],
            "block_type": [own_type, _TWIN[own_type]] if own_type else None,
            "learning_rate": {"min": 1e-4, "max": 0.1, "sampling": "log"},
            "batch_size": [32, 64, 128], "schedule": ["step", "cosine"],
            "augment": [False, True]}
        given = dict(depth=depth, l2=l2, width=width, shortcut=shortcut,
                     block_type=block_type, learning_rate=learning_rate,
                     optimizer=optimizer, batch_size=batch_size, epochs=epochs,
                     schedule=schedule, augment=augment)
        if own_type is None and block_type is not None and block_type is not False:
            C.fail("block_type", f"needs a base with {'/'.join(CONV_BLOCKS)} blocks",
                   block_type)
        self.settings: dict = {}
        for hp_name, value in given.items():
            if value is None:  # searched by default: depth and l2 only
                value = hp_name in ("depth", "l2")
            if value is True:
                value = search_defaults.get(hp_name)
                if value is None:
                    C.fail(hp_name, "has no default range: give a value or a list of "
                           "choices", True, TypeError)
            self.settings[hp_name] = _setting(hp_name, value, allow_zero_l2)
        l2s = self.settings["l2"]
        self.zero_switch = bool(allow_zero_l2 and l2s is not None and l2s["kind"] == "range")
        _check_space(self.base, self.settings)

    def declare_values(self, hp: kt.HyperParameters) -> dict:
        """Declares the hyperparameters on ``hp`` and returns their active values."""
        values: dict = {}
        for hp_name in HP_NAMES:
            setting = self.settings.get(hp_name)
            if setting is None:
                continue
            default = _base_value(self.base, self.recipe, hp_name)
            if hp_name == "l2" and self.zero_switch:
                values["use_l2"] = use = hp.Boolean("use_l2", default=True)
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

    def recipe_for(self, values: Mapping) -> Recipe:
        """The training recipe for hyperparameter ``values``.

        The base recipe with every searched training hyperparameter applied;
        Hyperband's ``tuner/epochs`` sets ``epochs`` (each trial trains from
        scratch for its budget, so it is one ``kr.train`` run). When the
        optimizer is searched and the learning rate is not, each optimizer
        takes its usual rate (0.1 for SGD, 1e-3 for the others).
        """
        changes = {k: values[k] for k in RECIPE_HPS if values.get(k) is not None}
        if values.get("tuner/epochs") is not None:
            changes["epochs"] = int(values["tuner/epochs"])
        if "optimizer" in changes and "learning_rate" not in changes:
            changes["learning_rate"] = DEFAULT_LEARNING_RATES[changes["optimizer"]]
        if "epochs" in changes:
            changes["warmup_epochs"] = min(self.recipe.warmup_epochs, changes["epochs"])
        return self.recipe.replace(**changes) if changes else self.recipe

    def build_values(self, values: Mapping) -> keras.Model:
        """Seeds, builds and compiles the network of ``values`` (as ``kr.train`` does)."""
        recipe = self.recipe_for(values)
        if recipe.seed is not None:
            keras.utils.set_random_seed(recipe.seed)
        return recipe.compile(build(self.spec(values)))

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        """Builds and compiles the network for the values in ``hp``."""
        self.declare_values(hp)
        return self.build_values(hp.values)

    def fit_values(self, model: keras.Model, values: Mapping, data: Data,
                   callbacks: Sequence = (), verbose: Any = 0) -> Any:
        """Trains ``model`` with the recipe of ``values`` (``Recipe.fit``)."""
        return self.recipe_for(values).fit(model, data, callbacks=callbacks,
                                           verbose=verbose)

    def fit(self, hp: kt.HyperParameters, model: keras.Model, x: Any = None,
            y: Any = None, validation_data: Any = None, callbacks: Sequence = (),
            verbose: Any = "auto", **kwargs: Any) -> Any:
        """Trains ``model`` with the trial's recipe (KerasTuner calls this).

        Args:
            hp: The trial's ``keras_tuner.HyperParameters``.
            model: The model ``build`` returned.
            x: A ``Data`` (or a source name), or training inputs.
            y: Labels, with array ``x``.
            validation_data: ``(x_val, y_val)``, with array ``x``.
            callbacks: More callbacks (KerasTuner's own among them).
            verbose: Keras' ``fit`` verbosity.
            **kwargs: Other ``fit`` arguments a tuner passes (``epochs`` and
                ``batch_size`` come from the recipe and are ignored).

        Returns:
            The ``History``.
        """
        return self.fit_values(model, hp.values, as_data(x, y, validation_data),
                               callbacks=callbacks, verbose=verbose)

    def get_config(self) -> dict:
        """What defines the search: base spec, recipe, settings."""
        return {"base": self.base.to_dict(), "residual": self.residual,
                "recipe": self.recipe.to_dict(), "settings": self.settings,
                "allow_zero_l2": self.allow_zero_l2}

    def describe(self, values: Mapping) -> dict:
        """Effective values of a trial: depth, l2 and every searched hyperparameter."""
        spec = self.spec(values)
        out = {"depth": base_depth(spec),
               "blocks": "-".join(str(b.repeat) for b in _block_entries(spec)),
               "l2": spec.l2}
        recipe = self.recipe_for(values).to_dict()
        for hp_name in HP_NAMES[3:]:
            if self.settings[hp_name] is not None:
                out[hp_name] = recipe.get(hp_name, values.get(hp_name))
        if values.get("tuner/epochs") is not None:
            out["epochs"] = recipe["epochs"]
        return out


def _check_space(base: ModelSpec, settings: dict) -> None:
    """Every discrete combination (and each range's ends) gives a valid spec."""
    names = ("depth", "width", "shortcut", "block_type")
    grids = [_points(settings[n]) for n in names]
    if math.prod(len(g) for g in grids) > 2000:
        return  # too many to check up front; build() reports a bad one clearly
    combos: list = [{}]
    for n, grid in zip(names, grids):
        combos = [{**c, n: v} for c in combos for v in grid]
    for values in combos:
        values = {k: v for k, v in values.items() if v is not None}
        try:
            spec_for(base, values)
        except (ValueError, TypeError) as e:
            shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
            raise ValueError(
                f"the search space holds an invalid network ({shown}): {e}. "
                "Restrict the choices of depth/width/shortcut/block_type") from None


def _valid(base: ModelSpec, values: dict) -> bool:
    try:
        spec_for(base, values)
    except (ValueError, TypeError):
        return False
    return True


def _base_value(base: ModelSpec, recipe: Recipe, hp_name: str) -> Any:
    """The default of a range or choice: the base's value (l2: 1e-4 if it has none)."""
    return {"depth": base_depth(base), "l2": base.l2 or 1e-4, "shortcut": base.shortcut,
            "width": 1.0}.get(hp_name, getattr(recipe, hp_name, None))


def _as_recipe(recipe: Recipe | Mapping | None) -> Recipe:
    """A ``Recipe`` from None (the default), a ``Recipe`` or its dict."""
    if recipe is None or isinstance(recipe, Recipe):
        return recipe or Recipe()
    if isinstance(recipe, Mapping):
        return Recipe.from_dict(dict(recipe))
    C.fail("recipe", "must be a keras_resnet Recipe or its dict", recipe, TypeError)
