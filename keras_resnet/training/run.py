"""The run folder of :func:`keras_resnet.train`: its files and the resume check.

A run folder holds, while a run is unfinished, ``run.json`` (the settings,
written when the run starts), ``history.csv`` (one row per finished epoch) and
``backup/`` (:class:`~keras_resnet.training.EpochBackup`); when it ends,
``model.keras``, ``spec.json``, ``history.json`` and ``labels.json`` are
written and the backup is removed. A run started again in the same folder
resumes only with the settings ``run.json`` recorded.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from typing import Any

import numpy as np

from keras_resnet._io import atomic_path, atomic_write_text
from keras_resnet._version import __version__
from keras_resnet.data import Data
from keras_resnet.training.backup import EpochBackup
from keras_resnet.training.recipe import Recipe

FORMAT = 1
BACKUP_DIR = "backup"  # in out_dir while a run is unfinished; removed when it ends
RUN_FILE = "run.json"
HISTORY_CSV = "history.csv"


def digest(arrays: Any) -> str:
    """SHA-256 of arrays (each one's dtype, shape and bytes, in order)."""
    sha = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        sha.update(f"{array.dtype.str}{array.shape}".encode())
        sha.update(array.tobytes())
    return sha.hexdigest()


def fingerprint(data: Data) -> str | None:
    """SHA-256 of the training arrays (shape, dtype and bytes); None for tf.data."""
    return digest(data.train) if data.is_numpy else None


def weights_digest(model: Any) -> str:
    """SHA-256 of a model's weights (``model.get_weights()``): equal on every
    process of a multi-process job, and equal to that of the saved model."""
    return digest(model.get_weights())


def describe(spec: Any, recipe: Recipe, data: Data) -> dict:
    """The content of ``run.json`` for a run about to start."""
    return {
        "format": FORMAT,
        "keras_resnet": __version__,
        "spec": None if spec is None else spec.to_dict(),
        "recipe": recipe.to_dict(),
        "data": {
            "load_args": getattr(data, "load_args", None),
            "fingerprint": fingerprint(data),
            "input_shape": list(data.input_shape),
            "num_classes": int(data.classes),
        },
    }


def read_run(out_dir: str) -> dict | None:
    """``run.json`` of a run folder, or None when there is none."""
    path = os.path.join(out_dir, RUN_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def differences(old: Any, new: Any, path: str = "") -> list:
    """``["path old → new", ...]`` for every leaf that differs (dicts by key, lists
    of equal length by index)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            out += differences(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return out
    if (isinstance(old, list) and isinstance(new, list) and len(old) == len(new)
            and any(isinstance(v, (dict, list)) for v in old + new)):
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out += differences(a, b, f"{path}[{i}]")
        return out
    if old == new:
        return []
    return [f"{path} {_short(old)} → {_short(new)}"]


def _short(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64:  # a SHA-256
        return value[:12]
    text = json.dumps(value) if isinstance(value, (dict, list)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _what_to_compare(run: dict) -> dict:
    keys = ("spec", "recipe")
    data_keys = ("fingerprint", "input_shape", "num_classes")
    return {**{k: run.get(k) for k in keys},
            "data": {k: (run.get("data") or {}).get(k) for k in data_keys}}


def check_finished(out_dir: str, overwrite: bool) -> None:
    """``FileExistsError`` for a finished run (``model.keras``, no backup),
    unless ``overwrite``."""
    finished = os.path.exists(os.path.join(out_dir, "model.keras"))
    if finished and not os.path.isdir(os.path.join(out_dir, BACKUP_DIR)) and not overwrite:
        raise FileExistsError(
            f"{out_dir!r} already holds a finished run (model.keras); pass "
            "overwrite=True (--overwrite) to train again, or choose another folder"
        )


def start(out_dir: str, run: dict, *, overwrite: bool) -> int:
    """Checks a run folder and readies it; returns the epochs already done.

    - a finished run (``model.keras``, no backup): ``FileExistsError`` unless
      ``overwrite``;
    - an unfinished run (a backup of at least one epoch): resumed when its
      ``run.json`` records the same spec, recipe and data, else a
      ``ValueError`` naming each difference; with ``overwrite`` it starts
      over (backup and logs removed);
    - otherwise a fresh start (logs of a run killed before its first backup
      are removed).

    ``run.json`` is then written (atomically).

    Args:
        out_dir: The run folder.
        run: What :func:`describe` returns for the new run.
        overwrite: Start over whatever the folder holds.

    Returns:
        The epoch to start at.
    """
    check_finished(out_dir, overwrite)
    backup = os.path.join(out_dir, BACKUP_DIR)
    done = EpochBackup.last_epoch(backup) if os.path.isdir(backup) else 0
    if done and not overwrite:
        old = read_run(out_dir)
        if old is not None:  # 0.1.0 folders have none: nothing to compare
            diff = differences(_what_to_compare(old), _what_to_compare(run))
            if diff:
                raise ValueError(
                    f"out_dir {out_dir!r} holds an unfinished run with other settings: "
                    + ", ".join(d.removeprefix("recipe.") for d in diff)
                    + "; pass overwrite=True (--overwrite) to start over")
    else:
        done = 0
        EpochBackup.remove(backup)
        for name in (HISTORY_CSV, "history.json"):
            path = os.path.join(out_dir, name)
            if os.path.exists(path):
                os.remove(path)
    atomic_write_text(os.path.join(out_dir, RUN_FILE), json.dumps(run, indent=2) + "\n",
                      overwrite=True)
    return done


def resume_epoch(out_dir: str, overwrite: bool) -> int:
    """The epochs done that :func:`start` will resume from, read without writing
    (the other processes of a multi-process job, while process 0 starts)."""
    if overwrite:
        return 0
    return EpochBackup.last_epoch(os.path.join(out_dir, BACKUP_DIR))


def read_finished(out_dir: str) -> dict | None:
    """``{name: text}`` of a finished run's ``run.json`` and ``history.json``
    (None when ``out_dir`` holds no finished run), for :func:`put_back`."""
    if not is_finished(out_dir):
        return None
    texts = {}
    for name in (RUN_FILE, "history.json"):
        path = os.path.join(out_dir, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                texts[name] = fh.read()
    return texts


def put_back(out_dir: str, texts: dict) -> None:
    """Restores what :func:`read_finished` read (a run that replaced a finished
    one failed; its model is still the old one) and drops the failed run's log."""
    for name, text in texts.items():
        atomic_write_text(os.path.join(out_dir, name), text, overwrite=True)
    for name in (HISTORY_CSV,):
        path = os.path.join(out_dir, name)
        if os.path.exists(path):
            os.remove(path)
    EpochBackup.remove(os.path.join(out_dir, BACKUP_DIR))


def read_csv_history(path: str) -> dict:
    """History from the CSV log; a re-run epoch (after a kill) keeps its last row."""
    if not os.path.exists(path):
        return {}
    rows: dict = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                rows[int(row["epoch"])] = row
            except (KeyError, ValueError):
                continue
    history: dict = {}
    for epoch in sorted(rows):
        for key, value in rows[epoch].items():
            if key == "epoch" or value in (None, ""):
                continue
            history.setdefault(key, []).append(float(value))
    return history


def finish(out_dir: str, model: Any, spec: Any, history: dict, class_names: list) -> None:
    """model.keras, spec.json, history.json and labels.json, each written
    atomically; then the backup is removed (the run is finished)."""
    with atomic_path(os.path.join(out_dir, "model.keras"), overwrite=True) as tmp:
        model.save(tmp)
    if spec is not None:
        spec.save(os.path.join(out_dir, "spec.json"), overwrite=True)
    atomic_write_text(os.path.join(out_dir, "history.json"),
                      json.dumps(history, indent=2) + "\n", overwrite=True)
    atomic_write_text(os.path.join(out_dir, "labels.json"),
                      json.dumps(list(class_names)) + "\n", overwrite=True)
    EpochBackup.remove(os.path.join(out_dir, BACKUP_DIR))


def is_finished(out_dir: str) -> bool:
    """Whether a run folder holds a finished run."""
    return (os.path.exists(os.path.join(out_dir, "model.keras"))
            and os.path.exists(os.path.join(out_dir, "history.json"))
            and not os.path.isdir(os.path.join(out_dir, BACKUP_DIR)))
