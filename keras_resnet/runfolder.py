"""The run folder: the one owner of its file names, its JSON files and its state.

A run folder is what ``kr.train(..., out_dir=D)`` writes, and what each model of
``kr.compare`` and each trial of ``kr.tune`` is. While a run is unfinished it
holds ``run.json`` (the settings, written when the run starts), ``history.csv``
(one row per finished epoch) and ``backup/`` (:class:`~keras_resnet.EpochBackup`);
when it ends, ``model.keras``, ``spec.json``, ``history.json`` and
``labels.json`` are written and the backup is removed. A run started again in
the same folder resumes only with the settings ``run.json`` recorded.

Every module that reads or writes these files goes through :class:`RunFolder`:
training, the experiment, the tuner's trials, export, predict and the model
card. This module imports no Keras: a folder's state can be read anywhere.

| file | written | holds |
|---|---|---|
| ``run.json`` | at the start | spec, recipe, data (how to load it again, a hash) |
| ``history.csv`` | every epoch | the metrics of each finished epoch |
| ``backup/`` | every epoch | weights and optimizer state (removed at the end) |
| ``model.keras`` | at the end | the trained model |
| ``spec.json``, ``history.json``, ``labels.json`` | at the end | spec, metrics, class names |
| ``run.lock`` | at the start (kept) | the operating system's lock (``filelock``) |
| ``run.owner.json`` | while a process runs | who holds the folder (host, pid) |

Example:

```python
folder = kr.RunFolder("runs/r20")
folder.status()            # "empty", "unfinished" or "finished"
folder.labels()            # ["0", "1", ...] once finished
```
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from typing import Any

import filelock

from keras_resnet import _checks as C
from keras_resnet._io import atomic_path, atomic_write_text
from keras_resnet._version import __version__
from keras_resnet.spec import ModelSpec

#: Version of ``run.json``'s layout.
FORMAT = 1
#: The backup's pointer file (inside ``backup/``): ``{"epoch": n, "weights": file}``.
BACKUP_STATE = "state.json"


class FolderBusyError(C.InputError, RuntimeError):
    """Another live process holds the run folder (its host and pid are named)."""


class NotWritableError(C.InputError, PermissionError):
    """The output folder cannot be written (found before any work)."""


def read_backup_state(folder: str) -> dict | None:
    """The backup's ``{"epoch", "weights"}`` in ``folder``, or None if there is none."""
    path = os.path.join(os.fspath(folder), BACKUP_STATE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """``["path old → new", ...]`` for every leaf that differs (dicts by key, lists
    of equal length by index)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
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


def describe(spec: dict | None, recipe: dict, data: dict) -> dict:
    """The content of ``run.json`` for a run about to start.

    Args:
        spec: The spec as a dict (None for a model not built by this package).
        recipe: The recipe as a dict.
        data: ``{"load_args", "fingerprint", "input_shape", "classes"}`` of the data.

    Returns:
        The JSON-ready description.
    """
    return {"format": FORMAT, "keras_resnet": __version__, "spec": spec,
            "recipe": recipe, "data": data}


def _comparable(run: dict) -> dict:
    """What must match for a run to resume: spec, recipe and the data's identity."""
    data = dict(run.get("data") or {})
    if "num_classes" in data:  # run.json of 0.2
        data.setdefault("classes", data.pop("num_classes"))
    spec = run.get("spec")
    if isinstance(spec, dict):  # fields added since it was written take their defaults
        with contextlib.suppress(ValueError, TypeError):
            spec = ModelSpec.from_dict(spec).to_dict()
    recipe = run.get("recipe")
    if isinstance(recipe, dict):  # recipe fields added since (metrics), at their defaults
        recipe = {"metrics": ["accuracy"], **recipe}
    return {"spec": spec, "recipe": recipe,
            "data": {k: data.get(k) for k in ("fingerprint", "input_shape", "classes")}}


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


class RunFolder:
    """One run folder: its files, its state, its start and its end.

    Args:
        path: The folder (it need not exist yet).
    """

    RUN = "run.json"
    HISTORY_CSV = "history.csv"
    HISTORY = "history.json"
    LABELS = "labels.json"
    MODEL = "model.keras"
    SPEC = "spec.json"
    BACKUP = "backup"
    LOGS = "logs"
    LOCK = "run.lock"
    OWNER = "run.owner.json"
    BAD_FILES = "bad_files.json"
    IMAGE_CHECK = "image_check.json"
    #: The states :meth:`status` returns.
    EMPTY, UNFINISHED, FINISHED = "empty", "unfinished", "finished"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)

    def __repr__(self) -> str:
        return f"RunFolder({self.path!r})"

    def file(self, name: str) -> str:
        """The path of one of the folder's files (``RunFolder.MODEL``, ...)."""
        return os.path.join(self.path, name)

    @classmethod
    def of(cls, path: str | os.PathLike) -> RunFolder | None:
        """The run folder ``path`` is, or whose ``model.keras`` it is; else None."""
        path = os.fspath(path)
        if os.path.isdir(path):
            return cls(path)
        if os.path.basename(path) == cls.MODEL:
            return cls(os.path.dirname(os.path.abspath(path)))
        return None

    # ---------------------------------------------------------------- reading
    def backup_epoch(self) -> int:
        """Epochs finished by the folder's backup (0 when there is none)."""
        state = read_backup_state(self.file(self.BACKUP))
        return 0 if state is None else int(state["epoch"])

    def status(self) -> str:
        """``"finished"`` (a model and no backup), ``"unfinished"`` (a backup, or
        settings without a model) or ``"empty"`` (nothing of a run)."""
        has_model = os.path.exists(self.file(self.MODEL))
        if has_model and not os.path.isdir(self.file(self.BACKUP)):
            return self.FINISHED
        if has_model or os.path.exists(self.file(self.RUN)) or self.backup_epoch():
            return self.UNFINISHED
        return self.EMPTY

    def run(self) -> dict | None:
        """``run.json`` (spec, recipe, data), or None (absent in 0.1 folders)."""
        run = _read_json(self.file(self.RUN))
        return run if isinstance(run, dict) else None

    def history(self) -> dict | None:
        """``history.json``: ``{metric: [value per epoch]}``, or None."""
        history = _read_json(self.file(self.HISTORY))
        return history if isinstance(history, dict) else None

    def labels(self) -> list | None:
        """``labels.json``: the class names, or None."""
        labels = _read_json(self.file(self.LABELS))
        return [str(n) for n in labels] if isinstance(labels, list) else None

    def load_args(self) -> dict | None:
        """The ``kr.load_data`` arguments of the run's data, if recorded."""
        data = (self.run() or {}).get("data") or {}
        return data.get("load_args")

    def csv_history(self) -> dict:
        """History from ``history.csv``; an epoch run again (after a kill) keeps its
        last row."""
        rows: dict = {}
        try:
            with open(self.file(self.HISTORY_CSV), newline="") as fh:
                for row in csv.DictReader(fh):
                    with contextlib.suppress(KeyError, ValueError):
                        rows[int(row["epoch"])] = row
        except FileNotFoundError:
            return {}
        history: dict = {}
        for epoch in sorted(rows):
            for key, value in rows[epoch].items():
                if key != "epoch" and value not in (None, ""):
                    history.setdefault(key, []).append(float(value))
        return history

    # ---------------------------------------------------------------- a run
    def check_not_finished(self, overwrite: bool) -> None:
        """``FileExistsError`` for a finished run, unless ``overwrite``."""
        if self.status() == self.FINISHED and not overwrite:
            raise FileExistsError(
                f"{self.path!r} already holds a finished run ({self.MODEL}); pass "
                "overwrite=True (--overwrite) to train again, or choose another folder")

    def check_writable(self) -> None:
        """``PermissionError`` (before any work) when the folder cannot be written."""
        parent = self.path
        while not os.path.exists(parent):
            parent = os.path.dirname(os.path.abspath(parent))
        if not os.access(parent, os.W_OK | os.X_OK):
            raise NotWritableError(f"the output folder {self.path!r} is not writable "
                                   f"({parent!r} refuses writes)")

    def start(self, run: dict, *, overwrite: bool) -> int:
        """Checks the folder against a run about to start, readies it, writes
        ``run.json``; returns the epochs already done.

        - a finished run: ``FileExistsError`` unless ``overwrite``;
        - an unfinished run (a backup of at least one epoch): resumed when its
          ``run.json`` records the same spec, recipe and data, else a
          ``ValueError`` naming each difference; with ``overwrite`` it starts
          over (backup and logs removed);
        - otherwise a fresh start (logs of a run killed before its first
          backup are removed).

        Args:
            run: What :func:`describe` returns for the new run.
            overwrite: Start over whatever the folder holds.

        Returns:
            The epoch to start at.
        """
        self.check_not_finished(overwrite)
        done = self.backup_epoch()
        if done and not overwrite:
            old = self.run()
            diff = [] if old is None else differences(_comparable(old), _comparable(run))
            if diff:
                raise C.InvalidInput(
                    f"out_dir {self.path!r} holds an unfinished run with other settings: "
                    + ", ".join(d.removeprefix("recipe.") for d in diff)
                    + "; pass overwrite=True (--overwrite) to start over")
            self._trim_csv(done)
        else:
            done = 0
            shutil.rmtree(self.file(self.BACKUP), ignore_errors=True)
            for name in (self.HISTORY_CSV, self.HISTORY):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.file(name))
        atomic_write_text(self.file(self.RUN), json.dumps(run, indent=2) + "\n",
                          overwrite=True)
        return done

    def _trim_csv(self, epochs: int) -> None:
        """Keeps the complete rows of the first ``epochs`` epochs of ``history.csv``:
        a row torn by a kill or a full disk, and rows of epochs to be run again, go."""
        path = self.file(self.HISTORY_CSV)
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                lines = fh.read().split("\n")
        except FileNotFoundError:
            return
        if len(lines) < 2:  # not even the header is whole: CSVLogger writes it again
            os.remove(path)
            return
        header, kept = lines[0], []
        for line in lines[1:-1]:  # the last piece has no newline: torn, or empty
            epoch = line.split(",", 1)[0]
            if epoch.isdigit() and int(epoch) < epochs and line.count(",") == \
                    header.count(","):
                kept.append(line)
        atomic_write_text(path, "\n".join([header, *kept]) + "\n", overwrite=True)

    def snapshot(self) -> dict | None:
        """``{name: text}`` of a finished run's ``run.json`` and ``history.json`` (None
        when there is no finished run), for :meth:`restore`."""
        if self.status() != self.FINISHED:
            return None
        texts = {}
        for name in (self.RUN, self.HISTORY):
            with contextlib.suppress(FileNotFoundError), open(self.file(name),
                                                              encoding="utf-8") as fh:
                texts[name] = fh.read()
        return texts

    def restore(self, texts: dict) -> None:
        """Puts back what :meth:`snapshot` read (a run that was to replace a finished
        one failed; its model is still the old one) and drops the failed run's log
        and backup."""
        for name, text in texts.items():
            atomic_write_text(self.file(name), text, overwrite=True)
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.file(self.HISTORY_CSV))
        shutil.rmtree(self.file(self.BACKUP), ignore_errors=True)

    def finish(self, save_model: Callable[[str], None], spec_json: str | None,
               history: dict, labels: list) -> None:
        """Writes ``model.keras`` (through ``save_model(temporary_path)``), ``spec.json``,
        ``history.json`` and ``labels.json``, each atomically; then removes the
        backup, which makes the run finished."""
        with atomic_path(self.file(self.MODEL), overwrite=True) as tmp:
            save_model(tmp)
        if spec_json is not None:
            atomic_write_text(self.file(self.SPEC), spec_json, overwrite=True)
        atomic_write_text(self.file(self.HISTORY), json.dumps(history, indent=2) + "\n",
                          overwrite=True)
        atomic_write_text(self.file(self.LABELS), json.dumps(list(labels)) + "\n",
                          overwrite=True)
        shutil.rmtree(self.file(self.BACKUP), ignore_errors=True)

    # ---------------------------------------------------------------- the lock
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Holds the folder for this process while the block runs.

        A second process (``kr.train``, ``keras-resnet train``, a model of
        ``compare``) on the same folder is refused at once with
        :class:`FolderBusyError` naming the holder's host and pid. The lock is
        the operating system's (``filelock``): a process that dies, even by
        SIGKILL, releases it, so a stale lock never blocks a resume.
        """
        os.makedirs(self.path, exist_ok=True)
        lock = filelock.FileLock(self.file(self.LOCK))
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            owner = _read_json(self.file(self.OWNER)) or {}
            who = (f"process {owner.get('pid', '?')} on {owner.get('host', '?')}"
                   if owner else "another process")
            raise FolderBusyError(
                f"{self.path!r} is in use by {who}, which is running in it; wait for it "
                "to end, or choose another folder") from None
        try:
            atomic_write_text(self.file(self.OWNER), json.dumps(
                {"host": socket.gethostname(), "pid": os.getpid()}) + "\n", overwrite=True)
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.file(self.OWNER))
            lock.release()
