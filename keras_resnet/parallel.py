"""Independent jobs side by side in worker processes, on the standard executor.

Small networks on small images are bound by per-step overhead: one process
leaves cores idle, while processes of one thread each keep nearly the speed of
one that uses every core. :class:`Pool` runs independent tasks (one model of
``kr.compare``, one trial of ``kr.tune``) in ``jobs`` worker processes of
``threads`` threads each, on ``concurrent.futures.ProcessPoolExecutor`` with
the ``spawn`` start method (TensorFlow does not survive ``fork``):

- each worker's thread count is set by the pool's initializer before its
  backend starts (TensorFlow's and XLA's thread settings, and BLAS through
  ``threadpoolctl``);
- a worker dies with its parent: a killed run (even by SIGKILL) leaves no
  worker writing into its folders;
- a task reports progress with :func:`report`; the parent's ``on_event``
  gets each event (with the task's id) as it happens.

Thread counts change float results on TensorFlow's CPU kernels (the same two
epochs give other weights with 1 and 2 intra-op threads), so the thread count
is part of what makes a run repeat, and it is chosen independently of
``jobs``: the same tasks give the same numbers whatever ``jobs``.

Like every ``spawn`` pool, the worker processes import the script that
started them (under another name): a script that calls ``kr.compare`` or
``kr.tune`` must do so under ``if __name__ == "__main__":``.

This module knows nothing of training; it imports no Keras.

Example:

```python
with Pool(jobs=2, threads=1, on_event=print) as pool:
    futures = {name: pool.submit(name, mymodule.work, size=n) for name, n in todo}
results = {name: f.result() for name, f in futures.items()}
```
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

from keras_resnet import _checks as C

#: How often a worker checks that its parent is alive (seconds).
PARENT_POLL_S = 0.5


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells)."""
    try:
        return max(1, len(psutil.Process().cpu_affinity() or []))
    except (AttributeError, psutil.Error, NotImplementedError):
        return max(1, os.cpu_count() or 1)


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that make TensorFlow, XLA (JAX) and BLAS use ``threads``."""
    n = str(threads)
    env = {name: n for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                                "TF_NUM_INTEROP_THREADS")}
    xla = [f for f in os.environ.get("XLA_FLAGS", "").split()
           if not f.startswith(("--xla_cpu_multi_thread_eigen",
                                "intra_op_parallelism_threads"))]
    if threads == 1:  # XLA has no thread-count flag; every token must be a --flag
        xla.append("--xla_cpu_multi_thread_eigen=false")
    env["XLA_FLAGS"] = " ".join(xla)
    return env


def plan_jobs(tasks: int, jobs: int | str = "auto", threads: int | str = "auto", *,
              small_steps: bool) -> tuple[int, int]:
    """``(jobs, threads)`` for ``tasks`` independent training tasks.

    The rule (a property of the work and the cores, never of one host's
    timing): when each task's training step is small (per-step overhead
    dominates; see ``keras_resnet.flops.SMALL_STEP_MACS``) each worker gets
    one thread and there is one worker per usable core; a bigger step gets
    every core in one worker. ``jobs`` never exceeds ``tasks``.

    Args:
        tasks: How many tasks there are.
        jobs: ``"auto"`` or a number of workers.
        threads: ``"auto"`` or a number of threads per worker.
        small_steps: Whether the tasks' training steps are small.

    Returns:
        ``(jobs, threads)``.
    """
    jobs = jobs if jobs == "auto" else C.check_int("jobs", jobs, minimum=1, maximum=4096)
    threads = threads if threads == "auto" else C.check_int("threads", threads, minimum=1,
                                                            maximum=4096)
    cores = usable_cores()
    n_threads = (1 if small_steps else cores) if threads == "auto" else int(threads)
    n_jobs = max(1, cores // n_threads) if jobs == "auto" else int(jobs)
    return max(1, min(n_jobs, tasks)), n_threads


# ------------------------------------------------------------------ worker side
_EVENTS: Any = None  # the queue to the parent, in a worker
_TASK: Any = None  # the id of the task running in this worker


def report(event: dict) -> None:
    """Sends a progress event (a dict) from a running task to the parent's ``on_event``.

    Outside a pool's worker it does nothing, so a task function also runs
    in-process.
    """
    if _EVENTS is not None:
        _EVENTS.put({**event, "id": _TASK, "worker": os.getpid()})


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)  # this worker's parent is gone: nobody wants its results


def _init_worker(threads: int, events: Any, parent: int) -> None:
    global _EVENTS
    _EVENTS = events
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # TensorFlow and XLA read these when their runtime starts (the first op), not when
    # they are imported: the script that spawned this worker may have imported them.
    os.environ.update(thread_env(threads))
    import threadpoolctl

    threadpoolctl.threadpool_limits(threads)  # NumPy's BLAS, loaded before this ran
    events.put({"event": "worker", "worker": os.getpid()})


def _run_task(task_id: str, fn: Callable, kwargs: dict) -> Any:
    global _TASK
    _TASK = task_id
    report({"event": "start"})
    try:
        return fn(**kwargs)
    finally:
        _TASK = None


# ------------------------------------------------------------------ parent side
class Pool:
    """Worker processes for independent tasks (a context manager).

    Args:
        jobs: Worker processes.
        threads: Threads of each worker's backend and BLAS.
        on_event: Called in the parent (in a thread of its own, one event at a
            time) with each event: ``{"event": "start" | what the task
            reported, "id": the task's id, "worker": its pid, ...}``.

    Leaving the block waits for the tasks; leaving it with an exception (a
    task failed, Ctrl-C) stops the workers at once.
    """

    def __init__(self, jobs: int, threads: int = 1,
                 on_event: Callable[[dict], None] | None = None) -> None:
        self.jobs = C.check_int("jobs", jobs, minimum=1, maximum=4096)
        self.threads = C.check_int("threads", threads, minimum=1, maximum=4096)
        self.on_event = on_event
        self.workers: set[int] = set()
        self._executor: cf.ProcessPoolExecutor | None = None
        self._events: Any = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> Pool:
        context = multiprocessing.get_context("spawn")
        self._events = context.Queue()
        self._executor = cf.ProcessPoolExecutor(
            self.jobs, mp_context=context, initializer=_init_worker,
            initargs=(self.threads, self._events, os.getpid()))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        while True:
            try:
                event = self._events.get()
            except (EOFError, OSError):
                return
            if event is None:
                return
            if event.get("event") == "worker":
                self.workers.add(event["worker"])
            elif self.on_event is not None:
                self.on_event(event)

    def submit(self, task_id: str, fn: Callable, /, **kwargs: Any) -> cf.Future:
        """Queues ``fn(**kwargs)`` (a module-level function) as task ``task_id``."""
        assert self._executor is not None, "use the Pool in a with block"
        return self._executor.submit(_run_task, task_id, fn, kwargs)

    def kill(self) -> None:
        """Ends every worker now (their tasks are lost)."""
        for pid in list(self.workers):
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass

    def __exit__(self, kind: Any, error: Any, tb: Any) -> None:
        assert self._executor is not None
        if error is not None:
            self.kill()
        self._executor.shutdown(wait=True, cancel_futures=error is not None)
        self._events.put(None)
        assert self._reader is not None
        self._reader.join(timeout=10)
        self._events.close()


def run_all(fn: Callable, tasks: dict[str, dict], jobs: int, threads: int = 1,
            on_event: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Runs ``fn(**kwargs)`` for each task, in ``jobs`` workers, in the order given.

    Args:
        fn: A module-level function (the workers import it).
        tasks: ``{task id: keyword arguments}``; put the longest first.
        jobs: Worker processes (at most one per task).
        threads: Threads of each worker.
        on_event: See :class:`Pool`.

    Returns:
        ``{task id: fn's return value}``.

    Raises:
        Exception: The first exception a task raised, as it was raised (the other
            tasks are stopped).
        RuntimeError: A worker died; the message names its task.
    """
    results: dict[str, Any] = {}
    with Pool(min(jobs, max(1, len(tasks))), threads, on_event) as pool:
        futures = {pool.submit(task_id, fn, **kwargs): task_id
                   for task_id, kwargs in tasks.items()}
        for future in cf.as_completed(futures):
            try:
                results[futures[future]] = future.result()
            except cf.process.BrokenProcessPool as e:
                raise RuntimeError(f"the worker process running {futures[future]!r} "
                                   f"died ({e})") from None
    return {task_id: results[task_id] for task_id in tasks}

