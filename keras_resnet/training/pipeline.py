"""Training batches: the per-epoch order and augmentation, fed cheaply.

NumPy data is cut into batches whose order in epoch ``e`` depends only on
``(seed, e)`` (:func:`epoch_order`); with augmentation, the shifts and flips
of batch ``b`` of epoch ``e`` depend only on ``(seed, e, b)``
(:func:`augment_batch`, vectorised NumPy). :class:`EpochFeed` makes one
epoch's contiguous arrays at a time, and the backend takes them:

- TensorFlow: a ``tf.data`` pipeline (:func:`tf_dataset`) whose epoch arrays
  are made once per epoch in its own thread and prefetched, so ``fit`` runs
  as it does on in-memory arrays (and ``steps_per_execution`` loops on the
  graph side);
- JAX and others: :class:`EpochBatches`, a ``PyDataset`` whose batches are
  slices of the epoch's contiguous arrays (no TensorFlow imported).

Either way a resumed run sees the batches (and augmentations) an
uninterrupted one would have. ``tf.data`` data (image folders) comes batched
and shuffled by ``image_dataset_from_directory`` and is augmented batch by
batch by the same :func:`augment_batch` (:func:`augment_folder`), so arrays
and folders draw alike. :func:`batches` picks for a recipe.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_resnet import _checks as C
from keras_resnet.data import Data


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The order of ``n`` examples in an epoch: a function of ``(seed, epoch)`` only."""
    if not shuffle:
        return np.arange(n)
    return np.random.RandomState([seed, epoch]).permutation(n)


def augment_batch(x: np.ndarray, seed: int, epoch: int, batch: int, pad: int,
                  flip: bool = True, channels_first: bool = False) -> np.ndarray:
    """The paper's CIFAR augmentation of one batch of images, in NumPy.

    The one implementation of augmentation: NumPy arrays and image folders
    both go through it, so a batch draws the same way from ``(seed, epoch,
    batch)`` whatever the data came from. Each image is shifted by a whole
    number of pixels drawn from ``[-pad, pad]`` in each direction with zero
    fill (pad ``pad`` and crop the original size at random) and, if ``flip``,
    flipped horizontally with probability 1/2. The draws depend only on
    ``(seed, epoch, batch)`` and the image's position in the batch.

    Args:
        x: Images ``(n, h, w, c)`` (``(n, c, h, w)`` with ``channels_first``).
        seed: The recipe's seed.
        epoch: The epoch (0-based).
        batch: The batch's index in the epoch.
        pad: Largest shift in pixels (4 at 32x32, as the paper).
        flip: Also flip horizontally at random.
        channels_first: The images' layout.

    Returns:
        The augmented images (a new array of the same shape and type).
    """
    n = len(x)  # two streams, so image i's draws do not depend on the batch's size
    dy, dx = np.random.RandomState([seed, epoch, batch, 1]).randint(-pad, pad + 1,
                                                                    size=(n, 2)).T
    flips = (np.random.RandomState([seed, epoch, batch, 2]).rand(n) < 0.5 if flip
             else np.zeros(n, bool))
    if channels_first:
        x = np.moveaxis(x, 1, -1)
    h, w = x.shape[1], x.shape[2]
    rows = (pad - dy)[:, None] + np.arange(h)  # output row i reads input row i - dy
    cols = (pad - dx)[:, None] + np.arange(w)
    cols = np.where(flips[:, None], cols[:, ::-1], cols)
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    k = np.arange(n)[:, None, None]
    out = padded[k, rows[:, :, None], cols[:, None, :]]
    return np.moveaxis(out, -1, 1) if channels_first else out


def check_share(batch_size: int, count: int) -> None:
    """``ValueError`` unless ``count`` processes can share every batch equally."""
    C.check_int("count", count, minimum=1)
    if batch_size % count:
        raise C.InvalidInput(f"batch_size must be a multiple of the number of processes "
                         f"({count}): each process trains on an equal share of every "
                         f"batch. Received: batch_size={batch_size}")


def shard_epoch(arrays: tuple, batch_size: int, index: int, count: int) -> tuple:
    """One process's share of an epoch's batches (multi-process training).

    ``arrays`` hold an epoch in its global order, batch after batch
    (``batch_size`` each, the last one possibly shorter). Of every batch this
    keeps the ``index``-th of ``count`` contiguous equal slices, so each
    process's batch is ``batch_size / count`` examples and the ``count``
    processes' batches together are the global batch. A last batch whose size
    is not a multiple of ``count`` is first cut to one.

    Args:
        arrays: Arrays of equal length (e.g. ``(x, y)``).
        batch_size: The global batch size; a multiple of ``count``.
        index: This process, ``0 .. count - 1``.
        count: The number of processes.

    Returns:
        The arrays, each process's batches one after another.
    """
    check_share(batch_size, count)
    C.check_int("index", index, minimum=0, maximum=count - 1)
    n = len(arrays[0])
    position = np.arange(n)
    start = position - position % batch_size  # where each example's batch starts
    size = np.minimum(batch_size, n - start)
    local = size // count
    offset = position - start - index * local
    keep = (offset >= 0) & (offset < local)
    return tuple(a[keep] for a in arrays)


def shard_batches(dataset: Any, index: int, count: int, multiple: int) -> Any:
    """:func:`shard_epoch` for a batched ``tf.data`` dataset (image folders): each
    batch is cut to a multiple of ``multiple`` (all devices of the job), then
    this process keeps its contiguous ``1/count`` of it."""
    import tensorflow as tf  # a tf.data dataset: TensorFlow is loaded already

    def local(x: Any, y: Any) -> tuple:
        n = tf.shape(x)[0]
        share = (n - n % multiple) // count
        return x[index * share:(index + 1) * share], y[index * share:(index + 1) * share]

    return dataset.map(local).filter(lambda x, y: tf.shape(x)[0] > 0)


class EpochCounter:
    """The epoch the training loop is in (:class:`FeedEpoch` sets it as epochs begin)."""

    def __init__(self, epoch: int = 0) -> None:
        self.epoch = epoch


class EpochFeed(EpochCounter):
    """One epoch's training arrays at a time: shuffled, augmented, cut.

    ``multiple``: every batch is cut to a multiple of it (JAX data parallelism
    shards batches evenly), which skips at most ``multiple - 1`` examples of
    a batch. ``epoch`` is the epoch :meth:`arrays` makes (the training loop
    sets it as epochs begin). ``shard=(index, count)``: process ``index`` of
    ``count`` gets its share of every batch (:func:`shard_epoch`);
    ``batch_size`` is then this process's batch.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, *,
                 pad: int = 0, shuffle: bool = True, multiple: int = 1,
                 epoch: int = 0, shard: tuple = (0, 1)) -> None:
        super().__init__(epoch)
        self.x, self.y, self.seed, self.pad, self.shuffle = x, y, seed, pad, shuffle
        self.multiple = multiple
        # Cutting each batch to a multiple keeps batches of the same size but the last.
        self.batch_size = batch_size - batch_size % multiple if batch_size >= multiple \
            else batch_size
        full, rest = divmod(len(x), batch_size)
        self.num_batches = full + (rest >= multiple)
        self._per_batch = batch_size
        self._cache: tuple = (None, None)
        self.shard, self.global_batch_size = shard, self.batch_size
        self.batch_size //= shard[1]

    def batch_indices(self, epoch: int) -> list:
        """The example indices of each batch of an epoch (cut to ``multiple``)."""
        order = epoch_order(len(self.x), self.seed, epoch, self.shuffle)
        bs, cut = self._per_batch, self.multiple
        parts = [order[i * bs:(i + 1) * bs] for i in range(self.num_batches)]
        return [p[:len(p) - len(p) % cut] for p in parts] if cut > 1 else parts

    def indices(self, epoch: int) -> np.ndarray:
        """The example indices of an epoch, batch after batch (cut batches)."""
        parts = self.batch_indices(epoch)
        return np.concatenate(parts) if parts else np.zeros(0, int)

    def arrays(self, epoch: int | None = None) -> tuple:
        """``(x, y)`` of an epoch (default: the current one), contiguous."""
        epoch = self.epoch if epoch is None else epoch
        if self._cache[0] != epoch:
            parts = self.batch_indices(epoch)
            idx = np.concatenate(parts) if parts else np.zeros(0, int)
            if self.pad:
                first = keras.config.image_data_format() == "channels_first"
                xe = np.concatenate([augment_batch(self.x[p], self.seed, epoch, b, self.pad,
                                                   channels_first=first)
                                     for b, p in enumerate(parts)])
            else:
                xe = self.x[idx]
            ye = self.y[idx]
            if self.shard[1] > 1:
                xe, ye = shard_epoch((xe, ye), self.global_batch_size, *self.shard)
            self._cache = (epoch, (np.ascontiguousarray(xe), ye))
        return self._cache[1]

    def current(self) -> tuple:
        """:meth:`arrays` of the current epoch (what the ``tf.data`` pipeline calls)."""
        return self.arrays()


class EpochBatches(keras.utils.PyDataset):
    """An :class:`EpochFeed` as a ``PyDataset`` (any backend; JAX's feed).

    Batch ``i`` is a slice of the epoch's contiguous arrays. The epoch is set
    by :class:`FeedEpoch` (Keras calls a ``PyDataset``'s ``on_epoch_end``
    more often than once per epoch, so counting those calls would drift).
    """

    def __init__(self, feed: EpochFeed) -> None:
        super().__init__()
        self.feed = feed

    def __len__(self) -> int:
        return self.feed.num_batches

    def __getitem__(self, i: int) -> tuple:
        x, y = self.feed.arrays()
        bs = self.feed.batch_size
        return x[i * bs:(i + 1) * bs], y[i * bs:(i + 1) * bs]


class FeedEpoch(keras.callbacks.Callback):
    """Sets an :class:`EpochCounter`'s (an :class:`EpochFeed`'s) epoch as each epoch begins.

    Keras makes a new iterator over the data at the start of every epoch,
    after the callbacks' ``on_epoch_begin``; the ``tf.data`` pipeline and
    :class:`EpochBatches` then ask the feed for that epoch's arrays.
    """

    async_safe = True

    def __init__(self, feed: EpochCounter) -> None:
        super().__init__()
        self.feed = feed

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.feed.epoch = epoch


def tf_dataset(feed: EpochFeed) -> Any:
    """The training ``tf.data.Dataset`` over a feed (TensorFlow only).

    Each iteration (one per epoch) makes the current epoch's arrays once, in
    ``tf.data``'s thread, and slices them into batches ahead of the training
    step.

    The prefetch buffer is a fixed two batches, with ``tf.data``'s autotuning
    off: with autotuning, Keras' start of each epoch (dropping the previous
    epoch's iterator) waited on a ``tf.data`` background thread, 0.5 to 3 s
    with the CPU idle, whenever another process kept the other cores busy
    (two ``compare`` workers: about 0.8 s per epoch on average). Slicing a
    batch from in-memory arrays needs no tuning.
    """
    import tensorflow as tf

    x_spec = tf.TensorSpec((None,) + feed.x.shape[1:], tf.as_dtype(feed.x.dtype))
    y_spec = tf.TensorSpec((None,) + feed.y.shape[1:], tf.as_dtype(feed.y.dtype))

    def epoch(_: Any) -> Any:
        x, y = tf.numpy_function(feed.current, [], (x_spec.dtype, y_spec.dtype),
                                 stateful=True)
        x.set_shape(x_spec.shape)
        y.set_shape(y_spec.shape)
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(feed.batch_size)

    ds = tf.data.Dataset.from_tensors(0).flat_map(epoch)
    ds = ds.apply(tf.data.experimental.assert_cardinality(feed.num_batches))
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(2).with_options(options)


def augment_pad(data: Data) -> int:
    """The shift of the paper's augmentation for the data's images (4 at 32x32)."""
    if len(data.input_shape) != 3:
        raise C.InvalidInput("augment=True needs image data; these are vectors. "
                         f"Received: input_shape={data.input_shape}")
    return max(1, data.input_shape[0] // 8)


def augment_folder(dataset: Any, seed: int, pad: int, feed: EpochCounter) -> Any:
    """:func:`augment_batch` on a batched ``tf.data`` dataset (image folders): batch
    ``i`` of the epoch ``feed.epoch`` draws as batch ``i`` of NumPy data would."""
    import tensorflow as tf  # a tf.data dataset: TensorFlow is loaded already

    first = keras.config.image_data_format() == "channels_first"

    def numpy_augment(x: np.ndarray, batch: np.int64) -> np.ndarray:
        return augment_batch(x, seed, feed.epoch, int(batch), pad, channels_first=first)

    def augment(batch: Any, xy: tuple) -> tuple:
        x, y = xy
        out = tf.numpy_function(numpy_augment, [x, batch], x.dtype, stateful=True)
        out.set_shape(x.shape)
        return out, y

    return dataset.enumerate().map(augment)


def batches(data: Data, recipe: Any, *, initial_epoch: int = 0, multiple: int = 1,
            path: str = "auto", shard: tuple = (0, 1)) -> tuple:
    """Training and validation inputs for ``model.fit`` under a recipe.

    Args:
        data: The data.
        recipe: A :class:`~keras_resnet.training.Recipe` (its batch size,
            seed and augmentation).
        initial_epoch: The first epoch to run (its batch order comes first).
        multiple: Cut NumPy batches to a multiple of this.
        path: ``"auto"`` (``tf.data`` on TensorFlow, else a ``PyDataset``),
            ``"tf.data"`` or ``"pydataset"``.
        shard: ``(index, count)``: process ``index`` of a ``count``-process
            job gets its share of every batch, training and validation
            (``multiple`` then counts the devices of all processes).

    Returns:
        ``(train, validation, callbacks)``: the callbacks the feed needs.
    """
    validation = data.validation
    if data.is_numpy:
        x, y = data.train
        feed = EpochFeed(x, y, recipe.batch_size, recipe.seed or 0,
                         pad=augment_pad(data) if recipe.augment else 0,
                         multiple=multiple, epoch=initial_epoch, shard=shard)
        if validation is not None and multiple > 1:
            vx, vy = validation
            validation = EpochBatches(EpochFeed(vx, vy, recipe.batch_size, 0,
                                                shuffle=False, multiple=multiple,
                                                shard=shard))
        if path == "auto":
            path = "tf.data" if keras.backend.backend() == "tensorflow" else "pydataset"
        if path == "tf.data":
            return tf_dataset(feed), validation, [FeedEpoch(feed)]
        return EpochBatches(feed), validation, [FeedEpoch(feed)]
    train = data.train
    if shard[1] > 1:
        train = shard_batches(train, shard[0], shard[1], multiple)
        if validation is not None:
            validation = shard_batches(validation, shard[0], shard[1], multiple)
    if recipe.augment:
        counter = EpochCounter(initial_epoch)
        return (augment_folder(train, recipe.seed or 0, augment_pad(data), counter),
                validation, [FeedEpoch(counter)])
    return train, validation, []
