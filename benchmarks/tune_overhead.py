"""Per-trial overhead and memory of kr.tune: N small trials on digits, one line each.

For every trial: wall time (claim to recorded result), its ``kr.train`` in the
worker, split into the time in ``fit`` and the rest of the run (seed, build,
compile, run folder, saving the model), the rest of the trial (ledger, lock,
oracle, handing the trial to the worker process and waiting for a fresh one),
and the RSS of the process that trained it. Then the totals the issue asks
about, and the search process's RSS at the end.

    python benchmarks/tune_overhead.py --trials 30                 # trial workers
    python benchmarks/tune_overhead.py --trials 12 --in-process    # what a worker avoids
"""

import argparse
import json
import os
import shutil
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import psutil  # noqa: E402

import keras_resnet as kr  # noqa: E402
from keras_resnet.parallel import usable_cores  # noqa: E402
from keras_resnet.tuning import ResNetHyperModel  # noqa: E402

TIMING = "timing.json"  # written into each trial's run folder


class FitTimer(keras.callbacks.Callback):
    """Seconds inside ``model.fit`` (first to last callback of the training loop)."""

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_end(self, logs=None):
        self.seconds = time.perf_counter() - self.start


class TimedHyperModel(ResNetHyperModel):
    """A trial as ResNetHyperModel.train_trial runs it, timed; the times go to the
    trial's folder (the worker's return value is the search's)."""

    def train_trial(self, values, data, out_dir):
        timer, start = FitTimer(), time.perf_counter()
        history = kr.train(self.spec(values), data, recipe=self.recipe_for(values),
                           out_dir=out_dir, verbose=0, callbacks=[timer]).history
        with open(os.path.join(out_dir, TIMING), "w") as fh:
            json.dump({"train_s": time.perf_counter() - start, "fit_s": timer.seconds}, fh)
        return history


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--out", default="/tmp/tune_bench")
    p.add_argument("--in-process", action="store_true",
                   help="train every trial in the search's own process")
    p.add_argument("--jobs", type=int, default=1, help="trials side by side (default 1)")
    p.add_argument("--threads", type=int, default=usable_cores(),
                   help="threads per worker (default: every core)")
    args = p.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    data = kr.load_data("digits")
    base = kr.presets.get("cifar_resnet20").replace(input_shape=(8, 8, 1))
    hm = TimedHyperModel(base, depth=[1, 2], recipe=kr.Recipe(epochs=args.epochs))
    start = time.perf_counter()
    result = kr.tune(hm, data, algorithm="random", max_trials=args.trials, out_dir=args.out,
                     verbose=0, isolate=not args.in_process,
                     jobs=1 if args.in_process else args.jobs, threads=args.threads)
    wall = time.perf_counter() - start
    search_rss = psutil.Process().memory_info().rss / 2**20
    print(f"{'trial':>5} {'total s':>8} {'fit s':>7} {'build s':>8} {'other s':>8} "
          f"{'trial RSS MB':>12}")
    ids = sorted(result.search.trial_stats)
    rows = []
    for tid in ids:
        s = dict(result.search.trial_stats[tid])
        with open(os.path.join(args.out, "trials", tid, TIMING)) as fh:
            timing = json.load(fh)
        s.update(total_s=s["seconds"], fit_s=timing["fit_s"],
                 build_s=timing["train_s"] - timing["fit_s"],
                 other_s=s["seconds"] - timing["train_s"])
        rows.append(s)
        print(f"{tid:>5} {s['total_s']:8.2f} {s['fit_s']:7.2f} {s['build_s']:8.2f} "
              f"{s['other_s']:8.2f} {s['rss_mb']:12.0f}")
    total = sum(s["total_s"] for s in rows)
    other = sum(s["other_s"] for s in rows)
    build = sum(s["build_s"] for s in rows)
    print(f"outside kr.train: {other / total:.1%} of trial time (median "
          f"{statistics.median(s['other_s'] for s in rows):.2f} s a trial); kr.train "
          f"outside fit (seed, build, compile, run folder, save): {build / total:.1%}")
    third, last = rows[min(2, len(rows) - 1)], rows[-1]
    growth = last["rss_mb"] / third["rss_mb"] - 1
    print(f"RSS of the training process after trial {min(3, len(rows))}: "
          f"{third['rss_mb']:.0f} MB, after trial {len(rows)}: {last['rss_mb']:.0f} MB "
          f"({growth:+.1%}); search process {search_rss:.0f} MB at the end; search "
          f"{wall:.0f} s; {len({s['pid'] for s in rows})} processes trained")


if __name__ == "__main__":
    main()
