"""The ``keras-resnet`` command: a thin layer over the library.

Exit codes: 0 success, 1 a failure while working (disk, training...), 2 a usage
error (bad arguments, bad spec, missing file). Errors print one line; pass
``--debug`` for the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

USAGE_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError,
                IsADirectoryError, NotADirectoryError, KeyError)


class UsageError(Exception):
    """A command-line usage error (exit code 2)."""


def _shape(text: str) -> tuple:
    try:
        return tuple(None if p.strip().lower() in ("none", "") else int(p)
                     for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated integers such as 32,32,3. Received: {text!r}"
        ) from None


def _add_spec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="preset name (see `keras-resnet presets`) or spec "
                   "file (.json, .yaml)")
    p.add_argument("--plain", action="store_true",
                   help="build the plain twin (no shortcuts)")
    p.add_argument("--input-shape", type=_shape, metavar="H,W,C",
                   help="override the input shape, e.g. 64,64,3")
    p.add_argument("--classes", type=int, help="override the number of classes")


def _build_from_args(args: argparse.Namespace) -> Any:
    import keras_resnet as kr

    kwargs = {}
    if args.input_shape is not None:
        kwargs["input_shape"] = args.input_shape
    if args.classes is not None:
        kwargs["classes"] = args.classes
    spec = kr.as_spec(args.spec)  # plain or residual as the spec says
    if args.plain:
        spec = kr.presets.with_residual(spec, False)
    return kr.build(spec, **kwargs)


def cmd_summary(args: argparse.Namespace) -> int:
    from keras_resnet.report import stage_table

    model = _build_from_args(args)
    print(stage_table(model))
    if args.layers:
        model.summary()
    if args.plot:
        from keras_resnet.plots import plot

        plot(model, args.plot, backend=args.plot_backend)
        print(f"wrote {args.plot}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    import keras_resnet as kr

    if args.table:
        from keras_resnet.report import presets_markdown

        print(presets_markdown())
        return 0
    for name in kr.presets.TABLE:
        print(f"{name:24s} {kr.presets.describe(name)}")
    return 0


def _recipe_args(p: argparse.ArgumentParser, defaults: dict) -> None:
    p.add_argument("--epochs", type=int, default=defaults["epochs"])
    p.add_argument("--batch-size", type=int, default=defaults["batch_size"])
    p.add_argument("--lr", "--learning-rate", dest="learning_rate", type=float,
                   default=defaults["learning_rate"])
    p.add_argument("--warmup-epochs", type=int, default=defaults["warmup_epochs"],
                   help="epochs at a tenth of the learning rate first")
    p.add_argument("--schedule", choices=("step", "cosine", "constant"),
                   default=defaults["schedule"])
    p.add_argument("--augment", action=argparse.BooleanOptionalAction,
                   default=defaults.get("augment", False),
                   help="the paper's CIFAR augmentation (pad, random crop, flip)")
    p.add_argument("--seed", type=int, default=defaults.get("seed", 0))
    p.add_argument("--overwrite", action="store_true",
                   help="replace finished results in the output folder")


def _recipe_of(args: argparse.Namespace) -> Any:
    """The recipe of ``train``: ``--recipe FILE`` (or the defaults), then the flags given."""
    import json

    from keras_resnet.training import Recipe

    recipe = Recipe()
    if args.recipe is not None:
        try:
            with open(args.recipe, encoding="utf-8") as fh:
                stored = json.load(fh)
        except json.JSONDecodeError as e:
            raise UsageError(f"--recipe {args.recipe!r} is not valid JSON ({e})") from None
        if isinstance(stored, dict) and isinstance(stored.get("recipe"), dict):
            stored = stored["recipe"]  # a run folder's run.json
        recipe = Recipe.from_dict(stored)
    names = [f for f in recipe.to_dict() if getattr(args, f, None) is not None]
    return recipe.replace(**{f: getattr(args, f) for f in names})


def cmd_train(args: argparse.Namespace) -> int:
    import keras_resnet as kr

    if (args.preset is None) == (args.spec is None):
        raise UsageError("give exactly one of --preset NAME and --spec FILE")
    source = args.preset or args.spec
    if args.plain:
        source = kr.presets.with_residual(kr.as_spec(source), False)
    result = kr.train(source, args.data, recipe=_recipe_of(args), out_dir=args.out,
                      overwrite=args.overwrite, tensorboard=args.tensorboard,
                      distribute=_distribute_of(args),
                      mixed_precision=args.mixed_precision)
    acc = result.history.get("val_accuracy") or result.history.get("accuracy") or [float("nan")]
    if result.process_count > 1:
        from keras_resnet.training.run import weights_digest

        print(f"process {result.process_index} of {result.process_count}: trained "
              f"{result.recipe.epochs if result.recipe else '?'} epochs; weights sha256 "
              f"{weights_digest(result.model)}", flush=True)
        if result.process_index:
            return 0  # process 0 writes and reports the run folder
    print(f"saved {os.path.join(args.out, 'model.keras')} (+ spec.json, run.json, "
          f"history.json, history.csv); final {'val_' if 'val_accuracy' in result.history else ''}"
          f"accuracy {acc[-1]:.4f}")
    return 0


def _distribute_of(args: argparse.Namespace) -> Any:
    """``--distribute``, with the multi-process flags (a ``MultiProcess``)."""
    given = {k: getattr(args, k) for k in ("job_addresses", "num_processes", "process_id",
                                           "connect_timeout") if getattr(args, k) is not None}
    if not given and args.distribute != "multi_process":
        return None if args.distribute == "none" else args.distribute
    if args.distribute not in ("none", "auto", "multi_process"):
        raise UsageError("--job-addresses, --num-processes, --process-id and "
                         "--connect-timeout go with --distribute multi_process. "
                         f"Received: --distribute {args.distribute}")
    from keras_resnet.training import MultiProcess

    return MultiProcess(**given)


def _auto_int(text: str) -> int | str:
    """``"auto"`` or a whole number (the value of ``--jobs``/``--threads``)."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a whole number, got {text!r}") from None


def add_jobs_args(p: argparse.ArgumentParser, what: str) -> None:
    """``--jobs`` and ``--threads`` of a command that trains ``what`` side by side."""
    p.add_argument("--jobs", type=_auto_int, default="auto",
                   help=f"worker processes training {what} side by side (default auto: "
                        "one per core for small models)")
    p.add_argument("--threads", type=_auto_int, default="auto",
                   help="threads per worker (default auto: 1 for small models, else "
                        "every core); it changes float results, --jobs does not")


def cmd_compare(args: argparse.Namespace) -> int:
    from keras_resnet.experiment import compare, table

    result = compare(tuple(args.depths), args.data, epochs=args.epochs,
                     batch_size=args.batch_size, learning_rate=args.learning_rate,
                     warmup_epochs=args.warmup_epochs, schedule=args.schedule,
                     shortcut=args.shortcut, seed=args.seed, augment=args.augment,
                     out_dir=args.out, overwrite=args.overwrite, verbose=args.verbose,
                     jobs=args.jobs, threads=args.threads)
    if not args.verbose:  # compare() prints the table itself when verbose
        print(table(result.models))
    e = result.effect
    print(f"deepest plain (plain{e['deepest']}) trains "
          f"{'worse' if e['plain_degrades'] else 'NOT worse'} than the shallowest "
          f"(plain{e['shallowest']}); ResNet-{e['deepest']} is "
          f"{'at or below' if e['residual_at_or_below_plain'] else 'ABOVE'} "
          f"plain-{e['deepest']}.")
    print(f"wrote {args.out}/results.json, {args.out}/figure.png and one folder per model")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from keras_resnet.serving import export

    data = None
    if args.data is not None:
        from keras_resnet.data import load_data

        data = load_data(args.data)
    result = export(args.model, args.out, args.format, quantize=args.quantize,
                    io_dtype=args.io_dtype,
                    representative_data=data if args.quantize == "int8" else None,
                    validation_data=data if not args.no_verify else None,
                    max_accuracy_drop=args.max_accuracy_drop,
                    latency_runs=args.latency_runs, overwrite=args.overwrite,
                    verify=not args.no_verify)
    check = ("not verified" if result.max_abs_diff is None else
             f"verified in a fresh process, max abs difference {result.max_abs_diff:.2g}")
    kind = f"{result.format}, {result.quantize}" if result.quantize else result.format
    print(f"exported {args.model} -> {result.path} ({kind}; {check}; "
          f"{result.seconds:.1f}s)")
    facts = [f"size {result.size_bytes:,} B"]
    if result.latency_ms is not None:
        facts.append(f"latency {result.latency_ms:.3f} ms/image (batch 1, median)")
    if result.accuracy:
        a = result.accuracy
        facts.append(f"validation top-1 {a['export_top1']:.4f} (Keras {a['keras_top1']:.4f}, "
                     f"agreement {a['agreement']:.4f}, {a['examples']} examples)")
    print("; ".join(facts) + f"; card {result.card}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from keras_resnet.serving import predict_files

    for path, top in predict_files(args.model, args.images, top=args.top,
                                   labels=args.labels):
        best = ", ".join(f"{name} {p:.3f}" for name, p in top)
        print(f"{path}: {best}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    from keras_resnet import __version__

    parser = argparse.ArgumentParser(
        prog="keras-resnet",
        description="Plain and residual Keras networks from a spec.")
    parser.add_argument("--version", action="version",
                        version=f"keras-resnet {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("summary", help="print a per-stage table of a preset or spec")
    _add_spec_args(p)
    p.add_argument("--layers", action="store_true",
                   help="also print Keras' per-layer summary")
    p.add_argument("--plot", metavar="FILE.png",
                   help="draw the architecture (one box per block, shortcuts marked)")
    p.add_argument("--plot-backend", choices=("blocks", "graphviz"), default="blocks",
                   help="graphviz draws every layer (needs pydot and graphviz)")
    p.set_defaults(func=cmd_summary)

    from keras_resnet.experiment import DEFAULTS

    p = sub.add_parser("compare", help="the experiment: plain vs residual twins at several "
                       "depths (the main job)")
    p.add_argument("--depths", type=int, nargs="+", default=list(DEFAULTS["depths"]),
                   help="depths 6n+2 of the paper's CIFAR nets")
    p.add_argument("--data", default="digits",
                   help="digits (built in), an image folder, or cifar10/mnist/...")
    p.add_argument("--shortcut", default="A", choices=("A", "B", "C", "D"))
    p.add_argument("--out", default="runs/compare", help="output folder")
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    add_jobs_args(p, "models")
    _recipe_args(p, DEFAULTS)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("train", help="train a preset or spec, save model, spec and history")
    p.add_argument("--preset", help="preset name")
    p.add_argument("--spec", help="spec file (.json, .yaml)")
    p.add_argument("--plain", action="store_true", help="train the plain twin")
    p.add_argument("--data", default="digits")
    p.add_argument("--out", required=True, help="output folder (resumes if unfinished)")
    p.add_argument("--recipe", metavar="FILE.json",
                   help="training settings to start from: a JSON dict of recipe fields, "
                   "or a run folder's run.json (flags given here change them)")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw", "rmsprop"),
                   help="default sgd (momentum 0.9)")
    p.add_argument("--momentum", type=float, help="SGD/RMSprop momentum (default 0.9)")
    p.add_argument("--label-smoothing", type=float, help="default 0")
    p.add_argument("--tensorboard", action="store_true", help="log to OUT/logs")
    p.add_argument("--distribute", default="none",
                   choices=("none", "auto", "mirrored", "data_parallel", "multi_process"),
                   help="data-parallel training over several devices; multi_process "
                   "(JAX): over several processes, each started with the same command")
    p.add_argument("--job-addresses", metavar="HOST:PORT",
                   help="multi_process: process 0's address (default "
                   "$KERAS_DISTRIBUTION_JOB_ADDRESSES)")
    p.add_argument("--num-processes", type=int,
                   help="multi_process: processes in the job (default "
                   "$KERAS_DISTRIBUTION_NUM_PROCESSES)")
    p.add_argument("--process-id", type=int,
                   help="multi_process: this process, 0 .. N-1; 0 writes --out (default "
                   "$KERAS_DISTRIBUTION_PROCESS_ID)")
    p.add_argument("--connect-timeout", type=float, metavar="SECONDS",
                   help="multi_process: give up when the job has not formed by then "
                   "(default 240)")
    p.add_argument("--mixed-precision", choices=("mixed_float16", "mixed_bfloat16"),
                   help="compute in half precision (softmax stays float32)")
    # None: the recipe's value (kr.Recipe defaults: 30 epochs, batch 128, lr 0.1, step)
    _recipe_args(p, dict(epochs=None, batch_size=None, learning_rate=None,
                         warmup_epochs=None, schedule=None, augment=None, seed=None))
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="export a .keras model or run folder (verified in a "
                       "fresh process, with a model card)")
    p.add_argument("model", help="a .keras file or a run folder of `keras-resnet train`")
    p.add_argument("out", help="target file or folder")
    p.add_argument("--format", default="saved_model",
                   choices=("keras", "saved_model", "tflite", "onnx"))
    p.add_argument("--quantize", choices=("dynamic", "float16", "int8"),
                   help="tflite: dynamic, float16 or int8 (full integer); onnx: dynamic")
    p.add_argument("--io-dtype", default="float32", choices=("float32", "int8"),
                   help="input/output type of an int8 TFLite model")
    p.add_argument("--data", help="data for int8 calibration (training split) and the "
                   "accuracy check (validation split), as for `train --data`; default: "
                   "the run folder's")
    p.add_argument("--max-accuracy-drop", type=float, metavar="PP",
                   help="largest allowed drop of validation top-1, in percentage points "
                   "(default 1)")
    p.add_argument("--latency-runs", type=int, default=20,
                   help="timed batch-1 runs in the fresh process (0: none)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-verify", action="store_true", help="skip the reload check")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="top classes of a trained model for image files")
    p.add_argument("model", help="a .keras file or a run folder")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--top", type=int, default=3)
    p.add_argument("--labels", help="JSON list of class names (default: labels.json next "
                   "to the model, else class numbers)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("presets", help="list the presets")
    p.add_argument("--table", action="store_true",
                   help="build each and print a Markdown table of parameters and FLOPs")
    p.set_defaults(func=cmd_presets)
    from keras_resnet.tuning import add_tune_parser
    add_tune_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``keras-resnet`` command.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        The exit code.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("keras-resnet: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - one clear line, traceback with --debug
        if args.debug:
            raise
        usage = isinstance(e, USAGE_ERRORS + (UsageError,))
        # one line, whatever the exception's own formatting
        msg = " ".join(part.strip() for part in str(e).splitlines() if part.strip())
        msg = msg or type(e).__name__
        print(f"keras-resnet: error: {msg}", file=sys.stderr)
        return 2 if usage else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
