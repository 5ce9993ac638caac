"""Image files checked before training: every file the loader will read decodes.

TensorFlow decodes an image folder lazily, one batch at a time, so a single
truncated JPEG among 50,000 photos stops training hours into an epoch with an
error that names no file. :func:`check_image_folder` lists a folder exactly
as ``keras.utils.image_dataset_from_directory`` does (class sub-folders,
nested folders, the same extensions, symbolic links not followed below the
class folders) and decodes every file once, in parallel threads, with the
decoder the training pipeline uses: TensorFlow's ``decode_image``, with the
channels of the color mode. So a file that passes cannot fail later in the
pipeline. Files whose header declares more than ``max_image_pixels`` pixels
are refused before anything is decoded.

Results are cached in a JSON file keyed by (relative path, size, mtime), so a
resumed run does not decode the folder again.

Example:

```python
folder = kr.check_image_folder("photos", skip_bad_files=True, cache="run/image_check.json")
print(len(folder.files), "images,", len(folder.bad_files), "left out")
```
"""

from __future__ import annotations

import errno
import json
import os
import string
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from keras_resnet import _checks as C
from keras_resnet._io import atomic_write_text

#: The extensions ``keras.utils.image_dataset_from_directory`` lists (any case).
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
#: Default largest image, in pixels: Pillow's decompression-bomb limit
#: (``PIL.Image.MAX_IMAGE_PIXELS``), about 0.27 GB decoded at 3 channels.
MAX_IMAGE_PIXELS = 89_478_485
#: Name of the list of left-out files :func:`write_bad_files` writes.
BAD_FILES_JSON = "bad_files.json"
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
_CACHE_FORMAT = "keras_resnet.imagecheck/1"
_SHOWN = 10  # bad files named in an error message


@dataclass(frozen=True)
class BadFile:
    """A file the training pipeline could not read, and why.

    Attributes:
        path: The file, relative to the image folder (or as given, for
            :func:`check_image_files`).
        reason: Why it cannot be used, e.g. ``"truncated JPEG ..."``.
    """

    path: str
    reason: str


class BadImageFilesError(C.InvalidInput):
    """Image files that would stop training; raised before training starts (a
    ``ValueError``; the command line exits with 2).

    Attributes:
        bad_files: Every bad file (:class:`BadFile`), not only the ones the
            message names.
    """

    def __init__(self, message: str, bad_files: list[BadFile]):
        super().__init__(message)
        self.bad_files = bad_files


@dataclass
class ImageFolder:
    """An image folder as the training pipeline reads it.

    Attributes:
        directory: The folder, as given.
        class_names: Class sub-folders, sorted (label ``i`` is
            ``class_names[i]``).
        files: Image files relative to ``directory`` in the loader's order
            (class by class, folders and names sorted), bad files left out.
        labels: The class index of each file: its top-level class folder.
        bad_files: The files left out (``skip_bad_files=True``), else empty.
    """

    directory: str
    class_names: list[str]
    files: list[str]
    labels: list[int]
    bad_files: list[BadFile] = field(default_factory=list)

    def paths(self) -> list[str]:
        """The files joined to :attr:`directory`, ready for ``tf.io.read_file``."""
        return [os.path.join(self.directory, f) for f in self.files]


# ----------------------------------------------------------------------------- listing


def list_image_folder(directory: str) -> ImageFolder:
    """Lists an image folder as ``keras.utils.image_dataset_from_directory`` does.

    Class folders are the sub-folders of ``directory`` not starting with
    ``"."`` (symbolic links to folders count), sorted by name. Each class
    holds the files below its folder, at any depth, whose names end in one of
    :data:`IMAGE_EXTENSIONS` (any case); links to folders below a class folder
    are not followed, so a link loop cannot hang the listing. Nothing is
    read or decoded.

    Args:
        directory: The image folder.

    Returns:
        An :class:`ImageFolder` of every listed file (nothing checked yet).
    """
    C.check_str("directory", directory)
    if not os.path.isdir(directory):
        raise C.InvalidInput(f"image folder {directory!r} is not a folder. "
                         f"Received: directory={directory!r}")
    classes = [d for d in sorted(os.listdir(directory))
               if not d.startswith(".") and os.path.isdir(os.path.join(directory, d))]
    if len(classes) < 2:
        raise C.InvalidInput(
            f"image folder {directory!r} must hold one sub-folder per class (at least 2). "
            f"Received: {len(classes)} sub-folder(s)"
            + (f" ({', '.join(map(repr, classes))})" if classes else ""))
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        top = os.path.join(directory, name)
        for root, _, names in sorted(os.walk(top), key=lambda x: x[0]):
            for fname in sorted(names):
                if fname.lower().endswith(IMAGE_EXTENSIONS):
                    files.append(os.path.join(name, os.path.relpath(
                        os.path.join(root, fname), top)))
                    labels.append(label)
    return ImageFolder(directory, classes, files, labels)


def _check_classes(folder: ImageFolder, skipped: int) -> None:
    """Every class must keep an image: an empty one gets an output it never learns."""
    counts = [0] * len(folder.class_names)
    for label in folder.labels:
        counts[label] += 1
    empty = [n for n, c in zip(folder.class_names, counts) if c == 0]
    if empty:
        after = f" once its {skipped} bad file(s) are left out" if skipped else ""
        raise C.InvalidInput(
            f"image folder {folder.directory!r} has class folder(s) with no images{after}: "
            f"{', '.join(map(repr, empty))}. The model gets one output per class folder, "
            f"and a class without images is never learned: add images (files ending "
            f"{', '.join(IMAGE_EXTENSIONS)}) or remove the folder. Received: "
            f"{len(folder.class_names)} class folders")


# ----------------------------------------------------------------------------- one file


def _sniff(data: bytes) -> str | None:
    """The format TensorFlow's ``decode_image`` will see (it decodes by content)."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"GIF8":
        return "GIF"
    if data[:2] == b"BM":
        return "BMP"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[:2] == b"\xff\x0a" or data[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n":
        return "JPEG XL"
    return None


def _other_format(data: bytes) -> str:
    """A name for content TensorFlow does not decode."""
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "a TIFF image, which TensorFlow does not decode"
    if data[4:8] == b"ftyp":
        brand = data[8:12].decode("ascii", "replace")
        kind = "an AVIF" if brand.startswith("avi") else "a HEIC/HEIF" if brand.startswith(
            ("hei", "hev", "mif", "msf")) else "an ISO media (video?)"
        return f"{kind} file, which TensorFlow does not decode"
    if data[:4] == b"%PDF":
        return "a PDF document, not an image"
    head = data[:256]
    text = set(string.printable.encode())
    if all(b in text for b in head):
        return f"a text file, not an image (it starts with {head[:24]!r})"
    return f"not an image: the content is not JPEG, PNG, GIF, BMP or WebP " \
           f"(it starts with {data[:8]!r})"


def _be16(b: bytes, i: int) -> int:
    return int.from_bytes(b[i:i + 2], "big")


def _le(b: bytes, i: int, n: int, signed: bool = False) -> int:
    return int.from_bytes(b[i:i + n], "little", signed=signed)


def _header(fmt: str, data: bytes) -> tuple[int, int, int] | None:
    """``(width, height, components)`` from the header, or None if not found there."""
    try:
        if fmt == "PNG" and data[12:16] == b"IHDR":
            return (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"), 0)
        if fmt == "GIF" and len(data) >= 10:
            return _le(data, 6, 2), _le(data, 8, 2), 3
        if fmt == "BMP" and len(data) >= 26:
            if _le(data, 14, 4) == 12:  # OS/2 BITMAPCOREHEADER
                return _le(data, 18, 2), _le(data, 20, 2), 0
            return abs(_le(data, 18, 4, True)), abs(_le(data, 22, 4, True)), 0
        if fmt == "WebP" and len(data) >= 30:
            chunk = data[12:16]
            if chunk == b"VP8X":
                return 1 + _le(data, 24, 3), 1 + _le(data, 27, 3), 0
            if chunk == b"VP8L":
                bits = _le(data, 21, 4)
                return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF), 0
            if chunk == b"VP8 ":
                return _le(data, 26, 2) & 0x3FFF, _le(data, 28, 2) & 0x3FFF, 0
        if fmt == "JPEG":
            return _jpeg_header(data)
    except (IndexError, ValueError):
        return None
    return None


def _jpeg_header(data: bytes) -> tuple[int, int, int] | None:
    """Width, height and colour components from a JPEG's first SOF marker."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 10 > len(data):
                return None
            return _be16(data, i + 7), _be16(data, i + 5), data[i + 9]
        i += 2 + _be16(data, i + 2)
    return None


def _tf_message(e: Exception) -> str:
    """TensorFlow's error text without the op and device decoration."""
    text = str(getattr(e, "message", None) or e).strip()
    if text.startswith("{{") and "}}" in text:
        text = text.split("}}", 1)[1]
    return text.split("[Op:", 1)[0].strip()


def _reason(fmt: str | None, data: bytes, header: tuple | None, channels: int,
            message: str) -> str:
    """A user's reason for a file TensorFlow's ``decode_image`` refused."""
    mode = {v: k for k, v in CHANNELS.items()}[channels]
    if fmt is None:
        return _other_format(data)
    raw = f" [TensorFlow: {message}]"
    if any(m in message for m in ("does not support", "channels must be", "only supports",
                                  "`channels` must be", "channels requested")):
        return (f"a {fmt} that TensorFlow cannot decode to {channels} channel(s) "
                f"(color_mode={mode!r}){raw}")
    if fmt == "JPEG":
        if header is not None and header[2] == 4 and channels != 3:
            return (f"a CMYK JPEG, which TensorFlow decodes to RGB only "
                    f"(color_mode={mode!r}){raw}")
        if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
            return f"truncated JPEG: the file ends before its end-of-image marker{raw}"
        return f"corrupt JPEG data{raw}"
    if fmt == "PNG":
        if b"IEND" not in data[-16:]:
            return f"truncated PNG: the file ends before its IEND chunk{raw}"
        return f"corrupt PNG data{raw}"
    if fmt == "BMP" and len(data) >= 34:
        bits, compression = _le(data, 28, 2), _le(data, 30, 4)
        kind = f"{bits}-bit" + (" compressed" if compression not in (0, 3) else "")
        return f"a {kind} BMP, which TensorFlow does not decode{raw}"
    return f"a {fmt} that TensorFlow cannot decode{raw}"


def _read(path: str) -> tuple[bytes | None, str | None]:
    """The file's bytes, or why they cannot be read (as ``tf.io.read_file`` would fail)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(), None
    except OSError as e:
        if e.errno == errno.ELOOP:
            return None, "cannot be read: a loop of symbolic links"
        if e.errno == errno.ENOENT and os.path.islink(path):
            return None, f"cannot be read: a broken symbolic link (to {os.readlink(path)!r})"
        return None, f"cannot be read: {e.strerror}"


def check_bytes(data: bytes, channels: int = 3,
                max_image_pixels: int = MAX_IMAGE_PIXELS) -> str | None:
    """Why TensorFlow's training pipeline cannot use these image bytes, or None.

    Decodes ``data`` exactly as ``image_dataset_from_directory`` and
    :func:`~keras_resnet.load_data` do (``tf.image.decode_image(data,
    channels=channels, expand_animations=False)``), after refusing, from the
    header alone, images of more than ``max_image_pixels`` pixels.

    Args:
        data: The file's content.
        channels: 1, 3 or 4 (``color_mode`` grayscale, rgb, rgba).
        max_image_pixels: Largest width x height accepted.

    Returns:
        None if the bytes decode, else the reason (one line).
    """
    if not data:
        return "empty file (0 bytes)"
    fmt = _sniff(data)
    header = _header(fmt, data) if fmt else None
    if header is not None and header[0] * header[1] > max_image_pixels:
        return _too_large(fmt, header[0], header[1], max_image_pixels)
    import tensorflow as tf

    try:
        image = tf.image.decode_image(data, channels=channels, expand_animations=False)
    except (tf.errors.OpError, ValueError) as e:
        return _reason(fmt, data, header, channels, _tf_message(e))
    h, w = int(image.shape[0]), int(image.shape[1])
    if h * w > max_image_pixels:  # a format whose size the header check does not read
        return _too_large(fmt, w, h, max_image_pixels)
    if h == 0 or w == 0:
        return f"an empty {fmt} image ({w} x {h} pixels)"
    return None


def _too_large(fmt: str | None, w: int, h: int, limit: int) -> str:
    return (f"too large to decode safely: a {fmt} of {w:,} x {h:,} = {w * h:,} pixels, "
            f"more than max_image_pixels={limit:,}")


def _check_file(path: str, channels: int, max_image_pixels: int) -> str | None:
    data, why = _read(path)
    if data is None:
        return why
    return check_bytes(data, channels, max_image_pixels)


def _check_file_pil(path: str, color_mode: str, max_image_pixels: int) -> str | None:
    """What ``keras.utils.load_img`` (Pillow; used by ``predict``) says of the file."""
    import keras
    from PIL import Image

    try:
        with Image.open(path) as img:
            w, h = img.size
        if w * h > max_image_pixels:
            return _too_large(img.format, w, h, max_image_pixels)
        img = keras.utils.load_img(path, color_mode=color_mode)
        img.load()
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds
        return f"Pillow cannot read it ({type(e).__name__}: {e})"
    return None


# ----------------------------------------------------------------------------- many files


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _parallel(fn: Callable[[str], str | None], items: Sequence[str],
              workers: int | None) -> list[str | None]:
    """``[fn(x) for x in items]`` in a pool of threads, in chunks.

    Threads, not processes: decoding runs in TensorFlow's C++ kernels with the
    GIL released, so threads use every core where decoding costs (photos), and
    a thread needs no TensorFlow import of its own (a process: seconds and
    hundreds of MB each). Chunks of files per task keep the pool's own
    overhead small for tiny images.
    """
    n = len(items)
    workers = max(1, min(workers or _cores(), n))
    if workers == 1:
        return [fn(x) for x in items]
    size = max(1, min(64, n // (4 * workers)))
    chunks = [items[i:i + size] for i in range(0, n, size)]
    with ThreadPoolExecutor(workers, thread_name_prefix="imagecheck") as pool:
        return [v for part in pool.map(lambda c: [fn(x) for x in c], chunks) for v in part]


def _stat(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _cache_header(channels: int, max_image_pixels: int) -> dict:
    import tensorflow as tf

    return {"format": _CACHE_FORMAT, "decoder": f"tensorflow {tf.__version__} decode_image",
            "channels": channels, "max_image_pixels": max_image_pixels}


def _read_cache(cache: str, header: dict) -> dict:
    """Cached verdicts ``{relative path: [size, mtime_ns, reason]}``; {} if unusable."""
    try:
        with open(cache, encoding="utf-8") as fh:
            saved = json.load(fh)
        if {k: saved.get(k) for k in header} != header or not isinstance(
                saved.get("files"), dict):
            return {}
        return {k: v for k, v in saved["files"].items()
                if isinstance(v, list) and len(v) == 3 and all(
                    isinstance(x, int) for x in v[:2]) and (v[2] is None or isinstance(
                        v[2], str))}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}  # missing or corrupt: check again


def _message(what: str, bad: list[BadFile], total: int, hint: str) -> str:
    lines = [f"{what}: {len(bad)} of {total} image files cannot be decoded, and training "
             f"would stop when it reached the first:"]
    lines += [f"  {b.path}: {b.reason}" for b in bad[:_SHOWN]]
    if len(bad) > _SHOWN:
        lines.append(f"  ... and {len(bad) - _SHOWN} more")
    lines.append(hint)
    return "\n".join(lines)


def check_image_folder(
    directory: str,
    *,
    color_mode: str = "rgb",
    skip_bad_files: bool = False,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
    cache: str | None = None,
    workers: int | None = None,
) -> ImageFolder:
    """Checks that every image of a class-per-folder image folder decodes.

    Lists the folder as ``keras.utils.image_dataset_from_directory`` does
    (:func:`list_image_folder`) and decodes each file once with TensorFlow's
    ``decode_image`` and the channels of ``color_mode``, as the training
    pipeline will, in parallel threads. Refused: files that cannot be read
    (a loop or a broken symbolic link), empty files, files that are not
    JPEG, PNG, GIF, BMP or WebP whatever their name, corrupt or truncated
    data, formats that cannot give ``color_mode``'s channels (a JPEG as
    ``"rgba"``), and images whose header declares more than
    ``max_image_pixels`` pixels (refused before decoding). Accepted and
    converted by the pipeline: greyscale, RGBA, palette, 16-bit and CMYK
    images in an RGB set, and any supported format under any of the listed
    names (a PNG named ``.jpg``).

    Args:
        directory: The image folder, one sub-folder per class.
        color_mode: ``"rgb"``, ``"grayscale"`` or ``"rgba"``: the channels
            the images are decoded to.
        skip_bad_files: Leave bad files out (with a warning that counts
            them; they are returned in ``bad_files``) instead of raising.
        max_image_pixels: Largest width x height accepted; by default
            Pillow's decompression-bomb limit, 89,478,485.
        cache: A JSON file for the verdicts, keyed by each file's relative
            path, size and modification time: a second check of the same
            folder decodes only new or changed files. Written atomically; a
            missing or unreadable cache is ignored. None: no cache.
        workers: Threads (default: one per usable CPU core).

    Returns:
        An :class:`ImageFolder` of the good files, and of the left-out ones
        in ``bad_files``.

    Raises:
        BadImageFilesError: Some file is bad and ``skip_bad_files`` is False;
            the message names the first ten and their reasons.
        ValueError: Fewer than 2 class folders, or a class folder without
            images (before or after leaving bad files out).

    Example:

    ```python
    folder = kr.check_image_folder("photos")  # raises if a file is bad
    ```
    """
    C.check_choice("color_mode", color_mode, tuple(CHANNELS))
    C.check_bool("skip_bad_files", skip_bad_files)
    C.check_int("max_image_pixels", max_image_pixels, minimum=1)
    if cache is not None:
        cache = C.check_str("cache", os.fspath(cache))
    if workers is not None:
        C.check_int("workers", workers, minimum=1)
    folder = list_image_folder(directory)
    _check_classes(folder, 0)
    channels = CHANNELS[color_mode]

    header = _cache_header(channels, max_image_pixels) if cache else {}
    known = _read_cache(cache, header) if cache else {}
    paths = folder.paths()
    stats = [_stat(p) for p in paths]
    verdicts: list[str | None] = [None] * len(paths)
    todo = []
    for i, (rel, st) in enumerate(zip(folder.files, stats)):
        hit = known.get(rel)
        if st is not None and hit is not None and hit[:2] == st:
            verdicts[i] = hit[2]
        else:
            todo.append(i)
    if len(todo) >= 5000:
        print(f"Checking {len(todo):,} image files in {directory!r} (each is decoded once"
              + ("; the results are cached)" if cache else ")"), flush=True)
    found = _parallel(lambda p: _check_file(p, channels, max_image_pixels),
                      [paths[i] for i in todo], workers)
    for i, v in zip(todo, found):
        verdicts[i] = v
    if cache:
        files = {rel: st + [v] for rel, st, v in zip(folder.files, stats, verdicts)
                 if st is not None}
        atomic_write_text(cache, json.dumps(dict(header, files=files)), overwrite=True)

    bad = [BadFile(rel, v) for rel, v in zip(folder.files, verdicts) if v is not None]
    if bad and not skip_bad_files:
        raise BadImageFilesError(_message(
            f"image folder {directory!r}", bad, len(paths),
            "Fix or remove them, or pass skip_bad_files=True (--skip-bad-files) to leave "
            "them out of training."), bad)
    good = [i for i, v in enumerate(verdicts) if v is None]
    checked = ImageFolder(directory, folder.class_names, [folder.files[i] for i in good],
                          [folder.labels[i] for i in good], bad)
    if bad:
        warnings.warn(f"left out {len(bad)} of {len(paths)} image files of {directory!r} "
                      f"that cannot be decoded (skip_bad_files=True); the first: "
                      f"{bad[0].path}: {bad[0].reason}", UserWarning, stacklevel=2)
        _check_classes(checked, len(bad))
    return checked


def check_image_files(
    paths: Iterable[str],
    *,
    color_mode: str = "rgb",
    skip_bad_files: bool = False,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
    workers: int | None = None,
) -> tuple[list[str], list[BadFile]]:
    """Checks single image files (for prediction) as :func:`check_image_folder` does.

    A file passes when TensorFlow's ``decode_image`` (what training uses)
    and ``keras.utils.load_img`` (Pillow) both read it with ``color_mode``'s
    channels; without TensorFlow installed, Pillow alone decides. The files
    are read whatever their names.

    Args:
        paths: Image files.
        color_mode: ``"rgb"``, ``"grayscale"`` or ``"rgba"``.
        skip_bad_files: Return bad files instead of raising.
        max_image_pixels: Largest width x height accepted.
        workers: Threads (default: one per usable CPU core).

    Returns:
        ``(good, bad)``: the good paths in the order given, and the
        :class:`BadFile` list (empty unless ``skip_bad_files``).

    Raises:
        BadImageFilesError: Some file is bad and ``skip_bad_files`` is False.

    Example:

    ```python
    good, _ = kr.check_image_files(["cat.jpg", "dog.png"])
    ```
    """
    if isinstance(paths, (str, bytes)):
        C.fail("paths", "must be a list of image files, not one string", paths, TypeError)
    paths = [C.check_str("paths[]", os.fspath(p)) for p in paths]
    C.check_choice("color_mode", color_mode, tuple(CHANNELS))
    C.check_bool("skip_bad_files", skip_bad_files)
    C.check_int("max_image_pixels", max_image_pixels, minimum=1)
    channels = CHANNELS[color_mode]
    try:
        import tensorflow  # noqa: F401
        has_tf = True
    except ImportError:
        has_tf = False

    def one(path: str) -> str | None:
        if os.path.isdir(path):
            return "a folder, not an image file"
        data, why = _read(path)
        if data is None:
            return why
        if has_tf:
            why = check_bytes(data, channels, max_image_pixels)
        return why or _check_file_pil(path, color_mode, max_image_pixels)

    verdicts = _parallel(one, paths, workers)
    bad = [BadFile(p, v) for p, v in zip(paths, verdicts) if v is not None]
    if bad and not skip_bad_files:
        raise BadImageFilesError(_message("image files", bad, len(paths),
                                          "Fix or remove them."), bad)
    return [p for p, v in zip(paths, verdicts) if v is None], bad


def write_bad_files(out_dir: str, bad_files: Sequence[BadFile],
                    overwrite: bool = False) -> str:
    """Writes the left-out files to ``out_dir/bad_files.json`` (atomically).

    Args:
        out_dir: A folder (a run folder); created if missing.
        bad_files: :class:`BadFile` items, e.g. ``data.bad_files``.
        overwrite: Replace an existing ``bad_files.json``.

    Returns:
        The path written. Its JSON is a list of ``{"path": ..., "reason": ...}``.
    """
    filepath = os.path.join(os.fspath(out_dir), BAD_FILES_JSON)
    items = [{"path": b.path, "reason": b.reason} for b in bad_files]
    atomic_write_text(filepath, json.dumps(items, indent=1) + "\n", overwrite=overwrite)
    return filepath


def read_bad_files(filepath: str) -> list[BadFile]:
    """Reads a ``bad_files.json`` that :func:`write_bad_files` wrote.

    Args:
        filepath: The JSON file.

    Returns:
        Its :class:`BadFile` list.
    """
    with open(filepath, encoding="utf-8") as fh:
        return [BadFile(str(d["path"]), str(d["reason"])) for d in json.load(fh)]
