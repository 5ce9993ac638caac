"""Preprocessing as data: recorded in the spec, applied as keras.applications does."""

import json

import keras
import numpy as np
import pytest
from test_presets import randomize_bn

import keras_resnet as kr
from keras_resnet import preprocessing as P
from keras_resnet.inputs import load_image, preprocess_input
from keras_resnet.layers import Preprocess

#: presets with keras.applications weights -> (their preprocess_input, mode)
APPS = {name: kr.presets.keras_application(name) for name in kr.presets.names()
        if kr.presets.keras_application(name)}


def family(app):
    return keras.applications.resnet_v2 if app.endswith("V2") else keras.applications.resnet


def raw_images(shape=(3, 16, 16, 3), seed=0):
    return np.random.RandomState(seed).randint(0, 256, shape).astype("uint8")


@pytest.mark.parametrize("name", sorted(APPS))
def test_equals_keras_applications_preprocess_input_exactly(name):
    app = APPS[name]
    mode = kr.presets.KERAS_APPLICATIONS_PREPROCESSING[app]
    spec = kr.presets.get(name).replace(preprocessing=mode)
    for raw in (raw_images(), raw_images().astype("float32"), raw_images()[0]):
        expected = family(app).preprocess_input(raw.copy())
        got = preprocess_input(raw, spec)
        assert got.dtype == expected.dtype == np.float32
        assert np.array_equal(got, expected), name
    # channels_first NumPy batches and images (keras.applications' own branch)
    chw = np.transpose(raw_images(), (0, 3, 1, 2))
    for x in (chw, chw[0]):
        expected = family(app).preprocess_input(x.astype("float32"), data_format="channels_first")
        assert np.array_equal(preprocess_input(x, spec, data_format="channels_first"), expected)
    # backend tensors take the same steps (keras.applications' tensor branch)
    tensor = keras.ops.convert_to_tensor(raw_images().astype("float32"))
    expected = family(app).preprocess_input(tensor)
    got = preprocess_input(tensor, spec)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(got),
                                  keras.ops.convert_to_numpy(expected))


def test_every_mode_on_a_known_pixel():
    raw = np.array([[[0, 51, 255]]], dtype="uint8")
    unit = P.apply(raw, "unit")
    np.testing.assert_allclose(unit, [[[0.0, 0.2, 1.0]]], rtol=1e-6)
    np.testing.assert_allclose(P.apply(raw, "tf"), [[[-1.0, -0.6, 1.0]]], rtol=1e-6)
    np.testing.assert_allclose(P.apply(raw, "caffe"),
                               [[[255 - 103.939, 51 - 116.779, 0 - 123.68]]], rtol=1e-6)
    torch = (np.array([0, 0.2, 1.0]) - np.array(P.IMAGENET_MEAN)) / np.array(P.IMAGENET_STD)
    np.testing.assert_allclose(P.apply(raw, "torch")[0, 0], torch, rtol=1e-5)
    np.testing.assert_array_equal(P.apply(raw, "none"), raw.astype("float32"))
    hub = P.apply(raw, P.KERAS_HUB_IMAGENET)[0, 0]
    np.testing.assert_allclose(hub, torch, rtol=1e-5)  # the same convention, other formula
    np.testing.assert_allclose(P.apply(raw, {"scale": 2.0, "offset": [1, 2, 3]}),
                               [[[1.0, 104.0, 513.0]]])
    assert raw.dtype == np.uint8 and raw[0, 0, 1] == 51  # never changed in place


def test_the_default_and_files_without_the_field():
    spec = kr.presets.get("cifar_resnet20")
    assert spec.preprocessing == "unit"
    old = json.loads(spec.to_json())
    del old["preprocessing"], old["drop_path_rate"]  # a 0.2 spec file
    assert kr.ModelSpec.from_dict(old).preprocessing == "unit"
    # a 0.2 .keras config (no field in its spec) loads with the same meaning
    config = kr.build_resnet("cifar_resnet20").get_config()
    del config["spec"]["preprocessing"]
    assert kr.ResNetModel.from_config(config).spec.preprocessing == "unit"


@pytest.mark.parametrize("value", ["caffe", "tf", "torch", "none", "unit",
                                   {"scale": [0.1, 0.2, 0.3], "offset": -1.0}])
def test_spec_json_round_trip(value):
    spec = kr.presets.get("cifar_resnet20").replace(preprocessing=value)
    again = kr.ModelSpec.from_json(spec.to_json())
    assert again == spec and hash(again) == hash(spec)
    assert json.loads(spec.to_json())["preprocessing"] == value
    assert kr.ModelSpec.from_json(spec.to_json(compact=True)) == spec


def test_keras_round_trip_keeps_it(tmp_path):
    value = {"scale": [0.1, 0.2, 0.3], "offset": [-1.0, 0.0, 1.0]}
    model = kr.build_resnet("cifar_resnet20", preprocessing=value, input_shape=(16, 16, 3))
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.models.load_model(path)
    assert kr.spec_of(again).preprocessing == P.check(value)
    raw = raw_images()
    np.testing.assert_array_equal(preprocess_input(raw, again), P.apply(raw, value))


@pytest.mark.parametrize("value,match,exc", [
    ("cafe", r"preprocessing must be one of .*\(did you mean 'caffe'\?\)\. "
             r"Received: preprocessing='cafe'", ValueError),
    (3, r"preprocessing must be a preprocessing name or a dict", TypeError),
    ({"mean": 1}, r"preprocessing.mean is not a known field.*Known fields: scale, offset",
     ValueError),
    ({"scale": [1, 2]}, r"preprocessing.scale must be a number or a list of 3 \(one per "
                        r"channel\)\. Received: scale=\[1, 2\]", ValueError),
    ({"offset": "1"}, r"preprocessing.offset must be a number", TypeError),
    ({"scale": float("nan")}, r"preprocessing.scale must be a finite number", ValueError),
])
def test_invalid_values_name_the_field(value, match, exc):
    with pytest.raises(exc, match=match):
        kr.presets.get("cifar_resnet20").replace(preprocessing=value)


def test_per_channel_conventions_need_rgb():
    with pytest.raises(ValueError, match=r"preprocessing 'caffe' needs 3-channel RGB images"
                                         r".*1-channel images\. Received"):
        kr.presets.get("cifar_resnet20").replace(input_shape=(32, 32, 1),
                                                  preprocessing="caffe")
    mlp = kr.ModelSpec(input_shape=(64,), stem=None, blocks=[kr.BlockSpec("dense", 8)],
                       classes=3)
    with pytest.raises(ValueError, match="takes vectors"):
        mlp.replace(preprocessing="torch")
    assert mlp.replace(preprocessing="none").preprocessing == "none"


def test_imagenet_weights_record_keras_applications_mode(monkeypatch):
    """weights="imagenet" (download replaced by random weights) records the mode."""
    made = {}

    def fake(name):
        real = getattr(keras.applications, name)

        def build(**kwargs):
            made[name] = kwargs.pop("weights")
            return real(weights=None, **kwargs)
        return build

    for app in ("ResNet50", "ResNet50V2"):
        monkeypatch.setattr(keras.applications, app, fake(app))
    r50 = kr.build_resnet("resnet50", weights="imagenet", input_shape=(32, 32, 3))
    v2 = kr.build_resnet("resnet50v2", weights="imagenet", input_shape=(32, 32, 3))
    assert made == {"ResNet50": "imagenet", "ResNet50V2": "imagenet"}
    assert kr.spec_of(r50).preprocessing == "caffe"
    assert kr.spec_of(v2).preprocessing == "tf"
    assert kr.presets.get("resnet50").preprocessing == "unit"  # a preset has no weights


def test_port_weights_records_the_mode():
    ka = keras.applications.ResNet50V2(weights=None, input_shape=(32, 32, 3))
    ours = kr.presets.port_weights(ka, kr.build_resnet("resnet50v2", input_shape=(32, 32, 3)))
    assert kr.spec_of(ours).preprocessing == "tf"
    kept = kr.presets.port_weights(ka, kr.build_resnet("resnet50v2", input_shape=(32, 32, 3),
                                                       preprocessing="none"),
                                   preprocessing=None)
    assert kr.spec_of(kept).preprocessing == "none"


def test_preprocess_layer_round_trips_and_takes_uint8(tmp_path):
    model = kr.build_resnet("cifar_resnet20", preprocessing="torch", input_shape=(16, 16, 3))
    raw = keras.Input((16, 16, 3), dtype="uint8")
    layer = Preprocess(kr.spec_of(model).preprocessing)
    served = keras.Model(raw, model(layer(raw)))
    images = raw_images()
    expected = model.predict(preprocess_input(images, model), verbose=0)
    np.testing.assert_allclose(served.predict(images, verbose=0), expected, atol=1e-5)
    path = str(tmp_path / "served.keras")
    served.save(path)
    again = keras.models.load_model(path)
    layers = [x for x in again.layers if isinstance(x, Preprocess)]
    assert layers[0].get_config()["preprocessing"] == "torch"
    np.testing.assert_allclose(again.predict(images, verbose=0), expected, atol=1e-5)
    explicit = Preprocess({"scale": [1.0, 2.0, 3.0], "offset": 0.5})
    assert Preprocess.from_config(explicit.get_config()).preprocessing == explicit.preprocessing
    with pytest.raises(ValueError, match=r"a list of 1 \(one per channel\)"):
        explicit(keras.ops.zeros((1, 4, 4, 1)))


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_a_ported_model_predicts_an_image_file_as_keras_applications(tmp_path, ext):
    """load_img -> img_to_array -> preprocess_input -> predict, against kr.load_image."""
    keras.utils.set_random_seed(7)
    size = 64
    ka = keras.applications.ResNet50(weights=None, input_shape=(size, size, 3))
    randomize_bn(ka)
    ours = kr.presets.port_weights(ka, kr.build_resnet("resnet50", input_shape=(size, size, 3)))
    assert kr.spec_of(ours).preprocessing == "caffe"
    path = str(tmp_path / f"photo.{ext}")
    keras.utils.save_img(path, raw_images((48, 80, 3), seed=3))  # another size: resized
    img = keras.utils.load_img(path, target_size=(size, size))
    x = keras.applications.resnet.preprocess_input(keras.utils.img_to_array(img))
    expected = ka.predict(x[None], verbose=0)
    got = ours.predict(load_image(path, ours)[None], verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert np.array_equal(load_image(path, ours), x)


def test_load_image_channels_and_errors(tmp_path):
    path = str(tmp_path / "grey.png")
    keras.utils.save_img(path, raw_images((10, 12, 1)))
    x = load_image(path, kr.presets.get("cifar_resnet20").replace(input_shape=(8, 8, 1)))
    assert x.shape == (8, 8, 1) and x.dtype == np.float32 and 0 <= x.min() <= x.max() <= 1
    free = load_image(path, kr.presets.get("cifar_resnet20").replace(
        input_shape=(None, None, 3)))
    assert free.shape == (10, 12, 3)  # no size: the image's own
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image(str(tmp_path / "nope.png"), "cifar_resnet20")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="is not a readable image"):
        load_image(str(tmp_path / "bad.png"), "cifar_resnet20")
    with pytest.raises(TypeError, match="was not built by keras_resnet"):
        preprocess_input(raw_images(), keras.Sequential([keras.Input((3,))]))


def test_channels_first_image_input(tmp_path):
    path = str(tmp_path / "photo.png")
    keras.utils.save_img(path, raw_images((20, 20, 3)))
    old = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        spec = kr.presets.get("resnet50").replace(input_shape=(3, 32, 32),
                                                  preprocessing="caffe")
        x = load_image(path, spec)
        img = keras.utils.img_to_array(keras.utils.load_img(path, target_size=(32, 32)),
                                       data_format="channels_first")
        expected = keras.applications.resnet.preprocess_input(img)
    finally:
        keras.config.set_image_data_format(old)
    assert x.shape == (3, 32, 32)
    assert np.array_equal(x, expected)


def test_keras_resnet_predict_gives_keras_applications_answer_on_an_image_file(tmp_path,
                                                                               capsys):
    """The command a user runs: `keras-resnet predict model.keras photo.jpg` gives the
    probabilities of keras.applications' own pipeline (load_img, preprocess_input,
    predict) for a model with ported weights (random weights are enough)."""
    from keras_resnet.cli import main

    keras.utils.set_random_seed(11)
    size = 64
    ka = keras.applications.ResNet50(weights=None, input_shape=(size, size, 3))
    randomize_bn(ka)
    ours = kr.presets.port_weights(ka, kr.build_resnet("resnet50", input_shape=(size, size, 3)))
    ours.save(str(tmp_path / "r50.keras"))
    path = str(tmp_path / "photo.jpg")
    keras.utils.save_img(path, raw_images((70, 50, 3), seed=5))
    img = keras.utils.load_img(path, target_size=(size, size))
    x = keras.applications.resnet.preprocess_input(keras.utils.img_to_array(img))
    expected = ka.predict(x[None], verbose=0)[0]
    top = np.argsort(-expected)[:3]
    [(_, got)] = list(kr.serving.predict_files(str(tmp_path / "r50.keras"), [path], top=3))
    assert [int(name) for name, _ in got] == top.tolist()
    np.testing.assert_allclose([p for _, p in got], expected[top], atol=1e-5, rtol=0)
    assert main(["predict", str(tmp_path / "r50.keras"), path, "--top", "3"]) == 0
    printed = capsys.readouterr().out.strip().split(": ", 1)[1].split(", ")
    assert [int(p.split()[0]) for p in printed] == top.tolist()
    assert [float(p.split()[1]) for p in printed] == [round(float(v), 3) for v in expected[top]]
