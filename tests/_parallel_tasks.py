"""Module-level task functions for test_parallel.py (worker processes import them).

Not collected by pytest (no test_ prefix).
"""

import os
import time

from keras_resnet import parallel


def describe(n):
    """What the worker looks like from inside: its thread settings and its parent."""
    parallel.report({"event": "step", "n": n})
    import threadpoolctl

    limits = [info.get("num_threads") for info in threadpoolctl.threadpool_info()]
    return {"n": n, "pid": os.getpid(), "parent": os.getppid(),
            "env": {k: os.environ.get(k, "") for k in ("TF_NUM_INTRAOP_THREADS",
                                                       "OMP_NUM_THREADS", "XLA_FLAGS")},
            "blas_threads": max(limits) if limits else None}


def fail(n):
    if n == 1:
        raise ValueError(f"task t{n} failed on purpose")
    return n


def die():
    os._exit(3)


def pid():
    return os.getpid()


def sleep(seconds):
    time.sleep(seconds)
