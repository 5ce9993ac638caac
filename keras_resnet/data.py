"""Data for training and the experiment: built-in, folders, keras.datasets.

:func:`load_data` returns a :class:`Data`: training and validation data as NumPy
arrays (built-in and ``keras.datasets`` sets) or ``tf.data`` datasets (image
folders), plus what a model needs to know (input shape, classes).

| source | what | needs |
|---|---|---|
| ``"digits"`` | scikit-learn's 1,797 8x8 grey digits | nothing more |
| a folder | one sub-folder per class, every image checked first | TensorFlow |
| ``"cifar10"``, ``"cifar100"``, ``"mnist"``, ``"fashion_mnist"`` | ``keras.datasets`` | network |

Example:

```python
data = kr.load_data("digits")                 # (8, 8, 1) images in [0, 1]
data = kr.load_data("digits", flatten=True)   # (64,) vectors, for MLPs
data = kr.load_data("photos/", image_size=(64, 64), validation_split=0.2)
```
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_resnet import _checks as C
from keras_resnet import preprocessing as P
from keras_resnet.imagecheck import CHANNELS, MAX_IMAGE_PIXELS, check_image_folder

BUILTIN = ("digits",)
KERAS_DATASETS = ("cifar10", "cifar100", "mnist", "fashion_mnist")


@dataclass
class Data:
    """Training and validation data plus what a model needs to know.

    Attributes:
        name: Source name (``"digits"``, a folder path, ``"cifar10"``...).
        train: ``(x, y)`` NumPy arrays, or a batched ``tf.data.Dataset``.
        validation: The same for validation (None without a split).
        input_shape: Shape of one example, e.g. ``(8, 8, 1)``.
        classes: Number of classes (labels are integers ``0..classes-1``), as
            ``keras.applications`` and :class:`~keras_resnet.ModelSpec` say it.
        class_names: Names of the classes.
        load_args: The keyword arguments of :func:`load_data` that load the
            same data again (JSON-ready; None for data made by hand):
            ``kr.load_data(**data.load_args)``.
        bad_files: Image files left out by ``skip_bad_files=True``
            (:class:`~keras_resnet.imagecheck.BadFile` items: ``path`` relative
            to the folder, ``reason``); empty otherwise.
            :func:`~keras_resnet.imagecheck.write_bad_files` writes them to a
            run folder.
    """

    name: str
    train: Any
    validation: Any
    input_shape: tuple
    classes: int
    class_names: list
    load_args: dict | None = None
    bad_files: list = field(default_factory=list)

    @classmethod
    def from_arrays(cls, x: Any, y: Any, validation_data: tuple | None = None,
                    name: str = "arrays") -> Data:
        """Data from NumPy arrays: inputs and integer class labels.

        Args:
            x: Training inputs, ``(examples, ...)``: images ``(n, h, w, c)`` or
                vectors ``(n, features)``.
            y: Integer class labels ``0..classes-1``, one per example.
            validation_data: ``(x_val, y_val)`` of the same kind, or None.
            name: The data's name.

        Returns:
            A NumPy :class:`Data`; its classes are ``max(label) + 1`` over both
            splits, named ``"0"``, ``"1"``...

        Example:

        ```python
        data = kr.Data.from_arrays(x_train, y_train, validation_data=(x_val, y_val))
        ```
        """
        if not hasattr(x, "__array__"):
            C.fail("x", "must be a NumPy array (or a keras_resnet Data, or a data "
                   "source name where one is accepted)", x, TypeError)
        if y is None:
            C.fail("y", "must hold the integer labels of x", y, TypeError)
        splits = [(np.asarray(x), np.asarray(y))]
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                C.fail("validation_data", "must be a pair (x_val, y_val)", validation_data,
                       TypeError)
            splits.append((np.asarray(validation_data[0]), np.asarray(validation_data[1])))
        for (xs, ys), (xn, yn) in zip(splits, (("x", "y"), ("x_val", "y_val"))):
            if xs.ndim < 2 or ys.ndim != 1 or len(xs) != len(ys) or len(xs) == 0:
                raise C.InvalidInput(f"{xn} and {yn} must hold the same number (> 0) of "
                                 f"examples, {yn} one label each. Received: {xn}.shape="
                                 f"{xs.shape}, {yn}.shape={ys.shape}")
            if not np.issubdtype(ys.dtype, np.integer) or ys.min() < 0:
                raise C.InvalidInput(f"{yn} must hold integer class labels >= 0. Received: "
                                 f"dtype={ys.dtype}, min={ys.min()}")
            if xs.shape[1:] != splits[0][0].shape[1:]:
                raise C.InvalidInput(f"{xn} must hold examples of the shape of x's, "
                                 f"{splits[0][0].shape[1:]}. Received: {xn}.shape={xs.shape}")
        classes = int(max(ys.max() for _, ys in splits)) + 1
        return cls(name, splits[0], splits[1] if len(splits) > 1 else None,
                   tuple(splits[0][0].shape[1:]), classes, [str(i) for i in range(classes)])

    def to_ref(self, folder: str) -> dict:
        """How another process gets this data: its :func:`load_data` arguments, or
        a pickle of its arrays written into ``folder`` (the one way data reaches
        a worker of ``kr.compare`` or ``kr.tune``).

        Args:
            folder: A folder that lives as long as the workers need the data.

        Returns:
            A small JSON-ready dict for :meth:`from_ref`.
        """
        if self.load_args is not None:
            return {"load_args": self.load_args}
        if not self.is_numpy:
            raise C.InvalidInput(
                "data built by hand from tf.data datasets cannot be sent to worker "
                "processes: pass a source (e.g. a folder) or NumPy arrays. Received: "
                f"data={self!r}")
        path = os.path.join(folder, f"data-{id(self):x}.pkl")
        with open(path, "wb") as fh:
            pickle.dump(self, fh)
        return {"pickle": path}

    @staticmethod
    def from_ref(ref: dict) -> Data:
        """The data :meth:`to_ref` described (loaded once per process)."""
        key = json.dumps(ref, sort_keys=True)
        if key not in _LOADED:
            if "load_args" in ref:
                _LOADED[key] = load_data(**ref["load_args"])
            else:
                with open(ref["pickle"], "rb") as fh:
                    _LOADED[key] = pickle.load(fh)
        return _LOADED[key]

    def fingerprint(self) -> str | None:
        """SHA-256 of the training arrays (dtype, shape and bytes); None for tf.data."""
        if not self.is_numpy:
            return None
        sha = hashlib.sha256()
        for array in self.train:
            array = np.ascontiguousarray(array)
            sha.update(f"{array.dtype.str}{array.shape}".encode())
            sha.update(array.tobytes())
        return sha.hexdigest()

    def identity(self) -> dict:
        """What a run folder records of the data: how to load it again
        (``load_args``), a hash of the training arrays, the input shape and the
        classes (a run resumes only on the same data)."""
        return {"load_args": self.load_args, "fingerprint": self.fingerprint(),
                "input_shape": list(self.input_shape), "classes": int(self.classes)}

    def as_input_of(self, preprocessing: Any) -> Data:
        """The data as a model with this recorded preprocessing takes it.

        :func:`load_data` gives pixels / 255 (``"unit"``, what this package's
        models record when trained from scratch); for a model whose weights
        expect another convention (e.g. ``"caffe"`` for ``keras.applications``'
        ResNet50, when fine-tuning it) the pixels are given that one instead,
        as ``kr.preprocess_input`` does. Data made by hand (no ``load_args``)
        is taken as it is: it is the model's input already.

        Args:
            preprocessing: A ``ModelSpec.preprocessing`` value.

        Returns:
            This data, or a copy converted for the model.
        """
        if self.load_args is None or preprocessing in (None, "unit"):
            return self
        channels_first = bool(self.is_numpy and self.train[0].ndim == 4
                              and self.train[0].shape[1] in (1, 3, 4)
                              and self.train[0].shape[-1] not in (1, 3, 4))
        layout = "channels_first" if channels_first else "channels_last"

        def convert(split: Any) -> Any:
            if split is None:
                return None
            if isinstance(split, tuple):
                return P.apply(split[0] * 255.0, preprocessing, layout), split[1]
            import tensorflow as tf  # a tf.data split: TensorFlow is loaded already

            def numpy(x: np.ndarray) -> np.ndarray:
                return np.asarray(P.apply(x * 255.0, preprocessing, layout), x.dtype)

            def batch(x: Any, y: Any) -> tuple:
                out = tf.numpy_function(numpy, [x], x.dtype, stateful=False)
                out.set_shape(x.shape)
                return out, y

            return split.map(batch)

        return dataclasses.replace(self, train=convert(self.train),
                                   validation=convert(self.validation))

    @property
    def is_numpy(self) -> bool:
        """Whether ``train`` is a pair of NumPy arrays."""
        return isinstance(self.train, tuple)

    def __repr__(self) -> str:
        if self.is_numpy:
            sizes = f"train={len(self.train[0])}, validation=" + (
                str(len(self.validation[0])) if self.validation is not None else "0")
        else:
            sizes = "tf.data"
        return (f"Data({self.name!r}, {sizes}, input_shape={self.input_shape}, "
                f"classes={self.classes})")

    if not TYPE_CHECKING:  # hidden from mypy, which would let any attribute through

        def __getattr__(self, name: str) -> Any:
            if name == "num_classes":  # 0.2's name
                raise AttributeError("Data.num_classes was deprecated in 0.3 and is "
                                     "removed; use Data.classes")
            raise AttributeError(f"'Data' object has no attribute {name!r}")


_LOADED: dict = {}  # Data.from_ref's cache: one load per process


def as_data(data: Any, y: Any = None, validation_data: Any = None, **load_args: Any) -> Data:
    """A :class:`Data` from what users pass where data is expected.

    Args:
        data: A ``Data``, a source for :func:`load_data` (``"digits"``, a
            folder...), or training inputs (NumPy arrays, with ``y``).
        y: Integer labels, with array ``data`` (as ``model.fit``'s ``y``).
        validation_data: ``(x_val, y_val)``, with array ``data``.
        **load_args: Arguments of :func:`load_data` for a source.

    Returns:
        The data.
    """
    if isinstance(data, Data):
        if y is not None or validation_data is not None:
            C.fail("y", "must be None when the data is a keras_resnet Data (it holds the "
                   "labels and the validation split)", y, TypeError)
        return data
    if isinstance(data, (str, os.PathLike)):
        if y is not None or validation_data is not None:
            C.fail("y", "must be None when the data is a source name or folder", y,
                   TypeError)
        source = os.fspath(data)
        if not os.path.isdir(source):  # only image folders take these
            load_args = {k: v for k, v in load_args.items()
                         if k not in ("batch_size", "check_cache")}
        return load_data(source, **load_args)
    return Data.from_arrays(data, y, validation_data)


def _split(x: np.ndarray, y: np.ndarray, validation_split: float, seed: int) -> tuple:
    """Stratified split: each class keeps its share in both parts."""
    rng = np.random.RandomState(seed)
    picked: list[int] = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        picked.extend(idx[: int(round(len(idx) * validation_split))])
    mask = np.zeros(len(y), bool)
    mask[picked] = True
    train_idx = rng.permutation(np.flatnonzero(~mask))
    val_idx = rng.permutation(np.flatnonzero(mask))
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def _digits(validation_split: float, seed: int, flatten: bool) -> Data:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(
            "the 'digits' data ships with scikit-learn: pip install scikit-learn "
            "(a dependency of keras-resnet-builder)"
        ) from None
    bunch = load_digits()
    x = (bunch.images / 16.0).astype("float32")[..., None]  # (n, 8, 8, 1) in [0, 1]
    if flatten:
        x = x.reshape(len(x), -1)
    y = bunch.target.astype("int32")
    train, val = _split(x, y, validation_split, seed)
    return Data("digits", train, val if validation_split > 0 else None, x.shape[1:], 10,
                [str(i) for i in range(10)])


def _keras_dataset(name: str, validation_split: float, seed: int, flatten: bool) -> Data:
    import keras

    module = getattr(keras.datasets, name)
    try:
        (x, y), (x_test, y_test) = module.load_data()
    except Exception as e:  # noqa: BLE001 - any download failure means the same
        raise OSError(
            f"could not load {name!r} through keras.datasets ({e}). It needs a network "
            "the first time. Offline, use the built-in data (--data digits) or a folder "
            "of images with one sub-folder per class (--data path/to/folder)."
        ) from e
    x = np.asarray(x, "float32") / 255.0
    x_test = np.asarray(x_test, "float32") / 255.0
    if x.ndim == 3:
        x, x_test = x[..., None], x_test[..., None]
    if flatten:
        x, x_test = x.reshape(len(x), -1), x_test.reshape(len(x_test), -1)
    y = np.asarray(y).reshape(-1).astype("int32")
    y_test = np.asarray(y_test).reshape(-1).astype("int32")
    classes = int(max(y.max(), y_test.max()) + 1)
    # The official test split is the validation data; validation_split is unused.
    return Data(name, (x, y), (x_test, y_test), x.shape[1:], classes,
                [str(i) for i in range(classes)])


def _image_dataset(paths: list, labels: list, image_size: tuple, channels: int,
                   batch_size: int, seed: int) -> Any:
    """A batched ``tf.data`` dataset of images and labels, as Keras' loader makes it.

    The same steps as ``keras.utils.image_dataset_from_directory``: a shuffle
    buffer of 8 batches seeded with ``seed``, ``tf.io.read_file``,
    ``tf.image.decode_image`` (the decoder the image check ran), bilinear
    ``tf.image.resize``, batches, prefetch.
    """
    import keras
    import tensorflow as tf

    size = tuple(image_size)
    channels_first = keras.config.image_data_format() == "channels_first"

    def load(path: Any) -> Any:
        img = tf.image.decode_image(tf.io.read_file(path), channels=channels,
                                    expand_animations=False)
        img = tf.image.resize(img, size, method="bilinear")
        if channels_first:
            img = tf.transpose(img, (2, 0, 1))
            img.set_shape((channels,) + size)
        else:
            img.set_shape(size + (channels,))
        return img

    ds = tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices(paths),
                              tf.data.Dataset.from_tensor_slices(np.asarray(labels, "int32"))))
    ds = ds.shuffle(buffer_size=batch_size * 8, seed=seed)
    ds = ds.map(lambda x, y: (load(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _folder(path: str, validation_split: float, seed: int, image_size: tuple,
            batch_size: int, color_mode: str, skip_bad_files: bool,
            check_cache: str | None, max_image_pixels: int) -> Data:
    import keras

    folder = check_image_folder(path, color_mode=color_mode, skip_bad_files=skip_bad_files,
                                max_image_pixels=max_image_pixels, cache=check_cache)
    # The order and split of image_dataset_from_directory(seed=seed): one global
    # shuffle, then the last `validation_split` share is the validation data.
    paths, labels = folder.paths(), list(folder.labels)
    np.random.RandomState(seed).shuffle(paths)
    np.random.RandomState(seed).shuffle(labels)
    n_val = int(validation_split * len(paths))
    if validation_split > 0 and (n_val == 0 or n_val == len(paths)):
        raise C.InvalidInput(
            f"validation_split={validation_split} of the {len(paths)} images of {path!r} "
            f"leaves {'no validation' if n_val == 0 else 'no training'} image. "
            f"Received: validation_split={validation_split}")
    print(f"Found {len(paths)} files belonging to {len(folder.class_names)} classes"
          + (f" ({len(folder.bad_files)} left out)" if folder.bad_files else "")
          + (f"; {len(paths) - n_val} for training, {n_val} for validation." if n_val
             else "."))
    channels = CHANNELS[color_mode]
    scale = keras.layers.Rescaling(1 / 255.0)

    def dataset(part: slice) -> Any:
        ds = _image_dataset(paths[part], labels[part], image_size, channels, batch_size, seed)
        return ds.map(lambda x, y: (scale(x), y))

    train = dataset(slice(0, len(paths) - n_val))
    val = dataset(slice(len(paths) - n_val, None)) if n_val else None
    return Data(path, train, val, tuple(image_size) + (channels,),
                len(folder.class_names), list(folder.class_names),
                bad_files=list(folder.bad_files))


def _with_args(data: Data, args: dict) -> Data:
    data.load_args = args
    return data


def load_data(
    source: str = "digits",
    *,
    validation_split: float = 0.2,
    seed: int = 0,
    flatten: bool = False,
    image_size: tuple = (32, 32),
    batch_size: int = 32,
    color_mode: str = "rgb",
    skip_bad_files: bool = False,
    check_cache: str | None = None,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
) -> Data:
    """Loads training and validation data.

    Args:
        source: ``"digits"`` (built in, offline), a folder with one sub-folder
            of images per class, or ``"cifar10"``, ``"cifar100"``, ``"mnist"``,
            ``"fashion_mnist"`` (``keras.datasets``; they need a network the
            first time and say so when there is none).
        validation_split: Share of the data held out for validation (digits,
            folders; stratified for digits). ``keras.datasets`` sets use their
            own test split instead.
        seed: Seed of the split.
        flatten: Return vectors instead of images (digits and keras.datasets),
            for MLPs built from ``dense`` blocks.
        image_size: Folders only: images are resized to this size.
        batch_size: Folders only: batch size of the ``tf.data`` datasets.
        color_mode: Folders only: ``"rgb"``, ``"grayscale"`` or ``"rgba"``.
        skip_bad_files: Folders only. Every image is decoded once before
            anything else (:func:`~keras_resnet.imagecheck.check_image_folder`):
            by default a file that cannot be decoded raises
            :class:`~keras_resnet.imagecheck.BadImageFilesError` naming the
            first ten bad files and why; True leaves them out instead, warns
            with their count, and lists them in ``Data.bad_files``.
        check_cache: Folders only: a JSON file where the image check keeps
            its verdicts (by relative path, size and modification time), so
            loading the same folder again decodes only new or changed files;
            e.g. in the run folder. None: no cache.
        max_image_pixels: Folders only: images whose header declares more
            pixels (width x height) are bad files, refused before decoding.
            Default: Pillow's decompression-bomb limit.

    Returns:
        A :class:`Data`. Pixel values are scaled to ``[0, 1]``.

    Raises:
        BadImageFilesError: A folder holds images that cannot be decoded
            (a ``ValueError``), unless ``skip_bad_files``.
    """
    C.check_str("source", source)
    validation_split = C.check_float("validation_split", validation_split, minimum=0.0,
                                     maximum=1.0, exclusive_maximum=True)
    C.check_int("seed", seed, minimum=0)
    C.check_bool("flatten", flatten)
    args = dict(source=source, validation_split=validation_split, seed=seed, flatten=flatten)
    if source == "digits":
        return _with_args(_digits(validation_split, seed, flatten), args)
    if source in KERAS_DATASETS:
        return _with_args(_keras_dataset(source, validation_split, seed, flatten), args)
    if os.path.isdir(source):
        C.check_choice("color_mode", color_mode, ("rgb", "grayscale", "rgba"))
        if flatten:
            raise C.InvalidInput("flatten=True is not supported for image folders. "
                             "Received: flatten=True")
        if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                           for v in image_size)):
            C.fail("image_size", "must be (height, width), two integers >= 1", image_size)
        C.check_int("batch_size", batch_size, minimum=1)
        C.check_bool("skip_bad_files", skip_bad_files)
        C.check_int("max_image_pixels", max_image_pixels, minimum=1)
        if check_cache is not None:
            check_cache = os.path.abspath(C.check_str("check_cache", os.fspath(check_cache)))
        args.update(source=os.path.abspath(source), image_size=list(image_size),
                    batch_size=batch_size, color_mode=color_mode,
                    skip_bad_files=skip_bad_files, check_cache=check_cache,
                    max_image_pixels=max_image_pixels)
        return _with_args(_folder(source, validation_split, seed, image_size, batch_size,
                                  color_mode, skip_bad_files, check_cache,
                                  max_image_pixels), args)
    if os.path.exists(source):
        raise C.InvalidInput(f"data source {source!r} is a file; a folder of images (one "
                         "sub-folder per class) is expected. Received: source="
                         f"{source!r}")
    raise C.InvalidInput(
        f"data source must be 'digits', one of {', '.join(KERAS_DATASETS)}, or an "
        f"existing folder of images{C.close_matches(source, BUILTIN + KERAS_DATASETS)}. "
        f"Received: source={source!r}"
    )


def __getattr__(name: str) -> Any:
    if name == "cifar_augmentation":  # 0.2's Keras-layer augmentation
        raise AttributeError(
            "keras_resnet.data.cifar_augmentation was removed in 0.3: augmentation has one "
            "implementation, keras_resnet.training.pipeline.augment_batch(x, seed, epoch, "
            "batch, pad), which kr.train applies with augment=True to arrays and folders")
    raise AttributeError(f"module 'keras_resnet.data' has no attribute {name!r}")
