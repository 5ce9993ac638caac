"""mixed_bfloat16 against float32: training step time, inference time and accuracy.

    python benchmarks/mixed_precision.py                 # both backends, all cases
    python benchmarks/mixed_precision.py --quick         # smoke test: tiny settings
    python benchmarks/mixed_precision.py --backends tensorflow --cases r56

Each backend runs in its own child process (``KERAS_BACKEND=tensorflow`` and
``jax``). In each, for every case, a float32 model and a ``mixed_bfloat16``
model are built from the same spec with the same seed (so the same initial
weights), compiled with ``kr.Recipe().compile`` (SGD momentum 0.9, the loss of
``kr.train``; one step per call), and timed side by side: first steps
(tracing/compilation) untimed, then ``train_on_batch`` on one random batch in
alternation (float32, bf16, bf16, float32, ...), then ``predict_on_batch`` at
batch 1 (latency) and at the training batch (throughput) alike. Medians.

Cases and batch sizes:

- ``r56``: cifar_resnet56 on digits (8x8x1), batch 128: the paper's CIFAR
  batch and ``kr.train``'s default. Its accuracy is measured too: ``kr.train``
  for ``--epochs`` epochs with each policy, same seed, final validation top-1.
- ``r50_64``: ResNet-50 at 64x64, batch 32: small images (a fine-tuning size),
  a batch that keeps a step under a second or two on a 2-core CPU.
- ``r50_224``: ResNet-50 at 224x224, batch 8: ImageNet size; a batch of 32
  takes tens of seconds per step on 2 cores, 8 keeps the run to minutes while
  the convolutions stay large enough to use the vector units fully.

ResNet-50 accuracy is not measured (no data to converge on in CPU time). Writes
``benchmarks/results/mixed-precision-YYYY-MM-DD.json`` (b, c... when taken)
with the CPU and its flags (``avx512_bf16``: bfloat16 dot products in
hardware) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
# name: (model, input shape, classes, training batch, timed train steps)
CASES = {"r56": ("cifar_resnet56", (8, 8, 1), 10, 128, 20),
         "r50_64": ("resnet50", (64, 64, 3), 1000, 32, 10),
         "r50_224": ("resnet50", (224, 224, 3), 1000, 8, 4)}
QUICK = {"r56": ("cifar_resnet20", (8, 8, 1), 10, 32, 3),
         "r50_64": ("resnet50", (32, 32, 3), 1000, 4, 3)}
POLICIES = ("float32", "mixed_bfloat16")


def build(kr, keras, name: str, shape: tuple, classes: int, policy: str, seed: int):
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(seed)
        spec = kr.presets.get(name).replace(input_shape=shape, classes=classes)
        return kr.build(spec)
    finally:
        keras.config.set_dtype_policy(old)


def alternate(fns: dict, steps: int, log: dict | None = None) -> dict:
    """Median seconds of each function, called in alternation A, B, B, A, ...
    (every time is kept in ``log``)."""
    names = list(fns)
    times: dict = {n: [] for n in names}
    for i in range(steps):
        for n in (names if i % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            fns[n]()
            times[n].append(time.perf_counter() - start)
    if log is not None:
        for n, t in times.items():
            log.setdefault(n, []).append([round(1000 * v, 3) for v in t])
    return {n: statistics.median(t) for n, t in times.items()}


def speed(kr, keras, case: str, spec: tuple, seed: int, warmup: int) -> dict:
    name, shape, classes, batch, steps = spec
    rng = np.random.RandomState(seed)
    x = rng.uniform(0, 1, (batch, *shape)).astype("float32")
    y = rng.randint(0, classes, batch)
    # Both built first: setting the seed for the second would make TensorFlow trace the
    # first one's functions again (its first timed step took a second, not 30 ms).
    models = {policy: build(kr, keras, name, shape, classes, policy, seed)
              for policy in POLICIES}
    for model in models.values():
        kr.Recipe(batch_size=batch).compile(model, steps_per_execution=1)
        for _ in range(warmup):  # tracing / compilation, then steady state
            model.train_on_batch(x, y)
            model.predict_on_batch(x)
            model.predict_on_batch(x[:1])
    log: dict = {}
    train = alternate({p: (lambda m=m: m.train_on_batch(x, y)) for p, m in models.items()},
                      steps, log)
    one = alternate({p: (lambda m=m: m.predict_on_batch(x[:1])) for p, m in models.items()},
                    max(10, 2 * steps), log)
    full = alternate({p: (lambda m=m: m.predict_on_batch(x)) for p, m in models.items()},
                     max(4, steps), log)
    macs = int(kr.flops(models["float32"]))
    out = {"case": case, "model": name, "input_shape": list(shape), "batch": batch,
           "timed_train_steps": steps, "multiply_adds_per_image": macs,
           "times_ms": log}
    for p in POLICIES:
        out[p] = {"train_step_ms": 1000 * train[p], "predict_batch1_ms": 1000 * one[p],
                  f"predict_batch{batch}_ms": 1000 * full[p],
                  "train_images_per_s": batch / train[p]}
    f, b = out["float32"], out["mixed_bfloat16"]
    out["bf16_speedup"] = {"train_step": f["train_step_ms"] / b["train_step_ms"],
                           "predict_batch1": f["predict_batch1_ms"] / b["predict_batch1_ms"],
                           f"predict_batch{batch}": f[f"predict_batch{batch}_ms"]
                           / b[f"predict_batch{batch}_ms"]}
    return out


def accuracy(kr, name: str, epochs: int, batch: int, seed: int) -> dict:
    """kr.train on digits with each policy, same seed: final validation top-1, time."""
    out = {}
    for policy in POLICIES:
        start = time.perf_counter()
        result = kr.train(name, "digits", epochs=epochs, batch_size=batch, seed=seed,
                          verbose=0, mixed_precision=None if policy == "float32" else policy)
        out[policy] = {"val_accuracy": float(result.history["val_accuracy"][-1]),
                       "train_accuracy": float(result.history["accuracy"][-1]),
                       "seconds": time.perf_counter() - start}
    out["epochs"], out["batch"] = epochs, batch
    out["drop_pp"] = 100 * (out["float32"]["val_accuracy"]
                            - out["mixed_bfloat16"]["val_accuracy"])
    return out


def child(args) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    import keras_resnet as kr

    table = QUICK if args.quick else CASES
    rows = []
    for case in args.cases:
        if case not in table:
            continue
        start = time.perf_counter()
        row = speed(kr, keras, case, table[case], args.seed, 2 if args.quick else 3)
        if case == "r56":
            row["accuracy"] = accuracy(kr, table[case][0], args.epochs, table[case][3],
                                       args.seed)
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        print(f"  {keras.backend.backend()} {case}: {row['bf16_speedup']} "
              f"({row['seconds']:.0f} s)", flush=True)
    with open(args.child_out, "w", encoding="utf-8") as fh:
        json.dump({"backend": keras.backend.backend(), "rows": rows}, fh)
    return 0


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def table(results: list) -> str:
    lines = ["| backend | model | input | batch | train step ms f32 / bf16 | × | predict b1 "
             "ms f32 / bf16 | × | predict bN ms f32 / bf16 | × | val top-1 f32 / bf16 |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for res in results:
        for r in res["rows"]:
            f, b, s, n = r["float32"], r["mixed_bfloat16"], r["bf16_speedup"], r["batch"]
            acc = r.get("accuracy")
            lines.append("| " + " | ".join([
                res["backend"], r["model"], "x".join(map(str, r["input_shape"])), str(n),
                f"{f['train_step_ms']:.1f} / {b['train_step_ms']:.1f}",
                f"{s['train_step']:.2f}",
                f"{f['predict_batch1_ms']:.2f} / {b['predict_batch1_ms']:.2f}",
                f"{s['predict_batch1']:.2f}",
                f"{f[f'predict_batch{n}_ms']:.1f} / {b[f'predict_batch{n}_ms']:.1f}",
                f"{s[f'predict_batch{n}']:.2f}",
                (f"{acc['float32']['val_accuracy']:.4f} / "
                 f"{acc['mixed_bfloat16']['val_accuracy']:.4f} ({acc['epochs']} ep)")
                if acc else "-"]) + " |")
    return "\n".join(lines)


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"],
                        choices=["tensorflow", "jax"])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--epochs", type=int, default=10,
                        help="cifar_resnet56 on digits, per policy, for the accuracy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke test: cifar_resnet20 "
                        "1 epoch, ResNet-50 at 32x32 batch 4, 2 steps")
    parser.add_argument("--out", help="results folder (default benchmarks/results; with "
                        "--quick a temporary folder)")
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = 1
    if args.child_out:
        return child(args)
    sys.path.insert(0, os.path.dirname(HERE))
    from keras_resnet.serving import machine

    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="mixed_precision_") as tmp:
        for backend in args.backends:
            out = os.path.join(tmp, f"{backend}.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--child-out", out,
                   "--cases", *args.cases, "--epochs", str(args.epochs),
                   "--seed", str(args.seed)] + (["--quick"] if args.quick else [])
            print(f"{backend}: {' '.join(args.cases)}", flush=True)
            root = os.path.dirname(HERE)  # this tree's keras_resnet, in the child too
            path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
            env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3",
                       PYTHONPATH=path)
            proc = subprocess.run(cmd, env=env)
            if proc.returncode != 0:
                print(f"{backend}: the child process failed (exit {proc.returncode})")
                return 1
            with open(out, encoding="utf-8") as fh:
                results.append(json.load(fh))
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": "python benchmarks/mixed_precision.py "
                       + " ".join(argv if argv is not None else sys.argv[1:]),
            **machine.describe(), "python": platform.python_version(),
            "versions": {d: version(d) for d in ("keras", "tensorflow-cpu", "tensorflow",
                                                 "jax", "jaxlib", "numpy")},
            "seconds": round(time.perf_counter() - started)}
    folder = args.out or (tempfile.mkdtemp(prefix="mixed_precision_quick_") if args.quick
                          else os.path.join(HERE, "results"))
    os.makedirs(folder, exist_ok=True)
    day = datetime.date.today().isoformat()
    stem = f"mixed-precision-{'quick-' if args.quick else ''}{day}"
    path = next(p for p in (os.path.join(folder, f"{stem}{s}.json")
                            for s in [""] + list("bcdefghijklmnopqrstuvwxyz"))
                if not os.path.exists(p))
    with open(path, "x", encoding="utf-8") as fh:
        json.dump({"meta": meta, "results": results}, fh, indent=2)
    print(f"\n{meta['cpu']} ({', '.join(meta['cpu_flags'])}), {meta['cores']} cores; "
          "× = float32 time / bf16 time (above 1: bf16 faster)\n")
    print(table(results))
    print(f"\nwrote {path} ({meta['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
