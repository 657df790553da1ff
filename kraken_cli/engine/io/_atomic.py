"""Atomic file writes: temp file in the same folder, fsync, rename (no torn outputs)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from ..errors import OutputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and rename it into place.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``path``
    is left untouched.
    """
    final = Path(path)
    folder = final.parent if str(final.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write to folder {folder}: {exc.strerror}",
                          hint="choose a writable output location with -o") from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, final)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise OutputError(f"could not write {final}: {exc.strerror or exc}",
                          hint="check free disk space and permissions") from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


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
