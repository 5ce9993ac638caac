"""The search space: hyperparameters, :func:`spec_for` and the KerasTuner HyperModel.

A trial is :func:`spec_for` + :func:`recipe_for`, trained by
``kr.train``, so the winner trained again with ``kr.train`` scores the same. The space
is a ``keras_tuner.HyperParameters`` (names: :data:`~keras_resnet.tuning.HP_NAMES`;
their meaning and default ranges: the Tuning page's table). Keyword shortcuts declare
into it: None (the default), True (the default range), False (not searched), a value
(``hp.Fixed``), a list (``hp.Choice``) or, for numbers, a dict ``{"min", "max", "step",
"sampling", "default"}`` (``hp.Int``/``hp.Float``); ``augment``'s True and False are
values, as in ``kr.tune``. Only the declared ones are searched (KerasTuner's
``tune_new_entries=False``).
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import keras_tuner as kt

from keras_resnet import _checks as C
from keras_resnet import presets
from keras_resnet.builders import as_spec, build
from keras_resnet.data import Data, as_data
from keras_resnet.spec import MAX_REPEAT, SHORTCUTS, ModelSpec
from keras_resnet.training import Recipe, train
from keras_resnet.tuning import HP_NAMES, RECIPE_HPS

CONV_BLOCKS = tuple(presets.CONV_TWINS)
_INT_HPS = ("depth", "batch_size", "epochs")
_NUMBER_HPS = (*_INT_HPS, "l2", "width", "drop_path_rate", "learning_rate")
#: What True means, where it does not depend on the base.
_TRUE = {"l2": {"min": 1e-6, "max": 1e-2, "sampling": "log"}, "width": [0.5, 1.0, 2.0],
         "drop_path_rate": {"min": 0.0, "max": 0.2, "sampling": "linear"},
         "optimizer": ["sgd", "adam"], "batch_size": [32, 64, 128],
         "learning_rate": {"min": 1e-4, "max": 0.1, "sampling": "log"},
         "schedule": ["step", "cosine"]}


def base_depth(spec: Any) -> int:
    """The ``depth`` of a spec (``keras_resnet.presets.depth_of``): 3 for
    ``cifar_resnet20``, 6 for ``resnet50``."""
    return presets.depth_of(as_spec(spec))


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


def spec_for(base_spec: Any, values: Mapping) -> ModelSpec:
    """Applies hyperparameter values to a base spec (the one place that does).

    Absent keys keep the base's value; training hyperparameters and
    KerasTuner's ``tuner/...`` entries are ignored; unknown keys are an error.
    ``depth``, ``width`` and ``block_type`` are ``keras_resnet.presets``'
    ``with_depth``, ``with_width`` and ``with_block_type``; ``shortcut`` is the
    model-wide option (block overrides stay); ``l2`` and ``drop_path_rate``
    set the spec's field, and ``use_l2=False`` sets ``l2`` to 0.

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
    spec = as_spec(base_spec)
    if not isinstance(values, Mapping):
        C.fail("values", "must be a dict of hyperparameter values", values, TypeError)
    C.check_keys("values", {k: v for k, v in values.items()
                            if not (isinstance(k, str) and k.startswith("tuner/"))}, HP_NAMES)
    v = {k: _normal(k, values[k]) for k in HP_NAMES[:7]
         if values.get(k) is not None and k != "use_l2"}
    for name, edit in (("depth", presets.with_depth), ("width", presets.with_width),
                       ("block_type", presets.with_block_type)):
        spec = edit(spec, v[name]) if name in v else spec
    changes = {k: v[k] for k in ("shortcut", "l2", "drop_path_rate") if k in v}
    if "use_l2" in values and not C.check_bool("use_l2", values["use_l2"]):
        changes["l2"] = 0.0
    return spec.replace(**changes) if changes else spec


def recipe_for(recipe: Recipe, values: Mapping) -> Recipe:
    """Applies hyperparameter values to a recipe (the one place that does).

    Hyperband's ``tuner/epochs`` sets ``epochs`` (a trial trains from scratch for its
    budget), and ``warmup_epochs`` shrinks to fit; an ``optimizer`` without a
    ``learning_rate`` takes its usual rate (0.1 for SGD, else 1e-3).

    Args:
        recipe: The base :class:`~keras_resnet.Recipe`.
        values: ``{hyperparameter name: value}``; names that are not recipe fields
            are ignored.

    Returns:
        The changed (validated) ``Recipe``.

    Example:

    ```python
    kr.tuning.recipe_for(kr.Recipe(), {"optimizer": "adam", "depth": 5})  # lr 1e-3
    ```
    """
    changes = {k: values[k] for k in RECIPE_HPS if values.get(k) is not None}
    if values.get("tuner/epochs") is not None:
        changes["epochs"] = int(values["tuner/epochs"])
    if "epochs" in changes and isinstance(changes["epochs"], numbers.Real):
        changes["warmup_epochs"] = min(recipe.warmup_epochs, changes["epochs"])
    return recipe.replace(**changes) if changes else recipe


def check_value(name: str, v: Any, base: ModelSpec, recipe: Recipe,
                allow_zero_l2: bool) -> Any:
    """One value of a hyperparameter, normalised and checked by the spec or recipe it
    changes."""
    if name in ("augment", "use_l2"):
        return C.check_bool(name, v)
    v = _normal(name, v)
    if v == 0 and (name == "learning_rate" or name == "l2" and not allow_zero_l2):
        C.fail(name, "must be > 0" if name == "learning_rate" else "is 0 (no weight decay), "
               "which is allowed only with allow_zero_l2=True", v)
    if name in RECIPE_HPS:
        recipe_for(recipe, {name: v})
    else:
        spec_for(base, {name: v})
    return v


def _normal(name: str, v: Any) -> Any:
    """A number as its hyperparameter's type: a whole number of an integer one as ``int``
    (3.0, ``np.int64(3)``), a float one's as ``float``; anything else as it is."""
    if isinstance(v, numbers.Real) and not isinstance(v, bool) and name in _NUMBER_HPS:
        return (int(float(v)) if float(v).is_integer() else v) if name in _INT_HPS else float(v)
    return v


def declare(hp: kt.HyperParameters, name: str, value: Any, default: Any, base: ModelSpec,
            recipe: Recipe, allow_zero_l2: bool = False) -> None:
    """Declares one hyperparameter from a keyword shortcut (see the module's docstring);
    ``default`` is the choice's or range's default where it is one of its values."""
    def check(v: Any) -> Any:
        return check_value(name, v, base, recipe, allow_zero_l2)

    if value is False:
        return
    if isinstance(value, (list, tuple)):
        values = [check(v) for v in value]
        if not values or len(set(values)) != len(values):
            C.fail(name, "choices must not be empty" if not values else
                   "choices must be distinct", list(value))
        if len(values) == 1:
            hp.Fixed(name, values[0])
        elif name == "augment":
            hp.Boolean(name, default=False)
        else:
            hp.Choice(name, values, default=default if default in values else values[0])
        return
    if isinstance(value, (str, bool, numbers.Real)):
        hp.Fixed(name, check(value))
        return
    if not isinstance(value, Mapping) or name not in _NUMBER_HPS:
        C.fail(name, "takes a value or a list of choices, not a range" if isinstance(
            value, Mapping) else "must be None, True, False, a value, a list of choices "
            "or a {'min', 'max'} range", value, TypeError)
    C.check_keys(name, value, ("min", "max", "step", "sampling", "default"))
    if "min" not in value or "max" not in value:
        C.fail(name, "range needs 'min' and 'max'", dict(value))
    lo, hi = check(value["min"]), check(value["max"])
    sampling = C.check_choice(f"{name}.sampling", value.get("sampling", "linear"),
                              ("linear", "log"))
    if lo >= hi or (sampling == "log" and lo <= 0):
        C.fail(name, "range needs min < max" if lo >= hi else "log-uniform range needs "
               "min > 0; to allow l2=0 pass allow_zero_l2=True (a use_l2 switch)",
               dict(value))
    step = value.get("step")
    if step is not None:
        step = C.check_float(f"{name}.step", step, minimum=0.0)
        step = C.check_int(f"{name}.step", int(step), minimum=1) if name in _INT_HPS else step
    default = value.get("default", default if lo <= default <= hi else None)
    if default is not None and not lo <= check(default) <= hi:
        C.fail(name, "default must lie in [min, max]", dict(value))
    kind = hp.Int if name in _INT_HPS else hp.Float
    with hp.conditional_scope("use_l2", [True]) if name == "l2" and allow_zero_l2 \
            else contextlib.nullcontext():
        kind(name, lo, hi, step=step, sampling=sampling, default=default)


def points(h: Any) -> list:
    """Values of a declared hyperparameter worth checking: every choice, a range's ends."""
    if hasattr(h, "min_value"):  # Int, Float
        return [h.min_value, h.max_value]
    return list(h.values) if hasattr(h, "values") else [h.value] if hasattr(
        h, "value") else [False, True]  # Choice, Fixed, Boolean


class ResNetHyperModel(kt.HyperModel):
    """A ``keras_tuner.HyperModel`` over a base spec and a training recipe.

    ``build(hp)`` seeds, builds :func:`spec_for`'s network and compiles it with the trial's
    recipe; ``fit`` trains it with :meth:`Recipe.fit <keras_resnet.Recipe.fit>` (the steps
    of ``kr.train``). It works with every stock KerasTuner tuner;
    :func:`~keras_resnet.tuning.tune` adds resume, several processes and trials side by side.

    Args:
        model: The base spec: a ``ModelSpec``, its dict, a spec file or a
            preset name. What the hyperparameters do not change is kept.
        recipe: The base training recipe (a ``Recipe`` or its dict; default
            ``Recipe()``); searched training hyperparameters replace its fields.
        hyperparameters: A ``keras_tuner.HyperParameters`` with the space (names
            from the Tuning page's table); the keyword shortcuts declare into it.
        depth: Blocks in the deepest stage (each shortcut takes None, True, False,
            a value, a list or a range dict: see the Tuning page's table).
        l2: L2 strength.
        width: Filter multiplier.
        shortcut: Shortcut option.
        block_type: Conv block type.
        drop_path_rate: Stochastic depth's largest rate.
        learning_rate: The recipe's learning rate.
        optimizer: The recipe's optimizer.
        batch_size: The recipe's batch size.
        epochs: The recipe's epochs.
        schedule: The recipe's schedule.
        augment: The recipe's augmentation: True or False sets it (as ``kr.tune``'s
            ``augment=``), ``[False, True]`` searches it.
        allow_zero_l2: Allow ``l2 = 0``: a range gets a Boolean ``use_l2``.
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
        model: Any,
        *,
        recipe: Recipe | Mapping | None = None,
        hyperparameters: kt.HyperParameters | None = None,
        depth: Any = None, l2: Any = None, width: Any = None, shortcut: Any = None,
        block_type: Any = None, drop_path_rate: Any = None, learning_rate: Any = None,
        optimizer: Any = None, batch_size: Any = None, epochs: Any = None,
        schedule: Any = None, augment: Any = None,
        allow_zero_l2: bool = False,
        input_shape: Sequence | None = None,
        classes: int | None = None,
        name: str | None = None,
        **removed: Any,
    ) -> None:
        if removed:  # 0.2's residual= gets the message kr.train's and kr.build's give
            raise C.InvalidInputType(
                "ResNetHyperModel(residual=...) was removed in 0.3: plain or residual is the "
                "spec's field; pass spec.replace(residual=False)" if "residual" in removed
                else f"ResNetHyperModel() got unexpected arguments: {sorted(removed)}")
        super().__init__(name=name)
        self.allow_zero_l2 = C.check_bool("allow_zero_l2", allow_zero_l2)
        self.recipe = Recipe.of(recipe)
        self.base = as_spec(model).replace(**{k: v for k, v in (
            ("input_shape", input_shape), ("classes", classes)) if v is not None})
        self.hyperparameters = make_space(self.base, self.recipe, hyperparameters, dict(
            depth=depth, l2=l2, width=width, shortcut=shortcut, block_type=block_type,
            drop_path_rate=drop_path_rate, learning_rate=learning_rate, optimizer=optimizer,
            batch_size=batch_size, epochs=epochs, schedule=schedule, augment=augment),
            self.allow_zero_l2)

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        """Declares the space on ``hp`` (KerasTuner hook), keeping the values it holds."""
        hp.merge(self.hyperparameters, overwrite=False)

    def spec(self, values: Mapping) -> ModelSpec:
        """The spec for hyperparameter ``values`` (:func:`spec_for` on this base)."""
        return spec_for(self.base, values)

    def recipe_for(self, values: Mapping) -> Recipe:
        """The recipe for hyperparameter ``values`` (:func:`recipe_for` on this base)."""
        return recipe_for(self.recipe, values)

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        """Seeds, builds and compiles the network for the values in ``hp``."""
        self.declare_hyperparameters(hp)
        values = {h.name: hp.get(h.name) for h in hp.space if hp.is_active(h)}
        recipe = self.recipe_for(values)
        if recipe.seed is not None:
            keras.utils.set_random_seed(recipe.seed)
        return recipe.compile(build(self.spec(values)))

    def fit(self, hp: kt.HyperParameters, model: keras.Model, x: Any = None,
            y: Any = None, validation_data: Any = None, callbacks: Sequence = (),
            verbose: Any = "auto", **kwargs: Any) -> Any:
        """Trains ``model`` with the trial's recipe (KerasTuner calls this); returns the
        ``History``. ``x`` is a ``Data``, a source name or training inputs (with ``y`` and
        ``validation_data``); ``epochs`` and ``batch_size`` come from the recipe, other
        ``fit`` arguments a tuner passes are ignored."""
        return self.recipe_for(hp.values).fit(model, as_data(x, y, validation_data),
                                              callbacks=callbacks, verbose=verbose)

    def train_trial(self, values: Mapping, data: Data, out_dir: str | None) -> dict:
        """Trains one trial as ``kr.train`` does (its run folder is ``out_dir``, so a
        killed trial resumes from its last epoch); returns its history."""
        return train(self.spec(values), data, recipe=self.recipe_for(values),
                     out_dir=out_dir, verbose=0).history

    def get_config(self) -> dict:
        """What defines the search: base spec, recipe, space."""
        return {"base": self.base.to_dict(), "recipe": self.recipe.to_dict(),
                "hyperparameters": self.hyperparameters.get_config(),
                "allow_zero_l2": self.allow_zero_l2}

    def describe(self, values: Mapping) -> dict:
        """Effective values of a trial: depth, blocks, l2 and every searched one."""
        spec, recipe = self.spec(values), self.recipe_for(values).to_dict()
        out = {"depth": base_depth(spec),
               "blocks": "-".join(str(b.repeat) for b in spec.blocks if b.type != "pool"),
               "l2": spec.l2}
        declared = {h.name for h in self.hyperparameters.space}
        for name in HP_NAMES[3:]:
            if name in declared or (name == "epochs" and "tuner/epochs" in values):
                out[name] = recipe.get(name, values.get(name))
        return out


def make_space(base: ModelSpec, recipe: Recipe, given: kt.HyperParameters | None,
               shortcuts: dict, allow_zero_l2: bool) -> kt.HyperParameters:
    """The search space: ``given`` plus what the keyword shortcuts declare, each value
    checked by the spec or recipe it changes, one at a time (no pair of values valid alone
    makes an invalid network of a preset; a trial whose combination the spec refuses fails
    with the spec's message)."""
    if given is not None and not isinstance(given, kt.HyperParameters):
        C.fail("hyperparameters", "must be a keras_tuner.HyperParameters", given, TypeError)
    hp = kt.HyperParameters()
    if given is not None:
        hp.merge(given)
    types = [b.type for b in base.blocks if b.type in CONV_BLOCKS]
    own = max(set(types), key=types.count) if types else None
    true = dict(_TRUE, depth=default_depths(base_depth(base)),
                shortcut=[s for s in SHORTCUTS if not _invalid(base, {"shortcut": s})],
                block_type=own and [own, presets.CONV_TWINS[own]])
    defaults = {"depth": base_depth(base), "l2": base.l2 or 1e-4, "shortcut": base.shortcut,
                "width": 1.0, "drop_path_rate": base.drop_path_rate, **recipe.to_dict()}
    declared = {h.name for h in hp.space}
    for name, value in shortcuts.items():
        if value is None and (name not in ("depth", "l2") or name in declared):
            continue
        value = True if value is None else value
        if name in declared:
            C.fail(name, "is declared in hyperparameters= already; give it once", value)
        if name == "augment" and isinstance(value, bool):
            value = [value]  # a value (hp.Fixed): on or off, as tune()'s augment=
        if value is True and not true.get(name):
            C.fail(name, f"needs a base with {'/'.join(CONV_BLOCKS)} blocks"
                   if name == "block_type" else
                   "has no default range: give a value or a list of choices", True,
                   ValueError if name == "block_type" else TypeError)
        value = true[name] if value is True else value
        if name == "l2" and allow_zero_l2 and isinstance(value, Mapping):
            hp.Boolean("use_l2", default=True)
        declare(hp, name, value, defaults.get(name), base, recipe, allow_zero_l2)
    C.check_keys("hyperparameters", {h.name: 0 for h in hp.space}, HP_NAMES)
    for h in given.space if given is not None else ():  # the shortcuts' are checked in declare
        for v in points(h):  # every choice and each range's end, by the spec or the recipe
            check_value(h.name, v, base, recipe, allow_zero_l2)
    return hp


def _invalid(base: ModelSpec, values: dict) -> Exception | None:
    """The error :func:`spec_for` raises for ``values``, or None."""
    try:
        spec_for(base, values)
    except (ValueError, TypeError) as e:
        return e
    return None
