"""The fresh processes of serving: ``python -m keras_resnet.serving._worker JOB.json``.

Two jobs, each described by a JSON file the parent writes (arrays as ``.npy``):

- ``convert``: load a ``.keras`` file and write it as SavedModel/TFLite/ONNX
  (JAX users' conversions, run on TensorFlow);
- ``check``: load an export with its own runtime, run it on the check batch
  and the validation examples, time it at batch 1, and write the results.

Nothing here decides anything: the parent compares and judges
(:mod:`keras_resnet.serving.verify`).
"""

from __future__ import annotations

import json
import sys

import numpy as np

from keras_resnet.serving.convert import convert
from keras_resnet.serving.load import load_model
from keras_resnet.serving.runtime import latency_ms, runner


def convert_job(job: dict) -> dict:
    rep = np.load(job["representative"]) if job.get("representative") else None
    convert(load_model(job["src"]), job["dst"], job["format"], job.get("quantize"),
            job.get("io_dtype", "float32"), rep)
    return {}


def check_job(job: dict) -> dict:
    x = np.load(job["x"])
    run, io = runner(job["path"], job["format"], x.shape[1:])
    np.save(job["y"], run(x))
    if job.get("x_val"):
        np.save(job["y_val"], run(np.load(job["x_val"])))
    runs = int(job.get("latency_runs") or 0)
    return {"io": io, "latency_ms": latency_ms(run, x[0], runs) if runs else None}


def main(argv: list) -> int:
    with open(argv[0], encoding="utf-8") as fh:
        job = json.load(fh)
    result = {"convert": convert_job, "check": check_job}[job["job"]](job)
    with open(job["result"], "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
