"""One training job over several processes (JAX): sharding, the run folder, kills.

The two-process tests start `keras-resnet train` twice on 127.0.0.1 with
KERAS_BACKEND=jax whatever the suite's backend, so they run in the JAX suite only
(the TensorFlow suite skips them; it checks the one-line refusal instead).
"""

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import keras_resnet as kr
from keras_resnet.parallel import thread_env
from keras_resnet.training import MultiProcess, weights_digest
from keras_resnet.training.pipeline import EpochFeed, shard_epoch

# The tests that start processes pin KERAS_BACKEND=jax in them, so they run from either
# suite; conftest.py's BACKEND_INDEPENDENT keeps the JAX pass from repeating them.
JAX_SUITE = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                               reason="starts JAX processes; needs jax installed")
TF_ONLY = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                             reason="the TensorFlow refusal")


# ---------------------------------------------------------------- sharding, in process

def test_two_shards_make_the_global_batches():
    x = np.arange(103)  # 6 batches of 16 and a last one of 7
    y = x * 10
    parts = [shard_epoch((x, y), 16, i, 2) for i in range(2)]
    for px, py in parts:
        assert len(px) == 6 * 8 + 3  # the last batch is cut to 6, 3 each
        np.testing.assert_array_equal(py, px * 10)
    for b in range(6):
        local = [p[0][b * 8:(b + 1) * 8] for p in parts]
        np.testing.assert_array_equal(np.concatenate(local), x[b * 16:(b + 1) * 16])
    np.testing.assert_array_equal(np.concatenate([parts[0][0][48:], parts[1][0][48:]]),
                                  x[96:102])
    # one process: the epoch unchanged
    np.testing.assert_array_equal(shard_epoch((x,), 16, 0, 1)[0], x)


def test_shard_of_an_indivisible_batch_is_refused():
    with pytest.raises(ValueError, match=r"^batch_size must be a multiple of the number "
                       r"of processes \(3\).*Received: batch_size=16$"):
        shard_epoch((np.arange(40),), 16, 0, 3)
    with pytest.raises(ValueError, match=r"index must be <= 1"):
        shard_epoch((np.arange(40),), 16, 2, 2)


def test_feed_gives_each_process_its_share_of_the_global_order():
    x = np.arange(200, dtype="float32").reshape(200, 1)
    y = np.arange(200)
    whole = EpochFeed(x, y, 32, seed=5, multiple=2, epoch=3)
    shards = [EpochFeed(x, y, 32, seed=5, multiple=2, epoch=3, shard=(i, 2))
              for i in range(2)]
    assert [s.batch_size for s in shards] == [16, 16]
    assert shards[0].num_batches == whole.num_batches == 7
    gx, _ = whole.arrays()
    (ax, ay), (bx, _) = shards[0].arrays(), shards[1].arrays()
    np.testing.assert_array_equal(ax[:, 0], ay)
    for b in range(whole.num_batches):
        joined = np.concatenate([ax[b * 16:(b + 1) * 16], bx[b * 16:(b + 1) * 16]])
        np.testing.assert_array_equal(joined, gx[b * 32:(b + 1) * 32])


def test_shard_of_folder_batches():
    tf = pytest.importorskip("tensorflow")
    from keras_resnet.training.pipeline import shard_batches

    ds = tf.data.Dataset.from_tensor_slices((np.arange(70), np.arange(70))).batch(32)
    parts = [[b[0].numpy() for b in shard_batches(ds, i, 2, 2)] for i in range(2)]
    assert [len(b) for b in parts[0]] == [16, 16, 3]
    for k in range(3):
        whole = np.concatenate([parts[0][k], parts[1][k]])
        np.testing.assert_array_equal(whole, np.arange(70)[k * 32:k * 32 + len(whole)])


def test_multi_process_settings_are_checked(monkeypatch):
    for var in ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                "KERAS_DISTRIBUTION_PROCESS_ID"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match=r"^job_addresses is needed.*"
                       r"KERAS_DISTRIBUTION_JOB_ADDRESSES"):
        MultiProcess().resolved()
    with pytest.raises(ValueError, match=r"process_id must be <= 1\. Received: process_id=2"):
        MultiProcess("127.0.0.1:1234", 2, 2).resolved()
    with pytest.raises(ValueError, match=r"^job_addresses must be host:port .*"
                       r"Received: job_addresses='10\.0\.0\.1:http'"):
        MultiProcess("10.0.0.1:http", 2, 0).resolved()
    monkeypatch.setenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", "10.0.0.1:99")
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "1")
    assert MultiProcess(connect_timeout=5).resolved() == MultiProcess("10.0.0.1:99", 2, 1, 5.0)
    from keras_resnet.training.contexts import is_multi_process

    assert is_multi_process("auto") and not is_multi_process(None)


@TF_ONLY
def test_tensorflow_refuses_in_one_line(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match=r"^distribute='multi_process' needs the JAX "
                       r"backend: .*keras-team/keras#20585.*KERAS_BACKEND=jax"):
        kr.train("cifar_resnet20", "digits", distribute="multi_process",
                 out_dir=str(tmp_path / "r"))
    assert not os.path.exists(tmp_path / "r")  # before any work
    monkeypatch.setenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", "127.0.0.1:1")
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "0")
    with pytest.raises(ValueError, match=r"keras-team/keras#20585"):  # "auto" picks it
        kr.train("cifar_resnet20", "digits", distribute="auto")


def test_cli_flags_belong_to_multi_process(capsys):
    from keras_resnet.cli import main

    code = main(["train", "cifar_resnet20", "--out", "x", "--distribute",
                 "mirrored", "--process-id", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "go with --distribute multi_process" in err


# ---------------------------------------------------------------- two real processes

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(out, index, port, epochs, cache, count=2, timeout=None):
    tmp = out.parent / f"tmp{index}"  # the process's TMPDIR: its scratch folder goes here
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, **thread_env(1), "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3",
           "TMPDIR": str(tmp),
           "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
           "KERAS_DISTRIBUTION_NUM_PROCESSES": str(count),
           "KERAS_DISTRIBUTION_PROCESS_ID": str(index),
           # the second run of a job compiles nothing again
           "JAX_COMPILATION_CACHE_DIR": str(cache),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    cmd = [sys.executable, "-m", "keras_resnet.cli", "train", "cifar_resnet20",
           "--data", "digits", "--epochs", str(epochs), "--out", str(out),
           "--distribute", "multi_process"]
    if timeout is not None:
        cmd += ["--connect-timeout", str(timeout)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def finish(procs, timeout=600):
    outs = [p.communicate(timeout=timeout) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outs)]


def digest_line(out):
    lines = [line for line in out.splitlines() if "weights sha256" in line]
    assert len(lines) == 1, out
    return lines[0].split()[-1]


def last_line(err):
    return [line for line in err.splitlines() if line.strip()][-1]


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jax-cache")


@JAX_SUITE
@pytest.mark.slow  # about 125 s of CPU: two XLA compilations per process
def test_two_processes_train_one_model(tmp_path, jax_cache):
    out, port = tmp_path / "run", free_port()
    results = finish([start(out, i, port, 2, jax_cache) for i in range(2)])
    for code, _, stderr in results:
        assert code == 0, stderr[-3000:]
    digests = [digest_line(stdout) for _, stdout, _ in results]
    assert digests[0] == digests[1]  # the same weights on both processes
    assert "process 1 of 2: trained 2 epochs" in results[1][1]
    assert "saved" in results[0][1] and "saved" not in results[1][1]
    assert sorted(os.listdir(out)) == ["history.csv", "history.json", "labels.json",
                                       "model.keras", "run.json", "run.lock", "spec.json"]
    model = keras.saving.load_model(out / "model.keras")
    assert weights_digest(model) == digests[0]
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 2 and history["loss"][1] < history["loss"][0]
    # process 1 wrote nothing a user sees: its scratch folder is gone
    assert not [p for p in os.listdir(tmp_path / "tmp1") if p.startswith("keras-resnet")]


def alone(tmp_path, index):
    """One process of a two-process job, started alone with a 3 s connect timeout:
    (exit code, seconds, stderr, the job's name in its messages)."""
    port = free_port()
    t0 = time.monotonic()
    [(code, _, stderr)] = finish([start(tmp_path / "run", index, port, 1, tmp_path,
                                        timeout=3)])
    where = f"process {index} of 2, coordinator 127.0.0.1:{port}"
    return code, time.monotonic() - t0, stderr, where


@JAX_SUITE
def test_a_process_alone_gives_up_in_bounded_time(tmp_path):
    code, seconds, stderr, where = alone(tmp_path, 1)
    assert code == 1 and seconds < 60, (seconds, stderr[-2000:])
    assert f"keras-resnet: {where}: joining the job (waiting up to 3 s)" in stderr
    line = last_line(stderr)
    address = where.rpartition(" ")[2]
    assert line.startswith(f"keras-resnet: error: {where}: the job did not form within 3 s "
                           f"(nothing answers at {address})"), line
    assert not os.path.exists(tmp_path / "run")


@JAX_SUITE
def test_a_coordinator_alone_ends_in_bounded_time_after_saying_what_it_waited_for(tmp_path):
    # JAX ends a coordinator whose peers never join (SIGABRT, its own message): bounded,
    # not zero, and the line before names the job; no run folder is left behind.
    code, seconds, stderr, where = alone(tmp_path, 0)
    assert code != 0 and seconds < 60, (code, seconds, stderr[-2000:])
    assert f"keras-resnet: {where}: joining the job (waiting up to 3 s)" in stderr
    assert not os.path.exists(tmp_path / "run")


@JAX_SUITE
@pytest.mark.slow
def test_sigkill_of_one_process_then_the_job_resumes(tmp_path, jax_cache):
    out, port = tmp_path / "run", free_port()
    procs = [start(out, i, port, 3, jax_cache) for i in range(2)]
    state = out / "backup" / "state.json"
    deadline = time.monotonic() + 600
    while not state.exists() and time.monotonic() < deadline:
        assert procs[0].poll() is None and procs[1].poll() is None
        time.sleep(0.2)
    assert json.loads(state.read_text())["epoch"] == 1
    procs[1].send_signal(signal.SIGKILL)  # during epoch 2 of 3
    t0 = time.monotonic()
    [(code0, _, err0), (code1, _, _)] = finish(procs, timeout=300)
    survivor_s = time.monotonic() - t0
    assert code1 == -signal.SIGKILL
    assert code0 == 1 and survivor_s < 30, (survivor_s, err0[-2000:])
    assert last_line(err0).startswith("keras-resnet: error: process 0 of 2, coordinator "
                                      f"127.0.0.1:{port}:")
    assert json.loads(state.read_text())["epoch"] == 1  # epoch 2 never finished
    assert not (out / "model.keras").exists()

    port = free_port()
    results = finish([start(out, i, port, 3, jax_cache) for i in range(2)])
    for code, stdout, stderr in results:
        assert code == 0, stderr[-3000:]
        assert f"resuming from the backup of epoch 1 in {out}" in stdout
    digests = [digest_line(stdout) for _, stdout, _ in results]
    assert digests[0] == digests[1]
    assert weights_digest(keras.saving.load_model(out / "model.keras")) == digests[0]
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 3
    assert not (out / "backup").exists()
