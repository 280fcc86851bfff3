"""Reading the Leadsmart exports and turning them into validated tables plus a quarantine.

Pure Arrow/pandas/numpy; no Dagster. The assets in ``assets/ingestion.py`` call these
functions.

Why it is built this way:

* Files are read as text first (every cell a string, ``raw_parsing``) so that nothing is
  silently coerced: a blank cell stays null (blank is not zero), and a cell that is not a
  number or a date is caught and explained instead of turning into NaN unnoticed. The text
  stays in Arrow buffers and each file is read once; the cells a rule needs are parsed once,
  vectorized.
* Every row of a file ends in exactly one of three places: accepted, quarantined (with a
  reason), or removed as an exact re-delivery of another row with the same ``id``. The
  counts are returned so the caller can prove ``read = accepted + quarantined + duplicates``.
* Row-local rules are the pandera row contracts of ``schemas.py``, evaluated as boolean masks
  (``schemas.*_row_failures``; tests keep both in agreement); rules that need another file or
  the whole file live here. Only the rows that break a rule are turned into Python objects,
  to write their reasons; accepted rows go from Arrow to Parquet as they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from campaign_pipeline import personal_data, raw_parsing, schemas
from campaign_pipeline.constants import PII_COLUMNS, RAW_FILES
from campaign_pipeline.locations import Location
from campaign_pipeline.raw_parsing import RawFileError

__all__ = [
    "FILE_SPECS",
    "FileSpec",
    "FileValidation",
    "IngestionResult",
    "IngestionRules",
    "RawFileError",
    "check_raw_file",
    "ingest_raw_dir",
    "parse_numbers",
    "parse_timestamps",
    "read_raw_file",
    "read_raw_table",
    "validate_campaigns",
    "validate_insights",
    "validate_lead_status_changes",
    "validate_leads",
    "write_raw_snapshot",
]

# ---------------------------------------------------------------------------------------
# File layout (from the data contract)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSpec:
    key: str
    filename: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    id_column: str | None  # rows sharing it are one row delivered twice (or a conflict)
    # the columns validation parses as numbers and as timestamps: rows sharing an id compare
    # these by their parsed value (``5.00`` is ``5.0``), every other column as trimmed text
    numbers: tuple[str, ...] = ()
    timestamps: tuple[str, ...] = ()
    # personal columns (never shown in the quarantine): a file with any also has every shown
    # cell of a rejected row checked for the shape of an email or a phone (`_withhold_personal`)
    personal: tuple[str, ...] = ()


FILE_SPECS: dict[str, FileSpec] = {
    "campaigns": FileSpec(
        "campaigns",
        RAW_FILES["campaigns"],
        required=("id", "user_id", "project_name", "daily_budget"),
        optional=("platform", "name", "created_at"),
        id_column="id",
        numbers=("daily_budget",),
        timestamps=("created_at",),
    ),
    "insights": FileSpec(
        "insights",
        RAW_FILES["insights"],
        required=("campaign_id", "created_at", "spend"),
        optional=("id", "impressions", "clicks", "conversions"),
        id_column="id",
        numbers=("spend", "impressions", "clicks", "conversions"),
        timestamps=("created_at",),
    ),
    "campaign_leads": FileSpec(
        "campaign_leads",
        RAW_FILES["campaign_leads"],
        required=("id", "campaign_id", "lead_status", "added_date"),
        optional=("name", "email", "phone", "deal_value"),
        id_column="id",
        numbers=("deal_value",),
        timestamps=("added_date",),
        personal=PII_COLUMNS,
    ),
    "lead_status_changes": FileSpec(
        "lead_status_changes",
        RAW_FILES["lead_status_changes"],
        required=("lead_id", "new_status", "created_at"),
        optional=("id", "old_status"),
        id_column="id",
        timestamps=("created_at",),
    ),
}

LINE_COLUMN = "_line"
# the reason code of a row whose field count is not the header's (`raw_parsing`)
MISALIGNED = "wrong_field_count"


@dataclass(frozen=True)
class IngestionRules:
    """Bounds that tell a plausible export from a mistake. A row outside them is quarantined
    (``date_out_of_range``, ``implausible_value``) so one wrong cell cannot take over a run:
    a date in 1900 would open thousands of empty weeks, a spend of 1e308 would overflow every
    sum. Each default is far outside real data and well inside what float sums survive."""

    earliest_date: str = "2000-01-01"
    """No ad platform export of interest is older; 1900-01-01 is a spreadsheet's zero date.
    (The weekly partitions start with this date's week.) Dates after the run's own date are
    out of range too: an export cannot report the future."""
    max_count: float = 1e12
    """Impressions, clicks or conversions of one row above this are a typo or an overflow: the
    largest platforms serve about 1e11 impressions a day in total."""
    max_spend_budget_multiple: float = 1000.0
    """Spend above this multiple of the campaign's daily budget (when the budget is known and
    above 0) is implausible: platforms overdeliver by up to about 2x, not 1,000x."""
    max_amount: float = 1e12
    """Any amount (spend without a known budget, deal_value, daily_budget) above this, in the
    account's currency, is implausible; it also keeps every published sum finite."""


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------


def check_raw_file(path: Path | str | Location, spec: FileSpec) -> None:
    """Check what can be checked without parsing the rows: the file exists, is UTF-8 text with
    a header, no column appears twice and every required column is there. Raises
    ``RawFileError`` (one line naming the file and column) otherwise.

    The CLI runs this before Dagster starts so a missing file fails in a second, not after
    minutes of validating the others; the rows are parsed once, by the ingestion assets.
    """
    raw_parsing.checked_header(path, spec.required)


def read_raw_table(path: Path | str | Location, spec: FileSpec) -> pa.Table:
    """One export as an Arrow table of text: headers cleaned (BOM, stray spaces, case), every
    cell as written (stripping is validation's), blank lines skipped. Row ``i`` (from 0) is
    line ``i + 2`` of the quarantine, the header being line 1."""
    return raw_parsing.read_text_table(path, spec.required)


class _IpcFileSink:
    def __init__(self, destination: Path):
        self.destination = destination
        self.writer = None
        self.schema: pa.Schema | None = None

    def start(self, schema: pa.Schema) -> None:
        self.close()
        self.schema = schema
        self.writer = ipc.new_file(str(self.destination), schema)

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(batch)

    def misaligned(self, cells: dict[int, str]) -> None:
        """Add ``FIELD_COUNT_COLUMN`` by writing the snapshot again, a batch at a time: only a
        file with a misaligned row pays for it, and every other snapshot has no such column."""
        self.close()
        positions = np.fromiter(cells, dtype=np.int64, count=len(cells))  # in file order
        texts = list(cells.values())
        marked = self.destination.with_name(self.destination.name + ".marked")
        with pa.memory_map(str(self.destination), "r") as source:
            reader = ipc.open_file(source)
            schema = reader.schema.append(pa.field(raw_parsing.FIELD_COUNT_COLUMN, pa.string()))
            with ipc.new_file(str(marked), schema) as writer:
                start = 0
                for i in range(reader.num_record_batches):
                    batch = reader.get_batch(i)
                    lo, hi = np.searchsorted(positions, [start, start + batch.num_rows])
                    values = raw_parsing.field_count_column(
                        batch.num_rows, positions[lo:hi] - start, texts[lo:hi]
                    )
                    arrays = [*batch.columns, values]
                    writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
                    start += batch.num_rows
        marked.replace(self.destination)
        self.schema = schema

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def write_raw_snapshot(
    path: Path | str | Location, spec: FileSpec, destination: Path | str
) -> tuple[int, list[str]]:
    """Stream one export into an Arrow IPC file of text (as ``read_raw_table`` reads it),
    block by block, so memory stays at a few blocks whatever the file's size. Returns the
    number of rows and the snapshot's (normalised) column names."""
    sink = _IpcFileSink(Path(destination))
    try:
        rows = raw_parsing.consume_text_batches(path, spec.required, sink)
    finally:
        sink.close()
    return rows, [c for c in sink.schema.names if c != raw_parsing.FIELD_COUNT_COLUMN]


def text_table(raw: pa.Table | pd.DataFrame) -> pa.Table:
    """A raw table as the validators take it: Arrow text, row ``i`` being line ``i + 2``. A
    pandas text frame shaped like ``read_raw_file``'s (a source other than a file, e.g.
    Salesforce) is converted; its ``_line`` must number the rows 2, 3, ... in order."""
    if isinstance(raw, pa.Table):
        return raw
    columns = [c for c in raw.columns if c != LINE_COLUMN]
    if LINE_COLUMN in raw.columns:
        lines = raw[LINE_COLUMN].to_numpy(dtype=np.int64)
        if not np.array_equal(lines, np.arange(2, len(raw) + 2)):
            raise ValueError(f"{LINE_COLUMN} must number the rows 2, 3, ... in order")
    text = raw[columns].astype(object).where(raw[columns].notna(), "")
    schema = pa.schema([(c, pa.string()) for c in columns])
    return pa.Table.from_pandas(text, schema=schema, preserve_index=False)


def write_text_frame_snapshot(frame: pd.DataFrame, destination: Path | str) -> int:
    """Write a text frame shaped like ``read_raw_file``'s as the same Arrow IPC snapshot a
    file becomes (see ``text_table``). Returns the number of rows."""
    table = text_table(frame)
    with ipc.new_file(str(destination), table.schema) as writer:
        writer.write_table(table)
    return table.num_rows


def _with_optional_columns(raw: pa.Table, spec: FileSpec) -> pa.Table:
    for column in spec.optional:
        if column not in raw.column_names:
            raw = raw.append_column(column, pa.repeat(pa.scalar("", pa.string()), raw.num_rows))
    return raw


def _text_frame(raw: pa.Table, rows: np.ndarray) -> pd.DataFrame:
    """Some rows as pandas text, every cell stripped, indexed by row number, with ``_line``."""
    frame = raw.take(pa.array(rows, pa.int64())).to_pandas()
    frame = frame.apply(lambda s: s.str.strip()) if len(frame) else frame.astype(object)
    frame.index = pd.Index(rows, dtype="int64")
    frame[LINE_COLUMN] = rows + 2
    return frame


def read_raw_file(path: Path | str | Location, spec: FileSpec) -> pd.DataFrame:
    """One export as pandas text: headers cleaned, cells stripped, optional columns added as
    blanks, and ``_line``, the row's line in the file (the header being line 1)."""
    raw = _with_optional_columns(_without_field_counts(read_raw_table(path, spec))[0], spec)
    return _text_frame(raw, np.arange(raw.num_rows, dtype=np.int64)).reset_index(drop=True)


def _without_field_counts(raw: pa.Table) -> tuple[pa.Table, dict[int, str]]:
    """The raw table without ``FIELD_COUNT_COLUMN``, and its cells by row position (the rows
    whose field count is not the header's, read as blank rows: `raw_parsing`)."""
    name = raw_parsing.FIELD_COUNT_COLUMN
    if name not in raw.column_names:
        return raw, {}
    column = raw.column(name)
    raw = raw.drop_columns([name])
    if column.null_count == len(column):
        return raw, {}
    positions = np.flatnonzero(pc.is_valid(column).to_numpy(zero_copy_only=False))
    texts = column.take(pa.array(positions)).to_pylist()
    return raw, dict(zip(positions.tolist(), texts, strict=True))


def _text_array(text: pd.Series) -> pa.Array:
    return pa.array(text.astype("string"), type=pa.string(), from_pandas=True)


def parse_timestamps(text: pd.Series) -> pd.Series:
    """Parse the contract's three formats; anything else (or blank) becomes NaT."""
    values = raw_parsing.strip_text(_text_array(text))
    parsed = raw_parsing.parse_timestamps_text(values)
    return pd.Series(parsed, index=text.index, dtype="datetime64[ns]")


def parse_numbers(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Return (values, not_a_number). Blank -> NaN and is fine; text or inf is flagged."""
    values, bad = raw_parsing.parse_numbers_text(raw_parsing.strip_text(_text_array(text)))
    return pd.Series(values, index=text.index), pd.Series(bad, index=text.index)


# ---------------------------------------------------------------------------------------
# What validating one file produced
# ---------------------------------------------------------------------------------------


@dataclass
class FileValidation:
    """What validating one raw file produced. ``accepted_table`` is what is stored;
    ``accepted`` is the same rows as pandas (text as Python strings), made on first use."""

    source_file: str
    accepted_table: pa.Table
    quarantine: pd.DataFrame
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    duplicates_removed: int
    reason_counts: dict[str, int] = field(default_factory=dict)

    @cached_property
    def accepted(self) -> pd.DataFrame:
        return self.accepted_table.to_pandas()

    @property
    def accounting(self) -> dict[str, int | str | bool]:
        return {
            "source_file": self.source_file,
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted,
            "rows_quarantined": self.rows_quarantined,
            "duplicates_removed": self.duplicates_removed,
            "balanced": self.rows_read
            == self.rows_accepted + self.rows_quarantined + self.duplicates_removed,
        }


def validated_arrow(frame: pd.DataFrame) -> pa.Table:
    """A frame as an Arrow table without pandas' metadata, so ``pd.read_parquet`` of what is
    stored gives plain pandas types (text as Python strings), whatever backed the frame."""
    return pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)


# ---------------------------------------------------------------------------------------
# Shared machinery: rows of a file, duplicates, failures, reasons
# ---------------------------------------------------------------------------------------


def _lengths(values: pa.Array) -> np.ndarray:
    return pc.binary_length(values).to_numpy(zero_copy_only=False)


@dataclass
class _Rows:
    """The rows of one file left after exact re-deliveries are removed.

    ``number`` holds each row's position in the file (its line is ``number + 2``); the text
    columns used by the rules are stripped, in the same order."""

    raw: pa.Table | None  # None once the file's rows are split (`_finish`)
    number: np.ndarray
    text: dict[str, pa.Array]
    conflict: np.ndarray
    duplicates_removed: int
    # the columns a conflicting row's group differs in, by the row's position in the file
    # (a few rows: no array as long as the file)
    conflict_columns: dict[int, str]
    # the rows whose field count is not the header's, by position: what is wrong with each
    # (`raw_parsing.FIELD_COUNT_COLUMN`; their cells are blank)
    misaligned: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.number)

    def string(self, column: str) -> pd.Series:
        """A stripped text column as an Arrow-backed pandas Series (no copy)."""
        return pd.Series(pd.arrays.ArrowExtensionArray(self.text[column]), copy=False)

    def blank(self, column: str) -> np.ndarray:
        return _lengths(self.text[column]) == 0


def _compared_cells(rows: pd.DataFrame, spec: FileSpec) -> pd.DataFrame:
    """``rows`` (the text of rows sharing an id, a frame of the caller's own, changed in place)
    as they are compared: a number or a timestamp cell by the value validation reads from it,
    every other cell (and one that does not parse) by its trimmed text. A re-export writes one
    value in several ways (``5.00`` and ``5.0``, ``2025-03-03`` and ``03/03/2025``): compared
    as text, such twins would be a conflict and the delivery would be lost. A timestamp is
    compared whole, not by its day: one id at ``09:00:00`` and at ``17:00:00`` is an export at
    odds with itself, and keeping either row would be a guess."""
    for column in spec.numbers + spec.timestamps:
        if column not in rows.columns:
            continue
        text = pa.array(rows[column].to_numpy(dtype=object), pa.string(), from_pandas=True)
        if column in spec.numbers:
            values, not_a_number = raw_parsing.parse_numbers_text(text)
            parsed = ~not_a_number & ~np.isnan(values)
        else:
            values = raw_parsing.parse_timestamps_text(text).view(np.int64)
            parsed = values != np.iinfo(np.int64).min  # NaT
        cells = rows[column].to_numpy(dtype=object).copy()
        cells[parsed] = values[parsed]
        rows[column] = cells
    return rows


def _exact_and_conflicting(raw: pa.Table, ids: pa.Array, spec: FileSpec):
    """(exact repeat mask, conflict mask over all rows, and the columns each conflicting row
    differs in, by row position). Only rows whose id occurs more than once can be either;
    those few are compared cell by cell in pandas (``_compared_cells``), every column included
    (personal data too: a changed e-mail is a different row; an extra column of the export too,
    so a reason names the columns, and a user can tell an export's own timestamp column from a
    changed spend)."""
    n = raw.num_rows
    exact = np.zeros(n, dtype=bool)
    conflict = np.zeros(n, dtype=bool)
    differs: dict[int, str] = {}
    if n == 0:
        return exact, conflict, differs
    has_id = _lengths(ids) > 0
    shared = np.flatnonzero(has_id & raw_parsing.repeated_text(ids))
    if not len(shared):
        return exact, conflict, differs
    rows = _text_frame(raw, shared)
    content = [c for c in rows.columns if c != LINE_COLUMN]
    rows = _compared_cells(rows.drop(columns=LINE_COLUMN), spec)
    repeat = rows.duplicated(keep="first").to_numpy()
    exact[shared[repeat]] = True
    kept = rows[~repeat]
    clash = kept[spec.id_column].duplicated(keep=False).to_numpy()
    clashing = kept[clash]
    conflict[clashing.index.to_numpy()] = True
    if len(clashing):
        varies = clashing.groupby(clashing[spec.id_column].to_numpy()).transform("nunique") > 1
        names = np.asarray(content, dtype=object)
        differs = {
            int(row): ", ".join(names[columns])
            for row, columns in zip(clashing.index, varies.to_numpy(), strict=True)
        }
    return exact, conflict, differs


def _add_conflicts(failures: _Failures, rows: _Rows, spec: FileSpec) -> None:
    """Rows sharing an id with different values: none is kept, and the reason says in which
    columns they differ."""
    ids = rows.text[spec.id_column]

    def reasons(positions: np.ndarray) -> list[str]:
        shown = ids.take(pa.array(positions)).to_pylist()
        return [
            f"conflicting duplicate: several rows share id '{key}' with different "
            f"{rows.conflict_columns[int(row)]} (none kept)"
            for key, row in zip(shown, rows.number[positions], strict=True)
        ]

    failures.add("conflicting_duplicate", rows.conflict, reasons)


def _rows(raw: pa.Table | pd.DataFrame, spec: FileSpec, columns: list[str]) -> _Rows:
    raw, misaligned = _without_field_counts(text_table(raw))
    raw = _with_optional_columns(raw, spec)
    text = {c: raw_parsing.strip_text(raw.column(c)) for c in columns}
    exact, conflict, differs = _exact_and_conflicting(raw, text[spec.id_column], spec)
    number = np.arange(raw.num_rows, dtype=np.int64)
    repeats = int(exact.sum())
    if repeats:
        keep = ~exact
        mask = pa.array(keep)
        text = {c: v.filter(mask) for c, v in text.items()}
        number, conflict = number[keep], conflict[keep]
    return _Rows(raw, number, text, conflict, repeats, differs, misaligned)


class _Failures:
    """The rules a file's rows break: (code, mask over the rows, optional detail texts)."""

    def __init__(self, rows: _Rows):
        self.rows = rows
        self.items: list[tuple[str, np.ndarray, object]] = []

    def add(self, code: str, mask: np.ndarray, detail=None) -> None:
        """``detail(positions)`` gives each failing row's own reason text, when it has one."""
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self.items.append((code, mask, detail))

    def add_all(self, masks: dict[str, np.ndarray]) -> None:
        for code, mask in masks.items():
            self.add(code, mask)

    def any(self) -> np.ndarray:
        bad = np.zeros(len(self.rows), dtype=bool)
        for _, mask, _ in self.items:
            bad |= mask
        return bad

    def frame(self, exclude: np.ndarray | None = None) -> pd.DataFrame:
        """Every failure of every row but those ``exclude`` marks."""
        frames = []
        for code, mask, detail in self.items:
            positions = np.flatnonzero(mask if exclude is None else mask & ~exclude)
            frames.append(
                pd.DataFrame(
                    {
                        "index": self.rows.number[positions],
                        "code": code,
                        "detail": None if detail is None else detail(positions),
                    }
                )
            )
        out = pd.concat(frames, ignore_index=True)
        return out.astype({"index": "int64", "code": str, "detail": object})


def _fmt(values: pd.Series) -> pd.Series:
    return values.astype("string").fillna("blank")


def _reason_texts(code: str, rows: pd.DataFrame, raw: pd.DataFrame, spec: FileSpec) -> pd.Series:
    """Plain-English reason for ``code`` on each row of ``rows`` (vectorized)."""
    r = raw.loc[rows.index]
    templates = {
        "missing_key": lambda: pd.Series(
            f"missing key: {_key_column(spec)} is blank", index=r.index
        ),
        "unparseable_date": lambda: _date_reasons(r[_date_column(spec)]),
        "negative_spend": lambda: "negative spend: " + _fmt(r["spend"]),
        "missing_spend": lambda: pd.Series("spend is blank (required)", index=r.index),
        "negative_count": lambda: (
            "negative count: impressions/clicks/conversions = "
            + _fmt(r.get("impressions"))
            + "/"
            + _fmt(r.get("clicks"))
            + "/"
            + _fmt(r.get("conversions"))
        ),
        "fractional_count": lambda: (
            "count is not a whole number: impressions/clicks/conversions = "
            + _fmt(r.get("impressions"))
            + "/"
            + _fmt(r.get("clicks"))
            + "/"
            + _fmt(r.get("conversions"))
        ),
        "clicks_gt_impressions": lambda: (
            "clicks > impressions: " + _fmt(r["clicks"]) + " > " + _fmt(r["impressions"])
        ),
        "negative_daily_budget": lambda: "negative daily_budget: " + _fmt(r["daily_budget"]),
        "negative_deal_value": lambda: "negative deal_value: " + _fmt(r["deal_value"]),
        "personal_data_in_lead_status": lambda: pd.Series(
            "lead_status is shaped like personal data, not a status: the row's cells may have "
            "shifted (an unquoted comma in the name, and a cell missing further on)",
            index=r.index,
        ),
        "unknown_campaign": lambda: (
            "unknown campaign: campaign_id '" + _fmt(r["campaign_id"]) + "' is not in campaigns.csv"
        ),
        "rejected_campaign": lambda: (
            "campaign_id '" + _fmt(r["campaign_id"]) + "' was quarantined in campaigns.csv"
        ),
        "unknown_lead": lambda: (
            "unknown lead: lead_id '" + _fmt(r["lead_id"]) + "' is not in campaign_leads.csv"
        ),
        "rejected_lead": lambda: (
            "lead_id '" + _fmt(r["lead_id"]) + "' was quarantined in campaign_leads.csv"
        ),
    }
    if code in templates:
        return templates[code]()
    if code.startswith("not_a_number_"):
        column = code.removeprefix("not_a_number_")
        cells = _fmt(r[column])
        hint = cells.str.contains(",", regex=False).map(
            {True: " (a comma is read only as a thousands separator, as in 1,234.50)", False: ""}
        )
        return f"{column} is not a number: '" + cells + "'" + hint
    if code.startswith("missing_"):
        return pd.Series(f"{code.removeprefix('missing_')} is blank (required)", index=r.index)
    return pd.Series(code.replace("_", " "), index=r.index)


def _date_reasons(cells: pd.Series) -> pd.Series:
    """Why each date cell is no date: in no format of the contract, or in one but naming a
    day or a time that does not exist (`raw_parsing.nonexistent_date`): a typo in the format
    and ``2025-02-30`` are fixed differently."""
    problems = [
        raw_parsing.nonexistent_date(cell) if isinstance(cell, str) else None for cell in cells
    ]
    tails = [
        "is not YYYY-MM-DD[ HH:MM:SS] or MM/DD/YYYY"
        if problem is None
        else f"has the right format, but {problem}"
        for problem in problems
    ]
    return "unparseable date: '" + _fmt(cells) + "' " + pd.Series(tails, index=cells.index)


def _withhold_personal(spec: FileSpec, raw_bad: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The rejected rows with every cell that looks like personal data replaced, and a note per
    row saying what was withheld ('' for a row with nothing withheld).

    A file with personal columns (``FileSpec.personal``) can carry their values in other columns
    when a row's cells shifted (an unquoted comma in a name, a cell missing further on: the
    field count matches, so the row is read, and the phone lands in lead_status). Every shown
    cell of such a file's rejected rows is checked by shape (`personal_data.personal_kind`)
    before any reason quotes it; the personal columns themselves are never shown."""
    notes = pd.Series("", index=raw_bad.index, dtype=object)
    if not spec.personal or not len(raw_bad):
        return raw_bad, notes
    shown = [c for c in raw_bad.columns if c not in spec.personal and c != LINE_COLUMN]
    found: dict[int, list[str]] = {}
    masked = raw_bad.copy()
    for column in shown:
        kinds = raw_bad[column].map(personal_data.personal_kind)
        hit = kinds.notna()
        if not hit.any():
            continue
        masked.loc[hit, column] = kinds[hit].map(personal_data.withheld_text)
        for row, kind in kinds[hit].items():
            found.setdefault(row, []).append(f"{column} ({kind.split(' ', 1)[1]})")  # no article
    for row, cells in found.items():
        line = int(raw_bad.at[row, LINE_COLUMN])
        notes[row] = (
            f"withheld from this quarantine row: {', '.join(cells)}: a value shaped like "
            "personal data (the row's cells may have shifted) never leaves the validated "
            f"layer; see line {line:,} of {spec.filename}"
        )
    return masked, notes


def _key_column(spec: FileSpec) -> str:
    """The column whose blank value makes a row unaddressable (the row contract's missing_key)."""
    return {"insights": "campaign_id", "lead_status_changes": "lead_id"}.get(spec.key, "id")


def _date_column(spec: FileSpec) -> str:
    return "added_date" if spec.key == "campaign_leads" else "created_at"


# Which reason is reported first when a row breaks several rules: the most fundamental.
_CODE_PRIORITY = [
    MISALIGNED,
    "missing_key",
    "conflicting_duplicate",
    "unparseable_date",
    "date_out_of_range",
    "rejected_campaign",
    "unknown_campaign",
    "rejected_lead",
    "unknown_lead",
    "implausible_value",
]


def _joined_reasons(failures: pd.DataFrame) -> pd.DataFrame:
    """One row per failed row (`index`, sorted): the first failure's code and every failure's
    text joined by "; ", in the order given. Built a column per failure position, not by a
    Python call per row: a file of 200,000 rows quarantined spent 40 s in a groupby lambda."""
    position = failures.groupby("index", sort=False).cumcount().to_numpy()
    wide = failures.assign(position=position).pivot(
        index="index", columns="position", values=["code", "text"]
    )
    reason = wide[("text", 0)].astype(object)
    for k in range(1, int(position.max(initial=0)) + 1):
        more = wide[("text", k)]
        reason = reason.where(more.isna(), reason + "; " + more)
    return pd.DataFrame({"reason_code": wide[("code", 0)], "reason": reason}).sort_index()


def _assemble(
    spec: FileSpec, failures: pd.DataFrame, raw_bad: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The quarantine rows of the failing rows (``raw_bad``: their stripped text by row
    number) and the count of each row's leading reason. A cell shaped like personal data is
    withheld (`_withhold_personal`) from the row's values, its key and its reason."""
    original = raw_bad
    raw_bad, withheld = _withhold_personal(spec, raw_bad)
    failures = failures.drop_duplicates()
    # A cell that is not a number is parsed as null; report it as such, not also as blank.
    not_numbers = failures[failures["code"].str.startswith("not_a_number_")]
    implied_blank = set(
        zip(
            not_numbers["index"], "missing_" + not_numbers["code"].str.removeprefix("not_a_number_")
        )
    )
    failures = failures[
        [pair not in implied_blank for pair in zip(failures["index"], failures["code"])]
    ]
    priority = {c: i for i, c in enumerate(_CODE_PRIORITY)}
    failures = failures.assign(
        rank=failures["code"].map(priority).fillna(len(priority))
    ).sort_values(["index", "rank", "code"], kind="stable")
    texts = []
    for code, rows in failures.groupby("code", sort=False):
        texts.append(
            pd.Series(
                _reason_texts(code, rows.set_index("index"), raw_bad, spec).to_numpy(),
                index=rows.index,
            )
        )
    generic = pd.concat(texts).reindex(failures.index)
    # a failure found with its own context (a bound, the run's date) carries its own text
    failures["text"] = failures["detail"].where(failures["detail"].notna(), generic)
    per_row = _joined_reasons(failures)
    if withheld.ne("").any():
        per_row["reason"] = _without_withheld(per_row["reason"], original, raw_bad, withheld)
    bad = raw_bad.loc[per_row.index]
    id_values = bad[spec.id_column] if spec.id_column else pd.Series("", index=bad.index)
    if spec.id_column:  # an id withheld as personal data keys the row by its line
        kept = original.loc[bad.index, spec.id_column] == id_values
        id_values = id_values.where(kept, "")
    row_key = id_values.where(id_values != "", "line " + bad[LINE_COLUMN].astype(str))
    # (source_file, row_key) is the quarantine's key: rows sharing an id get their line added
    shared = row_key.duplicated(keep=False)
    row_key = row_key.where(~shared, row_key + " (line " + bad[LINE_COLUMN].astype(str) + ")")
    shown = [c for c in bad.columns if c not in PII_COLUMNS and c != LINE_COLUMN]
    raw_values = [
        json.dumps(rec, ensure_ascii=False, sort_keys=True) for rec in bad[shown].to_dict("records")
    ]
    quarantine = pd.DataFrame(
        {
            "source_file": spec.filename,
            "row_key": row_key.astype(str).to_numpy(),
            "source_id": id_values.astype(str).to_numpy(),
            "line_number": bad[LINE_COLUMN].astype("int64").to_numpy(),
            "reason_code": per_row["reason_code"].astype(str).to_numpy(),
            "reason": per_row["reason"].astype(str).to_numpy(),
            "raw_values": raw_values,
        }
    )
    reason_counts = per_row["reason_code"].value_counts().to_dict()
    return quarantine, {str(k): int(v) for k, v in reason_counts.items()}


def _without_withheld(
    reasons: pd.Series, original: pd.DataFrame, masked: pd.DataFrame, notes: pd.Series
) -> pd.Series:
    """Each reason with the withheld cells' values replaced (a reason found with its own
    context, such as a conflicting duplicate's id, quotes the cell as read) and the row's note
    on what was withheld appended."""
    out = reasons.copy()
    for row in notes.index[notes.ne("")]:
        if row not in out.index:
            continue
        text = out[row]
        changed = original.loc[row] != masked.loc[row]
        for column in changed.index[changed.to_numpy(dtype=bool)]:
            value = original.at[row, column]
            if isinstance(value, str) and value:
                text = text.replace(value, masked.at[row, column])
        out[row] = f"{text}; {notes[row]}"
    return out


def _split(
    spec: FileSpec, rows: _Rows, failures: _Failures
) -> tuple[np.ndarray, pd.DataFrame, dict[str, int]]:
    """(mask of accepted rows, quarantine, reason counts)."""
    misaligned = np.zeros(len(rows), dtype=bool)
    if rows.misaligned:
        misaligned = np.isin(rows.number, np.fromiter(rows.misaligned, dtype=np.int64))
    bad = failures.any() | misaligned
    if not bad.any():
        return ~bad, _empty_quarantine(), {}
    parts, reasons = [], {}
    other = bad & ~misaligned  # a misaligned row's blank cells break other rules: not its reason
    if other.any():
        raw_bad = _text_frame(rows.raw, rows.number[other])
        quarantine, reasons = _assemble(spec, failures.frame(exclude=misaligned), raw_bad)
        parts.append(quarantine)
    if misaligned.any():
        parts.append(_misaligned_quarantine(spec, rows.misaligned))
        reasons[MISALIGNED] = len(rows.misaligned)
    quarantine = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    quarantine = quarantine.sort_values("line_number", kind="stable", ignore_index=True)
    return ~bad, quarantine, reasons


_TOO_MANY_FIELDS = (
    "an unquoted comma in a value (a name such as Smith, John), or a comma at the end of the line?"
)
_TOO_FEW_FIELDS = "a cell missing, or the line cut off (a file still being written?)"


def _misaligned_quarantine(spec: FileSpec, misaligned: dict[int, str]) -> pd.DataFrame:
    """The quarantine rows of the rows whose field count is not the header's (`_Rows.misaligned`):
    which of their cells is extra or missing cannot be known, so none was read and none is shown,
    and the reason says where to look. Built on whole columns: an export whose every line ends
    in a comma has as many of these as rows."""
    positions = np.fromiter(misaligned, dtype=np.int64, count=len(misaligned))
    texts = pd.Series(list(misaligned.values()), dtype=object)
    counts = texts.str.extract(r"^(\d+) fields where the header has (\d+)$").astype("int64")
    why = np.where(counts[0] > counts[1], _TOO_MANY_FIELDS, _TOO_FEW_FIELDS)
    lines = pd.Series(positions + 2)
    reason = (
        "wrong field count: line "
        + lines.map("{:,}".format)
        + f" of {spec.filename} has "
        + texts
        + ": "
        + why
        + " No cell of the row is read, since which one is extra or missing cannot be known"
    )
    return pd.DataFrame(
        {
            "source_file": spec.filename,
            "row_key": ("line " + lines.astype(str)).to_numpy(dtype=object),
            "source_id": "",
            "line_number": lines.to_numpy(dtype=np.int64),
            "reason_code": MISALIGNED,
            "reason": reason.to_numpy(dtype=object),
            "raw_values": "{}",
        }
    ).astype(
        {"source_file": object, "source_id": object, "reason_code": object, "raw_values": object}
    )


def _numbers(rows: _Rows, failures: _Failures, columns: list[str]) -> dict[str, np.ndarray]:
    parsed = {}
    for column in columns:
        values, not_a_number = raw_parsing.parse_numbers_text(rows.text[column])
        parsed[column] = values
        failures.add(f"not_a_number_{column}", not_a_number)
    return parsed


def _membership(
    failures: _Failures,
    values: pa.Array,
    known: pa.Array,
    rejected: pa.Array,
    unknown_code: str,
    rejected_code: str,
) -> None:
    present = _lengths(values) > 0
    in_known = pc.is_in(values, value_set=known).to_numpy(zero_copy_only=False)
    in_rejected = pc.is_in(values, value_set=rejected).to_numpy(zero_copy_only=False)
    is_rejected = present & in_rejected & ~in_known
    failures.add(unknown_code, present & ~in_known & ~is_rejected)
    failures.add(rejected_code, is_rejected)


def _keys(validation: FileValidation, column: str) -> tuple[pa.Array, pa.Array]:
    """(accepted keys, quarantined keys) of an upstream file."""
    accepted = validation.accepted_table.column(column)
    accepted = accepted.combine_chunks() if accepted.num_chunks != 1 else accepted.chunk(0)
    rejected = pa.array(validation.quarantine["source_id"].astype(str), pa.string())
    return accepted.cast(pa.string()), rejected


def _out_of_range(
    failures: _Failures, dates: np.ndarray, rules: IngestionRules, now: pd.Timestamp | None
) -> None:
    """Rows whose (parsed) date is before ``rules.earliest_date`` or after the run's date."""
    earliest = pd.Timestamp(rules.earliest_date)
    today = (pd.Timestamp.now() if now is None else pd.Timestamp(now)).normalize()
    day = _day(dates)
    early = day < earliest.to_datetime64()
    late = day > today.to_datetime64()

    def detail(positions: np.ndarray) -> np.ndarray:
        text = pd.Series(day[positions]).dt.strftime("%Y-%m-%d")
        return np.where(
            early[positions],
            "date out of range: " + text + f" is before {earliest:%Y-%m-%d}"
            " (the earliest accepted date)",
            "date out of range: " + text + f" is after {today:%Y-%m-%d} (the date of the run)",
        )

    failures.add("date_out_of_range", early | late, detail)


def _implausible(failures: _Failures, checks: list[tuple[np.ndarray, np.ndarray, str]]) -> None:
    """Rows where ``value > bound`` for any (value, bound, what) in ``checks``; the detail names
    the cell and the bound the row broke first."""
    first = np.full(len(failures.rows), -1, dtype=np.int64)
    for i, (value, bound, _) in enumerate(checks):
        with np.errstate(invalid="ignore"):
            above = value > bound
        first = np.where((first < 0) & above, i, first)

    def detail(positions: np.ndarray) -> np.ndarray:
        texts = []
        for position in positions:
            value, bound, what = checks[first[position]]
            texts.append(
                f"implausible value: {what} {value[position]:,.6g} is above {bound[position]:,.6g}"
            )
        return np.array(texts, dtype=object)

    failures.add("implausible_value", first >= 0, detail)


def _day(timestamps: np.ndarray) -> np.ndarray:
    """The calendar day (midnight) of each timestamp."""
    return timestamps.astype("datetime64[D]").astype("datetime64[ns]")


def _full(rows: _Rows, value: float) -> np.ndarray:
    return np.full(len(rows), float(value))


def _finish(spec: FileSpec, rows: _Rows, failures: _Failures) -> tuple[np.ndarray, FileValidation]:
    """(mask of the accepted rows, the file's validation without its accepted table).

    The raw table is let go here (`_Rows.raw`; ``rows_read`` keeps its row count): what is left
    to build is the accepted table, from the parsed columns. Holding the raw text and the
    validators' intermediate columns while it was built and checked raised a validation's peak
    on the 1x benchmark year by about 0.3 GB."""
    accepted, quarantine, reasons = _split(spec, rows, failures)
    rows_read, rows.raw = rows.raw.num_rows, None
    validation = FileValidation(
        source_file=spec.filename,
        accepted_table=pa.table({}),
        quarantine=quarantine,
        rows_read=rows_read,
        rows_accepted=int(accepted.sum()),
        rows_quarantined=len(quarantine),
        duplicates_removed=rows.duplicates_removed,
        reason_counts=reasons,
    )
    return accepted, validation


def _arrow_column(values, accepted: np.ndarray) -> pa.Array:
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values.filter(pa.array(accepted))
    return pa.array(values[accepted], from_pandas=True)


def _blank_is_null(values: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(pc.binary_length(values), 0), pa.scalar(None, pa.string()), values)


def _checked(model, table: pa.Table) -> pa.Table:
    """Accepted rows must pass the validated model entirely: a failure is a bug, so it raises."""
    schemas.validate_arrow(model, table)
    return table


# ---------------------------------------------------------------------------------------
# The four files
# ---------------------------------------------------------------------------------------


def validate_campaigns(
    raw: pa.Table | pd.DataFrame, *, rules: IngestionRules = IngestionRules(), now=None
) -> FileValidation:
    """A campaign's created_at is metadata, not activity: it is not range-checked (``now`` is
    accepted for a signature shared with the other files)."""
    spec = FILE_SPECS["campaigns"]
    columns = ["id", "user_id", "project_name", "daily_budget", "platform", "name", "created_at"]
    rows = _rows(raw, spec, columns)
    del raw  # `rows` holds it until the rows are split (`_finish`)
    failures = _Failures(rows)
    numbers = _numbers(rows, failures, ["daily_budget"])
    created_at = raw_parsing.parse_timestamps_text(rows.text["created_at"])
    candidate = pd.DataFrame(
        {
            "campaign_id": rows.string("id"),
            "user_id": rows.string("user_id"),
            "project_name": rows.string("project_name"),
            "daily_budget": numbers["daily_budget"],
            "created_at": created_at,
        }
    )
    failures.add_all(schemas.campaign_row_failures(candidate))
    _add_conflicts(failures, rows, spec)
    # created_at is optional: blank is fine, but text that is not a date is a defect
    failures.add("unparseable_date", ~rows.blank("created_at") & np.isnat(created_at))
    _implausible(
        failures, [(numbers["daily_budget"], _full(rows, rules.max_amount), "daily_budget")]
    )
    accepted, validation = _finish(spec, rows, failures)
    platform = rows.text["platform"]
    platform = pc.if_else(pc.equal(pc.binary_length(platform), 0), "Unknown", platform)
    table = pa.table(
        {
            "campaign_id": _arrow_column(rows.text["id"], accepted),
            "user_id": _arrow_column(rows.text["user_id"], accepted),
            "project_name": _arrow_column(rows.text["project_name"], accepted),
            "daily_budget": _arrow_column(numbers["daily_budget"], accepted),
            "platform": _arrow_column(platform, accepted),
            "campaign_name": _arrow_column(_blank_is_null(rows.text["name"]), accepted),
            "created_at": _arrow_column(created_at, accepted),
        }
    )
    validation.accepted_table = _checked(schemas.ValidatedCampaigns, table)
    return validation


def _campaign_budget(rows: _Rows, campaigns: FileValidation) -> np.ndarray:
    """Each row's campaign's daily budget (NaN when the campaign is not accepted)."""
    table = campaigns.accepted_table
    if table.num_rows == 0:
        return np.full(len(rows), np.nan)
    ids = table.column("campaign_id").combine_chunks().cast(pa.string())
    position = pc.index_in(rows.text["campaign_id"], value_set=ids)
    budgets = table.column("daily_budget").combine_chunks().cast(pa.float64())
    return pc.take(budgets, position).to_numpy(zero_copy_only=False)


def _campaign_rows_rules(failures, rows, spec, campaigns, days, rules, now) -> None:
    """The rules every file keyed by campaign shares: a conflicting duplicate, an unknown or
    rejected campaign, a day outside the accepted range."""
    _add_conflicts(failures, rows, spec)
    known, rejected = _keys(campaigns, "campaign_id")
    _membership(
        failures, rows.text["campaign_id"], known, rejected, "unknown_campaign", "rejected_campaign"
    )
    _out_of_range(failures, days, rules, now)


def validate_insights(
    raw: pa.Table | pd.DataFrame,
    campaigns: FileValidation,
    *,
    rules: IngestionRules = IngestionRules(),
    now: pd.Timestamp | None = None,
) -> FileValidation:
    """Rows of one campaign and day are ad-set parts and are summed after validation.

    A part whose impressions/clicks/conversions cell is blank makes that day's total unknown
    (null), because adding the known parts would under-count and look like a real drop.
    """
    spec = FILE_SPECS["insights"]
    count_columns = ["impressions", "clicks", "conversions"]
    rows = _rows(raw, spec, ["id", "campaign_id", "created_at", "spend", *count_columns])
    del raw  # `rows` holds it until the rows are split (`_finish`)
    failures = _Failures(rows)
    numbers = _numbers(rows, failures, ["spend", *count_columns])
    timestamps = raw_parsing.parse_timestamps_text(rows.text["created_at"])
    dates = _day(timestamps)
    candidate = pd.DataFrame({"campaign_id": rows.string("campaign_id"), "date": dates, **numbers})
    failures.add_all(schemas.insight_row_failures(candidate))
    _campaign_rows_rules(failures, rows, spec, campaigns, dates, rules, now)
    budget = _campaign_budget(rows, campaigns)
    budget_known = ~np.isnan(budget) & (budget > 0)
    spend_cap = np.where(budget_known, rules.max_spend_budget_multiple * budget, rules.max_amount)
    spend_cap = np.minimum(spend_cap, rules.max_amount)
    spend = numbers["spend"]
    _implausible(
        failures,
        [
            (
                np.where(budget_known, spend, np.nan),
                spend_cap,
                f"spend (more than {rules.max_spend_budget_multiple:g}x the daily budget)",
            ),
            (np.where(budget_known, np.nan, spend), spend_cap, "spend"),
            *((numbers[c], _full(rows, rules.max_count), c) for c in count_columns),
        ],
    )
    accepted, validation = _finish(spec, rows, failures)
    parts = candidate[accepted].reset_index(drop=True)
    del rows, failures, candidate, numbers, timestamps, dates, budget, spend_cap, spend
    days = sum_campaign_day_parts(parts)
    del parts
    validation.accepted_table = _checked(schemas.ValidatedInsights, validated_arrow(days))
    return validation


def _sorted_codes(values: pd.Series) -> tuple[np.ndarray, pa.Array]:
    """(code of each value, the distinct values sorted); codes follow the sort order."""
    encoded = pc.dictionary_encode(pa.array(values, type=pa.string(), from_pandas=True))
    encoded = encoded.combine_chunks() if isinstance(encoded, pa.ChunkedArray) else encoded
    order = pc.sort_indices(encoded.dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    codes = rank[encoded.indices.to_numpy(zero_copy_only=False)]
    return codes, encoded.dictionary.take(pa.array(order))


def sum_campaign_day_parts(parts: pd.DataFrame) -> pd.DataFrame:
    """Sum ad-set parts per campaign and day; an unknown part makes the total unknown.

    Grouped on integer codes of (campaign, day) whose order is the (campaign_id, date) order;
    pandas adds each group's parts in file order, with compensated summation."""
    value_columns = ["spend", "impressions", "clicks", "conversions"]
    codes, campaign_ids = _sorted_codes(parts["campaign_id"])
    day = parts["date"].to_numpy("datetime64[ns]").view(np.int64)
    values = parts[value_columns].reset_index(drop=True)
    keys = [pd.Series(codes, name="c"), pd.Series(day, name="d")]
    grouped = values.groupby(keys, sort=True)
    totals = grouped.sum(min_count=1)
    any_unknown = values.isna().groupby(keys, sort=True).any()
    totals = totals.mask(any_unknown.reindex(totals.index))
    n_parts = grouped.size().astype("int64")
    group_codes = totals.index.get_level_values("c").to_numpy()
    group_days = totals.index.get_level_values("d").to_numpy()
    out = pd.DataFrame(
        {
            "campaign_id": pd.Series(
                pd.arrays.ArrowExtensionArray(campaign_ids.take(pa.array(group_codes)))
            ),
            "date": group_days.view("datetime64[ns]"),
            **{c: totals[c].to_numpy("float64") for c in value_columns},
            "n_parts": n_parts.to_numpy(),
        }
    )
    return out


def validate_leads(
    raw: pa.Table | pd.DataFrame,
    campaigns: FileValidation,
    *,
    rules: IngestionRules = IngestionRules(),
    now: pd.Timestamp | None = None,
) -> FileValidation:
    """Personal data (name, email, phone) is dropped here and goes no further."""
    spec = FILE_SPECS["campaign_leads"]
    rows = _rows(raw, spec, ["id", "campaign_id", "lead_status", "added_date", "deal_value"])
    del raw  # `rows` holds it until the rows are split (`_finish`)
    failures = _Failures(rows)
    numbers = _numbers(rows, failures, ["deal_value"])
    status = raw_parsing.upper_text(rows.text["lead_status"])
    added = raw_parsing.parse_timestamps_text(rows.text["added_date"])
    added = _day(added)
    candidate = pd.DataFrame(
        {
            "lead_id": rows.string("id"),
            "campaign_id": rows.string("campaign_id"),
            "lead_status": pd.Series(pd.arrays.ArrowExtensionArray(status)),
            "added_date": added,
            "deal_value": numbers["deal_value"],
        }
    )
    failures.add_all(schemas.lead_row_failures(candidate))
    _campaign_rows_rules(failures, rows, spec, campaigns, added, rules, now)
    _implausible(failures, [(numbers["deal_value"], _full(rows, rules.max_amount), "deal_value")])
    accepted, validation = _finish(spec, rows, failures)
    del candidate, failures
    table = pa.table(
        {
            "lead_id": _arrow_column(rows.text["id"], accepted),
            "campaign_id": _arrow_column(rows.text["campaign_id"], accepted),
            "lead_status": _arrow_column(status, accepted),
            "added_date": _arrow_column(added, accepted),
            "deal_value": _arrow_column(numbers["deal_value"], accepted),
        }
    )
    del rows, numbers, status, added
    validation.accepted_table = _checked(schemas.ValidatedLeads, table)
    return validation


def validate_lead_status_changes(
    raw: pa.Table | pd.DataFrame,
    leads: FileValidation,
    *,
    rules: IngestionRules = IngestionRules(),
    now: pd.Timestamp | None = None,
) -> FileValidation:
    spec = FILE_SPECS["lead_status_changes"]
    rows = _rows(raw, spec, ["id", "lead_id", "old_status", "new_status", "created_at"])
    del raw  # `rows` holds it until the rows are split (`_finish`)
    failures = _Failures(rows)
    changed_at = raw_parsing.parse_timestamps_text(rows.text["created_at"])
    new_status = raw_parsing.upper_text(rows.text["new_status"])
    candidate = pd.DataFrame(
        {
            "change_id": rows.string("id"),
            "lead_id": rows.string("lead_id"),
            "new_status": pd.Series(pd.arrays.ArrowExtensionArray(new_status)),
            "changed_at": changed_at,
        }
    )
    failures.add_all(schemas.lead_status_change_row_failures(candidate))
    _add_conflicts(failures, rows, spec)
    known, rejected = _keys(leads, "lead_id")
    _membership(failures, rows.text["lead_id"], known, rejected, "unknown_lead", "rejected_lead")
    _out_of_range(failures, changed_at, rules, now)
    accepted, validation = _finish(spec, rows, failures)
    del candidate, failures
    old_status = _blank_is_null(raw_parsing.upper_text(rows.text["old_status"]))
    table = pa.table(
        {
            "change_id": _arrow_column(_blank_is_null(rows.text["id"]), accepted),
            "lead_id": _arrow_column(rows.text["lead_id"], accepted),
            "old_status": _arrow_column(old_status, accepted),
            "new_status": _arrow_column(new_status, accepted),
            "changed_at": _arrow_column(changed_at, accepted),
            "date": _arrow_column(_day(changed_at), accepted),
        }
    )
    del rows, old_status, new_status, changed_at
    order = pc.sort_indices(
        table, sort_keys=[("lead_id", "ascending"), ("changed_at", "ascending")]
    )
    table = table.take(order)
    validation.accepted_table = _checked(schemas.ValidatedLeadStatusChanges, table)
    return validation


# ---------------------------------------------------------------------------------------
# Whole folder
# ---------------------------------------------------------------------------------------


@dataclass
class IngestionResult:
    campaigns: pd.DataFrame
    insights: pd.DataFrame
    leads: pd.DataFrame
    lead_status_changes: pd.DataFrame
    quarantine: pd.DataFrame
    files: dict[str, FileValidation]

    @property
    def accounting(self) -> pd.DataFrame:
        return pd.DataFrame([v.accounting for v in self.files.values()])


def combine_quarantine(parts: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [p for p in parts if len(p)]
    if not frames:
        return _empty_quarantine()
    out = pd.concat(frames, ignore_index=True)
    return schemas.validate_frame(
        schemas.Quarantine,
        out.sort_values(["source_file", "line_number"], kind="stable").reset_index(drop=True),
    )


def personal_data_in_quarantine(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(personal columns found in any row's raw_values, "file line N" of the rows of a file with
    personal columns whose shown values or reason hold a value shaped like personal data).
    Both empty for a quarantine fit to publish; `_withhold_personal` keeps them so."""
    if not len(table):
        return [], []
    columns = [c for c in PII_COLUMNS if table["raw_values"].str.contains(f'"{c}":').any()]
    personal_files = {spec.filename for spec in FILE_SPECS.values() if spec.personal}
    rows = table[table["source_file"].isin(personal_files)]
    shaped = [
        f"{file} line {line}"
        for file, line, values, reason in zip(
            rows["source_file"],
            rows["line_number"],
            rows["raw_values"],
            rows["reason"],
            strict=True,
        )
        if personal_data.shaped_fields(values) or personal_data.quotes_personal(reason)
    ]
    return columns, shaped


def ingest_raw_dir(
    raw_dir: Path | str | Location,
    *,
    rules: IngestionRules = IngestionRules(),
    now: pd.Timestamp | None = None,
) -> IngestionResult:
    """Read and validate the four files of a raw folder (used by tests and benchmarks)."""
    raw_dir = Location(raw_dir)
    raws = {key: read_raw_table(raw_dir / spec.filename, spec) for key, spec in FILE_SPECS.items()}
    bounds = {"rules": rules, "now": now}
    campaigns = validate_campaigns(raws["campaigns"], **bounds)
    insights = validate_insights(raws["insights"], campaigns, **bounds)
    leads = validate_leads(raws["campaign_leads"], campaigns, **bounds)
    changes = validate_lead_status_changes(raws["lead_status_changes"], leads, **bounds)
    files = {
        "campaigns": campaigns,
        "insights": insights,
        "campaign_leads": leads,
        "lead_status_changes": changes,
    }
    return IngestionResult(
        campaigns=campaigns.accepted,
        insights=insights.accepted,
        leads=leads.accepted,
        lead_status_changes=changes.accepted,
        quarantine=combine_quarantine([v.quarantine for v in files.values()]),
        files=files,
    )


def _empty_quarantine() -> pd.DataFrame:
    return (
        pd.DataFrame(
            {
                "source_file": pd.Series(dtype=str),
                "row_key": pd.Series(dtype=str),
                "source_id": pd.Series(dtype=str),
                "line_number": pd.Series(dtype="int64"),
                "reason_code": pd.Series(dtype=str),
                "reason": pd.Series(dtype=str),
                "raw_values": pd.Series(dtype=str),
            }
        )
        .astype(object)
        .astype({"line_number": "int64"})
    )
