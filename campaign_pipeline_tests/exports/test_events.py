"""The week's events built from published tables, without Dagster."""

import json
import re

import pandas as pd
import pytest

from campaign_pipeline.exports.amplitude import amplitude_payload
from campaign_pipeline.exports.events import (
    ANOMALY,
    HEALTH_CHANGE,
    SUMMARY,
    encode_json,
    week_events,
)
from campaign_pipeline.exports.ga4 import ga4_payload
from campaign_pipeline_tests.exports.support import PII, WEEK, events_for, leaks, week_tables


def test_one_summary_per_campaign_flags_at_medium_or_above_and_one_event_per_bucket_change():
    tables = week_tables(n_campaigns=12, flags_per_campaign=4)
    events = events_for(tables)
    kinds = pd.Series([e.kind for e in events]).value_counts()
    assert kinds[SUMMARY] == 12
    assert kinds[HEALTH_CHANGE] == tables["health"]["bucket_changed"].sum() == 4
    kept = tables["flags"][tables["flags"]["severity"] != "low"]
    assert kinds[ANOMALY] == len(kept) == 36
    # the severity threshold is configurable
    high = week_events(WEEK, tables["weekly"], tables["health"], tables["flags"], None, "high")
    assert (
        sum(e.kind == ANOMALY for e in high)
        == tables["flags"]["severity"].isin(["high", "critical"]).sum()
    )
    with pytest.raises(ValueError, match="min_severity 'urgent'"):
        week_events(WEEK, tables["weekly"], tables["health"], tables["flags"], None, "urgent")


def test_summary_carries_the_weeks_figures_with_nulls_left_out():
    tables = week_tables(n_campaigns=8)
    summary = next(
        e for e in events_for(tables) if e.kind == SUMMARY and e.campaign_id == "CMP0007"
    )
    props = summary.properties
    assert props["spend"] == 107.0 and props["leads"] == 0 and props["impressions"] == 10_007
    assert props["source"] == "TikTok" and props["health_bucket"] == "MIXED"
    assert props["recommended_action"] == "Keep Monitoring"
    assert props["week_start"] == WEEK and props["week_end"] == "2025-03-09"
    assert "cpl" not in props  # no leads: the CPL is null, so it is absent, not 0
    assert isinstance(props["impressions"], int)
    # the week's last millisecond, UTC
    assert summary.time_ms == int(pd.Timestamp("2025-03-10", tz="UTC").timestamp() * 1000) - 1


def test_a_column_the_tables_lack_is_a_missing_property():
    tables = week_tables(n_campaigns=3)
    tables["weekly"] = tables["weekly"].drop(columns=["platform", "revenue", "roas"])
    tables["flags"] = tables["flags"].drop(columns=["explanation"])
    events = events_for(tables)
    summaries = [e.properties for e in events if e.kind == SUMMARY]
    assert len(summaries) == 3 and not any("revenue" in p or "roas" in p for p in summaries)
    # no platform column: the source is the campaign's platform in the campaigns table
    platform_of = dict(zip(tables["campaigns"]["campaign_id"], tables["campaigns"]["platform"]))
    assert all(p["source"] == platform_of[p["campaign_id"]] for p in summaries)
    assert all("spend" in p for p in summaries)
    flags = [e.properties for e in events if e.kind == ANOMALY]
    assert flags and not any("explanation" in p for p in flags)
    # what identifies an event cannot be missing
    without_grain = tables["flags"].drop(columns=["grain"])
    with pytest.raises(KeyError, match="no grain column"):
        week_events(WEEK, tables["weekly"], tables["health"], without_grain)


def test_keys_are_deterministic_distinct_and_per_destination():
    tables = week_tables()
    first, again = events_for(tables), events_for(week_tables())
    assert [e.key("ga4") for e in first] == [e.key("ga4") for e in again]
    keys = [e.key("ga4") for e in first]
    assert len(set(keys)) == len(keys)
    assert all(e.key("ga4") != e.key("amplitude") for e in first)
    # a changed figure is the same fact (same key); another week is another fact
    tables["weekly"].loc[0, "spend"] = 999.0
    assert events_for(tables)[0].key("ga4") == first[0].key("ga4")
    other_week = week_tables(week="2025-03-10")
    assert not set(e.key("ga4") for e in events_for(other_week, "2025-03-10")) & set(keys)


def test_personal_data_in_extra_columns_never_reaches_an_event():
    tables = week_tables(n_campaigns=3)
    for name in ("weekly", "health", "flags"):
        frame = tables[name]
        tables[name] = frame.assign(
            name=PII[0], email=PII[1], phone=PII[2], lead_id=PII[3], campaign_name=PII[0]
        )
    events = events_for(tables)
    assert events
    text = json.dumps([e.properties for e in events])
    assert leaks(text, PII) == []
    allowed = {
        "campaign_id", "source", "week_start", "week_end", "spend", "impressions", "clicks",
        "conversions", "leads", "converted_leads", "revenue", "cpl", "roas", "health_bucket",
        "recommended_action", "grain", "period_start", "period_end", "metric", "anomaly_type",
        "severity", "confidence", "metric_value", "expected_value", "suggested_action",
        "explanation", "from_bucket", "to_bucket", "reason",
    }  # fmt: skip
    assert set().union(*(e.properties for e in events)) <= allowed


def test_empty_tables_give_no_events_and_payloads_are_strict_json():
    empty = pd.DataFrame()
    assert week_events(WEEK, empty, empty, empty) == []
    tables = week_tables(n_campaigns=2)
    tables["weekly"].loc[0, "roas"] = float("inf")
    for event in events_for(tables):
        encode_json(event.properties)  # never NaN or inf
    with pytest.raises(ValueError):
        encode_json({"x": float("nan")})


COUNT_PROPERTIES = ("impressions", "clicks", "conversions", "leads", "converted_leads")


def test_counts_go_out_as_integers_and_a_null_count_is_left_out():
    """The published counts are integers (``Int64``, null where not reported): a payload
    carries ``12``, never ``12.0``, and the same bytes as from whole floats."""
    weekly = week_tables(n_campaigns=4)["weekly"]
    floats = weekly.astype(dict.fromkeys(COUNT_PROPERTIES, "float64"))
    floats.loc[0, "impressions"] = float("nan")
    published = floats.astype(
        dict.fromkeys(("impressions", "clicks", "conversions"), "Int64")
        | dict.fromkeys(("leads", "converted_leads"), "int64")
    )
    assert published.loc[0, "impressions"] is pd.NA
    sent = {}
    for name, table in (("floats", floats), ("published", published)):
        tables = week_tables(n_campaigns=4) | {"weekly": table}
        summaries = [e for e in events_for(tables) if e.kind == SUMMARY]
        sent[name] = [
            encode_json(payload)
            for e in summaries
            for payload in (ga4_payload(e), amplitude_payload(e, e.key("amplitude")))
        ]
    assert len(sent["published"]) == 8 and sent["published"] == sent["floats"]
    text = b"".join(sent["published"])
    for name in COUNT_PROPERTIES:
        assert re.search(rb'"' + name.encode() + rb'":\d+[,}]', text), name
        assert not re.search(rb'"' + name.encode() + rb'":\d+\.\d', text), name
    first = json.loads(sent["published"][0])["params"]  # GA4's event of the first campaign
    assert first["campaign_id"] == published.loc[0, "campaign_id"]
    assert "impressions" not in first and isinstance(first["clicks"], int)


def _per_row_summaries(weekly: pd.DataFrame, health: pd.DataFrame, platforms: dict) -> list:
    """What a summary's properties are by the per-cell rules, a row dict at a time."""
    from campaign_pipeline.exports.events import _clean, _count, _money, _ratio, _text

    merged = weekly.merge(
        health[["campaign_id", "health_bucket", "recommended_action"]], on="campaign_id", how="left"
    ).sort_values("campaign_id")
    rows = []
    for row in merged.to_dict("records"):
        money = {c: _money(row[c]) for c in ("spend", "revenue")}
        counts = {c: _count(row[c]) for c in COUNT_PROPERTIES}
        ratios = {c: _ratio(row[c]) for c in ("cpl", "roas")}
        rows.append(
            _clean(
                {
                    "campaign_id": row["campaign_id"],
                    "source": _text(row["platform"]) or platforms.get(row["campaign_id"]),
                    "week_start": WEEK,
                    "week_end": "2025-03-09",
                    "spend": money["spend"],
                    **counts,
                    "revenue": money["revenue"],
                    **ratios,
                    "health_bucket": _text(row["health_bucket"]),
                    "recommended_action": _text(row["recommended_action"]),
                }
            )
        )
    return rows


def test_properties_built_a_column_at_a_time_are_the_per_cell_rules_on_every_kind_of_cell():
    """A week's properties are converted a whole column at a time (a large account's year has
    about 100,000 events): each value, and each absence, is what the per-cell rule gives for
    its cell, whatever the column's type and however awkward the cell."""
    n = 9
    tables = week_tables(n_campaigns=n)
    weekly = tables["weekly"].assign(
        # half-way counts round to even; a column with a count beyond int64 is converted a
        # cell at a time
        impressions=pd.array([0.5, 1.5, 2.5, -0.5, None, 7, 3, 4, -2.5], dtype="Float64"),
        clicks=pd.array([1, None, 3, 4, 5, 6, 2**53 + 2, 8, 9], dtype="Int64"),
        conversions=[0.5, 2.5, float("inf"), float("-inf"), float("nan"), 1.5, -3.5, 4, 1e19],
        leads=pd.Series([1, "2", None, 3.7, "x", True, 5, 6, 7], dtype=object),
        converted_leads=pd.array([1, 2, 3, None, 5, 6, 7, 8, 9], dtype="int64[pyarrow]"),
        spend=[0.125, 2.675, 1.005, float("nan"), -0.0, 1e-9, 123456.785, 10, float("inf")],
        revenue=pd.Series([1, None, "3.333", 2.5, 0, 1, 1, 1, 1], dtype=object),
        cpl=[1 / 3, 2 / 3, 1e-7, 123456789.0, float("nan"), float("inf"), 0.0, -1e-300, 5.0],
        roas=pd.array([0.1, None, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], dtype="float32"),
        platform=pd.Series(
            ["  Facebook ", "", None, float("nan"), pd.NA, 7, "TikTok", "LinkedIn", " "],
            dtype=object,
        ),
    )
    health = (
        tables["health"]
        .assign(
            health_bucket=pd.array(
                ["HERO", None, " GOOD", "", "BAD", "MIXED", "HERO", None, "GOOD"],
                dtype="string[pyarrow]",
            ),
            recommended_action=pd.Series(
                ["Scale Up", None, float("nan"), 3, "", "Keep", "Stop", "x", "y"], dtype=object
            ),
        )
        .iloc[:-1]  # the last campaign has no health row: no bucket, no action
    )
    platforms = {f"CMP{i:04d}": "Google Ads" for i in range(n)}
    events = week_events(WEEK, weekly, health, pd.DataFrame(), platforms=platforms)
    built = [e.properties for e in events if e.kind == SUMMARY]
    assert built == _per_row_summaries(weekly, health, platforms)
    # the same values of the same types: 2 is not 2.0 nor True
    assert [[type(v) for v in p.values()] for p in built] == [
        [type(v) for v in p.values()] for p in _per_row_summaries(weekly, health, platforms)
    ]
    assert [p.get("impressions") for p in built] == [0, 2, 2, 0, None, 7, 3, 4, -2]
    assert built[6]["clicks"] == 2**53 + 2 and "clicks" not in built[1]
    assert built[8]["conversions"] == 10**19 and built[6]["conversions"] == -4
    assert "conversions" not in built[2] and "spend" not in built[3]
    assert built[0]["source"] == "Facebook" and built[1]["source"] == "Google Ads"


def test_flag_and_health_change_properties_are_the_per_cell_rules():
    from campaign_pipeline.exports.events import _clean, _day, _ratio, _text

    tables = week_tables(n_campaigns=5, flags_per_campaign=4)
    flags = tables["flags"].assign(
        confidence=pd.array([0.9, None] * 10, dtype="Float64"),
        value=[1 / 3, float("nan"), float("inf"), 2.5] * 5,
        anomaly_type=pd.Series([" spike ", None, "", 4] * 5, dtype=object),
        period_end=tables["flags"]["period_end"].astype(str),  # text dates parse the same
    )
    events = week_events(WEEK, pd.DataFrame(), tables["health"], flags)
    kept = flags[flags["severity"] != "low"].sort_values(
        ["campaign_id", "grain", "period_start", "metric"]
    )
    expected = [
        _clean(
            {
                "campaign_id": r["campaign_id"],
                "source": None,
                "week_start": WEEK,
                "grain": _text(r["grain"]),
                "period_start": _day(r["period_start"]),
                "period_end": _day(r["period_end"]),
                "metric": _text(r["metric"]),
                "anomaly_type": _text(r["anomaly_type"]),
                "severity": _text(r["severity"]),
                "confidence": _ratio(r["confidence"]),
                "metric_value": _ratio(r["value"]),
                "expected_value": _ratio(r["expected"]),
                "suggested_action": _text(r["suggested_action"]),
                "explanation": _text(r["explanation"]),
            }
        )
        for r in kept.to_dict("records")
    ]
    assert [e.properties for e in events if e.kind == ANOMALY] == expected
    changes = [e.properties for e in events if e.kind == HEALTH_CHANGE]
    assert changes and all(set(p) >= {"from_bucket", "to_bucket", "reason"} for p in changes)
