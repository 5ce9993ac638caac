"""The search space: hyperparameters, :func:`spec_for` and the KerasTuner HyperModel.

A trial is :func:`spec_for` + :meth:`ResNetHyperModel.recipe_for`, then what
``kr.train`` does, so the winner trained again with ``kr.train`` scores the same.

| name | meaning | searched by default (True: the range) |
|---|---|---|
| ``depth`` | blocks in the deepest stage; the others scale along | yes: ~1/3x to ~7/3x the base |
| ``l2`` | L2 weight decay on every kernel | yes: log-uniform 1e-6 to 1e-2 |
| ``use_l2`` | only with ``allow_zero_l2=True``: False means ``l2 = 0`` | with the flag |
| ``width`` | multiplier on every block's and the stem's filters | no (0.5, 1, 2) |
| ``shortcut`` | the model-wide shortcut option ``"A"``-``"D"`` | no (every valid one) |
| ``block_type`` | swaps conv blocks, e.g. basic <-> preact_basic | no (the base's twin) |
| ``learning_rate`` | the recipe's initial learning rate | no (log-uniform 1e-4 to 0.1) |
| ``optimizer`` | the recipe's optimizer | no (sgd, adam) |
| ``batch_size``, ``epochs`` | the recipe's | no (32, 64, 128; epochs: none) |
| ``schedule``, ``augment`` | the recipe's | no (step, cosine; off, on) |

Each argument of that name takes None (the default above), True (the range
above), False (not searched), a value (``Fixed``), a list (``Choice``) or, for
numbers, a dict ``{"min", "max", "step", "sampling", "default"}``
(``Int``/``Float``). A log range cannot reach 0, so with
``allow_zero_l2=True`` an ``l2`` range gets a Boolean ``use_l2`` with ``l2``
in its conditional scope.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import replace as _dc_replace
from typing import Any

import keras
import keras_tuner as kt

from keras_resnet import _checks as C
from keras_resnet.builders import as_spec, build
from keras_resnet.data import Data, load_data
from keras_resnet.spec import MAX_FILTERS, MAX_REPEAT, SHORTCUTS, BlockSpec, ModelSpec
from keras_resnet.training.recipe import OPTIMIZERS, SCHEDULES, Recipe

#: Hyperparameter names, in the order ``build`` declares them.
HP_NAMES = ("depth", "use_l2", "l2", "width", "shortcut", "block_type",
            "learning_rate", "optimizer", "batch_size", "epochs", "schedule", "augment")
#: The ones that change the recipe, not the network.
RECIPE_HPS = HP_NAMES[6:]
CONV_BLOCKS = ("basic", "preact_basic", "bottleneck", "preact_bottleneck")
_TWIN = dict(zip(CONV_BLOCKS, ("preact_basic", "basic", "preact_bottleneck", "bottleneck")))
#: Learning rate per optimizer when the optimizer is searched and the rate is not.
DEFAULT_LEARNING_RATES = {"sgd": 0.1, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3}
#: Allowed values: (minimum, maximum) of numbers, or the choices.
_LIMITS: dict = {"depth": (1, MAX_REPEAT), "batch_size": (1, 1 << 20),
                 "epochs": (1, 1 << 20), "l2": (0.0, 1.0), "width": (0.0, 64.0),
                 "learning_rate": (0.0, 10.0), "shortcut": SHORTCUTS,
                 "block_type": CONV_BLOCKS, "optimizer": OPTIMIZERS,
                 "schedule": SCHEDULES, "augment": (False, True)}
_INT_HPS = ("depth", "batch_size", "epochs")
#: What True means, where it does not depend on the base.
_TRUE = {"l2": {"min": 1e-6, "max": 1e-2, "sampling": "log"}, "width": [0.5, 1.0, 2.0],
         "optimizer": ["sgd", "adam"], "batch_size": [32, 64, 128],
         "learning_rate": {"min": 1e-4, "max": 0.1, "sampling": "log"},
         "schedule": ["step", "cosine"], "augment": [False, True]}


def _entries(spec: ModelSpec) -> list:
    return [b for b in spec.blocks if isinstance(b, BlockSpec)]


def base_depth(spec: Any) -> int:
    """The ``depth`` of a spec: the largest ``repeat`` of its ``BlockSpec`` entries.

    Args:
        spec: Anything :func:`~keras_resnet.as_spec` accepts.

    Returns:
        The depth (3 for ``cifar_resnet20``, 6 for ``resnet50``).
    """
    return max(b.repeat for b in _entries(as_spec(spec)))


def default_depths(depth: int) -> list:
    """The default ``depth`` choices: about 1/3, 2/3, 1, 5/3 and 7/3 times ``depth``.

    Args:
        depth: The base's depth (see :func:`base_depth`).

    Returns:
        Sorted distinct choices (rounded half up, at least 1) that include
        ``depth``: ``[1, 2, 3, 5, 7]`` for 3 (ResNet-8 to ResNet-44).
    """
    depth = C.check_int("depth", depth, minimum=1, maximum=MAX_REPEAT)
    return sorted({max(1, min(MAX_REPEAT, (depth * k + 1) // 3)) for k in (1, 2, 3, 5, 7)}
                  | {depth})


def _swap_block(b: BlockSpec, target: str) -> BlockSpec:
    if b.type not in CONV_BLOCKS or b.type == target:
        return b
    extra: dict = {} if "bottleneck" in target else {"bottleneck_ratio": None,
                                                     "stride_1x1": False}
    return _dc_replace(b, type=target, **extra)


def spec_for(base_spec: Any, values: Mapping) -> ModelSpec:
    """Applies hyperparameter values to a base spec (the one place that does).

    Absent keys keep the base's value; training hyperparameters and
    KerasTuner's ``tuner/...`` entries are ignored; unknown keys are an error.
    ``depth`` sets every ``BlockSpec`` entry's repeat to ``max(1, round(repeat
    * depth / deepest))`` (half up: the paper's n for the CIFAR ResNets);
    ``width`` multiplies every block's and the stem's filters; ``shortcut`` is
    the model-wide option (block overrides stay); ``block_type`` swaps every
    conv block (bottleneck-only options dropped for basic types); ``l2`` is the
    L2 strength, and ``use_l2=False`` sets it to 0.

    Args:
        base_spec: Anything :func:`~keras_resnet.as_spec` accepts.
        values: ``{hyperparameter name: value}``, e.g. a trial's values.

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
        stem = stem and _dc_replace(stem, filters=scale(stem.filters))
    if "block_type" in v:
        if not any(b.type in CONV_BLOCKS for b in _entries(base)):
            C.fail("block_type", f"needs a base with {'/'.join(CONV_BLOCKS)} blocks; "
                   f"this one has {sorted({b.type for b in _entries(base)})}",
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


def _check_value(name: str, v: Any, allow_zero_l2: bool) -> Any:
    """One value of a hyperparameter, checked against ``_LIMITS`` and normalised."""
    limits = _LIMITS[name]
    if name == "augment":
        return C.check_bool(name, v)
    if isinstance(limits[0], str):
        return C.check_choice(name, v, limits)
    if name in _INT_HPS:
        v = int(v) if name == "depth" and isinstance(v, float) and v.is_integer() else v
        return C.check_int(name, v, minimum=limits[0], maximum=limits[1])
    v = C.check_float(name, v, minimum=limits[0], maximum=limits[1])
    if v == 0 and name != "l2":
        C.fail(name, "must be > 0", v)
    if v == 0 and not allow_zero_l2:
        C.fail(name, "is 0 (no weight decay), which is allowed only with "
               "allow_zero_l2=True", v)
    return v


def _setting(name: str, value: Any, allow_zero_l2: bool) -> dict | None:
    """A hyperparameter argument as ``{"kind": "fixed" | "choice" | "range", ...}``."""
    if value is False:
        return None
    if isinstance(value, Mapping):
        if isinstance(_LIMITS[name][0], (str, bool)):
            C.fail(name, "takes a value or a list of choices, not a range", value,
                   TypeError)
        C.check_keys(name, value, ("min", "max", "step", "sampling", "default"))
        if "min" not in value or "max" not in value:
            C.fail(name, "range needs 'min' and 'max'", dict(value))
        out = {"kind": "range", "step": None, "sampling": C.check_choice(
            f"{name}.sampling", value.get("sampling", "linear"), ("linear", "log"))}
        for key in ("min", "max", "default"):
            if value.get(key) is not None:
                out[key] = _check_value(name, value[key], allow_zero_l2)
        if out["min"] >= out["max"]:
            C.fail(name, "range needs min < max", dict(value))
        if out["sampling"] == "log" and out["min"] <= 0:
            C.fail(name, "log-uniform range needs min > 0; to allow l2=0 pass "
                   "allow_zero_l2=True (a use_l2 switch)", dict(value))
        if value.get("step") is not None:
            step = C.check_float(f"{name}.step", value["step"], minimum=0.0)
            out["step"] = (C.check_int(f"{name}.step", int(step) if step.is_integer()
                                       else step, minimum=1) if name in _INT_HPS else step)
        if not out["min"] <= out.get("default", out["min"]) <= out["max"]:
            C.fail(name, "default must lie in [min, max]", dict(value))
        return out
    if isinstance(value, (list, tuple)):
        values = [_check_value(name, v, allow_zero_l2) for v in value]
        if not values or len(set(values)) != len(values):
            C.fail(name, "choices must not be empty" if not values else
                   "choices must be distinct", list(value))
        return ({"kind": "choice", "values": values} if len(values) > 1
                else {"kind": "fixed", "value": values[0]})
    if isinstance(value, (str, bool, numbers.Real)):
        return {"kind": "fixed", "value": _check_value(name, value, allow_zero_l2)}
    C.fail(name, "must be None, True, False, a value, a list of choices or a "
           "{'min', 'max'} range", value, TypeError)


def _points(setting: dict | None) -> list:
    """Values worth checking for validity: every choice, or a range's ends."""
    if setting is None or setting["kind"] == "fixed":
        return [setting and setting["value"]]
    return list(setting.get("values") or (setting["min"], setting["max"]))


def _declare(hp: kt.HyperParameters, name: str, s: dict, default: Any) -> Any:
    if s["kind"] == "fixed":
        return hp.Fixed(name, s["value"])
    if name == "augment":
        return hp.Boolean(name, default=False)
    if s["kind"] == "choice":
        return hp.Choice(name, s["values"],
                         default=default if default in s["values"] else s["values"][0])
    dflt = s.get("default", default if s["min"] <= default <= s["max"] else None)
    kind = hp.Int if name in _INT_HPS else hp.Float
    return kind(name, s["min"], s["max"], step=s["step"], sampling=s["sampling"],
                default=dflt)


def as_data(x: Any, y: Any = None, validation_data: Any = None) -> Data:
    """A :class:`~keras_resnet.data.Data` from what a KerasTuner user passes to ``search``.

    Args:
        x: A ``Data``, a data source name (``"digits"``) or training inputs.
        y: Integer labels, with array ``x``.
        validation_data: ``(x_val, y_val)``, with array ``x``.

    Returns:
        The data (arrays: :meth:`Data.from_arrays <keras_resnet.data.Data.from_arrays>`).
    """
    x = load_data(x) if isinstance(x, str) else x
    if not isinstance(x, Data):
        return Data.from_arrays(x, y, validation_data)
    if y is not None or validation_data is not None:
        C.fail("y", "must be None when x is a Data object (it holds the labels and "
               "the validation split)", y, TypeError)
    return x


class ResNetHyperModel(kt.HyperModel):
    """A ``keras_tuner.HyperModel`` over a base spec and a training recipe.

    ``build(hp)`` seeds, builds :func:`spec_for`'s network and compiles it with
    the trial's recipe; ``fit`` trains it with :meth:`Recipe.fit
    <keras_resnet.training.recipe.Recipe.fit>`: the steps of ``kr.train``. It
    works with every stock KerasTuner tuner; :func:`~keras_resnet.tuning.tune`
    adds resume, several processes and trials side by side.

    Args:
        base: The base spec: a ``ModelSpec``, its dict, a spec file or a
            preset name. What the hyperparameters do not change is kept.
        recipe: The base training recipe (a ``Recipe`` or its dict; default
            ``Recipe()``); searched training hyperparameters replace its fields.
        depth, l2, width, shortcut, block_type, learning_rate, optimizer,
            batch_size, epochs, schedule, augment: See the module's table.
        allow_zero_l2: Allow ``l2 = 0``: a range gets a Boolean ``use_l2``.
        residual: False for the plain twin; None follows the base.
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
        self.allow_zero_l2 = C.check_bool("allow_zero_l2", allow_zero_l2)
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
        types = [b.type for b in _entries(self.base) if b.type in CONV_BLOCKS]
        own = max(set(types), key=types.count) if types else None
        true = dict(_TRUE, depth=default_depths(base_depth(self.base)),
                    shortcut=[s for s in SHORTCUTS if _valid(self.base, {"shortcut": s})],
                    block_type=own and [own, _TWIN[own]])
        given = dict(depth=depth, l2=l2, width=width, shortcut=shortcut,
                     block_type=block_type, learning_rate=learning_rate,
                     optimizer=optimizer, batch_size=batch_size, epochs=epochs,
                     schedule=schedule, augment=augment)
        self.settings: dict = {}
        for hp_name, value in given.items():
            value = hp_name in ("depth", "l2") if value is None else value
            if value is True and not true.get(hp_name):
                C.fail(hp_name, f"needs a base with {'/'.join(CONV_BLOCKS)} blocks"
                       if hp_name == "block_type" else
                       "has no default range: give a value or a list of choices", True,
                       ValueError if hp_name == "block_type" else TypeError)
            self.settings[hp_name] = _setting(hp_name, true[hp_name] if value is True
                                              else value, allow_zero_l2)
        l2s = self.settings["l2"]
        self.zero_switch = bool(allow_zero_l2 and l2s and l2s["kind"] == "range")
        _check_space(self.base, self.settings)

    def declare_values(self, hp: kt.HyperParameters) -> dict:
        """Declares the hyperparameters on ``hp`` and returns their active values."""
        values: dict = {}
        defaults = {"depth": base_depth(self.base), "l2": self.base.l2 or 1e-4,
                    "shortcut": self.base.shortcut, "width": 1.0}
        for hp_name, setting in self.settings.items():
            if setting is None:
                continue
            default = defaults.get(hp_name, getattr(self.recipe, hp_name, None))
            if hp_name == "l2" and self.zero_switch:
                values["use_l2"] = use = hp.Boolean("use_l2", default=True)
                with hp.conditional_scope("use_l2", [True]):
                    value = _declare(hp, "l2", setting, default)
                if use:
                    values["l2"] = value
            else:
                values[hp_name] = _declare(hp, hp_name, setting, default)
        return values

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        """Declares the search space without building a model (KerasTuner hook)."""
        self.declare_values(hp)

    def spec(self, values: Mapping) -> ModelSpec:
        """The spec for hyperparameter ``values`` (:func:`spec_for` on this base)."""
        return spec_for(self.base, values)

    def recipe_for(self, values: Mapping) -> Recipe:
        """The recipe for hyperparameter ``values``: the base recipe, changed.

        Hyperband's ``tuner/epochs`` sets ``epochs`` (a trial trains from
        scratch for its budget); a searched optimizer without a searched or
        fixed learning rate takes its usual rate (0.1 for SGD, else 1e-3).
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

        ``x`` is a ``Data``, a source name or training inputs (with ``y`` and
        ``validation_data``); ``epochs`` and ``batch_size`` come from the
        recipe, and other ``fit`` arguments a tuner passes are ignored.
        Returns the ``History``.
        """
        return self.fit_values(model, hp.values, as_data(x, y, validation_data),
                               callbacks=callbacks, verbose=verbose)

    def get_config(self) -> dict:
        """What defines the search: base spec, recipe, settings."""
        return {"base": self.base.to_dict(), "residual": self.residual,
                "recipe": self.recipe.to_dict(), "settings": self.settings,
                "allow_zero_l2": self.allow_zero_l2}

    def describe(self, values: Mapping) -> dict:
        """Effective values of a trial: depth, blocks, l2 and every searched one."""
        spec, recipe = self.spec(values), self.recipe_for(values).to_dict()
        out = {"depth": base_depth(spec),
               "blocks": "-".join(str(b.repeat) for b in _entries(spec)), "l2": spec.l2}
        for hp_name in HP_NAMES[3:]:
            if self.settings[hp_name] is not None or (
                    hp_name == "epochs" and "tuner/epochs" in values):
                out[hp_name] = recipe.get(hp_name, values.get(hp_name))
        return out


def _check_space(base: ModelSpec, settings: dict) -> None:
    """Every discrete combination (and each range's ends) gives a valid spec."""
    combos: list = [{}]
    for name in ("depth", "width", "shortcut", "block_type"):
        combos = [{**c, name: v} for c in combos for v in _points(settings[name])]
        if len(combos) > 2000:
            return  # too many to check up front; build() reports a bad one clearly
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


def _as_recipe(recipe: Recipe | Mapping | None) -> Recipe:
    """A ``Recipe`` from None (the default), a ``Recipe`` or its dict."""
    if recipe is None or isinstance(recipe, Recipe):
        return recipe or Recipe()
    if isinstance(recipe, Mapping):
        return Recipe.from_dict(dict(recipe))
    C.fail("recipe", "must be a keras_resnet Recipe or its dict", recipe, TypeError)
