"""A small search run in a child process by test_tuning.py (killed, or several at once).

Usage: python _tune_child.py '<json config>'. Config keys: out_dir, max_trials, epochs,
algorithm, hyperband_factor, isolate, jobs, log (a file that gets one JSON line per
trial's training start and end, with the pid and the trial's values), n_train, l2,
die_at (the depth whose trials end their process).

Not collected by pytest (no test_ prefix); test_tuning.py imports its helpers.
The HyperModel is defined here, in an importable module, so a trial worker
process can unpickle it (its PYTHONPATH must hold this folder).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras_resnet as kr  # noqa: E402
from keras_resnet.tuning.space import ResNetHyperModel  # noqa: E402


def tiny_spec(**changes):
    """A two-block net on 8x8x1 digits: a trial takes about a second."""
    spec = kr.ModelSpec(
        input_shape=(8, 8, 1),
        stem=kr.StemSpec(filters=4, kernel_size=3, strides=1, pool=None),
        blocks=[kr.BlockSpec("basic", 4), kr.BlockSpec("basic", 8, strides=2)],
        shortcut="A", classes=10, name="tiny")
    return spec.replace(**changes) if changes else spec


def tiny_data(n_train=300, n_val=100):
    """The first examples of digits as a Data (the validation split's first n_val)."""
    data = kr.load_data("digits")
    (x, y), (xv, yv) = data.train, data.validation
    return kr.Data("digits", (x[:n_train], y[:n_train]), (xv[:n_val], yv[:n_val]),
                   data.input_shape, data.classes, data.class_names)


def key(values):
    """A trial's values as text (Hyperband's tuner/... entries tell its rounds apart)."""
    return json.dumps(values, sort_keys=True)


class LoggedHyperModel(ResNetHyperModel):
    """Appends a line to ``log`` when a trial's training starts and when it ends; ends
    its process (as a crash or the OOM killer would) in trials whose depth is ``die_at``."""

    def __init__(self, base, log=None, die_at=None, **kwargs):
        super().__init__(base, **kwargs)
        self.log, self.die_at = log, die_at

    def train_trial(self, values, data, out_dir):
        if self.die_at is not None and values.get("depth") == self.die_at:
            os._exit(3)
        _log(self.log, "fit_begin", values)
        out = super().train_trial(values, data, out_dir)
        _log(self.log, "fit_end", values)
        return out


def _log(path, event, values):
    if not path:
        return
    line = json.dumps({"pid": os.getpid(), "event": event, "key": key(values)}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def pid_task(die=False):
    """A task of keras_resnet.parallel: this worker's pid and thread setting, or the
    worker dies."""
    from keras_resnet import parallel

    if die:
        os._exit(3)
    parallel.report({"event": "working", "pid": os.getpid()})
    return os.getpid(), os.environ.get("OMP_NUM_THREADS"), os.environ.get("XLA_FLAGS")


def main(cfg):
    from _tune_child import LoggedHyperModel  # this module by name, not __main__

    data = tiny_data(cfg.get("n_train", 300))
    hm = LoggedHyperModel(tiny_spec(), log=cfg.get("log"), die_at=cfg.get("die_at"),
                          depth=[1, 2, 3], l2=cfg.get("l2"),
                          recipe=kr.Recipe(epochs=cfg.get("epochs", 1), batch_size=64))
    result = kr.tune(
        hm, data, algorithm=cfg.get("algorithm", "random"), max_trials=cfg["max_trials"],
        out_dir=cfg["out_dir"], hyperband_factor=cfg.get("hyperband_factor", 3),
        isolate=cfg.get("isolate", True), jobs=cfg.get("jobs", "auto"))
    best = result.best_spec
    print("RESULT " + json.dumps({"best_l2": best.l2, "best_depth": kr.tuning.base_depth(
        best), "ran": sorted(result.search.trial_stats), "stats": result.search.trial_stats,
        "table": result.table()}), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
