"""Multi-process training (JAX) on one machine: its overhead, and a kill and resume.

    python benchmarks/multi_process.py [--epochs 4] [--batch-size 128] [--skip-kill]
                                       [--baseline-tree /path/to/main/checkout]

Measures, with `kr.train` on CIFAR ResNet-20 over the built-in digits:

1. images/s of one process (``distribute=None``) against one job of two processes
   on 127.0.0.1 (``distribute="multi_process"``, one CPU device and one thread
   each): training examples over the best whole epoch after the first (its
   validation pass included: JAX dispatches the steps ahead, so only the end of
   an epoch waits for them). On a
   2-core machine two processes share the cores one process already uses, so the
   ratio is the **overhead** of the collectives and the feed, not a speed-up;
2. a SIGKILL of process 1 during epoch 2 of 3: seconds until process 0 has ended
   (with its one-line error), then, restarting both at once, seconds from the
   SIGKILL until the first resumed epoch is done, and whether the resumed job's
   weights equal an uninterrupted job's (sha256 of the weights);
3. with ``--baseline-tree``: one-process ``kr.train`` epoch time with this tree
   against another checkout (e.g. the main branch), alternating A B B A, as the
   check that the multi-process code costs the one-process path nothing.

Processes get one thread each (``keras_resnet.parallel.thread_env``). Prints a
Markdown table and writes JSON next to it (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(args: argparse.Namespace) -> None:
    """One process: kr.train with an epoch timer; prints one JSON line at the end."""
    import keras

    import keras_resnet as kr

    seconds: list = []

    class Stamp(keras.callbacks.Callback):
        """Whole epochs, validation included: JAX dispatches steps ahead, so only
        the epoch's end (its logs are fetched) waits for the work."""

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)
            print(json.dumps({"epoch_done": epoch + 1}), flush=True)

    result = kr.train("cifar_resnet20", "digits", epochs=args.epochs,
                      batch_size=args.batch_size, out_dir=args.out_dir, verbose=0,
                      distribute="multi_process" if args.multi else None,
                      callbacks=[Stamp()])
    data = kr.load_data("digits", seed=0)
    digest = None
    if args.multi:  # (a --baseline-tree may predate it)
        from keras_resnet.training import weights_digest

        digest = weights_digest(result.model)
    print(json.dumps({"seconds": seconds, "examples": len(data.train[0]),
                      "digest": digest}), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: argparse.Namespace, out_dir: str, index: int | None, port: int,
           tree: str = ROOT) -> subprocess.Popen:
    from keras_resnet.parallel import thread_env

    env = {**os.environ, **thread_env(1), "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": tree}
    cmd = [sys.executable, os.path.abspath(__file__), "--_child", "--epochs", str(args.epochs),
           "--batch-size", str(args.batch_size), "--out-dir", out_dir]
    if index is not None:
        env.update(KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}",
                   KERAS_DISTRIBUTION_NUM_PROCESSES="2",
                   KERAS_DISTRIBUTION_PROCESS_ID=str(index))
        cmd.append("--multi")
    err = tempfile.TemporaryFile("w+")  # read back when the process ended
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    proc.err = err  # type: ignore[attr-defined]
    return proc


def stderr_of(proc: subprocess.Popen) -> str:
    proc.err.seek(0)  # type: ignore[attr-defined]
    return proc.err.read()  # type: ignore[attr-defined]


def stamps(proc: subprocess.Popen, epoch: int) -> None:
    """Reads the process's output until it has finished ``epoch``."""
    for line in proc.stdout:  # type: ignore[union-attr]
        if line.startswith("{") and json.loads(line).get("epoch_done") == epoch:
            return
    raise RuntimeError(f"the process ended before epoch {epoch}: {stderr_of(proc)[-2000:]}")


def result_of(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"a process failed ({proc.returncode}): {stderr_of(proc)[-2000:]}")
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def images_per_s(result: dict) -> float:
    return result["examples"] / min(result["seconds"][1:] or result["seconds"])


def throughput(args: argparse.Namespace, work: str) -> dict:
    one = result_of(launch(args, os.path.join(work, "one"), None, 0))
    port = free_port()
    procs = [launch(args, os.path.join(work, "two"), i, port) for i in range(2)]
    two = [result_of(p) for p in procs]
    assert two[0]["digest"] == two[1]["digest"], "the processes ended with other weights"
    return {"one_process_img_s": images_per_s(one), "two_processes_img_s": images_per_s(two[0]),
            "one": one, "two": two}


def kill_and_resume(args: argparse.Namespace, work: str) -> dict:
    args.epochs = 3
    port = free_port()
    reference = [launch(args, os.path.join(work, "whole"), i, port) for i in range(2)]
    whole = [result_of(p) for p in reference][0]["digest"]
    out = os.path.join(work, "killed")
    port = free_port()
    procs = [launch(args, out, i, port) for i in range(2)]
    stamps(procs[0], 1)
    time.sleep(0.5)  # into epoch 2
    killed_at = time.time()
    procs[1].send_signal(signal.SIGKILL)
    procs[0].communicate()
    survivor_s = time.time() - killed_at
    procs[1].wait()
    code = procs[0].returncode
    last = [line for line in stderr_of(procs[0]).splitlines() if line.strip()][-1]
    port = free_port()
    procs = [launch(args, out, i, port) for i in range(2)]
    stamps(procs[0], 2)
    resumed_s = time.time() - killed_at
    rest = [result_of(p) for p in procs]
    return {"survivor_exit_s": survivor_s, "survivor_exit_code": code,
            "survivor_last_line": last, "kill_to_resumed_epoch_s": resumed_s,
            "same_weights_as_uninterrupted": rest[0]["digest"] == whole == rest[1]["digest"]}


def one_process_ratio(args: argparse.Namespace, work: str) -> dict:
    times: dict = {"this": [], "baseline": []}
    order = ["this", "baseline", "baseline", "this"] * max(1, args.rounds // 2)
    for i, which in enumerate(order):
        tree = ROOT if which == "this" else args.baseline_tree
        r = result_of(launch(args, os.path.join(work, f"ab{i}"), None, 0, tree))
        times[which].append(min(r["seconds"][1:]))
    best = {k: min(v) for k, v in times.items()}
    return {"epoch_s": times, "ratio_baseline_over_this": best["baseline"] / best["this"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--rounds", type=int, default=2, help="A B B A rounds of --baseline-tree")
    p.add_argument("--skip-kill", action="store_true")
    p.add_argument("--baseline-tree", help="another checkout to compare one process with")
    p.add_argument("--out", default="multi_process.json")
    p.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--multi", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out-dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._child:
        child(args)
        return 0
    sys.path.insert(0, ROOT)
    report: dict = {"load_start": os.getloadavg()[0], "epochs": args.epochs,
                    "batch_size": args.batch_size}
    def save() -> None:  # after every part: a late failure keeps the earlier ones
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=2)

    with tempfile.TemporaryDirectory() as work:
        report["throughput"] = throughput(args, work)
        save()
        if args.baseline_tree:
            report["one_process"] = one_process_ratio(args, work)
            save()
        if not args.skip_kill:
            report["kill"] = kill_and_resume(args, work)
    report["load_end"] = os.getloadavg()[0]
    t = report["throughput"]
    rows = [f"| 1 process | {t['one_process_img_s']:.0f} |",
            f"| 2 processes (one job) | {t['two_processes_img_s']:.0f} "
            f"({t['two_processes_img_s'] / t['one_process_img_s']:.2f}x) |"]
    print("| job | train images/s |\n|---|---:|\n" + "\n".join(rows))
    if "one_process" in report:
        print(f"one process, baseline epoch / this epoch: "
              f"{report['one_process']['ratio_baseline_over_this']:.3f}")
    if "kill" in report:
        k = report["kill"]
        print(f"SIGKILL of process 1 in epoch 2: process 0 ended after {k['survivor_exit_s']:.1f}"
              f" s (exit {k['survivor_exit_code']}: {k['survivor_last_line'][:120]}); restarted,"
              f" epoch 2 done {k['kill_to_resumed_epoch_s']:.1f} s after the kill; weights equal"
              f" to an uninterrupted job: {k['same_weights_as_uninterrupted']}")
    print(f"load average {report['load_start']:.1f} -> {report['load_end']:.1f}")
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
