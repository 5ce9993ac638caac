"""The lecture's first example: residual blocks of dense layers, a[l+2] = g(z[l+2] + a[l]).

    python examples/residual_mlp.py [--epochs 8]

Where the width goes from 128 to 256 the shortcut cannot be the identity, so the
builder inserts a learned matrix Ws (shortcut "B": 128x256) -- or, with shortcut
"A", the fixed zero-padding matrix the lecture also mentions. With
zero_init_residual=True each block starts as the identity: for a[l] >= 0,
a[l+2] = g(0 + a[l]) = a[l].
"""

import argparse

import keras
import numpy as np

import keras_resnet as kr


def mlp(shortcut="B", zero_init=False):
    return kr.ModelSpec(
        input_shape=(64,),  # the 8x8 digits, flattened
        stem=kr.StemSpec(filters=128, type="dense"),
        blocks=[kr.BlockSpec("dense", 128, repeat=2), kr.BlockSpec("dense", 256, repeat=2)],
        shortcut=shortcut,
        norm=None,  # plain Dense layers with biases, as in the lecture
        zero_init_residual=zero_init,
        classes=10,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)

    model = kr.build_resnet(mlp("B"))
    ws = model.get_layer("stage2_block1_shortcut_dense")
    print(f"learned Ws where 128 -> 256: kernel {tuple(ws.kernel.shape)}")
    fixed = kr.build_resnet(mlp("A"))
    extra = model.count_params() - fixed.count_params()
    print(f"with the fixed zero-padding Ws (shortcut 'A'): {extra:,} fewer parameters")

    # Identity at initialisation: the block's output equals its input for a >= 0.
    features = kr.build_resnet(mlp("B", zero_init=True), include_top=False)
    a = np.abs(np.random.RandomState(0).randn(4, 64)).astype("float32")
    stem_out = keras.Model(features.input, features.get_layer("stem_act").output)(a)
    block_out = keras.Model(features.input,
                            features.get_layer("stage1_block2_out").output)(a)
    print("zero-initialised blocks are the identity:",
          np.allclose(keras.ops.convert_to_numpy(stem_out),
                      keras.ops.convert_to_numpy(block_out)))

    result = kr.train(mlp("B"), "digits", epochs=args.epochs, batch_size=64,
                      learning_rate=0.01, schedule="constant", verbose=2)
    accuracy = result.history["val_accuracy"][-1]
    print(f"validation accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
