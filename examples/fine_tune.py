"""Fine-tuning as Keras' transfer-learning guide does it, on the built-in digits.

    python examples/fine_tune.py [--pretrain-epochs 10] [--epochs 20] [--share 0.2]

A small ResNet learns digits 0-4. Its body then gets a new head for digits 5-9,
its first stages are frozen (their BatchNormalization layers then run in
inference mode), and it is fine-tuned on a share of the 5-9 training data.
The same network trained from scratch on that share is the comparison. (On
these 8x8 digits 20% of the data is already enough to learn 5-9 well from
scratch: over seeds 0-2 the two land within a few points of each other.)
"""

import argparse

import numpy as np

import keras_resnet as kr


def subset(x, y, share, seed):
    """A stratified share of (x, y): the same fraction of every class."""
    rng = np.random.RandomState(seed)
    keep = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:max(1, round(
        share * np.sum(y == c)))] for c in np.unique(y)])
    return x[keep], y[keep]


def digits(data, low, share=1.0, seed=0):
    """Digits low..low+4 of the training and validation data, labelled 0..4."""
    (x, y), (xv, yv) = data.train, data.validation
    mine, mine_v = (y >= low) & (y < low + 5), (yv >= low) & (yv < low + 5)
    xt, yt = subset(x[mine], y[mine] - low, share, seed)
    return kr.Data.from_arrays(xt, yt, validation_data=(xv[mine_v], yv[mine_v] - low))


def accuracy(result):
    return result.history["val_accuracy"][-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="cifar_resnet20", help="preset or spec file")
    parser.add_argument("--pretrain-epochs", type=int, default=10, help="epochs on 0-4")
    parser.add_argument("--epochs", type=int, default=20,
                        help="epochs on 5-9, for fine-tuning and from scratch alike")
    parser.add_argument("--share", type=float, default=0.2,
                        help="share of the 5-9 training data used")
    parser.add_argument("--freeze", default="stem", help="freeze the stages up to this one")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = kr.load_data("digits", seed=args.seed)
    common = dict(batch_size=32, optimizer="adam", schedule="cosine", seed=args.seed,
                  verbose=0)

    # 1. A network that knows digits 0-4.
    first = kr.train(args.spec, digits(data, 0), epochs=args.pretrain_epochs,
                     learning_rate=1e-3, **common)
    print(f"trained on 0-4: validation accuracy {accuracy(first):.3f}")

    # 2. The same body with a new head for 5-9; the first stages frozen.
    model = kr.replace_head(first.model, classes=5)
    kr.freeze(model, up_to=args.freeze)
    stages = kr.stage_names(model)
    frozen = stages[: stages.index(args.freeze) + 1]
    few = digits(data, 5, args.share, args.seed)
    print(f"fine-tuning on {len(few.train[0])} images of 5-9 ({args.share:.0%}), "
          f"frozen: {', '.join(frozen)}; preprocessing {kr.spec_of(model).preprocessing!r}")
    tuned = kr.train(model, few, epochs=args.epochs, learning_rate=1e-3, **common)

    # 3. The same network from scratch on the same images.
    scratch = kr.train(args.spec, few, epochs=args.epochs, learning_rate=1e-3, **common)
    print(f"validation accuracy on 5-9: fine-tuned {accuracy(tuned):.3f}, "
          f"from scratch {accuracy(scratch):.3f}")
    return accuracy(tuned), accuracy(scratch)


if __name__ == "__main__":
    main()
