"""Per-trial overhead and memory of kr.tune: N small trials on digits, one line each.

For every trial: wall time, time in fit, build (spec + clear_session + layers +
compile), the tuner's bookkeeping (the rest: oracle, state files, progress) and
the process RSS after the trial. Then first vs last RSS.

    python benchmarks/tune_overhead.py --trials 20 --directory /tmp/tune_bench
    python benchmarks/tune_overhead.py --keep-traced-gradients   # without the leak fix
"""

import argparse
import contextlib
import os
import shutil
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras_resnet as kr  # noqa: E402
from keras_resnet import tuning  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--directory", default="/tmp/tune_bench")
    p.add_argument("--keep-traced-gradients", action="store_true",
                   help="switch off the release of TensorFlow's per-trial gradient entries")
    args = p.parse_args()
    if args.keep_traced_gradients:
        tuning._release_traced_gradients = contextlib.nullcontext
    shutil.rmtree(args.directory, ignore_errors=True)
    data = kr.load_data("digits")
    base = kr.presets.get("cifar_resnet20").replace(input_shape=(8, 8, 1))
    start = time.perf_counter()
    _, tuner = kr.tune(base, data, algorithm="random", max_trials=args.trials,
                       epochs=args.epochs, depth=[1, 2], directory=args.directory, verbose=0)
    wall = time.perf_counter() - start
    print(f"{'trial':>5} {'total s':>8} {'fit s':>7} {'build s':>8} {'tuner s':>8} {'RSS MB':>8}")
    rows = [tuner.trial_stats[t] for t in sorted(tuner.trial_stats)]
    for tid, s in zip(sorted(tuner.trial_stats), rows):
        print(f"{tid:>5} {s['total_s']:8.2f} {s['fit_s']:7.2f} {s['build_s']:8.2f} "
              f"{s['other_s'] - s['build_s']:8.2f} {s['rss_mb']:8.0f}")
    other = [s["other_s"] for s in rows]
    build = [s["build_s"] for s in rows]
    print(f"outside fit per trial: median {statistics.median(other):.2f} s, mean "
          f"{statistics.mean(other):.2f} s (build {statistics.median(build):.2f} s, tuner "
          f"{statistics.median([o - b for o, b in zip(other, build)]):.2f} s, medians)")
    print(f"RSS after trial 1: {rows[0]['rss_mb']:.0f} MB, after trial {len(rows)}: "
          f"{rows[-1]['rss_mb']:.0f} MB; search {wall:.0f} s")


if __name__ == "__main__":
    main()
