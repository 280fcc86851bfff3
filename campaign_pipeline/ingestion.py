"""Reading the Leadsmart exports and turning them into validated tables plus a quarantine.

Pure pandas; no Dagster. The assets in ``assets/ingestion.py`` call these functions.

Why it is built this way:

* Files are read as text first (``dtype=str``) so that nothing is silently coerced: a blank
  cell stays null (blank is not zero), and a cell that is not a number or a date is caught
  and explained instead of turning into NaN unnoticed.
* Every row of a file ends in exactly one of three places: accepted, quarantined (with a
  reason), or removed as an exact re-delivery of another row with the same ``id``. The
  counts are returned so the caller can prove ``read = accepted + quarantined + duplicates``.
* Row-local rules are pandera checks (``schemas.py``) run lazily, so one pass collects every
  defect of every row; rules that need another file or the whole file live here.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from campaign_pipeline import schemas
from campaign_pipeline.constants import PII_COLUMNS, RAW_FILES
from campaign_pipeline.locations import Location

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


FILE_SPECS: dict[str, FileSpec] = {
    "campaigns": FileSpec(
        "campaigns",
        RAW_FILES["campaigns"],
        required=("id", "user_id", "project_name", "daily_budget"),
        optional=("platform", "name", "created_at"),
        id_column="id",
    ),
    "insights": FileSpec(
        "insights",
        RAW_FILES["insights"],
        required=("campaign_id", "created_at", "spend"),
        optional=("id", "impressions", "clicks", "conversions"),
        id_column="id",
    ),
    "campaign_leads": FileSpec(
        "campaign_leads",
        RAW_FILES["campaign_leads"],
        required=("id", "campaign_id", "lead_status", "added_date"),
        optional=("name", "email", "phone", "deal_value"),
        id_column="id",
    ),
    "lead_status_changes": FileSpec(
        "lead_status_changes",
        RAW_FILES["lead_status_changes"],
        required=("lead_id", "new_status", "created_at"),
        optional=("id", "old_status"),
        id_column="id",
    ),
}

LINE_COLUMN = "_line"


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


# ---------------------------------------------------------------------------------------
# Reading and parsing
# ---------------------------------------------------------------------------------------


def _normalise_header(name: str) -> str:
    return name.replace("\ufeff", "").strip().lower()


def read_raw_file(path: Path | str | Location, spec: FileSpec) -> pd.DataFrame:
    """Read one export as text: headers cleaned (BOM, stray spaces, case), cells stripped.
    ``path`` is a local path or an object-store URL (``Location``).

    Adds ``_line``: the row's line in the file, the header being line 1, so a quarantined
    row can be found by someone opening the CSV.
    """
    path = Location(path)
    if not path.is_file():
        raise RawFileError(path, "file not found")
    try:
        with path.open() as handle:
            frame = pd.read_csv(
                handle,
                dtype=str,
                keep_default_na=False,
                na_values=[],
                encoding="utf-8-sig",
                skip_blank_lines=True,
                on_bad_lines="error",
            )
    except UnicodeDecodeError as exc:
        raise RawFileError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except pd.errors.EmptyDataError as exc:
        raise RawFileError(path, "file is empty (no header row)") from exc
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RawFileError(path, f"not a readable CSV: {first_line}") from exc
    except OSError as exc:
        raise RawFileError(path, f"cannot be read: {exc.strerror or exc}") from exc

    frame.columns = [_normalise_header(str(c)) for c in frame.columns]
    duplicated = frame.columns[frame.columns.duplicated()].tolist()
    if duplicated:
        raise RawFileError(path, "column appears twice in the header", column=duplicated[0])
    for column in spec.required:
        if column not in frame.columns:
            raise RawFileError(path, "required column missing", column=column)
    for column in spec.optional:
        if column not in frame.columns:
            frame[column] = ""
    frame = frame.apply(lambda s: s.str.strip())
    frame[LINE_COLUMN] = np.arange(2, len(frame) + 2, dtype="int64")
    return frame.reset_index(drop=True)


def check_raw_file(path: Path | str | Location, spec: FileSpec) -> None:
    """Check what can be checked without parsing the rows: the file exists, is UTF-8 text with
    a header, and has every required column. Raises ``RawFileError`` (one line) otherwise.

    The CLI runs this before Dagster starts so a missing file fails in a second, not after
    minutes of validating the others; the rows are parsed once, by the ingestion assets.
    """
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
        raise RawFileError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise RawFileError(path, f"not a readable CSV: {exc}") from exc
    except OSError as exc:
        raise RawFileError(path, f"cannot be read: {exc.strerror or exc}") from exc
    if not header:
        raise RawFileError(path, "file is empty (no header row)")
    columns = [_normalise_header(name) for name in header]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise RawFileError(path, "column appears twice in the header", column=repeated[0])
    for column in spec.required:
        if column not in columns:
            raise RawFileError(path, "required column missing", column=column)


_TIMESTAMP_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%m/%d/%Y")


def parse_timestamps(text: pd.Series) -> pd.Series:
    """Parse the contract's three formats; anything else (or blank) becomes NaT."""
    text = text.astype("string").str.strip()
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    for fmt in _TIMESTAMP_FORMATS:
        todo = parsed.isna()
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    return parsed.astype("datetime64[ns]")


def parse_numbers(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Return (values, not_a_number). Blank -> NaN and is fine; text or inf is flagged."""
    text = text.astype("string").str.strip().str.replace(",", "", regex=False)
    blank = text.isna() | (text == "")
    values = pd.to_numeric(text.where(~blank), errors="coerce").astype("float64")
    bad = ~blank & (values.isna() | np.isinf(values))
    return values.where(~bad), bad


def _blank_to_none(text: pd.Series) -> pd.Series:
    return text.where(text != "", None).astype(object)


# ---------------------------------------------------------------------------------------
# Shared machinery: duplicates, pandera failure cases, reasons
# ---------------------------------------------------------------------------------------


@dataclass
class FileValidation:
    """What validating one raw file produced."""

    source_file: str
    accepted: pd.DataFrame
    quarantine: pd.DataFrame
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    duplicates_removed: int
    reason_counts: dict[str, int] = field(default_factory=dict)

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


def _split_duplicates(
    raw: pd.DataFrame, id_column: str | None
) -> tuple[pd.DataFrame, pd.Series, int]:
    """Drop exact re-deliveries; mark ids whose rows disagree as conflicting.

    Returns (rows kept, conflict mask over the kept rows, number of duplicates removed).
    Rows with a blank id cannot be matched and are all kept.
    """
    if id_column is None:
        return raw, pd.Series(False, index=raw.index), 0
    content = [c for c in raw.columns if c != LINE_COLUMN]
    has_id = raw[id_column] != ""
    exact_repeat = has_id & raw.duplicated(subset=content, keep="first")
    kept = raw[~exact_repeat]
    ids = kept[id_column]
    conflict = (ids != "") & ids.duplicated(keep=False)
    return kept, conflict, int(exact_repeat.sum())


def _failure_rows(contract: type[pa.DataFrameModel], candidate: pd.DataFrame) -> pd.DataFrame:
    """Row index and reason code of every row-level failure pandera finds (lazy)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pandera's own concat of failure cases
            contract.validate(candidate, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        cases = cases[cases["index"].notna()]
        return pd.DataFrame(
            {"index": cases["index"].astype("int64"), "code": cases["check"].astype(str)}
        ).drop_duplicates()
    return pd.DataFrame({"index": pd.Series(dtype="int64"), "code": pd.Series(dtype=str)})


def _fmt(values: pd.Series) -> pd.Series:
    return values.astype("string").fillna("blank")


def _reason_texts(code: str, rows: pd.DataFrame, raw: pd.DataFrame, spec: FileSpec) -> pd.Series:
    """Plain-English reason for ``code`` on each row of ``rows`` (vectorized)."""
    r = raw.loc[rows.index]
    templates = {
        "missing_key": lambda: pd.Series(
            f"missing key: {_key_column(spec)} is blank", index=r.index
        ),
        "unparseable_date": lambda: (
            "unparseable date: '"
            + _fmt(r[_date_column(spec)])
            + "' is not YYYY-MM-DD[ HH:MM:SS] or MM/DD/YYYY"
        ),
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
        "conflicting_duplicate": lambda: (
            "conflicting duplicate: several rows share id '"
            + _fmt(r[spec.id_column or "id"])
            + "' with different values (none kept)"
        ),
    }
    if code in templates:
        return templates[code]()
    if code.startswith("not_a_number_"):
        column = code.removeprefix("not_a_number_")
        return f"{column} is not a number: '" + _fmt(r[column]) + "'"
    if code.startswith("missing_"):
        return pd.Series(f"{code.removeprefix('missing_')} is blank (required)", index=r.index)
    return pd.Series(code.replace("_", " "), index=r.index)


def _key_column(spec: FileSpec) -> str:
    """The column whose blank value makes a row unaddressable (the row contract's missing_key)."""
    return {"insights": "campaign_id", "lead_status_changes": "lead_id"}.get(spec.key, "id")


def _date_column(spec: FileSpec) -> str:
    return "added_date" if spec.key == "campaign_leads" else "created_at"


# Which reason is reported first when a row breaks several rules: the most fundamental.
_CODE_PRIORITY = [
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


def _assemble(
    spec: FileSpec,
    raw_kept: pd.DataFrame,
    candidate: pd.DataFrame,
    failures: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Split candidate rows into accepted and quarantined; build the quarantine rows."""
    if failures.empty:
        quarantine = _empty_quarantine()
        return candidate, quarantine, {}
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
                _reason_texts(code, rows.set_index("index"), raw_kept, spec).to_numpy(),
                index=rows.index,
            )
        )
    generic = pd.concat(texts).reindex(failures.index)
    # a failure found with its own context (a bound, the run's date) carries its own text
    failures["text"] = failures["detail"].where(failures["detail"].notna(), generic)
    per_row = failures.groupby("index", sort=True).agg(
        reason_code=("code", "first"), reason=("text", lambda t: "; ".join(t))
    )
    bad = raw_kept.loc[per_row.index]
    id_values = bad[spec.id_column] if spec.id_column else pd.Series("", index=bad.index)
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
    accepted = candidate.drop(index=per_row.index)
    reason_counts = per_row["reason_code"].value_counts().to_dict()
    return accepted, quarantine, {str(k): int(v) for k, v in reason_counts.items()}


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


def _number_columns(
    raw: pd.DataFrame, columns: list[str]
) -> tuple[dict[str, pd.Series], pd.DataFrame]:
    parsed, bad_rows = {}, []
    for column in columns:
        values, bad = parse_numbers(raw[column])
        parsed[column] = values
        if bad.any():
            bad_rows.append(
                pd.DataFrame({"index": raw.index[bad.to_numpy()], "code": f"not_a_number_{column}"})
            )
    failures = pd.concat(bad_rows) if bad_rows else pd.DataFrame(columns=["index", "code"])
    return parsed, failures


def _membership_failures(
    values: pd.Series, known: set[str], rejected: set[str], unknown_code: str, rejected_code: str
) -> pd.DataFrame:
    present = values != ""
    is_rejected = present & values.isin(rejected) & ~values.isin(known)
    is_unknown = present & ~values.isin(known) & ~is_rejected
    return pd.concat(
        [
            pd.DataFrame({"index": values.index[is_unknown.to_numpy()], "code": unknown_code}),
            pd.DataFrame({"index": values.index[is_rejected.to_numpy()], "code": rejected_code}),
        ]
    )


def _campaign_membership(kept: pd.DataFrame, campaigns: FileValidation) -> pd.DataFrame:
    """Rows whose campaign is not in campaigns.csv, or was quarantined there."""
    return _membership_failures(
        kept["campaign_id"],
        set(campaigns.accepted["campaign_id"]),
        set(campaigns.quarantine["source_id"]),
        "unknown_campaign",
        "rejected_campaign",
    )


def _conflict_failures(conflict: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {"index": conflict.index[conflict.to_numpy()], "code": "conflicting_duplicate"}
    )


def _out_of_range_failures(
    dates: pd.Series, rules: IngestionRules, now: pd.Timestamp | None
) -> pd.DataFrame:
    """Rows whose (parsed) date is before ``rules.earliest_date`` or after the run's date."""
    earliest = pd.Timestamp(rules.earliest_date)
    today = (pd.Timestamp.now() if now is None else pd.Timestamp(now)).normalize()
    day = dates.dt.normalize()
    early, late = day < earliest, day > today
    bad = (early | late).to_numpy()
    detail = np.where(
        early[bad],
        "date out of range: " + day[bad].dt.strftime("%Y-%m-%d") + f" is before {earliest:%Y-%m-%d}"
        " (the earliest accepted date)",
        "date out of range: " + day[bad].dt.strftime("%Y-%m-%d") + f" is after {today:%Y-%m-%d}"
        " (the date of the run)",
    )
    return pd.DataFrame({"index": dates.index[bad], "code": "date_out_of_range", "detail": detail})


def _implausible_failures(checks: list[tuple[pd.Series, pd.Series, str]]) -> pd.DataFrame:
    """Rows where ``value > bound`` for any (value, bound, what) in ``checks``; the detail names
    the cell and the bound it broke."""
    frames = []
    for value, bound, what in checks:
        with np.errstate(invalid="ignore"):
            bad = (value > bound).fillna(False).to_numpy(bool)
        if bad.any():
            detail = (
                f"implausible value: {what} "
                + value[bad].map(lambda v: f"{v:,.6g}")
                + " is above "
                + bound[bad].map(lambda v: f"{v:,.6g}")
            )
            frames.append(
                pd.DataFrame(
                    {"index": value.index[bad], "code": "implausible_value", "detail": detail}
                )
            )
    if not frames:
        return pd.DataFrame(columns=["index", "code", "detail"])
    # one row per defective row: the first bound it broke explains it
    return pd.concat(frames).drop_duplicates("index")


def _bound(index: pd.Index, value: float) -> pd.Series:
    return pd.Series(float(value), index=index)


def _collect(*frames: pd.DataFrame) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(
            {
                "index": pd.Series(dtype="int64"),
                "code": pd.Series(dtype=str),
                "detail": pd.Series(dtype=object),
            }
        )
    out = pd.concat(frames, ignore_index=True)
    if "detail" not in out.columns:
        out["detail"] = None
    return out.astype({"index": "int64", "code": str})


def _result(
    spec, raw, kept, candidate, failures, duplicates
) -> tuple[FileValidation, pd.DataFrame]:
    accepted, quarantine, reasons = _assemble(spec, kept, candidate, failures)
    validation = FileValidation(
        source_file=spec.filename,
        accepted=accepted,
        quarantine=quarantine,
        rows_read=len(raw),
        rows_accepted=len(accepted),
        rows_quarantined=len(quarantine),
        duplicates_removed=duplicates,
        reason_counts=reasons,
    )
    return validation, accepted


# ---------------------------------------------------------------------------------------
# The four files
# ---------------------------------------------------------------------------------------


def validate_campaigns(
    raw: pd.DataFrame, *, rules: IngestionRules = IngestionRules(), now=None
) -> FileValidation:
    """A campaign's created_at is metadata, not activity: it is not range-checked (``now`` is
    accepted for a signature shared with the other files)."""
    spec = FILE_SPECS["campaigns"]
    kept, conflict, duplicates = _split_duplicates(raw, spec.id_column)
    numbers, number_failures = _number_columns(kept, ["daily_budget"])
    candidate = pd.DataFrame(
        {
            "campaign_id": _blank_to_none(kept["id"]),
            "user_id": _blank_to_none(kept["user_id"]),
            "project_name": _blank_to_none(kept["project_name"]),
            "daily_budget": numbers["daily_budget"],
            "platform": kept["platform"].where(kept["platform"] != "", "Unknown"),
            "campaign_name": _blank_to_none(kept["name"]),
            "created_at": parse_timestamps(kept["created_at"]),
        },
        index=kept.index,
    )
    # created_at is optional: blank is fine, but text that is not a date is a defect
    bad_created = (kept["created_at"] != "") & candidate["created_at"].isna()
    failures = _collect(
        _failure_rows(schemas.CampaignRowContract, candidate),
        number_failures,
        _conflict_failures(conflict),
        pd.DataFrame({"index": kept.index[bad_created.to_numpy()], "code": "unparseable_date"}),
        _implausible_failures(
            [(numbers["daily_budget"], _bound(kept.index, rules.max_amount), "daily_budget")]
        ),
    )
    validation, accepted = _result(spec, raw, kept, candidate, failures, duplicates)
    accepted = accepted.astype(
        {"campaign_id": str, "user_id": str, "project_name": str, "platform": str}
    )
    validation.accepted = schemas.ValidatedCampaigns.validate(accepted.reset_index(drop=True))
    return validation


def validate_insights(
    raw: pd.DataFrame,
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
    kept, conflict, duplicates = _split_duplicates(raw, spec.id_column)
    count_columns = ["impressions", "clicks", "conversions"]
    numbers, number_failures = _number_columns(kept, ["spend", *count_columns])
    timestamps = parse_timestamps(kept["created_at"])
    candidate = pd.DataFrame(
        {
            "campaign_id": _blank_to_none(kept["campaign_id"]),
            "date": timestamps.dt.normalize(),
            **numbers,
        },
        index=kept.index,
    )
    budget = kept["campaign_id"].map(
        campaigns.accepted.set_index("campaign_id")["daily_budget"]
        if len(campaigns.accepted)
        else pd.Series(dtype=float)
    )
    budget_known = budget.notna() & (budget > 0)
    spend_cap = (rules.max_spend_budget_multiple * budget).where(budget_known, rules.max_amount)
    spend_cap = spend_cap.clip(upper=rules.max_amount).astype(float)
    failures = _collect(
        _failure_rows(schemas.InsightRowContract, candidate),
        number_failures,
        _conflict_failures(conflict),
        _campaign_membership(kept, campaigns),
        _out_of_range_failures(candidate["date"], rules, now),
        _implausible_failures(
            [
                (
                    numbers["spend"].where(budget_known),
                    spend_cap,
                    f"spend (more than {rules.max_spend_budget_multiple:g}x the daily budget)",
                ),
                (numbers["spend"].where(~budget_known), spend_cap, "spend"),
                *((numbers[c], _bound(kept.index, rules.max_count), c) for c in count_columns),
            ]
        ),
    )
    validation, accepted = _result(spec, raw, kept, candidate, failures, duplicates)
    validation.accepted = schemas.ValidatedInsights.validate(sum_campaign_day_parts(accepted))
    return validation


def sum_campaign_day_parts(parts: pd.DataFrame) -> pd.DataFrame:
    """Sum ad-set parts per campaign and day; an unknown part makes the total unknown."""
    value_columns = ["spend", "impressions", "clicks", "conversions"]
    keys = ["campaign_id", "date"]
    parts = parts.astype({"campaign_id": str})
    grouped = parts.groupby(keys, sort=True)
    totals = grouped[value_columns].sum(min_count=1)
    any_unknown = parts[value_columns].isna().groupby([parts[k] for k in keys]).any()
    totals = totals.mask(any_unknown.reindex(totals.index))
    totals["n_parts"] = grouped.size().astype("int64")
    out = totals.reset_index()
    return out[["campaign_id", "date", *value_columns, "n_parts"]].astype(
        {c: "float64" for c in value_columns}
    )


def validate_leads(
    raw: pd.DataFrame,
    campaigns: FileValidation,
    *,
    rules: IngestionRules = IngestionRules(),
    now: pd.Timestamp | None = None,
) -> FileValidation:
    """Personal data (name, email, phone) is dropped here and goes no further."""
    spec = FILE_SPECS["campaign_leads"]
    kept, conflict, duplicates = _split_duplicates(raw, spec.id_column)
    numbers, number_failures = _number_columns(kept, ["deal_value"])
    candidate = pd.DataFrame(
        {
            "lead_id": _blank_to_none(kept["id"]),
            "campaign_id": _blank_to_none(kept["campaign_id"]),
            "lead_status": _blank_to_none(kept["lead_status"].str.upper()),
            "added_date": parse_timestamps(kept["added_date"]).dt.normalize(),
            "deal_value": numbers["deal_value"],
        },
        index=kept.index,
    )
    failures = _collect(
        _failure_rows(schemas.LeadRowContract, candidate),
        number_failures,
        _conflict_failures(conflict),
        _campaign_membership(kept, campaigns),
        _out_of_range_failures(candidate["added_date"], rules, now),
        _implausible_failures(
            [(numbers["deal_value"], _bound(kept.index, rules.max_amount), "deal_value")]
        ),
    )
    validation, accepted = _result(spec, raw, kept, candidate, failures, duplicates)
    accepted = accepted.astype({"lead_id": str, "campaign_id": str, "lead_status": str})
    validation.accepted = schemas.ValidatedLeads.validate(accepted.reset_index(drop=True))
    return validation


def validate_lead_status_changes(
    raw: pd.DataFrame,
    leads: FileValidation,
    *,
    rules: IngestionRules = IngestionRules(),
    now: pd.Timestamp | None = None,
) -> FileValidation:
    spec = FILE_SPECS["lead_status_changes"]
    kept, conflict, duplicates = _split_duplicates(raw, spec.id_column)
    changed_at = parse_timestamps(kept["created_at"])
    candidate = pd.DataFrame(
        {
            "change_id": _blank_to_none(kept["id"]),
            "lead_id": _blank_to_none(kept["lead_id"]),
            "old_status": _blank_to_none(kept["old_status"].str.upper()),
            "new_status": _blank_to_none(kept["new_status"].str.upper()),
            "changed_at": changed_at,
            "date": changed_at.dt.normalize(),
        },
        index=kept.index,
    )
    known = set(leads.accepted["lead_id"])
    rejected = set(leads.quarantine["source_id"])
    failures = _collect(
        _failure_rows(schemas.LeadStatusChangeRowContract, candidate),
        _conflict_failures(conflict),
        _membership_failures(kept["lead_id"], known, rejected, "unknown_lead", "rejected_lead"),
        _out_of_range_failures(candidate["changed_at"], rules, now),
    )
    validation, accepted = _result(spec, raw, kept, candidate, failures, duplicates)
    accepted = accepted.astype({"lead_id": str, "new_status": str})
    accepted = accepted.sort_values(["lead_id", "changed_at"], kind="stable").reset_index(drop=True)
    validation.accepted = schemas.ValidatedLeadStatusChanges.validate(accepted)
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
    return schemas.Quarantine.validate(
        out.sort_values(["source_file", "line_number"], kind="stable").reset_index(drop=True)
    )


def ingest_raw_dir(
    raw_dir: Path | str | Location,
    *,
    rules: IngestionRules = IngestionRules(),
    now: pd.Timestamp | None = None,
) -> IngestionResult:
    """Read and validate the four files of a raw folder (used by tests and benchmarks)."""
    raw_dir = Location(raw_dir)
    raws = {key: read_raw_file(raw_dir / spec.filename, spec) for key, spec in FILE_SPECS.items()}
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
