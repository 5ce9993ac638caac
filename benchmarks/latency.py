"""Inference latency of every runtime and precision, side by side in ONE process.

    python benchmarks/latency.py                  # ResNet-50 224x224 + cifar_resnet20 (digits)
    python benchmarks/latency.py --quick          # smoke test: cifar_resnet20 only, 2 rounds
    python benchmarks/latency.py --onnx-variants  # also the int8 ONNX variants (see below)

What is timed, at batch 1 (the latency a deployer sees for one request):

- Keras (TensorFlow backend, its default thread pools: every core):
  ``predict_on_batch`` and a compiled call (``tf.function`` of ``model(x)``), in
  float32 and in ``mixed_bfloat16`` (a twin built under the policy, same weights);
- TFLite through the LiteRT interpreter, ``num_threads`` 1 and every core:
  float32, float16 (weights), dynamic (int8 weights), int8 (full integer);
- ONNX Runtime, ``intra_op_num_threads`` 1 and every core: float32, dynamic,
  int8 (static QDQ, ``kr.export``'s default), and with ``--onnx-variants``:
  QOperator vs QDQ, per-tensor vs per-channel, 8- vs 7-bit weights, int8 vs
  uint8 activations, without onnxruntime's pre-processing, and graph
  optimization levels.

Every export is written by ``kr.export`` (so it is what users get) and opened
with ``kr.serving.open_model`` (the serving path). All cases are timed in
interleaved rounds: each round runs every case (rotated order) once untimed
(the switch) and then ``--calls`` timed calls, so a busy moment of the machine
falls on all cases alike; medians over all rounds are reported, as a ratio to
Keras float32 ``predict_on_batch`` (time / Keras time: below 1 is faster) and
as GFLOP/s (2 x multiply-adds per image / time) against the machine's matmul
peak, measured in the same run with onnxruntime's MatMul (float32, MLAS
SGEMM) and MatMulInteger (uint8 x int8, the integer kernels int8 models use),
n x n at 1 thread and every core; NumPy's float32 matmul is recorded beside
it. Top-1: on digits' validation split for cifar_resnet20 (trained
``--epochs`` epochs); for ResNet-50 (random weights) the share of random
images whose top class matches Keras float32's ("agreement").

Writes ``benchmarks/results/latency-YYYY-MM-DD.json`` (b, c... when taken)
with the CPU named, and prints a Markdown table per model.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
EXPORTS = [("tflite", None), ("tflite", "float16"), ("tflite", "dynamic"), ("tflite", "int8"),
           ("onnx", None), ("onnx", "dynamic"), ("onnx", "int8")]
SUFFIX = {"tflite": ".tflite", "onnx": ".onnx"}


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def median_ms(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def matmul_peaks(cores: int, n: int, reps: int) -> dict:
    """GFLOP/s (float32) and GOP/s (int8) of an n x n matmul with onnxruntime, at 1 thread
    and every core, and NumPy's float32 matmul (its BLAS, its default threads)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    def session(op: str, a_type: int, b_type: int, out_type: int, threads: int):
        graph = helper.make_graph(
            [helper.make_node(op, ["a", "b"], ["c"])], "peak",
            [helper.make_tensor_value_info("a", a_type, [n, n]),
             helper.make_tensor_value_info("b", b_type, [n, n])],
            [helper.make_tensor_value_info("c", out_type, [n, n])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        return ort.InferenceSession(model.SerializeToString(), options,
                                    providers=["CPUExecutionProvider"])

    rng = np.random.RandomState(0)
    a32, b32 = rng.rand(n, n).astype("float32"), rng.rand(n, n).astype("float32")
    a8 = rng.randint(0, 255, (n, n)).astype("uint8")
    b8 = rng.randint(-127, 127, (n, n)).astype("int8")
    ops = 2 * n ** 3
    out: dict = {"method": f"onnxruntime {ort.__version__} MatMul (float32) and MatMulInteger "
                           f"(uint8 x int8 -> int32), {n}x{n}, median of {reps}",
                 "float32": {}, "int8": {}}
    for threads in sorted({1, cores}):
        f32 = session("MatMul", TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT,
                      threads)
        i8 = session("MatMulInteger", TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32,
                     threads)
        out["float32"][str(threads)] = ops / median_ms(
            lambda s=f32: s.run(None, {"a": a32, "b": b32}), reps) / 1e6
        out["int8"][str(threads)] = ops / median_ms(
            lambda s=i8: s.run(None, {"a": a8, "b": b8}), reps) / 1e6
    out["numpy_float32"] = ops / median_ms(lambda: a32 @ b32, reps) / 1e6
    del onnx
    return out


class Case:
    """One thing to time: a runtime, a precision, a thread count, and how to call it."""

    def __init__(self, runtime: str, precision: str, api: str, threads: int, run,
                 peak_kind: str = "float32", size: int | None = None, group: str = "") -> None:
        self.runtime, self.precision, self.api, self.threads = runtime, precision, api, threads
        self.run, self.peak_kind, self.size = run, peak_kind, size
        self.group = group or f"{runtime} {precision} {api}"
        self.key = f"{self.group} @{threads}"
        self.top1: float | None = None
        self.ms: float | None = None


def keras_cases(kr, keras, model, cores: int) -> list:
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # predict_on_batch retraces for the top-1 batches

    cases = []
    twin = None
    old = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_bfloat16")
        twin = kr.build(kr.spec_of(model))
    finally:
        keras.config.set_dtype_policy(old)
    twin.set_weights(model.get_weights())
    for precision, m in (("float32", model), ("mixed_bfloat16", twin)):
        compiled = tf.function(lambda x, m=m: m(x, training=False), reduce_retracing=True)
        cases.append(Case("keras", precision, "predict_on_batch", cores,
                          lambda x, m=m: np.asarray(m.predict_on_batch(x))))
        cases.append(Case("keras", precision, "compiled call", cores,
                          lambda x, f=compiled: np.asarray(f(tf.constant(x)))))
    return cases


def export_cases(kr, model, rep, folder: str, cores: int) -> list:
    from keras_resnet.serving import open_model

    cases = []
    for fmt, q in EXPORTS:
        path = os.path.join(folder, f"{q or 'float32'}{SUFFIX[fmt]}")
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dynamic ONNX's slowness: measured here
            kr.export(model, path, fmt, quantize=q, verify=False,
                      representative_data=rep if q == "int8" else None)
        print(f"  exported {fmt} {q or 'float32'} in {time.perf_counter() - start:.0f} s",
              flush=True)
        kind = "int8" if q == "int8" or (fmt, q) == ("onnx", "dynamic") else "float32"
        for threads in sorted({1, cores}):
            opened = open_model(path, threads=threads)
            cases.append(Case(fmt, q or "float32", opened.runtime, threads, opened, kind,
                              os.path.getsize(path)))
    return cases


ONNX_VARIANTS = {
    # name: (quantize_static options replacing kr.export's, pre-process first)
    "QDQ u8s8 per-channel 8-bit": ({"reduce_range": False}, True),
    "QDQ u8s8 per-tensor 7-bit": ({"per_channel": False}, True),
    "QDQ s8s8 per-channel 7-bit": ({"activation_type": "QInt8"}, True),
    "QOperator u8s8 per-channel 7-bit": ({"quant_format": "QOperator"}, True),
    "QDQ, no pre-processing": ({}, False),
    "QDQ, softmax quantized too": ({"op_types_to_quantize": None}, True),
}


def onnx_variant_cases(model_folder: str, rep, cores: int) -> list:
    """int8 ONNX variants of the float32 export, and session options of the default."""
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from keras_resnet.serving.quantize import onnx_int8_options

    src = os.path.join(model_folder, "float32.onnx")
    name = ort.InferenceSession(src, providers=["CPUExecutionProvider"]).get_inputs()[0].name
    prepared = os.path.join(model_folder, "prepared.onnx")
    quant_pre_process(src, prepared, skip_symbolic_shape=True)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.rows = iter(rep)

        def get_next(self):
            row = next(self.rows, None)
            return None if row is None else {name: row[None]}

    def session(path: str, threads: int, level=None):
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        if level is not None:
            options.graph_optimization_level = level
        s = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        out = s.get_outputs()[0].name
        return lambda x: s.run([out], {name: x})[0]

    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime's advice to pre-process
    cases = []
    enums = {"QInt8": QuantType.QInt8, "QOperator": QuantFormat.QOperator}
    for label, (changes, pre) in ONNX_VARIANTS.items():
        options = {**onnx_int8_options(), **{k: enums.get(v, v) for k, v in changes.items()}}
        if options["op_types_to_quantize"] is None:
            del options["op_types_to_quantize"]
        path = os.path.join(model_folder, f"variant{len(cases)}.onnx")
        quantize_static(prepared if pre else src, path, Reader(), **options)
        for threads in sorted({1, cores}):
            cases.append(Case("onnx", "int8", label, threads, session(path, threads), "int8",
                              os.path.getsize(path), group=f"onnx int8 variant: {label}"))
    default = os.path.join(model_folder, "int8.onnx")
    for level in ("ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED"):
        for threads in sorted({1, cores}):
            run = session(default, threads, getattr(ort.GraphOptimizationLevel, level))
            cases.append(Case("onnx", "int8", f"kr.export int8, {level}", threads, run, "int8",
                              os.path.getsize(default),
                              group=f"onnx int8 variant: session {level}"))
    return cases


def top1(cases: list, x: np.ndarray, y: np.ndarray) -> None:
    """Top-1 of each case on (x, y), computed once per group (thread counts agree)."""
    done: dict = {}
    for case in cases:
        if case.group not in done:
            preds = np.concatenate([np.asarray(case.run(x[i:i + 32])) for i in
                                    range(0, len(x), 32)])
            done[case.group] = float(np.mean(preds.argmax(-1) == y))
        case.top1 = done[case.group]


def interleaved(cases: list, x: np.ndarray, rounds: int, calls: int, warmup: int = 3) -> None:
    for case in cases:
        for _ in range(warmup):
            case.run(x)
    times: dict = {case.key: [] for case in cases}
    for r in range(rounds):
        shift = r % len(cases)
        for case in cases[shift:] + cases[:shift]:
            case.run(x)  # untimed: the first call after another runtime ran
            for _ in range(calls):
                start = time.perf_counter()
                case.run(x)
                times[case.key].append(time.perf_counter() - start)
        print(f"  round {r + 1}/{rounds}", flush=True)
    for case in cases:
        case.ms = 1000 * statistics.median(times[case.key])


def measure_model(kr, keras, label: str, model, rep, x_eval, y_eval, args, cores: int,
                  peaks: dict, folder: str) -> list:
    print(f"{label}: exporting", flush=True)
    os.makedirs(folder, exist_ok=True)
    cases = keras_cases(kr, keras, model, cores) + export_cases(kr, model, rep, folder, cores)
    if args.onnx_variants:
        cases += onnx_variant_cases(folder, rep, cores)
    top1(cases, x_eval, y_eval)
    print(f"{label}: timing {len(cases)} cases, {args.rounds} rounds x {args.calls} calls",
          flush=True)
    interleaved(cases, x_eval[:1], args.rounds, args.calls)
    macs = int(kr.flops(model))
    base = next(c for c in cases if c.group == "keras float32 predict_on_batch")
    rows = []
    for c in cases:
        gflops = 2 * macs / (c.ms / 1000) / 1e9
        peak = peaks[c.peak_kind][str(c.threads)]
        rows.append({"model": label, "group": c.group,
                     "input_shape": list(model.inputs[0].shape[1:]),
                     "multiply_adds": macs, "runtime": c.runtime, "precision": c.precision,
                     "api": c.api, "threads": c.threads, "ms": round(c.ms, 4),
                     "time_vs_keras_float32": round(c.ms / base.ms, 4),
                     "gflops": round(gflops, 2), "peak_kind": c.peak_kind,
                     "peak_gflops": round(peak, 1),
                     "percent_of_peak": round(100 * gflops / peak, 1),
                     "size_bytes": c.size, "top1": c.top1})
    return rows


def table(rows: list, cores: int, top1_name: str) -> str:
    head = ["runtime", "precision", "api", "threads", "ms", "time / Keras f32", "GFLOP/s",
            "% of peak", top1_name]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 4 + "---:|" * (len(head) - 4)]
    for r in rows:
        lines.append("| " + " | ".join([
            r["runtime"], r["precision"], r["api"], str(r["threads"]),
            f"{r['ms']:.3f}" if r["ms"] < 10 else f"{r['ms']:.1f}",
            f"{r['time_vs_keras_float32']:.3f}", f"{r['gflops']:.1f}",
            f"{r['percent_of_peak']:.0f} ({r['peak_kind']})",
            "" if r["top1"] is None else f"{r['top1']:.4f}"]) + " |")
    return "\n".join(lines)


def speedups(rows: list, cores: int) -> list:
    """The issue's targets: ONNX int8 vs ONNX float32 (and TFLite's), per model and threads."""
    out = []
    for model in sorted({r["model"] for r in rows}):
        for runtime in ("onnx", "tflite"):
            for threads in sorted({1, cores}):
                ms = {r["precision"]: r["ms"] for r in rows if r["model"] == model
                      and r["runtime"] == runtime and r["threads"] == threads
                      and not r["group"].startswith("onnx int8 variant")}
                if "int8" in ms and "float32" in ms:
                    out.append({"model": model, "runtime": runtime, "threads": threads,
                                "float32_ms": ms["float32"], "int8_ms": ms["int8"],
                                "speedup": round(ms["float32"] / ms["int8"], 3)})
    return out


def result_path(folder: str, quick: bool) -> str:
    day = datetime.date.today().isoformat()
    stem = f"latency-{'quick-' if quick else ''}{day}"
    for suffix in [""] + list("bcdefghijklmnopqrstuvwxyz"):
        path = os.path.join(folder, f"{stem}{suffix}.json")
        if not os.path.exists(path):
            return path
    raise FileExistsError(f"too many results for {day} in {folder}")


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet50", "cifar_resnet20"],
                        choices=["resnet50", "cifar_resnet20"])
    parser.add_argument("--size", type=int, default=224, help="ResNet-50 input size")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=3, help="timed calls per case per round")
    parser.add_argument("--epochs", type=int, default=3, help="cifar_resnet20 on digits")
    parser.add_argument("--calibration", type=int, default=100,
                        help="ResNet-50 int8 calibration examples (cifar_resnet20: 300 "
                        "training examples of digits, kr.export's default)")
    parser.add_argument("--peak-n", type=int, default=2048, help="matmul size for the peak")
    parser.add_argument("--onnx-variants", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: cifar_resnet20, 1 epoch, 2 rounds, small peak")
    parser.add_argument("--out", help="results folder (default benchmarks/results; with "
                        "--quick a temporary folder)")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.rounds, args.calls, args.epochs, args.peak_n = (
            ["cifar_resnet20"], 2, 2, 1, 512)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    import keras_resnet as kr
    from keras_resnet.serving import machine

    if keras.backend.backend() != "tensorflow":
        raise SystemExit("latency.py needs KERAS_BACKEND=tensorflow (the exporters' backend)")
    cores = machine.all_cores()
    started = time.perf_counter()
    print(f"{machine.cpu_name()}, {cores} cores; measuring the matmul peak", flush=True)
    peaks = matmul_peaks(cores, args.peak_n, 5 if args.quick else 10)
    print("  " + json.dumps({k: v for k, v in peaks.items() if k != "method"}), flush=True)
    rows: list = []
    tables = []
    with tempfile.TemporaryDirectory(prefix="latency_") as tmp:
        if "cifar_resnet20" in args.models:
            keras.utils.set_random_seed(0)
            data = kr.load_data("digits")
            model = kr.train("cifar_resnet20", data, epochs=args.epochs, batch_size=64,
                             learning_rate=0.05, verbose=0).model
            x_val, y_val = data.validation
            part = measure_model(kr, keras, "cifar_resnet20 (digits)", model,
                                 data.train[0][:300], x_val, y_val, args, cores, peaks,
                                 os.path.join(tmp, "r20"))
            rows += part
            tables.append((f"cifar_resnet20, 8x8x1, trained {args.epochs} epochs on digits "
                           f"(top-1 on {len(y_val)} validation images)", part, "top-1"))
        if "resnet50" in args.models:
            s = args.size
            keras.utils.set_random_seed(0)
            model = kr.build_resnet("resnet50", input_shape=(s, s, 3))
            rng = np.random.RandomState(0)
            rep = rng.uniform(0, 1, (args.calibration, s, s, 3)).astype("float32")
            x = rng.uniform(0, 1, (20, s, s, 3)).astype("float32")
            y = model.predict(x, verbose=0).argmax(-1)
            part = measure_model(kr, keras, f"resnet50 {s}x{s} (random weights)", model, rep,
                                 x, y, args, cores, peaks, os.path.join(tmp, "r50"))
            rows += part
            tables.append((f"resnet50, {s}x{s}x3, random weights (agreement with Keras "
                           "float32 on 20 random images)", part, "agreement"))
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": "python benchmarks/latency.py " + " ".join(argv or sys.argv[1:]),
            **machine.describe(), "python": platform.python_version(),
            "versions": {d: version(d) for d in ("keras", "tensorflow-cpu", "tensorflow",
                                                 "ai-edge-litert", "onnxruntime", "onnx",
                                                 "tf2onnx", "numpy")},
            "settings": {k: v for k, v in vars(args).items() if k != "out"},
            "keras_threads": f"TensorFlow defaults ({cores} cores)", "batch": 1,
            "peak": peaks, "seconds": round(time.perf_counter() - started)}
    report = {"meta": meta, "int8_speedups": speedups(rows, cores), "results": rows}
    folder = args.out or (tempfile.mkdtemp(prefix="latency_quick_") if args.quick
                          else os.path.join(HERE, "results"))
    os.makedirs(folder, exist_ok=True)
    path = result_path(folder, args.quick)
    with open(path, "x", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2)
    print(f"\n{meta['cpu']} ({', '.join(meta['cpu_flags'])}), {cores} cores; matmul peak "
          f"float32 {peaks['float32']['1']:.0f} / {peaks['float32'][str(cores)]:.0f} GFLOP/s, "
          f"int8 {peaks['int8']['1']:.0f} / {peaks['int8'][str(cores)]:.0f} GOP/s "
          f"(1 / {cores} threads; NumPy float32 {peaks['numpy_float32']:.0f})")
    for title, part, name in tables:
        print(f"\n{title}\n\n{table(part, cores, name)}")
    print("\nint8 vs float32, same runtime and threads (x faster):")
    for s in report["int8_speedups"]:
        print(f"  {s['model']}, {s['runtime']}, {s['threads']} thread(s): "
              f"{s['float32_ms']:.3f} -> {s['int8_ms']:.3f} ms, {s['speedup']:.2f}x")
    print(f"\nwrote {path} ({meta['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
