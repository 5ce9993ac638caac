"""Human-readable reports about a model or spec (the ``summary`` command)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from keras_resnet import presets
from keras_resnet._table import text_table
from keras_resnet.builders import as_spec, build, spec_of
from keras_resnet.flops import flops, layer_flops
from keras_resnet.plan import make_plan


def trainable_params(model: Any, prefix: str | None = None) -> int:
    """Trainable parameters of a model (or of its layers named ``prefix*``).

    ``model.count_params()`` also counts BatchNormalization's moving statistics;
    papers and torchvision count trainable parameters only, as this does.
    """
    total = 0
    for layer in model.layers:
        if prefix is not None and not layer.name.startswith(prefix):
            continue
        total += sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    return total


def _shortcuts(kinds: list) -> str:
    counts = Counter(kinds)
    return ", ".join(f"{k}\u00d7{n}" if n > 1 else k for k, n in counts.items())


def stage_rows(model_or_spec: Any) -> list:
    """Per-stage rows: stage, type, blocks, output shape, shortcuts, parameters, FLOPs.

    Args:
        model_or_spec: A model built by this package, or anything
            :func:`~keras_resnet.builders.as_spec` accepts (then the network
            the spec describes is built, plain or residual as
            ``spec.residual`` says).

    Returns:
        A list of dicts, one per stem/stage/head, with the keys ``stage``,
        ``type``, ``blocks``, ``output_shape``, ``shortcuts``, ``params`` and
        ``flops`` (multiply-adds, None when the input size is not fixed).
    """
    if hasattr(model_or_spec, "layers"):
        model = model_or_spec
        spec = spec_of(model)
    else:
        spec = as_spec(model_or_spec)
        model = build(spec)
    residual = spec.residual
    plan = make_plan(spec)
    try:
        macs = layer_flops(model)
    except ValueError:  # input size not fixed
        macs = None

    def cost(*prefixes: str) -> int | None:
        if macs is None:
            return None
        return sum(v for k, v in macs.items() if k.startswith(prefixes))

    rows = []
    if spec.stem is not None:
        rows.append(dict(stage="stem", type=spec.stem.type, blocks=0,
                         output_shape=plan.stem_shape, shortcuts="",
                         params=trainable_params(model, "stem_"), flops=cost("stem_")))
    for i, entry in enumerate(spec.blocks):
        steps = [s for s in plan.steps if s.index == i]
        kinds = [s.shortcut for s in steps]
        rows.append(dict(stage=f"stage{i + 1}", type=entry.type,
                         blocks=0 if entry.type == "pool" else len(steps),
                         output_shape=steps[-1].out_shape,
                         shortcuts="" if entry.type == "pool" else (
                             _shortcuts(kinds) if residual else "- (plain)"),
                         params=trainable_params(model, f"stage{i + 1}_"),
                         flops=cost(f"stage{i + 1}_")))
    head = sum(trainable_params(model, p) for p in ("post_", "predictions"))
    rows.append(dict(stage="head", type="classifier" if spec.include_top else
                     (spec.pooling or "features"), blocks=0,
                     output_shape=tuple(model.output.shape[1:]), shortcuts="",
                     params=head, flops=cost("post_", "predictions")))
    return rows


def stage_table(model_or_spec: Any) -> str:
    """A per-stage table of a network: output shape, shortcuts, parameters, FLOPs.

    What ``keras-resnet summary`` prints: one row per stem, stage and head
    (:func:`stage_rows`), then a line with the trainable parameters and the
    multiply-adds of one image.

    Args:
        model_or_spec: A model built by this package, or anything
            :func:`~keras_resnet.as_spec` accepts.

    Returns:
        The table as text.

    Example:

    ```python
    print(kr.stage_table("cifar_resnet20"))
    ```
    """
    rows = stage_rows(model_or_spec)
    model = model_or_spec if hasattr(model_or_spec, "layers") else None
    header = ("stage", "type", "blocks", "output shape", "shortcuts", "params", "MFLOPs")
    table = [
        (r["stage"], r["type"], str(r["blocks"] or ""),
         "x".join("?" if d is None else str(d) for d in r["output_shape"]),
         r["shortcuts"], f"{r['params']:,}",
         "?" if r["flops"] is None else f"{r['flops'] / 1e6:,.1f}")
        for r in rows
    ]
    lines = [text_table(header, table, right=[5, 6])]
    total = sum(r["params"] for r in rows)
    name = model.name if model is not None else as_spec(model_or_spec).name
    line = f"{name or 'model'}: {total:,} trainable parameters"
    if all(r["flops"] is not None for r in rows):
        line += f", {sum(r['flops'] for r in rows) / 1e9:.3f} GFLOPs (multiply-adds)"
    lines.append(line)
    return "\n".join(lines)


def presets_markdown(names: list | None = None) -> str:
    """A Markdown table of presets: input, parameters, GFLOPs, description.

    Args:
        names: Presets to list (default: all).

    Returns:
        The table (the README's preset table is made with it).
    """
    lines = ["| preset | input | parameters | GFLOPs | what |", "|---|---|---:|---:|---|"]
    for name in names or list(presets.TABLE):
        model = build(name)
        shape = "x".join(str(d) for d in spec_of(model).input_shape)
        lines.append(f"| `{name}` | {shape} | {trainable_params(model):,} | "
                     f"{flops(model) / 1e9:.3f} | "
                     f"{presets.describe(name)} |")
    return "\n".join(lines)

