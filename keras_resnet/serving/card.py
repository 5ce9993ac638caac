"""The model card written beside every export: ``model_card.json`` and ``MODEL_CARD.md``.

One card per folder: a SavedModel's card is inside its folder, a file's
(``.keras``, ``.tflite``, ``.onnx``) in the folder that holds it, with one
entry per export file, so ``m.tflite``, ``m_int8.tflite`` and ``m.onnx`` side
by side are compared on one page. The card says what the model is (spec,
parameters, FLOPs, classes, input and preprocessing), where it came from
(recipe and data of the run folder), and what each export measured (size,
accuracy, and latency at batch 1 with one thread and with every core, beside
the Keras model's own measured alike, on the CPU it names), with the library
versions.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
from typing import Any

import keras
import numpy as np

from keras_resnet import preprocessing as P
from keras_resnet._version import __version__
from keras_resnet.builders import outputs_logits, spec_of
from keras_resnet.flops import flops
from keras_resnet.report import trainable_params
from keras_resnet.runfolder import RunFolder
from keras_resnet.serving.machine import describe

JSON_NAME = "model_card.json"
MD_NAME = "MODEL_CARD.md"
CARD_FORMAT = 2  # 0.3: classes, preprocessing as data (cards of 1 are read)


def weights_sha256(model: Any) -> str:
    """Hash of the model's weights (tells exports of different weights apart)."""
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()[:16]


def _version(*dists: str) -> str | None:
    for dist in dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def environment() -> dict:
    """Versions of the library and of the tools that wrote and ran the exports."""
    return {"keras_resnet": __version__, "keras": keras.__version__,
            "backend": keras.backend.backend(),
            "tensorflow": _version("tensorflow", "tensorflow-cpu"),
            "ai_edge_litert": _version("ai-edge-litert"),
            "onnxruntime": _version("onnxruntime"), "tf2onnx": _version("tf2onnx"),
            "jax": _version("jax"), "numpy": np.__version__,
            "python": platform.python_version(), **describe()}


def model_section(model: Any, folder: RunFolder | None) -> dict:
    """What the model is: spec, size, classes, its input and the preprocessing it
    expects (recorded in its spec: see ``kr.preprocess_input``)."""
    try:
        spec = spec_of(model)
    except TypeError:
        spec = None
    try:
        macs = int(flops(model))
    except Exception:  # noqa: BLE001 - a model with layers flops() cannot count
        macs = None
    input_shape = list(model.inputs[0].shape[1:])
    classes = int(model.outputs[0].shape[-1])
    labels = folder.labels() if folder is not None else None
    value = spec.preprocessing if spec is not None else None
    return {"name": model.name, "spec": None if spec is None else spec.to_dict(),
            "trainable_params": trainable_params(model),
            "params": int(model.count_params()), "flops": macs,
            "input_shape": input_shape, "classes": classes, "class_names": labels,
            "outputs": "logits" if outputs_logits(model) else "probabilities",
            "preprocessing": None if value is None else P.to_config(value),
            "input": (f"float32 {tuple(input_shape)}: "
                      + (P.describe(value) + " of raw pixel values (kr.preprocess_input)"
                         if value is not None else "not built by keras_resnet; its "
                         "preprocessing is not recorded")),
            "weights_sha256": weights_sha256(model)}


def training_section(folder: RunFolder | None) -> dict | None:
    """Where the model came from: the run folder's recipe, data and final metrics."""
    if folder is None:
        return None
    run = folder.run()
    final = {k: v[-1] for k, v in (folder.history() or {}).items()
             if isinstance(v, list) and v and isinstance(v[-1], (int, float))}
    return {"run_dir": os.path.abspath(folder.path), "recipe": (run or {}).get("recipe"),
            "data": (run or {}).get("data"), "final_metrics": final or None,
            "note": None if run is not None else
            "run.json missing (a keras_resnet 0.1.0 run folder): recipe and data unknown"}


def read_card(folder: str) -> dict | None:
    """The card already in ``folder`` (None if none); a foreign file there is an error."""
    path = os.path.join(folder, JSON_NAME)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            card = json.load(fh)
    except (OSError, ValueError):
        card = None
    if not isinstance(card, dict) or card.get("card_format") not in (1, CARD_FORMAT):
        raise FileExistsError(f"{path!r} exists and is not a keras_resnet model card; "
                              "move it away or export to another folder")
    return card


def make_card(existing: dict | None, folder: str, name: str, model: dict,
              training: dict | None, entry: dict) -> dict:
    """The card with ``entry`` for export ``name`` added (entries of deleted files dropped)."""
    exports = {}
    for other, old in ((existing or {}).get("exports") or {}).items():
        if other != name and os.path.exists(os.path.join(folder, other)):
            exports[other] = old
    exports[name] = dict(entry, weights_sha256=model["weights_sha256"])
    return {"card_format": CARD_FORMAT,
            "updated": datetime.datetime.now(datetime.UTC).isoformat(
                timespec="seconds"),
            "model": model, "training": training, "environment": environment(),
            "exports": dict(sorted(exports.items()))}


def _size(n: int | None) -> str:
    return "" if n is None else f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def markdown(card: dict) -> str:
    """``MODEL_CARD.md``: the card for people."""
    m, t, env = card["model"], card["training"], card["environment"]
    spec = m["spec"] or {}
    lines = [f"# Model card: {m['name']}", ""]
    flops = f"{m['flops'] / 1e6:,.1f} M multiply-adds" if m["flops"] else "FLOPs unknown"
    lines += [f"- **Architecture**: {'residual' if spec.get('residual', True) else 'plain'} "
              f"network from a keras_resnet spec ({len(spec.get('blocks', []))} block "
              f"groups)" if spec else "- **Architecture**: not built by keras_resnet",
              f"- **Size**: {m['trainable_params']:,} trainable parameters, {flops} per image",
              f"- **Input**: {m['input']}",
              f"- **Output**: {m['classes']} class {m['outputs']}"
              + (f"; classes {', '.join(map(str, m['class_names'][:20]))}"
                 + (" ..." if len(m["class_names"]) > 20 else "")
                 if m["class_names"] else "")]
    if t:
        recipe = t.get("recipe") or {}
        data = (t.get("data") or {}).get("load_args")
        lines.append(f"- **Training**: run folder `{t['run_dir']}`"
                     + (f"; {', '.join(f'{k}={v}' for k, v in recipe.items())}"
                        if recipe else f"; {t['note']}"))
        if data:
            lines.append(f"- **Data**: `kr.load_data(**{json.dumps(data)})`")
        if t.get("final_metrics"):
            lines.append("- **Final metrics**: " + ", ".join(
                f"{k} {v:.4g}" for k, v in t["final_metrics"].items()))
    threads = next((e["threads"] for e in card["exports"].values() if e.get("threads")), None)
    many = f"{threads} threads" if threads else "all cores"
    lines += ["", "## Exports", "",
              "| file | format | quantize | size | latency 1 thread | latency "
              f"{many} | × Keras ({many}) | top-1 Keras | top-1 export | agreement "
              "| verified |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    cpus = set()
    for name, e in card["exports"].items():
        acc = e.get("accuracy") or {}
        other = "" if e["weights_sha256"] == m["weights_sha256"] else " (other weights)"
        ratio = ""
        if e.get("latency_ms") and e.get("keras_latency_ms"):
            ratio = f"{e['latency_ms'] / e['keras_latency_ms']:.2f}"
        if e.get("cpu"):
            cpus.add(f"{e['cpu']} ({e['threads']} threads)")
        cells = [f"`{name}`{other}", e["format"], e.get("quantize") or "float32",
                 _size(e.get("size_bytes")), _ms(e.get("latency_ms_1thread")),
                 _ms(e.get("latency_ms")), ratio,
                 f"{acc['keras_top1']:.4f}" if acc else "",
                 f"{acc['export_top1']:.4f}" if acc else "",
                 f"{acc['agreement']:.4f}" if acc else "",
                 "yes" if e.get("verified") else "no"]
        lines.append("| " + " | ".join(cells) + " |")
    measured = [e["accuracy"]["examples"] for e in card["exports"].values()
                if e.get("accuracy")]
    runtimes = sorted({e["runtime"] for e in card["exports"].values() if e.get("runtime")})
    lines += ["", (f"Top-1 on {measured[0]} validation examples. " if measured else "")
              + "Latency: batch 1, median of timed runs in a fresh process, with one thread "
              "and with every core; × Keras: the export's latency over the Keras model's "
              "own `predict_on_batch`, measured in the same process, interleaved"
              + (f"; on {', '.join(sorted(cpus))}" if cpus else "")
              + (f"; runtimes: {', '.join(runtimes)}" if runtimes else "") + ". "
              f"keras_resnet {env['keras_resnet']}, Keras {env['keras']} "
              f"({env['backend']}), TensorFlow {env['tensorflow']}, "
              f"updated {card['updated']}.", ""]
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"
