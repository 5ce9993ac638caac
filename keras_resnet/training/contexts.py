"""Where and in which precision a model is built and trained.

:func:`distribution` puts a data-parallel engine in force (TensorFlow's
``MirroredStrategy`` or Keras' JAX ``DataParallel``, on one machine or over
several processes); :func:`precision` sets the Keras dtype policy. Both
restore what was there before.

Several processes (``"multi_process"``, JAX only) join through JAX's
``jax.distributed.initialize`` (what ``keras.distribution.initialize`` calls,
given the connect timeout); one ``DataParallel`` then spans every process's
devices. An error in a process of such a job is raised as
:class:`ProcessGroupError`, naming the process and the coordinator. Library
code never ends the process; a program that wants the whole job to stop at
once (JAX's distributed runtime cannot go on without a member, and a normal
exit waits up to 100 s for the dead peer in JAX's shutdown barrier) opts in
with :func:`exit_on_error`, as ``keras-resnet train`` does.

:class:`Placement` is the setting a training run takes: the distribution and
the precision, checked before any work.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from keras_resnet import _checks as C

DISTRIBUTE = (None, "auto", "mirrored", "data_parallel", "multi_process")
PRECISIONS = (None, "mixed_float16", "mixed_bfloat16")
#: What ``keras.distribution.initialize()`` reads when given no arguments.
ENV_VARS = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
            "KERAS_DISTRIBUTION_PROCESS_ID")
#: Keras' one-process-per-worker TensorFlow strategy does not train under ``fit``.
TF_MULTI_WORKER = ("distribute='multi_process' needs the JAX backend: TensorFlow's "
                   "MultiWorkerMirroredStrategy does not train under Keras 3's fit "
                   "(keras-team/keras#20585); run every process with KERAS_BACKEND=jax. "
                   "Received: backend='tensorflow'")


@dataclass
class Distribution:
    """What :func:`distribution` put in force: a description and the replicas.

    ``process_index`` / ``process_count``: this process and the number of
    processes of a multi-process job (0 and 1 otherwise); only process 0
    writes files.
    """

    name: str
    replicas: int
    divisible_batches: bool = False  # JAX shards each batch evenly over the devices
    process_index: int = 0
    process_count: int = 1


@dataclass(frozen=True)
class MultiProcess:
    """One training job over several processes (JAX backend), for ``distribute=``.

    Each field left as None is read from Keras' variables
    (``KERAS_DISTRIBUTION_JOB_ADDRESSES``, ``KERAS_DISTRIBUTION_NUM_PROCESSES``,
    ``KERAS_DISTRIBUTION_PROCESS_ID``); ``distribute="multi_process"`` is
    ``MultiProcess()``.

    Attributes:
        job_addresses: ``host:port`` of process 0, the coordinator (or every
            process's address, comma-separated, the first being process 0's).
        num_processes: Processes in the job.
        process_id: This process, ``0 .. num_processes - 1``.
        connect_timeout: Seconds to wait for the job to form. A process other
            than 0 that finds nothing listening at the coordinator in this time
            raises :class:`ProcessGroupError` naming the address (the usual
            mistakes: process 0 not started, a wrong host or port). Once the
            coordinator answers, JAX waits the rest of this time for every
            process to join and, if one never does, ends the process itself
            (SIGABRT, after JAX's own message): its public API has no way to
            turn that into an exception. Each process says on stderr which job
            it joins before it waits.

    Example:

    ```python
    kr.train("cifar_resnet20", "digits", out_dir="runs/mp",
             distribute=kr.training.MultiProcess("10.0.0.1:1234", 2, process_id=0))
    ```
    """

    job_addresses: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    connect_timeout: float = 240.0

    def resolved(self) -> MultiProcess:
        """The same with every field given (from the variables where None),
        checked; ``ValueError`` naming the missing one."""
        values: dict[str, Any] = {"job_addresses": self.job_addresses,
                                  "num_processes": self.num_processes,
                                  "process_id": self.process_id}
        for (name, value), var in zip(list(values.items()), ENV_VARS):
            if value is None:
                if not os.environ.get(var):
                    raise C.InvalidInput(f"{name} is needed for a multi-process run: pass it, "
                                     f"or set {var} in every process. Received: {name}=None")
                values[name] = os.environ[var]
        address = C.check_str("job_addresses", values["job_addresses"])
        first = address.split(",")[0].strip()
        port = first.rpartition(":")[2]
        if ":" not in first or not port.isdigit() or not 0 < int(port) < 65536:
            C.fail("job_addresses", "must be host:port of process 0 (a port 1-65535)",
                   address)
        try:
            count = int(values["num_processes"])
            index = int(values["process_id"])
        except (TypeError, ValueError):
            C.fail("num_processes", "and process_id must be whole numbers",
                   (values["num_processes"], values["process_id"]))
        C.check_int("num_processes", count, minimum=1)
        C.check_int("process_id", index, minimum=0, maximum=count - 1)
        timeout = C.check_float("connect_timeout", self.connect_timeout, minimum=1.0)
        return MultiProcess(address, count, index, timeout)


def is_multi_process(distribute: Any) -> bool:
    """Whether ``distribute`` asks for a multi-process job (``"auto"`` does when
    Keras' ``KERAS_DISTRIBUTION_*`` variables are all set)."""
    if isinstance(distribute, MultiProcess) or distribute == "multi_process":
        return True
    return distribute == "auto" and all(os.environ.get(v) for v in ENV_VARS)


_SCRATCH: list = []


def scratch_dir(index: int) -> str:
    """A private temporary folder for process ``index`` of a multi-process job
    (removed by :func:`remove_scratch`, at exit, or by :func:`exit_on_error`)."""
    path = tempfile.mkdtemp(prefix=f"keras-resnet-process{index}-")
    _SCRATCH.append(path)
    atexit.register(shutil.rmtree, path, True)
    return path


def remove_scratch(path: str) -> None:
    """Removes a folder made by :func:`scratch_dir`."""
    shutil.rmtree(path, ignore_errors=True)
    if path in _SCRATCH:
        _SCRATCH.remove(path)


class ProcessGroupError(RuntimeError):
    """An error in one process of a multi-process job (the message names the
    process and the coordinator). Its peers cannot go on without it: see
    :func:`exit_on_error`."""


@contextlib.contextmanager
def exit_on_error(code: int = 1) -> Iterator[None]:
    """Ends the process at once, with one line on stderr, when a multi-process
    job's block raises :class:`ProcessGroupError` (opt-in; the command line uses it).

    ``os._exit``, not ``sys.exit``: a normal exit runs JAX's shutdown barrier,
    which waits for a dead peer until the coordination service's heartbeat
    timeout (100 s) and then aborts. The process's scratch folders are removed
    first.

    Example:

    ```python
    with kr.training.exit_on_error():
        kr.train(spec, data, distribute="multi_process", out_dir="/shared/run")
    ```
    """
    try:
        yield
    except ProcessGroupError as e:
        line = " ".join(part.strip() for part in str(e).splitlines() if part.strip())
        for path in list(_SCRATCH):
            remove_scratch(path)
        sys.stdout.flush()
        print(f"keras-resnet: error: {line}", file=sys.stderr, flush=True)
        os._exit(code)


def check_multi_process_backend() -> None:
    """``ValueError`` unless the backend is JAX (see :data:`TF_MULTI_WORKER`)."""
    backend = keras.backend.backend()
    if backend != "jax":
        raise C.InvalidInput(TF_MULTI_WORKER.replace("'tensorflow'", repr(backend)))


@contextlib.contextmanager
def _multi_process(config: MultiProcess) -> Iterator[Distribution]:
    check_multi_process_backend()
    config = config.resolved()
    import jax

    coordinator = str(config.job_addresses).split(",")[0].strip()
    where = f"process {config.process_id} of {config.num_processes}, coordinator {coordinator}"
    if not jax.distributed.is_initialized():  # once per process
        print(f"keras-resnet: {where}: joining the job (waiting up to "
              f"{config.connect_timeout:g} s)", file=sys.stderr, flush=True)
        deadline = time.monotonic() + config.connect_timeout
        if config.process_id != 0 and not _answers(coordinator, deadline):
            raise ProcessGroupError(
                f"{where}: the job did not form within {config.connect_timeout:g} s "
                f"(nothing answers at {coordinator}); is process 0 running at that "
                f"address, and were all {config.num_processes} processes started with "
                "the same address and count?")
        # Collectives between CPU devices of several processes need gloo (on GPU
        # or TPU machines this only concerns the host's CPU devices).
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        try:
            # What keras.distribution.initialize does, with the connect timeout
            # (Keras passes none: JAX would wait 300 s). The random state Keras
            # would agree on across processes is set by the run's seed instead.
            jax.distributed.initialize(
                coordinator, config.num_processes, config.process_id,
                initialization_timeout=max(1, round(deadline - time.monotonic())))
        except Exception as e:  # noqa: BLE001 - JAX's runtime errors name no address
            raise ProcessGroupError(
                f"{where}: the job did not form within {config.connect_timeout:g} s ({e}); "
                f"is process 0 running at that address, and were all "
                f"{config.num_processes} processes started with the same address and "
                "count?") from e
    devices = keras.distribution.list_devices()
    previous = keras.distribution.distribution()
    # Each process feeds its own shard (pipeline.shard_epoch), so no auto-sharding.
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False))
    try:
        yield Distribution(f"DataParallel over {len(devices)} {jax.devices()[0].platform} "
                           f"devices in {jax.process_count()} processes (this is process "
                           f"{jax.process_index()})", len(devices), divisible_batches=True,
                           process_index=jax.process_index(),
                           process_count=jax.process_count())
    except Exception as e:  # noqa: BLE001 - named for the job
        if isinstance(e, ProcessGroupError):
            raise
        raise ProcessGroupError(f"{where}: {type(e).__name__}: {e}"
                                if not isinstance(e, ValueError) else f"{where}: {e}") from e
    finally:
        keras.distribution.set_distribution(previous)


def _answers(address: str, deadline: float) -> bool:
    """Whether something accepts a TCP connection at ``host:port`` before
    ``deadline`` (``time.monotonic()``), trying twice a second.

    JAX's client aborts the process when the coordinator never answers; this
    check lets a process that would only wait for a missing process 0 raise
    instead."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            with socket.create_connection((host, int(port)), timeout=min(left, 1.0)):
                return True
        except OSError:
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


def same_on_every_process(value: int, what: str) -> int:
    """``value`` if every process of the job has it, else ``ValueError`` listing them."""
    from jax.experimental import multihost_utils

    values = np.asarray(multihost_utils.process_allgather(np.int64(value))).reshape(-1)
    if len(set(values.tolist())) > 1:
        raise RuntimeError(f"the processes disagree on {what}: "
                         + ", ".join(f"process {i}: {v}" for i, v in enumerate(values)))
    return value


@contextlib.contextmanager
def distribution(distribute: Any) -> Iterator[Distribution | None]:
    """Builds and trains under a data-parallel distribution, if one applies.

    Args:
        distribute: None (none), ``"auto"`` (every GPU, or every logical CPU
            device that was configured, when there are two or more),
            ``"mirrored"`` (TensorFlow ``MirroredStrategy`` over those devices),
            ``"data_parallel"`` (Keras' JAX ``DataParallel`` over all devices),
            ``"multi_process"`` or a :class:`MultiProcess` (JAX: one
            ``DataParallel`` over the devices of several processes, joined by
            ``keras.distribution.initialize``; ``"auto"`` picks it when the
            ``KERAS_DISTRIBUTION_*`` variables are set), or a
            ``tf.distribute.Strategy``.

    Yields:
        A :class:`Distribution` (None when nothing is used).
    """
    if distribute is None:
        yield None
        return
    backend = keras.backend.backend()
    if is_multi_process(distribute):
        config = distribute if isinstance(distribute, MultiProcess) else MultiProcess()
        with _multi_process(config) as d:
            yield d
        return
    if not isinstance(distribute, str):  # a tf.distribute.Strategy
        with distribute.scope():
            yield Distribution(type(distribute).__name__, distribute.num_replicas_in_sync)
        return
    C.check_choice("distribute", distribute, DISTRIBUTE)
    if backend == "jax" and distribute in ("auto", "data_parallel"):
        import jax

        devices = jax.devices()
        if len(devices) < 2 and distribute == "auto":
            yield None
            return
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield Distribution(f"DataParallel over {len(devices)} {devices[0].platform} "
                               "devices", len(devices), divisible_batches=True)
        finally:
            keras.distribution.set_distribution(previous)
        return
    if backend == "tensorflow" and distribute in ("auto", "mirrored"):
        import tensorflow as tf

        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        if len(devices) < 2 and distribute == "auto":
            yield None
            return
        strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
        with strategy.scope():
            yield Distribution(f"MirroredStrategy over {len(devices)} devices", len(devices))
        return
    raise C.InvalidInput(f"distribute={distribute!r} is not available on the {backend} backend "
                     "('mirrored' needs TensorFlow, 'data_parallel' JAX; 'auto' picks). "
                     f"Received: distribute={distribute!r}")


@contextlib.contextmanager
def precision(policy: str | None) -> Iterator[None]:
    """Sets the Keras dtype policy while a model is built, then restores it."""
    C.check_choice("mixed_precision", policy, PRECISIONS)
    if policy is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@dataclass(frozen=True)
class Placement:
    """Where and in which precision a model trains: the distribution and the
    dtype policy, checked when made (before any work).

    Attributes:
        distribute: See :func:`distribution` (None: one device).
        mixed_precision: None, ``"mixed_float16"`` or ``"mixed_bfloat16"``.

    Example:

    ```python
    placement = kr.training.Placement("data_parallel", "mixed_bfloat16")
    ```
    """

    distribute: Any = None
    mixed_precision: str | None = None

    def __post_init__(self) -> None:
        C.check_choice("mixed_precision", self.mixed_precision, PRECISIONS)
        d = self.distribute
        if isinstance(d, str) or d is None:
            C.check_choice("distribute", d, DISTRIBUTE)

    @property
    def multi_process(self) -> bool:
        """Whether this is a job over several processes."""
        return is_multi_process(self.distribute)

    @property
    def rebuilds(self) -> bool:
        """Whether a model must be built under the placement (a strategy or a dtype
        policy must be in force while its layers are created)."""
        return self.distribute is not None or self.mixed_precision is not None

    @contextlib.contextmanager
    def scope(self) -> Iterator[Distribution | None]:
        """Puts the distribution and the precision in force; yields the
        :class:`Distribution` (None on one device)."""
        with distribution(self.distribute) as strategy, precision(self.mixed_precision):
            yield strategy
