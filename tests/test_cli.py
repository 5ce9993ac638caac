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
    assert out[0].startswith("resnet18 ") and len(out) == len(kr.presets.list())
