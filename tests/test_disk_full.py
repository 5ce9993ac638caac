"""A full disk: at each point where a job writes (the per-epoch backup, run.json, the
history, the end of a run, an export, the tuner's ledger) the job stops with one line
saying the disk is full and where; what was written before stays intact; the same
command run again after space is freed ends as an uninterrupted run would."""

import errno
import json
import os
import sys

import keras
import numpy as np
import pytest

import keras_resnet as kr
from keras_resnet import _io, runfolder
from keras_resnet._io import DiskFullError
from keras_resnet.cli import main
from keras_resnet.training import backup, weights_digest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _tune_child import tiny_data, tiny_spec  # noqa: E402

ARGS = dict(epochs=3, batch_size=256, verbose=0)


def full(path=None):
    return OSError(errno.ENOSPC, "No space left on device", path)


def failing_write(name):
    """``atomic_write_text`` whose writes of ``name`` stop half-way: the disk is full."""
    real = runfolder.atomic_write_text

    def write(path, text, overwrite=False):
        if not path.endswith(name):
            return real(path, text, overwrite=overwrite)
        with _io.atomic_path(path, overwrite=overwrite) as tmp:
            with open(tmp, "w") as fh:
                fh.write(text[: len(text) // 2])
            raise full(tmp)

    return write


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: its history and its weights."""
    out = str(tmp_path_factory.mktemp("ref") / "run")
    result = kr.train(tiny_spec(), tiny_data(), out_dir=out, **ARGS)
    return result.history, weights_digest(result.model)


def _same_as_reference(out, reference):
    result = kr.train(tiny_spec(), tiny_data(), out_dir=out, **ARGS)
    assert result.history == reference[0]
    assert weights_digest(result.model) == reference[1]
    assert kr.RunFolder(out).status() == "finished"


def test_the_backup_of_an_epoch(tmp_path, monkeypatch, reference):
    out = str(tmp_path / "run")
    real, calls = np.savez, []

    def savez(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the backup of epoch 2
            raise full()
        return real(*args, **kwargs)

    monkeypatch.setattr(backup.np, "savez", savez)
    with pytest.raises(DiskFullError, match=r"the disk is full: could not write "
                                            r"'.*backup/epoch-00002\.npz'"):
        kr.train(tiny_spec(), tiny_data(), out_dir=out, **ARGS)
    folder = kr.RunFolder(out)
    assert folder.backup_epoch() == 1  # the previous backup, whole
    assert sorted(os.listdir(folder.file(folder.BACKUP))) == ["epoch-00001.npz",
                                                              "state.json"]
    monkeypatch.undo()
    _same_as_reference(out, reference)


def test_run_json(tmp_path, monkeypatch, reference):
    out = str(tmp_path / "run")
    monkeypatch.setattr(runfolder, "atomic_write_text", failing_write("run.json"))
    with pytest.raises(DiskFullError, match=r"could not write '.*run\.json"):
        kr.train(tiny_spec(), tiny_data(), out_dir=out, **ARGS)
    assert kr.RunFolder(out).status() == "empty"
    assert [f for f in os.listdir(out) if not f.startswith("run.")] == []  # no temporary
    monkeypatch.undo()
    _same_as_reference(out, reference)


def test_a_row_of_the_history(tmp_path, monkeypatch, reference):
    """The CSV row of epoch 2 is torn by the full disk: the run resumes from the
    backup of epoch 1 and the torn row is gone from the history."""
    out = str(tmp_path / "run")
    real = keras.callbacks.CSVLogger.on_epoch_end

    def torn(self, epoch, logs=None):
        if epoch == 1:
            self.csv_file.write("1,0.12")
            self.csv_file.flush()
            raise full(self.filename)
        return real(self, epoch, logs)

    monkeypatch.setattr(keras.callbacks.CSVLogger, "on_epoch_end", torn)
    with pytest.raises(DiskFullError, match=r"could not write '.*history\.csv'"):
        kr.train(tiny_spec(), tiny_data(), out_dir=out, **ARGS)
    assert kr.RunFolder(out).backup_epoch() == 1
    monkeypatch.undo()
    _same_as_reference(out, reference)


def test_the_end_of_a_run(tmp_path, monkeypatch, reference):
    """history.json cannot be written: model.keras is, but the run stays unfinished
    (its backup is removed last) and the rerun only writes the end again."""
    out = str(tmp_path / "run")
    monkeypatch.setattr(runfolder, "atomic_write_text", failing_write("history.json"))
    with pytest.raises(DiskFullError, match=r"could not write '.*history\.json'"):
        kr.train(tiny_spec(), tiny_data(), out_dir=out, **ARGS)
    folder = kr.RunFolder(out)
    assert folder.status() == "unfinished" and folder.backup_epoch() == 3
    monkeypatch.undo()
    _same_as_reference(out, reference)


def test_the_command_line_says_it_in_one_line(tmp_path, monkeypatch, capsys):
    spec = tmp_path / "tiny.json"
    tiny_spec().save(spec)
    monkeypatch.setattr(backup.np, "savez", lambda *a, **k: (_ for _ in ()).throw(full()))
    assert main(["train", str(spec), "--epochs", "1", "--batch-size", "256",
                 "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("keras-resnet: error: the disk is full: could not write '")
    assert "run the same command again to resume" in err and err.count("\n") == 1


def test_an_export(tmp_path, monkeypatch):
    model = kr.build_resnet(tiny_spec())
    target = tmp_path / "m.keras"
    target.write_bytes(b"the previous export")
    real = keras.Model.save

    def save(self, path, *args, **kwargs):
        real(self, path, *args, **kwargs)
        with open(path, "r+b") as fh:  # half a file, then the disk is full
            fh.truncate(100)
        raise full()

    monkeypatch.setattr(keras.Model, "save", save)
    with pytest.raises(DiskFullError, match=r"could not write '.*m\.keras'"):
        kr.export(model, str(target), "keras", overwrite=True, verify=False)
    assert target.read_bytes() == b"the previous export"
    assert sorted(os.listdir(tmp_path)) == ["m.keras"]


def test_the_tuners_ledger(tmp_path, monkeypatch):
    """The ledger's third record is torn by the full disk; the rerun cuts it off and
    the search ends with the records of an uninterrupted one."""
    from keras_resnet.tuning import ledger

    args = dict(algorithm="random", max_trials=2, epochs=1, batch_size=256, depth=[1, 2],
                isolate=False, verbose=0)
    whole = kr.tune(tiny_spec(), tiny_data(150, 60), out_dir=str(tmp_path / "a"), **args)
    real, appends = os.write, []

    def write(fd, data):
        appends.append(1)
        if len(appends) == 3:
            real(fd, bytes(data)[: len(data) // 2])
            raise full()
        return real(fd, data)

    monkeypatch.setattr(ledger.os, "write", write)
    out = str(tmp_path / "b")
    with pytest.raises(DiskFullError, match=r"could not write '.*ledger\.jsonl'"):
        kr.tune(tiny_spec(), tiny_data(150, 60), out_dir=out, **args)
    monkeypatch.undo()
    again = kr.tune(tiny_spec(), tiny_data(150, 60), out_dir=out, **args)

    def records(folder):
        with open(os.path.join(folder, "ledger.jsonl")) as fh:
            rows = [json.loads(line) for line in fh]
        return [(r["event"], r.get("trial_id"), r.get("values"), r.get("metrics"))
                for r in rows[1:]]

    assert records(out) == records(str(tmp_path / "a"))
    assert again.best_score == whole.best_score and again.best_values == whole.best_values
