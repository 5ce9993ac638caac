"""The block registry and the built-in blocks."""

import keras
import numpy as np
import pytest
from conftest import trainable

import keras_resnet as kr
from keras_resnet.blocks import REGISTRY, unregister_block


def net(block, **spec_changes):
    spec = kr.ModelSpec(input_shape=(16, 16, 3), stem=kr.StemSpec(16, 3, 1, pool=None),
                        blocks=[block], classes=4)
    return spec.replace(**spec_changes) if spec_changes else spec


def test_builtins_registered():
    assert kr.list_blocks() == ["basic", "bottleneck", "dense", "preact_basic",
                                "preact_bottleneck"]
    assert REGISTRY["bottleneck"].expansion == 4 and REGISTRY["preact_basic"].preact


def test_bottleneck_shapes_and_stride_position():
    m = kr.build_resnet(net(kr.BlockSpec("bottleneck", 8, strides=2)))
    assert m.get_layer("stage1_block1_conv1").kernel.shape == (1, 1, 16, 8)
    assert m.get_layer("stage1_block1_conv2").strides == (2, 2)  # v1.5: stride on the 3x3
    assert m.get_layer("stage1_block1_conv3").kernel.shape == (1, 1, 8, 32)  # expansion 4
    assert m.get_layer("stage1_block1_add").output.shape == (None, 8, 8, 32)
    v1 = kr.build_resnet(net(kr.BlockSpec("bottleneck", 8, strides=2, stride_1x1=True)))
    assert v1.get_layer("stage1_block1_conv1").strides == (2, 2)
    assert v1.get_layer("stage1_block1_conv2").strides == (1, 1)
    r2 = kr.build_resnet(net(kr.BlockSpec("bottleneck", 8, bottleneck_ratio=2)))
    assert r2.get_layer("stage1_block1_conv3").kernel.shape == (1, 1, 8, 16)


def test_basic_block_parameters():
    # two 3x3 convs without bias + 2 BN (gamma, beta)
    m = kr.build_resnet(net(kr.BlockSpec("basic", 16)))
    assert trainable(m) - trainable(kr.build_resnet(net(kr.BlockSpec("basic", 16)),
                                                    include_top=False)) == 16 * 4 + 4
    block = sum(int(np.prod(w.shape)) for layer in m.layers
                if layer.name.startswith("stage1_") for w in layer.trainable_weights)
    assert block == 2 * (3 * 3 * 16 * 16) + 2 * (2 * 16)


def test_preact_blocks_get_post_norm_and_no_out_activation():
    m = kr.build_resnet(net(kr.BlockSpec("preact_bottleneck", 8, repeat=2)))
    names = [layer.name for layer in m.layers]
    assert "stage1_block1_preact_bn" in names and "post_bn" in names
    assert "stage1_block1_out" not in names
    assert "stage1_block1_bn1" not in names  # folded into preact_bn
    # the projection of a pre-activation block has no BN and reads the pre-activated input
    assert "stage1_block1_shortcut_bn" not in names
    sc = m.get_layer("stage1_block1_shortcut_conv")
    assert sc.input is m.get_layer("stage1_block1_preact_act").output
    # identity shortcut of block 2 reads the raw sum of block 1
    add = m.get_layer("stage1_block2_add")
    assert add.input[0] is m.get_layer("stage1_block1_add").output


def test_dropout_in_branch():
    m = kr.build_resnet(net(kr.BlockSpec("basic", 16, dropout=0.3)))
    assert m.get_layer("stage1_block1_drop").rate == pytest.approx(0.3)


def test_register_custom_block_squeeze_excitation():
    @kr.register_block("se_basic_test", options=("pool",))
    def se_basic(x, ctx):
        x = ctx.conv_norm_act(x, ctx.filters, 3, index=1, downsample=True)
        x = ctx.conv_norm_act(x, ctx.out_channels, 3, index=2, act=False, last=True)
        s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=ctx.name("se_pool"))(x)
        s = keras.layers.Conv2D(max(1, ctx.out_channels // 4), 1, activation="relu",
                                name=ctx.name("se_reduce"))(s)
        s = keras.layers.Conv2D(ctx.out_channels, 1, activation="sigmoid",
                                name=ctx.name("se_expand"))(s)
        return keras.layers.Multiply(name=ctx.name("se_scale"))([x, s])

    try:
        spec = kr.ModelSpec(input_shape=(16, 16, 3), stem=kr.StemSpec(8, 3, 1, pool=None),
                            blocks=[kr.BlockSpec("se_basic_test", 8, repeat=2),
                                    kr.BlockSpec("se_basic_test", 16, strides=2)],
                            classes=3)
        m = kr.build_resnet(spec)
        assert m.get_layer("stage2_block1_se_expand").kernel.shape == (1, 1, 4, 16)
        assert "stage2_block1_shortcut_conv" in [layer.name for layer in m.layers]
        with pytest.raises(ValueError, match="already registered"):
            kr.register_block("se_basic_test", se_basic)
        with pytest.raises(ValueError, match=r"blocks\[0\]\.dropout does not apply to "
                                             r"'se_basic_test' blocks \(they take: pool\)"):
            kr.ModelSpec(blocks=[kr.BlockSpec("se_basic_test", 8, dropout=0.1)])
    finally:
        unregister_block("se_basic_test")


def test_custom_block_with_wrong_shape_is_explained():
    kr.register_block("bad_test", lambda x, ctx: keras.layers.Conv2D(3, 1)(x))
    try:
        with pytest.raises(ValueError, match=r"blocks\[0\] \('bad_test'\) built a branch "
                                             r"of shape \(16, 16, 3\), but the shape walk "
                                             r"expects \(16, 16, 8\)"):
            kr.build_resnet(net(kr.BlockSpec("bad_test", 8)))
    finally:
        unregister_block("bad_test")


def test_register_validation():
    with pytest.raises(ValueError, match="reserved"):
        kr.register_block("pool", lambda x, ctx: x)
    with pytest.raises(ValueError, match=r"^options must be one of"):
        kr.register_block("x_test", lambda x, ctx: x, options=("groups",))
    assert "x_test" not in REGISTRY


@pytest.fixture
def se_block():
    """A squeeze-and-excitation block with an option of its own (se_ratio)."""
    @kr.register_block("se_opt_test", options={"pool": None, "se_ratio": 0.25,
                                               "gate": "sigmoid"})
    def se(x, ctx):
        x = ctx.conv_norm_act(x, ctx.filters, 3, index=1, downsample=True)
        x = ctx.conv_norm_act(x, ctx.out_channels, 3, index=2, act=False, last=True)
        squeeze = max(1, int(ctx.out_channels * ctx.options["se_ratio"]))
        s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=ctx.name("se_pool"))(x)
        s = keras.layers.Conv2D(squeeze, 1, activation="relu", name=ctx.name("se_reduce"))(s)
        s = keras.layers.Conv2D(ctx.out_channels, 1, activation=ctx.options["gate"],
                                name=ctx.name("se_expand"))(s)
        return keras.layers.Multiply(name=ctx.name("se_scale"))([x, s])

    yield "se_opt_test"
    unregister_block("se_opt_test")


def test_registered_block_takes_its_own_options(se_block):
    assert REGISTRY[se_block].own_options == {"se_ratio": 0.25, "gate": "sigmoid"}
    assert REGISTRY[se_block].options == frozenset({"pool"})
    spec = kr.ModelSpec(input_shape=(16, 16, 3), stem=kr.StemSpec(8, 3, 1, pool=None),
                        blocks=[kr.BlockSpec(se_block, 16),
                                kr.BlockSpec(se_block, 16, options={"se_ratio": 0.5}),
                                kr.BlockSpec(se_block, 32, strides=2, pool="max",
                                             options={"se_ratio": 1, "gate": "hard_sigmoid"})],
                        classes=3)
    # the options reach the branch function through ctx.options (defaults filled in)
    m = kr.build_resnet(spec)
    assert m.get_layer("stage1_block1_se_reduce").kernel.shape == (1, 1, 16, 4)
    assert m.get_layer("stage2_block1_se_reduce").kernel.shape == (1, 1, 16, 8)
    assert m.get_layer("stage3_block1_se_reduce").kernel.shape == (1, 1, 32, 32)
    assert m.get_layer("stage3_block1_se_expand").activation.__name__ == "hard_sigmoid"
    # round trip through dict and JSON; only the given options are written
    d = spec.to_dict(compact=True)
    assert d["blocks"][1]["options"] == {"se_ratio": 0.5} and "options" not in d["blocks"][0]
    assert kr.ModelSpec.from_json(spec.to_json()) == spec
    assert kr.ModelSpec.from_dict(d) == spec
    assert hash(spec) == hash(kr.ModelSpec.from_json(spec.to_json()))
    assert spec.blocks[2].options == {"se_ratio": 1.0, "gate": "hard_sigmoid"}
    with pytest.raises(TypeError, match="read-only"):
        spec.blocks[1].options["se_ratio"] = 2.0


def test_block_options_are_validated(se_block):
    with pytest.raises(ValueError, match=r"^blocks\[0\]\.options\.se_ration is not an option "
                                         r"of 'se_opt_test' blocks \(did you mean 'se_ratio'\?\) "
                                         r"\(they take: gate, se_ratio\)\. "
                                         r"Received: se_ration=0\.5$"):
        kr.ModelSpec(blocks=[kr.BlockSpec(se_block, 8, options={"se_ration": 0.5})])
    with pytest.raises(TypeError, match=r"^blocks\[0\]\.options\.se_ratio must be a number "
                                        r"\(got str\)"):
        kr.ModelSpec(blocks=[kr.BlockSpec(se_block, 8, options={"se_ratio": "half"})])
    with pytest.raises(ValueError, match=r"^blocks\[0\]\.options\.width is not an option of "
                                         r"'basic' blocks \(they take: no options of their "
                                         r"own\)"):
        kr.ModelSpec.from_dict({"blocks": [{"type": "basic", "filters": 8,
                                            "options": {"width": 2}}]})
    with pytest.raises(TypeError, match=r"^options\['ratio'\] must default to None, a bool"):
        kr.register_block("x_test", lambda x, ctx: x, options={"ratio": [1, 2]})
    assert "x_test" not in REGISTRY
