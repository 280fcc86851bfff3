"""Reading an export as Arrow text and parsing its cells, vectorized, with pandas' meaning.

Why it is built this way:

* A multi-million-row export read by pandas as text becomes tens of millions of Python
  strings (several GB) and every later step loops over them. Arrow keeps the same text in a
  few contiguous buffers and its kernels (trim, regex, cast) run in C++ over them.
* The contract's meaning of a cell is pandas' (``read_csv(dtype=str)``, ``str.strip``,
  ``to_datetime(format=...)``, ``to_numeric``), including its odd corners: a month written
  with one digit is a date, a year outside 1677-2262 is no date. One corner is the
  contract's, not pandas': a leap second (``HH:MM:60``) is the last instant of its minute,
  on its own day (pandas rolls ``23:59:60`` into the next day; the contract's day is the
  calendar date written), and a second 61, which no clock shows, is no time. So each parser
  has a fast path for the shapes real exports use (``2025-03-04 10:00:00``, ``2025-03-04``,
  ``03/04/2025``; ``1234.5``), where the result is computed exactly, and hands every other
  cell to pandas' own parser (`pandas_timestamps`). Most files never leave the fast path; a
  file full of odd cells is as slow as pandas, never different from it.
* The same holds for whole files: the streaming Arrow reader takes well-formed CSV; a file it
  refuses (a whitespace-only line, invalid UTF-8, a header after blank lines) is read again by
  pandas in chunks, which skips or explains exactly as before.
* A row whose field count is not the header's (an unquoted comma in a name, a cell missing, a
  line cut off) is read by neither as it stands: no reader can tell which of its cells is
  extra or missing, and reading it anyway shifts its cells into the wrong columns (a phone in
  ``lead_status``; pandas even takes the first column for an index after a long first row).
  It keeps its place as a row whose cells are all blank, and the column
  ``FIELD_COUNT_COLUMN`` says what is wrong with it (null on every other row; the column
  exists only in a file that has such a row), so validation quarantines it by its line and
  ``rows read = accepted + quarantined + duplicates`` still holds. Arrow reports such rows to
  ``invalid_row_handler`` (a Python call per misaligned row only) with their row number, and
  they are put back in place between the good rows' slices; pandas' path finds them with
  Python's ``csv`` reader first.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import io
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from campaign_pipeline.locations import Location

# Python's str.strip() removes these ASCII characters (str.isspace); Arrow's own ASCII
# whitespace set lacks the four separators 0x1c-0x1f, so the set is given explicitly.
_PY_ASCII_WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
_BLOCK_SIZE = 4 << 20  # bytes per streamed block: memory stays at a few blocks
_PANDAS_CHUNK_ROWS = 500_000
_TIMESTAMP_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%m/%d/%Y")
# The fast date path covers whole years well inside datetime64[ns] (1677-09-21..2262-04-11);
# the edge years go to pandas, which knows the exact bounds.
_FAST_YEARS = (1678, 2261)
_FAST_NUMBER = r"^[0-9]+(\.[0-9]+)?$"
# Up to 15 digits a decimal string is an exact integer over an exact power of ten, so its
# double is one correctly rounded division in pandas' parser and in Arrow's alike.
_FAST_NUMBER_MAX_LENGTH = 15
# A comma is read as a thousands separator only where it groups digits by three before any
# decimal point ("1,234.50"). Anywhere else it is no number: "12,50" is a decimal comma, and
# dropping it would read the spend a hundred times too large, without a word.
_GROUPED_NUMBER = r"^[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?$"
# A leap second: pandas reads second 60 (and 61) as the next minute's first second(s), which
# for 23:59:60 is the next day. It is kept on its minute as that minute's last instant.
_LEAP_SECOND = re.compile(
    r"^(?P<minute>[0-9]{4}-[0-9]{1,2}-[0-9]{1,2} +[0-9]{1,2}:[0-9]{1,2}):6(?P<s>[01])$"
)
_LAST_NANOSECOND = np.timedelta64(999_999_999, "ns")

FIELD_COUNT_COLUMN = "_field_count_mismatch"
"""The column of a raw table (present only when some row is misaligned) saying, on such a row,
``9 fields where the header has 8``; null on every other row. A header may not use the name."""


class RawFileError(Exception):
    """A raw file cannot be used at all (missing, unreadable, or a required column absent).

    ``str()`` is one line naming the file (and the column), fit for a CLI error message.
    """

    def __init__(self, path: Path | str | Location, message: str, column: str | None = None):
        self.path = Location(path)
        self.column = column
        self.message = message
        where = f"{self.path}" + (f", column '{column}'" if column else "")
        super().__init__(f"{where}: {message}")


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_FOREIGN_SEPARATORS = (";", "\t", "|")


def _not_utf8(path: Location) -> RawFileError:
    """Where the first byte that is not UTF-8 is, as a line and a byte offset of the file.

    A decoder's own position is relative to whatever buffer it was handed (pandas reads a
    file in blocks), so the file is streamed again, a block at a time, to find it. A file that
    begins with a UTF-16 byte-order mark is named as such: spreadsheet programs write exports
    that way, and the fix is to save them as UTF-8.
    """
    block_size = 1 << 20
    with path.open_stream() as stream:
        data = stream.read(block_size)
        if data.startswith(_UTF16_BOMS):
            return RawFileError(
                path, "UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8"
            )
        offset, line = 0, 1  # of data[0] in the file
        while data:
            more = stream.read(block_size)
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                # a character cut at the block's end is completed by the next block
                if not (more and exc.reason == "unexpected end of data"):
                    line += data.count(b"\n", 0, exc.start)
                    return RawFileError(
                        path,
                        f"not UTF-8 text ({exc.reason} on line {line:,}, at byte offset "
                        f"{offset + exc.start:,}); save it as UTF-8",
                    )
                line += data.count(b"\n", 0, exc.start)
                offset += exc.start
                data = data[exc.start :] + more
                continue
            line += data.count(b"\n")
            offset += len(data)
            data = more
    return RawFileError(path, "not UTF-8 text")


class _NotPlainCsv(Exception):
    """The Arrow reader refused the file; pandas reads it instead."""


def _misaligned_rows(path: Location) -> list[tuple[int, int, int]]:
    """(position among the data rows, field count, the header's field count) of every row whose
    cells do not line up with the header, for pandas' path (see the module's docstring).

    Blank and whitespace-only lines are skipped, as pandas skips them, so a position counts
    the rows pandas reads.
    """
    found = []
    with path.open_stream() as raw, io.TextIOWrapper(raw, "utf-8-sig", newline="") as text:
        expected, position = None, -1
        for fields in csv.reader(text):
            if len(fields) <= 1 and not "".join(fields).strip(_PY_ASCII_WHITESPACE):
                continue
            if expected is None:
                expected = len(fields)
                continue
            position += 1
            if len(fields) != expected:
                found.append((position, len(fields), expected))
    return found


def field_count_text(fields: int, expected: int) -> str:
    """What a misaligned row's ``FIELD_COUNT_COLUMN`` cell says."""
    return f"{fields} fields where the header has {expected}"


def _blank_rows(schema: pa.Schema, count: int) -> pa.RecordBatch:
    blank = pa.array([""], pa.string()).take(np.zeros(count, dtype=np.int32))
    return pa.RecordBatch.from_arrays([blank] * len(schema), schema=schema)


def _with_blank_rows(batch: pa.RecordBatch, blank: np.ndarray) -> pa.RecordBatch:
    """``batch`` with blank rows at the positions ``blank`` of the result (one take per column
    of a batch that has such rows; every other batch is passed on as it is)."""
    is_blank = np.zeros(batch.num_rows + len(blank), dtype=bool)
    is_blank[blank] = True
    source = np.cumsum(~is_blank) - 1
    source[is_blank] = batch.num_rows  # the blank cell appended to each column
    index = pa.array(source.astype(np.int64))
    empty = pa.array([""], pa.string())
    columns = [pa.concat_arrays([column, empty]).take(index) for column in batch.columns]
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def _in_place(
    batches: Iterator[pa.RecordBatch],
    schema: pa.Schema,
    pending: list[tuple[int, int, int]],
    misaligned: list[tuple[int, int, int]],
) -> Iterator[pa.RecordBatch]:
    """The good rows' batches with a blank row at the position of each misaligned row.

    ``pending`` is filled while ``batches`` is read, in the order of the file: Arrow reports a
    block's misaligned rows while it parses the block, before it yields the block's rows. A
    batch of ``n`` good rows starting at ``emitted`` covers the positions up to
    ``emitted + n + k``, ``k`` being the misaligned rows among them; those rows are put in
    place (``_with_blank_rows``) and moved to ``misaligned``. The loop is over the misaligned
    rows only."""
    emitted, used = 0, 0
    for batch in batches:
        end = used
        while end < len(pending) and pending[end][0] < emitted + batch.num_rows + end - used:
            end += 1
        if end > used:
            blank = np.array([row[0] for row in pending[used:end]], dtype=np.int64) - emitted
            batch = _with_blank_rows(batch, blank)
            misaligned.extend(pending[used:end])
            used = end
        emitted += batch.num_rows
        yield batch
    rest = pending[used:]
    if rest:  # misaligned rows after the last good one
        if [row[0] for row in rest] != list(range(emitted, emitted + len(rest))):
            raise AssertionError(f"misaligned rows out of place: {rest[:3]}")
        misaligned.extend(rest)
        yield _blank_rows(schema, len(rest))


# ---------------------------------------------------------------------------------------
# Header
# ---------------------------------------------------------------------------------------


def normalise_header(name: str) -> str:
    return name.replace("\ufeff", "").strip().lower()


def _normalised_names(path: Location, names: list[str]) -> list[str]:
    # pandas names an empty header cell "Unnamed: <position>"
    out = [normalise_header(n) if n.strip() else f"unnamed: {i}" for i, n in enumerate(names)]
    seen: set[str] = set()
    for name in out:
        if name == FIELD_COUNT_COLUMN:
            raise RawFileError(path, "a column name reserved for the pipeline's own use", name)
        if name in seen:
            raise RawFileError(path, "column appears twice in the header", column=name)
        seen.add(name)
    return out


def foreign_separator(header: list[str]) -> str | None:
    """The separator a header of one cell holding ``;``, a tab or ``|`` shows the file uses
    instead of commas (a spreadsheet's export in another locale); None otherwise."""
    if len(header) != 1:
        return None
    return next((sep for sep in _FOREIGN_SEPARATORS if sep in str(header[0])), None)


def check_columns(path: Location, columns: list[str], required: tuple[str, ...]) -> None:
    for column in required:
        if column not in columns:
            message = "required column missing"
            if used := foreign_separator(columns):
                message += (
                    f" (the header is one cell; the file looks {used!r}-separated, and"
                    " the exports must be comma-separated)"
                )
            near = [c for c in columns if _squeezed(c) == _squeezed(column)]
            if near:  # "Campaign ID", "campaign-id": the contract's name, written otherwise
                message += f" (the header has '{near[0]}': name it {column})"
            raise RawFileError(path, message, column=column)


def _squeezed(name: str) -> str:
    """A column name without separators, to recognise one written another way."""
    return "".join(ch for ch in name if ch.isalnum())


def read_header(path: Path | str | Location) -> list[str]:
    """The header's cells as written (BOM removed); ``RawFileError`` when there is none. On an
    object store only the first bytes are fetched."""
    path = Location(path)
    if not path.is_file():
        raise RawFileError(path, "file not found")
    try:
        with (
            path.open_stream() as stream,
            io.TextIOWrapper(stream, encoding="utf-8-sig", newline="") as handle,
        ):
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path) from exc
    except csv.Error as exc:
        raise RawFileError(path, f"not a readable CSV: {exc}") from exc
    except OSError as exc:
        raise RawFileError(path, f"cannot be read: {exc.strerror or exc}") from exc
    if not header:
        raise RawFileError(path, "file is empty (no header row)")
    return header


def checked_header(path: Path | str | Location, required: tuple[str, ...]) -> list[str]:
    """The normalised header (BOM, stray spaces, case); one-line ``RawFileError`` for a
    missing file, no header, a column twice, or a required column absent."""
    path = Location(path)
    names = _normalised_names(path, read_header(path))
    check_columns(path, names, required)
    return names


# ---------------------------------------------------------------------------------------
# Rows: every cell as text, streamed in record batches
# ---------------------------------------------------------------------------------------


def _source(path: Location):
    """What the CSV readers open: a local file by its path (read natively), an object by a
    sequential stream of bounded requests."""
    return str(path.local_path) if path.is_local else path.open_stream()


@contextmanager
def _undecodable_rows_unprinted(handler):
    """Arrow decodes a misaligned row's text for ``handler`` before calling it; a row that is not
    UTF-8 fails there, out of the handler's reach, and Python would print the traceback as an
    unraisable exception. The read then fails, and pandas' path names the first byte that is
    not UTF-8 in one line: that traceback alone is kept from being printed."""
    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        if not (unraisable.object is handler and unraisable.exc_type is UnicodeDecodeError):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def _quietly(reader, handler) -> Iterator[pa.RecordBatch]:
    while True:
        with _undecodable_rows_unprinted(handler):
            batch = next(reader, None)
        if batch is None:
            return
        yield batch


def _arrow_batches(
    path: Location, required: tuple[str, ...], misaligned: list[tuple[int, int, int]]
) -> Iterator[pa.RecordBatch]:
    """Arrow's streaming reader, one block at a time, a misaligned row put in place as a blank
    row and listed in ``misaligned`` (``_in_place``). Raises ``_NotPlainCsv`` for anything it
    does not read exactly as pandas would (it then stops at the first such row)."""
    with path.open_stream() as handle:
        if handle.read(1) in (b"", b"\n", b"\r", b" ", b"\t"):
            raise _NotPlainCsv  # pandas skips blank lines before the header
    try:
        raw_names = read_header(path)
    except RawFileError as exc:
        raise _NotPlainCsv from exc
    names = _normalised_names(path, raw_names)
    check_columns(path, names, required)
    schema = pa.schema([(n, pa.string()) for n in names])
    positional = [f"c{i}" for i in range(len(raw_names))]
    pending: list[tuple[int, int, int]] = []

    def misaligned_row(row) -> str:
        # a whitespace-only line is a row of one field to Arrow, a blank line to pandas
        if row.number is None or not row.text.strip(_PY_ASCII_WHITESPACE):
            return "error"
        # row.number counts the header as 1 and skips blank lines: the data row's position + 2
        pending.append((row.number - 2, row.actual_columns, row.expected_columns))
        return "skip"

    source = _source(path)
    try:
        with _undecodable_rows_unprinted(misaligned_row):
            reader = pcsv.open_csv(
                source,
                read_options=pcsv.ReadOptions(
                    column_names=positional,
                    skip_rows=1,
                    block_size=_BLOCK_SIZE,
                    use_threads=False,
                ),
                parse_options=pcsv.ParseOptions(
                    newlines_in_values=True, invalid_row_handler=misaligned_row
                ),
                convert_options=pcsv.ConvertOptions(
                    column_types={c: pa.string() for c in positional},
                    strings_can_be_null=False,
                ),
            )
        yield schema  # the header was good: the consumer may start
        batches = (
            pa.RecordBatch.from_arrays(b.columns, schema=schema)
            for b in _quietly(reader, misaligned_row)
        )
        yield from _in_place(batches, schema, pending, misaligned)
    except pa.ArrowInvalid as exc:
        raise _NotPlainCsv from exc
    finally:
        if not isinstance(source, str):
            source.close()


def _pandas_batches(
    path: Location, required: tuple[str, ...], misaligned: list[tuple[int, int, int]]
) -> Iterator[pa.RecordBatch]:
    """pandas' text reading, in chunks: blank and whitespace-only lines skipped, and its own
    one-line error for what it cannot read. Misaligned rows are found first
    (``_misaligned_rows``) and blanked in place (pandas pads a short row and cuts a long one)."""
    source = _source(path)
    try:
        found = _misaligned_rows(path)
        chunks = pd.read_csv(
            source,
            dtype=str,
            index_col=False,
            keep_default_na=False,
            na_values=[],
            encoding="utf-8-sig",
            skip_blank_lines=True,
            on_bad_lines="error",
            chunksize=_PANDAS_CHUNK_ROWS,
        )
        schema, offset = None, 0
        positions = np.array([row[0] for row in found], dtype=np.int64)
        for chunk in _quiet(chunks):
            if schema is None:
                names = _normalised_names(path, [str(c) for c in chunk.columns])
                check_columns(path, names, required)
                schema = pa.schema([(n, pa.string()) for n in names])
                yield schema
            chunk.columns = schema.names
            inside = positions[(positions >= offset) & (positions < offset + len(chunk))]
            if len(inside):
                chunk.iloc[inside - offset, :] = ""
            offset += len(chunk)
            yield pa.RecordBatch.from_pandas(chunk, schema=schema, preserve_index=False)
        misaligned.extend(found)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path) from exc
    except pd.errors.EmptyDataError as exc:
        raise RawFileError(path, "file is empty (no header row)") from exc
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RawFileError(path, f"not a readable CSV: {first_line}") from exc
    except OSError as exc:
        raise RawFileError(path, f"cannot be read: {exc.strerror or exc}") from exc
    finally:
        if not isinstance(source, str):
            source.close()


def _quiet(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """pandas' chunks without its warning on a long row (``_misaligned_rows`` has them)."""
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            chunk = next(chunks, None)
        if chunk is None:
            return
        yield chunk


def consume_text_batches(path: Path | str | Location, required: tuple[str, ...], sink) -> int:
    """Feed the file's rows, every cell as written (not stripped, never null, blank lines
    skipped), to ``sink`` as record batches of text columns named by the normalised header.

    ``sink`` has ``start(schema)``, ``write(batch)`` and ``misaligned(cells)``. When Arrow
    refuses the file part-way, ``start`` is called again and pandas' batches follow, so a sink
    begins afresh on each ``start``. A row whose field count is not the header's is written as
    a blank row in its place, and at the end ``misaligned`` gets ``{position: text}`` of such
    rows (only when there are any) for the sink to add ``FIELD_COUNT_COLUMN``. Returns the
    number of rows.
    """
    path = Location(path)
    if not path.is_file():
        raise RawFileError(path, "file not found")
    for reader in (_arrow_batches, _pandas_batches):
        rows = 0
        found: list[tuple[int, int, int]] = []
        try:
            stream = reader(path, required, found)
            sink.start(next(stream))
            for batch in stream:
                sink.write(batch)
                rows += batch.num_rows
            if found:
                sink.misaligned({p: field_count_text(n, m) for p, n, m in found})
            return rows
        except _NotPlainCsv:
            continue
        except StopIteration:  # pandas found a header and no rows
            schema = pa.schema([(n, pa.string()) for n in checked_header(path, required)])
            sink.start(schema)
            return 0
    raise AssertionError("pandas' reader either reads a file or raises")


def field_count_column(num_rows: int, positions: np.ndarray, texts: list[str]) -> pa.Array:
    """``FIELD_COUNT_COLUMN`` of a table of ``num_rows`` rows: ``texts`` at ``positions``, null
    elsewhere (a take from the few distinct texts: no Python object per row)."""
    distinct, codes = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    values = pa.array([None, *distinct.tolist()], pa.string())
    index = np.zeros(num_rows, dtype=np.int32)
    index[positions] = codes + 1
    return values.take(pa.array(index))


class _Collect:
    def start(self, schema: pa.Schema) -> None:
        self.schema, self.batches, self.cells = schema, [], {}

    def write(self, batch: pa.RecordBatch) -> None:
        self.batches.append(batch)

    def misaligned(self, cells: dict[int, str]) -> None:
        self.cells = cells


def read_text_table(path: Path | str | Location, required: tuple[str, ...]) -> pa.Table:
    """The whole file as one Arrow table of text (see ``consume_text_batches``)."""
    sink = _Collect()
    consume_text_batches(path, required, sink)
    table = pa.Table.from_batches(sink.batches, schema=sink.schema)
    if sink.cells:
        positions = np.fromiter(sink.cells, dtype=np.int64, count=len(sink.cells))
        column = field_count_column(table.num_rows, positions, list(sink.cells.values()))
        table = table.append_column(FIELD_COUNT_COLUMN, column)
    return table


# ---------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------


def _contiguous(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if values.null_count:
        values = pc.fill_null(values, "")
    return values


def _replace_non_ascii(source: pa.Array, result: pa.Array, python_op) -> pa.Array:
    """Redo ``python_op`` in Python for the cells that are not pure ASCII, where Arrow's
    ASCII kernels and Python's Unicode rules can differ."""
    non_ascii = pc.invert(pc.string_is_ascii(source))
    if not pc.any(non_ascii).as_py():
        return result
    fixed = pa.array([python_op(v) for v in pc.filter(source, non_ascii).to_pylist()], pa.string())
    return pc.replace_with_mask(result, non_ascii, fixed)


def _sorted_neighbours(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """The order that sorts ``values``, and whether each sorted value but the first equals the
    one before it (null equals nothing)."""
    order = pc.array_sort_indices(values)
    ordered = pc.take(values, order)
    if isinstance(ordered, pa.ChunkedArray):
        ordered = ordered.combine_chunks()
    n = len(ordered)
    same = pc.equal(ordered.slice(1), ordered.slice(0, max(n - 1, 0)))
    return order, pc.fill_null(same, False).to_numpy(zero_copy_only=False)


def repeated_text(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Which cells hold a text value that another cell holds too (null is never repeated).

    Found by sorting and comparing neighbours: Arrow's hash kernels build a table several
    times the size of a column of millions of distinct ids (4.8M lead ids: ``value_counts``
    0.7 GB and 3.7 s, against 0.06 GB and 1 s sorted; in the leads' validation, replacing
    ``dictionary_encode`` with this lowered the memory held after the re-delivery check from
    1.2 to 0.7 GB)."""
    order, same = _sorted_neighbours(values)
    n = len(values)
    repeated_in_order = np.zeros(n, dtype=bool)
    repeated_in_order[1:] |= same
    repeated_in_order[:-1] |= same
    repeated = np.empty(n, dtype=bool)
    repeated[order.to_numpy()] = repeated_in_order
    return repeated


def text_codes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An integer code per cell, equal for equal values and distinct otherwise (-1: null), in
    the order of the sorted values: a factorization by sorting (see `repeated_text` for why
    not by hashing)."""
    order, same = _sorted_neighbours(values)
    starts = np.ones(len(values), dtype=np.int64)
    starts[1:] = ~same
    del same
    np.cumsum(starts, out=starts)
    starts -= 1
    codes = np.empty(len(starts), dtype=np.int64)
    codes[order.to_numpy()] = starts
    if values.null_count:
        codes[pc.is_null(values).to_numpy(zero_copy_only=False)] = -1
    return codes


def strip_text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``str.strip()`` of every cell. A column with no ASCII whitespace at either end of a
    cell (the usual export) is not copied a second time to trim it."""
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    needs_trim = any(_ascii_whitespace_at_an_end(chunk) for chunk in chunks)
    values = _contiguous(values)
    trimmed = pc.ascii_trim(values, characters=_PY_ASCII_WHITESPACE) if needs_trim else values
    return _replace_non_ascii(values, trimmed, str.strip)


_WHITESPACE_BYTES = np.frombuffer(_PY_ASCII_WHITESPACE.encode("ascii"), dtype=np.uint8)


def _ascii_whitespace_at_an_end(values: pa.Array) -> bool:
    """Whether a cell's first or last byte is ASCII whitespace (a null cell may say yes)."""
    offsets, data = _string_buffers(values)
    starts, ends = offsets[:-1], offsets[1:]
    filled = ends > starts
    edges = np.concatenate([data[starts[filled]], data[ends[filled] - 1]])
    return bool(np.isin(edges, _WHITESPACE_BYTES).any())


def upper_text(values: pa.Array) -> pa.Array:
    """``str.upper()`` of every cell."""
    values = _contiguous(values)
    return _replace_non_ascii(values, pc.ascii_upper(values), str.upper)


def _string_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of a string array, as numpy views."""
    offset_type = np.int64 if pa.types.is_large_string(values.type) else np.int32
    buffers = values.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offset_type)[
        values.offset : values.offset + len(values) + 1
    ].astype(np.int64)
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)
        if buffers[2] is not None
        else np.zeros(1, np.uint8)
    )
    return offsets, data


# Fixed-width shapes of the fast date path: (length, {position: separator}, field positions).
_SHAPES = {
    "ymd_hms": (
        19,
        {4: b"-", 7: b"-", 10: b" ", 13: b":", 16: b":"},
        {"Y": (0, 4), "M": (5, 2), "D": (8, 2), "h": (11, 2), "m": (14, 2), "s": (17, 2)},
    ),
    "ymd": (10, {4: b"-", 7: b"-"}, {"Y": (0, 4), "M": (5, 2), "D": (8, 2)}),
    "mdy": (10, {2: b"/", 5: b"/"}, {"M": (0, 2), "D": (3, 2), "Y": (6, 4)}),
}


def _fast_timestamps(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps, done): cells in one of the three shapes with a valid calendar day and
    time, parsed; ``done`` also marks blank cells (NaT)."""
    offsets, data = _string_buffers(values)
    starts, lengths = offsets[:-1], np.diff(offsets)
    out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    done = lengths == 0
    for length, separators, fields in _SHAPES.values():
        rows = np.flatnonzero(lengths == length)
        if not len(rows):
            continue
        at = starts[rows]
        ok = np.ones(len(rows), dtype=bool)
        for position, separator in separators.items():
            ok &= data[at + position] == separator[0]
        number = {}
        for name, (first, width) in fields.items():
            value = np.zeros(len(rows), dtype=np.int64)
            for k in range(first, first + width):
                digit = data[at + k].astype(np.int64) - 48
                ok &= (digit >= 0) & (digit <= 9)
                value = value * 10 + digit
            number[name] = value
        year, month, day = number["Y"], number["M"], number["D"]
        hour, minute, second = (number.get(k, np.zeros_like(year)) for k in ("h", "m", "s"))
        ok &= (year >= _FAST_YEARS[0]) & (year <= _FAST_YEARS[1])
        ok &= (month >= 1) & (month <= 12) & (day >= 1)
        ok &= (hour <= 23) & (minute <= 59) & (second <= 60)
        month_index = np.where(ok, (year - 1970) * 12 + month - 1, 0)
        first_day = month_index.astype("datetime64[M]").astype("datetime64[D]")
        next_first = (month_index + 1).astype("datetime64[M]").astype("datetime64[D]")
        ok &= day <= (next_first - first_day).astype(np.int64)
        leap = second == 60  # a leap second: the minute's last instant (`_LEAP_SECOND`)
        seconds = (first_day - np.datetime64("1970-01-01", "D")).astype(np.int64) * 86_400 + (
            (day - 1) * 86_400 + hour * 3_600 + minute * 60 + np.minimum(second, 59)
        )
        nanoseconds = seconds * 1_000_000_000 + np.where(leap, 999_999_999, 0)
        good = rows[ok]
        out[good] = nanoseconds[ok].astype("datetime64[ns]")
        done[good] = True
    return out, done


def pandas_timestamps(text: pd.Series) -> pd.Series:
    """pandas' reading of the three formats (anything else, or blank, is NaT), but for a
    leap second (`_LEAP_SECOND`): second 60 is its minute's last instant, second 61 no time."""
    text = text.astype("string").str.strip()
    leap = text.str.extract(_LEAP_SECOND)
    sixty = (leap["s"] == "0").fillna(False).to_numpy(dtype=bool)
    sixty_one = (leap["s"] == "1").fillna(False).to_numpy(dtype=bool)
    if sixty.any() or sixty_one.any():
        text = text.copy()
        text[sixty] = leap["minute"][sixty] + ":59"
        text[sixty_one] = pd.NA
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    for fmt in _TIMESTAMP_FORMATS:
        todo = parsed.isna()
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    parsed = parsed.astype("datetime64[ns]")
    parsed[sixty] = parsed[sixty] + _LAST_NANOSECOND
    return parsed


# The shapes of the contract's formats as pandas reads them (one-digit fields too), to tell a
# cell written right whose day or time does not exist from one in no format at all.
_DATE_SHAPES = (
    re.compile(
        r"^(?P<Y>[0-9]{4})-(?P<M>[0-9]{1,2})-(?P<D>[0-9]{1,2})"
        r"(?: +(?P<h>[0-9]{1,2}):(?P<m>[0-9]{1,2}):(?P<s>[0-9]{1,2}))?$"
    ),
    re.compile(r"^(?P<M>[0-9]{1,2})/(?P<D>[0-9]{1,2})/(?P<Y>[0-9]{4})$"),
)
_EARLIEST_TIMESTAMP, _LATEST_TIMESTAMP = pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D")


def nonexistent_date(cell: str) -> str | None:
    """Why a cell written in one of the contract's formats is still no date (the month, the
    day or the time does not exist, or the year is beyond what a timestamp holds); None when
    the cell is in no format at all (or is a date). For a quarantine reason: a format error
    and a date that does not exist are fixed differently."""
    text = cell.strip()
    for shape in _DATE_SHAPES:
        found = shape.match(text)
        if found:
            break
    else:
        return None
    year, month, day = (int(found[k]) for k in "YMD")
    slashed = "/" in text
    if not 1 <= month <= 12:
        hint = ""
        if slashed and 1 <= day <= 12:
            hint = "; MM/DD/YYYY puts the month first: is the file day-first (DD/MM/YYYY)?"
        return f"the day does not exist: there is no month {month}{hint}"
    days_in_month = calendar.monthrange(year, month)[1] if year >= 1 else 31
    if not 1 <= day <= days_in_month:
        return (
            f"the day does not exist: {calendar.month_name[month]} {year} has {days_in_month} days"
        )
    if found.groupdict().get("h") is not None:
        hour, minute, second = (int(found[k]) for k in "hms")
        if hour > 23 or minute > 59 or second > 60:
            return (
                "the time does not exist: hours run 00-23, minutes 00-59 and seconds 00-59 "
                "(60 for a leap second)"
            )
    earliest, latest = _EARLIEST_TIMESTAMP.date(), _LATEST_TIMESTAMP.date()
    if year < 1 or not earliest <= dt.date(year, month, day) <= latest:
        return (
            f"the year {year} is outside what a timestamp holds "
            f"({_EARLIEST_TIMESTAMP:%Y-%m-%d} to {_LATEST_TIMESTAMP:%Y-%m-%d})"
        )
    return None


def parse_timestamps_text(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Stripped text cells -> datetime64[ns] (NaT for blank or no date), as pandas reads them."""
    values = _contiguous(values)
    out, done = _fast_timestamps(values)
    if not done.all():
        rest = np.flatnonzero(~done)
        odd = pd.Series(values.take(pa.array(rest)).to_pylist(), dtype=object)
        out[rest] = pandas_timestamps(odd).to_numpy()
    return out


def pandas_numbers(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """pandas' reading of numbers: (values, not_a_number); blank -> NaN and is fine; a comma
    only as a thousands separator (`_GROUPED_NUMBER`)."""
    text = text.astype("string").str.strip()
    misplaced_comma = (
        text.str.contains(",", regex=False) & ~text.str.match(_GROUPED_NUMBER)
    ).fillna(False)
    text = text.str.replace(",", "", regex=False)
    blank = text.isna() | (text == "")
    values = pd.to_numeric(text.where(~blank), errors="coerce").astype("float64")
    bad = ~blank & (values.isna() | np.isinf(values) | misplaced_comma)
    return values.where(~bad), bad.astype(bool)


def parse_numbers_text(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Stripped text cells -> (float64 values, not_a_number); thousands separators dropped,
    blank is NaN (and fine), text, infinity or a comma that groups no thousands (`_GROUPED_NUMBER`)
    is NaN and flagged."""
    values = _contiguous(values)
    misplaced_comma = None
    has_comma = pc.match_substring(values, ",")
    if pc.any(has_comma).as_py():
        misplaced_comma = pc.and_(
            has_comma, pc.invert(pc.match_substring_regex(values, _GROUPED_NUMBER))
        ).to_numpy(zero_copy_only=False)
        values = pc.replace_substring(values, ",", "")
    lengths = pc.binary_length(values).to_numpy(zero_copy_only=False)
    fast = pc.match_substring_regex(values, _FAST_NUMBER).to_numpy(zero_copy_only=False)
    fast &= lengths <= _FAST_NUMBER_MAX_LENGTH
    numbers = np.full(len(values), np.nan)
    not_a_number = np.zeros(len(values), dtype=bool)
    if fast.any():
        numbers[fast] = pc.cast(pc.filter(values, pa.array(fast)), pa.float64()).to_numpy()
    rest = np.flatnonzero(~fast & (lengths > 0))
    if len(rest):
        odd = pd.Series(values.take(pa.array(rest)).to_pylist(), dtype=object)
        parsed, bad = pandas_numbers(odd)
        numbers[rest] = parsed.to_numpy()
        not_a_number[rest] = bad.to_numpy()
    if misplaced_comma is not None:
        numbers[misplaced_comma] = np.nan
        not_a_number |= misplaced_comma
    return numbers, not_a_number
