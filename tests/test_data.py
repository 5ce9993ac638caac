"""Data sources: built-in digits, image folders, keras.datasets (offline message)."""

import keras
import numpy as np
import pytest

import keras_resnet as kr


def test_digits_split_is_stratified_and_scaled():
    data = kr.load_data("digits")
    (x, y), (xv, yv) = data.train, data.validation
    assert x.shape == (1438, 8, 8, 1) and xv.shape == (359, 8, 8, 1)
    assert data.input_shape == (8, 8, 1) and data.classes == 10
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.dtype == np.float32
    # stratified: every class keeps ~20% of its examples in validation
    counts = np.bincount(yv, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 37
    again = kr.load_data("digits")
    np.testing.assert_array_equal(again.train[1], y)  # same seed, same split
    other = kr.load_data("digits", seed=1)
    assert not np.array_equal(other.train[1], y)


def test_load_args_load_the_same_data_again(tmp_path):
    data = kr.load_data("digits", validation_split=0.3, seed=2, flatten=True)
    assert data.load_args == {"source": "digits", "validation_split": 0.3, "seed": 2,
                              "flatten": True}
    again = kr.load_data(**data.load_args)
    np.testing.assert_array_equal(again.train[0], data.train[0])
    np.testing.assert_array_equal(again.validation[1], data.validation[1])
    root = write_folder(tmp_path / "imgs")
    folder = kr.load_data(str(root), image_size=(16, 16), batch_size=4)
    assert folder.load_args["source"] == str(root.resolve())
    assert folder.load_args["image_size"] == [16, 16]
    assert kr.load_data(**folder.load_args).input_shape == (16, 16, 3)


def test_digits_flat_and_no_validation():
    data = kr.load_data("digits", flatten=True, validation_split=0.0)
    assert data.train[0].shape == (1797, 64) and data.validation is None
    assert data.input_shape == (64,)


def test_from_arrays_counts_classes_over_both_splits_and_checks_shapes():
    x, y = np.zeros((10, 8, 8, 1), "float32"), np.arange(10) % 3
    data = kr.Data.from_arrays(x, y, validation_data=(x[:4], np.array([0, 1, 2, 4])))
    assert data.input_shape == (8, 8, 1) and data.classes == 5
    assert data.class_names == ["0", "1", "2", "3", "4"] and data.is_numpy
    assert data.load_args is None and kr.Data.from_arrays(x, y).validation is None
    for args, exc, pattern in [
        ((x, None), TypeError, r"y must hold the integer labels of x"),
        (([[0.0]], y), TypeError, r"x must be a NumPy array"),
        ((x, y[:9]), ValueError, r"x and y must hold the same number .*x.shape=\(10, 8, 8, "
         r"1\), y.shape=\(9,\)"),
        ((x, y + 0.5), ValueError, r"y must hold integer class labels >= 0. Received: "
         r"dtype=float64"),
        ((x, y, (x[:, :4], y)), ValueError, r"x_val must hold examples of the shape of "
         r"x's, \(8, 8, 1\)"),
        ((x, y, x), TypeError, r"validation_data must be a pair"),
    ]:
        with pytest.raises(exc, match=pattern):
            kr.Data.from_arrays(*args)


def write_folder(root, classes=("cat", "dog", "owl"), per_class=4, size=(20, 24)):
    rng = np.random.RandomState(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            keras.utils.save_img(str(root / c / f"{i}.png"),
                                 rng.randint(0, 255, size + (3,)).astype("uint8"))
    return root


def test_image_folder(tmp_path):
    root = write_folder(tmp_path / "imgs")
    data = kr.load_data(str(root), image_size=(16, 16), validation_split=0.25,
                        batch_size=4)
    assert data.class_names == ["cat", "dog", "owl"] and data.classes == 3
    assert data.input_shape == (16, 16, 3)
    xs = [x for x, _ in data.train]
    n_train = sum(int(x.shape[0]) for x in xs)
    n_val = sum(int(x.shape[0]) for x, _ in data.validation)
    assert (n_train, n_val) == (9, 3)
    assert xs[0].shape[1:] == (16, 16, 3)
    assert 0.0 <= float(np.min(xs[0])) and float(np.max(xs[0])) <= 1.0
    grey = kr.load_data(str(root), image_size=(8, 8), color_mode="grayscale",
                        validation_split=0.0)
    assert grey.input_shape == (8, 8, 1) and grey.validation is None


def test_folder_errors(tmp_path):
    (tmp_path / "only").mkdir()
    with pytest.raises(ValueError, match="one sub-folder per class"):
        kr.load_data(str(tmp_path))
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        kr.load_data(str(f))
    with pytest.raises(ValueError, match=r"data source must be 'digits'.*did you mean 'digits'"):
        kr.load_data("digit")


def test_keras_datasets_offline_message(monkeypatch):
    calls = []

    def offline():
        calls.append("cifar10")
        raise Exception("URL fetch failure on https://www.cs.toronto.edu/...: "
                        "Name or service not known")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(OSError, match=r"could not load 'cifar10' through keras.datasets .*"
                                      r"URL fetch failure.*--data digits.*folder"):
        kr.load_data("cifar10")
    assert calls == ["cifar10"]  # the real keras loader is the one called


def test_keras_datasets_shapes(monkeypatch):
    rng = np.random.RandomState(0)
    fake = ((rng.randint(0, 255, (10, 28, 28)), rng.randint(0, 10, 10)),
            (rng.randint(0, 255, (4, 28, 28)), rng.randint(0, 10, 4)))
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: fake)
    data = kr.load_data("mnist")
    assert data.input_shape == (28, 28, 1) and data.train[0].max() <= 1.0
    assert data.validation[0].shape == (4, 28, 28, 1)


def test_classes_is_the_name_and_num_classes_is_removed():
    """Data.classes, as keras.applications and ModelSpec say it; 0.2's num_classes
    (deprecated in 0.3) fails naming it."""
    data = kr.load_data("digits")
    assert data.classes == 10
    with pytest.raises(AttributeError, match=r"^Data\.num_classes was deprecated in 0\.3 and "
                       r"is removed; use Data\.classes$"):
        data.num_classes  # noqa: B018
    assert not hasattr(data, "num_classes")
    with pytest.raises(AttributeError, match="'Data' object has no attribute 'nope'"):
        data.nope  # noqa: B018
    assert data.identity()["classes"] == 10 and "num_classes" not in data.identity()


def test_augmentation_has_one_implementation():
    """0.2's Keras-layer cifar_augmentation is gone; its error names augment_batch,
    which draws from (seed, epoch, batch) (see test_train.py for its draws)."""
    import keras_resnet.data
    from keras_resnet.training.pipeline import augment_batch

    with pytest.raises(AttributeError, match=r"^keras_resnet\.data\.cifar_augmentation was "
                       r"removed in 0\.3: .*augment_batch\(x, seed, epoch, batch, pad\)"):
        keras_resnet.data.cifar_augmentation  # noqa: B018
    x = np.random.RandomState(0).rand(8, 32, 32, 3).astype("float32")
    train = augment_batch(x, seed=1, epoch=0, batch=0, pad=4)
    assert train.shape == x.shape and not np.allclose(train, x)
    # a shift keeps whole pixels: every value of an augmented image is one of its
    # original's, or the zero fill
    img = np.arange(1, 65, dtype="float32").reshape(1, 8, 8, 1) / 64
    shifted = augment_batch(img.repeat(16, 0), seed=3, epoch=0, batch=0, pad=1)
    assert set(np.round(shifted[shifted > 0] * 64).astype(int)) <= set(range(1, 65))
    assert (shifted == 0).any()  # some image moved
