"""Register a new block type (a squeeze-and-excitation basic block) and use it.

    python examples/custom_block.py [--epochs 5]

A block function builds only its residual branch from the helpers of `ctx`
(which apply the spec's L2, bias rule, padding and normalisation); the builder
adds the shortcut -- identity, A, B, C or D -- exactly as for the built-in blocks.
The block takes an option of its own, the squeeze ratio: registered with its
default, set per stage in the spec (`BlockSpec(..., options={"se_ratio": 0.5})`),
saved with it, and read by the block function as `ctx.options["se_ratio"]`.
"""

import argparse

import keras

import keras_resnet as kr


@kr.register_block("se_basic", options={"pool": None, "dropout": 0.0, "se_ratio": 0.25},
                   overwrite=True)
def se_basic(x, ctx):
    """Two 3x3 convs, then channel attention (Hu et al. 2018)."""
    x = ctx.conv_norm_act(x, ctx.filters, 3, index=1, downsample=True)
    x = ctx.dropout(x, name=ctx.name("drop"))
    x = ctx.conv_norm_act(x, ctx.out_channels, 3, index=2, act=False, last=True)
    squeeze = max(1, int(ctx.out_channels * ctx.options["se_ratio"]))
    s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=ctx.name("se_pool"))(x)
    s = keras.layers.Conv2D(squeeze, 1, activation="relu", name=ctx.name("se_reduce"))(s)
    s = keras.layers.Conv2D(ctx.out_channels, 1, activation="sigmoid",
                            name=ctx.name("se_expand"))(s)
    return keras.layers.Multiply(name=ctx.name("se_scale"))([x, s])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)

    spec = kr.ModelSpec(
        input_shape=(8, 8, 1),
        stem=kr.StemSpec(16, kernel_size=3, strides=1, pool=None),
        blocks=[kr.BlockSpec("se_basic", 16, repeat=2),  # se_ratio 0.25 (the default)
                kr.BlockSpec("se_basic", 32, repeat=2, strides=2, options={"se_ratio": 0.5})],
        shortcut="B",
        classes=10,
    )
    model = kr.build_resnet(spec)
    print(kr.stage_table(model))  # stage2_block1 gets a projection, the others the identity
    print("blocks registered:", ", ".join(kr.list_blocks()))
    squeeze = [model.get_layer(f"stage{i}_block1_se_reduce").filters for i in (1, 2)]
    print(f"squeeze channels per stage: {squeeze[0]}, {squeeze[1]}")  # 16*0.25, 32*0.5
    assert kr.ModelSpec.from_json(spec.to_json()) == spec  # the option is saved too
    result = kr.train(spec, "digits", epochs=args.epochs, batch_size=64,
                      learning_rate=0.05, verbose=2)
    accuracy = result.history["val_accuracy"][-1]
    print(f"validation accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
