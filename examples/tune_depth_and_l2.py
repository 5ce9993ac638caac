"""Search depth and L2 strength, then train the winner again with kr.train.

    python examples/tune_depth_and_l2.py [--trials 6] [--epochs 5] [--out DIR]

`depth` is the number of blocks per stage of the CIFAR net (the paper's n, so
6n+2 layers); `l2` is searched log-uniformly, and with allow_zero_l2 "no weight
decay" is tried too. Every trial trains with kr.train's recipe (step schedule,
batch order, seed), so the files the search writes, best_spec.json and
best_recipe.json, give the best trial's score again in kr.train.
"""

import argparse
import json
import os

# Trials run side by side in one-thread worker processes; kr.train below runs
# here, so give this process one thread too (before TensorFlow starts): the
# thread count changes float results, and the same count gives the same score.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

import keras_resnet as kr  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", default="runs/examples/tune")
    args = parser.parse_args(argv)

    data = kr.load_data("digits")
    result = kr.tune("cifar_resnet20", data, algorithm="random", max_trials=args.trials,
                     epochs=args.epochs, depth=[1, 2, 3, 5], allow_zero_l2=True, threads=1,
                     out_dir=os.path.join(args.out, "depth_l2"), overwrite=True)
    print(result.table())
    best = result.best_spec
    depth = kr.presets.depth_of(best)
    print(f"best: depth n={depth} ({6 * depth + 2} layers), l2={best.l2:.3g}")

    # The winner's spec and recipe, as the search wrote them: kr.train gives
    # the best trial's score again.
    with open(result.paths["best_recipe"]) as fh:
        recipe = kr.Recipe.from_dict(json.load(fh))
    again = kr.train(result.paths["best_spec"], data, recipe=recipe, verbose=0)
    print(f"best trial {result.best_score:.4f}; retrained: best validation "
          f"accuracy {max(again.history['val_accuracy']):.4f}")
    return best


if __name__ == "__main__":
    main()
