"""What a model path means: a ``.keras`` file, or a run folder of ``kr.train``.

A run folder's files belong to :class:`~keras_resnet.RunFolder` (``model.keras``,
``labels.json``, ``run.json`` with the recipe and the ``kr.load_data``
arguments of the data it was trained on...). Serving reads them through it; it
imports nothing from training.
"""

from __future__ import annotations

import os
from typing import Any

import keras

from keras_resnet import _checks as C
from keras_resnet.data import Data, load_data
from keras_resnet.runfolder import RunFolder


def model_file(path: str | os.PathLike) -> str:
    """The model file of ``path``: itself, or a run folder's ``model.keras``."""
    path = os.fspath(path)
    if os.path.isdir(path) and not os.path.exists(os.path.join(path, "saved_model.pb")):
        inside = RunFolder(path).file(RunFolder.MODEL)
        if not os.path.exists(inside):
            raise FileNotFoundError(f"{path!r} is a folder without {RunFolder.MODEL}: give "
                                    "a .keras file or a run folder of kr.train")
        return inside
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {path!r} does not exist")
    return path


def load_model(path: str | os.PathLike) -> Any:
    """Loads a ``.keras`` file, or the model of a run folder.

    Args:
        path: A ``.keras`` file or a folder written by ``kr.train(out_dir=...)``.

    Returns:
        The Keras model (this package's layers are registered first).

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: the file is not a readable ``.keras`` model.
    """
    path = model_file(path)
    try:
        return keras.models.load_model(path)
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise C.InvalidInput(f"{path!r} is not a readable .keras model ({e})") from None
    except Exception as e:  # noqa: BLE001 - zip/h5 errors of a corrupt file
        raise C.InvalidInput(f"{path!r} is not a readable .keras model "
                             f"({type(e).__name__}: {e})") from None


def run_data(folder: RunFolder | None) -> tuple[Data | None, str]:
    """A run folder's data, or None and why (for the message that needs it)."""
    if folder is None:
        return None, ""
    args = folder.load_args()
    if args is None:
        return None, (f" ({folder.path!r} has no run.json with its data: a run folder of "
                      "keras_resnet 0.1.0)")
    try:
        return load_data(**args), ""
    except Exception as e:  # noqa: BLE001 - e.g. keras.datasets offline
        return None, f" (its data could not be loaded: {e})"
