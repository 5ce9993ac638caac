"""The fresh processes of serving: ``python -m keras_resnet.serving._worker JOB.json``.

Two jobs, each described by a JSON file the parent writes (arrays as ``.npy``):

- ``convert``: load a ``.keras`` file and write it as SavedModel/TFLite/ONNX
  (JAX users' conversions, run on TensorFlow);
- ``check``: open an export with its own runtime
  (:class:`~keras_resnet.serving.runtime.ExportedModel`) at the job's thread
  count, run it on the check batch and the validation examples (when given),
  and time it at batch 1, interleaved with the Keras model it came from
  (``reference``, a ``.keras`` file) so both are measured alike. The parent
  starts the process with its Keras backend's threads set to the same count
  (:func:`~keras_resnet.serving.machine.thread_env`).

Nothing here decides anything: the parent compares and judges
(:mod:`keras_resnet.serving.verify`).
"""

from __future__ import annotations

import json
import sys

import numpy as np

from keras_resnet.serving.convert import convert
from keras_resnet.serving.load import load_model
from keras_resnet.serving.machine import cpu_name
from keras_resnet.serving.runtime import ExportedModel, latencies


def convert_job(job: dict) -> dict:
    rep = np.load(job["representative"]) if job.get("representative") else None
    convert(load_model(job["src"]), job["dst"], job["format"], job.get("quantize"),
            job.get("io_dtype", "float32"), rep)
    return {}


def check_job(job: dict) -> dict:
    threads = job.get("threads")
    own_threads = job["format"] in ("tflite", "onnx")
    model = ExportedModel(job["path"], threads if own_threads else None)
    if model.format != job["format"]:
        raise ValueError(f"{job['path']!r} opened as {model.format}, not {job['format']}")
    x = np.load(job["x"])
    if job.get("outputs", True):
        np.save(job["y"], model(x))
        if job.get("x_val"):
            np.save(job["y_val"], model(np.load(job["x_val"])))
    result = {"io": model.io, "runtime": model.runtime, "threads": threads,
              "cpu": cpu_name(), "latency_ms": None, "keras_latency_ms": None}
    runs = int(job.get("latency_runs") or 0)
    if runs:
        timed = {"latency_ms": model}
        if job.get("reference"):
            timed["keras_latency_ms"] = ExportedModel(job["reference"])
        result.update(latencies(timed, x[0], runs))
    return result


def main(argv: list) -> int:
    with open(argv[0], encoding="utf-8") as fh:
        job = json.load(fh)
    result = {"convert": convert_job, "check": check_job}[job["job"]](job)
    with open(job["result"], "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
