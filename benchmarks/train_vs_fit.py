"""``kr.train`` against a bare ``model.fit`` on the same model and data, in one run.

    python benchmarks/train_vs_fit.py [--quick] [--backends tensorflow,jax] [--rounds 2]

Each case builds the same network twice (same seed) and trains it with
``kr.train`` (the recipe: its data path, callbacks and
``steps_per_execution="auto"``) and with what a user writes by hand:
``model.compile(SGD(momentum=0.9), sparse cross-entropy, accuracy)`` then
``model.fit(x, y, batch_size, validation_data=...)``, alternating who goes first
(A B, B A, ...) so drift in the machine's speed hits both alike. Reported: ms
per training step (the best epoch after the first, validation not counted:
on a shared machine the best epoch is the one least slowed by others; the
medians are in the JSON) and the ratio bare / ours (> 1: ``kr.train`` is faster; the bar is
1.0). Also reported: ``fit`` with ``steps_per_execution`` as chosen by the
recipe, and the FLOP limit (forward multiply-adds x 3 per image, at the
machine's peak given by ``--peak-gflops``). Each backend runs in its own
process. Cases: CIFAR ResNet-56 on 8x8 digits (batch 32) and ResNet-50 at
64x64 on random images (batch 32).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def _epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Training time of each epoch (until validation starts)."""

        async_safe = True

        def __init__(self):
            super().__init__()
            self.seconds, self._start, self._open = [], None, False

        def on_epoch_begin(self, epoch, logs=None):
            self._start, self._open = time.perf_counter(), True

        def on_test_begin(self, logs=None):
            if self._open:
                self.seconds.append(time.perf_counter() - self._start)
                self._open = False

        def on_epoch_end(self, epoch, logs=None):
            self.on_test_begin()

    return EpochTimer()


def _cases(quick: bool) -> list:
    import numpy as np

    import keras_resnet as kr

    digits = kr.load_data("digits", seed=0)
    rng = np.random.RandomState(0)
    n = 128 if quick else 256
    x = rng.rand(n, 64, 64, 3).astype("float32")
    y = rng.randint(0, 10, n)
    vx, vy = rng.rand(64, 64, 64, 3).astype("float32"), rng.randint(0, 10, 64)
    synthetic = kr.Data("random64", (x, y), (vx, vy), (64, 64, 3), 10,
                        [str(i) for i in range(10)])
    return [("CIFAR ResNet-56, digits 8x8", "cifar_resnet56", digits, 32),
            ("ResNet-50, 64x64", "resnet50", synthetic, 32)]


def _runners(preset, data, recipe, batch: int, epochs: int, spe: int) -> dict:
    """Functions that train the case one way each and return epoch seconds."""
    import keras

    import keras_resnet as kr
    from keras_resnet.training.recipe import prepare

    def ours():
        timer = _epoch_timer()
        keras.backend.clear_session()
        kr.train(preset, data, recipe=recipe, verbose=0, callbacks=[timer])
        return timer.seconds

    def bare(k):
        def run():
            timer = _epoch_timer()
            keras.backend.clear_session()
            model = prepare(preset, data, recipe)
            model.compile(optimizer=keras.optimizers.SGD(recipe.learning_rate, momentum=0.9),
                          loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"], steps_per_execution=k)
            model.fit(*data.train, batch_size=batch, epochs=epochs,
                      validation_data=data.validation, verbose=0, callbacks=[timer])
            return timer.seconds
        return run

    return {"kr.train": ours, "model.fit": bare(1), "model.fit spe": bare(spe)}


def run_backend(quick: bool, rounds: int, epochs: int, only: str = "") -> dict:
    import keras

    import keras_resnet as kr
    from keras_resnet.training.recipe import auto_steps_per_execution, prepare, step_macs

    out = {"backend": keras.backend.backend(), "cases": []}
    for name, preset, data, batch in _cases(quick):
        if only and only not in name:
            continue
        recipe = kr.Recipe(epochs=epochs, batch_size=batch, learning_rate=0.01, seed=0)
        steps = -(-len(data.train[0]) // batch)
        times: dict = {"kr.train": [], "model.fit": [], "model.fit spe": []}

        keras.backend.clear_session()
        model = prepare(preset, data, recipe)
        spe = auto_steps_per_execution(model, batch)
        macs = step_macs(model, 1)
        runs = _runners(preset, data, recipe, batch, epochs, spe)
        names = list(runs)
        for r in range(rounds):
            for who in (names if r % 2 == 0 else names[::-1]):
                secs = runs[who]()
                times[who] += [1000 * s / steps for s in secs[1:]]  # after the first
        row = {"case": name, "batch": batch, "steps_per_epoch": steps, "auto_spe": spe,
               "macs_per_image": macs}
        for who in names:  # the best epoch after the first (as issue 14 measured)
            row[f"{who} ms/step"] = min(times[who])
            row[f"{who} ms/step median"] = statistics.median(times[who])
        row["ratio"] = row["model.fit ms/step"] / row["kr.train ms/step"]
        row["ratio_vs_spe"] = row["model.fit spe ms/step"] / row["kr.train ms/step"]
        out["cases"].append(row)
        print(f"  [{out['backend']}] {name}: kr.train {row['kr.train ms/step']:.1f} ms, "
              f"fit {row['model.fit ms/step']:.1f} ms (x{row['ratio']:.3f})",
              file=sys.stderr, flush=True)
    return out


def table(results: list, peak_gflops: float) -> str:
    lines = ["| backend | case | batch | kr.train ms/step | model.fit ms/step | "
             "ratio fit / kr.train | fit + spe=k ms/step (k) | FLOP limit ms/step |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for res in results:
        for r in res["cases"]:
            limit = 3 * r["macs_per_image"] * r["batch"] * 2 / (peak_gflops * 1e9) * 1000
            lines.append(f"| {res['backend']} | {r['case']} | {r['batch']} | "
                         f"{r['kr.train ms/step']:.1f} | {r['model.fit ms/step']:.1f} | "
                         f"{r['ratio']:.3f} | {r['model.fit spe ms/step']:.1f} "
                         f"({r['auto_spe']}) | {limit:.1f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer images for ResNet-50")
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (>= 2)")
    parser.add_argument("--only", default="", help="cases whose name contains this")
    parser.add_argument("--peak-gflops", type=float, default=157.0,
                        help="the machine's peak (2 cores of this project's kind: 157)")
    parser.add_argument("--out", default="train_vs_fit.json")
    parser.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error(f"--epochs must be >= 2. Received: {args.epochs}")
    if args._child:
        print(json.dumps(run_backend(args.quick, args.rounds, args.epochs, args.only)))
        return 0
    results = []
    for backend in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        cmd = [sys.executable, __file__, "--_child", "--rounds", str(args.rounds),
               "--epochs", str(args.epochs), "--only", args.only] + (
            ["--quick"] if args.quick else [])
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            print(f"{backend}: failed (exit {proc.returncode})", file=sys.stderr)
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(table(results[-1:], args.peak_gflops), file=sys.stderr, flush=True)  # so far
    print(table(results, args.peak_gflops))
    with open(args.out, "w") as fh:
        json.dump({"uptime": os.getloadavg(), "command": " ".join(sys.argv),
                   "results": results}, fh, indent=2)
    print(f"wrote {args.out} (load average {os.getloadavg()[0]:.2f})")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
