"""Independent jobs in local worker processes, side by side.

Small networks on small images are bound by per-step overhead: one process
leaves cores idle, while processes of one thread each keep nearly the speed of
one that uses every core. :func:`run_tasks` runs independent tasks (one model
of :func:`keras_resnet.compare` each) in ``jobs`` worker processes, each
started fresh (``python -m keras_resnet.workers``: no fork, which TensorFlow
does not survive, and no re-import of the caller's script) with its thread
count set before the backend starts. Workers report events (an epoch done, a
result) to the parent as JSON lines; a worker dies with its parent, so a
killed run leaves no orphan writing into its folders.

A task is ``{"id": ..., "fn": "module:function", "kwargs": {...}}``; the
function is called as ``fn(**kwargs, report=report)`` and returns something
JSON-ready; ``report(dict)`` sends a progress event. The same pool can run
tuning trials (one trial per task).

Thread counts change float results on TensorFlow's CPU kernels (checked: the
same 2 epochs give other weights with 1 and 2 intra-op threads), so the thread
count is part of what makes a run repeat, and is chosen independently of
``jobs``.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable

from keras_resnet import _checks as C


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where known)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def thread_env(threads: int, env: dict | None = None) -> dict:
    """An environment in which TensorFlow, XLA (JAX) and BLAS use ``threads`` threads."""
    env = dict(os.environ if env is None else env)
    n = str(threads)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                 "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        env[name] = n
    xla = [f for f in env.get("XLA_FLAGS", "").split()
           if not f.startswith(("--xla_cpu_multi_thread_eigen",
                                "intra_op_parallelism_threads"))]
    if threads == 1:
        xla += ["--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1"]
    else:
        xla += [f"intra_op_parallelism_threads={threads}"]
    env["XLA_FLAGS"] = " ".join(xla)
    return env


class TaskFailed(RuntimeError):
    """A task raised in its worker (the message names the task and the error)."""

    def __init__(self, message: str, error_type: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type


class _Worker:
    def __init__(self, index: int, threads: int, events: queue.Queue, log_dir: str,
                 env: dict | None) -> None:
        self.index = index
        self.task: dict | None = None
        self.log_path = os.path.join(log_dir, f"worker-{index}.log")
        self._log = open(self.log_path, "w")
        self.proc: subprocess.Popen[str] = subprocess.Popen(
            [sys.executable, "-m", "keras_resnet.workers", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
            bufsize=1, env=thread_env(threads, env))
        self._reader = threading.Thread(target=self._read, args=(events,), daemon=True)
        self._reader.start()

    def _read(self, events: queue.Queue) -> None:
        assert self.proc.stdout is not None  # Popen(stdout=PIPE)
        for line in self.proc.stdout:
            try:
                events.put((self, json.loads(line)))
            except json.JSONDecodeError:
                continue
        events.put((self, {"event": "exit"}))

    def send(self, task: dict) -> None:
        self.task = task
        assert self.proc.stdin is not None  # Popen(stdin=PIPE)
        self.proc.stdin.write(json.dumps(task) + "\n")
        self.proc.stdin.flush()

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path, errors="replace") as fh:
                return "".join(fh.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._log.close()


def run_tasks(tasks: list, jobs: int, *, threads: int = 1,
              on_event: Callable[[dict], None] | None = None,
              env: dict | None = None) -> dict:
    """Runs independent tasks in ``jobs`` worker processes.

    Tasks are handed out in the order given (put the longest first), each to
    the next idle worker.

    Args:
        tasks: ``[{"id": str, "fn": "module:function", "kwargs": dict}, ...]``.
        jobs: Worker processes (at most one per task).
        threads: Threads of each worker's backend (and BLAS).
        on_event: Called in the parent with every event: ``{"id", "event":
            "start" | "result" | <what the task reported>, "worker", ...}``.
        env: Environment of the workers (default: this process's).

    Returns:
        ``{task id: the function's return value}``.

    Raises:
        TaskFailed: a task raised (the other workers are stopped).
    """
    jobs = C.check_int("jobs", jobs, minimum=1, maximum=4096)
    threads = C.check_int("threads", threads, minimum=1, maximum=4096)
    pending: list[dict] = list(tasks)
    results: dict = {}
    if not pending:
        return results
    events: queue.Queue = queue.Queue()
    log_dir = tempfile.mkdtemp(prefix="kr-workers-")
    workers = [_Worker(i, threads, events, log_dir, env)
               for i in range(min(jobs, len(pending)))]
    ok = False
    try:
        for w in workers:
            _hand_out(w, pending, on_event)
        while len(results) < len(tasks):
            worker, event = events.get()
            event = {**event, "worker": worker.index}
            kind = event.get("event")
            if kind == "exit":
                task = worker.task["id"] if worker.task else "?"
                raise TaskFailed(f"worker {worker.index} died while running {task!r} "
                                 f"(exit {worker.proc.wait()}); its log ends:\n"
                                 f"{worker.log_tail()}")
            if kind == "error":
                raise TaskFailed(f"{event['id']}: {event['type']}: {event['message']}",
                                 event["type"])
            if on_event is not None:
                on_event(event)
            if kind == "result":
                results[event["id"]] = event["value"]
                worker.task = None
                _hand_out(worker, pending, on_event)
        ok = True
    finally:
        for w in workers:
            w.stop() if ok else w.kill()
        import shutil

        shutil.rmtree(log_dir, ignore_errors=True)
    return results


def _hand_out(worker: _Worker, pending: list, on_event: Callable | None) -> None:
    if not pending:
        return
    task = pending.pop(0)
    worker.send(task)
    if on_event is not None:
        on_event({"id": task["id"], "event": "start", "worker": worker.index})


def _die_with_parent() -> None:
    """Ends this worker when its parent dies (SIGKILL included)."""
    parent = os.getppid()
    try:  # Linux: the kernel sends SIGKILL when the parent goes
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:  # elsewhere: poll
        import time

        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _serve(threads: int) -> None:
    """The worker's loop: tasks in on stdin, events out on the original stdout."""
    _die_with_parent()
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever else prints goes to the log, not into the protocol
    lock = threading.Lock()

    def send(event: dict) -> None:
        with lock:
            out.write(json.dumps(event) + "\n")
            out.flush()

    backend = os.environ.get("KERAS_BACKEND", "")
    if backend in ("", "tensorflow"):
        try:
            import tensorflow as tf
        except ImportError:
            tf = None
        if tf is not None:  # before any op runs
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
    import importlib

    for line in sys.stdin:
        task = json.loads(line)
        task_id = task["id"]
        try:
            module, name = task["fn"].split(":")
            fn = getattr(importlib.import_module(module), name)
            value = fn(**task.get("kwargs", {}),
                       report=lambda e, i=task_id: send({**e, "id": i}))
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            traceback.print_exc()
            send({"id": task_id, "event": "error", "type": type(e).__name__,
                  "message": str(e)})
            continue
        send({"id": task_id, "event": "result", "value": value})


if __name__ == "__main__":
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
