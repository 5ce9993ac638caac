"""The shortcut rule and the layers it puts where."""

import keras
import numpy as np
import pytest
from conftest import cifar_spec, trainable

import keras_resnet as kr
from keras_resnet.plan import resolve_shortcut

RULE = [
    # option, in, out, strides, rank, expected
    ("A", 16, 16, 1, 3, "identity"),
    ("B", 16, 16, 1, 3, "identity"),
    ("D", 16, 16, 1, 3, "identity"),
    ("C", 16, 16, 1, 3, "C"),
    ("A", 16, 32, 2, 3, "A"),
    ("A", 16, 16, 2, 3, "A"),  # stride only: parameter-free subsampling
    ("B", 16, 32, 1, 3, "B"),  # width only
    ("B", 16, 16, 2, 3, "B"),  # stride only
    ("D", 16, 32, 2, 3, "D"),
    ("D", 128, 256, 1, 1, "B"),  # nothing to pool on vectors
    ("A", 128, 256, 1, 1, "A"),
    ("C", 64, 64, 1, 1, "C"),
]


@pytest.mark.parametrize("option,cin,cout,strides,rank,expected", RULE)
def test_rule(option, cin, cout, strides, rank, expected):
    got = resolve_shortcut(option, in_channels=cin, out_channels=cout, strides=strides,
                           input_rank=rank)
    assert got == expected


def test_the_decision_lives_in_the_plan():
    import keras_resnet.shortcuts

    # one function, exported where 0.1.0 had it
    assert kr.resolve_shortcut is resolve_shortcut is keras_resnet.shortcuts.resolve_shortcut
    assert not hasattr(keras_resnet.shortcuts, "KINDS")


def test_option_a_cannot_shrink():
    with pytest.raises(ValueError, match=r"^blocks\[4\]\.shortcut 'A' \(zero-padding\) "
                       r"cannot reduce the channels from 64 to 32"):
        resolve_shortcut("A", in_channels=64, out_channels=32, strides=1, where="blocks[4]")


def layer_types(model):
    return {layer.name: type(layer).__name__ for layer in model.layers}


@pytest.mark.parametrize("option", ["A", "B", "C", "D"])
def test_projection_here_and_not_there(option):
    model = kr.build_resnet(cifar_spec(shortcut=option))
    types = layer_types(model)
    changing = {"stage2_block1", "stage3_block1"}
    for stage in (1, 2, 3):
        for block in (1, 2, 3):
            name = f"stage{stage}_block{block}"
            has_conv = f"{name}_shortcut_conv" in types
            has_pad = f"{name}_shortcut_pad" in types
            has_pool = f"{name}_shortcut_pool" in types
            expect_projection = option == "C" or (option in "BD" and name in changing)
            assert has_conv == expect_projection, name
            assert (f"{name}_shortcut_bn" in types) == expect_projection, name
            assert has_pad == (option == "A" and name in changing), name
            assert has_pool == (option == "D" and name in changing), name
            assert f"{name}_add" in types
    if option == "D":
        assert types["stage2_block1_shortcut_pool"] == "AveragePooling2D"
        assert model.get_layer("stage2_block1_shortcut_conv").strides == (1, 1)
    if option == "B":
        assert model.get_layer("stage2_block1_shortcut_conv").strides == (2, 2)
        assert model.get_layer("stage2_block1_shortcut_conv").kernel.shape == (1, 1, 16, 32)


def test_plan_reports_the_kinds():
    plan = kr.make_plan(cifar_spec(shortcut="B"))
    assert plan.shortcuts() == {
        "stage1_block1": "identity", "stage1_block2": "identity", "stage1_block3": "identity",
        "stage2_block1": "B", "stage2_block2": "identity", "stage2_block3": "identity",
        "stage3_block1": "B", "stage3_block2": "identity", "stage3_block3": "identity",
    }
    assert [s.out_shape for s in plan.steps if s.repeat == 0] == [
        (32, 32, 16), (16, 16, 32), (8, 8, 64)]
    assert plan.total_stride == 4


def test_per_block_override():
    spec = cifar_spec(shortcut="A")
    blocks = list(spec.blocks)
    blocks[2] = kr.BlockSpec("basic", 64, repeat=3, strides=2, shortcut="B")
    model = kr.build_resnet(spec.replace(blocks=blocks))
    names = {layer.name for layer in model.layers}
    assert "stage2_block1_shortcut_pad" in names
    assert "stage3_block1_shortcut_conv" in names
    assert "stage3_block1_shortcut_pad" not in names


def test_option_a_values_are_subsample_and_zero_pad():
    layer = kr.ZeroPadShortcut(strides=2, extra_channels=3)
    x = np.random.RandomState(0).rand(2, 5, 5, 4).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.shape == (2, 3, 3, 7)
    np.testing.assert_array_equal(y[..., :4], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., 4:], 0)
    assert layer.compute_output_shape((None, 5, 5, 4)) == (None, 3, 3, 7)
    v = keras.ops.convert_to_numpy(kr.ZeroPadShortcut(extra_channels=2)(np.ones((1, 3))))
    np.testing.assert_array_equal(v, [[1, 1, 1, 0, 0]])


def test_option_a_output_matches_branch_on_odd_sizes():
    # ceil(n/2) on both paths, e.g. 33 -> 17, in both padding modes.
    for padding in ("same", "symmetric"):
        model = kr.build_resnet(cifar_spec(input_shape=(33, 33, 3), padding=padding))
        assert model.get_layer("stage3_block1_add").output.shape == (None, 9, 9, 64)


@pytest.mark.parametrize("option", ["A", "B", "D"])
def test_pooling_inside_a_block(option):
    spec = kr.ModelSpec(
        input_shape=(16, 16, 3), stem=kr.StemSpec(8, 3, 1, pool=None),
        blocks=[kr.BlockSpec("basic", 8), kr.BlockSpec("basic", 16, strides=2, pool="max")],
        shortcut=option, classes=3)
    model = kr.build_resnet(spec)
    types = layer_types(model)
    assert types["stage2_block1_pool"] == "MaxPooling2D"
    assert model.get_layer("stage2_block1_conv1").strides == (1, 1)
    assert model.get_layer("stage2_block1_add").output.shape == (None, 8, 8, 16)
    if option == "A":
        # the shortcut pools the same way, then zero-pads: no parameters
        assert types["stage2_block1_shortcut_pool"] == "MaxPooling2D"
        assert types["stage2_block1_shortcut_pad"] == "ZeroPadShortcut"
        assert trainable(model) == trainable(kr.build_plain(spec))
    else:
        assert "stage2_block1_shortcut_conv" in types


def test_pool_transition_entry_has_no_shortcut():
    spec = kr.ModelSpec(
        input_shape=(16, 16, 3), stem=kr.StemSpec(8, 3, 1, pool=None),
        blocks=[kr.BlockSpec("basic", 8), kr.PoolSpec("avg"), kr.BlockSpec("basic", 8)],
        classes=3)
    model = kr.build_resnet(spec)
    assert type(model.get_layer("stage2_pool")).__name__ == "AveragePooling2D"
    assert model.get_layer("stage3_block1_add").output.shape == (None, 8, 8, 8)
    assert not any("shortcut" in layer.name for layer in model.layers)
    assert kr.make_plan(spec).steps[1].shortcut == "none"


def test_dense_width_change_learns_ws():
    """The seed's example: a 128 -> 256 width change gets a learned 128x256 Ws."""
    spec = kr.ModelSpec(input_shape=(64,), stem=kr.StemSpec(128, type="dense"),
                        blocks=[kr.BlockSpec("dense", 128), kr.BlockSpec("dense", 256)],
                        shortcut="B", norm=None, classes=10)
    model = kr.build_resnet(spec)
    ws = model.get_layer("stage2_block1_shortcut_dense")
    assert ws.kernel.shape == (128, 256)
    assert "stage1_block1_shortcut_dense" not in {layer.name for layer in model.layers}
    # option A: the fixed zero-padding matrix instead, no parameters
    a = kr.build_resnet(spec.replace(shortcut="A"))
    assert trainable(model) - trainable(a) == 128 * 256 + 256  # kernel + bias (no norm)
