"""The experiment: plain vs residual twins, results, figure, resume."""

import json
import os
import struct

import pytest

import keras_resnet as kr
from keras_resnet.experiment import DEPTHS, MAIN_RECIPE, table


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
    assert result.recipe == recipe == MAIN_RECIPE.replace(epochs=2)  # the default recipe
    assert saved["settings"]["recipe"] == recipe.to_dict()
    assert saved["settings"]["threads"] == result.threads >= 1
    run = json.loads((out / "plain8" / "run.json").read_text())
    assert run["recipe"] == recipe.to_dict() and run["spec"]["residual"] is False
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
    with pytest.raises(ValueError, match=r"^depths\[\] must be 6n\+2 with n >= 1 .*"
                                         r"Received: depths=21$"):
        kr.compare((20, 21), out_dir=None)
    assert DEPTHS == (20, 32, 44, 56)
    assert MAIN_RECIPE == kr.Recipe(epochs=20, batch_size=32, learning_rate=0.05,
                                    warmup_epochs=1, schedule="step")
    with pytest.raises(ValueError, match=r"^recipe\.epochz is not a known field"):
        kr.compare((8, 14), out_dir=None, epochz=2)
    with pytest.raises(TypeError, match=r"^recipe must be a keras_resnet Recipe or its dict"):
        kr.compare((8, 14), out_dir=None, recipe="paper")
    with pytest.raises(ValueError, match=r"^verbose must be one of"):
        kr.compare((8, 14), out_dir=None, verbose=3)


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


def _small_digits():
    data = kr.load_data("digits", seed=0)
    (x, y), (vx, vy) = data.train, data.validation
    return kr.Data("digits-small", (x[:256], y[:256]), (vx[:64], vy[:64]),
                   data.input_shape, data.classes, data.class_names)


def _numbers(path):
    models = json.loads(path.read_text())["models"]
    return {name: {k: v for k, v in m.items() if k != "seconds"}
            for name, m in models.items()}


def test_results_repeat_bit_for_bit_whatever_jobs(tmp_path, capsys):
    """Models train in worker processes of one thread each: which worker, and how
    many side by side, does not change a number."""
    data = _small_digits()
    kwargs = dict(epochs=2, batch_size=32, threads=1)
    one = kr.compare((8, 14), data, out_dir=str(tmp_path / "j1"), jobs=1, verbose=1,
                     **kwargs)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "training 4 models in 1 worker process of 1 thread"
    for name in ("plain8", "resnet8", "plain14", "resnet14"):  # one line per event
        assert sum(line.startswith(f"[{name}] epoch ") for line in lines) == 2
        assert sum(line.startswith(f"[{name}] done (") for line in lines) == 1
    started = {line.split("]")[0][1:]: line for line in lines if " started (worker " in line}
    assert list(started) == ["plain14", "resnet14", "plain8", "resnet8"]  # deepest first
    workers = {line.rsplit(" ", 1)[1].rstrip(")") for line in started.values()}
    assert len(workers) == 1 and int(workers.pop()) != os.getpid()  # one worker process
    two = kr.compare((8, 14), data, out_dir=str(tmp_path / "j2"), jobs=2, verbose=0,
                     **kwargs)
    assert _numbers(tmp_path / "j1" / "results.json") == _numbers(
        tmp_path / "j2" / "results.json")
    assert {k: {**m, "seconds": 0} for k, m in one.models.items()} == {
        k: {**m, "seconds": 0} for k, m in two.models.items()}
    assert json.loads((tmp_path / "j2" / "results.json").read_text())[
        "settings"]["threads"] == 1
    with pytest.raises(ValueError, match=r"^jobs must be >= 1"):
        kr.compare((8, 14), data, out_dir=None, jobs=0)


def test_jobs_rule(monkeypatch):
    from keras_resnet.flops import SMALL_STEP_MACS, is_small_step
    from keras_resnet.parallel import plan_jobs, thread_env, usable_cores

    cores = usable_cores()
    # 8x8 digits, batch 32: per-step overhead dominates
    small = kr.presets.cifar(56, "A").replace(input_shape=(8, 8, 1), classes=10)
    big = small.replace(input_shape=(224, 224, 3))
    assert kr.flops(small) * 32 <= SMALL_STEP_MACS < kr.flops(big) * 128
    assert is_small_step(small, 32) and not is_small_step(big, 128)
    assert plan_jobs(8, small_steps=True) == (min(cores, 8), 1)
    assert plan_jobs(1, small_steps=True) == (1, 1)
    assert plan_jobs(8, small_steps=False) == (1, cores)  # compute-bound: one worker
    assert plan_jobs(8, jobs=3, threads=2, small_steps=True) == (3, 2)
    assert plan_jobs(2, jobs=3, threads=1, small_steps=True) == (2, 1)  # jobs <= tasks
    with pytest.raises(ValueError, match=r"^jobs must be >= 1"):
        plan_jobs(4, jobs=0, small_steps=True)
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    env = thread_env(1)
    assert env["TF_NUM_INTRAOP_THREADS"] == "1" and env["OMP_NUM_THREADS"] == "1"
    assert env["XLA_FLAGS"].split() == ["--xla_force_host_platform_device_count=2",
                                        "--xla_cpu_multi_thread_eigen=false"]
    # XLA reads a token without "--" as a file of flags, and aborts: none is written
    monkeypatch.delenv("XLA_FLAGS")
    assert all(f.startswith("--") for f in thread_env(2)["XLA_FLAGS"].split())
    assert thread_env(2)["TF_NUM_INTEROP_THREADS"] == "2"


@pytest.mark.slow
def test_sigkill_of_compare_kills_its_workers_and_resumes_exactly(tmp_path):
    """Kill the parent with SIGKILL while workers train: the workers go too, and a
    rerun loads the finished models, resumes the others, and ends with the numbers
    of an uninterrupted run."""
    import signal
    import subprocess
    import sys
    import time

    def cmd(out):
        return [sys.executable, "-m", "keras_resnet.cli", "compare", "--depths", "8", "14",
                "--epochs", "3", "--jobs", "2", "--out", str(out), "--verbose", "1"]

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd(tmp_path / "k"), stdout=subprocess.PIPE, text=True, env=env)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("[") and " done (" in line:
            break
    import psutil

    children = psutil.Process(proc.pid).children(recursive=True)
    workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
    assert len(workers) == 2  # --jobs 2 (besides them: multiprocessing's helpers)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(3)
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == []  # no worker (nor helper) outlives the killed parent
    again = subprocess.run(cmd(tmp_path / "k"), stdout=subprocess.PIPE, text=True, env=env,
                           check=True).stdout
    assert "already finished: loaded from its folder" in again
    whole = subprocess.run(cmd(tmp_path / "w"), stdout=subprocess.PIPE, text=True, env=env,
                           check=True)
    assert whole.returncode == 0
    assert _numbers(tmp_path / "k" / "results.json") == _numbers(
        tmp_path / "w" / "results.json")
