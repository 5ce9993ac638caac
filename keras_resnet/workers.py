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
JSON-ready; ``report(dict)`` sends a progress event. Tuning runs its trials
on the same pool: tasks drawn one at a time from an iterator when a worker is
free, workers replaced when their memory grows (``max_rss_growth``) or when
they die (``restart``).

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
from collections.abc import Callable, Iterable

from keras_resnet import _checks as C


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where known)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def rss_mb() -> float:
    """This process's resident memory in MB (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


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
    if threads == 1:  # XLA has no thread-count flag; every token must be a --flag
        xla += ["--xla_cpu_multi_thread_eigen=false"]
    env["XLA_FLAGS"] = " ".join(xla)
    return env


class TaskFailed(RuntimeError):
    """A task raised in its worker (the message names the task and the error)."""

    def __init__(self, message: str, error_type: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type


class _Worker:
    def __init__(self, index: int, threads: int, events: queue.Queue, log_dir: str,
                 env: dict | None, max_rss_growth: float | None = None) -> None:
        self.index = index
        self.task: dict | None = None
        self.retiring = False
        fd, self.log_path = tempfile.mkstemp(".log", f"worker-{index}-", log_dir)
        self._log = os.fdopen(fd, "w")
        growth = [] if max_rss_growth is None else [str(max_rss_growth)]
        self.proc: subprocess.Popen[str] = subprocess.Popen(
            [sys.executable, "-m", "keras_resnet.workers", str(threads), *growth],
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


def run_tasks(tasks: Iterable, jobs: int, *, threads: int = 1,
              on_event: Callable[[dict], None] | None = None,
              env: dict | None = None, poll_s: float = 0.5, restart: bool = False,
              max_rss_growth: float | None = None) -> dict:
    """Runs independent tasks in ``jobs`` worker processes.

    Tasks are handed out in the order given (put the longest first), each to
    the next idle worker.

    Args:
        tasks: ``[{"id": str, "fn": "module:function", "kwargs": dict}, ...]``,
            or an iterator of such tasks, drawn when a worker is free; it may
            yield None ("no task yet": it is asked again after the next event,
            or after ``poll_s`` seconds).
        jobs: Worker processes (at most one per task of a list).
        threads: Threads of each worker's backend (and BLAS).
        on_event: Called in the parent with every event: ``{"id", "event":
            "start" | "result" | "died" | <what the task reported>, "worker", ...}``.
        env: Environment of the workers (default: this process's).
        poll_s: How often an iterator that yielded None is asked again.
        restart: A worker that dies while running a task is replaced, and the
            task reported as a ``"died"`` event (with ``"message"``) instead of
            raising :class:`TaskFailed`.
        max_rss_growth: A worker whose memory grew by more than this fraction
            since its second task retires after its result; a spare worker,
            started after the first result, takes its place at once.

    Returns:
        ``{task id: the function's return value}``.

    Raises:
        TaskFailed: a task raised (the other workers are stopped).
    """
    jobs = C.check_int("jobs", jobs, minimum=1, maximum=4096)
    threads = C.check_int("threads", threads, minimum=1, maximum=4096)
    if isinstance(tasks, (list, tuple)):
        jobs = min(jobs, len(tasks))
    results: dict = {}
    if not jobs:
        return results
    source = iter(tasks)
    events: queue.Queue = queue.Queue()
    log_dir = tempfile.mkdtemp(prefix="kr-workers-")

    def start(index: int) -> _Worker:
        return _Worker(index, threads, events, log_dir, env, max_rss_growth)

    workers = [start(i) for i in range(jobs)]
    idle, spare, exhausted, ok = list(workers), None, False, False
    try:
        while True:
            while idle and not exhausted:
                task = next(source, _END)
                exhausted = task is _END
                if not isinstance(task, dict):
                    break
                _hand_out(idle.pop(0), task, on_event)
            if exhausted and all(w.task is None for w in workers):
                break
            try:
                worker, event = events.get(timeout=poll_s if idle and not exhausted
                                           else None)
            except queue.Empty:
                continue
            event = {**event, "worker": worker.index}
            kind = event.get("event")
            if worker is spare or worker not in workers:
                spare = None if kind == "exit" and worker is spare else spare
                continue
            if kind == "exit":
                if not worker.retiring and not (restart and worker.task):
                    task_id = worker.task["id"] if worker.task else "?"
                    raise TaskFailed(f"worker {worker.index} died while running "
                                     f"{task_id!r} (exit {worker.proc.wait()}); its log "
                                     f"ends:\n{worker.log_tail()}")
                if worker.task is not None and on_event is not None:
                    on_event({"id": worker.task["id"], "event": "died", "worker":
                              worker.index, "message": f"the worker process died (exit "
                              f"{worker.proc.wait()})"})
                worker.kill()
                new, spare = spare or start(worker.index), None
                new.index = worker.index
                workers[workers.index(worker)] = new
                idle = [w for w in idle if w is not worker] + [new]
                continue
            if kind == "error":
                raise TaskFailed(f"{event['id']}: {event['type']}: {event['message']}",
                                 event["type"])
            if on_event is not None:
                on_event(event)
            if kind == "result":
                results[event["id"]] = event["value"]
                worker.task, worker.retiring = None, bool(event.get("retire"))
                if not worker.retiring:
                    idle.append(worker)
                if max_rss_growth is not None and spare is None:
                    spare = start(-1)
        ok = True
    finally:
        for w in workers:
            w.stop() if ok else w.kill()
        if spare is not None:
            spare.kill()  # it holds no work
        import shutil

        shutil.rmtree(log_dir, ignore_errors=True)
    return results


_END = object()  # the end of a task iterator


def _hand_out(worker: _Worker, task: dict, on_event: Callable | None) -> None:
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


def _serve(threads: int, max_rss_growth: float | None = None) -> None:
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

    first_rss = None
    for done, line in enumerate(sys.stdin, start=1):
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
        rss = rss_mb()
        first_rss = rss if done == 2 else first_rss  # the first tasks allocate for good
        retire = bool(max_rss_growth is not None and first_rss
                      and rss > first_rss * (1 + max_rss_growth))
        send({"id": task_id, "event": "result", "value": value, "retire": retire})
        if retire:
            return


if __name__ == "__main__":
    args = sys.argv[1:]
    _serve(int(args[0]) if args else 1, float(args[1]) if len(args) > 1 else None)
