"""The experiment: plain vs residual twins, results, figure, resume."""

import json
import os
import struct

import pytest

import keras_resnet as kr
from keras_resnet.experiment import DEFAULTS, table


def png_size(path):
    with open(path, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_small_comparison_writes_results_figure_and_logs_and_resumes(tmp_path, capsys):
    out = tmp_path / "cmp"
    result = kr.compare((8, 14), "digits", epochs=2, out_dir=str(out), verbose=0)
    assert set(result.models) == {"plain8", "resnet8", "plain14", "resnet14"}
    for depth in (8, 14):
        plain, res = result.models[f"plain{depth}"], result.models[f"resnet{depth}"]
        assert plain["params"] == res["params"]  # option A: equal parameters
        assert not plain["residual"] and res["residual"]
        assert len(plain["train_error_curve"]) == 2
        assert 0 <= plain["train_error"] <= 1 and 0 <= res["val_error"] <= 1
    saved = json.loads((out / "results.json").read_text())
    assert saved["models"] == result.models and saved["effect"] == result.effect
    assert saved["settings"]["depths"] == [8, 14] and saved["settings"]["data"] == "digits"
    recipe = kr.Recipe(epochs=2, batch_size=32, learning_rate=0.05, warmup_epochs=1)
    assert saved["settings"]["recipe"] == recipe.to_dict()
    run = json.loads((out / "plain8" / "run.json").read_text())
    assert run["recipe"] == recipe.to_dict() and run["residual"] is False
    lines = table(result.models).splitlines()
    assert lines[0].split() == ["model", "params", "train", "err", "val", "err", "time"]
    assert set(lines[1]) == {"-", " "} and len(lines) == 6
    assert set(result.effect) == {"shallowest", "deepest", "plain_degrades",
                                  "residual_at_or_below_plain"}
    assert png_size(out / "figure.png") == (640, 420)
    for name in result.models:
        rows = (out / name / "history.csv").read_text().strip().splitlines()
        assert rows[0].startswith("epoch,") and len(rows) == 3
    assert capsys.readouterr().out == ""  # verbose=0 prints nothing
    with pytest.raises(FileExistsError, match="already holds a finished comparison"):
        kr.compare((8, 14), "digits", epochs=2, out_dir=str(out), verbose=0)

    # As if killed before the end: finished models are loaded, not trained again.
    os.remove(out / "results.json")
    stamp = os.path.getmtime(out / "plain8" / "model.keras")
    again = kr.compare((8, 14), "digits", epochs=2, out_dir=str(out), verbose=0)
    assert os.path.getmtime(out / "plain8" / "model.keras") == stamp
    assert again.models["plain8"]["train_error"] == result.models["plain8"]["train_error"]
    assert again.models["plain8"]["train_error_curve"] == result.models["plain8"][
        "train_error_curve"]


def test_arguments():
    with pytest.raises(ValueError, match=r"^depths must list at least two depths"):
        kr.compare((20,), out_dir=None)
    with pytest.raises(ValueError, match=r"depths must be 6n\+2"):
        kr.compare((20, 21), out_dir=None)
    assert DEFAULTS["depths"] == (20, 32, 44, 56)


@pytest.mark.slow
def test_main_job_shows_the_effect(tmp_path):
    """The README's main job on its defaults: the paper's effect on digits."""
    result = kr.compare(out_dir=str(tmp_path / "main"), verbose=0)
    m = result.models
    assert m["plain56"]["train_error"] > m["plain20"]["train_error"] + 0.05
    assert m["resnet56"]["train_error"] <= m["plain56"]["train_error"]
    assert m["resnet56"]["train_error"] < 0.05
    assert result.effect == {"shallowest": 20, "deepest": 56, "plain_degrades": True,
                             "residual_at_or_below_plain": True}
