"""Search depth and L2 strength with KerasTuner, then rebuild and retrain the winner.

    python examples/tune_depth_and_l2.py [--trials 6] [--epochs 5] [--out DIR]

`depth` is the number of blocks per stage of the CIFAR net (the paper's n, so
6n+2 layers); `l2` is searched log-uniformly, and with allow_zero_l2 "no weight
decay" is tried too. The best spec is written as JSON next to the tuner state:
kr.build_resnet(path) rebuilds it exactly.
"""

import argparse
import os

import keras

import keras_resnet as kr


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", default="runs/examples/tune")
    args = parser.parse_args(argv)

    data = kr.load_data("digits")
    best, tuner = kr.tune("cifar_resnet20", data, algorithm="random",
                          max_trials=args.trials, epochs=args.epochs,
                          depth=[1, 2, 3, 5], allow_zero_l2=True,
                          directory=args.out, project_name="depth_l2", overwrite=True)
    print(kr.tuning.results_table(tuner))
    depth = kr.tuning.base_depth(best)
    print(f"best: depth n={depth} ({6 * depth + 2} layers), l2={best.l2:.3g}")

    # Rebuild the winner from its JSON file and train it as the trials did
    # (seed 0, SGD 0.1 with momentum 0.9, batch 128): the same score comes back.
    path = os.path.join(args.out, "depth_l2", "best_spec.json")
    keras.utils.set_random_seed(0)
    model = kr.compile_model(kr.build_resnet(path))
    print(f"rebuilt from {path}: {model.count_params():,} parameters")
    history = model.fit(*data.train, validation_data=data.validation, epochs=args.epochs,
                        batch_size=128, verbose=0)
    print(f"retrained: best validation accuracy {max(history.history['val_accuracy']):.4f}")
    return best


if __name__ == "__main__":
    main()
