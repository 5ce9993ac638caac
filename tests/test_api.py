"""One way to say each thing: the command line and the Python API agree.

- each command's options are its function's parameters (a test lists any difference);
- every option's --help shows its default;
- exit codes mean something: 2 before the work, 1 during it, 130 for Ctrl-C;
- one name per concept in the public signatures (no 0.2 spelling left);
- Keras' own words are accepted (optimizer and metric objects).
"""

import argparse
import dataclasses
import inspect

import keras
import numpy as np
import pytest

import keras_resnet as kr
from keras_resnet import cli
from keras_resnet.cli import main

#: CLI option -> the function parameter it sets (where the names differ).
RENAMED = {"out": "out_dir", "job_addresses": "distribute", "num_processes": "distribute",
           "process_id": "distribute", "connect_timeout": "distribute"}
#: Options of the command line only (how to print, or a flag the command turns into
#: an object): option -> why.
CLI_ONLY = {"debug", "config", "func", "command", "plain", "top", "labels"}
#: Parameters a command line cannot give (Python objects): parameter -> why.
PYTHON_ONLY = {"y", "validation_data", "callbacks", "hyperparameters",
               "representative_data"}
#: The data options are load_data's arguments.
DATA_OPTIONS = {"data", "image_size", "validation_split", "color_mode", "skip_bad_files"}


def options(command, *argv):
    ns = main_parser().parse_args([command, *argv])
    return set(vars(ns))


def main_parser():
    return cli.make_parser()


def parameters(fn, recipe=False):
    names = {p.name for p in inspect.signature(fn).parameters.values()
             if p.kind is not inspect.Parameter.VAR_KEYWORD}
    if recipe:
        names |= {f.name for f in dataclasses.fields(kr.Recipe)}
    return names


@pytest.mark.parametrize("command, fn, recipe, argv", [
    ("train", "train", True, ["--out", "x"]),
    ("compare", "compare", True, []),
    ("tune", "tune", True, []),
    ("export", "export", False, []),
])
def test_each_command_has_its_functions_parameters(command, fn, recipe, argv):
    given = options(command, *argv) - CLI_ONLY
    given = {RENAMED.get(o, o) for o in given}
    python_only = set(PYTHON_ONLY)
    if command == "export":  # --data gives both the calibration and the validation data
        given = {"filepath" if o == "out_dir" else o for o in given} - {"data"}
        given |= {"representative_data", "validation_data"}
        python_only -= {"representative_data", "validation_data"}
    wanted = parameters(getattr(kr, fn), recipe) - python_only
    if command != "export":
        wanted |= DATA_OPTIONS
    missing = sorted(wanted - given)
    extra = sorted(given - wanted - DATA_OPTIONS)
    assert not missing and not extra, (
        f"keras-resnet {command} lacks options for {missing}; its options {extra} are no "
        f"parameter of kr.{fn}")


def _help_entries(text):
    """{option flag: its help text} of an argparse --help output."""
    entries, flag = {}, None
    for line in text.splitlines():
        stripped = line.strip()
        if line.startswith("  -") and not line.startswith("   "):
            flag = stripped.split()[0].rstrip(",")
            entries[flag] = stripped
        elif flag and line.startswith("    ") and stripped:
            entries[flag] += " " + stripped
        else:
            flag = None
    return entries


@pytest.mark.parametrize("command", ["summary", "presets", "train", "compare", "tune",
                                     "export", "predict"])
def test_help_shows_every_default(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    entries = _help_entries(text)
    ns = main_parser().parse_args([command] + (["--out", "x"] if command == "train" else [])
                                  + (["m.keras", "i.png"] if command == "predict" else []))
    for name, value in vars(ns).items():
        if value in (None, False, argparse.SUPPRESS) or name in (
                "func", "command", "images", "isolate", "verify", "out", "model"):
            continue
        flag = "--" + name.replace("_", "-")
        if flag in entries:
            assert "(default:" in entries[flag], f"{command} {flag}: no default shown"
    assert len(entries) > 3 and "exit codes:" in text and "130" in text


def test_recipe_defaults_are_the_commands_own(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--epochs EPOCHS epochs in total (default: 20)" in text  # the main job's
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--epochs EPOCHS epochs in total (default: 30)" in text  # kr.Recipe()'s


def test_debug_and_config_anywhere(tmp_path, capsys):
    with pytest.raises(ValueError, match="neither a spec file nor a preset"):
        main(["summary", "cifar_resnet2", "--debug"])
    with pytest.raises(ValueError):
        main(["--debug", "summary", "cifar_resnet2"])
    config = tmp_path / "c.json"
    config.write_text('{"input-shape": [16, 16, 3], "classes": 5}')
    assert main(["summary", "cifar_resnet20", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "4x4x64" in out and "325" in out  # 64 * 5 + 5 in the head
    config.write_text('{"epochz": 3}')
    assert main(["summary", "cifar_resnet20", "--config", str(config)]) == 2
    assert "epochz are not options of summary" in capsys.readouterr().err


# -------------------------------------------------------------------- exit codes
def test_exit_2_for_input_errors_before_the_work(tmp_path, capsys):
    cases = [
        (["summary", "cifar_resnet2"], "neither a spec file nor a preset"),
        (["train", "cifar_resnet20", "--out", str(tmp_path / "r"), "--data", "nowhere"],
         "data source must be"),
        (["train", "cifar_resnet20", "--out", str(tmp_path / "r"), "--epochs", "0"],
         "epochs must be >= 1"),
        (["export", "cifar_resnet20", "--out", str(tmp_path / "m.keras")],
         "needs a trained model"),
        (["predict", str(tmp_path / "none.keras"), "x.png"], "does not exist"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("keras-resnet: error: ") and message in err, (argv, err)
        assert err.count("\n") == 1  # one line
    with pytest.raises(SystemExit) as e:
        main(["train", "--epochs", "x"])  # argparse's own usage error
    assert e.value.code == 2


def test_exit_1_for_a_failure_during_the_work(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "tiny.json"
    kr.ModelSpec(input_shape=(8, 8, 1), stem=kr.StemSpec(4, 3, 1, pool=None),
                 blocks=[kr.BlockSpec("basic", 4)], classes=10, name="tiny").save(spec)

    class Breaks(keras.callbacks.Callback):  # a ValueError from deep inside training
        def on_epoch_end(self, epoch, logs=None):
            raise ValueError("something inside fit broke")

    real = kr.Recipe.callbacks
    monkeypatch.setattr(kr.Recipe, "callbacks", lambda self: real(self) + [Breaks()])
    assert main(["train", str(spec), "--epochs", "1", "--batch-size", "256",
                 "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err == "keras-resnet: error: something inside fit broke\n"


def test_exit_130_for_ctrl_c(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(kr, "train", interrupted)
    assert main(["train", "cifar_resnet20", "--out", str(tmp_path / "r")]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_ctrl_c_in_kr_train_raises_keyboard_interrupt_and_the_run_resumes(tmp_path):
    """Library code never ends the process: Ctrl-C in a one-process kr.train is a
    KeyboardInterrupt, as Python users expect; the backup of the finished epoch stays."""
    spec = kr.ModelSpec(input_shape=(8, 8, 1), stem=kr.StemSpec(4, 3, 1, pool=None),
                        blocks=[kr.BlockSpec("basic", 4)], classes=10, name="tiny")

    class CtrlC(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    out = str(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        kr.train(spec, "digits", epochs=2, batch_size=256, out_dir=out, verbose=0,
                 callbacks=[CtrlC()])
    assert kr.RunFolder(out).status() == "unfinished" and kr.RunFolder(out).backup_epoch() == 1
    result = kr.train(spec, "digits", epochs=2, batch_size=256, out_dir=out, verbose=0)
    assert len(result.history["loss"]) == 2 and kr.RunFolder(out).status() == "finished"


# ---------------------------------------------------------- one name per concept
#: 0.2 spellings that must not appear in 0.3's public signatures.
OLD = {"directory": "out_dir", "project_name": "out_dir", "path": "filepath",
       "num_classes": "classes", "residual": "spec.residual", "base": "model"}


def _public_callables():
    """The public functions, and the classes that take workflow arguments (specs,
    results and the run folder itself describe, they take no output location)."""
    for name in kr.__all__:
        obj = getattr(kr, name)
        if inspect.isfunction(obj) or name in ("Recipe", "EpochBackup"):
            yield name, obj
    from keras_resnet import tuning

    for name in ("tune", "ResNetHyperModel", "spec_for"):
        yield f"tuning.{name}", getattr(tuning, name)


def test_public_signatures_use_one_name_per_concept():
    bad = []
    for name, obj in _public_callables():
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            continue
        for p in params:
            if p in OLD:
                bad.append(f"{name}({p}=): use {OLD[p]}")
        if "verbose" in params:
            assert params["verbose"].default == "auto", f"{name}: verbose defaults to auto"
        for out in ("out_dir", "filepath"):
            if out in params:
                assert not {"directory", "path"} & set(params), name
    assert not bad, bad


def test_renamed_keywords_fail_naming_the_replacement():
    """A keyword deprecated in 0.3 is refused with its replacement: a keyword name (with
    or without its "=") is said as `name=`, anything else as it is."""
    from keras_resnet._checks import InvalidInputType, renamed

    @renamed(path="filepath", target="out=", residual="spec.replace(residual=...)")
    def save(spec=None, filepath=None, out=None):
        return filepath

    assert save(filepath="a") == "a" and list(inspect.signature(save).parameters) == [
        "spec", "filepath", "out"]  # the public signature says the new names only
    for kwargs, hint in [({"path": "a"}, "filepath="), ({"target": "a"}, "out="),
                         ({"residual": False}, "spec.replace(residual=...)"),
                         ({"path": "a", "filepath": "b"}, "filepath=")]:
        old = next(iter(kwargs))
        with pytest.raises(InvalidInputType) as e:
            save(**kwargs)
        assert str(e.value) == (f"save({old}=...) was deprecated in 0.3 and is removed; "
                                f"use {hint}")
    assert issubclass(InvalidInputType, TypeError)


def test_keras_objects_are_accepted_where_names_are(tmp_path):
    recipe = kr.Recipe(optimizer=keras.optimizers.AdamW(3e-4, weight_decay=0.05),
                       metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(
                           k=2, name="top2")], epochs=1, batch_size=256)
    assert recipe.learning_rate == pytest.approx(3e-4)  # the optimizer's own rate
    again = kr.Recipe.from_dict(recipe.to_dict())
    assert again == recipe and again.to_dict()["optimizer"]["class_name"] == "AdamW"
    spec = kr.ModelSpec(input_shape=(8, 8, 1), stem=kr.StemSpec(4, 3, 1, pool=None),
                        blocks=[kr.BlockSpec("basic", 4)], classes=10)
    result = kr.train(spec, "digits", recipe=recipe, verbose=0)
    assert isinstance(result.model.optimizer, keras.optimizers.AdamW)
    assert float(result.model.optimizer.weight_decay) == pytest.approx(0.05)
    assert "top2" in result.history and "accuracy" in result.history
    assert kr.Recipe(optimizer="adam").learning_rate == 1e-3  # the optimizer's default
    assert kr.Recipe().replace(optimizer="adam").learning_rate == 1e-3
    with pytest.raises(TypeError, match="optimizer must be a name or a Keras object"):
        kr.Recipe(optimizer=3)


def test_train_takes_arrays_as_fit_does():
    data = kr.load_data("digits")
    (x, y), (xv, yv) = data.train, data.validation
    spec = kr.ModelSpec(input_shape=(8, 8, 1), stem=kr.StemSpec(4, 3, 1, pool=None),
                        blocks=[kr.BlockSpec("basic", 4)], classes=10)
    result = kr.train(spec, x, y, validation_data=(xv, yv), epochs=2, batch_size=128,
                      verbose=0)
    same = kr.train(spec, kr.Data.from_arrays(x, y, (xv, yv)), epochs=2, batch_size=128,
                    verbose=0)
    assert result.history == same.history and "val_accuracy" in result.history
    with pytest.raises(TypeError, match="y must hold the integer labels"):
        kr.train(spec, x, epochs=1)


def test_plot_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "net.png"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="already exists"):
        kr.plot("cifar_resnet20", path)
    assert path.read_bytes() == b"precious"
    kr.plot("cifar_resnet20", path, overwrite=True)
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(TypeError, match=r"plot\(path=\.\.\.\) was deprecated in 0\.3 and is "
                       r"removed; use filepath=$"):
        kr.plot("cifar_resnet20", path=str(tmp_path / "old.png"))
    assert not (tmp_path / "old.png").exists()


def test_removed_names_say_what_to_use():
    with pytest.raises(AttributeError, match=r"removed in 0\.3; use kr\.as_spec"):
        kr.residual_of  # noqa: B018
    with pytest.raises(AttributeError, match=r"presets\.names\(\)"):
        kr.presets.list  # noqa: B018
    with pytest.raises(TypeError, match=r"residual=\.\.\.\) was removed in 0\.3"):
        kr.build("cifar_resnet20", residual=False)
    with pytest.raises(TypeError, match="train\\(\\) got residual="):
        kr.train("cifar_resnet20", residual=False)
    # deprecated in 0.3, removed since: the error names the replacement
    with pytest.raises(AttributeError, match=r"^Data\.num_classes was deprecated in 0\.3 and "
                       r"is removed; use Data\.classes$"):
        kr.load_data("digits").num_classes  # noqa: B018
    with pytest.raises(AttributeError, match=r"^keras_resnet\.compile_model was deprecated in "
                       r"0\.3 and is removed; use kr\.Recipe\(optimizer=\.\.\., "
                       r"learning_rate=\.\.\.\)\.compile\(model\)$"):
        kr.compile_model  # noqa: B018
    assert "compile_model" not in kr.__all__ and "compile_model" not in dir(kr)
    with pytest.raises(AttributeError, match=r"^keras_resnet\.serving\.load_image was "
                       r"deprecated in 0\.3 and is removed; use kr\.load_image\(filepath, "
                       r"model\), which applies the model's recorded preprocessing$"):
        kr.serving.load_image  # noqa: B018
    assert "load_image" not in kr.serving.__all__


def test_the_plain_twin_one_documented_way():
    spec = kr.presets.get("cifar_resnet20")
    a = kr.build_plain(spec)
    b = kr.build(spec.replace(residual=False))
    assert kr.spec_of(a).residual is False and kr.spec_of(b).residual is False
    assert [w.shape for w in a.weights] == [w.shape for w in b.weights]
    assert kr.spec_of(a).name == "cifar_plain20"
    with pytest.raises(AttributeError, match=r"presets\.with_residual was deprecated in 0\.3 "
                       r"and is removed; use kr\.build_plain\(spec\)"):
        kr.presets.with_residual  # noqa: B018
    assert np.isfinite(kr.flops(spec.replace(residual=False)))
