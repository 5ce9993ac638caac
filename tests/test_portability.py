"""Nothing Linux-only in the library: locks are filelock's, process checks psutil's."""

import os
import subprocess
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def test_a_two_trial_search_runs_with_fcntl_unimportable(tmp_path):
    """Where fcntl does not exist, filelock falls back to its own lock: the tuner's ledger,
    claims and the run folders work."""
    code = textwrap.dedent(f"""
        import sys
        sys.modules["fcntl"] = None          # any import of it raises ImportError
        sys.path[:0] = [{ROOT!r}, {HERE!r}]
        from _tune_child import tiny_data, tiny_spec
        import keras_resnet as kr
        result = kr.tune(tiny_spec(), tiny_data(150, 60), algorithm="random", max_trials=2,
                         epochs=1, batch_size=64, depth=[1, 2], isolate=False, verbose=0,
                         out_dir={str(tmp_path / "t")!r})
        assert len(result.trials) == 2 and all(t["status"] == "COMPLETED"
                                               for t in result.trials), result.trials
        assert sys.modules["fcntl"] is None
        print("OK", result.best_score)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("OK 0.")
    assert os.path.exists(tmp_path / "t" / "best_spec.json")


def test_the_library_names_no_linux_only_module():
    """No fcntl, prctl or libc anywhere in keras_resnet/, and /proc only where a
    portable fallback follows (the CPU's name in the model card: platform.processor())."""
    bad = []
    for root, _, files in os.walk(os.path.join(ROOT, "keras_resnet")):
        for f in files:
            if f.endswith(".py"):
                text = open(os.path.join(root, f)).read()
                for word in ("fcntl", "/proc/", "prctl", "libc.so", "ctypes"):
                    if word in text and not (word == "/proc/" and f == "machine.py"
                                             and "platform.processor()" in text):
                        bad.append(f"{f}: {word}")
    assert not bad, bad


CLAIMS = """
import os, signal, subprocess, sys
NO_FCNTL = "import sys; sys.modules['fcntl'] = None  # any import of it raises ImportError\\n"
if sys.argv[2] == "soft":
    exec(NO_FCNTL)
from keras_resnet.tuning.ledger import Ledger
holder = subprocess.Popen([sys.executable, "-c", (NO_FCNTL if sys.argv[2] == "soft" else "")
                           + "from keras_resnet.tuning.ledger import Ledger\\n"
                           f"mine = Ledger({sys.argv[1]!r})\\nassert mine.claim('3')\\n"
                           "print('held', flush=True)\\nimport time\\ntime.sleep(120)"],
                          stdout=subprocess.PIPE, text=True)
assert holder.stdout.readline() == "held\\n"
me = Ledger(sys.argv[1])
print("alive", me.claim("3"), me.claim("4"))
os.kill(holder.pid, signal.SIGKILL)
holder.wait()
print("killed", me.claim("3"))
me.release("3")
print("released", Ledger(sys.argv[1]).claim("3"))
"""


@pytest.mark.parametrize("lock", ["os", "soft"])
def test_a_claim_is_held_while_its_process_lives_and_free_when_it_is_killed(tmp_path, lock):
    """A trial's claim is a file lock: refused to others while its holder lives, free
    once the holder is SIGKILLed. ``soft``: filelock's fallback where fcntl is missing,
    which finds the dead holder by its pid."""
    env = {**os.environ, "KERAS_BACKEND": "numpy", "PYTHONPATH": ROOT,
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", CLAIMS, str(tmp_path / "p"), lock],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert proc.stdout.split("\n")[:3] == ["alive False True", "killed True",
                                           "released True"]
