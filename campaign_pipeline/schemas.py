"""pandera contracts for the ingestion boundary.

Two kinds of model per file:

* a *row contract* (``*RowContract``) that runs lazily on the parsed rows of one raw file.
  Every failing check names a stable reason code (the check name), so the row-level failure
  cases pandera collects become the quarantine's reasons directly: one validation pass
  reports every defect of every row, instead of stopping at the first.
* a *validated* model (``Validated*``) for what the validated layer publishes downstream.
  Accepted rows must pass it entirely; a failure there is a bug in ingestion, not bad input,
  so it raises instead of quarantining.

Checks that need another file (unknown campaign, unknown lead) or the whole file
(conflicting duplicates) are not row-local and live in ``ingestion.py``.

Ingestion evaluates each row contract as boolean masks (``*_row_failures`` below) instead of
running pandera on the rows: pandera's lazy run builds a failure-case frame cell by cell and
checks text columns element by element in Python, which took most of a minute per million
rows; the masks take milliseconds. The contract stays the documented rule set, and tests
check on random rows that the masks fail exactly the (row, check) pairs pandera fails.
Likewise the validated models run on Arrow-backed text (``validate_arrow``): the same checks,
without turning millions of strings into Python objects first.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
from pandera.typing import Series

from campaign_pipeline import personal_data
from campaign_pipeline.constants import PII_COLUMNS
from campaign_pipeline.raw_parsing import repeated_text


def _present(series: pd.Series) -> pd.Series:
    return series.notna() & (series.astype("string").str.len() > 0)


class _RowContract(pa.DataFrameModel):
    class Config:
        strict = False  # the parsed frame carries helper columns (line numbers, raw text)
        coerce = False


# ---------------------------------------------------------------------------------------
# Row contracts (parsed raw rows; NaN/NaT where a cell was blank or unparseable)
# ---------------------------------------------------------------------------------------


class CampaignRowContract(_RowContract):
    """One row of campaigns.csv after parsing."""

    campaign_id: Series[object] = pa.Field(nullable=True, description="`id` column")
    user_id: Series[object] = pa.Field(nullable=True)
    project_name: Series[object] = pa.Field(nullable=True)
    daily_budget: Series[float] = pa.Field(nullable=True, description="blank stays null")
    created_at: Series[pa.DateTime] = pa.Field(nullable=True)

    @pa.check("campaign_id", name="missing_key", ignore_na=False)
    def _has_key(cls, s: pd.Series) -> pd.Series:
        return _present(s)

    @pa.check("user_id", name="missing_user_id", ignore_na=False)
    def _has_user(cls, s: pd.Series) -> pd.Series:
        return _present(s)

    @pa.check("project_name", name="missing_project_name", ignore_na=False)
    def _has_project(cls, s: pd.Series) -> pd.Series:
        return _present(s)

    @pa.check("daily_budget", name="negative_daily_budget")
    def _budget_non_negative(cls, s: pd.Series) -> pd.Series:
        return s >= 0


class InsightRowContract(_RowContract):
    """One row (one ad-set part of a campaign-day) of insights.csv after parsing."""

    campaign_id: Series[object] = pa.Field(nullable=True)
    date: Series[pa.DateTime] = pa.Field(nullable=True)
    spend: Series[float] = pa.Field(nullable=True)
    impressions: Series[float] = pa.Field(nullable=True, description="blank stays null")
    clicks: Series[float] = pa.Field(nullable=True, description="blank stays null")
    conversions: Series[float] = pa.Field(nullable=True, description="blank stays null")

    @pa.check("campaign_id", name="missing_key", ignore_na=False)
    def _has_key(cls, s: pd.Series) -> pd.Series:
        return _present(s)

    @pa.check("date", name="unparseable_date", ignore_na=False)
    def _has_date(cls, s: pd.Series) -> pd.Series:
        return s.notna()

    @pa.check("spend", name="missing_spend", ignore_na=False)
    def _has_spend(cls, s: pd.Series) -> pd.Series:
        # spend is a required column: a blank spend makes every cost metric unknown
        return s.notna()

    @pa.check("spend", name="negative_spend")
    def _spend_non_negative(cls, s: pd.Series) -> pd.Series:
        return s >= 0

    @pa.check("impressions", "clicks", "conversions", name="negative_count")
    def _counts_non_negative(cls, s: pd.Series) -> pd.Series:
        return s >= 0

    @pa.check("impressions", "clicks", "conversions", name="fractional_count")
    def _counts_whole(cls, s: pd.Series) -> pd.Series:
        return s == s.round()

    @pa.dataframe_check(name="clicks_gt_impressions")
    def _clicks_within_impressions(cls, df: pd.DataFrame) -> pd.Series:
        return ~(df["clicks"] > df["impressions"])  # NaN compares False: unknown is not a defect

    # Conversions above clicks are valid: platforms count view-through conversions and several
    # conversions per click (the data contract); a jump is the detector's to judge.


class LeadRowContract(_RowContract):
    """One row of campaign_leads.csv after parsing (personal data already removed)."""

    lead_id: Series[object] = pa.Field(nullable=True)
    campaign_id: Series[object] = pa.Field(nullable=True)
    lead_status: Series[object] = pa.Field(nullable=True)
    added_date: Series[pa.DateTime] = pa.Field(nullable=True)
    deal_value: Series[float] = pa.Field(nullable=True)

    @pa.check("lead_id", name="missing_key", ignore_na=False)
    def _has_key(cls, s: pd.Series) -> pd.Series:
        return _present(s)

    @pa.check("campaign_id", name="missing_campaign_id", ignore_na=False)
    def _has_campaign(cls, s: pd.Series) -> pd.Series:
        return _present(s)

    @pa.check("lead_status", name="missing_lead_status", ignore_na=False)
    def _has_status(cls, s: pd.Series) -> pd.Series:
        return _present(s)

    # A status shaped like an e-mail or a phone is a shifted row (an unquoted comma in the name
    # and a cell missing further on) whose cells happen to parse: personal data in a column
    # that is not personal, and no status at all.
    @pa.check("lead_status", name="personal_data_in_lead_status")
    def _status_is_no_personal_data(cls, s: pd.Series) -> pd.Series:
        return s.map(personal_data.personal_kind).isna()

    @pa.check("added_date", name="unparseable_date", ignore_na=False)
    def _has_date(cls, s: pd.Series) -> pd.Series:
        return s.notna()

    @pa.check("deal_value", name="negative_deal_value")
    def _deal_non_negative(cls, s: pd.Series) -> pd.Series:
        return s >= 0


class LeadStatusChangeRowContract(_RowContract):
    """One row of lead_status_changes.csv after parsing."""

    change_id: Series[object] = pa.Field(nullable=True)
    lead_id: Series[object] = pa.Field(nullable=True)
    new_status: Series[object] = pa.Field(nullable=True)
    changed_at: Series[pa.DateTime] = pa.Field(nullable=True)

    @pa.check("lead_id", name="missing_key", ignore_na=False)
    def _has_key(cls, s: pd.Series) -> pd.Series:
        return _present(s)

    @pa.check("new_status", name="missing_new_status", ignore_na=False)
    def _has_status(cls, s: pd.Series) -> pd.Series:
        return _present(s)

    @pa.check("changed_at", name="unparseable_date", ignore_na=False)
    def _has_date(cls, s: pd.Series) -> pd.Series:
        return s.notna()


# ---------------------------------------------------------------------------------------
# The row contracts as masks (True = the row breaks the check named by the key)
# ---------------------------------------------------------------------------------------


def _missing(s: pd.Series) -> np.ndarray:
    """Not ``_present``: null or empty text."""
    text = pyarrow.array(s, type=pyarrow.string(), from_pandas=True)
    return pc.fill_null(pc.equal(pc.binary_length(text), 0), True).to_numpy(zero_copy_only=False)


def _below_zero(s: pd.Series) -> np.ndarray:
    return (s < 0).to_numpy(dtype=bool)  # NaN compares False: blank is not a defect


def campaign_row_failures(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """``CampaignRowContract`` as masks."""
    return {
        "missing_key": _missing(rows["campaign_id"]),
        "missing_user_id": _missing(rows["user_id"]),
        "missing_project_name": _missing(rows["project_name"]),
        "negative_daily_budget": _below_zero(rows["daily_budget"]),
    }


def insight_row_failures(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """``InsightRowContract`` as masks."""
    counts = rows[["impressions", "clicks", "conversions"]].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        fractional = ~np.isnan(counts) & (counts != np.round(counts))
        clicks_gt = (rows["clicks"] > rows["impressions"]).to_numpy(dtype=bool)
    return {
        "missing_key": _missing(rows["campaign_id"]),
        "unparseable_date": rows["date"].isna().to_numpy(),
        "missing_spend": rows["spend"].isna().to_numpy(),
        "negative_spend": _below_zero(rows["spend"]),
        "negative_count": (counts < 0).any(axis=1),
        "fractional_count": fractional.any(axis=1),
        "clicks_gt_impressions": clicks_gt,
    }


def lead_row_failures(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """``LeadRowContract`` as masks."""
    return {
        "missing_key": _missing(rows["lead_id"]),
        "missing_campaign_id": _missing(rows["campaign_id"]),
        "missing_lead_status": _missing(rows["lead_status"]),
        "personal_data_in_lead_status": personal_data.shaped_like_personal(
            pyarrow.array(rows["lead_status"], type=pyarrow.string(), from_pandas=True)
        ),
        "unparseable_date": rows["added_date"].isna().to_numpy(),
        "negative_deal_value": _below_zero(rows["deal_value"]),
    }


def lead_status_change_row_failures(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """``LeadStatusChangeRowContract`` as masks."""
    return {
        "missing_key": _missing(rows["lead_id"]),
        "missing_new_status": _missing(rows["new_status"]),
        "unparseable_date": rows["changed_at"].isna().to_numpy(),
    }


ROW_RULES = {
    CampaignRowContract: campaign_row_failures,
    InsightRowContract: insight_row_failures,
    LeadRowContract: lead_row_failures,
    LeadStatusChangeRowContract: lead_status_change_row_failures,
}


# ---------------------------------------------------------------------------------------
# Validated layer (what downstream assets may rely on)
# ---------------------------------------------------------------------------------------


class _Validated(pa.DataFrameModel):
    class Config:
        strict = True  # nothing unexpected (and no personal data) slips downstream
        coerce = False


class ValidatedCampaigns(_Validated):
    campaign_id: Series[str] = pa.Field(unique=True, description="campaigns.csv `id`")
    user_id: Series[str]
    project_name: Series[str]
    daily_budget: Series[float] = pa.Field(nullable=True, ge=0, description="null when blank")
    platform: Series[str] = pa.Field(description="'Unknown' when blank")
    campaign_name: Series[str] = pa.Field(nullable=True)
    created_at: Series[pa.DateTime] = pa.Field(nullable=True)


class ValidatedInsights(_Validated):
    """One row per campaign and day: ad-set parts summed, re-delivered rows removed."""

    campaign_id: Series[str]
    date: Series[pa.DateTime]
    spend: Series[float] = pa.Field(ge=0)
    impressions: Series[float] = pa.Field(nullable=True, ge=0, description="null = unknown")
    clicks: Series[float] = pa.Field(nullable=True, ge=0, description="null = unknown")
    conversions: Series[float] = pa.Field(nullable=True, ge=0, description="null = unknown")
    n_parts: Series[int] = pa.Field(ge=1, description="raw rows summed into this campaign-day")

    @pa.dataframe_check(name="one_row_per_campaign_day")
    def _unique_key(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["campaign_id", "date"]).any()

    @pa.dataframe_check(name="clicks_within_impressions")
    def _clicks(cls, df: pd.DataFrame) -> pd.Series:
        return ~(df["clicks"] > df["impressions"])

    @pa.dataframe_check(name="finite_sums")
    def _finite(cls, df: pd.DataFrame) -> pd.Series:
        # the plausibility bounds keep every sum of parts (and every published total) finite
        values = df[["spend", "impressions", "clicks", "conversions"]].to_numpy(float)
        return pd.Series(~np.isinf(values).any(axis=1), index=df.index)


class ValidatedLeads(_Validated):
    lead_id: Series[str] = pa.Field(unique=True)
    campaign_id: Series[str]
    lead_status: Series[str] = pa.Field(
        str_matches=r"^\S(.*\S)?$", description="trimmed, upper-cased"
    )
    added_date: Series[pa.DateTime]
    deal_value: Series[float] = pa.Field(nullable=True, ge=0)

    @pa.check("lead_status", name="upper_case")
    def _upper(cls, s: pd.Series) -> pd.Series:
        return s == s.str.upper()


class ValidatedLeadStatusChanges(_Validated):
    change_id: Series[str] = pa.Field(nullable=True)
    lead_id: Series[str]
    old_status: Series[str] = pa.Field(nullable=True)
    new_status: Series[str]
    changed_at: Series[pa.DateTime]
    date: Series[pa.DateTime]


class Quarantine(pa.DataFrameModel):
    """Rejected raw rows: nothing is dropped silently. Carries no personal data."""

    source_file: Series[str]
    row_key: Series[str] = pa.Field(description="the row's id, or 'line N' when it has none")
    source_id: Series[str] = pa.Field(description="the raw `id` cell ('' when blank)")
    line_number: Series[int] = pa.Field(
        ge=2,
        description="the row's number in the file, the header being 1 (blank lines and line "
        "breaks inside quoted cells not counted)",
    )
    reason_code: Series[str]
    reason: Series[str] = pa.Field(str_length={"min_value": 1})
    raw_values: Series[str] = pa.Field(description="the row as JSON, personal data removed")

    @pa.check("raw_values", name="no_personal_data")
    def _no_pii(cls, s: pd.Series) -> pd.Series:
        pattern = "|".join(f'"{col}":' for col in PII_COLUMNS)
        return ~s.str.contains(pattern, regex=True)

    class Config:
        strict = True
        coerce = False


def _occurs_once(values: pd.Series) -> pd.Series:
    """True where an Arrow-backed text value is not repeated in its column (null never counts
    as repeated). pandera's own ``unique`` check makes one Python string per cell first, which
    for 4.8M lead ids took 0.7 GB and 4 s; `repeated_text` sorts them in Arrow instead."""
    return pd.Series(~repeated_text(pyarrow.array(values.array)), index=values.index)


UNIQUE_TEXT = pa.Check(
    _occurs_once, name="unique", error="not unique: the column holds repeated values"
)


ARROW_TEXT = pd.ArrowDtype(pyarrow.string())


@cache
def text_columns(model: type[pa.DataFrameModel]) -> tuple[str, ...]:
    """The columns ``model`` types as text (``Series[str]``)."""
    return tuple(name for name, c in model.to_schema().columns.items() if str(c.dtype) == "str")


@cache
def arrow_text_schema(model: type[pa.DataFrameModel]) -> pa.DataFrameSchema:
    """``model`` with its text columns typed as Arrow strings: the same checks, for a frame
    whose text stays in Arrow buffers (``validate_arrow``); a unique text column is checked by
    `UNIQUE_TEXT`."""
    schema = model.to_schema()
    return schema.update_columns(
        {
            name: {"dtype": ARROW_TEXT}
            | ({"unique": False, "checks": [*column.checks, UNIQUE_TEXT]} if column.unique else {})
            for name, column in schema.columns.items()
            if name in text_columns(model)
        }
    )


def arrow_frame(table: pyarrow.Table) -> pd.DataFrame:
    """An Arrow table as pandas without copying its text: strings stay Arrow-backed."""

    def text_stays_arrow(arrow_type: pyarrow.DataType):
        return pd.ArrowDtype(arrow_type) if pyarrow.types.is_string(arrow_type) else None

    return table.to_pandas(types_mapper=text_stays_arrow)


def validate_arrow(
    model: type[pa.DataFrameModel], table: pyarrow.Table, lazy: bool = False
) -> pd.DataFrame:
    """Validate an Arrow table against a validated model (text checked as Arrow strings)."""
    return arrow_text_schema(model).validate(arrow_frame(table), lazy=lazy)


def validate_frame(
    model: type[pa.DataFrameModel], frame: pd.DataFrame, lazy: bool = False
) -> pd.DataFrame:
    """``model.validate(frame, lazy=lazy)``, with the text columns checked as Arrow strings.

    pandera checks that an object column holds text with a Python call per cell, and finds its
    nulls the same way: on 420k daily rows that was 0.5 of the validation's 0.7 s, and every
    published table is validated twice (before it is written, and as stored). When every text
    column of ``model`` in ``frame`` holds only text or nulls, the frame is checked with those
    columns as Arrow strings (`arrow_text_schema`: the same checks) and returned with its own
    text columns, which the model's coercion to text would leave as they are. Otherwise it
    goes through the model itself, so a column of the wrong type fails with pandera's own
    error.
    """
    text = [name for name in text_columns(model) if name in frame.columns]
    if not text or not all(
        frame[name].dtype == object
        and pd.api.types.infer_dtype(frame[name], skipna=True) in ("string", "empty")
        for name in text
    ):
        return model.validate(frame, lazy=lazy)
    as_arrow = frame.astype(dict.fromkeys(text, ARROW_TEXT))
    checked = arrow_text_schema(model).validate(as_arrow, lazy=lazy)
    checked[text] = frame[text]
    return checked


VALIDATED_MODELS = {
    "campaigns": ValidatedCampaigns,
    "insights": ValidatedInsights,
    "campaign_leads": ValidatedLeads,
    "lead_status_changes": ValidatedLeadStatusChanges,
}


class AnomalyFlags(pa.DataFrameModel):
    """The published `anomaly_flags` table (data contract)."""

    campaign_id: Series[str]
    grain: Series[str] = pa.Field(isin=["day", "week"])
    period_start: Series[pa.DateTime]
    period_end: Series[pa.DateTime]
    metric: Series[str]
    value: Series[float] = pa.Field(nullable=True)
    expected: Series[float] = pa.Field(nullable=True)
    score: Series[float] = pa.Field(nullable=True)
    methods: Series[str] = pa.Field(str_length={"min_value": 1})
    anomaly_type: Series[str]
    severity: Series[str] = pa.Field(isin=["low", "medium", "high", "critical"])
    confidence: Series[float] = pa.Field(ge=0, le=1)
    explanation: Series[str] = pa.Field(str_length={"min_value": 10})
    suggested_action: Series[str] = pa.Field(str_length={"min_value": 5})

    @pa.dataframe_check(name="period_end_not_before_start")
    def _period(cls, df: pd.DataFrame) -> pd.Series:
        return df["period_end"] >= df["period_start"]

    @pa.dataframe_check(name="one_flag_per_key")
    def _unique(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["campaign_id", "grain", "period_start", "metric"]).any()

    class Config:
        strict = False
        coerce = True
