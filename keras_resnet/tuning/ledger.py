"""The durable state of a search (Keras-free): a ledger, a lock and claims.

In the project folder, shared by any number of processes (one machine or a
shared disk): ``ledger.jsonl``, one JSON record per line, appended and
fsynced under ``lock``: the search's description, then a ``created`` and a
``finished`` record per trial (a line torn by a kill is no record, and is cut
off before the next append); ``claims/<trial id>.lock``: the lock of the
process that runs a trial. Both are the operating system's locks
(``filelock``), as a run folder's ``run.lock``: a process that dies, even by
SIGKILL, releases them, and an unfinished trial whose claim is free is taken
over by whoever notices first.
"""

from __future__ import annotations

import json
import os
import socket

import filelock

from keras_resnet import _checks as C
from keras_resnet._io import raise_disk_full

LEDGER = "ledger.jsonl"
#: Version of the ledger format, in its first record (0.3: 4; 0.2.0: 3).
FORMAT = 4
HOST = socket.gethostname()
TRIALS = "trials"  # one run folder per trial
_AGAIN = "Pass overwrite=True (--overwrite) to start it again, or another out_dir"
OURS = {LEDGER, "lock", "claims", TRIALS, "best_spec.json", "best_hyperparameters.json",
        "best_recipe.json"}


class Ledger:
    """One search's folder (created when missing): its ledger, lock and claims."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.claims = os.path.join(path, "claims")
        os.makedirs(self.claims, exist_ok=True)
        self.offset = 0  # bytes of the ledger this process has read
        #: The project's lock (the operating system releases it if the process dies).
        self.lock = filelock.FileLock(os.path.join(path, "lock"))
        self.held: dict[str, filelock.BaseFileLock] = {}  # this process's claims

    def read(self, start: int | None = None) -> list:
        """Whole records from ``start`` (default: where the last read ended)."""
        self.offset = self.offset if start is None else start
        try:
            with open(os.path.join(self.path, LEDGER), "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        return [json.loads(line) for line in chunk[:end].splitlines() if line.strip()]

    def append(self, record: dict) -> None:
        """Appends a record durably (lock held, ledger read to its end first)."""
        line = memoryview((json.dumps(record, sort_keys=True) + "\n").encode())
        path = os.path.join(self.path, LEDGER)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, self.offset)  # a torn line a killed process left
            os.lseek(fd, self.offset, os.SEEK_SET)
            while line:
                line = line[os.write(fd, line):]
            os.fsync(fd)
            self.offset = os.lseek(fd, 0, os.SEEK_CUR)
        except OSError as e:  # a torn line is no record: the next append cuts it off
            raise_disk_full(e, path)
            raise
        finally:
            os.close(fd)

    def start(self, config: dict) -> int | None:
        """Begins a new ledger with the search's description (returns None), or checks
        the one there (a ``ValueError`` for another search or format) and returns the
        number of trials finished so far."""
        with self.lock:
            records = self.read(0)
            if not records:
                self.append(config)
                return None
            if records[0] != config:
                if records[0].get("format") != FORMAT:
                    raise C.InvalidInput(
                        f"{self.path!r} holds a search in ledger format "
                        f"{records[0].get('format')!r}, written by an earlier version; this "
                        f"one reads format {FORMAT}. {_AGAIN}")
                differ = sorted(k for k in set(records[0]) | set(config)
                                if records[0].get(k) != config.get(k))
                raise C.InvalidInput(
                    f"{self.path!r} holds a search with a different {', '.join(differ)}; "
                    "resume it with the same arguments, or pass overwrite=True or another "
                    "out_dir")
            return sum(r["event"] == "finished" for r in records)

    def claim(self, trial_id: str) -> bool:
        """Takes a trial's claim (lock held) unless a live process holds it; whether it did."""
        lock = filelock.FileLock(os.path.join(self.claims, f"{trial_id}.lock"))
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            return False
        self.held[trial_id] = lock
        return True

    def release(self, trial_id: str) -> None:
        """Frees a trial's claim: anyone may run it (if it is unfinished)."""
        lock = self.held.pop(trial_id, None)
        if lock is not None:
            lock.release()


def check_folder(path: str) -> None:
    """Refuses (``ValueError``) a folder that holds anything but a search of this version:
    a file, a 0.1 search (KerasTuner's own files), files a search does not write."""
    if not os.path.exists(path):
        return
    if not os.path.isdir(path):
        raise C.InvalidInput(f"the tuner project {path!r} exists and is not a folder")
    entries = set(os.listdir(path))
    if LEDGER not in entries and ("oracle.json" in entries or any(
            e.startswith("trial_") for e in entries)):
        raise C.InvalidInput(
            f"{path!r} holds a search written by keras_resnet 0.1 (KerasTuner's own "
            f"state files, no ledger.jsonl); this version cannot resume it. {_AGAIN}")
    for entry in sorted(entries - OURS):
        if not entry.startswith("."):
            raise C.InvalidInput(
                f"{path!r} holds {entry!r}, which a search does not write: it is not a "
                "tuner project, so it is neither resumed nor deleted. Choose another "
                "out_dir")

