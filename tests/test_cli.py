"""The keras-resnet command."""

import subprocess
import sys

import pytest
from conftest import cifar_spec

import keras_resnet as kr
from keras_resnet.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"keras-resnet {kr.__version__}"


def test_summary_preset(capsys):
    assert main(["summary", "cifar_resnet20"]) == 0
    out = capsys.readouterr().out
    assert "cifar_resnet20: 269,722 trainable parameters" in out
    assert "A, identity\u00d72" in out
    assert main(["summary", "cifar_resnet20", "--plain"]) == 0
    assert "- (plain)" in capsys.readouterr().out


def test_summary_spec_file_with_overrides(tmp_path, capsys):
    path = tmp_path / "net.json"
    cifar_spec(shortcut="B").save(path)
    assert main(["summary", str(path), "--input-shape", "64,64,3", "--classes", "5"]) == 0
    out = capsys.readouterr().out
    assert "16x16x64" in out and "272,149" in out  # 272,474 - 65 * 5 classes


def test_errors_are_one_line_with_exit_2(tmp_path, capsys):
    assert main(["summary", "cifar_resnet2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("keras-resnet: error: spec 'cifar_resnet2' is neither")
    assert "did you mean 'cifar_resnet32'" in err and "Traceback" not in err
    bad = tmp_path / "bad.json"
    bad.write_text('{"blocks": [{"type": "basic", "filters": 0}]}')
    assert main(["summary", str(bad)]) == 2
    assert "blocks[0].filters must be >= 1. Received: filters=0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["summary", str(bad), "--input-shape", "a,b"])
    assert e.value.code == 2
    assert "must be comma-separated integers" in capsys.readouterr().err


def test_debug_shows_traceback():
    with pytest.raises(ValueError):
        main(["--debug", "summary", "cifar_resnet2"])


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "keras_resnet.cli", "--version"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("keras-resnet ")


def test_summary_shows_flops_per_stage(capsys):
    assert main(["summary", "resnet18"]) == 0
    out = capsys.readouterr().out
    assert "MFLOPs" in out
    assert "resnet18: 11,689,512 trainable parameters, 1.814 GFLOPs (multiply-adds)" in out


def test_presets_command(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("resnet18 ") and len(out) == len(kr.presets.names())


def test_train_export_predict_round_trip(tmp_path, capsys):
    """The user's path: train on digits, export a SavedModel, predict on image files."""
    import json

    import keras
    import numpy as np

    out = tmp_path / "run"
    assert main(["train", str(_small_spec(tmp_path)), "--data", "digits",
                 "--epochs", "2", "--batch-size", "64", "--out", str(out)]) == 0
    assert "final val_accuracy" in capsys.readouterr().out
    assert json.loads((out / "labels.json").read_text())[3] == "3"
    assert main(["train", str(tmp_path / "small.json"), "--out", str(out)]) == 2
    assert "already holds a finished run" in capsys.readouterr().err

    assert main(["export", str(out / "model.keras"), "--out", str(tmp_path / "sm"),
                 "--format", "saved_model"]) == 0
    line = capsys.readouterr().out
    assert "verified in a fresh process, max abs difference" in line
    assert main(["export", str(out / "model.keras"), "--out", str(tmp_path / "sm")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", str(out), "--out", str(tmp_path / "m.keras"), "--format", "keras",
                 "--no-verify"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and f"-> {tmp_path / 'm.keras'} (keras;" in captured.out
    assert (tmp_path / "m.keras").is_file()
    assert main(["export", str(out / "model.keras")]) == 2
    assert "export needs --out PATH" in capsys.readouterr().err

    data = kr.load_data("digits")
    images = []
    for i in range(3):
        path = tmp_path / f"digit{i}.png"
        keras.utils.save_img(str(path), (data.validation[0][i] * 255).astype("uint8"),
                             scale=False)
        images.append(str(path))
    assert main(["predict", str(out / "model.keras"), *images, "--top", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith(images[0] + ": ")
    probs = [float(p.split()[1]) for p in lines[0].split(": ", 1)[1].split(", ")]
    assert len(probs) == 2 and probs[0] >= probs[1] and 0 < sum(probs) <= 1.0001
    assert np.isfinite(probs).all()
    assert main(["predict", str(out / "model.keras"), str(tmp_path / "none.png")]) == 2


def _small_spec(tmp_path):
    path = tmp_path / "small.json"
    kr.ModelSpec(input_shape=(8, 8, 1), stem=kr.StemSpec(8, 3, 1, pool=None),
                 blocks=[kr.BlockSpec("basic", 8), kr.BlockSpec("basic", 16, strides=2)],
                 shortcut="A", classes=10).save(path)
    return path


def test_train_needs_one_source(capsys):
    assert main(["train", "--out", "x"]) == 2
    assert capsys.readouterr().err.strip() == (
        "keras-resnet: error: train needs a MODEL: a preset name, a spec file, a .keras "
        "file or a run folder")
    with pytest.raises(SystemExit) as e:  # --out is required
        main(["train", "cifar_resnet20"])
    assert e.value.code == 2 and "--out" in capsys.readouterr().err


def test_removed_0_2_options_fail_naming_the_new_way(tmp_path, capsys):
    """0.2's train --preset/--spec, tune --base/--directory/--project-name and export's
    positional target (deprecated in 0.3) are usage errors: exit 2, one line naming the
    replacement, before any work."""
    spec = str(_small_spec(tmp_path))
    model, dir_project = "the MODEL argument", "--out DIR/PROJECT"
    for argv, old, new in [
        (["train", "--spec", spec, "--out", str(tmp_path / "a")], "--spec", model),
        (["train", "--preset", "cifar_resnet20", "--out", str(tmp_path / "b")], "--preset",
         model),
        (["tune", "--base", spec, "--out", str(tmp_path / "c")], "--base", model),
        (["tune", spec, "--directory", str(tmp_path / "d")], "--directory", dir_project),
        (["tune", spec, "--project-name", "p", "--out", str(tmp_path / "e")],
         "--project-name", dir_project),
        (["export", str(tmp_path / "run"), str(tmp_path / "m.keras")],
         "the target as a second argument", "--out PATH"),
    ]:
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        assert captured.err == (f"keras-resnet: error: {old} was removed (deprecated in 0.3); "
                                f"use {new}\n") and captured.out == "", argv
    assert [p.name for p in tmp_path.iterdir()] == ["small.json"]


def test_compare_command(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--depths", "8", "14", "--epochs", "1", "--out", str(out),
                 "--verbose", "0"]) == 0
    text = capsys.readouterr().out
    assert "plain14" in text and "resnet14" in text and "results.json" in text
    assert (out / "figure.png").exists()
