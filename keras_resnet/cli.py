"""The ``keras-resnet`` command: the only place that parses arguments, prints for a
terminal, or ends a process.

Every command that takes a model takes it as its first argument (a preset
name, a spec file, a ``.keras`` file or a run folder: whatever the command can
use), writes where ``--out`` says, and takes the same recipe and data options,
made from one definition (the fields of :class:`keras_resnet.Recipe` and the
arguments of :func:`keras_resnet.load_data`). ``--config FILE`` (JSON or YAML)
gives any option; options on the command line win.

Exit codes: 0 success; 1 a failure during the work (one line naming what
failed); 2 a usage or input error found before the work started; 130
interrupted (Ctrl-C). ``--debug`` (anywhere) shows the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras_resnet as kr
from keras_resnet import _checks as C
from keras_resnet.tuning import ALGORITHMS, OBJECTIVES, RECIPE_HPS

EXIT_CODES = """exit codes:
  0    success
  1    a failure during the work (disk full, training diverged, ...): one line says what
  2    a usage or input error found before the work started (bad option, spec, file)
  130  interrupted (Ctrl-C)
--debug (anywhere on the line) shows the traceback."""
#: Errors in what the user gave, found before the work: exit 2.
INPUT_ERRORS = (C.InputError, FileNotFoundError, FileExistsError, IsADirectoryError,
                NotADirectoryError)
VERBOSE = ("auto", "0", "1", "2")


class UsageError(C.InputError):
    """A command-line usage error (exit code 2)."""


# ---------------------------------------------------------------- option types
def _shape(text: str) -> tuple:
    try:
        return tuple(None if p.strip().lower() in ("none", "") else int(p)
                     for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated integers such as 32,32,3. Received: {text!r}"
        ) from None


def _auto_int(text: str) -> int | str:
    """``"auto"`` or a whole number (``--jobs``, ``--threads``, ``--steps-per-execution``)."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a whole number, got {text!r}") from None


def _verbose(text: str) -> int | str:
    if text not in VERBOSE:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(VERBOSE)}, got {text!r}")
    return text if text == "auto" else int(text)


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low not in ("true", "false", "yes", "no", "on", "off", "1", "0"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return low in ("true", "yes", "on", "1")


def _setting(kind: Callable) -> Callable:
    """An argparse type for a searchable option of ``tune``: ``"3"`` fixed,
    ``"1,3,5"`` choices, ``"1e-5:1e-2"`` a log range (``"lin:1:4"`` linear)."""

    def parse(text: str) -> Any:
        sampling, text = ("linear", text[4:]) if text.startswith("lin:") else ("log", text)
        try:
            if ":" in text:
                lo, hi = text.split(":", 1)
                return {"min": kind(lo), "max": kind(hi), "sampling": sampling}
            parts = [kind(p) for p in text.split(",") if p.strip()]
        except (ValueError, argparse.ArgumentTypeError):
            raise argparse.ArgumentTypeError(f"not a value, list or range: {text!r}") from None
        return parts[0] if len(parts) == 1 else parts

    return parse


# ---------------------------------------------------------------- shared options
def _opt(p: Any, *flags: str, default: Any = None, shown: Any = None,
         help: str = "", **kw: Any) -> None:  # noqa: A002 - argparse's word
    """An option whose help ends with its default (``shown``, else ``default``)."""
    value = default if shown is None else shown
    if value is not None and kw.get("action") != "store_true" and "default:" not in help:
        value = str(value).lower() if isinstance(value, bool) else value
        help = f"{help} (default: {value})"  # noqa: A001
    p.add_argument(*flags, default=default, help=help.replace("%", "%%"), **kw)


def _recipe_options(p: argparse.ArgumentParser, defaults: Any, search: bool = False) -> None:
    """One option per :class:`~keras_resnet.Recipe` field, with its help and the
    command's default; ``search``: the searchable ones take lists and ranges."""
    g = p.add_argument_group("training recipe (kr.Recipe)")
    g.add_argument("--recipe", metavar="FILE", help="start from a recipe: a JSON dict of "
                   "recipe fields, a run folder's run.json or a best_recipe.json; the "
                   "options below change it")
    for f in dataclasses.fields(kr.Recipe):
        flags = [f"--{f.name.replace('_', '-')}"] + (["--lr"] if f.name == "learning_rate"
                                                      else [])
        shown = getattr(defaults, f.name)
        meta = dict(f.metadata)
        searchable = search and f.name in RECIPE_HPS
        kind: Callable = {int: int, float: float}.get(type(f.default), str)
        if f.name in ("learning_rate", "seed"):
            kind = float if f.name == "learning_rate" else int
        if f.name == "augment":
            kind = _bool
        if searchable:
            extra = " (a value, v1,v2 choices or a MIN:MAX range: searched)"
            _opt(g, *flags, shown=shown, help=meta["help"] + extra, type=_setting(kind),
                 metavar="V")
        elif f.name == "metrics":
            _opt(g, *flags, shown=",".join(shown), help=meta["help"], nargs="+",
                 metavar="NAME")
        elif f.name == "augment":
            _opt(g, *flags, shown=shown, help=meta["help"],
                 action=argparse.BooleanOptionalAction)
        else:
            _opt(g, *flags, shown=shown, help=meta["help"], type=kind,
                 choices=meta.get("choices"))


def _data_options(p: argparse.ArgumentParser, required: bool = False) -> None:
    """The data options of :func:`keras_resnet.load_data`."""
    g = p.add_argument_group("data (kr.load_data)")
    _opt(g, "--data", default=None if required else "digits", help="digits (built in), "
         "a folder with one sub-folder of images per class, or cifar10, cifar100, mnist, "
         "fashion_mnist (keras.datasets: need a network the first time)")
    _opt(g, "--image-size", type=_shape, metavar="H,W", shown="32,32",
         help="image folders: images are resized to this size")
    _opt(g, "--validation-split", type=float, shown=0.2,
         help="share held out for validation (digits, folders)")
    _opt(g, "--color-mode", choices=("rgb", "grayscale", "rgba"), shown="rgb",
         help="image folders: channels")
    g.add_argument("--skip-bad-files", action="store_true",
                   help="image folders: leave out files that cannot be decoded (listed in "
                   "OUT/bad_files.json) instead of stopping before training")


def _run_options(p: argparse.ArgumentParser, what: str) -> None:
    _opt(p, "--jobs", type=_auto_int, default="auto",
         help=f"worker processes training {what} side by side (auto: one per core for "
         "small models)")
    _opt(p, "--threads", type=_auto_int, default="auto",
         help="threads per worker (auto: 1 for small models, else every core); it "
         "changes float results, --jobs does not")


def _common(p: argparse.ArgumentParser, out: str | None, out_help: str,
            verbose: bool = True) -> None:
    _opt(p, "--out", default=out, required=out is None and out_help.endswith("!"),
         help=out_help.rstrip("!"), metavar="PATH")
    p.add_argument("--overwrite", action="store_true",
                   help="replace what --out holds (a finished run, an export)")
    if verbose:
        _opt(p, "--verbose", type=_verbose, default="auto",
             help="0 silent; auto, 1, 2: progress (Keras' meaning)")


# ---------------------------------------------------------------- the parser
def make_parser() -> argparse.ArgumentParser:
    """The ``keras-resnet`` argument parser (one sub-parser per command)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks on errors")
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help="JSON or YAML file holding any of the options (by their "
                        "long name); the command line wins")
    parser = argparse.ArgumentParser(
        prog="keras-resnet", parents=[common], epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Plain and residual Keras networks from a spec.")
    parser.add_argument("--version", action="version", version=f"keras-resnet {kr.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    #: The command parsers, by name (what a --config file sets defaults of).
    parser.commands = {}  # type: ignore[attr-defined]
    for add in (_summary_parser, _presets_parser, _train_parser, _compare_parser,
                _tune_parser, _export_parser, _predict_parser):
        p = add(sub, common)
        parser.commands[p.prog.split()[-1]] = p  # type: ignore[attr-defined]
    return parser


def _sub(sub: Any, common: argparse.ArgumentParser, name: str, help: str,  # noqa: A002
         func: Callable, model: str | None = None) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help, parents=[common], epilog=EXIT_CODES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    if model:
        p.add_argument("model", nargs="?", metavar="MODEL", help=model)
    p.set_defaults(func=func)
    return p


def _summary_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = _sub(sub, common, "summary", "print a per-stage table of a network", cmd_summary,
             "preset name, spec file (.json, .yaml), .keras file or run folder")
    p.add_argument("--plain", action="store_true", help="the plain twin (no shortcuts)")
    p.add_argument("--input-shape", type=_shape, metavar="H,W,C",
                   help="override the input shape, e.g. 64,64,3")
    p.add_argument("--classes", type=int, help="override the number of classes")
    p.add_argument("--layers", action="store_true", help="also print Keras' layer summary")
    p.add_argument("--plot", metavar="FILE.png",
                   help="draw the architecture (one box per block, shortcuts marked)")
    _opt(p, "--plot-backend", choices=("blocks", "graphviz"), default="blocks",
         help="graphviz draws every layer (needs pydot and graphviz)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --plot")
    return p

def _presets_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = _sub(sub, common, "presets", "list the presets", cmd_presets)
    p.add_argument("--table", action="store_true",
                   help="build each and print a Markdown table of parameters and FLOPs")
    return p

def _train_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = _sub(sub, common, "train", "train a network; writes a run folder (resumable)",
             cmd_train, "preset name or spec file (built for the data), or a .keras file "
             "or run folder (its trained model, trained further)")
    p.add_argument("--plain", action="store_true", help="train the plain twin")
    _data_options(p)
    _recipe_options(p, kr.Recipe())
    _common(p, None, "the run folder (resumed if unfinished)!")
    p.add_argument("--tensorboard", action="store_true", help="also log to OUT/logs")
    _opt(p, "--steps-per-execution", type=_auto_int, default="auto",
         help="training steps per backend call (speed only)")
    g = p.add_argument_group("devices and precision")
    _opt(g, "--distribute", default=None, choices=("auto", "mirrored", "data_parallel",
                                                   "multi_process"),
         help="data-parallel training over several devices; multi_process (JAX): over "
         "several processes, each started with the same command")
    _opt(g, "--job-addresses", metavar="HOST:PORT", help="multi_process: process 0's "
         "address (default $KERAS_DISTRIBUTION_JOB_ADDRESSES)")
    _opt(g, "--num-processes", type=int, help="multi_process: processes in the job "
         "(default $KERAS_DISTRIBUTION_NUM_PROCESSES)")
    _opt(g, "--process-id", type=int, help="multi_process: this process, 0 .. N-1; 0 "
         "writes --out (default $KERAS_DISTRIBUTION_PROCESS_ID)")
    _opt(g, "--connect-timeout", type=float, metavar="SECONDS", shown=240,
         help="multi_process: give up when the job has not formed by then (process "
         "0 is then ended by JAX itself)")
    _opt(g, "--mixed-precision", choices=("mixed_float16", "mixed_bfloat16"),
         help="compute in half precision (variables and softmax stay float32); "
         "mixed_bfloat16 measured 1.3-1.45x faster training steps for ResNet-50 at 64-224 "
         "px on TensorFlow with a CPU that has AVX-512 BF16, no gain for the CIFAR nets or "
         "on JAX's CPU backend; it changes the numbers")
    _removed(p, "--preset", "--spec", replacement="the MODEL argument")
    return p

def _compare_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from keras_resnet.experiment import DEPTHS, MAIN_RECIPE

    p = _sub(sub, common, "compare", "the experiment: plain vs residual twins at several "
             "depths (the main job)", cmd_compare)
    _opt(p, "--depths", type=int, nargs="+", default=list(DEPTHS),
         help="depths 6n+2 of the paper's CIFAR nets")
    _opt(p, "--shortcut", default="A", choices=("A", "B", "C", "D"),
         help="shortcut option of the residual nets (A: equal parameters)")
    _data_options(p)
    _recipe_options(p, MAIN_RECIPE)
    _common(p, "runs/compare", "results.json, figure.png and one run folder per model")
    _run_options(p, "models")
    return p

def _tune_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = _sub(sub, common, "tune", "search depth, L2 and more with KerasTuner; resumable, "
             "trials side by side, several processes may share --out", cmd_tune,
             "preset name or spec file (a .keras file or run folder: its spec)")
    p.add_argument("--plain", action="store_true", help="tune the plain twin")
    g = p.add_argument_group("search (a value, v1,v2 choices or a MIN:MAX range; "
                             "lin:MIN:MAX for a linear one)")
    _opt(g, "--algorithm", choices=ALGORITHMS, default="hyperband", help="KerasTuner oracle")
    _opt(g, "--max-trials", type=int, default=10, help="trials in all (resumed included)")
    _opt(g, "--objective", choices=OBJECTIVES, default="val_accuracy",
         help="what a trial scores (its best epoch)")
    _opt(g, "--hyperband-factor", type=int, default=3, help="Hyperband's reduction factor")
    _opt(g, "--depth", type=_setting(int), metavar="V", shown="about 1/3x to 7/3x the "
         "base's", help="blocks in the deepest stage")
    _opt(g, "--l2", type=_setting(float), metavar="V", shown="1e-6:1e-2",
         help="L2 strength")
    _opt(g, "--width", type=_setting(float), metavar="V", help="filter multiplier")
    _opt(g, "--shortcut", type=_setting(str), metavar="V", help="shortcut option A-D")
    _opt(g, "--block-type", type=_setting(str), metavar="V",
         help="conv block type, e.g. basic,preact_basic")
    _opt(g, "--drop-path-rate", type=_setting(float), metavar="V",
         help="stochastic depth's largest rate, e.g. lin:0:0.2")
    g.add_argument("--allow-zero-l2", action="store_true",
                   help="also try no weight decay (a use_l2 switch)")
    _data_options(p)
    _recipe_options(p, kr.Recipe(), search=True)
    _common(p, None, "the project folder (default tuner/<model>_<algorithm>)")
    _run_options(p, "trials")
    p.add_argument("--no-isolate", dest="isolate", action="store_false",
                   help="train the trials in this process, one at a time")
    _opt(p, "--top", type=int, default=10, help="rows of the final table")
    _removed(p, "--base", replacement="the MODEL argument")
    _removed(p, "--directory", "--project-name", replacement="--out DIR/PROJECT")
    return p

def _export_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from keras_resnet.serving.formats import FORMATS, QUANTIZE

    p = _sub(sub, common, "export", "export a trained model (verified in a fresh process, "
             "with a model card)", cmd_export, ".keras file or run folder")
    _removed(p, "old_out", replacement="--out PATH", what="the target as a second argument")
    _opt(p, "--format", default="saved_model", choices=FORMATS + ("tf_saved_model",
                                                                  "litert"),
         help="keras, saved_model (Keras: tf_saved_model), tflite (Keras: litert), onnx")
    _opt(p, "--quantize", choices=sorted({q for v in QUANTIZE.values() for q in v if q}),
         help="tflite: int8 (full integer, calibrated), dynamic or float16; onnx: int8 "
         "(static, calibrated) or dynamic (slower than float32: warns)")
    p.add_argument("--include-preprocessing", action="store_true",
                   help="put the model's recorded preprocessing inside the export, so it "
                   "takes raw pixel values (0-255)")
    _opt(p, "--io-dtype", default="float32", choices=("float32", "int8"),
         help="input/output type of an int8 TFLite model")
    _opt(p, "--data", help="calibration (training split) and accuracy check (validation "
         "split) data, as train's --data (default: the run folder's)")
    p.add_argument("--skip-bad-files", action="store_true",
                   help="an image folder's files that cannot be decoded are left out")
    _opt(p, "--max-accuracy-drop", type=float, metavar="PP", shown=1.0,
         help="largest allowed drop of validation top-1, in percentage points")
    _opt(p, "--latency-runs", type=int, default=20, help="timed batch-1 runs (0: none)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip the fresh-process check")
    _common(p, None, "target file (.keras, .tflite, .onnx) or folder (SavedModel)",
            verbose=False)
    return p

def _predict_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = _sub(sub, common, "predict", "top classes of a trained model for image files",
             cmd_predict, ".keras, .tflite or .onnx file, or run folder")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    _opt(p, "--top", type=int, default=3, help="classes to show per image")
    _opt(p, "--labels", help="JSON list of class names (default: labels.json next to the "
         "model, else class numbers)")
    return p

def _removed(p: argparse.ArgumentParser, *flags: str, replacement: str,
             what: str | None = None) -> None:
    """0.2 options deprecated in 0.3, removed in 0.4: given, they are a usage error
    (exit 2) naming the new way, not argparse's "unrecognized arguments". ``flags``
    may be one positional's name (``what`` then says what it was)."""

    class Removed(argparse.Action):
        def __call__(self, parser: Any, ns: Any, value: Any, flag: Any = None) -> None:
            raise UsageError(f"{what or flag} was removed (deprecated in 0.3); use "
                             f"{replacement}")

    p.add_argument(*flags, action=Removed, nargs="?", help=argparse.SUPPRESS,
                   default=argparse.SUPPRESS)


# ---------------------------------------------------------------- what MODEL means
def _model(args: argparse.Namespace, can: tuple, command: str) -> Any:
    """The MODEL argument as a spec (``"spec"``) or a trained model's path (``"model"``)."""
    text = args.model
    if text is None:
        raise UsageError(f"{command} needs a MODEL: " + (
            "a preset name or a spec file" if "model" not in can else
            "a .keras file or a run folder" if "spec" not in can else
            "a preset name, a spec file, a .keras file or a run folder"))
    folder = kr.RunFolder.of(text) if os.path.isdir(text) else None
    trained = text.endswith((".keras", ".tflite", ".onnx")) or folder is not None
    if trained and "model" in can:
        return text
    if trained:  # a spec command given a trained model: its spec
        if folder is not None and os.path.exists(folder.file(folder.SPEC)):
            return kr.as_spec(folder.file(folder.SPEC))
        from keras_resnet.serving import load_model

        return kr.spec_of(load_model(text))
    if "spec" not in can:
        raise UsageError(f"{command} needs a trained model (a .keras file or a run folder "
                         f"of `keras-resnet train`); {text!r} is a preset name or spec file")
    spec = kr.as_spec(text)
    return spec.replace(residual=False) if getattr(args, "plain", False) else spec


def _recipe(args: argparse.Namespace, base: Any) -> Any:
    """``--recipe FILE`` (or the command's base recipe), then the options given."""
    return _recipe_file(args, base).replace(**_recipe_given(args))


def _recipe_file(args: argparse.Namespace, base: Any) -> Any:
    """The recipe of ``--recipe FILE`` (a recipe dict or a run folder's run.json), or ``base``."""
    if args.recipe is None:
        return base
    try:
        with open(args.recipe, encoding="utf-8") as fh:
            stored = json.load(fh)
    except json.JSONDecodeError as e:
        raise UsageError(f"--recipe {args.recipe!r} is not valid JSON ({e})") from None
    if isinstance(stored, dict) and isinstance(stored.get("recipe"), dict):
        stored = stored["recipe"]  # a run folder's run.json
    return kr.Recipe.from_dict(stored)


def _recipe_given(args: argparse.Namespace) -> dict:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(kr.Recipe)
            if getattr(args, f.name, None) is not None}


def _data(args: argparse.Namespace, recipe: Any = None) -> Any:
    """``--data`` as a source (the library loads it) or, with load options, as the
    data it names; an image folder's check keeps its cache in ``--out``."""
    if args.data is None:
        return None
    options = {k: getattr(args, k) for k in ("image_size", "validation_split", "color_mode")
               if getattr(args, k, None) is not None}
    if os.path.isdir(args.data):
        if getattr(args, "skip_bad_files", False):
            options["skip_bad_files"] = True
        if args.command == "train":  # a resumed run does not check the folder again
            options["check_cache"] = os.path.join(args.out, kr.RunFolder.IMAGE_CHECK)
    if not options:
        return args.data
    if recipe is not None:
        options.setdefault("seed", recipe.seed or 0)
        options.setdefault("batch_size", recipe.batch_size)
    return kr.load_data(args.data, **options)


# ---------------------------------------------------------------- the commands
def cmd_summary(args: argparse.Namespace) -> int:
    """``keras-resnet summary``: the per-stage table (and layers, and a drawing)."""
    spec = _model(args, ("spec",), "summary")
    overrides = {k: getattr(args, k) for k in ("input_shape", "classes")
                 if getattr(args, k) is not None}
    model = kr.build(spec, **overrides)
    print(kr.stage_table(model))
    if args.layers:
        model.summary()
    if args.plot:
        kr.plot(model, args.plot, backend=args.plot_backend, overwrite=args.overwrite)
        print(f"wrote {args.plot}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    """``keras-resnet presets``: the preset names (``--table``: built and counted)."""
    if args.table:
        from keras_resnet.report import presets_markdown

        print(presets_markdown())
        return 0
    for name in kr.presets.TABLE:
        print(f"{name:24s} {kr.presets.describe(name)}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """``keras-resnet train``: ``kr.train`` with the options as its arguments."""
    from keras_resnet.training import MultiProcess, weights_digest

    model = _model(args, ("spec", "model"), "train")
    if isinstance(model, str):
        from keras_resnet.serving import load_model

        model = load_model(model)
    recipe = _recipe(args, kr.Recipe())
    mp = {k: getattr(args, k) for k in ("job_addresses", "num_processes", "process_id",
                                        "connect_timeout") if getattr(args, k) is not None}
    if mp and args.distribute not in (None, "auto", "multi_process"):
        raise UsageError("--job-addresses, --num-processes, --process-id and "
                         "--connect-timeout go with --distribute multi_process. "
                         f"Received: --distribute {args.distribute}")
    distribute = MultiProcess(**mp) if mp or args.distribute == "multi_process" \
        else args.distribute
    result = kr.train(model, _data(args, recipe) or "digits", recipe=recipe, out_dir=args.out,
                      overwrite=args.overwrite, tensorboard=args.tensorboard,
                      verbose=args.verbose, distribute=distribute,
                      mixed_precision=args.mixed_precision,
                      steps_per_execution=args.steps_per_execution)
    if result.process_count > 1:
        print(f"process {result.process_index} of {result.process_count}: trained "
              f"{recipe.epochs} epochs; weights sha256 {weights_digest(result.model)}",
              flush=True)
        if result.process_index:
            return 0  # process 0 writes and reports the run folder
    acc = result.history.get("val_accuracy") or result.history.get("accuracy") or [
        float("nan")]
    print(f"saved {os.path.join(args.out, 'model.keras')} (+ spec.json, run.json, "
          f"history.json, history.csv); final {'val_' if 'val_accuracy' in result.history else ''}"
          f"accuracy {acc[-1]:.4f}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """``keras-resnet compare``: ``kr.compare`` with the options as its arguments."""
    from keras_resnet.experiment import MAIN_RECIPE, table

    recipe = _recipe(args, MAIN_RECIPE)
    result = kr.compare(tuple(args.depths), _data(args, recipe) or "digits", recipe=recipe,
                        shortcut=args.shortcut, out_dir=args.out, overwrite=args.overwrite,
                        verbose=args.verbose, jobs=args.jobs, threads=args.threads)
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


def cmd_tune(args: argparse.Namespace) -> int:
    """``keras-resnet tune``: ``kr.tune`` with the options as its arguments."""
    started = time.perf_counter()
    spec = _model(args, ("spec",), "tune")
    given = _recipe_given(args)
    searched = {k: v for k, v in given.items() if k in RECIPE_HPS and isinstance(
        v, (list, dict))}
    recipe = _recipe_file(args, kr.Recipe()).replace(
        **{k: v for k, v in given.items() if k not in searched})
    result = kr.tune(
        spec, _data(args, recipe) or "digits", recipe=recipe,
        algorithm=args.algorithm, max_trials=args.max_trials, objective=args.objective,
        out_dir=args.out, overwrite=args.overwrite, verbose=args.verbose, jobs=args.jobs,
        threads=args.threads, isolate=args.isolate, hyperband_factor=args.hyperband_factor,
        depth=args.depth, l2=args.l2, width=args.width, shortcut=args.shortcut,
        block_type=args.block_type, drop_path_rate=args.drop_path_rate,
        allow_zero_l2=args.allow_zero_l2, **searched)
    print(f"\n{result.table(args.top)}\n\nbest spec: {result.paths['best_spec']}; its "
          f"recipe: {result.paths['best_recipe']}; train it again with\n  keras-resnet "
          f"train {result.paths['best_spec']} --recipe {result.paths['best_recipe']} "
          f"--out runs/best\nsearch time: {time.perf_counter() - started:.0f}s")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``keras-resnet export``: ``kr.export`` with the options as its arguments."""
    model = _model(args, ("model",), "export")
    if args.out is None:
        raise UsageError("export needs --out PATH (the target file or folder)")
    data = None if args.data is None else _data(args)
    if isinstance(data, str):
        data = kr.load_data(data)
    result = kr.export(model, args.out, args.format, quantize=args.quantize,
                       io_dtype=args.io_dtype,
                       representative_data=data if args.quantize == "int8" else None,
                       validation_data=data if args.verify else None,
                       max_accuracy_drop=args.max_accuracy_drop,
                       latency_runs=args.latency_runs, overwrite=args.overwrite,
                       verify=args.verify, include_preprocessing=args.include_preprocessing)
    check = ("not verified" if result.max_abs_diff is None else
             f"verified in a fresh process, max abs difference {result.max_abs_diff:.2g}")
    kind = f"{result.format}, {result.quantize}" if result.quantize else result.format
    print(f"exported {model} -> {result.path} ({kind}; {check}; {result.seconds:.1f}s)")
    facts = [f"size {result.size_bytes:,} B"]
    if result.latency_ms is not None:
        facts.append(
            f"latency (batch 1, median) {result.latency_ms_1thread:.3f} ms at 1 thread "
            f"({result.latency_ratio_1thread:.2f}x the Keras model's time), "
            f"{result.latency_ms:.3f} ms at {result.threads} threads "
            f"({result.latency_ratio:.2f}x Keras); {result.cpu}, {result.runtime}")
    if result.accuracy:
        a = result.accuracy
        facts.append(f"validation top-1 {a['export_top1']:.4f} (Keras {a['keras_top1']:.4f}, "
                     f"agreement {a['agreement']:.4f}, {a['examples']} examples)")
    print("; ".join(facts) + f"; card {result.card}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """``keras-resnet predict``: the top classes of each image."""
    from keras_resnet.serving import predict_files

    model = _model(args, ("model",), "predict")
    for path, top in predict_files(model, args.images, top=args.top, labels=args.labels):
        print(f"{path}: " + ", ".join(f"{name} {p:.3f}" for name, p in top))
    return 0


# ---------------------------------------------------------------- running a command
def _with_config(parser: argparse.ArgumentParser, argv: list) -> argparse.Namespace:
    """Parses ``argv``; options of a ``--config`` file fill in what the line leaves out."""
    args = parser.parse_args(argv)
    path = getattr(args, "config", None)
    if not path or not getattr(args, "func", None):
        return args
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if path.lower().endswith((".yaml", ".yml")):
        from keras_resnet.spec import _yaml

        values = _yaml().safe_load(text)
    else:
        values = json.loads(text)
    if not isinstance(values, dict):
        raise UsageError(f"--config {path!r} must hold a mapping of options")
    given = set(vars(args))  # every option of the command has its dest there
    unknown = sorted(k for k in values if k.replace("-", "_") not in given)
    if unknown:
        raise UsageError(f"--config {path!r}: {', '.join(unknown)} are not options of "
                         f"{args.command}")
    command = parser.commands[args.command]  # type: ignore[attr-defined]
    command.set_defaults(**{k.replace("-", "_"): v for k, v in values.items()})
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``keras-resnet`` command.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        The exit code (see the module's docstring).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = make_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    from keras_resnet.training import exit_on_error

    try:
        args = _with_config(parser, argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        with exit_on_error():  # a multi-process job's peer stops at once, with one line
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("keras-resnet: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - one clear line, traceback with --debug
        if debug:
            raise
        msg = " ".join(part.strip() for part in str(e).splitlines() if part.strip())
        print(f"keras-resnet: error: {msg or type(e).__name__}", file=sys.stderr)
        return 2 if isinstance(e, INPUT_ERRORS) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
