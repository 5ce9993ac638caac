"""A small search run in a child process by test_tuning.py (killed, or several at once).

Usage: python _tune_child.py '<json config>'. Config keys: directory, project,
max_trials, epochs, algorithm, hyperband_factor, isolate, jobs, log (a file that gets
one JSON line per fit start and end, with the pid and the trial's values), n_train.

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
    """Appends a line to ``log`` when a trial's fit starts and when it ends."""

    def __init__(self, base, log=None, **kwargs):
        super().__init__(base, **kwargs)
        self.log = log

    def fit_values(self, model, values, data, **kwargs):
        _log(self.log, "fit_begin", values)
        out = super().fit_values(model, values, data, **kwargs)
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


def pid_task(report, die=False):
    """A task of keras_resnet.workers: this worker's pid, or the worker dies."""
    if die:
        os._exit(3)
    return os.getpid()


def main(cfg):
    from _tune_child import LoggedHyperModel  # this module by name, not __main__

    data = tiny_data(cfg.get("n_train", 300))
    hm = LoggedHyperModel(tiny_spec(), log=cfg.get("log"), depth=[1, 2, 3],
                          l2=cfg.get("l2"),
                          recipe=kr.Recipe(epochs=cfg.get("epochs", 1), batch_size=64))
    best, search = kr.tuning.tune(
        hm, data, algorithm=cfg.get("algorithm", "random"), max_trials=cfg["max_trials"],
        directory=cfg["directory"], project_name=cfg["project"],
        hyperband_factor=cfg.get("hyperband_factor", 3), isolate=cfg.get("isolate", True),
        jobs=cfg.get("jobs", "auto"))
    print("RESULT " + json.dumps({"best_l2": best.l2, "best_depth": kr.tuning.base_depth(
        best), "ran": sorted(search.trial_stats)}), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
