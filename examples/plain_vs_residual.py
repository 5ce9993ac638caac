"""The degradation experiment at its smallest: plain vs residual at two depths.

    python examples/plain_vs_residual.py [--depths 8 44] [--epochs 10] [--out DIR]

Trains the paper's CIFAR nets (depth 6n+2, option-A shortcuts, so each plain net
and its residual twin have exactly the same parameters) on the built-in digits
with one recipe and one seed, then prints the final training errors and writes
the figure (training error per epoch; plain dashed, residual solid). The full
experiment is `keras-resnet compare` (depths 20, 32, 44, 56).
"""

import argparse
import os

import keras_resnet as kr
from keras_resnet.experiment import table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[8, 44])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default="runs/examples/plain_vs_residual")
    args = parser.parse_args(argv)

    result = kr.compare(tuple(args.depths), "digits", epochs=args.epochs, out_dir=args.out,
                        overwrite=True, verbose=0)
    print(table(result.models))
    shallow, deep = result.effect["shallowest"], result.effect["deepest"]
    m = result.models
    print(f"plain-{deep} trains {'worse' if result.effect['plain_degrades'] else 'no worse'} "
          f"than plain-{shallow}: {100 * m[f'plain{deep}']['train_error']:.1f}% vs "
          f"{100 * m[f'plain{shallow}']['train_error']:.1f}% training error")
    print(f"ResNet-{deep}, same layers plus identity shortcuts: "
          f"{100 * m[f'resnet{deep}']['train_error']:.1f}%")
    print("figure:", os.path.join(args.out, "figure.png"))
    return result


if __name__ == "__main__":
    main()
