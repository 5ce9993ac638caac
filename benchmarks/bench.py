"""Speed of keras_resnet models against keras.applications, in one run.

    python benchmarks/bench.py [--quick] [--backends tensorflow,jax] [--out bench.json]

For each case it builds this package's model and a baseline of the same
architecture in the same process, keeps both alive and times their steps
alternately (A, B, B, A, ...) so drift in the machine's speed hits both alike,
repeats that in rounds (who goes first alternates), and reports medians:

- build time (constructing the Keras model),
- first step (the first ``train_on_batch``: tracing/compilation),
- training throughput (images/s over steady-state steps, after warm-up),
- inference throughput (images/s, ``predict_on_batch``).

Ratios are baseline time / our time, so > 1 means this package is faster and
0.97 is the bar. Cases: ResNet-50 at 224x224 (skipped with --quick) and 64x64
against ``keras.applications.ResNet50``; the CIFAR ResNet-56 (32x32) against the
same network written by hand with plain Keras layers (keras.applications has no
CIFAR nets), with option B, and our option A (zero-padding layer) against B.
Each backend runs in its own subprocess; the table puts them side by side.
Also reported: the time to validate a ResNet-50 spec and to build ResNet-1202.
With ``--train-vs-fit``: ``kr.train`` against a bare ``model.fit`` on the same
model and data (CIFAR ResNet-56 on digits, ResNet-50 at 64x64), ratio >= 1.0
is the bar (see ``train_vs_fit.py``, which also runs alone).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time


def _reference_cifar56():
    """The CIFAR ResNet-56 (option B) written directly with keras.layers."""
    import keras
    from keras import layers

    def conv_bn(x, filters, strides, name, act=True):
        x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                          kernel_initializer="he_normal", name=name + "_conv")(x)
        x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name + "_bn")(x)
        return layers.Activation("relu", name=name + "_relu")(x) if act else x

    inp = keras.Input((32, 32, 3))
    x = conv_bn(inp, 16, 1, "stem")
    channels = 16
    for stage, (filters, strides) in enumerate(((16, 1), (32, 2), (64, 2)), start=1):
        for block in range(9):
            s = strides if block == 0 else 1
            name = f"s{stage}b{block}"
            shortcut = x
            if s != 1 or channels != filters:
                shortcut = layers.Conv2D(filters, 1, strides=s, use_bias=False,
                                         kernel_initializer="he_normal",
                                         name=name + "_sc_conv")(x)
                shortcut = layers.BatchNormalization(momentum=0.9, epsilon=1e-5,
                                                     name=name + "_sc_bn")(shortcut)
            y = conv_bn(x, filters, s, name + "_1")
            y = conv_bn(y, filters, 1, name + "_2", act=False)
            x = layers.Activation("relu", name=name + "_out")(layers.Add()([shortcut, y]))
            channels = filters
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(10, activation="softmax", name="predictions")(x))


def _cases(quick: bool, gpu: bool = False) -> list:
    import keras

    import keras_resnet as kr

    cases = []
    sizes = [224] if gpu else [64] if quick else [224, 64]
    for size in sizes:
        batch = 256 if gpu else 8 if size == 224 else 32
        cases.append((f"ResNet-50 {size}x{size}", batch, (size, size, 3), 1000,
                      lambda s=size: kr.build_resnet("resnet50", input_shape=(s, s, 3)),
                      lambda s=size: keras.applications.ResNet50(
                          weights=None, input_shape=(s, s, 3)),
                      "keras.applications.ResNet50"))
    if gpu:
        return cases
    cases.append(("CIFAR ResNet-56 (B)", 64, (32, 32, 3), 10,
                  lambda: kr.build_resnet(kr.presets.get("cifar_resnet56").replace(
                      shortcut="B")),
                  _reference_cifar56, "hand-written Keras ResNet-56 (B)"))
    cases.append(("CIFAR ResNet-56 (A)", 64, (32, 32, 3), 10,
                  lambda: kr.build_resnet("cifar_resnet56"),
                  lambda: kr.build_resnet(kr.presets.get("cifar_resnet56").replace(
                      shortcut="B")),
                  "our ResNet-56 with option B"))
    return cases


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _measure_pair(builds: dict, order: tuple, batch: int, shape: tuple, classes: int,
                  steps: int, warmup: int) -> dict:
    """Builds both models, then times their steps alternately (A, B, B, A, ...).

    Alternating step by step means drift in the machine's speed hits both
    models alike; the per-step medians are compared.
    """
    import keras
    import numpy as np

    keras.backend.clear_session()
    models, out = {}, {who: {} for who in builds}
    for who in order:
        models[who], out[who]["build_s"] = _timed(builds[who])
    rng = np.random.RandomState(0)
    x = rng.rand(batch, *shape).astype("float32")
    y = rng.randint(0, classes, batch)
    for who in order:
        models[who].compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                            loss="sparse_categorical_crossentropy")
        _, out[who]["first_step_s"] = _timed(lambda m=models[who]: m.train_on_batch(x, y))
        for _ in range(warmup):
            models[who].train_on_batch(x, y)
            models[who].predict_on_batch(x)
    for kind, fn in (("train", lambda m: m.train_on_batch(x, y)),
                     ("infer", lambda m: m.predict_on_batch(x))):
        times = {who: [] for who in builds}
        for i in range(steps):
            for who in (order if i % 2 == 0 else order[::-1]):
                _, t = _timed(lambda m=models[who], f=fn: f(m))
                times[who].append(t)
        for who in builds:
            out[who][f"{kind}_img_s"] = batch / statistics.median(times[who])
    return out


def run_backend(quick: bool, rounds: int, gpu: bool = False, only: str = "",
                train_vs_fit: bool = False) -> dict:
    """Measures every case on the current backend (KERAS_BACKEND)."""
    import keras

    if train_vs_fit:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import train_vs_fit as tvf

        return {"backend": keras.backend.backend(), "cases": [],
                "train_vs_fit": tvf.run_backend(quick, rounds, 3, only)["cases"]}

    import keras_resnet as kr

    if gpu:  # the GPU recipe: bf16 mixed precision; JAX compiles with XLA anyway
        keras.config.set_dtype_policy("mixed_bfloat16")
    steps, warmup = (12, 3) if quick else (20, 3)
    results = {"backend": keras.backend.backend(), "cases": [],
               "dtype_policy": keras.config.dtype_policy().name}
    for name, batch, shape, classes, ours, base, base_name in _cases(quick, gpu):
        if only and only not in name:
            continue
        for build in (ours, base):  # untimed: the first build in a process pays extra
            keras.backend.clear_session()
            build()
        runs = {"ours": [], "base": []}
        for r in range(rounds):  # alternating who goes first: AB BA AB ...
            order = ("ours", "base") if r % 2 == 0 else ("base", "ours")
            pair = _measure_pair({"ours": ours, "base": base}, order, batch, shape, classes,
                                 steps, warmup)
            for who in pair:
                runs[who].append(pair[who])
        row = {"case": name, "baseline": base_name, "batch": batch}
        for who in ("ours", "base"):
            for key in runs[who][0]:
                row[f"{who}_{key}"] = statistics.median(r[key] for r in runs[who])
        row["ratio_build"] = row["base_build_s"] / row["ours_build_s"]
        row["ratio_first_step"] = row["base_first_step_s"] / row["ours_first_step_s"]
        row["ratio_train"] = row["ours_train_img_s"] / row["base_train_img_s"]
        row["ratio_infer"] = row["ours_infer_img_s"] / row["base_infer_img_s"]
        results["cases"].append(row)
        print(f"  [{results['backend']}] {name}: train x{row['ratio_train']:.3f}, "
              f"infer x{row['ratio_infer']:.3f}", file=sys.stderr, flush=True)
    if gpu or only:
        return results
    spec = kr.presets.to_dict("resnet50")
    reps = 200
    _, t = _timed(lambda: [kr.ModelSpec.from_dict(spec) for _ in range(reps)])
    results["validate_resnet50_spec_ms"] = 1000 * t / reps
    keras.backend.clear_session()
    _, t = _timed(lambda: kr.build_resnet("cifar_resnet1202"))
    results["build_resnet1202_s"] = t
    return results


def table(all_results: list) -> str:
    lines = ["| backend | case | baseline | batch | build s (ours / base) | "
             "first step s (ours / base) | train img/s (ours / base) | "
             "infer img/s (ours / base) | ratios build / first / train / infer |",
             "|---|---|---|---:|---|---|---|---|---|"]
    for res in all_results:
        for r in res["cases"]:
            lines.append(
                f"| {res['backend']} | {r['case']} | {r['baseline']} | {r['batch']} | "
                f"{r['ours_build_s']:.2f} / {r['base_build_s']:.2f} | "
                f"{r['ours_first_step_s']:.2f} / {r['base_first_step_s']:.2f} | "
                f"{r['ours_train_img_s']:.1f} / {r['base_train_img_s']:.1f} | "
                f"{r['ours_infer_img_s']:.1f} / {r['base_infer_img_s']:.1f} | "
                f"{r['ratio_build']:.2f} / {r['ratio_first_step']:.2f} / "
                f"{r['ratio_train']:.3f} / {r['ratio_infer']:.3f} |")
    lines.append("")
    tvf = [r for r in all_results if r.get("train_vs_fit")]
    if tvf:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import train_vs_fit

        lines += [train_vs_fit.table([{"backend": r["backend"], "cases": r["train_vs_fit"]}
                                      for r in tvf], 157.0), ""]
    for res in all_results:
        if "validate_resnet50_spec_ms" not in res:
            continue
        lines.append(f"- {res['backend']}: validating the ResNet-50 spec takes "
                     f"{res['validate_resnet50_spec_ms']:.2f} ms; building ResNet-1202 "
                     f"takes {res['build_resnet1202_s']:.1f} s")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="CPU-sized run: skip 224x224, fewer steps")
    parser.add_argument("--backends", default="tensorflow,jax",
                        help="comma-separated Keras backends, each in its own process")
    parser.add_argument("--rounds", type=int, default=4,
                        help="repetitions; even, so each model is built first equally often")
    parser.add_argument("--out", default="bench.json", help="JSON output file")
    parser.add_argument("--gpu", action="store_true",
                        help="GPU recipe: ResNet-50 224x224, batch 256, mixed bfloat16")
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--train-vs-fit", action="store_true",
                        help="kr.train against a bare model.fit (instead of the model cases)")
    parser.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds < 2 or args.rounds % 2:
        parser.error(f"--rounds must be even and >= 2. Received: {args.rounds}")
    if args._child:
        print(json.dumps(run_backend(args.quick, args.rounds, args.gpu, args.only,
                                     args.train_vs_fit)))
        return 0
    results = []
    for backend in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        cmd = [sys.executable, __file__, "--_child", "--rounds", str(args.rounds)]
        flags = (["--quick"] if args.quick else []) + (["--gpu"] if args.gpu else []) + (
            ["--only", args.only] if args.only else []) + (
            ["--train-vs-fit"] if args.train_vs_fit else [])
        proc = subprocess.run(cmd + flags, env=env, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            print(f"{backend}: failed (exit {proc.returncode})", file=sys.stderr)
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.platform(),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "command": " ".join(["python"] + sys.argv)}
    print(table(results))
    with open(args.out, "w") as fh:
        json.dump({"meta": meta, "results": results}, fh, indent=2)
    print(f"\nwrote {args.out}")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
