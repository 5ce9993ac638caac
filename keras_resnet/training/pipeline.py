"""Training batches: the per-epoch order and augmentation.

NumPy data is cut into batches by :class:`EpochBatches`, whose order in epoch
``e`` depends only on ``(seed, e)``; ``tf.data`` data (image folders) comes
batched and shuffled by ``image_dataset_from_directory`` and is augmented in
the pipeline. :func:`batches` picks between them for a recipe.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_resnet.data import Data


class EpochBatches(keras.utils.PyDataset):
    """Shuffled NumPy batches, augmented on the fly (any backend).

    ``multiple``: every batch is cut to a multiple of it (JAX data parallelism
    shards batches evenly), which skips at most ``multiple - 1`` examples of
    the last batch. The order of epoch ``e`` depends only on ``(seed, e)``, so
    a resumed run sees the batches an uninterrupted one would have.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, augment: Any,
                 seed: int, shuffle: bool = True, multiple: int = 1,
                 epoch: int = 0) -> None:
        super().__init__()
        self.x, self.y, self.batch_size, self.augment = x, y, batch_size, augment
        self.shuffle, self.multiple, self.seed, self.epoch = shuffle, multiple, seed, epoch
        self.order = self._order()

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.x))
        return np.random.RandomState([self.seed, self.epoch]).permutation(len(self.x))

    def __len__(self) -> int:
        full, rest = divmod(len(self.x), self.batch_size)
        return full + (rest >= self.multiple)

    def __getitem__(self, i: int) -> tuple:
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        idx = idx[: len(idx) - len(idx) % self.multiple]
        xb = self.x[idx]
        if self.augment is not None:
            xb = keras.ops.convert_to_numpy(self.augment(xb, training=True))
        return xb, self.y[idx]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()


def augmenter(data: Data) -> Any:
    """The paper's CIFAR augmentation sized for the data's images."""
    from keras_resnet.data import cifar_augmentation

    if len(data.input_shape) != 3:
        raise ValueError("augment=True needs image data; these are vectors. "
                         f"Received: input_shape={data.input_shape}")
    pad = max(1, data.input_shape[0] // 8)  # 4 pixels at 32x32, as the paper
    return cifar_augmentation(data.input_shape, pad=pad)


def batches(data: Data, recipe: Any, *, initial_epoch: int = 0, multiple: int = 1) -> tuple:
    """Training and validation inputs for ``model.fit`` under a recipe.

    Args:
        data: The data.
        recipe: A :class:`~keras_resnet.training.Recipe` (its batch size,
            seed and augmentation).
        initial_epoch: The first epoch to run (its batch order comes first).
        multiple: Cut NumPy batches to a multiple of this.

    Returns:
        ``(train, validation)``.
    """
    validation = data.validation
    if data.is_numpy:
        x, y = data.train
        train = EpochBatches(x, y, recipe.batch_size,
                             augmenter(data) if recipe.augment else None, recipe.seed or 0,
                             multiple=multiple, epoch=initial_epoch)
        if validation is not None and multiple > 1:
            validation = EpochBatches(*validation, recipe.batch_size, None, 0,
                                      shuffle=False, multiple=multiple)
        return train, validation
    train = data.train
    if recipe.augment:
        # Layer by layer: each preprocessing layer runs on TensorFlow inside
        # tf.data whatever the Keras backend (a Sequential would not switch).
        layers = augmenter(data).layers

        def augment_batch(xb: Any, yb: Any) -> tuple:
            for layer in layers:
                xb = layer(xb, training=True)
            return xb, yb

        train = train.map(augment_batch)
    return train, validation
