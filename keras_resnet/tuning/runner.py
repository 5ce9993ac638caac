"""Runs one trial (the steps of ``kr.train``), in this process or in a worker process.

A trial is :meth:`ResNetHyperModel.build_values
<keras_resnet.tuning.space.ResNetHyperModel.build_values>` and :meth:`Recipe.fit
<keras_resnet.training.recipe.Recipe.fit>`. On TensorFlow each trained model
leaves about 20 MB that ``clear_session()`` does not free, so
:func:`~keras_resnet.tuning.tune` trains in a worker process (``python -m
keras_resnet.tuning.runner``) and replaces it, by a spare started ahead of time,
once its memory has grown by :data:`MAX_GROWTH`.

Protocol on the worker's stdin/stdout: length-prefixed pickles; the setup
``(hypermodel, data)``, then one ``values`` dict per trial, each answered by
:func:`run_trial`'s dict. The worker exits when its parent is gone.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
import time
from typing import IO, Any

#: A worker whose RSS grew by more than this fraction since its second trial (the
#: first ones still allocate for good) is replaced.
MAX_GROWTH = 0.06


def rss_mb() -> float:
    """This process's resident memory in MB (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def run_trial(hypermodel: Any, data: Any, values: dict) -> dict:
    """Trains one trial; never raises for the trial's own failures.

    Returns:
        ``{"status": "COMPLETED", "metrics": {name: [per epoch]}, "build_s",
        "fit_s", "rss_mb"}``, or ``{"status": "FAILED", "message": ...}``.
    """
    import keras

    t0 = time.perf_counter()
    try:
        keras.backend.clear_session()
        model = hypermodel.build_values(values)
        t1 = time.perf_counter()
        history = hypermodel.fit_values(model, values, data)
    except Exception as e:  # noqa: BLE001 - a failed trial is a result, not a crash
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        return {"status": "FAILED", "message": f"{type(e).__name__}: "
                f"{lines[0] if lines else ''}", "rss_mb": rss_mb()}
    t2 = time.perf_counter()
    metrics = {k: [float(v) for v in vs] for k, vs in history.history.items()
               if k != "learning_rate"}
    return {"status": "COMPLETED", "metrics": metrics, "build_s": t1 - t0,
            "fit_s": t2 - t1, "rss_mb": rss_mb()}


def send(fh: IO[bytes] | None, obj: Any) -> None:
    if fh is None:
        raise BrokenPipeError("the worker's pipe is closed")
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    fh.write(struct.pack("!Q", len(data)) + data)
    fh.flush()


def recv(fh: IO[bytes] | None) -> Any:
    if fh is None:
        raise EOFError
    head = fh.read(8)
    if len(head) < 8:
        raise EOFError
    (size,) = struct.unpack("!Q", head)
    data = fh.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class Worker:
    """A trial worker process (started at once; its imports run in the background).

    Args:
        setup: ``pickle.dumps((hypermodel, data))``.
    """

    def __init__(self, setup: bytes) -> None:
        import keras

        import keras_resnet

        root = os.path.dirname(os.path.dirname(os.path.abspath(keras_resnet.__file__)))
        env = dict(os.environ, KERAS_BACKEND=keras.backend.backend(),
                   PYTHONPATH=os.pathsep.join(
                       [root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "keras_resnet.tuning.runner"], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.first_rss: float | None = None
        self.last_rss: float | None = None
        self.trials = 0
        # The pipe holds 64 KB: write the setup while the worker starts.
        self._writer = threading.Thread(target=self._write, args=(setup,), daemon=True)
        self._writer.start()

    def _write(self, setup: bytes) -> None:
        try:
            send(self.proc.stdin, setup)
        except (BrokenPipeError, OSError):
            pass

    def run(self, values: dict) -> dict:
        """Runs a trial in the worker; a worker that dies gives a FAILED result."""
        self._writer.join()
        try:
            send(self.proc.stdin, values)
            out = recv(self.proc.stdout)
        except (EOFError, BrokenPipeError, OSError):
            code = self.proc.wait()
            return {"status": "FAILED", "message": f"the trial's worker process died "
                    f"(exit code {code})", "worker_died": True}
        self.trials += 1
        self.last_rss = out.get("rss_mb")
        if self.trials == 2:
            self.first_rss = self.last_rss
        return out

    def growth(self) -> float:
        """RSS growth since the second trial, as a fraction (0 until the third)."""
        if not self.first_rss or not self.last_rss:
            return 0.0
        return self.last_rss / self.first_rss - 1

    def close(self) -> None:
        """Ends the worker at once (its results are in; it holds nothing to save)."""
        self.proc.kill()
        self.proc.wait()
        self._writer.join()  # a setup still being written ends with a broken pipe
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)  # the search was killed: stop training for nobody


def main() -> None:
    """Entry point of the worker process."""
    parent = os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # Keras' and TensorFlow's prints must not reach the protocol
    inp = sys.stdin.buffer
    hypermodel, data = pickle.loads(recv(inp))
    while True:
        try:
            values = recv(inp)
        except EOFError:
            return
        send(out, run_trial(hypermodel, data, values))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
