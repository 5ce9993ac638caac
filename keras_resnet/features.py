"""Feature pyramids: a network's stage outputs by level, for detection and segmentation.

As keras-hub's backbones (``backbone.pyramid_outputs``) and timm's
``features_only`` give them: :func:`feature_model` returns a ``keras.Model``
whose output is a dict ``{level: feature map}``. A level is named after the
total stride of its feature map, ``"P{k}"`` for stride ``2**k`` (keras-hub's
convention): the ImageNet ResNets have ``"P2"`` (stride 4) to ``"P5"``
(stride 32), the CIFAR nets ``"P0"`` to ``"P2"``. Each level is the output of
the last block at that stride; the levels come from the shape walk
(:meth:`keras_resnet.Plan.levels`), so they exist for any spec, plain twins
and ``"channels_first"`` included.

Example:

```python
import keras_resnet as kr

features = kr.feature_model("resnet50", levels=["P3", "P4", "P5"])
{k: tuple(v.shape) for k, v in features.output.items()}
# {'P3': (None, 28, 28, 512), 'P4': (None, 14, 14, 1024), 'P5': (None, 7, 7, 2048)}
```
"""

from __future__ import annotations

from typing import Any

import keras

from keras_resnet import _checks as C
from keras_resnet import presets
from keras_resnet.builders import as_spec, build_trunk, deep_recursion, image_data_format
from keras_resnet.plan import Plan, make_plan
from keras_resnet.spec import ModelSpec


def _levels_text(available: dict) -> str:
    return ", ".join(f"{name!r} (stride {lv.stride}, "
                     f"{'x'.join('?' if d is None else str(d) for d in lv.shape)})"
                     for name, lv in available.items())


def check_levels(levels: Any, plan: Plan) -> list:
    """Validates the levels asked for against a plan's.

    Args:
        levels: None (all), a level name, or a list of names.
        plan: The network's :class:`~keras_resnet.Plan`.

    Returns:
        The names, shallowest first.

    Raises:
        ValueError: a level the network does not have; the message lists the
            valid ones with their strides and shapes.
    """
    available = plan.levels()
    if not available:
        raise ValueError("feature pyramids need a network on images; this one takes "
                         f"{plan.input_shape} vectors. Received: levels={levels!r}")
    if levels is None:
        return list(available)
    names = [levels] if isinstance(levels, str) else levels
    if not isinstance(names, (list, tuple)) or not names:
        C.fail("levels", f"must be a level name or a non-empty list of them; this "
               f"network's levels: {_levels_text(available)}", levels,
               TypeError if not isinstance(names, (list, tuple)) else ValueError)
    for name in names:
        if name not in available:
            raise ValueError(
                f"levels: {name!r} is not a level of this network"
                f"{C.close_matches(str(name), available)}. Its levels: "
                f"{_levels_text(available)}. Received: levels={levels!r}")
    if len(set(names)) != len(names):
        C.fail("levels", "must not repeat a level", list(names))
    return sorted(names, key=lambda n: available[n].stride)


@keras.saving.register_keras_serializable(package="keras_resnet")
class ResNetFeatures(keras.Model):
    """A functional model from images to a dict of feature maps by level.

    Built from a spec (its stem and blocks; the head is not built); its config
    is the spec, the levels and the image data format, so a ``.keras`` file
    reloads with ``keras.models.load_model`` after ``import keras_resnet``.
    Prefer :func:`feature_model`, which also takes the weights of a model.

    Args:
        spec: The spec (anything :func:`~keras_resnet.as_spec` accepts).
        levels: The levels to output (None: all).
        **kwargs: ``keras.Model`` arguments (``name``, ``trainable``).
    """

    def __init__(self, spec: Any, levels: Any = None, **kwargs: Any) -> None:
        spec = as_spec(spec).replace(include_top=False, pooling=None)
        self._resnet_data_format = keras.config.image_data_format()
        plan = make_plan(spec, self._resnet_data_format)
        names = check_levels(levels, plan)
        available = plan.levels()
        name = kwargs.pop("name", None) or f"{spec.name or 'resnet'}_features"
        inputs = keras.Input(shape=spec.input_shape, name="input")
        with deep_recursion():
            _, features = build_trunk(inputs, spec, plan)
            outputs = {n: features[available[n].step] for n in names}
            super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self._resnet_spec = spec
        self._resnet_levels = names

    @property
    def spec(self) -> ModelSpec:
        """The (headless) spec of the network."""
        return self._resnet_spec

    @property
    def levels(self) -> list:
        """The level names output, shallowest first."""
        return list(self._resnet_levels)

    def get_config(self) -> dict:
        return {"spec": self._resnet_spec.to_dict(), "levels": list(self._resnet_levels),
                "data_format": self._resnet_data_format, "name": self.name,
                "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict, custom_objects: Any = None) -> ResNetFeatures:
        config = dict(config)
        with image_data_format(config.pop("data_format", None)):
            return cls(ModelSpec.from_dict(config.pop("spec")), **config)


def feature_model(model_or_spec: Any, levels: Any = None, *,
                  name: str | None = None) -> ResNetFeatures:
    """A model that outputs a network's feature maps by pyramid level.

    Args:
        model_or_spec: A model built by keras_resnet (its weights are copied,
            layer by layer, into the new model; a reloaded ``.keras`` model
            works too), or a spec, preset name or spec file (fresh weights).
        levels: Level names to output, e.g. ``["P3", "P4", "P5"]``; None for
            every level (:meth:`keras_resnet.Plan.levels` lists them).
        name: Model name (default ``"<spec name>_features"``).

    Returns:
        A :class:`ResNetFeatures`: ``model(images)`` is a dict ``{level:
        feature map}``; ``kr.spec_of`` gives its spec (headless), so the
        recorded preprocessing travels.

    Raises:
        ValueError: an unknown level (the message lists the valid ones), or a
            network without spatial feature maps.

    Example:

    ```python
    model = kr.build_resnet("resnet50", weights="imagenet")
    pyramid = kr.feature_model(model, levels=["P3", "P4", "P5"])
    maps = pyramid(images)        # {"P3": (n, 28, 28, 512), "P4": ..., "P5": ...}
    ```
    """
    source = None
    data_format = None
    if isinstance(model_or_spec, keras.Model):
        source = presets.spec_holder(model_or_spec)
        if source is None:
            raise TypeError(f"model {model_or_spec.name!r} was not built by keras_resnet "
                            "(no spec found); pass a spec or a preset name")
        spec = source._resnet_spec
        data_format = getattr(source, "_resnet_data_format", None)
    else:
        spec = as_spec(model_or_spec)
    kwargs = {"name": name} if name is not None else {}
    with image_data_format(data_format):
        features = ResNetFeatures(spec, levels, **kwargs)
    if source is not None:
        for layer in features.layers:
            if layer.weights:
                layer.set_weights(source.get_layer(layer.name).get_weights())
                layer.trainable = source.get_layer(layer.name).trainable
    return features
