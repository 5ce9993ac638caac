"""Tuning: the search space, trials that transfer to kr.train, resume after kills,
several processes on one folder, KerasTuner's public API only."""

import ast
import glob
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

import keras
import keras_tuner as kt
import numpy as np
import pytest

import keras_resnet as kr
from keras_resnet import parallel, tuning
from keras_resnet.cli import main
from keras_resnet.parallel import usable_cores

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CHILD = os.path.join(HERE, "_tune_child.py")
sys.path.insert(0, HERE)
from _tune_child import key, tiny_data, tiny_spec  # noqa: E402


def cifar8(**changes):
    """The CIFAR ResNet-20 preset on 8x8x1 digits."""
    return kr.presets.get("cifar_resnet20").replace(input_shape=(8, 8, 1), **changes)


def space_of(hm):
    hp = kt.HyperParameters()
    hm.declare_hyperparameters(hp)
    return {h.name: h for h in hp.space}


def repeats(spec):
    return [b.repeat for b in spec.blocks if isinstance(b, kr.BlockSpec)]


def ledger(project_dir):
    with open(os.path.join(project_dir, "ledger.jsonl")) as fh:
        return [json.loads(line) for line in fh if line.endswith("\n")]


# ------------------------------------------------------------ hyperparameters
def test_default_space_is_depth_and_log_l2_and_builds_compiled():
    hm = tuning.ResNetHyperModel(cifar8())
    space = space_of(hm)
    assert list(space) == ["depth", "l2"]
    assert space["depth"].values == [1, 2, 3, 5, 7]  # n of ResNet-8/14/20/32/44
    assert space["depth"].default == 3
    l2 = space["l2"].get_config()
    assert (l2["min_value"], l2["max_value"], l2["sampling"]) == (1e-6, 1e-2, "log")
    model = hm.build(kt.HyperParameters())  # the defaults (values: see the test below)
    spec = kr.spec_of(model)
    assert repeats(spec) == [3, 3, 3] and spec.l2 == 1e-4
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1)
    convs = [lay for lay in model.layers if isinstance(lay, keras.layers.Conv2D)]
    assert len(convs) + 1 == 6 * 3 + 2  # depth 3 is the paper's ResNet-20
    assert all(float(c.kernel_regularizer.l2) == pytest.approx(1e-4) for c in convs)


def test_build_takes_the_values_it_is_given():
    """What every KerasTuner tuner does: hp arrives with the space declared and the
    trial's values set, and build(hp) builds those values."""
    hm = tuning.ResNetHyperModel(cifar8())
    hp = kt.HyperParameters()
    hp.values.update({"depth": 5, "l2": 3e-4})
    model = hm.build(hp)
    spec = kr.spec_of(model)
    assert repeats(spec) == [5, 5, 5] and spec.l2 == 3e-4
    convs = [lay for lay in model.layers if isinstance(lay, keras.layers.Conv2D)]
    assert len(convs) + 1 == 6 * 5 + 2  # depth 5 is the paper's ResNet-32
    assert all(float(c.kernel_regularizer.l2) == pytest.approx(3e-4) for c in convs)
    hm = tuning.ResNetHyperModel(
        cifar8(), depth=3, l2={"min": 1e-5, "max": 1e-3, "sampling": "log"},
        width=[1, 2], optimizer="adam", learning_rate=0.01, shortcut=False)
    hp = kt.HyperParameters()
    hp.values.update({"l2": 1e-4, "width": 2.0})
    model = hm.build(hp)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)
    assert kr.spec_of(model).stem.filters == 32
    hm = tuning.ResNetHyperModel(cifar8(), allow_zero_l2=True)
    hp = kt.HyperParameters()
    hm.declare_hyperparameters(hp)  # as an oracle's trial brings it
    hp.values["use_l2"] = False
    model = hm.build(hp)
    assert kr.spec_of(model).l2 == 0.0 and not hp.is_active("l2")
    assert [h.name for h in hp.space] == ["depth", "use_l2", "l2"]  # declared once


def test_every_hyperparameter_has_its_name_and_default_range():
    hm = tuning.ResNetHyperModel(cifar8(), width=True, shortcut=True, block_type=True,
                                 learning_rate=True, optimizer=True, batch_size=True,
                                 epochs=[1, 2], schedule=True, augment=[False, True],
                                 allow_zero_l2=True)
    space = space_of(hm)
    assert list(space) == ["depth", "use_l2", "l2", "width", "shortcut", "block_type",
                           "learning_rate", "optimizer", "batch_size", "epochs",
                           "schedule", "augment"]
    assert space["schedule"].values == ["step", "cosine"]
    assert type(space["augment"]).__name__ == "Boolean"
    assert space["width"].values == [0.5, 1.0, 2.0]
    assert space["shortcut"].values == ["A", "B", "C", "D"]
    assert space["block_type"].values == ["basic", "preact_basic"]
    assert space["optimizer"].values == ["sgd", "adam"]
    assert space["batch_size"].values == [32, 64, 128]
    assert space["epochs"].values == [1, 2]
    lr = space["learning_rate"].get_config()
    assert (lr["min_value"], lr["max_value"], lr["sampling"]) == (1e-4, 0.1, "log")
    assert space["l2"].conditions  # l2 lives in use_l2's conditional scope
    resnet50 = tuning.ResNetHyperModel("resnet50", input_shape=(64, 64, 3), block_type=True)
    assert space_of(resnet50)["block_type"].values == ["bottleneck", "preact_bottleneck"]
    assert space_of(resnet50)["depth"].values == [2, 4, 6, 10, 14]


def test_fixed_choice_and_range_settings():
    hm = tuning.ResNetHyperModel(
        cifar8(), depth=3, l2={"min": 1e-5, "max": 1e-3, "sampling": "log"},
        width=[1, 2], optimizer="adam", learning_rate=0.01, shortcut=False)
    space = space_of(hm)
    assert type(space["depth"]).__name__ == "Fixed" and space["depth"].value == 3
    l2 = space["l2"].get_config()
    assert (l2["min_value"], l2["max_value"], l2["sampling"]) == (1e-5, 1e-3, "log")
    assert type(space["width"]).__name__ == "Choice" and space["width"].values == [1.0, 2.0]
    assert [type(v) for v in space["width"].values] == [float, float]  # as the ledger keeps it
    assert space["optimizer"].value == "adam" and space["learning_rate"].value == 0.01
    assert "shortcut" not in space
    model = hm.build(kt.HyperParameters())  # the defaults (values: test above)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)
    assert kr.spec_of(model).stem.filters == 16  # width's first choice, 1
    ints = space_of(tuning.ResNetHyperModel(cifar8(), depth={"min": 1, "max": 4}))
    assert type(ints["depth"]).__name__ == "Int"
    assert (ints["depth"].min_value, ints["depth"].max_value) == (1, 4)
    assert "depth" not in space_of(tuning.ResNetHyperModel(cifar8(), depth=False))
    # the learning rate follows the optimizer when it is neither fixed nor searched
    hm = tuning.ResNetHyperModel(cifar8(), optimizer=["sgd", "adam"])
    assert hm.recipe_for({"optimizer": "adam"}).learning_rate == 1e-3
    assert hm.recipe_for({"optimizer": "sgd"}).learning_rate == 0.1


def test_zero_l2_only_through_the_flag():
    with pytest.raises(ValueError, match=r"allow_zero_l2=True.*Received: l2=0.0"):
        tuning.ResNetHyperModel(cifar8(), l2=0.0)
    with pytest.raises(ValueError, match="allow_zero_l2"):
        tuning.ResNetHyperModel(cifar8(), l2=[0.0, 1e-4])
    with pytest.raises(ValueError, match="log-uniform range needs min > 0"):
        tuning.ResNetHyperModel(cifar8(), l2={"min": 0.0, "max": 1e-2, "sampling": "log"},
                                allow_zero_l2=True)
    choice = space_of(tuning.ResNetHyperModel(cifar8(), l2=[0.0, 1e-4], allow_zero_l2=True))
    assert "use_l2" not in choice and choice["l2"].values == [0.0, 1e-4]
    hm = tuning.ResNetHyperModel(cifar8(), allow_zero_l2=True)
    space = space_of(hm)
    assert type(space["use_l2"]).__name__ == "Boolean" and space["use_l2"].default is True
    assert [c.name for c in space["l2"].conditions] == ["use_l2"]
    assert tuning.spec_for(cifar8(l2=1e-4), {"use_l2": False, "l2": 1e-3}).l2 == 0.0
    assert kr.spec_of(hm.build(kt.HyperParameters())).l2 == 1e-4  # use_l2 defaults to on
    assert "use_l2" not in space_of(tuning.ResNetHyperModel(cifar8()))


# ------------------------------------------------------------------ spec_for
@pytest.mark.parametrize("preset, depth, expected", [
    ("cifar_resnet20", 1, [1, 1, 1]),
    ("cifar_resnet20", 7, [7, 7, 7]),
    ("resnet50", 1, [1, 1, 1, 1]),
    ("resnet50", 3, [2, 2, 3, 2]),     # 1.5 rounds half up to 2
    ("resnet50", 12, [6, 8, 12, 6]),
    ("resnet101", 6, [1, 1, 6, 1]),
    # V2: stride on each stage's last block, a separate entry of 1
    ("resnet50v2", 10, [4, 2, 6, 2, 10, 2, 6]),
])
def test_spec_for_depth_scales_stages_in_proportion(preset, depth, expected):
    assert repeats(tuning.spec_for(preset, {"depth": depth})) == expected


def test_recipe_for_applies_recipe_values_and_hyperbands_budget():
    base = kr.Recipe(epochs=10, warmup_epochs=2, learning_rate=0.05)
    assert tuning.recipe_for(base, {"depth": 5, "l2": 1e-4}) is base
    short = tuning.recipe_for(base, {"tuner/epochs": 1, "batch_size": 32})
    assert (short.epochs, short.warmup_epochs, short.batch_size) == (1, 1, 32)
    adam = tuning.recipe_for(base, {"optimizer": "adam"})
    assert adam.learning_rate == pytest.approx(1e-3)  # the optimizer's usual rate
    with pytest.raises(ValueError, match=r"^epochs must be >= 1\. Received: epochs=0$"):
        tuning.recipe_for(base, {"epochs": 0})


def test_values_are_normalised_to_the_hyperparameters_type():
    """Mixed ints and floats, NumPy numbers and a whole float depth become one type, as
    KerasTuner's Choice needs and the ledger records."""
    space = space_of(tuning.ResNetHyperModel(
        cifar8(), width=[0.5, 1, 2], depth=list(np.arange(1, 4)), l2=np.float32(1e-4),
        batch_size=64.0))
    assert space["width"].values == [0.5, 1.0, 2.0]
    assert [type(v) for v in space["width"].values] == [float] * 3
    assert space["depth"].values == [1, 2, 3] and type(space["depth"].values[0]) is int
    assert type(space["l2"].value) is float and type(space["batch_size"].value) is int
    assert tuning.spec_for(cifar8(), {"depth": 3.0}) == tuning.spec_for(cifar8(), {"depth": 3})
    with pytest.raises(TypeError, match=r"depth must be an integer"):
        tuning.ResNetHyperModel(cifar8(), depth=2.5)
    with pytest.raises(ValueError, match=r"^learning_rate must be > 0\. Received: "
                                         r"learning_rate=0\.0$"):
        tuning.ResNetHyperModel(cifar8(), learning_rate=[0.0, 0.1])


def test_augment_true_and_false_are_values_as_in_tune():
    """augment=True turns augmentation on in the HyperModel as in kr.tune (where it is a
    recipe field); a list searches it."""
    def recipe(**kw):
        hm = tuning.ResNetHyperModel(cifar8(), **kw)
        return space_of(hm).get("augment"), hm.recipe_for(hm.hyperparameters.values)

    on, off = recipe(augment=True), recipe(recipe=kr.Recipe(augment=True), augment=False)
    assert (type(on[0]).__name__, on[0].value, on[1].augment) == ("Fixed", True, True)
    assert (type(off[0]).__name__, off[0].value, off[1].augment) == ("Fixed", False, False)
    assert type(recipe(augment=[False, True])[0]).__name__ == "Boolean"
    assert recipe()[0] is None and recipe()[1].augment is False  # not declared: the recipe's


def test_drop_path_rate_true_is_the_range_0_to_0_2_and_0_is_a_choice():
    """drop_path_rate = 0 is no stochastic depth, not 'no weight decay': its range and its
    choices may hold 0 without allow_zero_l2."""
    rate = space_of(tuning.ResNetHyperModel(cifar8(), drop_path_rate=True))["drop_path_rate"]
    assert (rate.min_value, rate.max_value, rate.sampling) == (0.0, 0.2, "linear")
    rate = space_of(tuning.ResNetHyperModel(cifar8(), drop_path_rate=[0.0, 0.1]))
    assert rate["drop_path_rate"].values == [0.0, 0.1]
    assert tuning.spec_for(cifar8(), {"drop_path_rate": 0.0}).drop_path_rate == 0.0
    with pytest.raises(ValueError, match=r"l2 is 0 \(no weight decay\), which is allowed "
                                         r"only with allow_zero_l2=True"):
        tuning.ResNetHyperModel(cifar8(), l2=[0.0, 1e-4])


def test_spec_for_depth_ignores_pool_entries_and_keeps_the_base():
    spec = kr.ModelSpec(input_shape=(16, 16, 3), stem=kr.StemSpec(8, 3, 1, pool=None),
                        blocks=[kr.BlockSpec("basic", 8, repeat=2), kr.PoolSpec("max", 2),
                                kr.BlockSpec("basic", 16, repeat=4)], classes=3)
    out = tuning.spec_for(spec, {"depth": 2})
    assert isinstance(out.blocks[1], kr.PoolSpec) and repeats(out) == [1, 2]
    assert tuning.spec_for(spec, {}) == spec
    assert tuning.spec_for(spec, {"depth": 4}) == spec
    assert tuning.base_depth(spec) == 4


def test_spec_for_width_block_type_shortcut_l2():
    base = cifar8()
    wide = tuning.spec_for(base, {"width": 2})
    assert wide.stem.filters == 32 and [b.filters for b in wide.blocks] == [32, 64, 128]
    narrow = tuning.spec_for(base, {"width": 0.01})
    assert narrow.stem.filters == 1 and [b.filters for b in narrow.blocks] == [1, 1, 1]
    pre = tuning.spec_for(base, {"block_type": "preact_basic"})
    assert {b.type for b in pre.blocks} == {"preact_basic"}
    # bottleneck -> basic drops the bottleneck-only options and stays valid
    r50 = kr.presets.get("resnet50")
    assert r50.blocks[0].stride_1x1
    basic = tuning.spec_for(r50, {"block_type": "basic"})
    assert all(b.type == "basic" and not b.stride_1x1 for b in basic.blocks)
    v2 = tuning.spec_for("resnet50v2", {"shortcut": "B"})
    assert v2.shortcut == "B" and v2.blocks[1].shortcut == "A"  # block overrides stay
    assert tuning.spec_for(base, {"l2": 5e-4}).l2 == 5e-4
    assert tuning.spec_for(base.replace(l2=1e-4), {"use_l2": False, "l2": 1e-3}).l2 == 0.0
    ignored = {"learning_rate": 0.01, "optimizer": "adam", "batch_size": 32, "epochs": 3,
               "tuner/epochs": 2, "tuner/trial_id": "0001"}
    assert tuning.spec_for(base, ignored) == base
    with pytest.raises(ValueError, match="did you mean 'depth'"):
        tuning.spec_for(base, {"depht": 3})
    with pytest.raises(ValueError, match="shortcut 'A' .*cannot reduce"):
        tuning.spec_for(kr.ModelSpec(input_shape=(8, 8, 1), stem=None, classes=2, blocks=[
            kr.BlockSpec("basic", 32), kr.BlockSpec("basic", 16, strides=2)]),
            {"shortcut": "A"})


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kwargs, exc, pattern", [
    ({"depth": 0}, ValueError, r"depth must be >= 1\. Received: depth=0"),
    ({"depth": "3"}, TypeError, r"depth must be an integer"),
    ({"depth": []}, ValueError, r"depth choices must not be empty"),
    ({"l2": -1}, ValueError, r"l2 must be >= 0\.0\. Received: l2=-1"),
    ({"l2": {"min": 1e-4}}, ValueError, r"l2 range needs 'min' and 'max'"),
    ({"learning_rate": {"min": 0.1, "max": 0.01}}, ValueError, r"needs min < max"),
    ({"depth": {"min": 1, "max": 3, "stride": 1}}, ValueError, r"depth\.stride is not a known"),
    ({"width": 0}, ValueError, r"width must be > 0"),
    ({"width": [1, 1]}, ValueError, r"width choices must be distinct"),
    ({"shortcut": "E"}, ValueError, r"shortcut must be one of 'A', 'B', 'C', 'D'"),
    ({"shortcut": {"min": "A", "max": "B"}}, TypeError, r"shortcut takes a value or a list"),
    ({"block_type": "dense"}, ValueError, r"block_type must be one of"),
    ({"optimizer": "adagrad"}, ValueError, r"optimizer must be one of"),
    ({"epochs": True}, TypeError, r"epochs has no default range"),
    ({"allow_zero_l2": 1}, TypeError, r"allow_zero_l2 must be True or False"),
    ({"recipe": {"epochz": 3}}, ValueError, r"epochz"),
    ({"schedule": "linear"}, ValueError, r"schedule must be one of"),
])
def test_hypermodel_rejects_bad_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        tuning.ResNetHyperModel(cifar8(), **kwargs)


def test_removed_residual_argument_names_the_replacement(tmp_path):
    """0.2's ResNetHyperModel(residual=) and kr.tune(residual=) are gone: like
    kr.train's and kr.build's, the error names spec.replace(residual=False)."""
    for call in (lambda: tuning.ResNetHyperModel(cifar8(), residual=False),
                 lambda: kr.tune(tiny_spec(), tiny_data(), residual=False,
                                 out_dir=str(tmp_path / "p"))):
        with pytest.raises(TypeError, match=r"residual=.*removed in 0\.3.*"
                                            r"spec\.replace\(residual=False\)"):
            call()
    assert not os.path.exists(tmp_path / "p")


def test_hypermodel_rejects_a_space_with_invalid_networks():
    shrinking = kr.ModelSpec(input_shape=(8, 8, 1), stem=None, classes=2, shortcut="B",
                             blocks=[kr.BlockSpec("basic", 32), kr.BlockSpec("basic", 16,
                                                                              strides=2)])
    with pytest.raises(ValueError, match=r"^blocks\[1\]\.shortcut 'A' \(zero-padding\) cannot "
                                         r"reduce .* Received: shortcut='A'$"):
        tuning.ResNetHyperModel(shrinking, shortcut=["A", "B"])  # the spec's own check
    assert space_of(tuning.ResNetHyperModel(shrinking, shortcut=True))["shortcut"].values == [
        "B", "C", "D"]  # True offers only the options valid for this base
    mlp = kr.ModelSpec(input_shape=(64,), stem=None, classes=10,
                       blocks=[kr.BlockSpec("dense", 32, repeat=2)])
    with pytest.raises(ValueError, match="block_type needs a base with"):
        tuning.ResNetHyperModel(mlp, block_type=True)


@pytest.mark.parametrize("kwargs, exc, pattern", [
    ({"algorithm": "sobol"}, ValueError, r"algorithm must be one of 'hyperband', 'random'"),
    ({"max_trials": 0}, ValueError, r"max_trials must be >= 1"),
    ({"epochs": 0}, ValueError, r"epochs must be >= 1"),
    ({"epochs": [1, 2], "algorithm": "hyperband"}, TypeError, r"epochs must be one number"),
    ({"algorithm": "grid"}, ValueError, r"l2 is a continuous range, which algorithm='grid'"),
    ({"objective": "f1"}, ValueError, r"objective must be one of"),
    ({"directory": "elsewhere"}, TypeError, r"^tune\(directory=\.\.\.\) was deprecated in "
                                            r"0\.3 and is removed; use out_dir="),
    ({"project_name": "p"}, TypeError, r"^tune\(project_name=\.\.\.\) .* use out_dir="),
    ({"hyperparameters": {"depth": [1, 2]}}, TypeError,
     r"hyperparameters must be a keras_tuner\.HyperParameters"),
    ({"isolate": False, "jobs": 2}, ValueError, r"jobs must be 1 with isolate=False"),
    ({"overwrite": "yes"}, TypeError, r"overwrite must be True or False"),
    ({"verbose": 3}, ValueError, r"verbose must be one of"),
    ({"validation_data": None}, ValueError, r"'val_accuracy' needs validation data"),
    ({"y": np.zeros(300)}, ValueError, r"y must hold integer class labels"),
    ({"depth": 0}, ValueError, r"depth must be >= 1"),
])
def test_tune_rejects_bad_arguments_before_any_work(tmp_path, kwargs, exc, pattern):
    data = tiny_data()
    (x, y), val = data.train, data.validation
    # max_trials=1, epochs=1, in this process: a search that wrongly starts ends soon
    args = dict(validation_data=val, out_dir=str(tmp_path / "tuner"), algorithm="random",
                max_trials=1, epochs=1, isolate=False, verbose=0)
    args.update(kwargs)
    y = args.pop("y", y)
    with pytest.raises(exc, match=pattern):
        tuning.tune(tiny_spec(), x, y, **args)
    assert not os.path.exists(tmp_path / "tuner")


def test_tf_data_for_worker_processes_is_refused_before_the_folder_is_touched(tmp_path):
    """Workers cannot get a tf.data pipeline: the error comes before the project folder
    is written, or (overwrite=True) deleted."""
    import tensorflow as tf

    x, y = tiny_data().train
    pipeline = kr.Data("hand", tf.data.Dataset.from_tensor_slices((x, y)).batch(32),
                       tf.data.Dataset.from_tensor_slices((x, y)).batch(32),
                       tuple(x.shape[1:]), int(y.max()) + 1, [])
    project = tmp_path / "p"
    (project / "trials").mkdir(parents=True)  # a search's folder, to be kept
    with pytest.raises(ValueError, match=r"tf\.data datasets cannot be sent to worker"):
        kr.tune(tiny_spec(), pipeline, out_dir=str(project), overwrite=True, epochs=1,
                algorithm="random", max_trials=1, verbose=0)
    assert os.listdir(project) == ["trials"]


def test_kerastuner_chief_variables_are_refused_with_the_new_way(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    with pytest.raises(ValueError, match="start the same search in every process"):
        tuning.tune(tiny_spec(), tiny_data(), out_dir=str(tmp_path / "p"))
    assert not os.path.exists(tmp_path / "p")


def test_a_folder_that_is_not_a_tuner_project_is_never_resumed_or_deleted(tmp_path):
    project = tmp_path / "tuner" / "mine"
    project.mkdir(parents=True)
    (project / "notes.txt").write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="'notes.txt', which a search does not write"):
            tuning.tune(tiny_spec(), tiny_data(), algorithm="random",
                        out_dir=str(project), overwrite=overwrite)
    assert (project / "notes.txt").read_text() == "precious"


def test_a_search_of_version_0_1_is_refused_with_a_clear_message(tmp_path):
    project = tmp_path / "tuner" / "old"
    (project / "trial_0").mkdir(parents=True)
    (project / "oracle.json").write_text("{}")
    with pytest.raises(ValueError, match=r"written by keras_resnet 0\.1 .*overwrite=True"):
        tuning.tune(tiny_spec(), tiny_data(), algorithm="random", out_dir=str(project))
    assert sorted(os.listdir(project)) == ["oracle.json", "trial_0"]


def test_resume_with_a_different_search_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    os.makedirs(tempfile.tempdir)
    args = dict(algorithm="random", max_trials=1, epochs=1, depth=1, isolate=False,
                out_dir=str(tmp_path / "p"), verbose=0)
    tuning.tune(tiny_spec(), tiny_data(100, 50), **args)
    with pytest.raises(ValueError, match=r"different hypermodel.*overwrite=True"):
        tuning.tune(tiny_spec(), tiny_data(100, 50), **dict(args, depth=2))
    with pytest.raises(ValueError, match=r"different max_trials"):
        tuning.tune(tiny_spec(), tiny_data(100, 50), **dict(args, max_trials=2))
    assert [f for f in os.listdir(tempfile.tempdir) if f.startswith("kr-")] == []


def _is_kerastuner_class(node):
    roots = [ast.unparse(b) for b in node.bases]
    return any(r.startswith("kt.") or r in ("ResNetHyperModel",) for r in roots)


def test_only_public_kerastuner_and_tensorflow_api():
    """No private module; in subclasses of KerasTuner classes no underscore method and
    no underscore attribute written; nowhere an underscore attribute of another object."""
    for path in glob.glob(os.path.join(ROOT, "keras_resnet", "tuning", "*.py")):
        tree = ast.parse(open(path).read())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                assert not any(n.startswith(("keras_tuner.src", "tensorflow.python",
                                             "keras.src")) for n in names), path
            if isinstance(node, ast.ClassDef) and _is_kerastuner_class(node):
                for item in ast.walk(node):
                    if isinstance(item, ast.FunctionDef):
                        assert not (item.name.startswith("_") and not item.name.startswith(
                            "__")), f"{path}: {node.name}.{item.name}"
                    if isinstance(item, ast.Attribute) and isinstance(item.ctx, ast.Store):
                        assert not item.attr.startswith("_"), f"{path}: {node.name}"
            if (isinstance(node, ast.Call) and ast.unparse(node.func) == "type"
                    and len(node.args) == 3):
                assert not any(k.value.startswith("_") for k in node.args[2].keys), path
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                assert node.attr.startswith("__") or not node.attr.startswith("_") or (
                    ast.unparse(node.value) == "self"), f"{path}: writes {ast.unparse(node)}"


# ---------------------------------------------------------------- searching
def test_the_winner_trained_again_with_kr_train_gives_its_score(tmp_path, capsys):
    data = tiny_data(300, 100)
    # trials in a worker with this process's thread count (TensorFlow's default: every
    # usable core), so kr.train here runs the same floats
    project = str(tmp_path / "p")
    result = kr.tune(tiny_spec(), data, algorithm="random", max_trials=2, epochs=2,
                     batch_size=64, depth=[1, 2], learning_rate=[0.05, 0.1],
                     out_dir=project, threads=usable_cores())
    out = capsys.readouterr().out
    assert out.count("[tune] trial ") == 2 and "val_accuracy=" in out
    assert result.out_dir == project
    assert result.paths == {name: os.path.join(project, f"{name}.json") for name in (
        "best_spec", "best_recipe", "best_hyperparameters")} | {
        "ledger": os.path.join(project, "ledger.jsonl")}
    with open(result.paths["best_recipe"]) as fh:
        recipe = json.load(fh)
    with open(result.paths["best_hyperparameters"]) as fh:
        record = json.load(fh)
    assert record["recipe"] == recipe == result.best_recipe.to_dict()
    assert recipe["epochs"] == 2
    assert recipe["learning_rate"] == record["values"]["learning_rate"]
    assert result.best_values == record["values"]
    assert kr.as_spec(result.paths["best_spec"]) == result.best_spec
    top = result.search.completed()[0]
    assert record["score"] == top.score == result.best_score
    assert record["trial_id"] == top.trial_id == result.trials[0]["trial_id"]
    assert record["threads"] == usable_cores()
    # every trial is a kr.train run folder in trials/<id>/
    assert [t["status"] for t in result.trials] == ["COMPLETED"] * 2
    for t in result.trials:
        assert t["out_dir"] == os.path.join(project, "trials", t["trial_id"])
        folder = kr.RunFolder(t["out_dir"])
        assert folder.status() == "finished"
        assert max(folder.history()["val_accuracy"]) == t["score"]
        assert folder.run()["recipe"]["learning_rate"] == t["values"]["learning_rate"]
    # The README's line: the files of a search give the winner's score again.
    again = kr.train(result.paths["best_spec"], data, **recipe, verbose=0)
    assert max(again.history["val_accuracy"]) == pytest.approx(top.score, abs=1 / 100)
    if keras.backend.backend() == "tensorflow":  # exact on CPU
        assert max(again.history["val_accuracy"]) == top.score
    # ... and so does the result itself
    keras.backend.clear_session()
    same = kr.train(result.best_spec, data, recipe=result.best_recipe, verbose=0)
    assert same.history["val_accuracy"] == again.history["val_accuracy"]
    # get_best_models: the winner's model as its trial ended
    [model] = result.get_best_models()
    best_history = kr.RunFolder(result.trials[0]["out_dir"]).history()
    (xv, yv) = data.validation
    assert model.evaluate(xv, yv, verbose=0, return_dict=True)["accuracy"] == pytest.approx(
        best_history["val_accuracy"][-1], abs=1e-6)
    table = result.table()
    assert "learning_rate" in table and "2 completed, 0 failed" in table
    assert table.splitlines()[2].split()[:2] == ["1", top.trial_id]
    with pytest.raises(AttributeError, match=r"results_table\(result\) was deprecated in "
                                             r"0\.3 and is removed; use result\.table\(\)"):
        tuning.results_table(result)
    # the trials ran in worker processes, kr.train here: the same numbers
    stats = result.search.trial_stats
    assert sorted(stats) == sorted(t["trial_id"] for t in result.trials)
    for s in stats.values():
        assert set(s) == {"seconds", "again", "status", "rss_mb", "pid"}
        assert s["rss_mb"] > 0 and s["pid"] != os.getpid() and s["seconds"] > 0
        assert s["status"] == "COMPLETED" and s["again"] is False


def test_the_0_2_spellings_of_tune_fail_naming_the_replacement(tmp_path):
    """Deprecated in 0.3, removed since: base=, directory=/project_name= (the error names
    out_dir=) and unpacking the result as `best, search` (a TuneResult is no tuple)."""
    with pytest.raises(TypeError, match=r"^tune\(base=\.\.\.\) was deprecated in 0\.3 and "
                                        r"is removed; use model="):
        kr.tune(base=tiny_spec(), data=tiny_data(100, 50), out_dir=str(tmp_path / "p"))
    assert not os.path.exists(tmp_path / "p")
    result = tuning.TuneResult(tiny_spec(), kr.Recipe(), 0.5, {}, [], "p", {}, None)
    with pytest.raises(TypeError, match="cannot unpack non-iterable TuneResult"):
        best, search = result


def test_trials_side_by_side_give_the_scores_of_trials_one_at_a_time(tmp_path, capsys):
    """jobs changes where trials run, not what they score: same thread count, same
    values, bit-identical per-epoch metrics (random search: values do not depend on
    results)."""
    args = dict(algorithm="random", max_trials=3, epochs=1, batch_size=64, depth=[1, 2],
                threads=1, verbose=1)
    runs = {}
    for jobs in (1, 2):
        search = kr.tune(tiny_spec(), tiny_data(150, 60), jobs=jobs,
                         out_dir=str(tmp_path / f"j{jobs}"), **args).search
        out = capsys.readouterr().out
        assert out.count("[tune] trial ") == 3 and f"[tune] {jobs} worker process" in out
        runs[jobs] = {key(search.created[t]["values"]): (r["metrics"], r["threads"])
                      for t, r in search.finished.items()}
        pids = {s["pid"] for s in search.trial_stats.values()}
        assert len(pids) >= jobs  # two workers trained side by side
    assert len(runs[1]) == 3 and runs[1] == runs[2]
    assert all(threads == 1 for _, threads in runs[2].values())


def _stock_tuner(name, hm, directory):
    common = dict(objective="val_accuracy", directory=directory, project_name=name,
                  overwrite=True, seed=1)
    if name == "hyperband":
        return kt.Hyperband(hm, max_epochs=2, factor=2, **common)
    cls = {"random": kt.RandomSearch, "grid": kt.GridSearch,
           "bayesian": kt.BayesianOptimization}[name]
    return cls(hm, max_trials=2, **common)


@pytest.mark.parametrize("name", ["random", "grid",
                                  pytest.param("bayesian", marks=pytest.mark.slow),
                                  pytest.param("hyperband", marks=pytest.mark.slow)])
def test_the_hypermodel_works_with_every_stock_tuner(tmp_path, name, capsys):
    data = tiny_data(150, 60)
    hm = tuning.ResNetHyperModel(tiny_spec(), depth=[1, 2], l2=[1e-4, 1e-3],
                                 recipe=kr.Recipe(epochs=1, batch_size=64))
    tuner = _stock_tuner(name, hm, str(tmp_path))
    tuner.search(data, verbose=0)
    tuner.results_summary()
    assert "Score:" in capsys.readouterr().out
    best_trial = tuner.oracle.get_best_trials(1)[0]
    model = tuner.get_best_models(1)[0]
    (xv, yv) = data.validation
    _, acc = model.evaluate(xv, yv, verbose=0)
    assert acc == pytest.approx(best_trial.score, abs=1e-6)
    # every trial kept its own values (and so trained its own network)
    values = [key(t.hyperparameters.values) for t in tuner.oracle.trials.values()]
    assert len(set(values)) == len(values) == len(tuner.oracle.trials) >= 2
    assert kr.spec_of(model) == hm.spec(best_trial.hyperparameters.values)


def test_cli_tune_prints_progress_the_table_and_the_recipe(tmp_path, capsys):
    spec = tmp_path / "tiny.json"
    tiny_spec().save(str(spec))
    code = main(["tune", str(spec), "--data", "digits", "--max-trials", "2",
                 "--epochs", "1", "--algorithm", "random", "--depth", "1,2",
                 "--l2", "1e-5:1e-3", "--out", str(tmp_path / "t")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count("[tune] trial ") == 2
    assert "rank" in out and "2 completed, 0 failed" in out
    assert f"keras-resnet train {tmp_path / 't' / 'best_spec.json'} --recipe " \
           f"{tmp_path / 't' / 'best_recipe.json'}" in out
    assert os.path.exists(tmp_path / "t" / "best_spec.json")
    values = [r["values"] for r in ledger(str(tmp_path / "t")) if r["event"] == "created"]
    assert {v["depth"] for v in values} <= {1, 2} and all(1e-5 <= v["l2"] <= 1e-3
                                                          for v in values)


def test_cli_tune_old_folder_options_fail_naming_out(tmp_path, capsys):
    for flag in ("--directory", "--project-name"):
        code = main(["tune", "cifar_resnet20", "--max-trials", "1", "--epochs", "1",
                     "--no-isolate", flag, str(tmp_path / "d")])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        assert err.startswith(f"keras-resnet: error: {flag} was removed") and "--out" in err
    assert not os.path.exists(tmp_path / "d")


def test_cli_tune_default_out_is_tuner_model_algorithm(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny_spec().save("tiny.json")
    code = main(["tune", "tiny.json", "--max-trials", "1", "--epochs", "1", "--depth", "1",
                 "--algorithm", "random", "--no-isolate"])
    assert code == 0, capsys.readouterr().err
    assert os.path.exists(tmp_path / "tuner" / "tiny_random" / "best_spec.json")


def test_commands_run_without_keras_tuner(tmp_path):
    """summary, train, export and predict with keras_tuner made unimportable."""
    script = f"""
import sys
sys.modules["keras_tuner"] = None          # any import of it raises ImportError
import numpy as np, keras
from keras_resnet.cli import main
from keras_resnet.parallel import Pool, plan_jobs, usable_cores
out = {str(tmp_path)!r}
spec = out + "/tiny.json"
import keras_resnet as kr
kr.ModelSpec(input_shape=(8, 8, 1), stem=kr.StemSpec(4, 3, 1, pool=None),
             blocks=[kr.BlockSpec("basic", 4)], classes=10, name="tiny").save(spec)
keras.utils.save_img(out + "/x.png", np.zeros((8, 8, 1)), scale=False)
for argv in (["summary", spec], ["train", spec, "--epochs", "1", "--out", out + "/run"],
             ["export", out + "/run/model.keras", "--out", out + "/m.keras", "--format",
              "keras", "--no-verify"], ["predict", out + "/run/model.keras", out + "/x.png"]):
    assert main(argv) == 0, argv
assert "keras_tuner" not in [m for m, v in sys.modules.items() if v is not None]
print("OK")
"""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), (
        proc.stdout[-2000:] + proc.stderr[-3000:])


# ------------------------------------------------------- kills and processes
@pytest.mark.slow
def test_trial_workers_are_replaced_after_trials_per_worker(tmp_path, monkeypatch):
    """A trial worker trains TRIALS_PER_WORKER trials, then a fresh one takes over (each
    trained model leaves memory behind on TensorFlow)."""
    from keras_resnet.tuning import search as search_module

    monkeypatch.setattr(search_module, "TRIALS_PER_WORKER", 2)
    monkeypatch.setenv("KERAS_BACKEND", "jax")  # the trial workers start sooner
    result = kr.tune(tiny_spec(), tiny_data(150, 60), algorithm="grid", max_trials=3,
                     depth=[1, 2, 3], l2=1e-4, epochs=1, batch_size=64, jobs=1, threads=1,
                     out_dir=str(tmp_path / "p"), verbose=0)
    stats = result.search.trial_stats
    pids = [stats[t]["pid"] for t in sorted(stats, key=int)]
    assert len(pids) == 3 and os.getpid() not in pids
    assert pids[0] == pids[1] != pids[2]
    assert [t["status"] for t in result.trials] == ["COMPLETED"] * 3


def test_a_worker_that_dies_is_named(monkeypatch):
    """run_all: a task whose worker process dies is an error naming that task; the
    tasks before it keep their results in the same pool's run."""
    from _tune_child import pid_task

    monkeypatch.setenv("KERAS_BACKEND", "numpy")  # the workers import no TensorFlow or JAX
    started = []
    with pytest.raises(RuntimeError, match=r"^the worker process running 't1' died"):
        parallel.run_all(pid_task, {"t0": {}, "t1": {"die": True}, "t2": {}, "t3": {}},
                         jobs=1, on_event=lambda e: started.append((e["event"], e["id"])))
    # t2 and t3 never started: the one named is the one that died, not a waiting one
    assert ("start", "t2") not in started and ("start", "t3") not in started
    results = parallel.run_all(pid_task, {"a": {}, "b": {}}, jobs=2)
    assert list(results) == ["a", "b"] and all(r[1] == "1" for r in results.values())


@pytest.mark.slow
def test_a_trial_whose_worker_dies_is_a_failed_trial_and_the_search_goes_on(tmp_path):
    """A trial whose worker process dies is recorded FAILED, a new worker takes the next
    trial, and the search ends with the others. In a child with a time limit: a search
    that loses the trial waits forever."""
    cfg = {"out_dir": str(tmp_path / "p"), "max_trials": 3, "algorithm": "grid",
           "die_at": 2, "l2": [1e-4], "epochs": 1, "jobs": 1, "n_train": 150}
    proc = _child(cfg, tmp_path / "out.txt")
    try:
        code = proc.wait(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail("the search hung after a trial's worker died")
    text = (tmp_path / "out.txt").read_text()
    assert code == 0, text[-3000:]
    result = json.loads(text.split("RESULT ", 1)[1])
    records = ledger(str(tmp_path / "p"))
    created = {r["trial_id"]: r["values"]["depth"] for r in records if r["event"] == "created"}
    finished = {created[r["trial_id"]]: r for r in records if r["event"] == "finished"}
    assert sorted(created.values()) == [1, 2, 3] and sorted(finished) == [1, 2, 3]
    assert finished[2]["status"] == "FAILED" and finished[2]["metrics"] == {}
    assert finished[2]["message"].startswith("the worker process died")
    assert finished[1]["status"] == finished[3]["status"] == "COMPLETED"
    stats = {created[t]: s for t, s in result["stats"].items()}
    assert stats[2]["status"] == "FAILED" and stats[2]["pid"] is None
    assert stats[1]["pid"] != stats[3]["pid"]  # a new worker after the death
    assert result["best_depth"] in (1, 3)
    assert "2 completed, 1 failed" in result["table"]


def _child(cfg, out_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, HERE]),
               TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("KERASTUNER_ORACLE_IP", None)
    return subprocess.Popen([sys.executable, CHILD, json.dumps(cfg)], env=env,
                            stdout=open(out_path, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _events(path):
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.endswith("\n")]


def _kill_and_resume(tmp_path, algorithm, seed, kills, max_trials=5, isolate=True,
                     jobs="auto"):
    """Runs a search, SIGKILLs it (and its trial workers) at random moments, resumes."""
    rng = random.Random(seed)
    log = str(tmp_path / "fits.jsonl")
    cfg = {"out_dir": str(tmp_path / "tuner" / "p"), "log": log, "max_trials": max_trials,
           "algorithm": algorithm, "isolate": isolate, "jobs": jobs if isolate else 1,
           "l2": [1e-5, 1e-4, 1e-3] if algorithm == "grid" else None,
           # Hyperband: 2 brackets (2 trials of 1 epoch, the best for 2 more; 2 of 2)
           "epochs": 2 if algorithm == "hyperband" else 1, "hyperband_factor": 2}
    for attempt in range(kills + 1):
        proc = _child(cfg, tmp_path / f"out{attempt}.txt")
        if attempt < kills:
            # A moment inside the search: after some fits began, at a random time.
            target = len(_events(log)) + rng.choice([1, 2, 3])
            deadline = time.time() + 120
            while (len(_events(log)) < target and proc.poll() is None
                   and time.time() < deadline):
                time.sleep(0.05)
            time.sleep(rng.uniform(0, 1.5))
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # the search and its trial worker
                proc.wait()
            else:  # it finished first: the next attempt resumes a finished search
                assert proc.returncode == 0, (tmp_path / f"out{attempt}.txt").read_text()
        else:
            assert proc.wait(timeout=300) == 0, (tmp_path / f"out{attempt}.txt").read_text()
    text = (tmp_path / f"out{kills}.txt").read_text()
    result = json.loads(text.split("RESULT ", 1)[1])
    return result, _events(log), ledger(str(tmp_path / "tuner" / "p"))


def _check_every_trial_once(result, events, records, max_trials):
    created = [r for r in records if r["event"] == "created"]
    finished = [r for r in records if r["event"] == "finished"]
    assert len(created) == max_trials == len({r["trial_id"] for r in finished})
    assert len(finished) == max_trials  # none recorded twice
    assert all(r["status"] == "COMPLETED" for r in finished)
    ends = [e["key"] for e in events if e["event"] == "fit_end"]
    for r in created:  # every trial trained to its end exactly once: none re-run
        assert ends.count(key(r["values"])) == 1, (r, ends)
    begins = [e["key"] for e in events if e["event"] == "fit_begin"]
    assert len(begins) >= len(ends)  # trials killed while training ran again
    best = max(finished, key=lambda r: max(r["metrics"]["val_accuracy"]))
    best_values = next(r["values"] for r in created if r["trial_id"] == best["trial_id"])
    assert result["best_depth"] == best_values["depth"]


def test_sigkill_then_resume_loses_nothing_and_reruns_nothing(tmp_path):
    # trials in the search's own process here (faster); the slow tests use workers
    result, events, records = _kill_and_resume(tmp_path, "grid", seed=0, kills=1,
                                               max_trials=3, isolate=False)
    _check_every_trial_once(result, events, records, 3)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm, seed, isolate, jobs", [
    ("random", 1, True, 1), ("random", 2, True, 2), ("grid", 3, False, 1),
    ("bayesian", 4, False, 1), ("hyperband", 5, True, 2)])
def test_sigkill_at_random_points_several_seeds(tmp_path, algorithm, seed, isolate, jobs):
    """Trials in this process, in one worker, and two side by side (jobs=2)."""
    result, events, records = _kill_and_resume(tmp_path, algorithm, seed, kills=2,
                                               max_trials=4, isolate=isolate, jobs=jobs)
    _check_every_trial_once(result, events, records, 4)


@pytest.mark.slow
def test_three_processes_on_one_folder_run_every_trial_once(tmp_path):
    log = str(tmp_path / "fits.jsonl")
    cfg = {"out_dir": str(tmp_path / "tuner" / "p"), "log": log, "max_trials": 6,
           "epochs": 1, "algorithm": "random"}
    procs = [_child(cfg, tmp_path / f"out{i}.txt") for i in range(3)]
    for i, proc in enumerate(procs):
        assert proc.wait(timeout=300) == 0, (tmp_path / f"out{i}.txt").read_text()
    results = [json.loads((tmp_path / f"out{i}.txt").read_text().split("RESULT ", 1)[1])
               for i in range(3)]
    events = _events(log)
    ends = [e["key"] for e in events if e["event"] == "fit_end"]
    assert len(ends) == len(set(ends)) == 6
    assert len({e["pid"] for e in events}) >= 2  # the work was shared
    assert sum(len(r["ran"]) for r in results) == 6
    assert len({(r["best_l2"], r["best_depth"]) for r in results}) == 1
    _check_every_trial_once(results[0], events, ledger(str(tmp_path / "tuner" / "p")), 6)
