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
import hashlib
import json
import math
from dataclasses import dataclass, field

import pandas as pd

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


# the published columns each kind of event reads: its rows hold these and only these (an
# absent one as missing), so a property read from a column not listed here fails at once
_SUMMARY_COLUMNS = (
    "campaign_id",
    "platform",
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


def _columns(frame: pd.DataFrame, names: tuple[str, ...], keys: tuple[str, ...]) -> pd.DataFrame:
    """``frame`` with ``names`` as its columns; ``keys`` (what identifies an event) must be
    there, any other may be absent (missing)."""
    absent = [key for key in keys if key not in frame.columns]
    if absent:
        raise KeyError(f"the table has no {', '.join(absent)} column")
    return frame.reindex(columns=list(names))


def _platforms(campaigns: pd.DataFrame | None) -> dict[str, str]:
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
    time_ms = _end_ms(week_end)
    events = []
    for row in week.to_dict("records"):
        campaign = row["campaign_id"]
        properties = {
            "campaign_id": campaign,
            "source": _text(row["platform"]) or platforms.get(campaign),
            "week_start": week_start,
            "week_end": week_end,
            "spend": _money(row["spend"]),
            "impressions": _count(row["impressions"]),
            "clicks": _count(row["clicks"]),
            "conversions": _count(row["conversions"]),
            "leads": _count(row["leads"]),
            "converted_leads": _count(row["converted_leads"]),
            "revenue": _money(row["revenue"]),
            "cpl": _ratio(row["cpl"]),
            "roas": _ratio(row["roas"]),
            "health_bucket": _text(row["health_bucket"]),
            "recommended_action": _text(row["recommended_action"]),
        }
        events.append(CampaignEvent(SUMMARY, week_start, campaign, "", time_ms, _clean(properties)))
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
    events = []
    for row in kept.to_dict("records"):
        campaign = row["campaign_id"]
        start, end = _day(row["period_start"]), _day(row["period_end"])
        properties = {
            "campaign_id": campaign,
            "source": platforms.get(campaign),
            "week_start": week_start,
            "grain": _text(row["grain"]),
            "period_start": start,
            "period_end": end,
            "metric": _text(row["metric"]),
            "anomaly_type": _text(row["anomaly_type"]),
            "severity": _text(row["severity"]),
            "confidence": _ratio(row["confidence"]),
            # not "value": GA4 reads a "value" param as money (with "currency")
            "metric_value": _ratio(row["value"]),
            "expected_value": _ratio(row["expected"]),
            "suggested_action": _text(row["suggested_action"]),
            "explanation": _text(row["explanation"]),
        }
        detail = f"{row['grain']}|{start}|{row['metric']}"
        events.append(
            CampaignEvent(ANOMALY, week_start, campaign, detail, _end_ms(end), _clean(properties))
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
    events = []
    for row in changed.to_dict("records"):
        campaign = row["campaign_id"]
        properties = {
            "campaign_id": campaign,
            "source": _text(row["platform"]) or platforms.get(campaign),
            "week_start": week_start,
            "from_bucket": _text(row["previous_bucket"]),
            "to_bucket": _text(row["health_bucket"]),
            "recommended_action": _text(row["recommended_action"]),
            "reason": _text(row["reason"]),
        }
        events.append(
            CampaignEvent(
                HEALTH_CHANGE, week_start, campaign, "", _end_ms(week_end), _clean(properties)
            )
        )
    return events


def week_events(
    week_start: str,
    weekly: pd.DataFrame,
    health: pd.DataFrame,
    flags: pd.DataFrame,
    campaigns: pd.DataFrame | None = None,
    min_severity: str = DEFAULT_MIN_SEVERITY,
) -> list[CampaignEvent]:
    """Every event of one week, in a stable order (kind, campaign, detail)."""
    dt.date.fromisoformat(week_start)  # a ValueError names a bad week key
    platforms = _platforms(campaigns)
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


def encode_json(value) -> bytes:
    """The bytes that go on the wire: compact, UTF-8, and never NaN (which is not JSON)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )
