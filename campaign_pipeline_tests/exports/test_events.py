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
