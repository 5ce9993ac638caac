"""Safe file writing: nothing a user has on disk is overwritten unasked or half-written."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator

#: The errors a full disk (or a full quota) gives.
FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """The disk (or the quota) is full: the message says where a write failed.

    What was there before stays intact (every write goes to a temporary path
    first); free space and run the same command again to resume.
    """

    def __str__(self) -> str:
        return str(self.strerror)


def disk_full(error: BaseException) -> OSError | None:
    """The full-disk error an error is (or was raised from), or None."""
    seen: set = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in FULL:
            return error
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return None


def raise_disk_full(error: BaseException, where: str) -> None:
    """Raises :class:`DiskFullError` naming the file (``where`` when the error names
    none) if ``error`` is a full disk."""
    full = disk_full(error)
    if full is not None and not isinstance(error, DiskFullError):
        where = full.filename if isinstance(full.filename, str) else where
        raise DiskFullError(errno.ENOSPC, f"the disk is full: could not write {where!r} "
                            "(free some space, then run the same command again to "
                            "resume)") from error


def check_target(path: str, overwrite: bool) -> None:
    """Refuse to replace an existing ``path`` unless ``overwrite``."""
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(
            f"{path!r} already exists; pass overwrite=True (--overwrite) to replace it"
        )


def atomic_write_text(path: str, text: str, overwrite: bool = False) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_path(path: str, overwrite: bool = False, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path next to ``path``; on success rename it into place.

    Missing parent folders of ``path`` are created.

    The temporary path lives in the same folder (so the rename is atomic on
    POSIX) and is removed if the body raises, so a crash never leaves a
    half-written file or folder where a good one was.

    Args:
        path: Final location (a file or a folder).
        overwrite: Allow replacing an existing ``path``.
        suffix: Suffix of the temporary name (some writers need an extension).
    """
    path = os.fspath(path)
    check_target(path, overwrite)
    parent = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path.rstrip(os.sep))
    try:
        # Missing folders are created, as tf.saved_model.save and `mkdir -p` do:
        # that replaces nothing.
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise OSError(e.errno, f"cannot create folder {parent!r} for {path!r}: "
                               f"{e.strerror}") from None
    _remove_stale(parent, base)
    try:
        tmp_dir = tempfile.mkdtemp(prefix=f".{base}.tmp-{os.getpid()}-", dir=parent)
    except OSError as e:
        raise_disk_full(e, path)
        raise OSError(e.errno, f"cannot write {path!r}: {e.strerror} (in {parent!r})") \
            from None
    tmp = os.path.join(tmp_dir, base + suffix if suffix else base)
    try:
        try:
            yield tmp
        except Exception as e:  # noqa: BLE001 - named when the disk is full, else as it is
            raise_disk_full(e, path)
            raise
        if os.path.isdir(tmp) and os.path.isdir(path):
            # A folder cannot be renamed over a non-empty folder: move the old one
            # aside first, then drop it only once the new one is in place.
            old = tempfile.mkdtemp(prefix=f".{base}.tmp-{os.getpid()}-old-", dir=parent)
            os.rename(path, os.path.join(old, base))
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except OSError as e:
        raise_disk_full(e, path)
        raise
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(parent: str, base: str) -> None:
    """Remove temporaries of ``base`` left by processes that died (e.g. SIGKILL)."""
    prefix = f".{base}.tmp-"
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        if not name.startswith(prefix):
            continue
        pid = name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
