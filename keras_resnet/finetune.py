"""Fine-tuning as Keras' transfer-learning guide does it: freeze stages, new head.

The guide's recipe: take a pretrained network, freeze it (``trainable =
False``; a frozen ``BatchNormalization`` then runs in inference mode, with its
moving statistics, even in training), put a new classifier on top, train that,
then optionally unfreeze some or all layers and train on with a small learning
rate. Here stages have names, so freezing part of a network is one call:
``"stem"``, ``"stage1"``, ``"stage2"``... (one per entry of ``spec.blocks``,
the prefix of their layer names) and ``"head"`` (the final normalisation, the
pooling and the classifier).

Example:

```python
import keras_resnet as kr

base = kr.build_resnet("cifar_resnet20")            # e.g. trained on other classes
model = kr.replace_head(base, classes=5)             # same body, new 5-way classifier
kr.freeze(model, up_to="stage2")                     # stem, stage1, stage2 frozen
[layer.name for layer in model.layers if not layer.trainable][:2]   # ['stem_conv', 'stem_bn']
```
"""

from __future__ import annotations

from typing import Any

import keras

from keras_resnet import _checks as C
from keras_resnet import presets
from keras_resnet.builders import UNSET, _Unset, as_spec, build, image_data_format
from keras_resnet.plan import make_plan

#: Layers of the head (built by the builder after the last block).
HEAD_LAYERS = ("post_bn", "post_act", "avg_pool", "max_pool", "predictions")


def _holder(model: Any) -> Any:
    holder = presets.spec_holder(model)
    if holder is None:
        raise TypeError(f"model {getattr(model, 'name', model)!r} was not built by "
                        "keras_resnet (no spec found): its stages are unknown")
    return holder


def _plan(model_or_spec: Any) -> Any:
    if isinstance(model_or_spec, keras.Model):
        holder = _holder(model_or_spec)
        return make_plan(holder._resnet_spec, getattr(holder, "_resnet_data_format", None))
    return make_plan(as_spec(model_or_spec))


def stage_names(model_or_spec: Any) -> list:
    """The stage names of a network, input to output.

    Args:
        model_or_spec: A model built by keras_resnet, or a spec / preset name.

    Returns:
        ``["stem", "stage1", ..., "head"]`` (``"stem"`` only with a stem).

    Example:

    ```python
    kr.stage_names("resnet50")   # ['stem', 'stage1', 'stage2', 'stage3', 'stage4', 'head']
    ```
    """
    return _plan(model_or_spec).stages() + ["head"]


def _stage_of(layer_name: str, stages: list) -> str | None:
    if layer_name in HEAD_LAYERS:
        return "head"
    prefix = layer_name.split("_", 1)[0]
    return prefix if prefix in stages else None


def _selected(model: Any, stages: Any, up_to: Any) -> set:
    names = stage_names(model)
    if stages is not None and up_to is not None:
        raise ValueError("give stages or up_to, not both. Received: "
                         f"stages={stages!r}, up_to={up_to!r}")
    if up_to is not None:
        C.check_choice("up_to", up_to, names)
        return set(names[: names.index(up_to) + 1])
    if stages is None:
        return set(names) - {"head"}
    chosen = [stages] if isinstance(stages, str) else stages
    if not isinstance(chosen, (list, tuple, set)):
        C.fail("stages", "must be a stage name or a list of them", stages, TypeError)
    for stage in chosen:
        C.check_choice("stages", stage, names)
    return set(chosen)


def _set_trainable(model: Any, chosen: set, trainable: bool) -> Any:
    holder = _holder(model)
    names = stage_names(holder)
    for layer in holder.layers:
        if _stage_of(layer.name, names) in chosen:
            layer.trainable = trainable
    return model


def freeze(model: keras.Model, stages: Any = None, *, up_to: str | None = None) -> keras.Model:
    """Freezes the layers of some stages (``layer.trainable = False``).

    Frozen ``BatchNormalization`` layers run in inference mode, with their
    moving statistics, even when the model trains (Keras 3's rule), as the
    transfer-learning guide wants. Compile the model after freezing
    (``kr.train`` compiles it).

    Args:
        model: A model built by keras_resnet (or one containing one).
        stages: A stage name or a list of them (see :func:`stage_names`); None
            with ``up_to`` None freezes every stage but ``"head"``.
        up_to: Freeze every stage from the input up to and including this one.

    Returns:
        ``model``.

    Example:

    ```python
    kr.freeze(model)                          # everything but the head
    kr.freeze(model, ["stem", "stage1"])
    kr.freeze(model, up_to="stage3")
    ```
    """
    return _set_trainable(model, _selected(model, stages, up_to), False)


def unfreeze(model: keras.Model, stages: Any = None, *, up_to: str | None = None) -> keras.Model:
    """Makes the layers of some stages trainable again (the inverse of :func:`freeze`).

    Args:
        model: A model built by keras_resnet (or one containing one).
        stages: A stage name or a list of them; None with ``up_to`` None
            unfreezes every stage, the head included.
        up_to: Unfreeze every stage from the input up to and including this one.

    Returns:
        ``model``.

    Example:

    ```python
    kr.unfreeze(model, ["stage3", "stage4"])   # fine-tune the deepest stages
    ```
    """
    chosen = set(stage_names(model)) if stages is None and up_to is None else _selected(
        model, stages, up_to)
    return _set_trainable(model, chosen, True)


def replace_head(model: keras.Model, classes: int, *,
                 classifier_activation: Any = UNSET, name: Any = UNSET) -> keras.Model:
    """A copy of a model with a new classifier for other classes.

    The body (stem, blocks, final normalisation) keeps its weights and
    ``trainable`` flags; the classifier is new (``Dense(classes)`` after global
    average pooling). The new model's spec is the old one with
    ``include_top=True`` and the new ``classes``, so ``kr.spec_of`` describes
    it and the recorded preprocessing travels with it.

    Args:
        model: A model built by keras_resnet (with or without a classifier).
        classes: Number of classes of the new classifier.
        classifier_activation: Activation of the new classifier; default the
            spec's (``"softmax"`` unless it said otherwise).
        name: Name of the new model; default the spec's.

    Returns:
        A new model (the given one is unchanged).

    Example:

    ```python
    model = kr.replace_head(pretrained, classes=5)
    ```
    """
    holder = _holder(model)
    C.check_int("classes", classes, minimum=1, maximum=1 << 24)
    spec = holder._resnet_spec
    changes: dict = {"include_top": True, "classes": classes, "pooling": None}
    if not isinstance(classifier_activation, _Unset):
        changes["classifier_activation"] = classifier_activation
    if not isinstance(name, _Unset):
        changes["name"] = name
    with image_data_format(getattr(holder, "_resnet_data_format", None)):
        new = build(spec.replace(**changes))
    for layer in new.layers:
        if not layer.weights or layer.name == "predictions":
            continue
        old = holder.get_layer(layer.name)
        layer.set_weights(old.get_weights())
        layer.trainable = old.trainable
    return new
