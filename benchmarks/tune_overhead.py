"""Per-trial overhead and memory of kr.tune: N small trials on digits, one line each.

For every trial: wall time (claim to recorded result), time in ``fit``, in
build + compile, the rest (ledger, lock, oracle, handing the trial to the
worker process and waiting for a fresh one), the RSS of the process that
trained it and of the search process. Then the totals the issue asks about.

    python benchmarks/tune_overhead.py --trials 30                 # trial workers
    python benchmarks/tune_overhead.py --trials 12 --in-process    # what a worker avoids
"""

import argparse
import os
import shutil
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_resnet.workers import usable_cores  # noqa: E402

import keras_resnet as kr  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--directory", default="/tmp/tune_bench")
    p.add_argument("--in-process", action="store_true",
                   help="train every trial in the search's own process")
    p.add_argument("--jobs", type=int, default=1, help="trials side by side (default 1)")
    p.add_argument("--threads", type=int, default=usable_cores(),
                   help="threads per worker (default: every core)")
    args = p.parse_args()
    shutil.rmtree(args.directory, ignore_errors=True)
    data = kr.load_data("digits")
    base = kr.presets.get("cifar_resnet20").replace(input_shape=(8, 8, 1))
    start = time.perf_counter()
    _, search = kr.tune(base, data, algorithm="random", max_trials=args.trials,
                        epochs=args.epochs, depth=[1, 2], directory=args.directory,
                        verbose=0, isolate=not args.in_process,
                        jobs=1 if args.in_process else args.jobs, threads=args.threads)
    wall = time.perf_counter() - start
    print(f"{'trial':>5} {'total s':>8} {'fit s':>7} {'build s':>8} {'other s':>8} "
          f"{'trial RSS MB':>12} {'search RSS MB':>13}")
    ids = sorted(search.trial_stats)
    rows = [search.trial_stats[t] for t in ids]
    for tid, s in zip(ids, rows):
        print(f"{tid:>5} {s['total_s']:8.2f} {s['fit_s']:7.2f} {s['build_s']:8.2f} "
              f"{s['other_s']:8.2f} {s['rss_mb']:12.0f} {s['search_rss_mb']:13.0f}")
    total = sum(s["total_s"] for s in rows)
    other = sum(s["other_s"] for s in rows)
    build = sum(s["build_s"] for s in rows)
    print(f"outside build+fit: {other / total:.1%} of trial time (median "
          f"{statistics.median(s['other_s'] for s in rows):.2f} s a trial); build + "
          f"compile: {build / total:.1%}")
    third, last = rows[2], rows[-1]
    growth = last["rss_mb"] / third["rss_mb"] - 1
    print(f"RSS of the training process after trial 3: {third['rss_mb']:.0f} MB, after "
          f"trial {len(rows)}: {last['rss_mb']:.0f} MB ({growth:+.1%});"
          f" search process {third['search_rss_mb']:.0f} -> {last['search_rss_mb']:.0f} MB;"
          f" search {wall:.0f} s; {len({s['pid'] for s in rows})} processes trained")


if __name__ == "__main__":
    main()
