"""Property-based spec fuzzing (hypothesis, fixed seed).

Invalid specs: a valid spec dict with one random defect. Each must raise
ValueError or TypeError naming the offending field, before any Keras layer is
created. Valid specs: built from a space that is valid by construction; each
must build, and its output shape must be what the test computes on its own
(and what the shape walk predicted).
"""

import math

import keras
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import keras_resnet as kr

INVALID_EXAMPLES = 1000
VALID_EXAMPLES = 50

CONV_TYPES = ["basic", "bottleneck", "preact_basic", "preact_bottleneck"]


@st.composite
def valid_conv_specs(draw):
    size = draw(st.sampled_from([8, 12, 16, 17]))
    stem = draw(st.one_of(
        st.none(),
        st.fixed_dictionaries({
            "filters": st.integers(1, 12), "kernel_size": st.sampled_from([1, 3, 5]),
            "strides": st.sampled_from([1, 2]), "pool": st.sampled_from([None, "max", "avg"]),
            "type": st.sampled_from(["conv", "deep"]), "norm_act": st.booleans()})))
    shortcut = draw(st.sampled_from(["A", "B", "C", "D"]))
    channels = 3 if stem is None else stem["filters"]
    blocks = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 5)) == 0:
            blocks.append({"type": "pool", "pool": draw(st.sampled_from(["max", "avg"])),
                           "strides": 2})
            continue
        btype = draw(st.sampled_from(CONV_TYPES))
        ratio = draw(st.sampled_from([None, 1, 2])) if "bottleneck" in btype else None
        filters = draw(st.integers(1, 12))
        out = filters * (ratio or 4) if "bottleneck" in btype else filters
        block_shortcut = draw(st.sampled_from([None, "A", "B", "C", "D"]))
        if (block_shortcut or shortcut) == "A" and out < channels:
            block_shortcut = "B"  # zero-padding cannot remove channels
        strides = draw(st.sampled_from([1, 2]))
        entry = {"type": btype, "filters": filters, "repeat": draw(st.integers(1, 2)),
                 "strides": strides, "shortcut": block_shortcut,
                 "pool": draw(st.sampled_from([None, "max", "avg"])) if strides > 1 else None}
        if ratio is not None:
            entry["bottleneck_ratio"] = ratio
        blocks.append(entry)
        channels = out
    if all(b["type"] == "pool" for b in blocks):
        blocks.append({"type": "basic", "filters": 4})
    in_channels = draw(st.sampled_from([1, 3]))
    residual = draw(st.booleans())
    conventions = ["unit", "tf", "none", {"scale": 0.5, "offset": -1.0},
                   {"scale": [0.1] * in_channels, "offset": None}]
    return {"input_shape": [size, size, in_channels], "stem": stem,
            "blocks": blocks, "shortcut": shortcut, "classes": draw(st.integers(2, 5)),
            "include_top": draw(st.booleans()), "pooling": draw(st.sampled_from([None, "avg"])),
            "l2": draw(st.sampled_from([0.0, 1e-4])),
            "zero_init_residual": draw(st.booleans()),
            "residual": residual,
            "use_bias": draw(st.sampled_from([True, False, "auto"])),
            "norm": draw(st.sampled_from(["batch", None])),
            "padding": draw(st.sampled_from(["same", "symmetric", "torch"])),
            "preprocessing": draw(st.sampled_from(
                conventions + (["caffe", "torch"] if in_channels == 3 else []))),
            "drop_path_rate": draw(st.sampled_from([0.0, 0.2])) if residual else 0.0}


@st.composite
def valid_mlp_specs(draw):
    width = draw(st.integers(2, 16))
    stem = draw(st.one_of(st.none(), st.fixed_dictionaries(
        {"type": st.just("dense"), "filters": st.integers(1, 16)})))
    blocks = [{"type": "dense", "filters": draw(st.integers(1, 16)),
               "repeat": draw(st.integers(1, 2)), "dropout": draw(st.sampled_from([0.0, 0.2]))}
              for _ in range(draw(st.integers(1, 3)))]
    return {"input_shape": [width], "stem": stem, "blocks": blocks, "shortcut": "B",
            "classes": draw(st.integers(2, 5)), "include_top": draw(st.booleans()),
            "norm": draw(st.sampled_from(["batch", None])),
            "preprocessing": draw(st.sampled_from(["unit", "none", {"scale": 2.0}])),
            "drop_path_rate": draw(st.sampled_from([0.0, 0.3]))}


def expected_output_shape(d):
    """The test's own arithmetic, independent of keras_resnet.plan."""
    shape = list(d["input_shape"])
    if len(shape) == 1:
        width = d["stem"]["filters"] if d.get("stem") else shape[0]
        for b in d["blocks"]:
            width = b["filters"]
        return (d["classes"],) if d.get("include_top", True) else (width,)
    h, c = shape[0], shape[2]
    stem = d.get("stem")
    if stem:
        h = math.ceil(h / stem["strides"])
        if stem.get("pool", "max"):
            h = math.ceil(h / 2)
        c = stem["filters"]
    for b in d["blocks"]:
        h = math.ceil(h / b.get("strides", 1))
        if b["type"] != "pool":
            ratio = b.get("bottleneck_ratio") or 4
            c = b["filters"] * ratio if "bottleneck" in b["type"] else b["filters"]
    if d.get("include_top", True):
        return (d["classes"],)
    return (c,) if d.get("pooling") else (h, h, c)


def _spatial_ok(d):
    """Every stride needs an input at least as large (else the spec is invalid)."""
    h = d["input_shape"][0]
    steps = []
    if d.get("stem"):
        steps += [d["stem"]["strides"]] + ([2] if d["stem"].get("pool", "max") else [])
    steps += [b.get("strides", 1) for b in d["blocks"]]
    for s in steps:
        if s > 1 and h < s:
            return False
        h = math.ceil(h / s)
    return True


@seed(20261128)
@settings(max_examples=VALID_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(valid_conv_specs(), valid_mlp_specs()))
def test_valid_specs_build_with_predicted_shape(d):
    keras.backend.clear_session()
    if len(d["input_shape"]) == 3 and not _spatial_ok(d):
        with pytest.raises(ValueError, match="input_shape is too small"):
            kr.ModelSpec.from_dict(d)
        return
    spec = kr.ModelSpec.from_dict(d)
    expected = expected_output_shape(d)
    plan = kr.make_plan(spec)
    if not spec.include_top and (spec.pooling is None or len(spec.input_shape) == 1):
        assert plan.features_shape == expected
    model = kr.build_resnet(spec)
    assert tuple(model.output.shape[1:]) == expected
    plain = kr.build_plain(spec.replace(drop_path_rate=0.0))  # a plain net has no branch
    assert tuple(plain.output.shape[1:]) == expected
    # kr.build builds what spec.residual says: additions only in the residual net
    built = kr.build(spec)
    adds = sum(isinstance(layer, keras.layers.Add) for layer in built.layers)
    assert (adds > 0) == spec.residual and kr.spec_of(built) == spec
    assert not any(isinstance(layer, keras.layers.Add) for layer in plain.layers)


# ----------------------------------------------------------------- invalid
BAD_NUMBERS = [0, -1, -7, 1.5, float("nan"), float("inf"), "3", "", None, True, [2], {"a": 1}]
BLOCK_DEFECTS = {
    "filters": BAD_NUMBERS + [10**9],
    "repeat": BAD_NUMBERS + [10**6],
    "strides": BAD_NUMBERS + [10**4],
    "type": ["basik", "", 3, None, "pool2", "Dense"],
    "shortcut": ["E", "a", 1, "identity"],
    "pool": ["min", 2, "MAX"],
    "dropout": [-0.1, 1.0, 2, "0.1", float("nan")],
    "bottleneck_ratio": [0, -1, "4", 1.5, 10**3],
    "stride_1x1": [1, "yes"],
    "options": [{"se_ratio": 1}, "x", 3],
    "unknown_key": [1],
}
POOL_DEFECTS = {"strides": [0, -2, "2", None, 2.5], "pool": ["min", None, 3],
                "pool_size": [0, "3", 100], "filters": [8]}
STEM_DEFECTS = {"filters": BAD_NUMBERS, "kernel_size": [0, -3, "3", 2.5, 100],
                "strides": [0, "2", None], "type": ["wide", 1], "pool": ["min", 2],
                "norm_act": ["no", 0, None], "stride": [2]}
TOP_DEFECTS = {
    "shortcut": ["E", "", None, 1, "identity"],
    "classes": [0, -3, 2.5, "10", None],
    "l2": [-1e-4, float("nan"), float("inf"), -float("inf"), "1e-4", None, 2.0],
    "include_top": [1, "yes", None],
    "residual": [1, "yes", None],
    "pooling": ["sum", 1],
    "use_bias": ["yes", 2, None],
    "norm": ["layer", 1],
    "padding": ["valid", "", 0],
    "bn_momentum": [1.0, -0.5, "0.9"],
    "bn_epsilon": [0, -1e-5, "x"],
    "activation": ["relux", 3],
    "kernel_initializer": ["he_normall", 5],
    "name": ["my net", "", 3],
    "shortcuts": ["A"],
    "drop_path_rate": [-0.1, 1.0, 1.5, "0.1", float("nan"), None, True],
    "preprocessing": ["caffee", "", 3, None, {"mean": 1}, {"scale": "x"}, {"scale": [1, 2]},
                      {"offset": float("inf")}],
}
STRUCTURAL = [
    # (mutation, text the message must contain)
    (lambda d: d.update(blocks=[]), "blocks"),
    (lambda d: d.update(blocks="basic"), "blocks"),
    (lambda d: d.update(blocks={"type": "basic"}), "blocks"),
    (lambda d: d.update(blocks=[{"type": "pool"}]), "blocks"),
    (lambda d: d.pop("blocks"), "blocks"),
    (lambda d: d.update(stem=[8, 3]), "stem"),
    (lambda d: d.update(stem="conv"), "stem"),
    (lambda d: d["blocks"].append("basic"), "blocks["),
    (lambda d: d["blocks"].append(None), "blocks["),
    (lambda d: d.update(input_shape=[16, 16]), "input_shape"),
    (lambda d: d.update(input_shape="16,16,3"), "input_shape"),
    (lambda d: d.update(input_shape=[0, 16, 3]), "input_shape"),
    (lambda d: d.update(input_shape=[16, "16", 3]), "input_shape"),
    (lambda d: d.update(input_shape=[16, 16, None]), "input_shape"),
    (lambda d: d.update(residual=False, drop_path_rate=0.1), "drop_path_rate"),
    (lambda d: d.update(preprocessing="caffe", input_shape=[*d["input_shape"][:-1], 1]),
     "preprocessing"),
]


@st.composite
def invalid_specs(draw):
    """A valid spec with one defect, and the text its error must contain."""
    d = draw(st.one_of(valid_conv_specs(), valid_mlp_specs()))
    d["blocks"] = [dict(b) for b in d["blocks"]]
    kind = draw(st.sampled_from(["block", "top", "stem", "structural"]))
    if kind == "stem" and d.get("stem") and d["stem"].get("type") != "dense":
        field = draw(st.sampled_from(sorted(STEM_DEFECTS)))
        d["stem"] = dict(d["stem"], **{field: draw(st.sampled_from(STEM_DEFECTS[field]))})
        return d, field
    if kind == "block":
        i = draw(st.integers(0, len(d["blocks"]) - 1))
        defects = POOL_DEFECTS if d["blocks"][i]["type"] == "pool" else BLOCK_DEFECTS
        field = draw(st.sampled_from(sorted(defects)))
        value = draw(st.sampled_from(defects[field]))
        # values that this block would accept are not defects
        if field == "bottleneck_ratio" and "bottleneck" in d["blocks"][i]["type"] and value == 2:
            value = 0
        if field == "stride_1x1" and value is True:
            value = 1
        d["blocks"][i][field] = value
        return d, f"blocks[{i}]" if field == "type" and value in ("pool2",) else field
    if kind == "structural":
        mutate, text = draw(st.sampled_from(STRUCTURAL))
        mutate(d)
        return d, text
    field = draw(st.sampled_from(sorted(TOP_DEFECTS)))
    d[field] = draw(st.sampled_from(TOP_DEFECTS[field]))
    return d, field


@seed(20261128)
@settings(max_examples=INVALID_EXAMPLES, deadline=None, derandomize=True)
@given(invalid_specs())
def test_invalid_specs_name_the_field_before_any_layer(case):
    d, field = case
    created = []
    original = keras.layers.Layer.__init__

    def spy(self, *args, **kwargs):
        created.append(type(self).__name__)
        original(self, *args, **kwargs)

    keras.layers.Layer.__init__ = spy
    try:
        with pytest.raises((ValueError, TypeError)) as info:
            kr.build_resnet(d)
    finally:
        keras.layers.Layer.__init__ = original
    assert created == [], f"layers built before the error: {created[:3]}"
    assert field in str(info.value), (field, str(info.value))
