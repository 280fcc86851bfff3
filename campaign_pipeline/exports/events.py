"""The facts a week sends on, as destination-neutral events.

Three kinds per week: a summary per campaign active in the week, one event per anomaly flag
at or above a severity, and one per health-bucket change. Properties come from an explicit
list of published columns (never "every column"), so nothing from the validated layer, and
no personal data, can reach a payload by a column being added upstream: no lead name, email,
phone or lead id is ever read here.

Each event has a deterministic identity (kind, week, campaign, detail) from which every
destination derives its key, so the same fact gets the same key on every run and machine.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.core.dtypes.cast import maybe_box_native

from campaign_pipeline.constants import SEVERITIES, SEVERITY_RANK

SUMMARY = "campaign_week_summary"
ANOMALY = "campaign_anomaly"
HEALTH_CHANGE = "campaign_health_change"
EVENT_KINDS = (SUMMARY, ANOMALY, HEALTH_CHANGE)

DEFAULT_MIN_SEVERITY = "medium"
"""Low flags are the detector's weakest signal (on the sample, 11 of 133 flags): worth a look in
the weekly report, too noisy to push into analytics tools as events."""

# Bumped only if the meaning of a key changes: a new version would resend every event.
KEY_VERSION = "v1"

# Properties whose text is free prose: a destination may shorten it to its value limit.
# Every other string property is an identifier or a label and is never cut.
FREE_TEXT = frozenset({"suggested_action", "explanation", "reason", "recommended_action"})


@dataclass(frozen=True)
class CampaignEvent:
    """One fact of one week about one campaign, before any destination's format."""

    kind: str
    week_start: str  # YYYY-MM-DD, the Monday of the week
    campaign_id: str
    detail: str  # what makes the event unique within (kind, week, campaign)
    time_ms: int  # the last millisecond of the period the event describes (UTC)
    properties: dict[str, str | int | float] = field(default_factory=dict)

    def key(self, destination: str) -> str:
        """The event's ledger key (and Amplitude's insert_id): a hash of the destination, the
        week, the campaign, the kind and the detail. The same fact always gets the same key."""
        text = "|".join(
            ["campaign_pipeline", KEY_VERSION, destination, self.week_start]
            + [self.campaign_id, self.kind, self.detail]
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def severity_at_least(severity: pd.Series, minimum: str) -> pd.Series:
    if minimum not in SEVERITY_RANK:
        raise ValueError(f"min_severity {minimum!r} is not one of {', '.join(SEVERITIES)}")
    return severity.map(SEVERITY_RANK).fillna(-1) >= SEVERITY_RANK[minimum]


def _day(value) -> str:
    return pd.Timestamp(value).date().isoformat()


def _end_ms(last_day) -> int:
    """The last millisecond (UTC) of ``last_day``."""
    end = pd.Timestamp(last_day).normalize() + pd.Timedelta(days=1)
    return int(end.tz_localize("UTC").timestamp() * 1000) - 1


def _money(value) -> float | None:
    return None if _missing(value) else round(float(value), 2)


def _count(value) -> int | None:
    return None if _missing(value) else int(round(float(value)))


def _ratio(value) -> float | None:
    """Six significant digits: enough for any rate, no float noise in a payload."""
    return None if _missing(value) else float(f"{float(value):.6g}")


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


def _missing(value) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def _clean(properties: dict) -> dict:
    """Nulls (and inf, NaN) are left out: a missing rate is absent, never 0."""
    return {k: v for k, v in properties.items() if v is not None}


@functools.lru_cache(maxsize=4096)  # a week's events end on one of a few days
def _day_end_ms(day: str) -> int:
    return _end_ms(day)


# Property values are converted a column at a time, not a row at a time: a large account's
# year has about 100,000 events per destination, and a dict of every row plus a helper call per
# cell were most of the time of building them. Each column gives exactly what the helper above
# gives for each of its cells (the cells as a row of ``to_dict("records")`` holds them).

_INT64_LIMIT = 2**63  # a count this large does not fit numpy's int64: converted per cell


def _cells(column: pd.Series) -> list:
    """The cells of ``column`` as ``to_dict("records")`` boxes them."""
    if column.dtype == object or isinstance(column.dtype, pd.api.extensions.ExtensionDtype):
        return [v if type(v) is str else maybe_box_native(v) for v in column.tolist()]
    return column.tolist()


def _numbers(column: pd.Series) -> np.ndarray | None:
    """The column as float64 with NaN for a missing cell, when it is a numeric column (else
    None: its cells go through the per-cell helpers)."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        return None
    if pd.api.types.is_complex_dtype(dtype):
        return None
    return column.to_numpy(dtype="float64", na_value=np.nan)


def _with_missing(values: list, finite: np.ndarray) -> list:
    for index in np.flatnonzero(~finite).tolist():
        values[index] = None
    return values


def _per_cell(column: pd.Series, convert: Callable) -> list:
    return [convert(v) for v in _cells(column)]


def _moneys(column: pd.Series) -> list:
    """`_money` of each cell."""
    numbers = _numbers(column)
    if numbers is None:
        return _per_cell(column, _money)
    finite = np.isfinite(numbers)
    return _with_missing([round(v, 2) for v in numbers.tolist()], finite)


def _counts(column: pd.Series) -> list:
    """`_count` of each cell (Python's round and numpy's rint both round half to even)."""
    numbers = _numbers(column)
    if numbers is None:
        return _per_cell(column, _count)
    finite = np.isfinite(numbers)
    if np.abs(numbers[finite]).max(initial=0.0) >= _INT64_LIMIT:
        return _per_cell(column, _count)
    whole = np.rint(np.where(finite, numbers, 0.0)).astype(np.int64)
    return _with_missing(whole.tolist(), finite)


def _ratios(column: pd.Series) -> list:
    """`_ratio` of each cell."""
    numbers = _numbers(column)
    if numbers is None:
        return _per_cell(column, _ratio)
    finite = np.isfinite(numbers)
    return _with_missing([float(f"{v:.6g}") for v in numbers.tolist()], finite)


def _texts(column: pd.Series) -> list:
    """`_text` of each cell."""
    return [(v.strip() or None) if type(v) is str else _text(v) for v in _cells(column)]


# a campaign-week's sums and rates, as published and as its summary event carries them
_SUMMARY_FIGURES = (
    "spend",
    "impressions",
    "clicks",
    "conversions",
    "leads",
    "converted_leads",
    "revenue",
    "cpl",
    "roas",
)
# the published columns each kind of event reads: its rows hold these and only these (an
# absent one as missing), so a property read from a column not listed here fails at once
_SUMMARY_COLUMNS = ("campaign_id", "platform", *_SUMMARY_FIGURES)
# a summary's properties, in their order; a null one is left out (as `_clean` does)
_SUMMARY_PROPERTIES = (
    "campaign_id",
    "source",
    "week_start",
    "week_end",
    *_SUMMARY_FIGURES,
    "health_bucket",
    "recommended_action",
)
_SUMMARY_COUNTS = ("impressions", "clicks", "conversions", "leads", "converted_leads")
_ANOMALY_KEYS = ("campaign_id", "grain", "period_start", "period_end", "metric")
_ANOMALY_COLUMNS = (
    *_ANOMALY_KEYS,
    "anomaly_type",
    "severity",
    "confidence",
    "value",
    "expected",
    "suggested_action",
    "explanation",
)
_HEALTH_CHANGE_COLUMNS = (
    "campaign_id",
    "platform",
    "previous_bucket",
    "health_bucket",
    "recommended_action",
    "reason",
)


# what each published table is read for, by the week it belongs to
EVENT_COLUMNS = {
    "weekly": ("week_start", *_SUMMARY_COLUMNS),
    "health": ("week_start", *_HEALTH_CHANGE_COLUMNS, "bucket_changed"),
    "flags": _ANOMALY_COLUMNS,
}


def _columns(frame: pd.DataFrame, names: tuple[str, ...], keys: tuple[str, ...]) -> pd.DataFrame:
    """``frame`` with ``names`` as its columns; ``keys`` (what identifies an event) must be
    there, any other may be absent (missing)."""
    absent = [key for key in keys if key not in frame.columns]
    if absent:
        raise KeyError(f"the table has no {', '.join(absent)} column")
    return frame.reindex(columns=list(names))


def campaign_platforms(campaigns: pd.DataFrame | None) -> dict[str, str]:
    """Each campaign's platform, from the validated campaigns table."""
    if campaigns is None or not len(campaigns) or "platform" not in campaigns:
        return {}
    known = campaigns.dropna(subset=["platform"])
    return dict(zip(known["campaign_id"].astype(str), known["platform"].astype(str)))


def summary_events(
    weekly: pd.DataFrame, health: pd.DataFrame, week_start: str, platforms: dict[str, str]
) -> list[CampaignEvent]:
    """A summary per campaign with a row in the week's metrics (it spent or got leads),
    with its health bucket and action from the same week's health table."""
    if not len(weekly):
        return []
    # only the columns a summary reads: a row dict of the whole table (60-odd columns) would
    # cost most of the time of building a large account's events
    week = _columns(weekly, _SUMMARY_COLUMNS, ("campaign_id",))
    week = week.assign(campaign_id=week["campaign_id"].astype(str))
    judged = (
        health.assign(campaign_id=health["campaign_id"].astype(str))[
            ["campaign_id", "health_bucket", "recommended_action"]
        ]
        if len(health)
        else pd.DataFrame(columns=["campaign_id", "health_bucket", "recommended_action"])
    )
    week = week.merge(judged, on="campaign_id", how="left").sort_values("campaign_id")
    week_end = (pd.Timestamp(week_start) + pd.Timedelta(days=6)).date().isoformat()
    time_ms = _day_end_ms(week_end)
    campaigns = week["campaign_id"].tolist()
    rows = zip(
        campaigns,
        _texts(week["platform"]),
        _moneys(week["spend"]),
        *(_counts(week[c]) for c in _SUMMARY_COUNTS),
        _moneys(week["revenue"]),
        _ratios(week["cpl"]),
        _ratios(week["roas"]),
        _texts(week["health_bucket"]),
        _texts(week["recommended_action"]),
    )
    events = []
    for campaign, source, *figures in rows:
        values = (campaign, source or platforms.get(campaign), week_start, week_end, *figures)
        properties = {k: v for k, v in zip(_SUMMARY_PROPERTIES, values) if v is not None}
        events.append(CampaignEvent(SUMMARY, week_start, campaign, "", time_ms, properties))
    return events


def anomaly_events(
    flags: pd.DataFrame, week_start: str, platforms: dict[str, str], min_severity: str
) -> list[CampaignEvent]:
    """One event per flag at or above ``min_severity``; the flag's contract key (grain,
    period start, metric) is the event's detail."""
    if not len(flags):
        return []
    kept = _columns(flags, _ANOMALY_COLUMNS, _ANOMALY_KEYS)[
        severity_at_least(flags["severity"], min_severity)
    ]
    kept = kept.assign(campaign_id=kept["campaign_id"].astype(str)).sort_values(
        ["campaign_id", "grain", "period_start", "metric"]
    )
    days: dict = {}  # a week's flags start and end on a few days: each parsed once

    def day(value) -> str:
        key = (type(value), value, getattr(value, "tzinfo", None))
        if key not in days:
            days[key] = _day(value)
        return days[key]

    rows = zip(
        kept["campaign_id"].tolist(),
        _cells(kept["grain"]),
        _cells(kept["period_start"]),
        _cells(kept["period_end"]),
        _cells(kept["metric"]),
        _texts(kept["grain"]),
        _texts(kept["metric"]),
        _texts(kept["anomaly_type"]),
        _texts(kept["severity"]),
        _ratios(kept["confidence"]),
        _ratios(kept["value"]),
        _ratios(kept["expected"]),
        _texts(kept["suggested_action"]),
        _texts(kept["explanation"]),
    )
    events = []
    for campaign, grain, period_start, period_end, metric, *texts in rows:
        grain_text, metric_text, kind, severity, confidence, value, expected, *prose = texts
        start, end = day(period_start), day(period_end)
        properties = {
            "campaign_id": campaign,
            "source": platforms.get(campaign),
            "week_start": week_start,
            "grain": grain_text,
            "period_start": start,
            "period_end": end,
            "metric": metric_text,
            "anomaly_type": kind,
            "severity": severity,
            "confidence": confidence,
            # not "value": GA4 reads a "value" param as money (with "currency")
            "metric_value": value,
            "expected_value": expected,
            "suggested_action": prose[0],
            "explanation": prose[1],
        }
        detail = f"{grain}|{start}|{metric}"
        events.append(
            CampaignEvent(
                ANOMALY, week_start, campaign, detail, _day_end_ms(end), _clean(properties)
            )
        )
    return events


def health_change_events(
    health: pd.DataFrame, week_start: str, platforms: dict[str, str]
) -> list[CampaignEvent]:
    """One event per campaign whose bucket differs from the previous week's (a campaign new
    this week has no bucket to change from, so it gets none)."""
    if not len(health) or "bucket_changed" not in health:
        return []
    changed = _columns(health, _HEALTH_CHANGE_COLUMNS, ("campaign_id",))[
        health["bucket_changed"].fillna(False).astype(bool)
    ]
    changed = changed.assign(campaign_id=changed["campaign_id"].astype(str)).sort_values(
        "campaign_id"
    )
    week_end = (pd.Timestamp(week_start) + pd.Timedelta(days=6)).date().isoformat()
    time_ms = _day_end_ms(week_end)
    rows = zip(
        changed["campaign_id"].tolist(),
        _texts(changed["platform"]),
        _texts(changed["previous_bucket"]),
        _texts(changed["health_bucket"]),
        _texts(changed["recommended_action"]),
        _texts(changed["reason"]),
    )
    events = []
    for campaign, source, from_bucket, to_bucket, action, reason in rows:
        properties = {
            "campaign_id": campaign,
            "source": source or platforms.get(campaign),
            "week_start": week_start,
            "from_bucket": from_bucket,
            "to_bucket": to_bucket,
            "recommended_action": action,
            "reason": reason,
        }
        events.append(
            CampaignEvent(HEALTH_CHANGE, week_start, campaign, "", time_ms, _clean(properties))
        )
    return events


def week_events(
    week_start: str,
    weekly: pd.DataFrame,
    health: pd.DataFrame,
    flags: pd.DataFrame,
    campaigns: pd.DataFrame | None = None,
    min_severity: str = DEFAULT_MIN_SEVERITY,
    *,
    platforms: dict[str, str] | None = None,
) -> list[CampaignEvent]:
    """Every event of one week, in a stable order (kind, campaign, detail). ``platforms``:
    `campaign_platforms` of ``campaigns``, when the caller built it once for many weeks."""
    dt.date.fromisoformat(week_start)  # a ValueError names a bad week key
    if platforms is None:
        platforms = campaign_platforms(campaigns)
    return [
        *summary_events(weekly, health, week_start, platforms),
        *anomaly_events(flags, week_start, platforms, min_severity),
        *health_change_events(health, week_start, platforms),
    ]


@dataclass(frozen=True)
class Outgoing:
    """One event in one destination's format, with its ledger identity."""

    key: str
    week_start: str
    campaign_id: str
    name: str
    group: str  # events of one group may share a request (GA4: one client_id per request)
    payload: dict

    @property
    def payload_sha256(self) -> str:
        return hashlib.sha256(encode_json(self.payload)).hexdigest()


@dataclass(frozen=True)
class Refusal:
    """An event this side will not send, and why (a reason a person can act on)."""

    key: str
    week_start: str
    campaign_id: str
    name: str
    reason: str


# One encoder for every call: ``json.dumps`` with any argument of its own builds a new encoder
# per call, and a year of a large account encodes a few hundred thousand payloads.
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode_json(value) -> bytes:
    """The bytes that go on the wire: compact, UTF-8, and never NaN (which is not JSON)."""
    return _COMPACT.encode(value).encode("utf-8")
