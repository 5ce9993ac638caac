"""Export: every format reloads in a fresh process with the same outputs; quantized
exports are judged by their measured accuracy; a model card lies beside each;
nothing a user has is overwritten or half-written."""

import ast
import importlib.util
import json
import os
import pathlib
import shutil
import warnings

import keras
import numpy as np
import pytest

import keras_resnet as kr
from keras_resnet.cli import main
from keras_resnet.serving import (
    AccuracyDropError,
    ExportVerificationError,
    load_model,
    machine,
    open_model,
    predict_files,
)
from keras_resnet.serving import exporter as ex
from keras_resnet.serving import verify as ver
from keras_resnet.serving.formats import TOLERANCE
from keras_resnet.serving.runtime import run_export

needs_onnx = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None
    or importlib.util.find_spec("tf2onnx") is None,
    reason="the [onnx] extra (tf2onnx, onnxruntime) is not installed")

TINY = kr.ModelSpec(input_shape=(8, 8, 1), stem=kr.StemSpec(8, 3, 1, pool=None),
                    blocks=[kr.BlockSpec("basic", 8), kr.BlockSpec("basic", 16, strides=2)],
                    shortcut="A", classes=10)
LOAD_ARGS = {"source": "digits", "validation_split": 0.2, "seed": 0, "flatten": False}
RUN_EPOCHS = 6


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder of kr.train on digits with its run.json, trained until its
    predictions are confident (a net at chance level sits on decision boundaries,
    where any quantization flips predictions)."""
    folder = tmp_path_factory.mktemp("run") / "r"
    kr.train(TINY, "digits", epochs=RUN_EPOCHS, batch_size=64, verbose=0, out_dir=str(folder))
    return folder


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return kr.build_resnet(TINY.replace(input_shape=(16, 16, 3), classes=5))


@pytest.mark.parametrize("fmt,name", [
    ("keras", "m.keras"), ("saved_model", "sm"), ("tflite", "m.tflite"),
    pytest.param("onnx", "m.onnx", marks=needs_onnx)])
def test_export_reloads_with_same_outputs(model, tmp_path, fmt, name):
    path = tmp_path / name
    timed = fmt in ("keras", "onnx")  # timing takes two more fresh processes: not every format
    result = kr.export(model, str(path), fmt, latency_runs=3 if timed else 0)
    assert result.path == str(path) and path.exists()
    assert result.max_abs_diff is not None and result.max_abs_diff <= TOLERANCE[fmt]
    assert result.size_bytes > 10_000
    assert result.runtime.startswith({"keras": ("Keras ",), "saved_model": ("TensorFlow ",),
                                      "tflite": ("LiteRT ", "TensorFlow Lite "),
                                      "onnx": ("onnxruntime ",)}[fmt])
    if timed:  # at one thread and at every core, beside the Keras model, on a named CPU
        assert result.threads == machine.all_cores() and result.cpu == machine.cpu_name()
        assert result.latency_ms > 0 and result.latency_ms_1thread > 0
        assert result.keras_latency_ms > 0 and result.keras_latency_ms_1thread > 0
        assert result.latency_ratio == pytest.approx(result.latency_ms
                                                     / result.keras_latency_ms)
    else:
        assert result.latency_ms is result.threads is result.latency_ratio is None
    if fmt == "keras":  # the export is the Keras model: one measurement
        assert result.latency_ratio == 1.0 == result.latency_ratio_1thread
    assert result.accuracy is None  # no validation data for a bare model
    # nothing but the export and its card: no temporary files left behind
    card_files = ["MODEL_CARD.md", "model_card.json"]
    assert sorted(os.listdir(tmp_path)) == sorted([name] + ([] if fmt == "saved_model"
                                                            else card_files))
    card = json.loads(pathlib.Path(result.card).read_text())
    entry = card["exports"][name]
    assert entry["size_bytes"] == result.size_bytes
    assert [entry[k] for k in ("latency_ms", "latency_ms_1thread", "keras_latency_ms",
                               "keras_latency_ms_1thread", "threads", "cpu", "runtime")] == [
        result.latency_ms, result.latency_ms_1thread, result.keras_latency_ms,
        result.keras_latency_ms_1thread, result.threads, result.cpu, result.runtime]
    assert card["environment"]["cpu"] == machine.cpu_name()
    assert card["model"]["trainable_params"] == sum(
        int(np.prod(w.shape)) for w in model.trainable_weights)
    # and again, independently, as a user would
    x = np.random.RandomState(5).rand(3, 16, 16, 3).astype("float32")
    np.testing.assert_allclose(run_export(str(path), fmt, x), model.predict(x, verbose=0),
                               atol=TOLERANCE[fmt])


def test_int8_tflite_of_a_run_folder_is_measured_and_carded(run_dir, tmp_path):
    out = tmp_path / "exported"
    float_ = kr.export(str(run_dir), str(out / "m.tflite"), "tflite", verify=False)
    assert float_.latency_ms is None and float_.accuracy is None
    result = kr.export(str(run_dir), str(out / "m_int8.tflite"), "tflite", quantize="int8",
                       latency_runs=5)
    # calibrated on the run's training data (run.json), checked on its validation split
    acc = result.accuracy
    assert acc["examples"] == len(kr.load_data(**LOAD_ARGS).validation[1]) == 359
    assert acc["keras_top1"] > 0.8 and acc["drop_pp"] <= 1.0
    assert acc["export_top1"] == pytest.approx(acc["keras_top1"] - acc["drop_pp"] / 100)
    assert 0.9 <= acc["agreement"] <= 1.0 and 0 < acc["max_abs_diff"] < 0.5
    assert result.size_bytes < 0.7 * float_.size_bytes  # int8 weights
    assert result.latency_ms > 0

    card = json.loads((out / "model_card.json").read_text())
    assert sorted(card["exports"]) == ["m.tflite", "m_int8.tflite"]
    entry = card["exports"]["m_int8.tflite"]
    assert entry["quantize"] == "int8" and entry["representative_examples"] == 300
    assert entry["accuracy"] == acc and entry["io"]["input"]["dtype"] == "float32"
    assert card["model"]["class_names"] == [str(i) for i in range(10)]
    assert card["model"]["spec"]["blocks"][1]["filters"] == 16
    assert card["model"]["flops"] == kr.flops(load_model(str(run_dir)))
    assert card["training"]["recipe"]["epochs"] == RUN_EPOCHS
    assert card["training"]["data"]["load_args"] == LOAD_ARGS
    assert card["environment"]["keras"] == keras.__version__
    md = (out / "MODEL_CARD.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| `m_int8.tflite`"))
    assert f"{acc['export_top1']:.4f}" in row and "int8" in row
    assert sorted(os.listdir(out)) == ["MODEL_CARD.md", "m.tflite", "m_int8.tflite",
                                       "model_card.json"]


def test_accuracy_drop_is_an_error_that_keeps_the_previous_export(run_dir, tmp_path):
    target = tmp_path / "m.tflite"
    target.write_bytes(b"previous export")
    data = kr.load_data(**LOAD_ARGS)
    # calibrated on blank images: every activation range is wrong, accuracy collapses
    with pytest.raises(AccuracyDropError, match=r"^the int8 tflite export's validation "
                       r"top-1 accuracy is 0\.\d+, the Keras model's 0\.\d+: a drop of "
                       r"[\d.]+ percentage points, more than max_accuracy_drop=1;"):
        kr.export(str(run_dir), str(target), "tflite", quantize="int8", overwrite=True,
                  representative_data=np.zeros((20, 8, 8, 1), "float32"),
                  validation_data=data, latency_runs=0)
    assert target.read_bytes() == b"previous export"
    assert sorted(os.listdir(tmp_path)) == ["m.tflite"]  # no card, no temporaries


def test_bad_quantize_input_is_one_line_and_writes_nothing(run_dir, tmp_path, capsys):
    old = tmp_path / "old_run"  # a 0.1.0 run folder: no run.json
    shutil.copytree(run_dir, old)
    (old / "run.json").unlink()
    target = str(tmp_path / "m.tflite")
    cases = [
        (dict(model=str(old), quantize="int8"),
         r"^representative_data is required for quantize='int8': .* has no run\.json"),
        (dict(quantize="int8", representative_data=np.zeros((4, 28, 28, 1))),
         r"^representative_data must hold examples of the model's input shape \(8, 8, 1\)\. "
         r"Received: examples of shape \(28, 28, 1\)$"),
        (dict(format="onnx", quantize="float16", path=str(tmp_path / "m.onnx")),
         r"^quantize must be one of None, 'int8', 'dynamic' for format='onnx'\. "
         r"Received: quantize='float16'$"),
        (dict(format="onnx", quantize="int8", io_dtype="int8", path=str(tmp_path / "m.onnx")),
         r"^io_dtype can be 'int8' only with quantize='int8' \(full-integer TFLite\); "
         r"this export has format='onnx'"),
        (dict(format="saved_model", quantize="float16", path=str(tmp_path / "sm")),
         r"^quantize must be one of None for format='saved_model'"),
        (dict(quantize="dynamic", io_dtype="int8"),
         r"^io_dtype can be 'int8' only with quantize='int8'"),
        (dict(quantize="dynamic", representative_data=np.zeros((4, 8, 8, 1))),
         r"^representative_data is used only with quantize='int8'"),
        (dict(validation_data=(np.zeros((4, 8, 8, 1)), np.zeros(3))),
         r"^validation_data must have one label per example \(4\)"),
    ]
    for kwargs, pattern in cases:
        args = {"model": str(run_dir), "path": target, "format": "tflite", **kwargs}
        with pytest.raises(ValueError, match=pattern):
            kr.export(args.pop("model"), args.pop("path"), args.pop("format"), **args)
    assert sorted(os.listdir(tmp_path)) == ["old_run"]
    for argv, words in [
        ([str(old), "--out", target, "--format", "tflite", "--quantize", "int8"],
         "representative_data is required for quantize='int8'"),
        ([str(run_dir), "--out", str(tmp_path / "m.onnx"), "--format", "onnx", "--quantize",
          "float16"], "quantize must be one of None, 'int8', 'dynamic' for format='onnx'"),
        ([str(run_dir), "--out", target, "--format", "tflite", "--quantize", "int8", "--data",
          "no/such/folder"], "no/such/folder"),
    ]:
        assert main(["export", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err
    assert sorted(os.listdir(tmp_path)) == ["old_run"]


def test_existing_target_is_kept(model, tmp_path):
    path = tmp_path / "m.keras"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        kr.export(model, str(path), "keras")
    assert path.read_bytes() == b"precious"
    kr.export(model, str(path), "keras", overwrite=True, verify=False)
    assert path.read_bytes() != b"precious"
    # a file named like the card that is not ours is not replaced either
    foreign = tmp_path / "other" / "model_card.json"
    foreign.parent.mkdir()
    foreign.write_text('{"mine": true}')
    with pytest.raises(FileExistsError, match="is not a keras_resnet model card"):
        kr.export(model, str(foreign.parent / "m.keras"), "keras", verify=False)
    assert os.listdir(foreign.parent) == ["model_card.json"]


def test_failed_verification_leaves_previous_export(model, tmp_path, monkeypatch):
    path = tmp_path / "sm"
    kr.export(model, str(path), "saved_model", verify=False)
    before = sorted(os.listdir(path))
    assert "model_card.json" in before  # a SavedModel's card is inside it
    marker = path / "keep.txt"
    marker.write_text("old export")

    def broken(*args, **kwargs):
        raise ExportVerificationError("differs by 1.0")

    monkeypatch.setattr(ex, "verify_export", broken)
    with pytest.raises(ExportVerificationError):
        kr.export(model, str(path), "saved_model", overwrite=True)
    assert marker.read_text() == "old export"  # the previous export is intact
    assert sorted(os.listdir(path)) == sorted(before + ["keep.txt"])
    assert sorted(os.listdir(tmp_path)) == ["sm"]


def test_verification_catches_a_wrong_export(model, tmp_path):
    other = kr.build_resnet(kr.spec_of(model))  # same layers, other weights
    path = str(tmp_path / "other.keras")
    other.save(path)
    with pytest.raises(ExportVerificationError, match="differs from the model"):
        ver.verify_export(model, path, "keras")


def test_bad_arguments(model, tmp_path):
    with pytest.raises(ValueError, match=r"^format must be one of 'keras', 'saved_model'"):
        kr.export(model, str(tmp_path / "x"), "pb")
    with pytest.raises(ValueError, match=r"^filepath must end with '\.tflite' for "
                                         r"format='tflite'\. Received: filepath="):
        kr.export(model, str(tmp_path / "x.lite"), "tflite")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        kr.export(str(tmp_path / "missing.keras"), str(tmp_path / "y.keras"), "keras")
    with pytest.raises(FileNotFoundError, match="a folder without model.keras"):
        kr.export(str(tmp_path), str(tmp_path / "y.keras"), "keras")
    bad = tmp_path / "corrupt.keras"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="is not a readable .keras model"):
        kr.export(str(bad), str(tmp_path / "z.keras"), "keras")
    # Missing folders are created (as tf.saved_model.save does); nothing is replaced.
    nested = tmp_path / "no" / "such" / "dir" / "m.keras"
    kr.export(model, str(nested), "keras", verify=False)
    assert nested.is_file() and sorted(os.listdir(nested.parent)) == [
        "MODEL_CARD.md", "m.keras", "model_card.json"]


def test_export_path_keyword_is_removed_and_names_filepath(model, tmp_path):
    """0.2's path= (deprecated in 0.3) fails before any work, naming filepath=."""
    removed = r"^export\(path=\.\.\.\) was deprecated in 0\.3 and is removed; use filepath=$"
    with pytest.raises(TypeError, match=removed):
        kr.export(model, path=str(tmp_path / "old.keras"), format="keras", verify=False)
    with pytest.raises(TypeError, match=removed):
        kr.export(model, path=str(tmp_path / "a.keras"), filepath=str(tmp_path / "b.keras"))
    assert list(tmp_path.iterdir()) == []


def test_serving_imports_nothing_from_training():
    """Serving needs nothing from training (issue 12): read the imports of every module."""
    folder = pathlib.Path(kr.__file__).parent / "serving"
    banned = ("keras_resnet.train", "keras_resnet.training", "keras_resnet.compare",
              "keras_resnet.tuning")
    seen = set()
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            seen.update(names)
            bad = [n for n in names if n and n.startswith(banned)]
            assert not bad, f"{path.name} imports {bad}"
    assert "keras_resnet.serving.load" in seen and len(list(folder.glob("*.py"))) >= 8


@needs_onnx
@pytest.mark.slow
def test_dynamic_onnx_and_float16_tflite_of_a_run_folder(run_dir, tmp_path):
    for fmt, name, q in [("onnx", "m.onnx", "dynamic"), ("tflite", "m16.tflite", "float16"),
                         ("tflite", "mdyn.tflite", "dynamic")]:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            result = kr.export(str(run_dir), str(tmp_path / name), fmt, quantize=q,
                               latency_runs=3)
        slow = [w for w in seen if "runs slower than float32" in str(w.message)]
        assert len(slow) == (fmt == "onnx")  # only dynamic ONNX warns
        assert result.accuracy["drop_pp"] <= 1.0 and result.accuracy["agreement"] > 0.9
    card = json.loads((tmp_path / "model_card.json").read_text())
    assert [card["exports"][n]["quantize"] for n in ("m.onnx", "m16.tflite", "mdyn.tflite")] \
        == ["dynamic", "float16", "dynamic"]


@pytest.mark.slow
def test_int8_input_and_output(run_dir, tmp_path):
    data = kr.load_data(**LOAD_ARGS)
    path = tmp_path / "m.tflite"
    result = kr.export(str(run_dir), str(path), "tflite", quantize="int8", io_dtype="int8",
                       representative_data=data, validation_data=data.validation)
    assert result.accuracy["drop_pp"] <= 1.0
    io = json.loads((tmp_path / "model_card.json").read_text())["exports"]["m.tflite"]["io"]
    assert io["input"]["dtype"] == io["output"]["dtype"] == "int8"
    assert io["input"]["scale"] > 0
    x = data.validation[0][:50]
    agree = run_export(str(path), "tflite", x).argmax(-1) == \
        load_model(str(run_dir)).predict(x, verbose=0).argmax(-1)
    assert agree.mean() >= 0.9


@pytest.mark.slow
def test_cli_exports_int8_from_a_run_folder(run_dir, tmp_path, capsys):
    target = tmp_path / "m.tflite"
    assert main(["export", str(run_dir), "--out", str(target), "--format", "tflite",
                 "--quantize", "int8", "--latency-runs", "3"]) == 0
    out = capsys.readouterr().out
    assert "(tflite, int8; verified in a fresh process" in out
    assert "validation top-1" in out and "359 examples" in out and target.exists()


# ---------------------------------------------------------------- int8 ONNX, serving path
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    """Float and int8 TFLite and ONNX exports of the run folder, side by side (the
    int8 ONNX one checked with the run's validation split; the others unchecked,
    to keep the module fast)."""
    folder = tmp_path_factory.mktemp("exported")
    results = {}
    for name, fmt, q in [("m.tflite", "tflite", None), ("m_int8.tflite", "tflite", "int8"),
                         ("m.onnx", "onnx", None), ("m_int8.onnx", "onnx", "int8")]:
        if fmt == "onnx" and importlib.util.find_spec("onnxruntime") is None:
            continue
        results[name] = kr.export(str(run_dir), str(folder / name), fmt, quantize=q,
                                  verify=name == "m_int8.onnx", latency_runs=0)
    return folder, results


@needs_onnx
def test_static_int8_onnx_of_a_run_folder(exported):
    import onnx

    folder, results = exported
    result = results["m_int8.onnx"]
    acc = result.accuracy  # calibrated on the run's training data, checked on its validation
    assert acc["examples"] == 359 and acc["keras_top1"] > 0.8 and acc["drop_pp"] <= 1.0
    assert acc["agreement"] >= 0.97 and result.runtime.startswith("onnxruntime ")
    ops = [n.op_type for n in onnx.load(str(folder / "m_int8.onnx")).graph.node]
    # static: integer convolutions with scales fixed at export, no run-time quantization
    assert ops.count("QuantizeLinear") >= 10 and "DynamicQuantizeLinear" not in ops
    assert "ConvInteger" not in ops and ops[-1] == "Softmax"  # the softmax stays float
    x = kr.load_data(**LOAD_ARGS).validation[0][:20]
    p = open_model(folder / "m_int8.onnx", threads=1).predict(x)
    np.testing.assert_allclose(p.sum(-1), 1, atol=1e-5)  # not rounded to 1/256 steps
    entry = json.loads((folder / "model_card.json").read_text())["exports"]["m_int8.onnx"]
    assert entry["quantize"] == "int8" and entry["representative_examples"] == 300
    assert entry["accuracy"] == acc


@needs_onnx
def test_static_int8_onnx_accuracy_gate_keeps_the_previous_export(run_dir, tmp_path):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"previous export")
    data = kr.load_data(**LOAD_ARGS)
    with pytest.raises(ValueError, match=r"^max_accuracy_drop must be >= 0"):
        kr.export(str(run_dir), str(target), "onnx", quantize="int8", overwrite=True,
                  max_accuracy_drop=-1)
    # calibrated on blank images: every activation range is [0, 0], accuracy collapses
    with pytest.raises(AccuracyDropError, match=r"^the int8 onnx export's validation "
                       r"top-1 accuracy is 0\.\d+, the Keras model's 0\.\d+: a drop of "
                       r"[\d.]+ percentage points, more than max_accuracy_drop=1;"):
        kr.export(str(run_dir), str(target), "onnx", quantize="int8", overwrite=True,
                  representative_data=np.zeros((20, 8, 8, 1), "float32"),
                  validation_data=data, latency_runs=0)
    assert target.read_bytes() == b"previous export"
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]  # no card, no temporaries


@needs_onnx
def test_predict_gives_the_same_top1_on_every_format(run_dir, exported, tmp_path):
    folder, _ = exported
    x_val, y_val = kr.load_data(**LOAD_ARGS).validation
    p = load_model(str(run_dir)).predict(x_val, verbose=0)
    # six validation images the Keras model classifies right and confidently
    sure = [i for i in np.argsort(-p.max(-1)) if p[i].argmax() == y_val[i]]
    images = []
    for i in sure[:6]:
        images.append(str(tmp_path / f"digit{i}.png"))
        keras.utils.save_img(images[-1], np.round(x_val[i] * 255), scale=False)
    expected = [str(y_val[i]) for i in sure[:6]]
    paths = [str(run_dir)] + [str(folder / n) for n in
                              ("m.tflite", "m_int8.tflite", "m.onnx", "m_int8.onnx")]
    for path in paths:
        tops = list(predict_files(path, images, top=3))
        assert [t[0][0] for _, t in tops] == expected, path
        assert all(1 >= t[0][1] > 0.5 and t[0][1] >= t[1][1] >= t[2][1] for _, t in tops)
        # one interface for every format: float32 probabilities of a batch
        model = open_model(path)
        probs = model.predict(x_val[:40])
        assert probs.shape == (40, 10) and probs.dtype == np.float32
        np.testing.assert_allclose(probs.sum(-1), 1, atol=0.02)  # int8 TFLite: 1/256 steps
        assert np.mean(probs.argmax(-1) == p[:40].argmax(-1)) >= 0.95, path
        assert model.class_names == [str(i) for i in range(10)]  # labels.json / the card
    assert open_model(folder / "m_int8.tflite").io["input"]["dtype"] == "float32"
    assert open_model(folder / "m.onnx", threads=1).threads == 1
    with pytest.raises(ValueError, match=r"^threads applies to \.tflite and \.onnx files"):
        open_model(str(run_dir), threads=1)
    # an exported file names its classes from the model card beside it
    card_path = folder / "model_card.json"
    card = json.loads(card_path.read_text())
    card["model"]["class_names"] = WORDS
    card_path.write_text(json.dumps(card))
    tops = list(predict_files(str(folder / "m_int8.onnx"), images, top=1))
    assert [t[0][0] for _, t in tops] == [WORDS[int(e)] for e in expected]


def test_dynamic_onnx_warns_and_names_the_option_to_use(model, tmp_path):
    with pytest.warns(UserWarning, match=r"^quantize='dynamic' ONNX runs slower than float32 "
                      r"ONNX: .* Use quantize='int8'"):
        with pytest.raises((TypeError, ValueError), match="overwrite"):
            kr.export(model, str(tmp_path / "m.onnx"), "onnx", quantize="dynamic",
                      overwrite="yes")
    assert os.listdir(tmp_path) == []


def test_machine_names_the_cpu_and_sets_thread_counts():
    assert machine.cpu_name() and machine.all_cores() >= 1
    assert set(machine.cpu_flags()) <= set(machine.FLAGS)
    env = machine.thread_env(1, {"XLA_FLAGS": "--xla_dump_to=/tmp/x"})
    assert env["TF_NUM_INTRAOP_THREADS"] == env["OMP_NUM_THREADS"] == "1"
    assert env["XLA_FLAGS"].startswith("--xla_dump_to=/tmp/x --xla_cpu_multi_thread_eigen=false")
    assert machine.thread_env(machine.all_cores(), {"A": "1"}) == {"A": "1"}
    assert machine.describe()["cpu"] == machine.cpu_name()


@needs_onnx
def test_onnxruntime_runs_the_int8_onnx_model_with_integer_convolutions(tmp_path):
    """What makes the static int8 ONNX model fast, checked without a clock: after
    onnxruntime's own graph optimizations every convolution is an integer QLinearConv
    and no float Conv is left (dynamic quantization's ConvInteger with run-time
    activation quantization was the slow path). Its speed against float32 is measured
    by benchmarks/latency.py, which prints the ratio, not by a test."""
    import onnx
    import onnxruntime as ort

    keras.utils.set_random_seed(0)
    model = kr.build_resnet("cifar_resnet20", input_shape=(16, 16, 3), classes=10)
    rep = np.random.RandomState(0).uniform(0, 1, (32, 16, 16, 3)).astype("float32")
    kr.export(model, str(tmp_path / "q.onnx"), "onnx", quantize="int8",
              representative_data=rep, verify=False)
    convs = sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "as_run.onnx")
    ort.InferenceSession(str(tmp_path / "q.onnx"), options,
                         providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "as_run.onnx")).graph.node]
    assert convs == 19  # the stem and 18 in the blocks (option A: no shortcut convolution)
    assert ops.count("QLinearConv") == convs, sorted(set(ops))
    assert "Conv" not in ops and "ConvInteger" not in ops, sorted(set(ops))


@needs_onnx
@pytest.mark.slow
def test_export_docs_run_as_written(tmp_path):
    """docs/export.md: its Python blocks, in order, in an empty folder, then its shell
    commands (through the CLI's main); about a minute (several fresh processes)."""
    import re
    import shlex
    import subprocess
    import sys

    text = (pathlib.Path(__file__).parent.parent / "docs" / "export.md").read_text()
    python = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    shell = [shlex.split(line)[1:] for block in re.findall(r"```bash\n(.*?)```", text,
                                                             flags=re.S)
             for line in block.splitlines() if line.startswith("keras-resnet ")]
    assert len(python) >= 6 and shell
    script = "\n\n".join(python) + (
        "\n\nfrom keras_resnet.cli import main\n"
        + "".join(f"assert main({args!r}) == 0\n" for args in shell))
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(kr.__file__).parent.parent),
               TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "the int8 onnx export's validation top-1 accuracy is" in out.stdout
    assert "digit.png: " in out.stdout  # keras-resnet predict on the int8 ONNX file
    assert sorted(os.listdir(tmp_path / "exported")) == [
        "MODEL_CARD.md", "digits.tflite", "digits_int8.onnx", "model_card.json"]


def test_open_model_takes_channels_last_images_for_a_channels_first_model(tmp_path):
    """A channels-first .keras model (runs on JAX; TensorFlow's CPU convolutions are
    channels-last only) is fed channels-last images as predict_files reads them."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import keras, numpy as np, keras_resnet as kr
        keras.config.set_image_data_format("channels_first")
        spec = kr.ModelSpec(input_shape=(3, 8, 8), stem=kr.StemSpec(8, 3, 1, pool=None),
                            blocks=[kr.BlockSpec("basic", 8)], classes=4)
        model = kr.build(spec)
        model.save({str(tmp_path / "cf.keras")!r})
        keras.config.set_image_data_format("channels_last")
        opened = kr.serving.open_model({str(tmp_path / "cf.keras")!r})
        assert opened.channels_first and opened.image_shape == (8, 8, 3), opened.image_shape
        x = np.random.RandomState(0).rand(5, 3, 8, 8).astype("float32")
        want = model.predict(x, verbose=0)
        np.testing.assert_allclose(opened.predict(x), want, atol=1e-5)
        np.testing.assert_allclose(opened.predict(np.moveaxis(x, 1, -1)), want, atol=1e-5)
        print("ok")
    """)
    env = dict(os.environ, KERAS_BACKEND="jax",
               PYTHONPATH=str(pathlib.Path(kr.__file__).parent.parent))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
