"""One week's report from its published tables: DataFrames in, an HTML page and a Markdown
summary out. No Dagster, no files (see ``files.py``), no recomputation of any published
number: the page shows what the tables say, arranged for a campaign manager.

What each section reads:

* Overview: ``campaign_health`` of the week and the week before (buckets and their change),
  ``health.action_summary`` of the week's health (the same function, on the same rows, that
  publishes ``health_action_summary``), ``weekly_totals`` of both weeks, and the week's
  quarantined rows and spend (``weekly_totals`` when it carries them, else counted from the
  ``quarantine`` table by ``metrics.quarantine_by_week``, the code that fills those columns).
* Anomalies: ``anomaly_flags`` of the week, most severe and surest first; each chart draws the
  metric from ``daily_campaign_metrics`` (or ``weekly_campaign_metrics`` for week flags).
* Explorer and single campaigns: ``campaign_health`` joined with the week's
  ``weekly_campaign_metrics``.
* Scatter: the thresholds are ``campaign_health``'s ``cpl_p25/p50/p75`` and ``conv_p75``, the
  very numbers ``health.assign_health`` compared each campaign with.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from campaign_pipeline import health as health_rules
from campaign_pipeline import metrics
from campaign_pipeline.constants import (
    HEALTH_BUCKETS,
    IMPLAUSIBLE_REASONS,
    PII_COLUMNS,
    RECOMMENDED_ACTIONS,
    SEVERITY_RANK,
)
from campaign_pipeline.locations import Location
from campaign_pipeline.memory import release_memory, return_free_pages
from campaign_pipeline.parallel import map_in_processes
from campaign_pipeline.report import charts
from campaign_pipeline.report import formatting as fmt
from campaign_pipeline.report.files import ReportTables, load_report_tables
from campaign_pipeline.report.self_contained import external_references
from campaign_pipeline.report.template import render_page

TOP_SEVERITIES = ("critical", "high")
THRESHOLD_COLUMNS = ("cpl_p25", "cpl_p50", "cpl_p75", "conv_p75")
# Scope columns the health rules can benchmark within (health.SCOPES without platform_wide).
SEGMENT_COLUMNS = ("platform", "project_name", "user_id")
MAX_SCATTER_PANELS = 8  # more universes than this are unreadable as small multiples
TOTALS = (  # the week's portfolio figures, in the order the cards show them
    ("spend", "Spend", "amount"),
    ("leads", "Leads", "count"),
    ("cpl", "CPL", "amount"),
    ("conversion_rate", "Conversion rate (conversions / clicks)", "percent"),
    ("lead_conversion_rate", "Lead conversion rate (converted / leads)", "percent"),
    ("roas", "ROAS (revenue / spend)", "ratio"),
)
# Explorer columns: (key, label, kind); kind "text" or a formatting kind.
EXPLORER_COLUMNS = (
    ("campaign", "Campaign", "text"),
    ("user_id", "User", "text"),
    ("project_name", "Project", "text"),
    ("platform", "Platform", "text"),
    ("health_bucket", "Bucket", "text"),
    ("recommended_action", "Action", "text"),
    ("total_spend", "Spend (window)", "amount"),
    ("total_leads", "Leads (window)", "count"),
    ("converted_leads", "Converted (window)", "count"),
    ("conversion_rate", "Lead conv. rate (window)", "percent"),
    ("cpl", "CPL (window)", "amount"),
    ("roas", "ROAS (window)", "ratio"),
    ("days_active", "Days active", "count"),
    ("week_spend", "Spend (week)", "amount"),
    ("week_spend_wow", "Spend WoW", "change"),
    ("week_leads", "Leads (week)", "count"),
    ("week_cpl", "CPL (week)", "amount"),
    ("n_flags", "Flags (week)", "count"),
    ("reason", "Reason", "text"),
)
FILTERS = (  # (row attribute, label, column)
    ("user", "User", "user_id"),
    ("project", "Project", "project_name"),
    ("platform", "Platform", "platform"),
    ("bucket", "Bucket", "health_bucket"),
    ("action", "Action", "recommended_action"),
)


@dataclass(frozen=True)
class WeeklyReport:
    week: str
    html: str
    summary_markdown: str
    facts: dict = field(default_factory=dict)  # the headline numbers, for asset metadata
    # what in `html` would make a browser fetch something (`external_references`): found where
    # the page is built, so a range's pages are checked in the processes that build them
    outside_references: list[str] = field(default_factory=list)


# --- helpers ---------------------------------------------------------------------------------


def _date(value) -> str:
    return "" if value is None or pd.isna(value) else pd.Timestamp(value).date().isoformat()


def _text(value) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _cell(value, kind: str) -> dict:
    """A shown number: its text and its unrounded value."""
    return {"text": fmt.of_kind(kind, value), "raw": fmt.raw(value), "num": True}


def _campaign_label(name: str, campaign_id: str) -> str:
    return f"{name} ({campaign_id})" if name else campaign_id


def _campaign_info(tables: ReportTables) -> pd.DataFrame:
    """Name, user, project and platform of every campaign the week's tables mention."""
    columns = ["campaign_id", "campaign_name", "user_id", "project_name", "platform"]
    frames = [
        frame[[c for c in columns if c in frame.columns]]
        for frame in (tables.health, tables.weekly, tables.daily)
        if len(frame) and "campaign_id" in frame.columns
    ]
    if not frames:
        return pd.DataFrame(columns=columns).set_index("campaign_id")
    info = pd.concat(frames, ignore_index=True).drop_duplicates("campaign_id")
    return info.reindex(columns=columns).set_index("campaign_id")


def _week_rows(frame: pd.DataFrame, week: pd.Timestamp) -> pd.DataFrame:
    if not len(frame) or "week_start" not in frame.columns:
        return frame.iloc[0:0]
    return frame[pd.to_datetime(frame["week_start"]) == week]


# --- overview --------------------------------------------------------------------------------


def week_coverage(tables: ReportTables) -> tuple[str, str, int]:
    """(first, last, count) of the week's days its figures cover: the days inside the accepted
    data's range, as the week's ``weekly_totals`` recorded it (``data_first_day`` and
    ``data_last_day``, `metrics.covered_days`). A day inside that range on which no campaign
    delivered (an outage) is covered: its zero is data, and the week is whole. Tables written
    without those columns fall back to the delivery days, the only trace of the range there."""
    week = pd.Timestamp(tables.week)
    row = _portfolio_row(tables.totals, week)
    if row is not None and all(
        c in row.index and pd.notna(row[c]) for c in metrics.DATA_RANGE_COLUMNS
    ):
        covered = metrics.covered_days(week, row["data_first_day"], row["data_last_day"])
        if covered is None:
            return "", "", 0
        return _date(covered[0]), _date(covered[1]), covered[2]
    days = _delivery_days(tables)
    return (_date(days[0]), _date(days[-1]), len(days)) if days else ("", "", 0)


def _delivery_days(tables: ReportTables) -> list[pd.Timestamp]:
    week_start = pd.Timestamp(tables.week)
    week_end = week_start + pd.Timedelta(days=6)
    return [day for day in tables.delivery_days if week_start <= day <= week_end]


def data_window(tables: ReportTables) -> dict:
    week_start = pd.Timestamp(tables.week)
    week_end = week_start + pd.Timedelta(days=6)
    days = _delivery_days(tables)
    first_covered, last_covered, covered = week_coverage(tables)
    health = tables.health
    start = health["window_start"].min() if "window_start" in health and len(health) else None
    end = health["window_end"].max() if "window_end" in health and len(health) else None
    return {
        "week_start": _date(week_start),
        "week_end": _date(week_end),
        "delivery_days": len(days),
        "first_delivery": _date(days[0]) if days else "",
        "last_delivery": _date(days[-1]) if days else "",
        "covered_days": covered,
        "first_covered": first_covered,
        "last_covered": last_covered,
        "health_start": _date(start),
        "health_end": _date(end),
        "health_days": int((end - start).days) + 1 if start is not None and end is not None else 0,
    }


def bucket_counts(tables: ReportTables) -> list[dict]:
    """Campaigns per bucket this week and last week (None when last week was not published)."""
    current = tables.health["health_bucket"].value_counts() if len(tables.health) else {}
    has_previous = len(tables.previous_health) > 0
    previous = tables.previous_health["health_bucket"].value_counts() if has_previous else {}
    rows = []
    for bucket in HEALTH_BUCKETS:
        now = int(current.get(bucket, 0))
        before = int(previous.get(bucket, 0)) if has_previous else None
        rows.append(
            {
                "bucket": bucket,
                "colour": charts.BUCKET_COLOURS[bucket],
                "current": now,
                "previous": before,
                "change": None if before is None else now - before,
                "change_text": fmt.MISSING if before is None else fmt.signed_count(now - before),
            }
        )
    return rows


def bucket_moves(health: pd.DataFrame) -> list[dict]:
    """from -> to counts of the campaigns whose bucket changed this week."""
    if not len(health) or "bucket_changed" not in health.columns:
        return []
    changed = health[health["bucket_changed"].fillna(False).astype(bool)]
    counts = changed.groupby(["previous_bucket", "health_bucket"]).size()
    order = {b: i for i, b in enumerate(HEALTH_BUCKETS)}
    moves = [{"from": before, "to": after, "n": int(n)} for (before, after), n in counts.items()]
    return sorted(moves, key=lambda m: (-m["n"], order[m["from"]], order[m["to"]]))


def spend_per_action(health: pd.DataFrame) -> list[dict]:
    """health.action_summary of the week's health: the rows published as health_action_summary."""
    if not len(health):
        return []
    summary = health_rules.action_summary(health)
    return [
        {
            "action": row.recommended_action,
            "bucket": row.health_bucket,
            "colour": charts.BUCKET_COLOURS[row.health_bucket],
            "n_campaigns": _cell(row.n_campaigns, "count"),
            "spend": _cell(row.total_spend, "amount"),
            "share": _cell(row.share_of_spend, "percent"),
            "share_width": 0.0 if fmt.is_missing(row.share_of_spend) else row.share_of_spend * 100,
            "leads": _cell(row.total_leads, "count"),
            "converted": _cell(row.converted_leads, "count"),
        }
        for row in summary.itertuples()
    ]


def _portfolio_row(totals: pd.DataFrame, week: pd.Timestamp) -> pd.Series | None:
    rows = _week_rows(totals, week)
    rows = rows[rows["scope"] == "all"] if len(rows) else rows
    return rows.iloc[0] if len(rows) else None


def week_totals(tables: ReportTables) -> list[dict]:
    week = pd.Timestamp(tables.week)
    current = _portfolio_row(tables.totals, week)
    previous = _portfolio_row(tables.totals, week - pd.Timedelta(days=7))
    cards = []
    for key, label, kind in TOTALS:
        now = current[key] if current is not None else None
        before = previous[key] if previous is not None else None
        change, change_text = fmt.change(now, before, kind)
        cards.append(
            {
                "key": key,
                "label": label,
                "value": _cell(now, kind),
                "previous": _cell(before, kind),
                "change_raw": fmt.raw(change),
                "change_text": change_text,
                "direction": (
                    ""
                    if change is None or change_text.startswith("0.0")
                    else ("up" if change > 0 else "down")
                ),
            }
        )
    return cards


def platform_totals(tables: ReportTables) -> list[dict]:
    rows = _week_rows(tables.totals, pd.Timestamp(tables.week))
    rows = rows[rows["scope"] != "all"].sort_values("spend", ascending=False) if len(rows) else rows
    return [
        {
            "platform": row["scope"],
            "spend": _cell(row["spend"], "amount"),
            "leads": _cell(row["leads"], "count"),
            "cpl": _cell(row["cpl"], "amount"),
            "conversion_rate": _cell(row["conversion_rate"], "percent"),
            "roas": _cell(row["roas"], "ratio"),
        }
        for _, row in rows.iterrows()
    ]


def quarantine_summary(tables: ReportTables) -> dict:
    """The week's quarantined rows and spend, and the whole quarantine table by file and reason.

    ``weekly_totals`` carries the week's figures when it has the columns; otherwise they are
    counted from the quarantine table with ``metrics.quarantine_by_week``, the same function
    that fills those columns. Without the quarantine table in the out dir its figures are
    unknown (dashes, ``published`` False), not the zeros of a clean quarantine.
    """
    week = pd.Timestamp(tables.week)
    portfolio = _portfolio_row(tables.totals, week)
    published = tables.quarantine is not None
    quarantine = tables.quarantine if published else pd.DataFrame()
    by_week = metrics.quarantine_by_week(
        quarantine if len(quarantine) else None, excluded_spend_reasons=IMPLAUSIBLE_REASONS
    )
    if (
        portfolio is not None
        and "quarantined_rows" in portfolio.index
        and not pd.isna(portfolio["quarantined_rows"])
    ):
        rows, spend = portfolio["quarantined_rows"], portfolio["quarantined_spend"]
        source = "weekly_totals"
    elif published:
        mine = by_week[by_week["week_start"] == week]
        rows = int(mine["quarantined_rows"].sum())
        spend = float(mine["quarantined_spend"].sum())
        source = "quarantine"
    else:
        rows, spend, source = None, None, "none"
    by_reason = []
    if len(quarantine):
        grouped = quarantine.groupby(["source_file", "reason_code"]).size().sort_index()
        by_reason = [
            {"file": file, "reason": reason, "rows": int(n)}
            for (file, reason), n in grouped.items()
        ]
    total = len(quarantine)
    return {
        "week_rows": _cell(rows, "count"),
        "week_spend": _cell(spend, "amount"),
        "source": source,
        "published": published,
        "total_rows": total if published else None,
        "undated_rows": int(total - by_week["quarantined_rows"].sum()) if published else None,
        "by_reason": by_reason,
    }


# --- anomalies -------------------------------------------------------------------------------


def ordered_flags(flags: pd.DataFrame) -> pd.DataFrame:
    """Most severe first, surest first within a severity; ties in a stable, readable order."""
    if not len(flags):
        return flags
    rank = flags["severity"].map(SEVERITY_RANK).fillna(-1).to_numpy()
    confidence = flags["confidence"].fillna(-1).to_numpy()
    order = np.lexsort(
        (
            flags["metric"].astype(str).to_numpy(),
            flags["campaign_id"].astype(str).to_numpy(),
            -confidence,
            -rank,
        )
    )
    return flags.iloc[order].reset_index(drop=True)


def _flag_series(tables: ReportTables, flag: pd.Series, by_campaign: dict) -> pd.DataFrame | None:
    """The metric's recent values for a flag: the 28 days read (day flags) or the 9 weeks."""
    grain_frame, date_column = by_campaign["week" if flag["grain"] == "week" else "day"]
    rows = grain_frame.get(flag["campaign_id"])
    metric = flag["metric"]
    if rows is None or metric not in rows.columns:
        return None
    return rows[[date_column, metric]].rename(columns={date_column: "x", metric: "y"})


def _rows_of_flagged(frame: pd.DataFrame, flags: pd.DataFrame, date_column: str) -> dict:
    """Each flagged campaign's rows in date order; the others' are never charted, so a large
    account's thousands of campaigns are not split up for a page's few dozen charts."""
    if not len(frame) or not len(flags):
        return {}
    rows = frame[frame["campaign_id"].isin(flags["campaign_id"].unique())]
    return {cid: part.sort_values(date_column) for cid, part in rows.groupby("campaign_id")}


# Flags drawn as a chart, most severe and surest first; the rest keep their card (value,
# expected range, why, what to do) without one. A chart takes 10-12 ms of CPU to draw and 13 kB
# of SVG: a large account's week (the scale benchmark's with the most flags, 347) builds in
# 5.3-5.6 s with every flag charted and 1.5 s with 40, and its page grows by 4 MB. 40 is twice
# the sample's busiest weeks (20 flags) and takes about 0.45 s (README, "The weekly report").
MAX_FLAG_CHARTS = 40


def anomaly_cards(
    tables: ReportTables, info: pd.DataFrame, max_charts: int = MAX_FLAG_CHARTS
) -> list[dict]:
    """A card per flag of the week; the first `max_charts` (in `ordered_flags` order) with
    the chart of the metric's recent values."""
    flags = ordered_flags(tables.flags)
    by_campaign = {
        "day": (_rows_of_flagged(tables.daily, flags, "date"), "date"),
        "week": (_rows_of_flagged(tables.weekly, flags, "week_start"), "week_start"),
    }
    cards = []
    for index, flag in flags.iterrows():
        campaign_id = str(flag["campaign_id"])
        name = _text(info["campaign_name"].get(campaign_id)) if len(info) else ""
        metric = str(flag["metric"])
        kind = fmt.METRIC_KIND.get(metric, "amount")
        lower, upper = _number(flag.get("expected_lower")), _number(flag.get("expected_upper"))
        label = (
            f"{fmt.metric_label(metric)} of {campaign_id}: flagged value "
            f"{fmt.metric(metric, flag['value'])}, expected "
            f"{fmt.expected(metric, flag['expected'])}"
        )
        chart = None
        # a flag past `max_charts` keeps its card only: its series is not even picked out
        series = _flag_series(tables, flag, by_campaign) if index < max_charts else None
        if series is not None and len(series):
            chart = charts.flag_chart(
                charts.FlagChartInput(
                    dates=pd.to_datetime(series["x"]).reset_index(drop=True),
                    values=series["y"].astype("float64").reset_index(drop=True),
                    flagged_at=pd.Timestamp(flag["period_start"]),
                    value=_number(flag["value"]),
                    expected=_number(flag["expected"]),
                    lower=lower,
                    upper=upper,
                    kind=kind,
                    grain=str(flag["grain"]),
                    severity=str(flag["severity"]),
                    week_start=pd.Timestamp(tables.week),
                ),
                chart_id=f"flag{index}",
                label=label,
            )
        period = _date(flag["period_start"])
        if flag["grain"] == "week":
            period = f"week {period} – {_date(flag['period_end'])}"
        cards.append(
            {
                "anchor": f"flag-{index}",
                "campaign_id": campaign_id,
                "campaign": _campaign_label(name, campaign_id),
                "platform": _text(info["platform"].get(campaign_id)) if len(info) else "",
                "metric": metric,
                "metric_label": fmt.metric_label(metric),
                "grain": str(flag["grain"]),
                "period_start": _date(flag["period_start"]),
                "period": period,
                "severity": str(flag["severity"]),
                "anomaly_type": _text(flag.get("anomaly_type")).replace("_", " "),
                "value": {"text": fmt.metric(metric, flag["value"]), "raw": fmt.raw(flag["value"])},
                "expected": {
                    "text": fmt.expected(metric, flag["expected"]),
                    "raw": fmt.raw(flag["expected"]),
                },
                "band": (
                    f"{fmt.expected(metric, lower)} – {fmt.expected(metric, upper)}"
                    if np.isfinite(lower) and np.isfinite(upper)
                    else ""
                ),
                "confidence": fmt.percent(flag["confidence"]),
                "explanation": _text(flag.get("explanation")),
                "suggested_action": _text(flag.get("suggested_action")),
                "chart": chart,
                "chart_left_out": index >= max_charts,
                "top": str(flag["severity"]) in TOP_SEVERITIES,
            }
        )
    return cards


# --- explorer and single campaigns -------------------------------------------------------------


def campaign_rows(tables: ReportTables, flag_anchors: dict[str, list[dict]]) -> pd.DataFrame:
    """The week's health joined with the week's metrics and flag counts: one row a campaign."""
    health = tables.health.copy()
    week = _week_rows(tables.weekly, pd.Timestamp(tables.week))
    columns = {"spend": "week_spend", "leads": "week_leads", "cpl": "week_cpl"}
    columns["spend_wow_pct"] = "week_spend_wow"
    if len(week):
        present = {c: n for c, n in columns.items() if c in week.columns}
        week = week[["campaign_id", *present]].rename(columns=present)
        health = health.merge(week, on="campaign_id", how="left")
    for name in columns.values():
        if name not in health.columns:
            health[name] = np.nan
    health["n_flags"] = health["campaign_id"].map(lambda c: len(flag_anchors.get(c, [])))
    return health


def _options(frame: pd.DataFrame, column: str, order: tuple[str, ...] = ()) -> list[str]:
    values = {str(v) for v in frame[column].dropna().unique()} if len(frame) else set()
    ordered = [v for v in order if v in values]
    return ordered + sorted(values - set(ordered))


def explorer(rows: pd.DataFrame) -> dict:
    """The explorer's table column by column (`template.explorer_rows` writes its rows): a page
    holds a row per campaign judged, up to 16,000, and a dict per cell cost more than the
    numbers' formatting."""
    ordered = rows.sort_values(["total_spend", "campaign_id"], ascending=[False, True])

    def values(column: str) -> list:
        return ordered[column].tolist() if column in ordered.columns else [None] * len(ordered)

    campaign_ids = [str(v) for v in values("campaign_id")]
    cells = {}
    for key, _, kind in EXPLORER_COLUMNS:
        if key == "campaign":
            names = values("campaign_name")
            text = [_campaign_label(_text(n), c) for n, c in zip(names, campaign_ids)]
        elif kind == "text":
            text = [_text(v) for v in values(key)]
        else:
            shown = values(key)
            cells[key] = {
                "num": True,
                "text": [fmt.of_kind(kind, v) for v in shown],
                "raw": [fmt.raw(v) for v in shown],
            }
            continue
        cells[key] = {"num": False, "text": text, "raw": text}
    order = {"bucket": HEALTH_BUCKETS, "action": RECOMMENDED_ACTIONS}
    return {
        "columns": [{"label": label, "num": kind != "text"} for _, label, kind in EXPLORER_COLUMNS],
        "count": len(ordered),
        "campaign_ids": campaign_ids,
        "cells": cells,
        "attrs": {name: [_text(v) for v in values(column)] for name, _, column in FILTERS},
        "previous_bucket": [_text(v) for v in values("previous_bucket")],
        "changed": (
            [bool(v) for v in values("bucket_changed")]
            if "bucket_changed" in ordered.columns
            else [False] * len(ordered)
        ),
        "filters": [
            {"name": name, "label": label, "options": _options(rows, column, order.get(name, ()))}
            for name, label, column in FILTERS
        ],
    }


def _cpl_position(cpl, p25, p50, p75) -> str:
    """Where a CPL sits among the three CPL percentiles, in the rules' own comparisons."""
    if fmt.is_missing(cpl) or fmt.is_missing(p50):
        return "unknown"
    if not fmt.is_missing(p25) and cpl <= p25:
        return "at or below P25"
    if cpl <= p50:
        return "above P25, at or below P50"
    if not fmt.is_missing(p75) and cpl >= p75:
        return "at or above P75"
    return "above P50, below P75"


def campaign_cards(rows: pd.DataFrame, flag_anchors: dict[str, list[dict]]) -> list[dict]:
    """BAD and HERO campaigns and those that changed bucket: the reason and its numbers."""
    if not len(rows):
        return []
    changed = rows.get("bucket_changed", pd.Series(False, index=rows.index))
    changed = changed.fillna(False).astype(bool)
    chosen = rows[rows["health_bucket"].isin(["BAD", "HERO"]) | changed].copy()
    bucket_order = {"BAD": 0, "HERO": 1} | {b: 2 + i for i, b in enumerate(HEALTH_BUCKETS)}
    chosen["_order"] = chosen["health_bucket"].map(bucket_order)
    chosen = chosen.sort_values(
        ["_order", "total_spend", "campaign_id"], ascending=[True, False, True]
    )
    cards = []
    for row in chosen.to_dict("records"):
        campaign_id = str(row["campaign_id"])
        cpl, conv = row.get("cpl"), row.get("conversion_rate")
        p25, p50, p75, c75 = (row.get(c) for c in THRESHOLD_COLUMNS)
        if fmt.is_missing(conv):
            conv_check = f"Lead conversion rate unknown (no leads); the P75 is {fmt.percent(c75)}"
        elif fmt.is_missing(c75):
            conv_check = f"Lead conversion rate {fmt.percent(conv)}; no P75 (an empty universe)"
        else:
            side = "at or above" if conv >= c75 else "below"
            conv_text, c75_text = fmt.apart("percent", conv, c75)
            conv_check = f"Lead conversion rate {conv_text} is {side} the P75 of {c75_text}"
        cpl_text, p25_text, p50_text, p75_text = fmt.apart("amount", cpl, p25, p50, p75)
        percentiles = f"P25 {p25_text} · P50 {p50_text} · P75 {p75_text}"
        if fmt.is_missing(cpl):
            cpl_check = f"CPL unknown (no leads or no spend); {percentiles}"
        else:
            cpl_check = f"CPL {cpl_text} is {_cpl_position(cpl, p25, p50, p75)} ({percentiles})"
        stats = [
            ("Leads", _cell(row.get("total_leads"), "count")),
            ("Converted", _cell(row.get("converted_leads"), "count")),
            ("Lead conv. rate", _cell(conv, "percent")),
            ("CPL", _cell(cpl, "amount")),
            ("Spend", _cell(row.get("total_spend"), "amount")),
            ("ROAS", _cell(row.get("roas"), "ratio")),
            ("Days active", _cell(row.get("days_active"), "count")),
        ]
        universe = fmt.count(row.get("universe_size"))
        checks = [
            conv_check,
            cpl_check,
            f"Percentiles of a benchmark universe of {universe} campaigns"
            + ("" if bool(row.get("in_universe")) else "; this one is not in it (too few leads)"),
        ]
        if fmt.is_missing(row.get("week_spend")):
            leads = row.get("week_leads")
            week = "This week: no delivery reported" + (
                "" if fmt.is_missing(leads) else f", {fmt.count(leads)} leads"
            )
        else:
            week = (
                f"This week: spend {fmt.amount(row.get('week_spend'))} "
                f"({fmt.relative_change(row.get('week_spend_wow'))} vs last week), "
                f"{fmt.count(row.get('week_leads'))} leads, CPL {fmt.amount(row.get('week_cpl'))}"
            )
        cards.append(
            {
                "anchor": f"campaign-{campaign_id}",
                "campaign_id": campaign_id,
                "campaign": _campaign_label(_text(row.get("campaign_name")), campaign_id),
                "context": " · ".join(
                    v
                    for v in (
                        _text(row.get("platform")),
                        _text(row.get("user_id")),
                        _text(row.get("project_name")),
                    )
                    if v
                ),
                "bucket": row["health_bucket"],
                "colour": charts.BUCKET_COLOURS[row["health_bucket"]],
                "previous_bucket": _text(row.get("previous_bucket")),
                "changed": bool(row.get("bucket_changed")),
                "action": row["recommended_action"],
                "reason": _text(row.get("reason")),
                "stats": stats,
                "checks": checks,
                "week": week,
                "flags": flag_anchors.get(campaign_id, []),
            }
        )
    return cards


# --- scatter ---------------------------------------------------------------------------------


def scatter_panels(health: pd.DataFrame) -> tuple[list[charts.ScatterPanel], str]:
    """One panel per benchmark universe, with the thresholds health.assign_health used there.

    Platform-wide (the default) is one universe and one panel. With a per-platform, -project
    or -user benchmark the thresholds differ by segment; the segment column is the one within
    which every campaign shares its thresholds.
    """
    if not len(health) or not set(THRESHOLD_COLUMNS) <= set(health.columns):
        return [], "no campaigns judged this week"
    plotted = health[np.isfinite(health["cpl"]) & np.isfinite(health["conversion_rate"])]
    note = f"{len(plotted)} of {len(health)} campaigns have a CPL and a conversion rate"
    thresholds = health[list(THRESHOLD_COLUMNS)].drop_duplicates()
    if len(thresholds) <= 1:
        values = thresholds.iloc[0]
        size = int(health["in_universe"].sum()) if "in_universe" in health else 0
        title = f"All campaigns: one benchmark universe of {size} campaigns"
        return [charts.ScatterPanel(title, plotted, *values.to_numpy(dtype=float))], note
    for column in SEGMENT_COLUMNS:
        if column not in health.columns:
            continue
        per_segment = health.groupby(column, dropna=False)[list(THRESHOLD_COLUMNS)]
        if (per_segment.nunique(dropna=False) <= 1).all().all():
            break
    else:
        return [
            charts.ScatterPanel(
                "Thresholds differ per campaign (see each reason)",
                plotted,
                *[float("nan")] * 4,
            )
        ], note
    sizes = health.groupby(column, dropna=False)["in_universe"].sum().sort_values(ascending=False)
    panels = []
    for segment in sizes.index[:MAX_SCATTER_PANELS]:
        members = health[health[column].eq(segment) | (health[column].isna() & pd.isna(segment))]
        values = members[list(THRESHOLD_COLUMNS)].iloc[0].to_numpy(dtype=float)
        points = plotted[plotted.index.isin(members.index)]
        title = f"{column} {segment}: universe of {int(sizes[segment])}"
        panels.append(charts.ScatterPanel(title, points, *values))
    if len(sizes) > MAX_SCATTER_PANELS:
        note += f"; the {MAX_SCATTER_PANELS} largest of {len(sizes)} {column} universes shown"
    return panels, note


# --- the page --------------------------------------------------------------------------------


def report_context(tables: ReportTables, max_flag_charts: int = MAX_FLAG_CHARTS) -> dict:
    info = _campaign_info(tables)
    flags = anomaly_cards(tables, info, max_flag_charts)
    flag_anchors: dict[str, list[dict]] = {}
    for card in flags:
        flag_anchors.setdefault(card["campaign_id"], []).append(
            {"anchor": card["anchor"], "metric": card["metric_label"], "severity": card["severity"]}
        )
    rows = campaign_rows(tables, flag_anchors)
    panels, scatter_note = scatter_panels(rows)
    scatter_svg = (
        charts.scatter_chart(
            panels,
            chart_id="scatter",
            label="CPL against conversion rate per campaign, coloured by health bucket",
        )
        if panels
        else None
    )
    severity_counts = tables.flags["severity"].value_counts() if len(tables.flags) else {}
    return {
        "week": tables.week,
        "window": data_window(tables),
        "buckets": bucket_counts(tables),
        "moves": bucket_moves(rows),
        "actions": spend_per_action(rows),
        "totals": week_totals(tables),
        "platforms": platform_totals(tables),
        "quarantine": quarantine_summary(tables),
        "flags": flags,
        "max_flag_charts": max_flag_charts,
        "severity_counts": {s: int(severity_counts.get(s, 0)) for s in SEVERITY_RANK},
        "explorer": explorer(rows),
        "scatter": {"svg": scatter_svg, "note": scatter_note, "panels": panels},
        "campaigns": campaign_cards(rows, flag_anchors),
        "bucket_colours": charts.BUCKET_COLOURS,
    }


def summary_markdown(context: dict, page: str = "") -> str:
    """The asset page's summary in the Dagster UI: the headline numbers and what to act on."""
    window = context["window"]
    lines = [
        f"**Weekly report {window['week_start']} – {window['week_end']}**"
        + (f": `{page}`" if page else ""),
        "",
        f"- Data: delivery on {window['delivery_days']} of 7 days"
        + (f" (last {window['last_delivery']})" if window["last_delivery"] else "")
        + (
            f"; a partial week: the data covers {window['covered_days']} of its 7 days"
            if 0 < window["covered_days"] < 7
            else ""
        )
        + f"; buckets over {window['health_start']} – {window['health_end']}",
        "- Buckets: "
        + ", ".join(
            f"{b['bucket']} {b['current']}"
            + ("" if b["change"] is None else f" ({b['change_text']})")
            for b in context["buckets"]
        ),
        "- Week: "
        + ", ".join(
            f"{card['label'].split(' (')[0]} {card['value']['text']}"
            + ("" if card["change_text"] == fmt.MISSING else f" ({card['change_text']} WoW)")
            for card in context["totals"]
        ),
        "- Flags: "
        + (
            ", ".join(f"{n} {s}" for s, n in reversed(context["severity_counts"].items()) if n)
            or "none"
        ),
        f"- Quarantined rows dated this week: {context['quarantine']['week_rows']['text']} "
        f"(spend {context['quarantine']['week_spend']['text']})",
    ]
    act = [c for c in context["campaigns"] if c["bucket"] in ("BAD", "HERO")]
    if act:
        lines.append(
            "- Act on: " + ", ".join(f"{c['campaign_id']} {c['bucket']}" for c in act[:12])
        )
    top = [f for f in context["flags"] if f["top"]][:5]
    if top:
        lines += [
            "",
            "| severity | campaign | metric | period | value | expected |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {f['severity']} | {f['campaign_id']} | {f['metric_label']} | {f['period']} | "
            f"{f['value']['text']} | {f['expected']['text']} |"
            for f in top
        ]
    return "\n".join(lines)


def build_weekly_report(
    tables: ReportTables, max_flag_charts: int = MAX_FLAG_CHARTS
) -> WeeklyReport:
    """The week's page and its Markdown summary from the week's published tables, with a
    chart for the first `max_flag_charts` flags (`anomaly_cards`)."""
    for name in ("health", "weekly", "daily", "flags"):
        leaked = set(PII_COLUMNS) & set(getattr(tables, name).columns)
        if leaked:  # the published tables never hold them; a page must not start to
            raise ValueError(f"{name} holds personal data columns {sorted(leaked)}")
    context = report_context(tables, max_flag_charts)
    html = render_page(context)
    facts = {
        "week": tables.week,
        "campaigns": len(tables.health),
        "flags": len(tables.flags),
        "buckets": {b["bucket"]: b["current"] for b in context["buckets"]},
        "page_bytes": len(html.encode("utf-8")),
    }
    return WeeklyReport(
        tables.week, html, summary_markdown(context), facts, external_references(html)
    )


# Weekly pages are built in worker processes only when each worker gets at least this many:
# starting one (a fresh interpreter importing pandas and matplotlib) costs about what building
# a page of a small account does.
MIN_PAGES_PER_PROCESS = 4


def _report_of_week(out_dir: str, week: str, max_flag_charts: int) -> WeeklyReport:
    tables = load_report_tables(out_dir, week)
    # The filtered reads decode whole week files (a large account's 4 weeks of daily rows for
    # a few dozen flagged campaigns), and Arrow's pool would keep those pages while the page
    # is drawn from Python's heap, which never reuses them: 40-45 MB of a busy page's 440 MB.
    return_free_pages()
    report = build_weekly_report(tables, max_flag_charts)
    del tables
    # A page's context holds reference cycles (matplotlib's objects), so its memory would
    # come back only at the step's end; collected here, the next page starts near the
    # process's base (with the release above, six large pages in one process peak at 472-475
    # MB against 510-518 MB: docs/scale.md).
    release_memory()
    return report


def build_weekly_reports(
    out_dir: str | Location,
    weeks: list[str],
    processes: int = 1,
    max_flag_charts: int = MAX_FLAG_CHARTS,
) -> Iterator[WeeklyReport]:
    """Each week's page from the tables published under ``out_dir``, in the weeks' order.

    Pages share nothing, so a range of weeks is shared out to ``processes`` processes (this
    one and ``processes - 1`` workers, `map_in_processes`)
    (each reads its week's tables itself); a page does not depend on where it was built.
    ``MissingTablesError`` names the first week without its tables.
    """
    where = str(Location(out_dir))
    pieces = ((where, week, max_flag_charts) for week in weeks)
    if processes > 1 and len(weeks) >= MIN_PAGES_PER_PROCESS * processes:
        yield from map_in_processes(_report_of_week, pieces, processes)
    else:
        for piece in pieces:
            yield _report_of_week(*piece)
