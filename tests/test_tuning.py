"""KerasTuner integration: hyperparameters, spec_for, search, resume after kills, distributed."""

import glob
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import keras
import keras_tuner as kt
import numpy as np
import pytest

import keras_resnet as kr
from keras_resnet import tuning
from keras_resnet.cli import main

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CHILD = os.path.join(HERE, "_tune_child.py")
sys.path.insert(0, HERE)
from _tune_child import tiny_data, tiny_spec  # noqa: E402


def cifar8(**changes):
    """The CIFAR ResNet-20 preset on 8x8x1 digits."""
    return kr.presets.get("cifar_resnet20").replace(input_shape=(8, 8, 1), **changes)


def space_of(hm):
    hp = kt.HyperParameters()
    hm.declare_hyperparameters(hp)
    return {h.name: h for h in hp.space}


def repeats(spec):
    return [b.repeat for b in spec.blocks if isinstance(b, kr.BlockSpec)]


def disk_trials(project_dir):
    """{trial_id: trial state} as the tuner wrote them."""
    out = {}
    for path in glob.glob(os.path.join(project_dir, "trial_*", "trial.json")):
        with open(path) as fh:
            state = json.load(fh)
        out[state["trial_id"]] = state
    return out


def completed_on_disk(project_dir):
    return {tid: s for tid, s in disk_trials(project_dir).items() if s["status"] == "COMPLETED"}


def key(values):
    return json.dumps({k: v for k, v in values.items() if not k.startswith("tuner/")},
                      sort_keys=True)


@pytest.fixture
def fits(monkeypatch):
    """Records the hyperparameter values of every fit the HyperModel runs."""
    log = []
    real = tuning.ResNetHyperModel.fit

    def fit(self, hp, model, *args, **kwargs):
        log.append(key(hp.values))
        return real(self, hp, model, *args, **kwargs)

    monkeypatch.setattr(tuning.ResNetHyperModel, "fit", fit)
    return log


def train_like_a_trial(spec, data, epochs, seed=0):
    """What a trial does, without the tuner: seed, build, compile, fit; best val_accuracy."""
    keras.backend.clear_session(free_memory=True)
    keras.utils.set_random_seed(seed)
    model = kr.build_resnet(spec)
    kr.compile_model(model, "sgd", 0.1, 0.9)
    (x, y) = data.train
    history = model.fit(x, y, validation_data=data.validation, epochs=epochs,
                        batch_size=128, verbose=0)
    return max(history.history["val_accuracy"])


# ------------------------------------------------------------ hyperparameters
def test_default_space_is_depth_and_log_l2_and_builds_compiled():
    hm = tuning.ResNetHyperModel(cifar8())
    space = space_of(hm)
    assert list(space) == ["depth", "l2"]
    assert space["depth"].values == [1, 2, 3, 5, 7]  # n of ResNet-8/14/20/32/44
    assert space["depth"].default == 3
    l2 = space["l2"].get_config()
    assert (l2["min_value"], l2["max_value"], l2["sampling"]) == (1e-6, 1e-2, "log")
    hp = kt.HyperParameters()
    hp.values.update({"depth": 5, "l2": 3e-4})
    model = hm.build(hp)
    spec = kr.spec_of(model)
    assert repeats(spec) == [5, 5, 5] and spec.l2 == 3e-4
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1)
    convs = [lay for lay in model.layers if isinstance(lay, keras.layers.Conv2D)]
    assert len(convs) + 1 == 6 * 5 + 2  # depth 5 is the paper's ResNet-32
    assert all(float(c.kernel_regularizer.l2) == pytest.approx(3e-4) for c in convs)


def test_every_hyperparameter_has_its_name_and_default_range():
    hm = tuning.ResNetHyperModel(cifar8(), width=True, shortcut=True, block_type=True,
                                 learning_rate=True, optimizer=True, batch_size=True,
                                 epochs=[1, 2], allow_zero_l2=True)
    space = space_of(hm)
    assert list(space) == ["depth", "use_l2", "l2", "width", "shortcut", "block_type",
                           "learning_rate", "optimizer", "batch_size", "epochs"]
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
    assert space["optimizer"].value == "adam" and space["learning_rate"].value == 0.01
    assert "shortcut" not in space
    hp = kt.HyperParameters()
    hp.values.update({"l2": 1e-4, "width": 2.0})
    model = hm.build(hp)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)
    assert kr.spec_of(model).stem.filters == 32
    ints = space_of(tuning.ResNetHyperModel(cifar8(), depth={"min": 1, "max": 4}))
    assert type(ints["depth"]).__name__ == "Int"
    assert (ints["depth"].min_value, ints["depth"].max_value) == (1, 4)
    assert "depth" not in space_of(tuning.ResNetHyperModel(cifar8(), depth=False))
    # the learning rate follows the optimizer when it is neither fixed nor searched
    hm = tuning.ResNetHyperModel(cifar8(), optimizer="adam")
    assert hm.training_values({"optimizer": "adam"})["learning_rate"] == 1e-3


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
    hp = kt.HyperParameters()
    hm.declare_hyperparameters(hp)
    hp.values["use_l2"] = False
    model = hm.build(hp)
    assert kr.spec_of(model).l2 == 0.0 and not hp.is_active("l2")
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
    ({"seed": -1}, ValueError, r"seed must be >= 0"),
])
def test_hypermodel_rejects_bad_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        tuning.ResNetHyperModel(cifar8(), **kwargs)


def test_hypermodel_rejects_a_space_with_invalid_networks():
    shrinking = kr.ModelSpec(input_shape=(8, 8, 1), stem=None, classes=2, shortcut="B",
                             blocks=[kr.BlockSpec("basic", 32), kr.BlockSpec("basic", 16,
                                                                              strides=2)])
    with pytest.raises(ValueError,
                       match=r"invalid network \(depth=1, shortcut='A'\): .*cannot reduce"):
        tuning.ResNetHyperModel(shrinking, shortcut=["A", "B"])
    assert space_of(tuning.ResNetHyperModel(shrinking, shortcut=True))["shortcut"].values == [
        "B", "C", "D"]  # True offers only the options valid for this base
    mlp = kr.ModelSpec(input_shape=(64,), stem=None, classes=10,
                       blocks=[kr.BlockSpec("dense", 32, repeat=2)])
    with pytest.raises(ValueError, match="block_type needs a base with"):
        tuning.ResNetHyperModel(mlp, block_type=True)


@pytest.mark.parametrize("kwargs, exc, pattern", [
    ({"algorithm": "grid"}, ValueError, r"algorithm must be one of 'hyperband', 'random'"),
    ({"max_trials": 0}, ValueError, r"max_trials must be >= 1"),
    ({"epochs": 0}, ValueError, r"epochs must be >= 1"),
    ({"epochs": [1, 2], "algorithm": "hyperband"}, TypeError, r"epochs must be one number"),
    ({"objective": "f1"}, ValueError, r"objective must be one of"),
    ({"project_name": "a/b"}, ValueError, r"project_name must be a folder name"),
    ({"overwrite": "yes"}, TypeError, r"overwrite must be True or False"),
    ({"verbose": 3}, ValueError, r"verbose must be one of"),
    ({"validation_data": None}, ValueError, r"'val_accuracy' needs validation data"),
    ({"y": np.zeros(300)}, ValueError, r"y must hold integer class labels"),
    ({"depth": 0}, ValueError, r"depth must be >= 1"),
])
def test_tune_rejects_bad_arguments_before_any_work(tmp_path, kwargs, exc, pattern):
    x, y, val = tiny_data()
    args = dict(validation_data=val, directory=str(tmp_path / "tuner"), algorithm="random")
    args.update(kwargs)
    y = args.pop("y", y)
    with pytest.raises(exc, match=pattern):
        tuning.tune(tiny_spec(), x, y, **args)
    assert not os.path.exists(tmp_path / "tuner")


def test_tune_never_deletes_or_resumes_a_folder_that_is_not_a_tuner_project(tmp_path):
    x, y, val = tiny_data()
    project = tmp_path / "tuner" / "mine"
    project.mkdir(parents=True)
    (project / "notes.txt").write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="'notes.txt', which a tuner does not write"):
            tuning.tune(tiny_spec(), x, y, validation_data=val, algorithm="random",
                        directory=str(tmp_path / "tuner"), project_name="mine",
                        overwrite=overwrite)
    assert (project / "notes.txt").read_text() == "precious"


def test_resume_with_a_different_search_is_refused(tmp_path):
    x, y, val = tiny_data()
    project = tmp_path / "tuner" / "p"
    project.mkdir(parents=True)
    (project / "tune_config.json").write_text(json.dumps({"algorithm": "bayesian"}))
    with pytest.raises(ValueError, match=r"different .*algorithm.*overwrite=True"):
        tuning.tune(tiny_spec(), x, y, validation_data=val, algorithm="random",
                    directory=str(tmp_path / "tuner"), project_name="p")


def test_keras_tuner_internals_this_module_relies_on():
    # The resumable oracle and the tuner override these (KerasTuner 1.4.x); a
    # KerasTuner that renames them must fail here, not silently lose results.
    for name in ("_save_trial", "_get_oracle_fname", "_get_trial_dir", "reload", "set_state",
                 "end_trial", "start_order", "_retry_queue", "_display"):
        assert hasattr(kt.oracles.RandomSearchOracle(max_trials=1), name), name
    for name in ("_build_and_fit_model", "_try_build", "_build_hypermodel",
                 "_get_build_config_fname", "_get_tuner_fname", "_is_worker"):
        assert hasattr(kt.Tuner, name), name
    from keras_tuner.src.distribute.oracle_chief import OracleServicer, exit_chief  # noqa: F401


# ---------------------------------------------------------------- searching
def test_search_exports_a_best_spec_that_rebuilds_and_reproduces(tmp_path):
    data = kr.load_data("digits")
    base = tuning.spec_for(cifar8(l2=1e-4), {"depth": 2})  # ResNet-14, L2 1e-4
    best, tuner = tuning.tune(base, data, algorithm="random", max_trials=4, epochs=2,
                              directory=str(tmp_path), project_name="search",
                              depth=[1, 2], l2=[1e-4, 1e-2], verbose=0)
    trials = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    assert sorted(key(t.hyperparameters.values) for t in trials) == sorted(
        key({"depth": d, "l2": v}) for d in (1, 2) for v in (1e-4, 1e-2))
    top = tuner.oracle.get_best_trials(1)[0]
    assert top.score == max(t.score for t in trials)
    assert best == tuning.spec_for(base, top.hyperparameters.values)
    assert best.l2 == top.hyperparameters.values["l2"]
    assert tuning.base_depth(best) == top.hyperparameters.values["depth"]
    path = tmp_path / "search" / "best_spec.json"
    assert tuner.best_spec_path == str(path)
    loaded = kr.ModelSpec.load(path)
    assert loaded == best
    rebuilt = kr.build_resnet(str(path))
    trial_model = tuner.hypermodel.build(top.hyperparameters.copy())
    assert rebuilt.count_params() == trial_model.count_params()
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in trial_model.weights]
    saved = json.loads((tmp_path / "search" / "best_hyperparameters.json").read_text())
    assert saved["trial_id"] == top.trial_id and saved["score"] == pytest.approx(top.score)
    # Training the rebuilt spec as a trial does gives the trial's score, and the
    # search's best is at least as good as the base trained the same way.
    assert train_like_a_trial(loaded, data, epochs=2) == pytest.approx(top.score, abs=0.01)
    base_trial = next(t for t in trials if key(t.hyperparameters.values) == key(
        {"depth": 2, "l2": 1e-4}))
    base_score = train_like_a_trial(base, data, epochs=2)
    assert base_score == pytest.approx(base_trial.score, abs=0.01)
    assert top.score >= base_score - 1e-6
    table = tuning.results_table(tuner)
    assert table.splitlines()[0].split() == ["rank", "trial", "depth", "blocks", "l2",
                                             "val_accuracy"]
    assert f"{top.score:.4f}" in table.splitlines()[2]


def test_hyperband_resumes_and_continues_from_checkpoints(tmp_path, fits, monkeypatch):
    def in_place(path, obj):
        raise AssertionError(f"{path} written in place, not atomically")

    monkeypatch.setattr(kt.src.utils, "save_json", in_place)  # KerasTuner's own writer
    registry = tuning._tf_gradient_registry() or {}  # TensorFlow's; none on JAX
    leaked_before = [k for k in registry if str(k).startswith("CustomGradient-")]
    x, y, val = tiny_data()
    args = dict(validation_data=val, algorithm="hyperband", epochs=3, hyperband_factor=3,
                directory=str(tmp_path), project_name="hb", verbose=0)
    _, tuner = tuning.tune(tiny_spec(), x, y, max_trials=2, **args)
    assert len(fits) == 2 and len(tuner.oracle.trials) == 2
    first = {t.trial_id: t.score for t in tuner.oracle.trials.values()}
    _, tuner = tuning.tune(tiny_spec(), x, y, max_trials=4, **args)
    assert len(fits) == 4  # only the two new trials ran
    trials = tuner.oracle.trials
    assert {tid: trials[tid].score for tid in first} == first
    assert all(t.status == "COMPLETED" for t in trials.values())
    # the last round continues the best first-round (1-epoch) trial from its checkpoint
    last = trials[sorted(trials)[-1]].hyperparameters.values
    assert last["tuner/epochs"] == 3 and last["tuner/initial_epoch"] == 1
    round0 = {tid: t.score for tid, t in trials.items()
              if t.hyperparameters.values["tuner/epochs"] == 1}
    assert len(round0) == 3 and set(first) <= set(round0)
    assert round0[last["tuner/trial_id"]] == max(round0.values())
    _, tuner = tuning.tune(tiny_spec(), x, y, max_trials=4, **args)
    assert len(fits) == 4  # a finished search runs nothing
    _, tuner = tuning.tune(tiny_spec(), x, y, max_trials=1, overwrite=True, **args)
    assert len(fits) == 5 and list(tuner.oracle.trials) == ["0"]
    # TensorFlow's gradient registry keeps no traced train step (memory stays flat)
    assert [k for k in registry if str(k).startswith("CustomGradient-")] == leaked_before


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, files written so far stay."""


def _crash_on(monkeypatch, target, nth):
    """Kill the search instead of the nth write of ``target`` (a path suffix)."""
    real = tuning._write_json
    seen = []

    def write(path, obj):
        if path.replace(os.sep, "/").endswith(target):
            seen.append(path)
            if len(seen) == nth:
                raise _Killed(path)
        return real(path, obj)

    monkeypatch.setattr(tuning, "_write_json", write)
    return real


def _kill_and_resume(tmp_path, monkeypatch, fits, target, nth):
    x, y, val = tiny_data()
    args = dict(validation_data=val, algorithm="random", max_trials=2, epochs=1,
                directory=str(tmp_path), project_name="k", depth=[1, 2, 3], verbose=0)
    real = _crash_on(monkeypatch, target, nth)
    with pytest.raises(_Killed):
        tuning.tune(tiny_spec(), x, y, **args)
    project = str(tmp_path / "k")
    for path in glob.glob(os.path.join(project, "**", "*.json"), recursive=True):
        with open(path) as fh:
            json.load(fh)  # every state file is whole
    # SIGKILL during an atomic write leaves its temporary folder behind: harmless
    os.makedirs(os.path.join(project, ".oracle.json.tmp-killed"))
    with open(os.path.join(project, ".oracle.json.tmp-killed", "oracle.json"), "w") as fh:
        fh.write('{"ongoing_tr')
    done = completed_on_disk(project)
    fitted_before = list(fits)
    monkeypatch.setattr(tuning, "_write_json", real)
    _, tuner = tuning.tune(tiny_spec(), x, y, **args)
    trials = tuner.oracle.trials
    assert sorted(trials) == ["0", "1"]
    assert all(t.status == "COMPLETED" for t in trials.values())
    assert sorted(tuner.oracle.end_order) == ["0", "1"]
    fitted_after = fits[len(fitted_before):]
    for tid, state in done.items():  # finished before the kill: never run again
        assert key(state["hyperparameters"]["values"]) not in fitted_after, tid
        assert trials[tid].score == state["score"]
    for t in trials.values():  # every trial's result comes from exactly one finished fit
        assert key(t.hyperparameters.values) in fits
    return tuner.oracle.resume_report, fitted_before, fitted_after, trials


# (file, nth write that the kill replaces, what the reload must do with trial 1)
# Writes per trial: trial.json at create, update and end; oracle.json at create,
# end and the tuner's save; tuner0.json at the tuner's save.
KILLS_FAST = [
    ("oracle.json", 5, "finished"),         # trial 1 COMPLETED on disk, oracle stale
    ("trial_1/trial.json", 3, "finished"),  # trial 1's result recorded, not ended
    ("tuner0.json", 1, None),               # trial 0 ended; the tuner file never written
]
KILLS_SLOW = [
    ("oracle.json", 4, "dropped"),          # trial_1/trial.json created, oracle unaware
    ("oracle.json", 6, None),               # oracle saved by end_trial, not by the tuner
    ("trial_1/trial.json", 2, "rerun"),     # fit done, result not recorded: run again
    ("build_config.json", 2, "rerun"),      # killed at the end of trial 1's fit
]


@pytest.mark.parametrize("target, nth, expect", KILLS_FAST)
def test_kill_between_state_writes_loses_nothing_and_reruns_nothing(
        tmp_path, monkeypatch, fits, target, nth, expect):
    report, before, after, trials = _kill_and_resume(tmp_path, monkeypatch, fits, target, nth)
    assert report == {"dropped": [], "finished": ["1"] if expect else [], "rerun": []}
    assert after == ([] if expect else [key(trials["1"].hyperparameters.values)])
    assert len(before) == (2 if expect else 1)


@pytest.mark.slow
@pytest.mark.parametrize("target, nth, expect", KILLS_SLOW)
def test_kill_between_state_writes_all_windows(tmp_path, monkeypatch, fits, target, nth,
                                               expect):
    report, before, after, trials = _kill_and_resume(tmp_path, monkeypatch, fits, target, nth)
    one = key(trials["1"].hyperparameters.values)
    if expect is None:
        assert report == {"dropped": [], "finished": [], "rerun": []} and after == []
    else:
        assert report[expect] == ["1"]
        assert after == [one]  # trial 1 had not finished: it runs (once more)


def test_cli_tune_prints_progress_and_the_table(tmp_path, capsys):
    code = main(["tune", "--base", "cifar_resnet20", "--data", "digits", "--max-trials", "2",
                 "--epochs", "1", "--algorithm", "random", "--depth", "1",
                 "--l2", "1e-4,1e-2", "--directory", str(tmp_path), "--project-name", "cli"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert len([line for line in out.splitlines() if line.startswith("[tune] trial")]) == 2
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("rank"))
    assert lines[head].split() == ["rank", "trial", "depth", "blocks", "l2", "val_accuracy"]
    rows = [line.split() for line in lines[head + 2:head + 4]]
    assert [r[2] for r in rows] == ["1", "1"] and {r[4] for r in rows} == {"0.0001", "0.01"}
    assert "2 completed, 0 failed" in out
    assert os.path.exists(tmp_path / "cli" / "best_spec.json")
    assert main(["tune", "--base", "cifar_resnet20", "--max-trials", "0",
                 "--directory", str(tmp_path)]) == 2
    assert "max_trials must be >= 1" in capsys.readouterr().err


# ----------------------------------------------------------- real processes
def _run_child(cfg, env, out_path):
    with open(out_path, "ab") as out:
        return subprocess.Popen([sys.executable, CHILD, json.dumps(cfg)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def _stop(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


def _log_events(path):
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.mark.slow
def test_sigkill_at_random_points_resumes_without_rerunning_finished_trials(tmp_path):
    seed = int(os.environ.get("KR_KILL_SEED", time.time_ns() % 100000))
    rng = random.Random(seed)
    cfg = {"directory": str(tmp_path), "project": "killed", "max_trials": 8, "epochs": 2,
           "log": str(tmp_path / "fits.jsonl")}
    project = str(tmp_path / "killed")
    out_path = tmp_path / "out.txt"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    runs = []  # (pid, completed trials on disk right after its kill, or None)
    deadline = time.monotonic() + 600
    while True:
        assert time.monotonic() < deadline, f"seed {seed}: no end in sight"
        proc = _run_child(cfg, env, out_path)
        try:
            if len(runs) < 6:  # kill at startup (~5 s) or in a trial (~2 s each)
                try:
                    proc.wait(timeout=rng.uniform(1.5, 10.0))
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)
                    runs.append((proc.pid, completed_on_disk(project)))
                    continue
            else:
                proc.wait(timeout=300)
        finally:
            _stop(proc)
        runs.append((proc.pid, None))
        break
    output = out_path.read_text()
    assert proc.returncode == 0, f"seed {seed}:\n{output[-3000:]}"
    final = disk_trials(project)
    assert sorted(final) == [str(i) for i in range(8)], f"seed {seed}"
    assert all(s["status"] == "COMPLETED" for s in final.values()), f"seed {seed}"
    events = _log_events(cfg["log"])
    pids = [pid for pid, _ in runs]
    begun_by = {}
    for e in events:
        if e["event"] == "fit_begin":
            begun_by.setdefault(key(e["values"]), []).append(pids.index(e["pid"]))
    for i, (_pid, done) in enumerate(runs):
        for tid, state in (done or {}).items():
            k = key(state["hyperparameters"]["values"])
            later = [r for r in begun_by.get(k, []) if r > i]
            assert not later, f"seed {seed}: trial {tid}, finished before kill {i + 1}, ran again"
            assert final[tid]["score"] == state["score"], f"seed {seed}: result of {tid} changed"
    reruns = sum(len(v) - 1 for v in begun_by.values())
    assert reruns <= len(runs) - 1, f"seed {seed}: more re-runs than kills"
    print(f"\nkill test seed {seed}: {len(runs) - 1} kills, {reruns} re-run(s) of trials "
          "killed while training, 0 of finished trials")


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_distributed_chief_and_two_workers_finish_a_search(tmp_path):
    port = _free_port()
    cfg = {"directory": str(tmp_path), "project": "dist", "max_trials": 6, "epochs": 2,
           "n_train": 600}
    base_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERASTUNER_ORACLE_IP": "127.0.0.1",
                "KERASTUNER_ORACLE_PORT": str(port)}
    procs = {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            procs[tuner_id] = _run_child(cfg, {**base_env, "KERASTUNER_TUNER_ID": tuner_id},
                                         tmp_path / f"{tuner_id}.txt")
        deadline = time.monotonic() + 400
        for proc in procs.values():
            proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        for proc in procs.values():
            _stop(proc)
    outputs = {t: (tmp_path / f"{t}.txt").read_text() for t in procs}
    for tuner_id, proc in procs.items():
        assert proc.returncode == 0, f"{tuner_id}:\n{outputs[tuner_id][-3000:]}"
    final = disk_trials(str(tmp_path / "dist"))
    assert sorted(final) == [str(i) for i in range(6)]
    assert all(s["status"] == "COMPLETED" for s in final.values())
    ran = {t: [line.split()[2] for line in outputs[t].splitlines()
               if line.startswith("[tune] trial")] for t in ("tuner0", "tuner1")}
    assert ran["tuner0"] and ran["tuner1"], ran  # both workers ran trials
    assert sorted(ran["tuner0"] + ran["tuner1"]) == sorted(final)  # each trial once
    assert '"best_l2": null' in outputs["tuner0"] and '"best_l2": null' in outputs["tuner1"]
    assert '"best_l2": null' not in outputs["chief"]
    best = kr.ModelSpec.load(tmp_path / "dist" / "best_spec.json")
    top_score = max(s["score"] for s in final.values())
    winner = [s for s in final.values() if s["hyperparameters"]["values"]["l2"] == best.l2]
    assert len(winner) == 1 and winner[0]["score"] == top_score  # ties: any top trial


@pytest.mark.slow
def test_memory_does_not_grow_over_twenty_trials(tmp_path):
    x, y, val = tiny_data()
    _, tuner = tuning.tune(tiny_spec(), x, y, validation_data=val, algorithm="random",
                           max_trials=20, epochs=1, directory=str(tmp_path), verbose=0)
    rss = [tuner.trial_stats[t]["rss_mb"] for t in sorted(tuner.trial_stats, key=int)]
    assert len(rss) == 20
    # the first trials pay for TensorFlow's one-off allocations; after that, flat
    assert rss[-1] - rss[4] < 60, rss
