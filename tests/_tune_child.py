"""A small search run in a child process by test_tuning.py (killed, or distributed).

Usage: python _tune_child.py '<json config>'. Config keys: directory, project,
max_trials, epochs, algorithm, log (a file that gets one JSON line per fit start
and end, with the pid and the hyperparameter values), n_train.

Not collected by pytest (no test_ prefix); test_tuning.py imports its helpers.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras_resnet as kr  # noqa: E402


def tiny_spec(**changes):
    """A two-block net on 8x8x1 digits: a trial takes about a second."""
    spec = kr.ModelSpec(
        input_shape=(8, 8, 1),
        stem=kr.StemSpec(filters=4, kernel_size=3, strides=1, pool=None),
        blocks=[kr.BlockSpec("basic", 4), kr.BlockSpec("basic", 8, strides=2)],
        shortcut="A", classes=10, name="tiny")
    return spec.replace(**changes) if changes else spec


def tiny_data(n_train=300, n_val=100):
    data = kr.load_data("digits")
    (x, y), (xv, yv) = data.train, data.validation
    return x[:n_train], y[:n_train], (xv[:n_val], yv[:n_val])


def _log(path, event, values):
    line = json.dumps({"pid": os.getpid(), "event": event, "values": values}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def main(cfg):
    from keras_resnet import tuning

    log = cfg.get("log")
    if log:
        real_fit = tuning.ResNetHyperModel.fit

        def fit(self, hp, model, *args, **kwargs):
            values = {k: v for k, v in hp.values.items() if not k.startswith("tuner/")}
            _log(log, "fit_begin", values)
            out = real_fit(self, hp, model, *args, **kwargs)
            _log(log, "fit_end", values)
            return out

        tuning.ResNetHyperModel.fit = fit
    x, y, val = tiny_data(cfg.get("n_train", 300))
    best, tuner = tuning.tune(
        tiny_spec(), x, y, validation_data=val, algorithm=cfg.get("algorithm", "random"),
        max_trials=cfg["max_trials"], epochs=cfg.get("epochs", 1), batch_size=64,
        directory=cfg["directory"], project_name=cfg["project"], depth=[1, 2, 3])
    print("RESULT " + json.dumps({"best_l2": None if best is None else best.l2,
                                  "tuner_id": os.environ.get("KERASTUNER_TUNER_ID")}),
          flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
