"""``kr.export``: write a model in a deployable format, check it, describe it.

| format | writes | ``quantize`` | reload with |
|---|---|---|---|
| ``"keras"`` | ``.keras`` file | - | ``keras.models.load_model`` |
| ``"saved_model"`` | folder | - | ``tf.saved_model.load(p).serve(x)``, ``TFSMLayer`` |
| ``"tflite"`` | ``.tflite`` | ``int8``, ``dynamic``, ``float16`` | LiteRT (``[tflite]``) |
| ``"onnx"`` | ``.onnx`` | ``int8``, ``dynamic`` (slow: warns) | onnxruntime (``[onnx]``) |

Any of them opens for predictions with
:func:`~keras_resnet.serving.runtime.open_model`.

Each export is written to a temporary path next to the target, reloaded in a
fresh Python process (:mod:`keras_resnet.serving.verify`) and only then
renamed into place, so a crash or a failed check never leaves a half-written
model where a good one was. The check times the export at batch 1 with every
core and with one thread, beside the Keras model it came from, on the same
CPU (named in the result and the card). Its model card (:mod:`keras_resnet.serving.card`)
is prepared before the rename and written right after it, atomically (a
SavedModel's inside its folder, renamed with it). An existing target is
replaced only with ``overwrite=True``. SavedModel, TFLite and ONNX need
TensorFlow (the exporters are TensorFlow's); on JAX they are converted in a
TensorFlow process from the ``.keras`` file.

Example:

```python
result = kr.export("runs/r20", "exported/r20_int8.tflite", format="tflite",
                   quantize="int8")     # calibrated on the run's training data
result.accuracy   # {'keras_top1': 0.95, 'export_top1': 0.95, 'agreement': 0.99, ...}
result.latency_ms, result.keras_latency_ms, result.threads   # every core
result.latency_ms_1thread, result.keras_latency_ms_1thread     # one thread
```
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from keras_resnet import _checks as C
from keras_resnet._io import atomic_path, atomic_write_text
from keras_resnet.builders import spec_of
from keras_resnet.layers import Preprocess
from keras_resnet.runfolder import RunFolder
from keras_resnet.serving import card as cards
from keras_resnet.serving.convert import convert
from keras_resnet.serving.formats import (
    MAX_ACCURACY_DROP,
    SUFFIX,
    advice,
    canonical,
    check_format,
    require,
)
from keras_resnet.serving.load import load_model, run_data
from keras_resnet.serving.quantize import REPRESENTATIVE_EXAMPLES, examples
from keras_resnet.serving.verify import (
    Check,
    ExportVerificationError,
    Latency,
    run_worker,
    verify_export,
)


@dataclass(repr=False)
class ExportResult(Latency):
    """What :func:`export` returns: the export, its checks, and the fields of
    :class:`~keras_resnet.serving.Latency` (``latency_ms``, ``keras_latency_ms``,
    ``latency_ratio``, ... with every core and with one thread, measured in a fresh
    process; None when not verified or ``latency_runs=0``, but ``runtime``, which a
    verified export always names).

    Attributes:
        path: Where the export is.
        format: Its format.
        max_abs_diff: Largest difference between the reloaded export's and the
            model's outputs on the random check batch (None when not verified).
        seconds: Time to write (and verify) it.
        quantize: Its quantization (None: float32).
        io_dtype: Input/output type (``"int8"`` only for full-integer TFLite).
        size_bytes: Size on disk (a SavedModel: its folder, without the card).
        accuracy: On the validation examples: ``examples``, ``keras_top1``,
            ``export_top1``, ``drop_pp`` (percentage points), ``agreement`` (share
            of equal top-1 predictions), ``max_abs_diff`` (None without
            validation data).
        card: Path of the ``model_card.json`` written with it.
    """

    path: str
    format: str
    max_abs_diff: float | None
    seconds: float
    quantize: str | None = None
    io_dtype: str = "float32"
    size_bytes: int | None = None
    accuracy: dict | None = None
    card: str | None = None


@C.renamed(path="filepath")
def export(
    model: Any,
    filepath: str | os.PathLike,
    format: str = "saved_model",  # noqa: A002 - the name users expect
    *,
    quantize: str | None = None,
    io_dtype: str = "float32",
    representative_data: Any = None,
    validation_data: Any = None,
    max_accuracy_drop: float | None = None,
    latency_runs: int = 20,
    overwrite: bool = False,
    verify: bool = True,
    include_preprocessing: bool = False,
) -> ExportResult:
    """Exports a model, checks it in a fresh process, and writes its model card.

    Args:
        model: A Keras model, a ``.keras`` file, or a run folder of
            ``kr.train(out_dir=...)`` (whose ``run.json`` supplies the default
            representative and validation data, and the card's recipe).
        filepath: Target file (``.keras``, ``.tflite``, ``.onnx``) or folder
            (SavedModel), as Keras' ``Model.export(filepath)``.
        format: ``"keras"``, ``"saved_model"``, ``"tflite"`` or ``"onnx"``;
            Keras' names ``"tf_saved_model"`` and ``"litert"`` work too.
        quantize: None (float32); ``"int8"``: for TFLite full integer, for
            ONNX static int8 (onnxruntime's QDQ, per-channel weights), both
            calibrated on ``representative_data`` and the fastest on CPU;
            for TFLite also ``"dynamic"`` (int8 weights) or ``"float16"``; for
            ONNX ``"dynamic"`` (int8 weights, activations quantized at run
            time: slower than float32, so it warns).
        io_dtype: ``"float32"``, or ``"int8"`` for a full-integer TFLite model
            that takes and returns int8 (scale and zero point in the card).
        representative_data: Calibration examples for ``"int8"`` (TFLite and
            ONNX alike): a
            :class:`~keras_resnet.Data` (its training split, first 300), an
            array of examples, an ``(x, y)`` pair or a dataset of batches.
            Default: 300 training examples of a run folder's data.
        validation_data: Labelled examples to measure top-1 accuracy of the
            model and of the export on: a ``Data`` (its validation split), an
            ``(x, y)`` pair or a dataset of ``(x, y)`` batches. Default: a run
            folder's validation split, when its data can be loaded.
        max_accuracy_drop: Largest allowed drop of validation top-1 accuracy
            in percentage points (default 1.0); a larger drop is an error and
            nothing is written.
        latency_runs: Timed batch-1 runs of the export and of the Keras model,
            with every core and with one thread, each in a fresh process (0:
            not timed).
        overwrite: Replace an existing ``filepath``.
        verify: Reload the export in a fresh process, compare outputs, measure
            accuracy and latency. Without it only the size is measured.
        include_preprocessing: Put the model's recorded preprocessing (its
            spec's ``preprocessing``: see ``kr.preprocess_input``) inside the
            export, so the deployed model takes raw pixel values (0 to 255,
            float32) as ``keras.applications``' models with
            ``include_preprocessing`` do. Representative and validation data
            are still given as the model's inputs (as ``kr.load_data`` gives
            them); they are turned back into pixels for the check.

    Returns:
        An :class:`ExportResult`.

    Raises:
        FileExistsError: ``filepath`` exists and ``overwrite`` is False.
        ExportVerificationError: the reloaded export differs from the model
            (:class:`AccuracyDropError`: lost more accuracy than allowed);
            nothing is written at ``path``.

    Example:

    ```python
    kr.export(model, "m_int8.tflite", "tflite", quantize="int8",
              representative_data=data, validation_data=data)
    ```
    """
    path, format = os.fspath(filepath), canonical(format)  # noqa: A001
    _check(path, format, quantize, io_dtype, representative_data, validation_data, verify,
           overwrite, latency_runs, include_preprocessing)
    drop = MAX_ACCURACY_DROP if max_accuracy_drop is None else C.check_float(
        "max_accuracy_drop", max_accuracy_drop, minimum=0)
    folder = RunFolder.of(model) if isinstance(model, (str, os.PathLike)) else None
    model = _as_model(model, include_preprocessing)
    rep, validation = _data(model, folder, quantize, representative_data, validation_data,
                            verify, include_preprocessing)
    card_folder = None if format == "saved_model" else os.path.dirname(os.path.abspath(path))
    existing = cards.read_card(card_folder) if card_folder else None
    start, check = time.perf_counter(), None
    with atomic_path(path, overwrite=overwrite) as tmp, \
            _reference(model, verify and latency_runs > 0 and format != "keras") as reference:
        _write(model, tmp, format, quantize, io_dtype, rep)
        if verify:
            check = verify_export(model, tmp, format, quantize=quantize,
                                  validation=validation, max_accuracy_drop=drop,
                                  latency_runs=latency_runs, reference=reference)
        size = _size_on_disk(tmp)
        entry = _entry(format, quantize, io_dtype, size, verify, check, latency_runs, rep,
                       include_preprocessing)
        card = cards.make_card(existing, card_folder or tmp,
                               os.path.basename(os.path.abspath(path)),
                               cards.model_section(model, folder),
                               cards.training_section(folder), entry)
        texts = {cards.JSON_NAME: json.dumps(card, indent=2, default=str) + "\n",
                 cards.MD_NAME: cards.markdown(card)}
        if card_folder is None:  # a SavedModel: its card is inside it, renamed with it
            for name, text in texts.items():
                with open(os.path.join(tmp, name), "w", encoding="utf-8") as fh:
                    fh.write(text)
    if card_folder is not None:  # beside the file: each replaced atomically, right after
        for name, text in texts.items():
            atomic_write_text(os.path.join(card_folder, name), text, overwrite=True)
    return _result(path, format, quantize, io_dtype, size, check,
                   time.perf_counter() - start, os.path.join(card_folder or path,
                                                             cards.JSON_NAME))


def _check(path: str, format: str, quantize: str | None,  # noqa: A002
           io_dtype: str, representative_data: Any, validation_data: Any, verify: bool,
           overwrite: bool, latency_runs: int, include_preprocessing: bool) -> None:
    """Every argument, before any work."""
    check_format(format, quantize, io_dtype)
    slow = advice(format, quantize)
    if slow:
        warnings.warn(slow, UserWarning, stacklevel=3)
    for name, value in (("overwrite", overwrite), ("verify", verify),
                        ("include_preprocessing", include_preprocessing)):
        C.check_bool(name, value)
    C.check_int("latency_runs", latency_runs, minimum=0)
    suffix = SUFFIX.get(format)
    if suffix and not path.endswith(suffix):
        C.fail("filepath", f"must end with {suffix!r} for format={format!r}", path)
    if quantize != "int8" and representative_data is not None:
        C.fail("representative_data", "is used only with quantize='int8'",
               type(representative_data).__name__)
    if not verify and validation_data is not None:
        C.fail("validation_data", "is measured only with verify=True",
               type(validation_data).__name__)
    require(format, quantize)


def _as_model(model: Any, include_preprocessing: bool) -> keras.Model:
    """The model to export: loaded from a file or run folder, and with its recorded
    preprocessing in front when asked."""
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    if not isinstance(model, keras.Model):
        C.fail("model", "must be a keras.Model, a .keras file or a run folder", model,
               TypeError)
    if not include_preprocessing:
        return model
    try:
        spec = spec_of(model)
    except TypeError:
        C.fail("include_preprocessing", "needs a model built by keras_resnet (its spec "
               "records the preprocessing)", True)
    raw = keras.Input(tuple(model.inputs[0].shape[1:]), name="pixels")
    return keras.Model(raw, model(Preprocess(spec.preprocessing)(raw)),
                       name=f"{model.name}_raw")


def _data(model: keras.Model, folder: RunFolder | None, quantize: str | None,
          representative_data: Any, validation_data: Any, verify: bool,
          raw: bool) -> tuple:
    """``(calibration examples or None, (x, y) validation examples or None)`` as the
    exported model takes them; a run folder's data where none is given."""
    needed = (quantize == "int8" and representative_data is None) or (
        verify and validation_data is None)
    run, note = run_data(folder) if needed else (None, "")
    shape = tuple(model.inputs[0].shape[1:])
    rep = validation = None
    if quantize == "int8":
        source = representative_data if representative_data is not None else run
        if source is None:
            C.fail("representative_data", "is required for quantize='int8': pass examples "
                   "of the training data (a kr.Data, an array or a dataset), or export the "
                   "run folder of kr.train, whose run.json names its data" + note,
                   representative_data)
        limit = None if isinstance(source, (np.ndarray, tuple)) else REPRESENTATIVE_EXAMPLES
        rep, _ = examples(source, shape, "representative_data", "train", limit)
    if verify:
        source = validation_data if validation_data is not None else run
        if source is not None and (validation_data is not None
                                   or getattr(source, "validation", None) is not None):
            validation = examples(source, shape, "validation_data", "validation",
                                  labels=True)
    if raw:  # kr.load_data's inputs are pixels / 255: the raw model takes the pixels
        rep = None if rep is None else rep * 255.0
        validation = None if validation is None else (validation[0] * 255.0, validation[1])
    return rep, validation


def _entry(format: str, quantize: str | None, io_dtype: str, size: int,  # noqa: A002
           verify: bool, check: Check | None, latency_runs: int, rep: Any,
           include_preprocessing: bool) -> dict:
    """The card's entry of this export."""
    timed = check is not None and check.latency_ms is not None
    return {"format": format, "quantize": quantize, "io_dtype": io_dtype,
            "size_bytes": size, "verified": verify,
            "input": "raw pixels (preprocessing inside)" if include_preprocessing
            else "preprocessed (see the model's input)",
            "max_abs_diff": check and check.max_abs_diff,
            "latency_ms": check and check.latency_ms,
            "latency_ms_1thread": check and check.latency_ms_1thread,
            "keras_latency_ms": check and check.keras_latency_ms,
            "keras_latency_ms_1thread": check and check.keras_latency_ms_1thread,
            "threads": check.threads if timed and check else None,
            "cpu": check.cpu if timed and check else None,
            "runtime": check and check.runtime,
            "latency_runs": latency_runs if timed else None,
            "accuracy": check and check.accuracy, "io": check and check.io,
            "representative_examples": None if rep is None else len(rep)}


def _result(path: str, format: str, quantize: str | None, io_dtype: str,  # noqa: A002
            size: int, check: Check | None, seconds: float, card: str) -> ExportResult:
    timed = check is not None and check.latency_ms is not None
    latency = {f.name: getattr(check, f.name) for f in dataclasses.fields(Latency)
               if timed or f.name == "runtime"} if check else {}
    return ExportResult(path, format, check.max_abs_diff if check else None, seconds,
                        quantize, io_dtype, size, check.accuracy if check else None, card,
                        **latency)


@contextlib.contextmanager
def _reference(model: Any, wanted: bool) -> Any:
    """The model as a temporary ``.keras`` file, timed beside its export (None
    when not wanted)."""
    if not wanted:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="keras_resnet_reference_") as work:
        path = os.path.join(work, "model.keras")
        model.save(path)
        yield path


def _size_on_disk(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path)
               for f in files)


def _write(model: Any, tmp: str, format: str, quantize: str | None,  # noqa: A002
           io_dtype: str, rep: np.ndarray | None) -> None:
    if format == "keras":
        model.save(tmp)
        return
    if keras.backend.backend() == "tensorflow":
        convert(model, tmp, format, quantize, io_dtype, rep)
        return
    # Keras converts these on TensorFlow only: hand the (backend-neutral) .keras
    # file to a TensorFlow process.

    with tempfile.TemporaryDirectory(prefix="keras_resnet_convert_") as work:
        src = os.path.join(work, "model.keras")
        model.save(src)
        run_worker({"job": "convert", "src": src, "dst": tmp, "format": format,
                    "quantize": quantize, "io_dtype": io_dtype},
                   {"representative": rep}, "tensorflow", 3600, RuntimeError,
                   f"converting to {format} on TensorFlow failed")


__all__ = ["ExportResult", "ExportVerificationError", "export"]
