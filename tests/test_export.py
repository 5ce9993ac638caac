"""Export: every format reloads in a fresh process with the same outputs; nothing
a user has is overwritten or half-written."""

import importlib
import importlib.util
import os

import keras
import numpy as np
import pytest

import keras_resnet as kr

# the module (kr.export is the function)
ex = importlib.import_module("keras_resnet.export")

needs_onnx = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None
    or importlib.util.find_spec("tf2onnx") is None,
    reason="the [onnx] extra (tf2onnx, onnxruntime) is not installed")


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    spec = kr.presets.get("cifar_resnet20").replace(input_shape=(16, 16, 3), classes=5)
    return kr.build_resnet(spec)


@pytest.mark.parametrize("fmt,name", [
    ("keras", "m.keras"), ("saved_model", "sm"), ("tflite", "m.tflite"),
    pytest.param("onnx", "m.onnx", marks=needs_onnx)])
def test_export_reloads_with_same_outputs(model, tmp_path, fmt, name):
    path = tmp_path / name
    result = kr.export(model, str(path), fmt)
    assert result.path == str(path) and path.exists()
    assert result.max_abs_diff is not None and result.max_abs_diff <= ex.TOLERANCE[fmt]
    assert sorted(os.listdir(tmp_path)) == [name]  # no temporary files left behind
    # and again, independently, as a user would
    x = np.random.RandomState(5).rand(3, 16, 16, 3).astype("float32")
    np.testing.assert_allclose(ex.run_export(str(path), fmt, x), model.predict(x, verbose=0),
                               atol=ex.TOLERANCE[fmt])


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="TFSMLayer is a TensorFlow-backend layer")
def test_saved_model_signature_and_tfsmlayer(model, tmp_path):
    import tensorflow as tf

    path = str(tmp_path / "sm")
    kr.export(model, path, "saved_model", verify=False)
    loaded = tf.saved_model.load(path)
    assert "serving_default" in loaded.signatures
    layer = keras.layers.TFSMLayer(path, call_endpoint="serve")
    x = np.random.RandomState(1).rand(2, 16, 16, 3).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)),
                               model.predict(x, verbose=0), atol=1e-5)


def test_existing_target_is_kept(model, tmp_path):
    path = tmp_path / "m.keras"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        kr.export(model, str(path), "keras")
    assert path.read_bytes() == b"precious"
    kr.export(model, str(path), "keras", overwrite=True, verify=False)
    assert path.read_bytes() != b"precious"


def test_failed_verification_leaves_previous_export(model, tmp_path, monkeypatch):
    path = tmp_path / "sm"
    kr.export(model, str(path), "saved_model", verify=False)
    before = sorted(os.listdir(path))
    marker = path / "keep.txt"
    marker.write_text("old export")

    def broken(*args, **kwargs):
        raise ex.ExportVerificationError("differs by 1.0")

    monkeypatch.setattr(ex, "verify_export", broken)
    with pytest.raises(ex.ExportVerificationError):
        kr.export(model, str(path), "saved_model", overwrite=True)
    assert marker.read_text() == "old export"  # the previous export is intact
    assert sorted(os.listdir(path)) == sorted(before + ["keep.txt"])
    assert sorted(os.listdir(tmp_path)) == ["sm"]


def test_verification_catches_a_wrong_export(model, tmp_path):
    other = kr.build_resnet(kr.spec_of(model))  # same layers, other weights
    path = str(tmp_path / "other.keras")
    other.save(path)
    with pytest.raises(ex.ExportVerificationError, match="differs from the model"):
        ex.verify_export(model, path, "keras")


def test_bad_arguments(model, tmp_path):
    with pytest.raises(ValueError, match=r"^format must be one of 'keras', 'saved_model'"):
        kr.export(model, str(tmp_path / "x"), "pb")
    with pytest.raises(ValueError, match=r"^path must end with '\.tflite'"):
        kr.export(model, str(tmp_path / "x.lite"), "tflite")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        kr.export(str(tmp_path / "missing.keras"), str(tmp_path / "y.keras"), "keras")
    bad = tmp_path / "corrupt.keras"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="is not a readable .keras model"):
        kr.export(str(bad), str(tmp_path / "z.keras"), "keras")
    # Missing folders are created (as tf.saved_model.save does); nothing is replaced.
    nested = tmp_path / "no" / "such" / "dir" / "m.keras"
    kr.export(model, str(nested), "keras")
    assert nested.is_file() and os.listdir(nested.parent) == ["m.keras"]
