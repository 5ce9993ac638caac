"""Reliability: bad files get one clear line and the right exit code, kills damage
nothing, runs are deterministic."""

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

import keras_resnet as kr
from keras_resnet import _io
from keras_resnet.cli import main

TINY = kr.ModelSpec(input_shape=(8, 8, 1), stem=kr.StemSpec(4, 3, 1, pool=None),
                    blocks=[kr.BlockSpec("basic", 4), kr.BlockSpec("basic", 8, strides=2)],
                    shortcut="A", classes=10)


def one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("keras-resnet: error: "), err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.mark.parametrize("content,expected", [
    ("{not json", "spec is not valid JSON"),
    ('{"blocks": [{"type": "basic", "filters": 8}], "input_shape": [32, 3', "not valid JSON"),
    ("blocks: [unclosed", "spec is not valid YAML"),
    ("\x00\x01\x02binary", "not"),
])
def test_bad_spec_files_exit_2(tmp_path, capsys, content, expected):
    suffix = ".yaml" if "YAML" in expected else ".json"
    path = tmp_path / f"spec{suffix}"
    path.write_text(content)
    assert main(["summary", str(path)]) == 2
    assert expected in one_line_error(capsys)
    assert path.read_text() == content  # untouched


def test_spec_directory_and_missing_file(tmp_path, capsys):
    (tmp_path / "dir.json").mkdir()
    assert main(["summary", str(tmp_path / "dir.json")]) == 2
    # 0.3: a folder given as MODEL is read as a run folder (it has no model.keras)
    assert f"{str(tmp_path / 'dir.json')!r} is a folder without model.keras" in \
        one_line_error(capsys)
    assert main(["summary", str(tmp_path / "missing.json")]) == 2
    assert "does not exist" in one_line_error(capsys)


def test_corrupt_keras_file(tmp_path, capsys):
    model = kr.build_resnet(TINY)
    good = tmp_path / "good.keras"
    model.save(good)
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    before = corrupt.read_bytes()
    for argv in (["export", str(corrupt), "--out", str(tmp_path / "out.keras"), "--format",
                  "keras"],
                 ["predict", str(corrupt), str(tmp_path / "x.png")]):
        assert main(argv) == 2
        assert "is not a readable .keras model" in one_line_error(capsys)
    assert corrupt.read_bytes() == before
    assert not (tmp_path / "out.keras").exists()


def test_unwritable_target_exits_1_and_keeps_files(tmp_path, capsys, monkeypatch):
    model = kr.build_resnet(TINY)
    src = tmp_path / "m.keras"
    model.save(src)
    out = tmp_path / "ro"
    out.mkdir()
    (out / "old.keras").write_bytes(b"previous export")
    if os.geteuid() != 0:
        out.chmod(0o555)
    else:  # root ignores permission bits: fail where the OS would
        def denied(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(_io.tempfile, "mkdtemp", denied)
    try:
        assert main(["export", str(src), "--out", str(out / "old.keras"), "--format", "keras",
                     "--overwrite"]) == 1
        line = one_line_error(capsys)
        assert "cannot write" in line and "Permission denied" in line
    finally:
        out.chmod(0o755)
    assert (out / "old.keras").read_bytes() == b"previous export"
    assert sorted(os.listdir(out)) == ["old.keras"]


def test_full_disk_midway_exits_1_and_keeps_previous(tmp_path, capsys, monkeypatch):
    model = kr.build_resnet(TINY)
    src = tmp_path / "m.keras"
    model.save(src)
    target = tmp_path / "exported.keras"
    target.write_bytes(b"previous export")
    real_save = keras.Model.save

    def save_then_fill_disk(self, path, *args, **kwargs):
        real_save(self, path, *args, **kwargs)
        with open(path, "r+b") as fh:  # a half-written file, then the disk is full
            fh.truncate(100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", save_then_fill_disk)
    assert main(["export", str(src), "--out", str(target), "--format", "keras",
                 "--overwrite"]) == 1
    assert one_line_error(capsys) == (f"keras-resnet: error: the disk is full: could not "
                                      f"write {str(target)!r} (free some space, then run "
                                      "the same command again to resume)")
    assert target.read_bytes() == b"previous export"
    assert sorted(os.listdir(tmp_path)) == ["exported.keras", "m.keras"]


EXPORT_SCRIPT = textwrap.dedent("""
    import sys, keras_resnet as kr
    model = kr.build_resnet("resnet18", input_shape=(64, 64, 3), classes=10)
    print("ready", flush=True)
    kr.export(model, sys.argv[1], "saved_model", overwrite=True)
""")


def test_export_killed_midway_leaves_previous_export(tmp_path):
    target = tmp_path / "sm"
    target.mkdir()
    (target / "saved_model.pb").write_bytes(b"the previous export")
    script = tmp_path / "export.py"
    script.write_text(EXPORT_SCRIPT)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    rng = np.random.RandomState(int(time.time()))
    kills = 0
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, str(script), str(target)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.2, 3.0))  # somewhere inside export/verify
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert (target / "saved_model.pb").read_bytes() == b"the previous export"
        assert sorted(os.listdir(target)) == ["saved_model.pb"]
    assert kills >= 1
    # the next export cleans what the killed ones left behind
    kr.export(kr.build_resnet(TINY), str(tmp_path / "sm"), "saved_model", overwrite=True,
              verify=False)
    assert sorted(os.listdir(tmp_path)) == ["export.py", "sm"]


def test_same_seed_same_initial_weights_and_first_epoch_loss():
    def run():
        keras.backend.clear_session()
        result = kr.train(TINY, "digits", epochs=1, batch_size=64, seed=123, verbose=0)
        return result.history["loss"][0]

    keras.utils.set_random_seed(7)
    a = [w.copy() for w in kr.build_resnet(TINY).get_weights()]
    keras.backend.clear_session()
    keras.utils.set_random_seed(7)
    b = kr.build_resnet(TINY).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    keras.utils.set_random_seed(8)
    c = kr.build_resnet(TINY).get_weights()
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    assert run() == run()


def test_making_a_spec_does_not_move_the_random_state():
    import random

    keras.utils.set_random_seed(3)
    before = random.getstate()
    kr.ModelSpec.from_dict(TINY.to_dict())
    kr.presets.get("resnet50")
    assert random.getstate() == before
