"""A picture of the architecture: stages and blocks, each shortcut marked by kind.

:func:`plot` draws one column per stage and one box per block (not per layer,
so a 50-layer net stays readable); long stages show their first blocks, a
"... N more" box and the last one. The bar on the left of each box is the
block's shortcut: identity, A (zero-pad), B (projection), C (always project),
D (avg-pool + projection), or none for plain nets. ``backend="graphviz"`` draws
every layer with ``keras.utils.plot_model`` instead (needs pydot and graphviz).
Both draw the network the spec describes: plain or residual as
``spec.residual`` says.

Example:

```python
kr.plot("resnet50", "resnet50.png")
kr.plot(kr.build_plain("cifar_plain20"), "plain20.png")
```
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import keras

from keras_resnet import _checks as C
from keras_resnet._io import atomic_path
from keras_resnet.builders import as_spec, build, spec_of
from keras_resnet.plan import make_plan, to_hwc

#: Colour of each shortcut kind in the picture.
COLOURS = {"identity": "#9e9e9e", "A": "#1f77b4", "B": "#ff7f0e", "C": "#d62728",
           "D": "#2ca02c", "none": "#ffffff"}
LABELS = {"identity": "identity", "A": "A: zero-pad", "B": "B: projection (1x1 conv / Ws)",
          "C": "C: always project", "D": "D: avg-pool + 1x1", "none": "no shortcut (plain)"}
MAX_SHOWN = 8  # blocks drawn per stage before "... N more"


@dataclass(frozen=True)
class Box:
    """One box of the picture."""

    column: int
    row: int
    title: str
    detail: str
    shortcut: str  # a key of COLOURS, or "" for stem/head/ellipsis boxes


def _shape(shape: tuple, data_format: str = "channels_last") -> str:
    if len(shape) == 1:
        return f"{shape[0]} units"
    h, w, c = to_hwc(shape, data_format)
    size = "?" if h is None else f"{h}x{w}"
    return f"{size}x{c}"


def layout(model_or_spec: Any) -> tuple:
    """The boxes and column titles of the picture (what :func:`plot` draws).

    Args:
        model_or_spec: A model built by this package, or anything
            :func:`~keras_resnet.build` accepts (the network its spec
            describes, plain or residual, is shown).

    Returns:
        ``(boxes, column_titles)``.
    """
    spec = _spec(model_or_spec)
    residual = spec.residual
    plan = make_plan(spec)
    fmt = plan.data_format
    boxes, titles = [], []
    col = 0
    if spec.stem is not None:
        stem = spec.stem
        detail = {"conv": f"conv {stem.filters}, {stem.kernel_size}x{stem.kernel_size}"
                          f"/{stem.strides}",
                  "deep": f"3 convs to {stem.filters}, /{stem.strides}",
                  "dense": f"dense {stem.filters}"}[stem.type]
        if stem.pool and stem.type != "dense":
            detail += f"\n{stem.pool} pool /{stem.pool_strides}"
        boxes.append(Box(col, 0, "stem", detail + f"\n-> {_shape(plan.stem_shape, fmt)}", ""))
        titles.append("stem")
        col += 1
    for i, entry in enumerate(spec.blocks):
        steps = [s for s in plan.steps if s.index == i]
        titles.append(f"stage{i + 1}\n{entry.type} x{len(steps)}"
                      if entry.type != "pool" else f"stage{i + 1}\n{entry.pool} pool")
        shown = steps if len(steps) <= MAX_SHOWN else steps[: MAX_SHOWN - 2] + [None, steps[-1]]
        for row, step in enumerate(shown):
            if step is None:
                boxes.append(Box(col, row, "...", f"{len(steps) - MAX_SHOWN + 1} more "
                                 "identical blocks", ""))
                continue
            kind = step.shortcut if residual else "none"
            if step.type == "pool":
                kind = ""
            title = step.name.split("_", 1)[1] if "_" in step.name else step.name
            detail = f"{step.in_channels}->{step.out_channels}"
            if step.strides > 1:
                detail += f", /{step.strides}" + (f" {entry.pool} pool"
                                                  if getattr(entry, "pool", None) else "")
            detail += f"\n{_shape(step.out_shape, fmt)}"
            boxes.append(Box(col, row, title, detail, kind))
        col += 1
    head = (f"{'avg pool, ' if len(plan.features_shape) == 3 else ''}dense {spec.classes}"
            if spec.include_top else (spec.pooling or "features"))
    if plan.preact_tail:
        head = "BN-act, " + head
    boxes.append(Box(col, 0, "head", head, ""))
    titles.append("head")
    return boxes, titles


def _spec(model_or_spec: Any) -> Any:
    if hasattr(model_or_spec, "layers"):
        return spec_of(model_or_spec)
    return as_spec(model_or_spec)


@C.renamed(path="filepath")
def plot(model_or_spec: Any, filepath: str | os.PathLike, *, backend: str = "blocks",
         overwrite: bool = False, title: str | None = None, dpi: int = 110) -> str:
    """Draws the architecture to an image file.

    Args:
        model_or_spec: A model built by this package, or a spec / preset name /
            spec file (the network it describes is drawn, plain or residual
            as ``spec.residual`` says).
        filepath: Output file (``.png``; ``.svg``/``.pdf`` work too with matplotlib).
        backend: ``"blocks"`` (matplotlib, one box per block) or ``"graphviz"``
            (every layer, through ``keras.utils.plot_model``).
        overwrite: Replace an existing file (without it an existing file is a
            ``FileExistsError`` and stays as it is).
        title: Figure title (default: the model's name).
        dpi: Resolution.

    Returns:
        The path written.

    Example:

    ```python
    kr.plot("cifar_resnet20", "r20.png", overwrite=True)
    ```
    """
    path = filepath
    C.check_choice("backend", backend, ("blocks", "graphviz"))
    path = os.fspath(path)
    if backend == "graphviz":
        model = model_or_spec if hasattr(model_or_spec, "layers") else build(
            model_or_spec)
        with atomic_path(path, overwrite=overwrite) as tmp:
            keras.utils.plot_model(model, to_file=tmp, show_shapes=True, dpi=dpi)
        return path
    boxes, titles = layout(model_or_spec)
    name = title
    if name is None:
        name = _spec(model_or_spec).name or "network"
    _draw(boxes, titles, path, name, overwrite, dpi)
    return path


def _draw(boxes: list, titles: list, path: str, name: str, overwrite: bool,
          dpi: int) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, Patch, Rectangle

    cols = len(titles)
    rows = max(b.row for b in boxes) + 1
    box_w, box_h, gap_x, gap_y = 1.9, 0.95, 0.6, 0.35
    width = cols * (box_w + gap_x) + 0.4
    height = rows * (box_h + gap_y) + 1.6
    fig, ax = plt.subplots(figsize=(max(6.0, width * 0.95), max(3.0, height * 0.85)), dpi=dpi)
    ax.set_xlim(-0.2, width)
    ax.set_ylim(-height + 0.6, 1.4)
    ax.axis("off")

    def origin(box: Box) -> tuple:
        return box.column * (box_w + gap_x), -box.row * (box_h + gap_y)

    for col, text in enumerate(titles):
        ax.text(col * (box_w + gap_x) + box_w / 2, 1.05, text, ha="center", va="center",
                fontsize=8, fontweight="bold")
    kinds = []
    for box in boxes:
        x, y = origin(box)
        face = "#f4f4f4" if box.shortcut else "#e3ecf7"
        ax.add_patch(Rectangle((x, y - box_h), box_w, box_h, facecolor=face,
                               edgecolor="#555555", linewidth=0.8))
        if box.shortcut:
            kinds.append(box.shortcut)
            ax.add_patch(Rectangle((x, y - box_h), 0.18, box_h,
                                   facecolor=COLOURS[box.shortcut], edgecolor="#555555",
                                   linewidth=0.8))
            if box.shortcut != "none":
                ax.text(x + 0.09, y - box_h / 2, "id" if box.shortcut == "identity"
                        else box.shortcut, ha="center", va="center", fontsize=6,
                        rotation=90, color="white" if box.shortcut != "identity" else "black")
        ax.text(x + 0.25, y - 0.12, box.title, ha="left", va="top", fontsize=7,
                fontweight="bold")
        ax.text(x + 0.25, y - 0.38, box.detail, ha="left", va="top", fontsize=6.2)
    for col in range(len(titles) - 1):  # stage to stage
        x = col * (box_w + gap_x) + box_w
        ax.add_patch(FancyArrowPatch((x + 0.05, -box_h / 2), (x + gap_x - 0.05, -box_h / 2),
                                     arrowstyle="-|>", mutation_scale=8, color="#555555"))
    present = [k for k in COLOURS if k in kinds]
    if present:
        ax.legend(handles=[Patch(facecolor=COLOURS[k], edgecolor="#555555", label=LABELS[k])
                           for k in present],
                  loc="lower center", bbox_to_anchor=(0.5, -0.02), ncol=len(present),
                  fontsize=7, frameon=False, title="shortcut", title_fontsize=7)
    ax.set_title(name, fontsize=10)
    fig.tight_layout()
    with atomic_path(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format=os.path.splitext(path)[1].lstrip(".") or "png")
    plt.close(fig)


def plot_training_error(models: dict, path: str, *, overwrite: bool = False,
                        title: str | None = None) -> str:
    """Training error vs epoch: plain dashed, residual solid, one colour per depth.

    Args:
        models: ``CompareResult.models``.
        path: PNG file to write (atomically).
        overwrite: Replace an existing file.
        title: Figure title.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    depths = sorted({m["depth"] for m in models.values()})
    colours = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    for i, depth in enumerate(depths):
        colour = colours(i % 10)
        for m in models.values():
            if m["depth"] != depth:
                continue
            curve = [100 * e for e in m["train_error_curve"]]
            label = f"{'ResNet' if m['residual'] else 'plain'}-{depth}"
            ax.plot(range(1, len(curve) + 1), curve, color=colour,
                    linestyle="-" if m["residual"] else "--", linewidth=1.8, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("training error (%)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(ncol=2, fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
