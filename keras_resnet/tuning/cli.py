"""The ``keras-resnet tune`` command (its parser imports neither Keras nor KerasTuner)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from keras_resnet.cli import add_jobs_args

ALGORITHMS = ("hyperband", "random", "bayesian", "grid")


def _setting(kind: type) -> Any:
    """An argparse type: ``"3"`` fixed, ``"1,3,5"`` choices, ``"1e-5:1e-2"`` a log range
    (``"lin:1:4"`` linear): the values ``kr.tune`` takes for a hyperparameter."""

    def parse(text: str) -> Any:
        sampling, text = ("linear", text[4:]) if text.startswith("lin:") else ("log", text)
        try:
            if ":" in text:
                lo, hi = text.split(":", 1)
                return {"min": kind(lo), "max": kind(hi), "sampling": sampling}
            parts = [kind(p) for p in text.split(",") if p.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {kind.__name__} list or range: "
                                             f"{text!r}") from None
        return parts[0] if len(parts) == 1 else parts

    return parse


def cmd_tune(args: argparse.Namespace) -> int:
    """Handler of ``keras-resnet tune``."""
    from keras_resnet.tuning.search import describe_best, results_table, tune

    started = time.perf_counter()
    names = ("algorithm", "max_trials", "epochs", "batch_size", "schedule", "directory",
             "project_name", "overwrite", "seed", "allow_zero_l2", "verbose", "depth",
             "l2", "jobs", "threads")
    best, search = tune(args.base, args.data, learning_rate=args.lr,
                        residual=False if args.plain else None,
                        **{name: getattr(args, name) for name in names})
    print(f"\n{results_table(search, args.top)}\n\n{describe_best(search, best)}\n"
          f"search time: {time.perf_counter() - started:.0f}s")
    return 0


def add_tune_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Registers the ``tune`` subcommand of ``keras-resnet``.

    Args:
        subparsers: What ``ArgumentParser.add_subparsers()`` returned.

    Returns:
        The ``tune`` parser (its handler is :func:`cmd_tune`).

    Example:

    ```sh
    keras-resnet tune --base cifar_resnet20 --data digits --max-trials 12 --epochs 8 \\
        --algorithm random --directory tuner
    ```
    """
    p = subparsers.add_parser(
        "tune", help="search depth and L2 (KerasTuner); resumable, trials side by side",
        description="Search depth and L2 strength for a base spec; every trial trains "
        "with kr.train's recipe. Prints a line per trial and the best trials; writes "
        "DIR/PROJECT/best_spec.json and best_recipe.json. Run it again to resume "
        "(also after a kill); run it in several processes on one --directory to share "
        "the trials.")
    p.add_argument("--base", required=True,
                   help="preset name or spec file (.json, .yaml) to start from")
    p.add_argument("--data", default="digits",
                   help="'digits' (built in) or a folder of images, one sub-folder "
                   "per class (default: digits)")
    p.add_argument("--algorithm", choices=ALGORITHMS, default="hyperband")
    p.add_argument("--max-trials", type=int, default=10,
                   help="trials in all, resumed ones included (default: 10)")
    p.add_argument("--epochs", type=int, default=10,
                   help="epochs per trial; Hyperband: the most (default: 10)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", "--learning-rate", metavar="LR|LR1,LR2|MIN:MAX",
                   type=_setting(float),
                   help="learning rate: a value (default 0.1), choices or a log range")
    p.add_argument("--schedule", choices=("step", "cosine", "constant"), default="step")
    p.add_argument("--depth", metavar="D|D1,D2|MIN:MAX", type=_setting(int),
                   help="blocks in the deepest stage: a value, choices or a range "
                   "(default: about 1/3x to 7/3x the base's)")
    p.add_argument("--l2", metavar="L|L1,L2|MIN:MAX", type=_setting(float),
                   help="L2 strength: a value, choices or a log range (default "
                   "1e-6:1e-2)")
    p.add_argument("--allow-zero-l2", action="store_true",
                   help="also try no weight decay (a use_l2 switch)")
    p.add_argument("--plain", action="store_true", help="tune the plain twin")
    p.add_argument("--directory", default="tuner", help="tuner folder (default: tuner)")
    p.add_argument("--project-name", help="project folder (default: BASE_ALGORITHM)")
    p.add_argument("--overwrite", action="store_true",
                   help="start the project again instead of resuming it")
    add_jobs_args(p, "trials")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top", type=int, default=10, help="rows of the final table")
    p.add_argument("--verbose", type=int, choices=(0, 1), default=1,
                   help="0 quiet, 1 a line per trial")
    p.set_defaults(func=cmd_tune)
    return p
