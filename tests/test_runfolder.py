"""The run folder: one owner of its files, its state and its lock."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import keras_resnet as kr
from keras_resnet.runfolder import FolderBusyError, RunFolder, describe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = describe({"name": "x"}, {"epochs": 2}, {"load_args": None, "fingerprint": "f" * 64,
                                              "input_shape": [8, 8, 1], "classes": 10})


def _backup(folder, epoch):
    os.makedirs(folder.file(folder.BACKUP), exist_ok=True)
    with open(os.path.join(folder.file(folder.BACKUP), "state.json"), "w") as fh:
        json.dump({"epoch": epoch, "weights": f"epoch-{epoch:05d}.npz"}, fh)


def test_status_is_empty_unfinished_or_finished(tmp_path):
    folder = RunFolder(tmp_path / "run")
    assert folder.status() == "empty" and folder.run() is None and folder.labels() is None
    assert folder.start(RUN, overwrite=False) == 0
    assert folder.status() == "unfinished" and folder.run() == RUN
    _backup(folder, 1)
    assert folder.backup_epoch() == 1 and folder.status() == "unfinished"
    folder.finish(lambda tmp: open(tmp, "w").write("model"), '{"name": "x"}\n',
                  {"loss": [1.0, 0.5]}, ["a", "b"])
    assert folder.status() == "finished"
    assert not os.path.exists(folder.file(folder.BACKUP))  # the end removes the backup
    assert folder.history() == {"loss": [1.0, 0.5]} and folder.labels() == ["a", "b"]
    with pytest.raises(FileExistsError, match="already holds a finished run"):
        folder.start(RUN, overwrite=False)
    # a model without its backup removed (a kill inside finish) is not finished
    _backup(folder, 2)
    assert folder.status() == "unfinished"
    assert RunFolder.of(folder.file(folder.MODEL)).path == folder.path
    assert RunFolder.of(tmp_path / "other.keras") is None


def test_resume_needs_the_same_settings_and_reads_0_2_run_json(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.start(RUN, overwrite=False)
    _backup(folder, 1)
    assert folder.start(RUN, overwrite=False) == 1  # the same settings: resumed
    other = dict(RUN, recipe={"epochs": 3})
    with pytest.raises(ValueError, match=r"other settings: epochs 2 → 3; pass overwrite"):
        folder.start(other, overwrite=False)
    old = json.loads(json.dumps(RUN))  # run.json of 0.2 said num_classes
    old["data"]["num_classes"] = old["data"].pop("classes")
    with open(folder.file(folder.RUN), "w") as fh:
        json.dump(old, fh)
    assert folder.start(RUN, overwrite=False) == 1
    assert folder.start(other, overwrite=True) == 0 and folder.backup_epoch() == 0


def _holder(path, ready):
    """A child process that holds the folder's lock until killed."""
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {ROOT!r})
        import types
        pkg = types.ModuleType("keras_resnet")  # the Keras-free module alone
        pkg.__path__ = [{os.path.join(ROOT, "keras_resnet")!r}]
        sys.modules["keras_resnet"] = pkg
        from keras_resnet.runfolder import RunFolder
        with RunFolder({str(path)!r}).lock():
            open({str(ready)!r}, "w").close()
            time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    while not os.path.exists(ready) and time.time() < deadline:
        time.sleep(0.05)
    assert os.path.exists(ready)
    return proc


def test_a_second_process_is_refused_and_a_dead_ones_lock_does_not_block(tmp_path):
    path = tmp_path / "run"
    proc = _holder(path, tmp_path / "ready")
    try:
        with pytest.raises(FolderBusyError, match=rf"in use by process {proc.pid} on "):
            with RunFolder(path).lock():
                pass
        # kr.train refuses at once, before loading data or building anything
        start = time.perf_counter()
        with pytest.raises(FolderBusyError, match=str(proc.pid)):
            kr.train("cifar_resnet20", "digits", epochs=1, out_dir=str(path))
        assert time.perf_counter() - start < 5
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with RunFolder(path).lock():  # the kernel released the dead process's lock
        assert json.load(open(RunFolder(path).file(RunFolder.OWNER)))["pid"] == os.getpid()
    assert not os.path.exists(RunFolder(path).file(RunFolder.OWNER))


def test_a_folder_that_cannot_be_written_is_refused_before_work(tmp_path, monkeypatch,
                                                               capsys):
    locked = tmp_path / "ro"
    locked.mkdir()
    real = os.access
    # (as root, chmod does not stop writes: the operating system's answer is faked)
    monkeypatch.setattr(os, "access", lambda p, mode: False if os.fspath(p) == str(locked)
                        else real(p, mode))
    with pytest.raises(PermissionError, match=r"'.*ro/run' is not writable"):
        RunFolder(locked / "run").check_writable()
    start = time.perf_counter()
    with pytest.raises(PermissionError, match="not writable"):
        kr.train("cifar_resnet20", "digits", epochs=1, out_dir=str(locked / "run"))
    assert time.perf_counter() - start < 5 and os.listdir(locked) == []
    from keras_resnet.cli import main

    assert main(["train", "cifar_resnet20", "--epochs", "1", "--out",
                 str(locked / "run")]) == 2
    assert "is not writable" in capsys.readouterr().err
