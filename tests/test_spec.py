"""Spec data model: round trips and validation messages (before any layer exists)."""

import dataclasses
import json
import os

import keras
import pytest
from conftest import cifar_spec

import keras_resnet as kr


def full_spec():
    """A spec with every field away from its default."""
    return kr.ModelSpec(
        input_shape=(None, None, 1),
        stem=kr.StemSpec(filters=32, kernel_size=5, strides=2, pool="avg", pool_size=2,
                         pool_strides=2, type="deep", norm_act=False),
        blocks=[
            kr.BlockSpec("preact_bottleneck", 8, repeat=2, strides=2, pool="max",
                         shortcut="D", bottleneck_ratio=2, stride_1x1=True, dropout=0.1),
            kr.PoolSpec(pool="avg", strides=2, pool_size=3),
            kr.BlockSpec("basic", 32, shortcut="C"),
        ],
        shortcut="A", classes=7, include_top=False, pooling="max",
        classifier_activation=None, l2=3e-4, l2_bias=True, l2_norm=True,
        zero_init_residual=True, use_bias=True, norm="batch", bn_momentum=0.99,
        bn_epsilon=1.001e-5, activation="gelu", kernel_initializer="glorot_uniform",
        padding="symmetric", name="full",
    )


def test_dict_json_yaml_round_trip_exactly():
    spec = full_spec()
    assert kr.ModelSpec.from_dict(spec.to_dict()) == spec
    assert kr.ModelSpec.from_json(spec.to_json()) == spec
    assert kr.ModelSpec.from_yaml(spec.to_yaml()) == spec
    # JSON text is stable: to_json(from_json(text)) == text
    assert kr.ModelSpec.from_json(spec.to_json()).to_json() == spec.to_json()
    d = spec.to_dict()
    assert d["blocks"][1] == {"type": "pool", "pool": "avg", "strides": 2, "pool_size": 3}
    assert d["input_shape"] == [None, None, 1]


def test_issue_example_and_dict_and_file(tmp_path, spec20):
    path = tmp_path / "my_net.json"
    spec20.save(path)
    assert kr.as_spec(str(path)) == spec20
    assert kr.as_spec(spec20.to_dict()) == spec20
    a = kr.build_resnet(spec20)
    b = kr.build_resnet(str(path))
    c = kr.build_resnet(spec20.to_dict())
    assert a.count_params() == b.count_params() == c.count_params() == 271098


def test_yaml_file(tmp_path, spec20):
    path = tmp_path / "net.yaml"
    spec20.save(path)
    assert "shortcut: A" in path.read_text()
    assert kr.ModelSpec.load(path) == spec20


def test_save_refuses_to_overwrite_and_is_atomic(tmp_path, spec20):
    path = tmp_path / "net.json"
    path.write_text("precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        spec20.save(path)
    assert path.read_text() == "precious"
    spec20.save(path, overwrite=True)
    assert kr.ModelSpec.load(path) == spec20
    assert sorted(os.listdir(tmp_path)) == ["net.json"]  # no temp files left


def test_numpy_and_list_inputs_are_normalised():
    import numpy as np

    spec = kr.ModelSpec(input_shape=[np.int64(8)], stem=None,
                        blocks=[kr.BlockSpec("dense", np.int32(8), repeat=np.int64(2))],
                        l2=np.float32(0.5))
    assert spec.input_shape == (8,) and type(spec.blocks[0].filters) is int
    assert type(spec.l2) is float
    json.dumps(spec.to_dict())  # plain Python types only


def test_frozen():
    spec = cifar_spec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.l2 = 0.1


BAD = [
    # (changes to the CIFAR spec dict, exception, message regex)
    (lambda d: d["blocks"][2].update(strides=0), ValueError,
     r"^blocks\[2\]\.strides must be >= 1\. Received: strides=0$"),
    (lambda d: d["blocks"][0].update(type="basik"), ValueError,
     r"blocks\[0\]\.type must be a registered block type \(did you mean 'basic'\?\)\. "
     r"Known types: 'basic', 'bottleneck', 'dense', 'preact_basic', 'preact_bottleneck'"),
    (lambda d: d["blocks"][1].update(filter=3), ValueError,
     r"blocks\[1\]\.filter is not a known field \(did you mean 'filters'\?\)"),
    (lambda d: d.update(shortcuts="A"), ValueError,
     r"^shortcuts is not a known field \(did you mean 'shortcut'\?\)"),
    (lambda d: d["blocks"][0].update(filters="16"), TypeError,
     r"blocks\[0\]\.filters must be an integer \(got str\)\. Received: filters='16'"),
    (lambda d: d["blocks"][0].update(repeat=True), TypeError,
     r"blocks\[0\]\.repeat must be an integer \(got bool\)"),
    (lambda d: d["blocks"][0].update(repeat=10**7), ValueError,
     r"blocks\[0\]\.repeat must be <= 10000\. Received: repeat=10000000"),
    (lambda d: d.update(l2=float("nan")), ValueError,
     r"^l2 must be a finite number\. Received: l2=nan$"),
    (lambda d: d.update(l2=-1e-4), ValueError, r"^l2 must be >= 0\.0\. Received: l2=-0\.0001$"),
    (lambda d: d.update(l2="1e-4"), TypeError, r"^l2 must be a number \(got str\)"),
    (lambda d: d.update(blocks=[]), ValueError, r"^blocks must hold at least one block"),
    (lambda d: d.update(blocks="basic"), TypeError, r"^blocks must be a list"),
    (lambda d: d.update(shortcut="E"), ValueError,
     r"^shortcut must be one of 'A', 'B', 'C', 'D'\. Received: shortcut='E'$"),
    (lambda d: d.update(shortcut="a"), ValueError, r"did you mean 'A'\?"),
    (lambda d: d["blocks"][1].update(shortcut="Z"), ValueError,
     r"^blocks\[1\]\.shortcut must be one of None, 'A', 'B', 'C', 'D'"),
    (lambda d: d["blocks"][1].update(pool="max", strides=1), ValueError,
     r"^blocks\[1\]\.pool needs strides > 1"),
    (lambda d: d["blocks"][1].update(pool="min"), ValueError,
     r"^blocks\[1\]\.pool must be one of None, 'max', 'avg'"),
    (lambda d: d["blocks"][1].update(bottleneck_ratio=4), ValueError,
     r"^blocks\[1\]\.bottleneck_ratio does not apply to 'basic' blocks"),
    (lambda d: d["blocks"][1].update(dropout=1.0), ValueError,
     r"^blocks\[1\]\.dropout must be < 1\.0"),
    (lambda d: d.update(input_shape=[32, 32]), ValueError,
     r"^input_shape must have 3 entries"),
    (lambda d: d.update(input_shape=[32, 0, 3]), ValueError,
     r"^input_shape\[1\] \(width\) must be between 1 and"),
    (lambda d: d.update(input_shape=[32, 32, None]), TypeError,
     r"^input_shape\[2\] \(channels\) must be an integer"),
    (lambda d: d.update(input_shape=[2, 2, 3]), ValueError,
     r"input_shape is too small for this network: it downsamples 4x "
     r"\(blocks\[1\] /2, blocks\[2\] /2\) and blocks\[2\] would get a height of 1, "
     r"smaller than its stride 2\. The smallest input that works is 3x3\."),
    (lambda d: d["blocks"][2].update(filters=8), ValueError,
     r"^blocks\[2\]\.shortcut 'A' \(zero-padding\) cannot reduce the channels from 32 to 8"),
    (lambda d: d["stem"].update(type="dense"), ValueError, r"^stem\.type 'dense' needs a 1-D"),
    (lambda d: d["stem"].update(pooling="max"), ValueError, r"^stem\.pooling is not a known"),
    (lambda d: d.update(stem=[16]), TypeError, r"^stem must be a StemSpec, a dict or None"),
    (lambda d: d["blocks"].append({"type": "dense", "filters": 8}), ValueError,
     r"^blocks\[3\] is a 'dense' block, which takes \(units,\) vectors, but its input "
     r"has shape \(8, 8, 64\)"),
    (lambda d: d["blocks"].append({"type": "pool", "pool": "max", "size": 2}), ValueError,
     r"^blocks\[3\]\.size is not a known field"),
    (lambda d: d["blocks"].append(7), TypeError, r"^blocks\[3\] must be a dict"),
    (lambda d: d["blocks"][0].pop("filters"), ValueError, r"^blocks\[0\]\.filters is required"),
    (lambda d: d.update(activation="relux"), ValueError,
     r"^activation must be a name Keras knows"),
    (lambda d: d.update(bn_momentum=1.0), ValueError, r"^bn_momentum must be < 1\.0"),
    (lambda d: d.update(use_bias="yes"), ValueError,
     r"^use_bias must be one of True, False, 'auto'"),
    (lambda d: d.update(padding="valid"), ValueError,
     r"^padding must be one of 'same', 'symmetric', 'torch'\. Received: padding='valid'$"),
    (lambda d: d.update(drop_path_rate=1.0), ValueError,
     r"^drop_path_rate must be < 1\.0\. Received: drop_path_rate=1\.0$"),
    (lambda d: d.update(drop_path_rate="0.1"), TypeError,
     r"^drop_path_rate must be a number \(got str\)"),
    (lambda d: d.update(drop_path_rate=0.1, residual=False), ValueError,
     r"^drop_path_rate needs a residual network \(residual=True\).*"
     r"Received: drop_path_rate=0\.1$"),
    (lambda d: d.update(preprocessing="bgr"), ValueError,
     r"^preprocessing must be one of 'unit', 'caffe', 'tf', 'torch', 'none' or a dict"),
    (lambda d: d.update(name="my net"), ValueError, r"^name must be a non-empty name"),
    (lambda d: d.update(classes=0), ValueError, r"^classes must be >= 1"),
]


@pytest.mark.parametrize("mutate,exc,pattern", BAD)
def test_invalid_specs_raise_before_any_layer(monkeypatch, mutate, exc, pattern):
    data = cifar_spec().to_dict()
    mutate(data)

    def no_layers(*args, **kwargs):
        raise AssertionError("a Keras layer was created before validation failed")

    monkeypatch.setattr(keras.layers.Layer, "__init__", no_layers)
    with pytest.raises(exc, match=pattern):
        kr.build_resnet(data)


def test_direct_construction_is_validated_too():
    with pytest.raises(ValueError, match=r"^blocks\[0\]\.strides must be >= 1"):
        kr.ModelSpec(blocks=[kr.BlockSpec("basic", 8, strides=0)])
    with pytest.raises(TypeError, match=r"^blocks\[0\] must be a BlockSpec"):
        kr.ModelSpec(blocks=["basic"])


def test_bad_files(tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        kr.ModelSpec.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        kr.ModelSpec.load(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text(cifar_spec().to_json()[:50])
    with pytest.raises(ValueError, match=r"broken\.json: spec is not valid JSON"):
        kr.build_resnet(str(broken))
    not_a_spec = tmp_path / "list.json"
    not_a_spec.write_text("[1, 2]")
    with pytest.raises(TypeError, match=r"spec must be a dict"):
        kr.ModelSpec.load(not_a_spec)
    with pytest.raises(ValueError, match=r"neither a spec file nor a preset name"):
        kr.build_resnet("no_such_thing")


def test_compact_form_round_trips_and_omits_defaults():
    spec = cifar_spec()
    compact = spec.to_dict(compact=True)
    assert compact == {
        "blocks": [{"type": "basic", "filters": 16, "repeat": 3},
                   {"type": "basic", "filters": 32, "repeat": 3, "strides": 2},
                   {"type": "basic", "filters": 64, "repeat": 3, "strides": 2}],
        "input_shape": [32, 32, 3],
        "stem": {"filters": 16, "kernel_size": 3, "strides": 1, "pool": None},
        "shortcut": "A", "classes": 10, "l2": 0.0001,
    }
    assert kr.ModelSpec.from_dict(compact) == spec
    full = full_spec()
    assert kr.ModelSpec.from_json(full.to_json(compact=True)) == full


EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples", "specs")


def test_documented_spec_files_load():
    """The JSON and YAML examples the README shows."""
    cifar = kr.ModelSpec.load(os.path.join(EXAMPLES, "cifar_resnet20.json"))
    assert cifar == kr.presets.get("cifar_resnet20").replace(l2=1e-4)
    mlp = kr.ModelSpec.load(os.path.join(EXAMPLES, "residual_mlp.yaml"))
    assert mlp.is_mlp and mlp.norm is None and mlp.blocks[1].filters == 256
    model = kr.build_resnet(os.path.join(EXAMPLES, "residual_mlp.yaml"))
    assert model.get_layer("stage2_block1_shortcut_dense").kernel.shape == (128, 256)


def test_residual_is_data_and_round_trips(tmp_path):
    spec = cifar_spec(residual=False)
    assert cifar_spec().residual is True and spec.residual is False
    assert spec.to_dict()["residual"] is False
    assert "residual" not in cifar_spec().to_dict(compact=True)  # the default
    assert kr.ModelSpec.from_dict(spec.to_dict(compact=True)) == spec
    assert kr.ModelSpec.from_json(spec.to_json()) == spec
    assert kr.ModelSpec.from_yaml(spec.to_yaml()) == spec
    spec.save(tmp_path / "plain.yaml")
    assert kr.ModelSpec.load(tmp_path / "plain.yaml").residual is False
    assert spec != cifar_spec()
    with pytest.raises(TypeError, match=r"^residual must be True or False \(got str\)\. "
                                        r"Received: residual='no'$"):
        cifar_spec(residual="no")


def test_plain_presets_say_so_in_their_spec():
    assert kr.presets.get("cifar_plain20").residual is False
    assert kr.presets.get("plain34").residual is False
    assert kr.presets.get("cifar_resnet20").residual is True
    # the twins differ only in the flag and the name
    assert kr.presets.get("plain34").replace(residual=True, name="resnet34") == (
        kr.presets.get("resnet34"))
    assert kr.as_spec("cifar_plain56").residual is False
