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
    residual = kr.presets.is_residual(args.spec) if args.spec in kr.presets.TABLE else True
    spec = kr.as_spec(args.spec)
    if args.plain:
        residual = False
    build = kr.build_resnet if residual else kr.build_plain
    return build(spec, **kwargs)


def cmd_summary(args: argparse.Namespace) -> int:
    from keras_resnet.report import stage_table

    model = _build_from_args(args)
    print(stage_table(model))
    if args.layers:
        model.summary()
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
    p.set_defaults(func=cmd_summary)

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
        msg = str(e) or type(e).__name__
        print(f"keras-resnet: error: {msg}", file=sys.stderr)
        return 2 if usage else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
