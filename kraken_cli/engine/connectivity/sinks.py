"""Where the written matrices go, chunk by chunk, so that memory stays bounded for any cohort size.

* ``mat`` (MATLAB v5, the original's layout: ``C`` an N x 1 cell): v5 cannot be written in parts, so the
  matrices are kept in memory (at most v5's 2 GB, checked before any compute) and saved at the end;
* ``npz``: ``C.npy`` (``[N x R x R]``) is streamed into the archive as chunks arrive;
* ``mat73``: ``C`` is an ``[N x R x R]`` array written by rows (as ``kraken run --square --format mat73``).

Every sink writes to a temporary file renamed on :meth:`close`; :meth:`abort` leaves nothing behind.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..errors import OutputError

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Meta:
    """The small variables written beside ``C``."""

    subjects: list[str]
    conntype: str
    lam: float | None
    lam_raw: float | None

    def variables(self) -> dict[str, Any]:
        out: dict[str, Any] = {"conntype": self.conntype}
        if self.lam is not None:
            out["lambda"] = float(self.lam)
            out["lambda_raw"] = float(self.lam_raw if self.lam_raw is not None else self.lam)
        return out


class Sink(Protocol):
    def write(self, start: int, block: F64) -> None: ...

    def close(self, meta: Meta) -> Path: ...

    def abort(self) -> None: ...


class MemorySink:
    """MATLAB v5: matrices kept in memory, saved by :func:`~.files.write_result` at the end."""

    def __init__(self, file: str, n: int, r: int) -> None:
        self.file = file
        self.mats: F64 | None = np.empty((n, r, r))

    def write(self, start: int, block: F64) -> None:
        assert self.mats is not None
        self.mats[start:start + block.shape[0]] = block

    def close(self, meta: Meta) -> Path:
        from .files import ResultData, write_result

        assert self.mats is not None
        path = write_result(self.file, "mat", ResultData(self.mats, meta.subjects, meta.conntype, meta.lam,
                                                         meta.lam_raw))
        self.mats = None
        return path

    def abort(self) -> None:
        self.mats = None


class _FileSink:
    """A sink writing a temporary file: :meth:`close` finishes it (or aborts on any error) and
    commits it under its name."""

    file: str

    def close(self, meta: Meta) -> Path:
        try:
            self._finish(meta)
        except BaseException:
            self.abort()
            raise
        self._commit()
        return Path(self.file)

    def _finish(self, meta: Meta) -> None:
        raise NotImplementedError

    def _commit(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class NpzSink(_FileSink):
    """``.npz`` with ``C`` streamed in as rows arrive (in order), then ``subjects``, ``conntype``, ``lambda``..."""

    def __init__(self, file: str, n: int, r: int) -> None:
        from ..io._atomic import atomic_path

        self.file, self.shape, self.next = file, (n, r, r), 0
        self._ctx = atomic_path(file)
        tmp = self._ctx.__enter__()
        self._zip = zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self._member = self._zip.open("C.npy", "w", force_zip64=True)
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f8")), "fortran_order": False, "shape": self.shape}
        np.lib.format.write_array_header_2_0(self._member, header)

    def write(self, start: int, block: F64) -> None:
        if start != self.next:
            raise OutputError(f"{self.file}: rows must arrive in order", hint="this is a bug in the caller")
        self._member.write(np.ascontiguousarray(block, dtype="<f8").tobytes())
        self.next += block.shape[0]

    def _finish(self, meta: Meta) -> None:
        if self.next != self.shape[0]:
            raise OutputError(f"{self.file}: {self.next} of {self.shape[0]} subjects were written",
                              hint="this is a bug in the caller; the output was not saved")
        self._member.close()
        small = {"subjects": np.asarray(meta.subjects, dtype=str), **{k: np.asarray(v) for k, v in
                                                                      meta.variables().items()}}
        for k, v in small.items():
            with self._zip.open(f"{k}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, v, allow_pickle=False)
        self._zip.close()

    def _commit(self) -> None:
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        try:
            self._member.close()
            self._zip.close()
        except (OSError, ValueError, zipfile.BadZipFile):
            pass
        err = OutputError("aborted")
        self._ctx.__exit__(OutputError, err, None)


class Mat73Sink(_FileSink):
    """MATLAB v7.3 with ``C`` an ``[N x R x R]`` array written by rows."""

    def __init__(self, file: str, n: int, r: int) -> None:
        from ..io._mat73_write import Mat73Writer

        self.file = file
        self.h5 = Mat73Writer(file)
        self.h5.__enter__()
        self.h5.create_rows("C", n, (r, r), np.float64)

    def write(self, start: int, block: F64) -> None:
        self.h5.write_rows("C", start, block)

    def _finish(self, meta: Meta) -> None:
        self.h5.write("subjects", list(meta.subjects))
        for k, v in meta.variables().items():
            self.h5.write(k, v)

    def _commit(self) -> None:
        self.h5.__exit__(None, None, None)

    def abort(self) -> None:
        err = OutputError("aborted")
        try:
            self.h5.__exit__(OutputError, err, None)
        except OutputError:
            pass


def open_sink(file: str, fmt: str, n: int, r: int) -> Sink:
    """The sink for ``fmt`` (``mat``, ``mat73`` or ``npz``)."""
    if fmt == "npz":
        return NpzSink(file, n, r)
    if fmt == "mat73":
        return Mat73Sink(file, n, r)
    return MemorySink(file, n, r)
