"""Nothing Linux-only in the library: locks are filelock's, process checks psutil's."""

import os
import subprocess
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def test_a_two_trial_search_runs_with_fcntl_unimportable(tmp_path):
    """Where fcntl does not exist (Windows), filelock falls back to its own lock and
    psutil reads processes: the tuner's ledger, claims and the run folders work."""
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
