"""The durable state of a search (Keras-free): a ledger, a lock and claims.

One project folder, shared by any number of processes (one machine or a
shared disk):

* ``ledger.jsonl``: one JSON record per line, appended and fsynced under the
  lock: the search's description, then ``created`` (trial id, values,
  recipe) and ``finished`` (status, per-epoch metrics) records. A line torn
  by a kill is dropped, and cut off before the next append.
* ``lock``: ``fcntl.flock`` around "read the ledger, decide, append".
* ``claims/<trial id>.json``: who runs a trial (host, pid, start time), its
  mtime a heartbeat. An unfinished trial whose claim is stale (process gone,
  or no heartbeat for :data:`STALE_S`) is run again by whoever notices first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator

LEDGER = "ledger.jsonl"
#: Version of the ledger format (the first record holds it).
FORMAT = 2
#: A claim without a heartbeat for this long belongs to a dead process.
STALE_S = 120.0
HEARTBEAT_S = 10.0
HOST = socket.gethostname()


def _start_time(pid: int) -> str | None:
    """The kernel's start time of a process (tells a reused pid apart), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return started is None or _start_time(pid) in (None, started)


class Project:
    """One search's folder: its ledger, lock and claims.

    Args:
        path: The project folder (created when missing).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.ledger_path = os.path.join(path, LEDGER)
        self.claims = os.path.join(path, "claims")
        os.makedirs(self.claims, exist_ok=True)
        self._offset = 0  # bytes of the ledger already read by this process

    @property
    def offset(self) -> int:
        """Bytes of the ledger this process has read (its size when last synced)."""
        return self._offset

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Holds the project's lock (blocking; released by the kernel on a kill)."""
        fd = os.open(os.path.join(self.path, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    # ------------------------------------------------------------ the ledger
    def read_new(self) -> list:
        """Records appended since the last call (a torn last line is left out)."""
        try:
            with open(self.ledger_path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n") + 1
        self._offset += end
        return [json.loads(line) for line in chunk[:end].splitlines() if line.strip()]

    def read_all(self) -> list:
        """Every whole record of the ledger, from the start."""
        self._offset = 0
        return self.read_new()

    def append(self, record: dict) -> None:
        """Appends one record durably; call with the lock held, after :meth:`read_new`.

        A torn line a killed process left at the end is cut off first, so the
        new record starts on a line of its own.
        """
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        fd = os.open(self.ledger_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size != self._offset:
                os.ftruncate(fd, self._offset)
            os.lseek(fd, self._offset, os.SEEK_SET)
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        self._offset += len(line)

    # ------------------------------------------------------------ claims
    def _claim_path(self, trial_id: str) -> str:
        return os.path.join(self.claims, f"{trial_id}.json")

    def claim(self, trial_id: str) -> None:
        """Marks ``trial_id`` as run by this process (call with the lock held)."""
        path = self._claim_path(trial_id)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"host": HOST, "pid": os.getpid(),
                       "started": _start_time(os.getpid())}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def release(self, trial_id: str) -> None:
        """Removes this trial's claim (after its ``finished`` record)."""
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._claim_path(trial_id))

    def heartbeat(self, trial_id: str) -> None:
        """Refreshes the claim's modification time."""
        with contextlib.suppress(FileNotFoundError):
            os.utime(self._claim_path(trial_id))

    def is_orphan(self, trial_id: str) -> bool:
        """Whether an unfinished trial has nobody running it any more."""
        path = self._claim_path(trial_id)
        try:
            with open(path, encoding="utf-8") as fh:
                claim = json.load(fh)
            age = time.time() - os.stat(path).st_mtime
        except (FileNotFoundError, ValueError):
            return True  # killed before its claim was written (or while writing it)
        if claim.get("host") == HOST:
            return not _alive(int(claim["pid"]), claim.get("started"))
        return age > STALE_S


@contextlib.contextmanager
def heartbeat(project: Project, trial_id: str, every_s: float = HEARTBEAT_S
              ) -> Iterator[None]:
    """Keeps a claim fresh while the body runs (a daemon thread)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            project.heartbeat(trial_id)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class Trials:
    """What the ledger says about the trials, folded from its records.

    Attributes:
        config: The search's description (the first record), or None.
        created: ``{trial_id: created record}`` in creation order.
        finished: ``{trial_id: finished record}``.
    """

    def __init__(self) -> None:
        self.config: dict | None = None
        self.created: dict = {}
        self.finished: dict = {}

    def add(self, record: dict) -> None:
        event = record.get("event")
        if event == "search":
            self.config = record
        elif event == "created":
            self.created[record["trial_id"]] = record
        elif event == "finished":
            self.finished.setdefault(record["trial_id"], record)

    def unfinished(self) -> list:
        """Ids of trials created and not finished, oldest first."""
        return [t for t in self.created if t not in self.finished]


def check_folder(path: str) -> None:
    """A folder is only resumed or deleted if it holds a search of this version.

    Raises:
        ValueError: it holds something else, or a 0.1 search (KerasTuner's own
            state files), which this version does not resume.
    """
    if not os.path.exists(path):
        return
    if not os.path.isdir(path):
        raise ValueError(f"tuner project {path!r} exists and is not a folder. Received: "
                         f"project path={path!r}")
    entries = set(os.listdir(path))
    if LEDGER not in entries and ("oracle.json" in entries or any(
            e.startswith("trial_") for e in entries)):
        raise ValueError(
            f"{path!r} holds a search written by keras_resnet 0.1 (KerasTuner's own "
            "state files, no ledger.jsonl); this version cannot resume it. Pass "
            "overwrite=True (--overwrite) to start it again, or another project_name")
    mine = {LEDGER, "lock", "claims", "best_spec.json", "best_hyperparameters.json",
            "best_recipe.json"}
    for entry in entries:
        if entry not in mine and not entry.startswith("."):
            raise ValueError(
                f"{path!r} holds {entry!r}, which a search does not write: it is not a "
                "tuner project, so it is neither resumed nor deleted. Choose another "
                "directory or project_name")
