"""Reading text files line by line, and atomic writes: a file or directory appears whole or not at all."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import DataFormatError

logger = logging.getLogger(__name__)


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, text without line ending) of a UTF-8 file.

    A leading byte-order mark is dropped; CRLF endings are accepted; bytes that
    are not UTF-8 raise :class:`DataFormatError` naming the line.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"expected a file, got a directory: {path}")
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataFormatError(
                    path, number, f"not valid UTF-8 (byte {err.start}: {raw[err.start:err.start + 1]!r})"
                ) from None
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield number, text.rstrip("\r\n")


def _old_sibling(target: Path) -> Path:
    """Where the previous version of ``target`` waits while the new one is moved in (two-rename fallback)."""
    return target.parent / f".{target.name}.old"


def recover_directory(target: str | Path) -> Path:
    """Put back the previous version of ``target`` if a replace was interrupted between its two renames.

    Readers of directories written by :func:`atomic_directory` call this first. When ``target`` exists,
    a previous version still lying aside is stale (the replace got past its renames) and is removed.
    """
    target = Path(target)
    old = _old_sibling(target)
    if not old.is_dir():
        return target
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(old, target)
        _fsync_dir(target.parent)
        logger.warning("%s: an interrupted replace left the previous version aside; restored it", target)
    return target


@contextlib.contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``target``; on success it replaces ``target``.

    If the block raises, the temporary directory is removed and any existing ``target`` is left
    untouched. A crash at any point leaves ``target`` holding the old or the new version (on Linux the
    two are swapped in one step; elsewhere :func:`recover_directory` restores the old one).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_directory(target)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a directory")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        _fsync_tree(tmp)
        if not target.exists():
            os.replace(tmp, target)
            _fsync_dir(target.parent)
            return
        if _exchange(tmp, target):  # tmp now holds the old version
            _fsync_dir(target.parent)
            shutil.rmtree(tmp, ignore_errors=True)
            return
        old = _old_sibling(target)
        os.replace(target, old)
        _fsync_dir(target.parent)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` through a temporary sibling and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return function


_RENAMEAT2 = _renameat2()


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems (and Windows) cannot open a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    for path in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        _fsync_dir(path)
    _fsync_dir(root)
