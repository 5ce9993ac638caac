"""Every example runs (with small settings here; their defaults are timed in the README)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")


def run_example(name, *args, timeout=600):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", f"{name}.py"),
                           *args], capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_quickstart(tmp_path):
    out = run_example("quickstart", "--epochs", "2", "--out", str(tmp_path))
    assert "reloaded model gives the same predictions: True" in out
    assert "spec travels with the model: True" in out
    assert (tmp_path / "quickstart.keras").exists()
    accuracy = float(out.split("validation accuracy: ")[1].split()[0])
    assert accuracy > 0.5


def test_residual_mlp():
    out = run_example("residual_mlp", "--epochs", "2")
    assert "learned Ws where 128 -> 256: kernel (128, 256)" in out
    assert "33,024 fewer parameters" in out  # 128 x 256 + 256 biases
    assert "zero-initialised blocks are the identity: True" in out


def test_custom_block():
    out = run_example("custom_block", "--epochs", "1")
    assert "se_basic" in out and "B, identity" in out
    assert "squeeze channels per stage: 4, 16" in out  # the block's own se_ratio option


def test_from_keras_applications():
    out = run_example("from_keras_applications", "--size", "32")
    assert "keras.applications 25,636,712, keras_resnet 25,636,712" in out
    assert "max abs difference of the outputs: 0.00e+00" in out


@pytest.mark.slow
def test_export_and_serve(tmp_path):
    out = run_example("export_and_serve", "--epochs", "3", "--out", str(tmp_path))
    assert "same from TFSMLayer: True" in out
    keras_says = out.split("Keras model says: ")[1].splitlines()[0]
    served = out.split("fresh process says: classes: ")[1].splitlines()[0]
    assert keras_says == served
    assert "int8 TFLite: " in out and (tmp_path / "MODEL_CARD.md").exists()


@pytest.mark.slow
def test_plain_vs_residual(tmp_path):
    out = run_example("plain_vs_residual", "--out", str(tmp_path))
    assert "plain-44 trains worse than plain-8" in out
    assert (tmp_path / "figure.png").exists()


@pytest.mark.slow
def test_fine_tune():
    """Few epochs: whether fine-tuning beats training from scratch is not asserted (over
    seeds 0-2 with the defaults the two were within a few points either way)."""
    import re

    out = run_example("fine_tune", "--pretrain-epochs", "3", "--epochs", "5", timeout=900)
    match = re.search(r"validation accuracy on 5-9: fine-tuned ([0-9.]+), from scratch "
                      r"([0-9.]+)", out)
    assert match, out
    tuned, scratch = float(match.group(1)), float(match.group(2))
    assert "frozen: stem; preprocessing 'unit'" in out
    assert "fine-tuning on 144 images of 5-9 (20%)" in out
    assert 0.5 < tuned <= 1 and 0.2 < scratch <= 1, out  # chance is 0.2


def test_every_example_is_short_and_tested():
    names = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "examples"))
                   if f.endswith(".py"))
    source = open(__file__).read()
    for name in names:
        lines = open(os.path.join(ROOT, "examples", f"{name}.py")).read().count("\n")
        assert lines < 100, f"{name}.py has {lines} lines"
        assert f'run_example("{name}"' in source, f"{name}.py has no test"


@pytest.mark.slow
def test_tune_depth_and_l2(tmp_path):
    out = run_example("tune_depth_and_l2", "--trials", "3", "--epochs", "2", "--out",
                      str(tmp_path))
    assert "3 completed, 0 failed" in out
    assert (tmp_path / "depth_l2" / "best_spec.json").exists()
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("rank "))
    best = float(lines[header + 2].split()[-1])  # rank 1 of the results table
    retrained = float(out.split("retrained: best validation accuracy ")[1].split()[0])
    assert retrained == pytest.approx(best, abs=1e-4)  # the winner, rebuilt from JSON
