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
1.0), also of the medians, and the process's CPU time per step (median), which a
machine shared with other work disturbs far less than wall time. Also
reported: ``fit`` with ``steps_per_execution`` as chosen by the recipe (when
it is not 1), the load average, and the FLOP limit (forward multiply-adds x 3 per image, at the
machine's peak given by ``--peak-gflops``). Each backend runs in its own
process. ``--ablation`` adds ways of training that each undo one change of
issue 14 (``kr.train`` with one step per call; that and a per-batch
``TerminateOnNaN``; bare ``fit`` on a per-batch ``PyDataset``, 0.1's feed) and
prints each one's time against ``kr.train``'s. Cases: CIFAR ResNet-56 on 8x8
digits (batch 32, 45 steps per epoch) and ResNet-50 at 64x64 on 512 random
images (batch 32, 16 steps per epoch; 4 with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def _wait_for_device() -> None:
    """Blocks until all dispatched work is done (JAX runs steps asynchronously)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        jax.block_until_ready(jax.live_arrays())


def _epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Training time of each epoch (until validation starts): wall and CPU.

        The process's CPU time (all its threads) is the work it did, which a
        busy machine slows far less than the wall time. JAX dispatches steps
        asynchronously (the epoch's loop can end before its steps have run),
        so on JAX both ends of the interval first wait for every array.
        """

        async_safe = True

        def __init__(self):
            super().__init__()
            self.seconds, self.cpu_seconds, self._start, self._open = [], [], None, False

        def on_epoch_begin(self, epoch, logs=None):
            _wait_for_device()
            self._start, self._open = (time.perf_counter(), time.process_time()), True

        def on_test_begin(self, logs=None):
            if self._open:
                _wait_for_device()
                self.seconds.append(time.perf_counter() - self._start[0])
                self.cpu_seconds.append(time.process_time() - self._start[1])
                self._open = False

        def on_epoch_end(self, epoch, logs=None):
            self.on_test_begin()

    return EpochTimer()


def _cases(quick: bool) -> list:
    import numpy as np

    import keras_resnet as kr

    digits = kr.load_data("digits", seed=0)
    rng = np.random.RandomState(0)
    n = 128 if quick else 512  # 16 steps per epoch at batch 32 (4 with --quick)
    x = rng.rand(n, 64, 64, 3).astype("float32")
    y = rng.randint(0, 10, n)
    vx, vy = rng.rand(64, 64, 64, 3).astype("float32"), rng.randint(0, 10, 64)
    synthetic = kr.Data("random64", (x, y), (vx, vy), (64, 64, 3), 10,
                        [str(i) for i in range(10)])
    return [("CIFAR ResNet-56, digits 8x8", "cifar_resnet56", digits, 32),
            ("ResNet-50, 64x64", "resnet50", synthetic, 32)]


def _runners(preset, data, recipe, batch: int, epochs: int, spe: int,
             ablation: bool = False) -> dict:
    """Functions that train the case one way each and return epoch seconds."""
    import keras

    import keras_resnet as kr

    def ours():
        timer = _epoch_timer()
        keras.backend.clear_session()
        kr.train(preset, data, recipe=recipe, verbose=0, callbacks=[timer])
        return timer

    def bare(k):
        def run():
            timer = _epoch_timer()
            keras.backend.clear_session()
            model = recipe.build(preset, data)
            model.compile(optimizer=keras.optimizers.SGD(recipe.learning_rate, momentum=0.9),
                          loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"], steps_per_execution=k)
            model.fit(*data.train, batch_size=batch, epochs=epochs,
                      validation_data=data.validation, verbose=0, callbacks=[timer])
            return timer
        return run

    runs = {"kr.train": ours, "model.fit": bare(1)}
    if spe > 1:  # else the same as model.fit
        runs["model.fit spe"] = bare(spe)
    if ablation:
        def ours_with(k, *extra):
            def run():
                timer = _epoch_timer()
                keras.backend.clear_session()
                kr.train(preset, data, recipe=recipe, verbose=0, steps_per_execution=k,
                         callbacks=[timer, *extra])
                return timer
            return run

        class Batches(keras.utils.PyDataset):
            """0.1's feed: every batch through Python (shuffled once, no augmentation)."""

            def __init__(self):
                super().__init__()
                self.x, self.y = data.train

            def __len__(self):
                return -(-len(self.y) // batch)

            def __getitem__(self, i):
                return self.x[i * batch:(i + 1) * batch], self.y[i * batch:(i + 1) * batch]

        def bare_pydataset():
            timer = _epoch_timer()
            keras.backend.clear_session()
            model = recipe.build(preset, data)
            model.compile(optimizer=keras.optimizers.SGD(recipe.learning_rate, momentum=0.9),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            model.fit(Batches(), epochs=epochs, validation_data=data.validation, verbose=0,
                      callbacks=[timer])
            return timer

        runs.update({"kr.train spe=1": ours_with(1),
                     "kr.train spe=1 + TerminateOnNaN": ours_with(
                         1, keras.callbacks.TerminateOnNaN()),
                     "model.fit PyDataset": bare_pydataset})
    return runs


def run_backend(quick: bool, rounds: int, epochs: int, only: str = "", spe: int = 0,
                ablation: bool = False) -> dict:
    import keras

    import keras_resnet as kr
    from keras_resnet.training.recipe import auto_steps_per_execution

    out = {"backend": keras.backend.backend(), "cases": [], "load_start": os.getloadavg()}
    for name, preset, data, batch in _cases(quick):
        if only and only not in name:
            continue
        recipe = kr.Recipe(epochs=epochs, batch_size=batch, learning_rate=0.01, seed=0)
        steps = -(-len(data.train[0]) // batch)
        times: dict = {}
        cpu: dict = {}

        keras.backend.clear_session()
        model = recipe.build(preset, data)
        auto_spe = auto_steps_per_execution(model, batch)
        macs = float(kr.flops(model))  # forward multiply-adds of one image
        runs = _runners(preset, data, recipe, batch, epochs, spe or auto_spe, ablation)
        names = list(runs)
        for r in range(rounds):
            for who in (names if r % 2 == 0 else names[::-1]):
                timer = runs[who]()
                # after the first epoch (compilation)
                times.setdefault(who, []).extend(1000 * s / steps for s in timer.seconds[1:])
                cpu.setdefault(who, []).extend(1000 * s / steps
                                               for s in timer.cpu_seconds[1:])
        row = {"case": name, "batch": batch, "steps_per_epoch": steps, "auto_spe": auto_spe,
               "spe": spe or auto_spe,
               "macs_per_image": macs}
        for who in names:  # the best epoch after the first (as issue 14 measured)
            row[f"{who} ms/step"] = min(times[who])
            row[f"{who} ms/step median"] = statistics.median(times[who])
            row[f"{who} cpu ms/step median"] = statistics.median(cpu[who])
        if "model.fit spe ms/step" not in row:
            for key in ("ms/step", "ms/step median", "cpu ms/step median"):
                row[f"model.fit spe {key}"] = row[f"model.fit {key}"]
        row["ratio"] = row["model.fit ms/step"] / row["kr.train ms/step"]
        row["ratio_median"] = row["model.fit ms/step median"] / row["kr.train ms/step median"]
        row["ratio_cpu"] = (row["model.fit cpu ms/step median"]
                            / row["kr.train cpu ms/step median"])
        row["ratio_vs_spe"] = row["model.fit spe ms/step"] / row["kr.train ms/step"]
        row["runs"] = names
        out["cases"].append(row)
        print(f"  [{out['backend']}] {name}: kr.train {row['kr.train ms/step']:.1f} ms, "
              f"fit {row['model.fit ms/step']:.1f} ms (x{row['ratio']:.3f}; "
              f"CPU x{row['ratio_cpu']:.3f}; load {os.getloadavg()[0]:.1f})",
              file=sys.stderr, flush=True)
    out["load_end"] = os.getloadavg()
    return out


def table(results: list, peak_gflops: float) -> str:
    lines = ["| backend | case | batch | kr.train ms/step | model.fit ms/step | "
             "ratio fit / kr.train (best; median) | CPU ms/step kr.train / fit (ratio) | "
             "fit + spe=k ms/step (k) | FLOP limit ms/step | load start → end |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for res in results:
        load = f"{res['load_start'][0]:.1f} → {res['load_end'][0]:.1f}"
        for r in res["cases"]:
            limit = 3 * r["macs_per_image"] * r["batch"] * 2 / (peak_gflops * 1e9) * 1000
            lines.append(f"| {res['backend']} | {r['case']} ({r['steps_per_epoch']} steps) | "
                         f"{r['batch']} | "
                         f"{r['kr.train ms/step']:.1f} | {r['model.fit ms/step']:.1f} | "
                         f"{r['ratio']:.3f}; {r['ratio_median']:.3f} | "
                         f"{r['kr.train cpu ms/step median']:.1f} / "
                         f"{r['model.fit cpu ms/step median']:.1f} ({r['ratio_cpu']:.3f}) | "
                         f"{r['model.fit spe ms/step']:.1f} "
                         f"({r.get('spe', r['auto_spe'])}) | {limit:.1f} | {load} |")
    return "\n".join(lines)


def ablation_table(results: list) -> str:
    """Each way of training against ``kr.train`` as it is (``--ablation``)."""
    lines = ["| backend | case | way | ms/step (best; median) | CPU ms/step | "
             "its time / kr.train's (best; CPU) |", "|---|---|---|---:|---:|---:|"]
    for res in results:
        for r in res["cases"]:
            for who in r["runs"]:
                lines.append(
                    f"| {res['backend']} | {r['case']} | {who} | {r[f'{who} ms/step']:.1f}; "
                    f"{r[f'{who} ms/step median']:.1f} | {r[f'{who} cpu ms/step median']:.1f}"
                    f" | {r[f'{who} ms/step'] / r['kr.train ms/step']:.3f}; "
                    f"{r[f'{who} cpu ms/step median'] / r['kr.train cpu ms/step median']:.3f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer images for ResNet-50")
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (>= 2)")
    parser.add_argument("--only", default="", help="cases whose name contains this")
    parser.add_argument("--spe", type=int, default=0,
                        help="steps_per_execution of the third run, 'fit + spe=k' "
                        "(default: what the recipe's 'auto' chooses; none when that is 1)")
    parser.add_argument("--peak-gflops", type=float, default=157.0,
                        help="the machine's peak (2 cores of this project's kind: 157)")
    parser.add_argument("--ablation", action="store_true",
                        help="also kr.train with steps_per_execution=1, with it and a "
                        "per-batch TerminateOnNaN, and model.fit on a PyDataset (0.1's "
                        "feed): what each change bought, measured alone")
    parser.add_argument("--out", default="train_vs_fit.json")
    parser.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error(f"--epochs must be >= 2. Received: {args.epochs}")
    if args._child:
        print(json.dumps(run_backend(args.quick, args.rounds, args.epochs, args.only,
                                     args.spe, args.ablation)))
        return 0
    results = []
    for backend in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        cmd = [sys.executable, __file__, "--_child", "--rounds", str(args.rounds),
               "--epochs", str(args.epochs), "--only", args.only, "--spe", str(args.spe)] + (
            ["--quick"] if args.quick else []) + (["--ablation"] if args.ablation else [])
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            print(f"{backend}: failed (exit {proc.returncode})", file=sys.stderr)
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(table(results[-1:], args.peak_gflops), file=sys.stderr, flush=True)  # so far
    print(table(results, args.peak_gflops))
    if args.ablation:
        print(ablation_table(results))
    with open(args.out, "w") as fh:
        json.dump({"uptime": os.getloadavg(), "command": " ".join(sys.argv),
                   "results": results}, fh, indent=2)
    print(f"wrote {args.out} (load average {os.getloadavg()[0]:.2f})")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
