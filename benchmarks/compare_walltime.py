"""Wall time of ``keras-resnet compare`` against the same models trained by hand, in one run.

    python benchmarks/compare_walltime.py [--epochs 20] [--depths 20 32 44 56] [--rounds 1]

Three ways to train the experiment's models (plain and residual CIFAR nets at
each depth, digits, batch 32, the ``compare`` defaults' recipe), each in a
fresh process, in alternating order (a b c, c b a, ...) so drift in the
machine's speed hits all alike:

- (a) bare Keras: the same models one after another in one process, each
  ``model.compile(SGD(momentum=0.9), ...)`` then ``model.fit(x, y,
  batch_size=32, validation_data=...)`` with the step schedule as a
  ``LearningRateScheduler`` (what a user writes by hand);
- (b) ``keras-resnet compare`` as of an older commit (``--old``, default
  285636a, the last one before compare trained side by side), from a ``git
  worktree`` at ``--old-tree`` (made if missing);
- (c) ``keras-resnet compare`` of this checkout (defaults: ``--jobs auto``);
- (d) only with ``--only ...d``: the same with ``--jobs 1`` (one worker, the
  same thread count, so the same numbers): what training side by side buys.

Every child runs in an empty folder, and the script first checks that (b)'s
children import the old commit's code and the others this tree's (``python -m``
puts the working directory ahead of ``PYTHONPATH``: run from a checkout
without that folder, (b) would time this tree's code). Prints the wall times,
the ratios (a)/(c) and (b)/(c), the load average before and after
(``os.getloadavg``), and writes JSON with each model's own seconds. Machines
differ up to 3x in absolute time: compare only ratios measured in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OLD = "285636a"
LR, WARMUP, BATCH = 0.05, 1, 32  # the compare defaults


def bare(depths: list, epochs: int) -> None:
    """(a): the models one after another with bare model.fit (run in a child)."""
    import keras

    import keras_resnet as kr
    from keras_resnet.training.recipe import learning_rate_at

    data = kr.load_data("digits", seed=0)
    for depth in depths:
        for residual in (False, True):
            keras.backend.clear_session()
            model = kr.Recipe(seed=0).build(kr.presets.cifar(depth, "A", residual),
                                            data)  # seeds, builds for the data
            model.compile(optimizer=keras.optimizers.SGD(LR, momentum=0.9),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            schedule = keras.callbacks.LearningRateScheduler(
                lambda e, lr: learning_rate_at(e, epochs, LR, "step", WARMUP))
            model.fit(*data.train, batch_size=BATCH, epochs=epochs,
                      validation_data=data.validation, callbacks=[schedule], verbose=0)


def _run(cmd: list, env: dict, cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, cwd=cwd)
    return time.perf_counter() - start


def _check_tree(env: dict, cwd: str, tree: str) -> None:
    """Fails unless a child with this environment imports keras_resnet from ``tree``."""
    out = subprocess.run([sys.executable, "-c", "import keras_resnet; "
                          "print(keras_resnet.__file__)"], env=env, cwd=cwd, check=True,
                         capture_output=True, text=True).stdout.strip()
    if not os.path.realpath(out).startswith(os.path.realpath(tree) + os.sep):
        raise SystemExit(f"a child imports keras_resnet from {out}, not from {tree}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--depths", type=int, nargs="+", default=[20, 32, 44, 56])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--old", default=OLD, help="the commit (b) runs")
    parser.add_argument("--old-tree", help="a git worktree at --old (made if missing; "
                        "default /tmp/kr-<old>)")
    parser.add_argument("--only", default="abc", help="which of a, b, c, d to run")
    parser.add_argument("--out", default="compare_walltime.json")
    parser.add_argument("--_bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._bare:
        bare(args.depths, args.epochs)
        return 0
    args.old_tree = args.old_tree or f"/tmp/kr-{args.old}"
    if "b" in args.only and not os.path.isdir(args.old_tree):
        subprocess.run(["git", "-C", HERE, "worktree", "add", "--detach", args.old_tree,
                        args.old], check=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    flags = ["compare", "--depths", *map(str, args.depths), "--epochs", str(args.epochs),
             "--verbose", "0"]
    tmp = tempfile.mkdtemp(prefix="kr-walltime-")
    cmds = {
        "a": ([sys.executable, os.path.abspath(__file__), "--_bare", "--epochs",
               str(args.epochs), "--depths", *map(str, args.depths)],
              {**env, "PYTHONPATH": HERE}),
        "b": ([sys.executable, "-m", "keras_resnet.cli", *flags],
              {**env, "PYTHONPATH": os.path.abspath(args.old_tree)}),
        "c": ([sys.executable, "-m", "keras_resnet.cli", *flags],
              {**env, "PYTHONPATH": HERE}),
        "d": ([sys.executable, "-m", "keras_resnet.cli", *flags, "--jobs", "1"],
              {**env, "PYTHONPATH": HERE}),
    }
    names = {"a": "bare model.fit, one after another",
             "b": f"keras-resnet compare at {args.old}",
             "c": "keras-resnet compare (this tree)",
             "d": "keras-resnet compare --jobs 1 (this tree)"}
    order = [k for k in "abcd" if k in args.only]
    load_before = os.getloadavg()
    times: dict = {k: [] for k in order}
    model_seconds: dict = {k: [] for k in order if k != "a"}
    try:
        for k in order:
            _check_tree(cmds[k][1], tmp, os.path.abspath(args.old_tree) if k == "b" else HERE)
        for r in range(args.rounds):
            for k in (order if r % 2 == 0 else order[::-1]):
                cmd, e = cmds[k]
                out = os.path.join(tmp, f"{k}{r}")
                times[k].append(_run(cmd if k == "a" else cmd + ["--out", out], e, tmp))
                if k != "a":  # each model's own seconds, as results.json has them
                    with open(os.path.join(out, "results.json")) as fh:
                        model_seconds[k].append({n: m["seconds"] for n, m in
                                                 json.load(fh)["models"].items()})
                print(f"  {names[k]}: {times[k][-1]:.1f} s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load_after = os.getloadavg()
    best = {k: min(v) for k, v in times.items()}
    print("| what | wall s |\n|---|---:|")
    for k in order:
        print(f"| ({k}) {names[k]} | {best[k]:.1f} |")
    ratios = {f"{k}/c": best[k] / best["c"] for k in order if k != "c" and "c" in best}
    for key, value in ratios.items():
        print(f"- ratio {key}: {value:.2f}x")
    print(f"- load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs); epochs {args.epochs}, depths {args.depths}")
    with open(args.out, "w") as fh:
        json.dump({"seconds": times, "model_seconds": model_seconds, "ratios": ratios,
                   "load_before": load_before,
                   "load_after": load_after, "machine": platform.platform(),
                   "cpus": os.cpu_count(), "command": " ".join(sys.argv)}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
