"""Atomic file writes: temp file in the same folder, fsync, rename (no torn outputs).

Outputs get the mode ``open()`` would give them (``0666 & ~umask``), the folder is fsynced after the
rename, and stale ``.NAME.HOST-PID.<random>.part`` siblings left by a killed writer are removed by the
next writer of the same target.

Several files of one command are committed together: inside :func:`committed_together`,
``atomic_path`` leaves each finished file under its temporary name, and the renames all happen
at the end, with SIGINT/SIGTERM held back, so an interrupt or error leaves every file that
existed before exactly as it was (no mix of this run's and the previous run's outputs).
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from ..errors import OutputError

STALE_PART_SECONDS = 300.0
"""A ``.part`` file of another machine's writer (or of unknown origin) untouched this long is removed."""

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read from /proc on Linux (no race); elsewhere set-and-restore under a lock."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        old = os.umask(0o022)
        os.umask(old)
    return old


def file_mode() -> int:
    """Mode of a new file as ``open()`` creates it: ``0o666 & ~umask``."""
    return 0o666 & ~current_umask()


def _writer_tag() -> str:
    """``HOST-PID`` of this process, as it appears in its ``.part`` names (dots and dashes of the host kept out)."""
    import re
    import socket

    return f"{re.sub(r'[^A-Za-z0-9_]', '_', socket.gethostname())}-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


def _remove_stale_parts(folder: Path, name: str) -> None:
    """Remove the ``.NAME.HOST-PID.*.part`` siblings a killed writer left behind.

    One written on this host by a process that no longer exists goes at once; one of another host
    (a shared file system) or without a tag goes once untouched for :data:`STALE_PART_SECONDS`.
    """
    prefix = f".{name}."
    host = _writer_tag().rsplit("-", 1)[0]
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(".part")):
            continue
        tag = entry.name[len(prefix):].split(".", 1)[0]
        who, _, pid = tag.rpartition("-")
        try:
            if who == host and pid.isdigit():
                if _pid_alive(int(pid)):
                    continue
            elif now - entry.stat(follow_symlinks=False).st_mtime < STALE_PART_SECONDS:
                continue
            if entry.is_dir(follow_symlinks=False):
                import shutil

                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            continue


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _Batch:
    """Finished temporary files of one :func:`committed_together` block, waiting for their renames."""

    def __init__(self) -> None:
        self.staged: list[tuple[Path, Path]] = []

    def discard(self) -> None:
        for tmp, _ in self.staged:
            tmp.unlink(missing_ok=True)
        self.staged.clear()

    def commit(self) -> None:
        """Rename every staged file into place, SIGINT/SIGTERM held back until all are done."""
        held = {signal.SIGINT, signal.SIGTERM}
        blocked = hasattr(signal, "pthread_sigmask")
        if blocked:
            old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            for tmp, final in self.staged:
                os.replace(tmp, final)
            for folder in dict.fromkeys(final.parent for _, final in self.staged):
                _fsync_dir(folder)
            self.staged.clear()
        except OSError as exc:
            self.discard()
            raise OutputError(f"could not move the outputs into place: {exc}",
                              hint="check free disk space and permissions") from exc
        finally:
            if blocked:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)


_BATCH: contextvars.ContextVar[_Batch | None] = contextvars.ContextVar("kraken_output_batch", default=None)


@contextlib.contextmanager
def committed_together() -> Iterator[None]:
    """Commit every file written through :func:`atomic_path` in this block at its end, or none.

    On an exception (an error, Ctrl-C, SIGTERM) inside the block, the finished temporaries are
    removed and no target is touched: files from an earlier run stay byte for byte.
    Blocks nest: an inner block joins the outer one.
    """
    if _BATCH.get() is not None:
        yield
        return
    batch = _Batch()
    token = _BATCH.set(batch)
    try:
        yield
    except BaseException:
        batch.discard()
        raise
    finally:
        _BATCH.reset(token)
    batch.commit()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and rename it into place.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``path``
    is left untouched. Inside :func:`committed_together` the rename waits for the block's end.
    """
    final = Path(path)
    folder = final.parent if str(final.parent) else Path(".")
    _remove_stale_parts(folder, final.name)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.{_writer_tag()}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write to folder {folder}: {exc.strerror}",
                          hint="choose a writable output location with -o") from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, file_mode())
        batch = _BATCH.get()
        if batch is not None:
            batch.staged.append((tmp_path, final))
            return
        os.replace(tmp_path, final)
        _fsync_dir(folder)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise OutputError(f"could not write {final}: {exc.strerror or exc}",
                          hint="check free disk space and permissions") from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def scratch_dir(path: str | os.PathLike[str]) -> Path:
    """A new private folder beside ``path`` for the pieces of a large output (``.NAME.HOST-PID.*.part``).

    The caller removes it when done; one left by a killed process is removed like a stale ``.part``.
    """
    final = Path(path)
    folder = final.parent if str(final.parent) else Path(".")
    _remove_stale_parts(folder, final.name)
    try:
        return Path(tempfile.mkdtemp(prefix=f".{final.name}.{_writer_tag()}.", suffix=".part", dir=folder))
    except OSError as exc:
        raise OutputError(f"cannot write to folder {folder}: {exc.strerror}",
                          hint="choose a writable output location with -o") from exc


def refuse_overwriting(outputs: Mapping[str, str | None] | Iterable[tuple[str, str | None]],
                       inputs: Iterable[str | os.PathLike[str] | None]) -> None:
    """Raise OutputError when an output (option -> path) is one of the ``inputs`` or another output.

    Paths are compared after resolving links, so ``./a.mat`` and a symlink to it are the same file.
    """
    def key(p: str | os.PathLike[str]) -> str:
        return os.path.realpath(os.path.expanduser(p))

    given = {key(p): str(p) for p in inputs if p}
    seen: dict[str, str] = {}
    for option, path in (outputs.items() if isinstance(outputs, Mapping) else outputs):
        if not path:
            continue
        k = key(path)
        if k in given:
            raise OutputError(f"{option} {path} would overwrite the input {given[k]}",
                              hint=f"choose another file name for {option}")
        if k in seen:
            raise OutputError(f"{option} and {seen[k]} both name {path}", hint="give each output its own file")
        seen[k] = option


def reserve_space(path: str | os.PathLike[str], n_bytes: int, *, target: str | os.PathLike[str]) -> None:
    """Allocate ``n_bytes`` of disk for the open-for-writing file ``path`` now, or raise OutputError.

    Writers whose libraries cannot survive a full disk mid-write (HDF5 crashes, a memory map
    gets SIGBUS) reserve their space first, so a full disk is an ordinary error before any data is
    written. ``target`` is the final file named in the message. No-op where the platform cannot.
    """
    if n_bytes <= 0 or not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, n_bytes)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return  # the file system cannot reserve: write and see
        raise OutputError(f"could not write {target}: {exc.strerror} (it needs {n_bytes / 2**20:,.1f} MiB)",
                          hint="check free disk space and permissions") from exc
    finally:
        os.close(fd)


def check_free_space(needs: Mapping[str | os.PathLike[str], int]) -> None:
    """Raise OutputError when the file systems of the outputs (path -> bytes) lack the room for them."""
    by_device: dict[int, tuple[int, int, str]] = {}
    for path, n in needs.items():
        folder = Path(path).parent if str(Path(path).parent) else Path(".")
        try:
            st = os.statvfs(folder)
            dev = os.stat(folder).st_dev
        except (OSError, AttributeError):
            continue
        need, free, first = by_device.get(dev, (0, st.f_bavail * st.f_frsize, str(path)))
        by_device[dev] = (need + n, free, first)
    for need, free, first in by_device.values():
        if need > free:
            raise OutputError(f"could not write {first}: No space left on device (the outputs need about "
                              f"{need / 2**20:,.1f} MiB, {free / 2**20:,.1f} MiB are free)",
                              hint="check free disk space, or write to another file system with -o")


def check_writable_dir(path: str | os.PathLike[str]) -> None:
    """Raise OutputError unless the folder that will hold ``path`` exists (or can be made) and is writable."""
    folder = Path(path).parent if str(Path(path).parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {folder}: {exc.strerror}",
                          hint="choose a writable output location with -o") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {folder} is not writable",
                          hint="choose a writable output location with -o")
