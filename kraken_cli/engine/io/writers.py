"""Prediction files: the original's ``.mat`` layout (UPSTREAM 10.2), MATLAB v7.3 and ``.npz``.

Every writer takes rows chunk by chunk. ``mat`` (MATLAB v5) keeps them in memory and saves once
(its 2 GB variable limit is checked before any compute); ``mat73`` and ``npz`` write rows as
they come, so memory stays bounded. All files appear atomically.
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, get_args

import numpy as np
import numpy.typing as npt

from ..choices import FileFormat
from ..connectome import n_regions_from_edges, tri_to_square
from ..errors import OutputError, SpecError
from ._atomic import atomic_path, reserve_space, scratch_dir

MAT5_LIMIT_BYTES = 2**31 - 1
_IN = ("input", "i", "in", "s", "src", "source")
_OUT = ("output", "o", "out", "t", "trg", "targ", "target")
_IN_RE = re.compile(r"\{(" + "|".join(_IN) + r")\}", re.IGNORECASE)
_OUT_RE = re.compile(r"\{(" + "|".join(_OUT) + r")\}", re.IGNORECASE)


@dataclass
class OutputFile:
    """One file to write: its path and the (source, output) pairs it holds."""

    path: Path
    sources: list[str]
    outputs: list[str]

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [(s, o) for s in self.sources for o in self.outputs]


def expand_template(template: str, sources: Sequence[str], outputs: Sequence[str]) -> list[OutputFile]:
    """Files for ``-o TEMPLATE`` with ``{input}``/``{output}`` placeholders (UPSTREAM 10.1)."""
    has_in = bool(_IN_RE.search(template))
    has_out = bool(_OUT_RE.search(template))
    stray = re.findall(r"\{([^}]*)\}", _OUT_RE.sub("", _IN_RE.sub("", template)))
    if stray:
        raise SpecError(f"unknown placeholder {{{stray[0]}}} in output template {template!r}",
                        hint="use {input} and/or {output}")
    files: list[OutputFile] = []
    src_groups = [[s] for s in sources] if has_in else [list(sources)]
    out_groups = [[o] for o in outputs] if has_out else [list(outputs)]
    for ss in src_groups:
        for oo in out_groups:
            name = _IN_RE.sub(ss[0], template) if has_in else template
            name = _OUT_RE.sub(oo[0], name) if has_out else name
            files.append(OutputFile(Path(name), ss, oo))
    paths = [f.path for f in files]
    if len(set(paths)) != len(paths):
        raise SpecError(f"output template {template!r} gives several outputs the same file name",
                        hint="add {input} and/or {output} to the template")
    return files


@dataclass
class FileMeta:
    """Top-level values written next to the predictions."""

    subjects: list[str]
    checkpoint: str
    recordfile: str
    inputfiles: list[str]
    fusion_members: Mapping[str, Sequence[str]] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)


class PredictionWriter(Protocol):
    def write_rows(self, start: int, chunk: Mapping[tuple[str, str], npt.NDArray[np.float32]]) -> None: ...

    def close(self) -> Path: ...

    def abort(self) -> None: ...


def _square(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32] | None:
    if n_regions_from_edges(x.shape[1]) is None:
        return None
    return tri_to_square(x, diagonal=np.nan)


#: ``KRAKEN_MAT_COMPRESS=1`` compresses the predictions of v5 files, as the original does.
COMPRESS_ENV = "KRAKEN_MAT_COMPRESS"


def compress_predictions() -> bool:
    """Whether v5 prediction files are compressed: no, unless ``KRAKEN_MAT_COMPRESS=1``.

    Float32 predictions barely compress (zlib's fastest setting saves 12% of their size), and
    compressing them took more CPU than everything else ``kraken run`` does for 1,000 subjects
    x 5 fs86 flavors (about 2 s of 5 on 2 cores). The files are standard MATLAB v5 either way
    (uncompressed variables are what ``scipy.io.savemat`` and MATLAB's ``save -v6`` write).
    """
    return os.environ.get(COMPRESS_ENV, "0").strip().lower() in ("1", "true", "yes", "on")


class Mat5Writer:
    """The original's layout: MATLAB v5, long field names (scipy's serializer, see ``_mat5_write``).

    Uncompressed unless ``KRAKEN_MAT_COMPRESS=1`` (:func:`compress_predictions`).
    """

    def __init__(self, spec: OutputFile, meta: FileMeta, *, square: bool = False,
                 n_subjects: int | None = None) -> None:
        self.spec, self.meta, self.square = spec, meta, square
        self.n_subjects = n_subjects
        # Rows by pair: with n_subjects known, one array per pair filled chunk by chunk (the chunk
        # itself when it holds every subject), else the chunks, joined at close.
        self.full: dict[tuple[str, str], npt.NDArray[np.float32]] = {}
        self.parts: dict[tuple[str, str], list[npt.NDArray[np.float32]]] = {p: [] for p in spec.pairs}
        self.rows_written = 0

    def write_rows(self, start: int, chunk: Mapping[tuple[str, str], npt.NDArray[np.float32]]) -> None:
        n = self.n_subjects
        if self.spec.pairs:
            self.rows_written += int(np.shape(chunk[self.spec.pairs[0]])[0])
        for p in self.spec.pairs:
            x = np.asarray(chunk[p], dtype=np.float32)
            if n is None:
                self.parts[p].append(x)
            elif start == 0 and x.shape[0] == n:
                self.full[p] = x
            else:
                if p not in self.full:
                    self.full[p] = np.empty((n, x.shape[1]), dtype=np.float32)
                self.full[p][start:start + x.shape[0]] = x

    def close(self) -> Path:
        from ._mat5_write import savemat_fast

        if self.n_subjects is not None and self.rows_written != self.n_subjects:
            raise OutputError(f"{self.spec.path}: {self.rows_written} of {self.n_subjects} rows were written",
                              hint="this is a bug in the caller; the output was not saved")
        pa: dict[str, dict[str, Any]] = {}
        for s, o in self.spec.pairs:
            parts = self.parts.pop((s, o), [])  # chunks are freed as they are joined
            x = self.full.pop((s, o), None)
            if x is None:
                x = (parts[0] if len(parts) == 1 else np.concatenate(parts)) if parts else np.zeros((0, 0), np.float32)
            del parts
            # column-major, as MATLAB stores it: the serializer then passes the memory on uncopied
            # (one transposed copy at a time, the row-major original freed as it is replaced)
            if x.ndim == 2 and not (self.square and o != "encoded"):
                x = np.asfortranarray(x)
            value: Any = x
            if self.square and o != "encoded":
                sq = _square(x)
                if sq is not None:
                    cell = np.empty((1, sq.shape[0]), dtype=object)
                    for i in range(sq.shape[0]):
                        cell[0, i] = sq[i]
                    value = cell
            pa.setdefault(s, {})[o] = value
        pa = {s: dict(sorted(d.items())) for s, d in pa.items()}
        m = self.meta
        data: dict[str, Any] = {
            "checkpoint": m.checkpoint, "recordfile": m.recordfile, "inputfiles": list(m.inputfiles),
            "subjects": list(m.subjects), "inputtypes": list(self.spec.sources),
            "outputtypes": list(self.spec.outputs), "predicted_alltypes": pa,
        }
        if m.fusion_members:
            data["fusionmode_inputtypes"] = {k: list(v) for k, v in m.fusion_members.items()}
        data.update(m.extra)
        with atomic_path(self.spec.path) as tmp:
            with open(tmp, "wb") as fh:
                savemat_fast(fh, data, long_field_names=True, oned_as="row", compress=compress_predictions())
        return self.spec.path

    def abort(self) -> None:
        self.parts.clear()
        self.full.clear()


class NpzWriter:
    """``.npz`` with keys ``predicted_alltypes/<input>/<output>``, ``subjects``, ``inputtypes``, ``outputtypes``.

    Rows go to memory-mapped ``.npy`` files in a temporary folder next to the output, zipped at the end.
    """

    def __init__(self, spec: OutputFile, meta: FileMeta, n_subjects: int, widths: Mapping[str, int],
                 *, square: bool = False) -> None:
        self.spec, self.meta, self.square = spec, meta, square
        self.tmpdir = scratch_dir(spec.path)
        self.arrays: dict[tuple[str, str], np.memmap] = {}
        for i, (s, o) in enumerate(spec.pairs):
            w = widths[o]
            r = n_regions_from_edges(w) if (square and o != "encoded") else None
            shape = (n_subjects, r, r) if r else (n_subjects, w)
            part = self.tmpdir / f"{i}.npy"
            try:
                self.arrays[(s, o)] = np.lib.format.open_memmap(part, mode="w+", dtype=np.float32, shape=shape)
                # a memory map over a sparse file dies of SIGBUS when the disk fills: take the space now
                reserve_space(part, part.stat().st_size, target=spec.path)
            except BaseException as exc:
                self.abort()
                if isinstance(exc, OSError):
                    raise OutputError(f"could not write {spec.path}: {exc.strerror or exc}",
                                      hint="check free disk space and permissions") from exc
                raise

    def write_rows(self, start: int, chunk: Mapping[tuple[str, str], npt.NDArray[np.float32]]) -> None:
        for p, arr in self.arrays.items():
            x = np.asarray(chunk[p], dtype=np.float32)
            if arr.ndim == 3:
                x = tri_to_square(x, diagonal=np.nan)
            arr[start:start + x.shape[0]] = x

    def close(self) -> Path:
        try:
            with atomic_path(self.spec.path) as tmp:
                with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
                    for i, ((s, o), arr) in enumerate(self.arrays.items()):
                        arr.flush()
                        zf.write(self.tmpdir / f"{i}.npy", f"predicted_alltypes/{s}/{o}.npy")
                    small = {"subjects": np.asarray(self.meta.subjects, dtype=str),
                             "inputtypes": np.asarray(self.spec.sources, dtype=str),
                             "outputtypes": np.asarray(self.spec.outputs, dtype=str),
                             "checkpoint": np.asarray(self.meta.checkpoint),
                             "inputfiles": np.asarray(self.meta.inputfiles, dtype=str)}
                    for k, members in self.meta.fusion_members.items():
                        small[f"fusionmode_inputtypes/{k}"] = np.asarray(list(members), dtype=str)
                    for k, v in small.items():
                        with zf.open(f"{k}.npy", "w", force_zip64=True) as fh:
                            np.lib.format.write_array(fh, v, allow_pickle=False)
        finally:
            self.abort()
        return self.spec.path

    def abort(self) -> None:
        self.arrays.clear()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


class Mat73Writer:
    """MATLAB v7.3 (HDF5) predictions, written chunk by chunk."""

    def __init__(self, spec: OutputFile, meta: FileMeta, n_subjects: int, widths: Mapping[str, int],
                 *, square: bool = False) -> None:
        from ._mat73_write import Mat73Writer as H5Writer

        self.spec, self.meta = spec, meta
        reserve = estimate_file_bytes("mat73", n_subjects, widths, spec, meta, square=square)
        self.h5 = H5Writer(spec.path, reserve_bytes=reserve)
        self.h5.__enter__()
        self.square: dict[tuple[str, str], int] = {}
        for s, o in spec.pairs:
            w = widths[o]
            r = n_regions_from_edges(w) if (square and o != "encoded") else None
            key = f"predicted_alltypes/{s}/{o}"
            if r:  # [S x R x R] as MATLAB sees it (HDF5 (R, R, S)), as v5's R x R matrices
                self.square[(s, o)] = r
                self.h5.create_rows(key, n_subjects, (r, r), np.float32)
            else:
                self.h5.create_rows(key, n_subjects, w, np.float32)

    def _write_meta(self) -> None:
        # Written last: HDF5 keeps some memory for every object it creates (one per subject id in
        # the ``subjects`` cell), which should not add to the memory of the chunks.
        # Lists of text are char matrices (rows padded with spaces), as in the v5 files: GNU Octave
        # cannot load cell arrays (object references) from HDF5.
        from ._mat73_write import CharMatrix

        meta, spec = self.meta, self.spec
        self.h5.write("subjects", CharMatrix(meta.subjects))
        self.h5.write("inputtypes", CharMatrix(spec.sources))
        self.h5.write("outputtypes", CharMatrix(spec.outputs))
        self.h5.write("checkpoint", meta.checkpoint)
        self.h5.write("recordfile", meta.recordfile)
        self.h5.write("inputfiles", CharMatrix(meta.inputfiles))
        for k, members in meta.fusion_members.items():
            self.h5.write(f"fusionmode_inputtypes/{k}", CharMatrix(members))

    def write_rows(self, start: int, chunk: Mapping[tuple[str, str], npt.NDArray[np.float32]]) -> None:
        for (s, o) in self.spec.pairs:
            x = np.asarray(chunk[(s, o)], dtype=np.float32)
            if (s, o) in self.square:
                x = tri_to_square(x, diagonal=np.nan)
            self.h5.write_rows(f"predicted_alltypes/{s}/{o}", start, x)

    def close(self) -> Path:
        self._write_meta()
        self.h5.__exit__(None, None, None)
        return self.spec.path

    def abort(self) -> None:
        try:
            self.h5.__exit__(OutputError, OutputError("aborted"), None)
        except OutputError:
            pass


def estimate_mat5_bytes(n_subjects: int, widths: Mapping[str, int], spec: OutputFile) -> int:
    """Bytes of the ``predicted_alltypes`` variable of one v5 file (float32)."""
    return sum(n_subjects * widths[o] * 4 for _, o in spec.pairs)


def estimate_file_bytes(fmt: str, n_subjects: int, widths: Mapping[str, int], spec: OutputFile,
                        meta: FileMeta | None = None, *, square: bool = False) -> int:
    """Disk a prediction file takes at most while written (npz: its scratch arrays and the zip).

    The rows (float32; R x R matrices with ``square``), the text lists beside them, and a margin
    for the container's own bookkeeping. Compression (v5, npz) can only make files smaller.
    """
    rows = 0
    for _, o in spec.pairs:
        r = n_regions_from_edges(widths[o]) if (square and o != "encoded") else None
        rows += n_subjects * (r * r if r else widths[o]) * 4
    text = 0 if meta is None else 2 * sum(len(t) for t in [*meta.subjects, *meta.inputfiles]) + 64 * n_subjects
    total = rows + text + (64 << 10) + rows // 50 + 4096 * len(spec.pairs)
    return 2 * total if fmt == "npz" else total


#: Output formats each file extension stands for (lower case); the first one is the default.
EXTENSION_FORMATS: dict[str, tuple[str, ...]] = {".npz": ("npz",), ".mat": ("mat", "mat73"),
                                                 ".h5": ("mat73",), ".hdf5": ("mat73",)}
FORMATS: tuple[str, ...] = get_args(FileFormat)  # bids: a derivatives folder (_bids_out)


def resolve_format(fmt: str | None, output: str | None) -> str:
    """The output format: ``fmt`` when given, else the one ``output``'s extension names, else ``mat``.

    Raises
    ------
    SpecError
        For an unknown format, or an extension that contradicts ``fmt`` (a usage error).

    >>> resolve_format(None, "out/{input}.npz"), resolve_format(None, "x.mat"), resolve_format("mat73", "x.mat")
    ('npz', 'mat', 'mat73')
    >>> resolve_format(None, "preds"), resolve_format(None, None)
    ('mat', 'mat')
    """
    if fmt is not None and fmt not in FORMATS:
        raise SpecError(f"unknown output format {fmt!r}", hint="use mat, mat73, npz or bids")
    suffix = Path(output).suffix.lower() if output else ""
    allowed = EXTENSION_FORMATS.get(suffix)
    if fmt is None:
        return allowed[0] if allowed else "mat"
    if allowed is not None and fmt not in allowed:
        want = {"npz": "*.npz", "mat": "*.mat", "mat73": "*.mat (or .h5)", "bids": "as a folder"}[fmt]
        raise SpecError(f"--format {fmt} does not match the output file extension {suffix!r} of -o {output}",
                        hint=f"name the output {want}, or drop --format to write {allowed[0]}")
    return fmt


def open_writer(fmt: str, spec: OutputFile, meta: FileMeta, n_subjects: int, widths: Mapping[str, int],
                *, square: bool = False) -> PredictionWriter:
    """A writer for ``fmt`` in ``mat``, ``mat73``, ``npz``."""
    if fmt == "mat":
        return Mat5Writer(spec, meta, square=square, n_subjects=n_subjects)
    if fmt == "npz":
        return NpzWriter(spec, meta, n_subjects, widths, square=square)
    if fmt == "mat73":
        return Mat73Writer(spec, meta, n_subjects, widths, square=square)
    raise SpecError(f"unknown output format {fmt!r}", hint="use mat, mat73 or npz")


def check_outputs(files: Sequence[OutputFile], fmt: str, n_subjects: int, widths: Mapping[str, int],
                  inputs: Sequence[str], *, square: bool = False) -> None:
    """Before any compute: no input overwritten, writable folders, v5 limits, room on the disk."""
    from ._atomic import check_free_space, check_writable_dir

    resolved_inputs = {os.path.realpath(p) for p in inputs}
    for f in files:
        if os.path.realpath(f.path) in resolved_inputs:
            raise OutputError(f"output {f.path} would overwrite an input file",
                              hint="choose another -o template")
        check_writable_dir(f.path)
        if fmt == "mat" and estimate_mat5_bytes(n_subjects, widths, f) > MAT5_LIMIT_BYTES:
            gb = estimate_mat5_bytes(n_subjects, widths, f) / 2**30
            raise OutputError(f"{f.path} would hold {gb:.1f} GB of predictions, above MATLAB v5's 2 GB limit",
                              hint="use --format mat73 (or npz), or split the outputs with {input}/{output} in -o")
    held = sum(estimate_mat5_bytes(n_subjects, widths, f) for f in files)
    if fmt == "mat" and len(files) > 1 and held > MAT5_LIMIT_BYTES:
        # v5 files are serialized whole, so each one's rows stay in memory until the end of the run
        raise OutputError(f"the {len(files)} MATLAB v5 files of -o would hold {held / 2**30:.1f} GB of predictions "
                          "in memory until they are written (more than 2 GB together)",
                          hint="use --format mat73 (or npz): they write rows as they come, in bounded memory")
    check_free_space({f.path: estimate_file_bytes(fmt, n_subjects, widths, f, square=square) for f in files})
