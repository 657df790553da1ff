"""CSV / TSV / whitespace text: one subject's R x R matrix, or rows of ``subject_id, e1, ..., eE``.

Rules (DESIGN 3.1): the delimiter comes from the extension (tab for ``.tsv``, comma for ``.csv``)
with whitespace as the fallback; a square numeric block with no header is one subject's matrix;
otherwise each row is a subject id followed by its upper-triangle edges, with an optional header
row (recognised when its value fields are not numbers). A header row of node names over rows that
start with the same names is one subject's labelled matrix (XCP-D relmat, pandas; see
:mod:`._pipelines`). Lines starting with ``#``, ``!`` or ``%`` are comments.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..connectome import EdgeSource, clean_subject_ids
from ..errors import InputDataError
from ..flavors import Flavor
from ._layout import Layout, NumpyArray
from ._mat import file_stem, flavor_from_name
from ._paths import is_number
from ._source import PlannedSource, finalize

COMMENTS = ("#", "!", "%")


@dataclass(frozen=True)
class TextTable:
    """What a text file holds: one matrix (``ids`` None) or rows with ids."""

    values: npt.NDArray[np.float64]
    ids: list[str] | None
    square: bool
    labels: list[str] | None = None


def _unquote(text: str) -> str:
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'":
        return t[1:-1].strip()
    return t


def _delimiter(suffix: str, first_line: str) -> str | None:
    wanted = {".tsv": "\t", ".csv": ","}.get(suffix.lower())
    if wanted is None:
        wanted = "," if "," in first_line else ("\t" if "\t" in first_line else None)
    if wanted is not None and wanted not in first_line:
        return None
    return wanted


def _split(line: str, delim: str | None) -> list[str]:
    return [_unquote(f) for f in (line.split(delim) if delim is not None else line.split())]


def parse_text(text: str, *, suffix: str, where: str, single: bool = False) -> TextTable:
    """Parse the text of a CSV/TSV/whitespace file.

    With ``single`` (a per-subject file), one numeric line without a header is one edge vector
    (no id column).

    Raises
    ------
    InputDataError
        For empty files, ragged rows and non-numeric values.
    """
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(COMMENTS)]
    if not lines:
        raise InputDataError(f"{where}: the file is empty", hint="the file holds no connectome values")
    delim = _delimiter(suffix, lines[0])
    first = _split(lines[0], delim)
    if len(lines) > 2 and not (is_number(first[0]) and all(is_number(f) for f in first)):
        from ._pipelines import labelled_square

        found = labelled_square([_split(ln, delim) for ln in lines], where=where)
        if found is not None:
            return TextTable(np.asarray(found[0], dtype=np.float64), None, True, found[1])
    header = len(first) > 1 and not all(is_number(f) for f in first[1:])
    data_lines = lines[1:] if header else lines
    if not data_lines:
        raise InputDataError(f"{where}: only a header row, no data", hint="the file holds no connectome values")
    n_cols = len(first)
    square = not header and is_number(first[0]) and len(data_lines) == n_cols
    if single and not header and len(data_lines) == 1 and is_number(first[0]):
        try:
            row = np.asarray([float(f) for f in first], dtype=np.float64)[None, :]
        except ValueError as exc:
            raise InputDataError(f"{where}: cannot read the values ({exc})", hint="give numbers only") from exc
        return TextTable(row, None, False)
    body = "\n".join(data_lines)
    try:
        if square:
            values = np.loadtxt(io.StringIO(body), delimiter=delim, dtype=np.float64, ndmin=2, quotechar='"')
        else:
            values = np.loadtxt(io.StringIO(body), delimiter=delim, dtype=np.float64, ndmin=2,
                                usecols=range(1, n_cols), quotechar='"')
    except (ValueError, IndexError) as exc:
        raise InputDataError(f"{where}: cannot read the table ({exc})",
                             hint="every row needs the same number of numeric values "
                                  "(rows are 'subject_id, e1, ..., eE'; a square block is one matrix)") from exc
    if square:
        return TextTable(values, None, True)
    if values.shape[1] == 0:
        raise InputDataError(f"{where}: rows hold a subject id and no values",
                             hint="rows are 'subject_id, e1, ..., eE'")
    ids = [_split(ln, delim)[0] for ln in data_lines]
    return TextTable(values, clean_subject_ids(ids), False)


def read_text_bytes(data: bytes, *, suffix: str, where: str, single: bool = False) -> TextTable:
    """Parse text given as bytes (e.g. a zip member)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputDataError(f"{where}: not a text file ({exc.reason})",
                             hint="give a CSV/TSV text table, or a .mat/.npy file") from exc
    return parse_text(text, suffix=suffix, where=where, single=single)


def read_text_table(path: Path, *, where: str) -> TextTable:
    """Parse a CSV/TSV/text file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputDataError(f"{where}: cannot read ({exc.strerror})", hint="check the path and permissions") from exc
    return read_text_bytes(data, suffix=path.suffix, where=where)


def read_text_file(path: Path, *, spec_flavor: Flavor | None) -> list[EdgeSource]:
    """One source from a CSV/TSV file (a single matrix, or id + edge rows)."""
    from ._pipelines import matrices_source

    flavor = spec_flavor or flavor_from_name(file_stem(str(path)), field=None, file=str(path))
    where = f"{path} ({flavor.name})"
    table = read_text_table(path, where=where)
    if not table.square:  # explicit rows: one subject per line, whatever the shape
        layout = Layout("rows", 0, table.values.shape[0], table.values.shape[1])
        return [finalize(PlannedSource(flavor, str(path), table.ids, NumpyArray(table.values), layout),
                         in_memory=True)]
    try:
        return [matrices_source(table.values[None], flavor=flavor, file=str(path), subjects=None,
                                labels=table.labels)]
    except InputDataError as exc:
        if table.labels is not None:
            raise
        raise InputDataError(exc.message, hint=(exc.hint or "") + "; if each row is 'subject_id, e1, ..., eE', "
                             "add a header row so the square block is not read as one matrix") from None
