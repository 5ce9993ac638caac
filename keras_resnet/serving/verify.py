"""The check of an export, run in a fresh process, judged here.

An export is loaded by its own runtime in a new Python process (the
:mod:`keras_resnet.serving._worker`), run on a random check batch and on the
validation examples, and timed at batch 1. Latency is measured twice, each
time in a fresh process: with every core (:func:`~keras_resnet.serving.machine.all_cores`
threads) and with one thread, LiteRT / onnxruntime and the process' Keras
backend set to that count alike; the Keras model the export came from is
timed in the same processes, interleaved with the export, so their ratio is
fair. This module compares what comes back with the Keras model and decides:

- float exports must match the model's outputs on the check batch within
  :data:`~keras_resnet.serving.formats.TOLERANCE`;
- quantized exports cannot match to 1e-4: their outputs must be finite and of
  the right shape, and with validation examples their top-1 accuracy may drop
  at most ``max_accuracy_drop`` percentage points below the model's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from keras_resnet.serving.formats import TOLERANCE
from keras_resnet.serving.machine import all_cores, thread_env


class ExportVerificationError(RuntimeError):
    """The reloaded export does not reproduce the model's outputs."""


class AccuracyDropError(ExportVerificationError):
    """The export's validation accuracy dropped more than allowed."""


@dataclass(kw_only=True, repr=False)
class Latency:
    """Batch-1 latency of an export and of its Keras model, measured alike: in the same
    fresh processes, runs interleaved, with every core and with one thread.

    Attributes:
        latency_ms: The export's median time per example with ``threads`` threads
            (every core); None when not timed.
        latency_ms_1thread: The same with one thread.
        keras_latency_ms: The Keras model's ``predict_on_batch``, every core.
        keras_latency_ms_1thread: The same with one thread.
        threads: The thread count of "every core".
        cpu: The CPU model the latencies were measured on.
        runtime: The runtime that ran the export, e.g. ``"onnxruntime 1.32.0"``.
    """

    latency_ms: float | None = None
    latency_ms_1thread: float | None = None
    keras_latency_ms: float | None = None
    keras_latency_ms_1thread: float | None = None
    threads: int | None = None
    cpu: str | None = None
    runtime: str | None = None

    def __repr__(self) -> str:  # a subclass' own fields first, then the times measured
        own = [f.name for f in dataclasses.fields(self) if f.name not in _LATENCY]
        shown = own + [n for n in _LATENCY if getattr(self, n) is not None]
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in shown)})"

    @property
    def latency_ratio(self) -> float | None:
        """``latency_ms / keras_latency_ms``: below 1, the export is faster than Keras."""
        if self.latency_ms is None or not self.keras_latency_ms:
            return None
        return self.latency_ms / self.keras_latency_ms

    @property
    def latency_ratio_1thread(self) -> float | None:
        """The same ratio with one thread."""
        if self.latency_ms_1thread is None or not self.keras_latency_ms_1thread:
            return None
        return self.latency_ms_1thread / self.keras_latency_ms_1thread


_LATENCY = [f.name for f in dataclasses.fields(Latency)]


@dataclass(repr=False)
class Check(Latency):
    """What the fresh processes measured (and the :class:`Latency` fields).

    Attributes:
        max_abs_diff: Largest output difference on the random check batch.
        accuracy: Validation numbers (see :func:`compare_accuracy`) or None.
        io: TFLite input/output types, scales and zero points (None otherwise).
    """

    max_abs_diff: float
    accuracy: dict | None = None
    io: dict | None = None


def run_worker(job: dict, arrays: dict, backend: str | None, timeout: int,
               error: type, message: str, threads: int | None = None) -> dict:
    """Runs one worker job in a fresh Python process.

    Args:
        job: The job (see :mod:`keras_resnet.serving._worker`); entries of
            ``arrays`` are saved as ``.npy`` and passed by path.
        arrays: Name -> array (None values are passed as None).
        backend: ``KERAS_BACKEND`` of the process (None: inherit).
        timeout: Seconds.
        error: Exception raised when the process fails; its message ends with
            the last lines the process printed.
        message: Start of that message.
        threads: Threads of the process' Keras backend (None: its default).

    Returns:
        The job's result, with the paths of any ``y*`` outputs loaded as arrays.
    """
    env = thread_env(threads) if threads else dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if backend is not None:
        env["KERAS_BACKEND"] = backend
    with tempfile.TemporaryDirectory(prefix="keras_resnet_worker_") as tmp:
        job = dict(job, result=os.path.join(tmp, "result.json"))
        for name, value in arrays.items():
            job[name] = None
            if value is not None:
                job[name] = os.path.join(tmp, f"{name}.npy")
                np.save(job[name], value)
        for name in ("y", "y_val"):
            job[name] = os.path.join(tmp, f"{name}.npy")
        spec = os.path.join(tmp, "job.json")
        with open(spec, "w", encoding="utf-8") as fh:
            json.dump(job, fh)
        proc = subprocess.run([sys.executable, "-m", "keras_resnet.serving._worker", spec],
                              capture_output=True, text=True, env=env, timeout=timeout)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise error(f"{message}: " + " | ".join(tail))
        with open(job["result"], encoding="utf-8") as fh:
            result = json.load(fh)
        for name in ("y", "y_val"):
            if os.path.exists(job[name]):
                result[name] = np.load(job[name])
    return result


def check_batch(model: Any, batch: int = 4, seed: int = 0) -> np.ndarray:
    """The random check batch: uniform [0, 1) examples of the model's input shape."""
    shape = [d if d is not None else 32 for d in model.inputs[0].shape[1:]]
    return np.random.RandomState(seed).uniform(0, 1, [batch] + shape).astype("float32")


def compare_accuracy(expected: np.ndarray, got: np.ndarray, labels: np.ndarray) -> dict:
    """Top-1 accuracy of the model and of the export, their agreement, the output gap."""
    keras_top1 = float(np.mean(expected.argmax(-1) == labels))
    export_top1 = float(np.mean(got.argmax(-1) == labels))
    return {"examples": int(len(labels)), "keras_top1": keras_top1,
            "export_top1": export_top1,
            "drop_pp": round(100 * (keras_top1 - export_top1), 4),
            "agreement": float(np.mean(expected.argmax(-1) == got.argmax(-1))),
            "max_abs_diff": float(np.max(np.abs(expected - got)))}


def verify_export(model: Any, path: str, format: str, *,  # noqa: A002
                  quantize: str | None = None, atol: float | None = None,
                  validation: tuple | None = None, max_accuracy_drop: float = 1.0,
                  latency_runs: int = 0, reference: str | None = None) -> Check:
    """Reloads an export in a fresh process and compares it with ``model``.

    Args:
        model: The Keras model that was exported.
        path: The export.
        format: Its format.
        quantize: Its quantization (None: float, held to ``atol``).
        atol: Largest allowed difference for float exports (default: the
            format's :data:`TOLERANCE`).
        validation: ``(x, y)`` float32 examples and int labels, or None.
        max_accuracy_drop: Largest allowed drop of top-1 accuracy, in
            percentage points.
        latency_runs: Timed runs at batch 1, at every core and at one thread
            (0: not timed).
        reference: The model as a ``.keras`` file, timed beside the export
            (None: not timed; for ``format="keras"`` the export is the model).

    Returns:
        A :class:`Check`.

    Raises:
        ExportVerificationError: the export does not reload, differs from the
            model, or (:class:`AccuracyDropError`) lost too much accuracy.
    """
    atol = TOLERANCE[format] if atol is None else atol
    x = check_batch(model)
    expected = np.asarray(model.predict(x, verbose=0))
    x_val, y_val = validation if validation is not None else (None, None)
    kind = f"{quantize} " if quantize else ""
    # The exporters' runtime is TensorFlow; a .keras file runs on the user's backend.
    backend = None if format == "keras" else "tensorflow"
    same_backend = backend is None or keras.backend.backend() == backend
    cores = all_cores()
    job = {"job": "check", "format": format, "path": path, "latency_runs": latency_runs,
           "threads": cores, "reference": reference if same_backend else None}
    failed = f"the {kind}{format} export at {path!r} did not reload in a fresh process"
    result = run_worker(job, {"x": x, "x_val": x_val}, backend, 1800,
                        ExportVerificationError, failed)
    got = result["y"]
    if got.shape != expected.shape:
        raise ExportVerificationError(
            f"the {kind}{format} export returns shape {got.shape}, the model "
            f"{expected.shape}")
    if not np.isfinite(got).all():
        raise ExportVerificationError(
            f"the {kind}{format} export returns NaN or inf; nothing was written")
    diff = float(np.max(np.abs(got - expected)))
    if quantize is None and not diff <= atol:
        raise ExportVerificationError(
            f"the {format} export differs from the model by {diff:.3g} (allowed "
            f"{atol:g}); nothing was written")
    accuracy = None
    if x_val is not None:
        keras_out = np.asarray(model.predict(x_val, batch_size=256, verbose=0))
        accuracy = compare_accuracy(keras_out, result["y_val"], y_val)
        if accuracy["drop_pp"] > max_accuracy_drop:
            raise AccuracyDropError(
                f"the {kind}{format} export's validation top-1 accuracy is "
                f"{accuracy['export_top1']:.4f}, the Keras model's "
                f"{accuracy['keras_top1']:.4f}: a drop of {accuracy['drop_pp']:.2f} "
                f"percentage points, more than max_accuracy_drop={max_accuracy_drop:g}; "
                "nothing was written")
    check = Check(diff, accuracy, result.get("io"), latency_ms=result.get("latency_ms"),
                  threads=cores, cpu=result.get("cpu"), runtime=result.get("runtime"),
                  keras_latency_ms=result.get("keras_latency_ms"))
    if latency_runs:
        _time_more(check, job, x, backend, same_backend, reference, failed)
    return check


def _time_more(check: Check, job: dict, x: np.ndarray, backend: str | None,
               same_backend: bool, reference: str | None, failed: str) -> None:
    """One thread (a second fresh process), and the Keras model on its own backend
    where the export's runtime process is another backend's (JAX users)."""
    one = check.threads == 1
    if one:
        check.latency_ms_1thread = check.latency_ms
    else:
        single = run_worker(dict(job, threads=1, outputs=False), {"x": x}, backend, 1800,
                            ExportVerificationError, failed, threads=1)
        check.latency_ms_1thread = single["latency_ms"]
        check.keras_latency_ms_1thread = single.get("keras_latency_ms")
    if job["format"] == "keras":  # the export is the Keras model
        check.keras_latency_ms = check.latency_ms
        check.keras_latency_ms_1thread = check.latency_ms_1thread
    elif reference and not same_backend:
        timed = []
        for threads in ([check.threads] if one else [check.threads, 1]):
            timed.append(run_worker(
                {"job": "check", "format": "keras", "path": reference, "outputs": False,
                 "latency_runs": job["latency_runs"], "threads": threads}, {"x": x}, None,
                1800, ExportVerificationError, "timing the Keras model failed",
                threads=threads)["latency_ms"])
        check.keras_latency_ms, check.keras_latency_ms_1thread = timed[0], timed[-1]
    if one:
        check.keras_latency_ms_1thread = check.keras_latency_ms
