"""The machine a latency was measured on: CPU model, its relevant features, thread counts.

Keras-free (the benchmarks read it too). A latency means little without the
CPU it was measured on and the number of threads it used: every latency the
export check, the model card and ``benchmarks/latency.py`` report carries
:func:`cpu_name`, :func:`cpu_flags` and a thread count, where "all cores" is
:func:`all_cores`.

Example:

```python
from keras_resnet.serving import machine
machine.cpu_name(), machine.all_cores()   # ('AMD EPYC', 2)
```
"""

from __future__ import annotations

import os
import platform

#: CPU features that decide which inference kernels run fast: AVX-512 and its
#: int8 dot product (VNNI), bfloat16, Intel AMX, and the AVX2-era VNNI.
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8",
         "amx_bf16", "asimddp", "bf16", "i8mm", "sve")


def _cpuinfo() -> dict:
    """The first processor's entries of ``/proc/cpuinfo`` (empty where there is none)."""
    info: dict = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    if info:
                        break
                    continue
                key, _, value = line.partition(":")
                info.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    return info


def cpu_name() -> str:
    """The CPU model: ``/proc/cpuinfo``'s model name where present, else
    ``platform.processor()``, else the machine type (e.g. ``"arm64"``)."""
    info = _cpuinfo()
    for key in ("model name", "cpu model", "hardware", "processor"):
        value = info.get(key, "")
        if value and not value.isdigit():
            return value
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> list:
    """Which of :data:`FLAGS` the CPU reports (``/proc/cpuinfo``; empty elsewhere)."""
    info = _cpuinfo()
    have = set((info.get("flags") or info.get("features") or "").split())
    return [f for f in FLAGS if f in have]


def all_cores() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def thread_env(threads: int, environ: dict | None = None) -> dict:
    """Environment for a fresh process whose Keras backend uses ``threads`` threads.

    TensorFlow reads ``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS``
    XLA (JAX) is made single-threaded through ``XLA_FLAGS`` for
    ``threads=1`` (it has no flag for other counts), OpenMP and BLAS read their
    own variables. ``threads`` equal to :func:`all_cores` leaves the defaults
    (every core). The LiteRT interpreter and onnxruntime take the count as an
    argument instead.

    Args:
        threads: Threads per operation (1: one core).
        environ: The environment to start from (default ``os.environ``).

    Returns:
        A new environment dictionary.
    """
    env = dict(os.environ if environ is None else environ)
    if threads >= all_cores():
        return env
    n = str(threads)
    env.update(TF_NUM_INTRAOP_THREADS=n, TF_NUM_INTEROP_THREADS="1", OMP_NUM_THREADS=n,
               OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n)
    xla = env.get("XLA_FLAGS", "")
    if threads == 1 and "xla_cpu_multi_thread_eigen" not in xla:
        env["XLA_FLAGS"] = (xla + " --xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1").strip()
    return env


def describe() -> dict:
    """``{"cpu": ..., "cpu_flags": [...], "cores": ..., "machine": ...}`` for reports."""
    return {"cpu": cpu_name(), "cpu_flags": cpu_flags(), "cores": all_cores(),
            "machine": platform.machine()}
