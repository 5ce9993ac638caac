"""Jobs side by side on the standard executor: results, events, threads, a worker
that dies, a parent that dies (SIGKILL)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from keras_resnet import parallel

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import _parallel_tasks as tasks  # noqa: E402 - module-level functions the workers import


@pytest.fixture(autouse=True)
def _workers_find_the_tasks(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([ROOT, HERE]))
    monkeypatch.setenv("KERAS_BACKEND", "numpy")  # the workers import no TensorFlow or JAX


def test_results_events_and_thread_settings():
    events = []
    out = parallel.run_all(tasks.describe, {f"t{i}": {"n": i} for i in range(4)}, jobs=2,
                           threads=1, on_event=events.append)
    assert list(out) == ["t0", "t1", "t2", "t3"]  # in the order given
    assert [o["n"] for o in out.values()] == [0, 1, 2, 3]
    for o in out.values():  # the initializer set every thread count before the task ran
        assert o["env"]["TF_NUM_INTRAOP_THREADS"] == "1" and o["env"]["OMP_NUM_THREADS"] == "1"
        assert "--xla_cpu_multi_thread_eigen=false" in o["env"]["XLA_FLAGS"]
        assert o["blas_threads"] in (None, 1)
        assert o["parent"] == os.getpid()
    by_task = {}
    for e in events:
        by_task.setdefault(e["id"], []).append(e["event"])
    assert all(kinds == ["start", "step"] for kinds in by_task.values()), by_task
    assert {e["worker"] for e in events} <= {o["pid"] for o in out.values()}


def test_a_task_error_is_raised_with_its_type_and_a_dead_worker_is_named():
    with pytest.raises(ValueError, match="task t1 failed on purpose"):
        parallel.run_all(tasks.fail, {"t0": {"n": 0}, "t1": {"n": 1}}, jobs=1)
    with pytest.raises(RuntimeError, match=r"the worker process running 'dies' died"):
        parallel.run_all(tasks.die, {"dies": {}}, jobs=1)


def test_jobs_rule():
    cores = parallel.usable_cores()
    assert parallel.plan_jobs(8, small_steps=True) == (min(cores, 8), 1)
    assert parallel.plan_jobs(1, small_steps=True) == (1, 1)
    assert parallel.plan_jobs(8, small_steps=False) == (1, cores)  # compute-bound
    assert parallel.plan_jobs(8, 3, 2, small_steps=True) == (3, 2)
    with pytest.raises(ValueError, match=r"jobs must be >= 1\. Received: jobs=0"):
        parallel.plan_jobs(8, 0, small_steps=True)


def test_sigkill_of_the_parent_leaves_no_worker_behind(tmp_path):
    """The workers notice that their parent is gone and end within a second or two."""
    pids_file = tmp_path / "pids"
    code = textwrap.dedent(f"""
        import os, sys, time
        sys.path[:0] = [{ROOT!r}, {HERE!r}]
        import _parallel_tasks as tasks
        from keras_resnet import parallel
        with parallel.Pool(2, 1) as pool:
            futures = [pool.submit(f"t{{i}}", tasks.sleep, seconds=600) for i in range(2)]
            while len(pool.workers) < 2:
                time.sleep(0.05)
            with open({str(pids_file)!r}, "w") as fh:
                fh.write(" ".join(map(str, pool.workers)))
            time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.time() + 120
    while not pids_file.exists() and time.time() < deadline:
        time.sleep(0.1)
    workers = [int(p) for p in pids_file.read_text().split()]
    assert len(workers) == 2 and all(psutil.pid_exists(p) for p in workers)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    alive = workers
    while alive and time.time() < deadline:
        alive = [p for p in workers if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.1)
    assert alive == [], f"workers {alive} outlived their SIGKILLed parent"
