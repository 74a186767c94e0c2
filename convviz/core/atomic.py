"""Atomic file writes: a file appears whole or not at all (the one home of this in convviz).

Each file is written to a temp file in the same folder (``.NAME.XXXX.part``), flushed and fsynced,
then renamed over the target, and the folder is fsynced: a crash or a kill mid-write leaves the
previous file intact and no partial file under the target's name. :func:`atomic_write_all` writes
several files that belong together (a PNG and its ``.npy``): all of them or none.

Failures to write raise :class:`WriteError` (a ``ValueError``) with one line naming the path; an
exception raised by the caller's ``write`` function propagates unchanged after the clean-up.
"""
from __future__ import annotations

import os
import secrets
from typing import BinaryIO, Callable

__all__ = ["WriteError", "atomic_write", "atomic_write_all", "check_writable"]

Writer = Callable[[BinaryIO], object]


class WriteError(ValueError):
    """A file that cannot be written; the message is one line for the user."""


def shown(path: str | os.PathLike) -> str:
    """``path`` printable on any stream (undecodable bytes, surrogate escapes, as ``\\xNN``)."""
    return os.fsdecode(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _failed(path: str, exc: OSError) -> WriteError:
    return WriteError(f"cannot write {shown(path)}: {exc.strerror or exc}")


def check_writable(path: str) -> None:
    """Raise :class:`WriteError` now (before long work) if ``path`` cannot be written."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise WriteError(f"cannot write {shown(path)}: it is a folder")
    if not os.path.isdir(folder):
        raise WriteError(f"cannot write {shown(path)}: folder {shown(folder)} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise WriteError(f"cannot write {shown(path)}: permission denied")


def atomic_write(path: str, write: Writer) -> None:
    """Call ``write(binary_file)`` on a temp file beside ``path``, then replace ``path`` atomically."""
    atomic_write_all([(path, write)])


def atomic_write_all(outputs: list[tuple[str, Writer]]) -> None:
    """Write every ``(path, write(binary_file))`` to a temp file beside it, then rename them all.

    If any write or rename fails, nothing is left behind: the temp files are removed, and so are
    the files this call already renamed into place.
    """
    temps: list[tuple[str, str]] = []
    done: list[str] = []
    try:
        for path, write in outputs:
            path = os.path.abspath(path)
            temps.append((_write_temp(path, write), path))
        for tmp, path in temps:
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise _failed(path, exc) from None
            done.append(path)
    except BaseException:
        for tmp, _ in temps:
            _remove(tmp)
        for path in done:
            _remove(path)
        raise
    for folder in dict.fromkeys(os.path.dirname(path) for path in done):
        _fsync_folder(folder)


def _write_temp(path: str, write: Writer) -> str:
    """The temp file beside ``path``, written, flushed and fsynced; its path."""
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise WriteError(f"cannot write {shown(path)}: folder {shown(folder)} does not exist")
    try:
        fd, tmp = _create_temp(path)
    except OSError as exc:
        raise _failed(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, OSError):
            raise _failed(path, exc) from None
        raise
    return tmp


def _create_temp(path: str) -> tuple[int, str]:
    """A new, exclusive ``.NAME.XXXXXXXXXXXX.part`` beside ``path``, with the mode a plain ``open`` gives
    (0666 less the umask; ``tempfile.mkstemp`` would make every output 0600)."""
    folder, name = os.path.split(path)
    for _ in range(100):
        tmp = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.part")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {name}")


def _fsync_folder(folder: str) -> None:
    """Make the renames durable (best effort: some file systems refuse a folder fsync)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
