"""What a model path means: a ``.keras`` file, or a run folder of ``kr.train``.

A run folder (``kr.train(..., out_dir=D)``) holds ``model.keras``,
``spec.json``, ``labels.json``, ``history.json`` and (from 0.2) ``run.json``:
the recipe and the ``kr.load_data`` arguments of the data it was trained on.
Serving reads these files; it imports nothing from training.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import keras

from keras_resnet.data import load_data

MODEL_FILE = "model.keras"


def model_file(path: str) -> str:
    """The ``.keras`` file of ``path`` (a run folder's ``model.keras``)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        inside = os.path.join(path, MODEL_FILE)
        if not os.path.exists(inside):
            raise FileNotFoundError(f"{path!r} is a folder without {MODEL_FILE}: give a "
                                    ".keras file or a run folder of kr.train")
        return inside
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {path!r} does not exist")
    return path


def load_model(path: str | os.PathLike) -> Any:
    """Loads a ``.keras`` file, or the model of a run folder.

    Args:
        path: A ``.keras`` file or a folder written by ``kr.train(out_dir=...)``.

    Returns:
        The Keras model (this package's layers are registered first).

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: the file is not a readable ``.keras`` model.
    """
    path = model_file(path)
    try:
        return keras.models.load_model(path)
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise ValueError(f"{path!r} is not a readable .keras model ({e})") from None
    except Exception as e:  # noqa: BLE001 - zip/h5 errors of a corrupt file
        raise ValueError(f"{path!r} is not a readable .keras model "
                         f"({type(e).__name__}: {e})") from None


@dataclass
class Run:
    """What a run folder says about its model (each part None when absent).

    Attributes:
        folder: The run folder.
        run: ``run.json``: spec, recipe and data (absent in 0.1.0 folders).
        labels: ``labels.json``: class names.
        history: ``history.json``: the per-epoch metrics.
    """

    folder: str
    run: dict | None
    labels: list | None
    history: dict | None

    @property
    def load_args(self) -> dict | None:
        """The ``kr.load_data`` arguments of the training data, if recorded."""
        data = (self.run or {}).get("data") or {}
        return data.get("load_args")


def _json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def read_run(path: str | os.PathLike) -> Run | None:
    """The run folder ``path`` is, or holds ``path`` as its ``model.keras``; else None."""
    path = os.fspath(path)
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if os.path.basename(model_file(path)) != MODEL_FILE:
        return None
    parts = {name: _json(os.path.join(folder, f"{name}.json"))
             for name in ("run", "labels", "history")}
    if not any(v is not None for v in parts.values()):
        return None
    run = parts["run"] if isinstance(parts["run"], dict) else None
    labels = parts["labels"] if isinstance(parts["labels"], list) else None
    history = parts["history"] if isinstance(parts["history"], dict) else None
    return Run(folder, run, labels, history)


def load_run_data(run: Run | None) -> Any:
    """``kr.load_data(**load_args)`` of a run folder, or None when not recorded."""
    if run is None or run.load_args is None:
        return None

    return load_data(**run.load_args)
