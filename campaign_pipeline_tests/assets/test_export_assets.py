"""The export assets through Dagster, on a few weeks of tiny raw exports with planted personal
data, against fake GA4 and Amplitude servers on 127.0.0.1: every event sent once, nothing
personal and no secret anywhere, a failed export fails its asset alone, the next run sends
only what failed."""

import json
import os
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster._serdes import serialize_value

from campaign_pipeline.assets.ingestion import ingestion_assets
from campaign_pipeline.definitions import all_assets
from campaign_pipeline.exports.amplitude import EVENT_TYPES
from campaign_pipeline.exports.events import SUMMARY
from campaign_pipeline.resources.amplitude import AmplitudeHTTP
from campaign_pipeline.resources.ga4 import GA4MeasurementProtocol
from campaign_pipeline.resources.storage import PipelineStorage
from campaign_pipeline_tests.builders import CAMPAIGNS, pipeline_resources, write_exports
from campaign_pipeline_tests.exports.fake_servers import FakeAmplitude, FakeGA4
from campaign_pipeline_tests.exports.support import (
    AMPLITUDE_KEY,
    GA4_MEASUREMENT_ID,
    GA4_SECRET,
    PII,
    leaks,
)

WEEKS = ["2025-01-06", "2025-01-13", "2025-01-20"]
EXPORTS = ["ga4_export", "amplitude_export", "export_ledger"]
WEEKLY = [
    "daily_campaign_metrics",
    "weekly_campaign_metrics",
    "weekly_totals",
    "anomaly_flags",
    "campaign_health",
    *EXPORTS,
]
NAME, EMAIL, PHONE, LEAD_ID = PII


def _insights() -> str:
    rows, i = [], 0
    for day in pd.date_range("2025-01-06", "2025-01-26"):
        for campaign, spend in (("C1", 100.0), ("C2", 40.0)):
            i += 1
            rows.append(
                f"I{i},{campaign},{day:%Y-%m-%d},{spend + day.day},{1000 + 10 * day.day},"
                f"{20 + day.day % 5},{day.day % 3}"
            )
    return "\n".join(rows) + "\n"


LEADS = "id,campaign_id,name,email,phone,lead_status,added_date,deal_value\n" + "".join(
    f"{LEAD_ID if i == 0 else f'L{i}'},C{1 + i % 2},{NAME},{EMAIL},{PHONE},"
    f"{'DONE_DEAL' if i % 3 == 0 else 'NEW'},2025-01-{6 + i % 20:02d},{50 if i % 3 == 0 else ''}\n"
    for i in range(40)
)
CHANGES = "id,lead_id,old_status,new_status,created_at\n"
# the same leads in a file that has no deal_value column (nor personal data)
LEADS_WITHOUT_DEAL_VALUE = "id,campaign_id,lead_status,added_date\n" + "".join(
    f"L{i},C{1 + i % 2},{'DONE_DEAL' if i % 3 == 0 else 'NEW'},2025-01-{6 + i % 20:02d}\n"
    for i in range(40)
)


@pytest.fixture
def storage(tmp_path, monkeypatch) -> PipelineStorage:
    monkeypatch.setenv("GA4_API_SECRET", GA4_SECRET)
    monkeypatch.setenv("AMPLITUDE_API_KEY", AMPLITUDE_KEY)
    write_exports(tmp_path, campaigns=CAMPAIGNS, insights=_insights(), leads=LEADS, changes=CHANGES)
    storage = PipelineStorage(data_dir=str(tmp_path), out_dir=str(tmp_path / "out"))
    assert dg.materialize(ingestion_assets, resources=pipeline_resources(storage)).success
    return storage


@pytest.fixture
def fakes():
    with FakeGA4(GA4_MEASUREMENT_ID, GA4_SECRET) as ga4, FakeAmplitude(AMPLITUDE_KEY) as amp:
        yield ga4, amp


def _resources(storage, ga4, amp) -> dict:
    return pipeline_resources(
        storage,
        ga4=GA4MeasurementProtocol(
            measurement_id=GA4_MEASUREMENT_ID,
            api_secret=dg.EnvVar("GA4_API_SECRET"),
            endpoint=ga4.url,
            max_tries=2,
            backoff_base_seconds=0.01,
        ),
        amplitude=AmplitudeHTTP(
            api_key=dg.EnvVar("AMPLITUDE_API_KEY"),
            endpoint=amp.url,
            max_tries=2,
            backoff_base_seconds=0.01,
        ),
    )


def _run_range(storage, ga4, amp, selection, instance):
    job = dg.Definitions(
        assets=all_assets,
        jobs=[dg.define_asset_job("range_job", selection=selection)],
        resources=_resources(storage, ga4, amp),
    ).resolve_job_def("range_job")
    return job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        tags={ASSET_PARTITION_RANGE_START_TAG: WEEKS[0], ASSET_PARTITION_RANGE_END_TAG: WEEKS[-1]},
    )


def _metadata(result, asset: str) -> dict:
    """The asset's metadata (a range run records the same metadata for each of its weeks)."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    assert events, asset
    return {k: v.value for k, v in events[0].materialization.metadata.items()}


def test_exports_send_each_event_once_with_no_personal_data_or_secret_anywhere(
    storage, fakes, capfd
):
    ga4, amp = fakes
    instance = dg.DagsterInstance.ephemeral()
    first = _run_range(storage, ga4, amp, WEEKLY, instance)
    assert first.success
    ga4_report = _metadata(first, "ga4_export")["export"]
    amp_report = _metadata(first, "amplitude_export")["export"]
    events = ga4_report["events"]
    assert events == amp_report["events"] >= 2 * len(WEEKS)  # summaries for both campaigns
    assert ga4_report["mode"] == amp_report["mode"] == "live"
    assert ga4_report["sent"] == len(ga4.events) == events
    assert amp_report["sent"] == len(amp.ingested) == events
    assert set(ga4_report["weeks"]) == set(WEEKS)
    assert ga4.over_limit == 0 and amp.over_limit == {}
    ledger = storage.read_table("export_ledger")
    assert len(ledger) == 2 * events and set(ledger["status"]) == {"sent"}
    assert sorted(storage.table_weeks("export_ledger")) == WEEKS
    assert not (storage.published_dir / "exports").exists()  # live: no payload files

    requests = (len(ga4.requests), len(amp.requests))
    again = _run_range(storage, ga4, amp, EXPORTS, instance)
    assert again.success
    assert (
        _metadata(again, "ga4_export")["sent"] == _metadata(again, "amplitude_export")["sent"] == 0
    )
    assert _metadata(again, "amplitude_export")["export"]["skipped"] == {"already sent": events}
    assert (len(ga4.requests), len(amp.requests)) == requests

    # nothing personal, no secret: payloads, Dagster's event log, metadata, files, output
    for request in ga4.requests:
        assert leaks(request["body"]) == []
        assert request["query"]["api_secret"] == GA4_SECRET  # where the secret must be
    for request in amp.requests:
        body = json.loads(request["body"])
        assert body.pop("api_key") == AMPLITUDE_KEY  # where the key must be, and only there
        assert leaks(json.dumps(body)) == []
    for run in (first, again):
        stored = "\n".join(serialize_value(record) for record in instance.all_logs(run.run_id))
        found = leaks(stored)
        assert "ga4_export" in stored and found == []
        assert leaks(json.dumps(instance.get_run_by_id(run.run_id).run_config, default=str)) == []
    files = [p for p in Path(storage.published_dir).rglob("*") if p.is_file()]
    assert any(p.name == "export_ledger.sqlite" for p in files)
    for path in files:
        assert leaks(path.read_bytes()) == [], path
    out, err = capfd.readouterr()
    assert leaks(out + err) == []
    # the planted personal data was really there to leak (the test can fail)
    assert NAME in (storage.raw_dir / "campaign_leads.csv").read_text()


def test_a_failed_export_fails_its_asset_alone_and_the_next_run_sends_only_what_failed(
    storage, fakes
):
    ga4, amp = fakes
    amp.inject(503, times=50)
    instance = dg.DagsterInstance.ephemeral()
    week = WEEKS[-1]
    result = dg.materialize(
        all_assets,
        selection=WEEKLY,
        partition_key=week,
        resources=_resources(storage, ga4, amp),
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    failures = {e.step_key: e for e in result.all_events if e.is_step_failure}
    assert set(failures) == {"amplitude_export"}
    message = failures["amplitude_export"].event_specific_data.error.message
    n = _metadata(result, "ga4_export")["events"]
    assert f"amplitude: {n} of {n} events failed: {n} HTTP 503 after 2 tries; 0 sent" in message
    materialized = {e.asset_key.path[0] for e in result.get_asset_materialization_events()}
    assert {"weekly_campaign_metrics", "anomaly_flags", "campaign_health", "ga4_export"} <= (
        materialized
    )
    ledger = storage.read_table("export_ledger", [week])  # published even though it failed
    assert ledger.groupby("destination")["status"].agg(set).to_dict() == {
        "amplitude": {"failed"},
        "ga4": {"sent"},
    }
    amp.injected.clear()
    rerun = dg.materialize(
        all_assets,
        selection=EXPORTS,
        partition_key=week,
        resources=_resources(storage, ga4, amp),
        instance=instance,
    )
    assert rerun.success
    assert _metadata(rerun, "amplitude_export")["sent"] == n == len(amp.ingested)
    assert _metadata(rerun, "ga4_export")["sent"] == 0 and len(ga4.events) == n
    ledger = storage.read_table("export_ledger", [week])
    assert set(ledger["status"]) == {"sent"}
    assert ledger.loc[ledger["destination"] == "amplitude", "attempts"].eq(3).all()


def test_leads_without_a_deal_value_column_publish_and_send_no_revenue_and_no_roas(
    tmp_path, monkeypatch, fakes
):
    monkeypatch.setenv("GA4_API_SECRET", GA4_SECRET)
    monkeypatch.setenv("AMPLITUDE_API_KEY", AMPLITUDE_KEY)
    write_exports(tmp_path, insights=_insights(), leads=LEADS_WITHOUT_DEAL_VALUE, changes=CHANGES)
    storage = PipelineStorage(data_dir=str(tmp_path), out_dir=str(tmp_path / "out"))
    ga4, amp = fakes
    resources = _resources(storage, ga4, amp)
    assert dg.materialize(ingestion_assets, resources=resources).success
    assert _run_range(storage, ga4, amp, WEEKLY, dg.DagsterInstance.ephemeral()).success
    selection = ["campaign_lifetime_metrics"]
    assert dg.materialize(all_assets, selection=selection, resources=resources).success

    weekly = storage.read_table("weekly_campaign_metrics")
    assert weekly["spend"].gt(0).all() and weekly["converted_leads"].sum() == 14
    assert weekly["revenue"].isna().all() and weekly["roas"].isna().all()  # old code: 0.0
    totals = storage.read_table("weekly_totals")
    assert totals["revenue"].isna().all() and totals["roas"].isna().all()
    per_campaign = storage.read_table("campaign_lifetime_metrics")
    assert per_campaign["revenue"].isna().all() and per_campaign["roas"].isna().all()

    summaries = [e for e in amp.ingested if e["event_type"] == EVENT_TYPES[SUMMARY]]
    assert len(summaries) == 2 * len(WEEKS)
    for event in summaries:
        properties = event["event_properties"]
        assert "spend" in properties and "cpl" in properties  # the summary was filled
        assert "roas" not in properties and "revenue" not in properties
    ga4_summaries = [e for e in ga4.events if e["name"] == SUMMARY]
    assert len(ga4_summaries) == 2 * len(WEEKS)
    assert all("roas" not in e["params"] and "revenue" not in e["params"] for e in ga4_summaries)


def test_a_runs_events_read_only_the_columns_they_carry_from_each_stored_week(tmp_path):
    """`load_week_events` reads the dozen published columns the events carry, not the weekly
    metrics' 70: the events are those of the whole tables, a column one stored week lacks is
    a missing property there, and a column no event carries is never read."""
    from campaign_pipeline.assets.common import RunWeeks
    from campaign_pipeline.assets.exports import load_week_events, read_event_columns
    from campaign_pipeline.exports.events import week_events
    from campaign_pipeline_tests.exports.support import week_tables

    storage = PipelineStorage(data_dir=str(tmp_path), out_dir=str(tmp_path / "out"))
    weeks = ["2025-03-03", "2025-03-10"]
    full = {}
    for week in weeks:
        tables = week_tables(n_campaigns=6, flags_per_campaign=3, week=week)
        # a column no event carries, and (second week) one an older file lacks
        tables["weekly"] = tables["weekly"].assign(email=EMAIL, won_leads=2)
        if week == weeks[1]:
            tables["weekly"] = tables["weekly"].drop(columns=["revenue"])
        full[week] = tables
        storage.write_table("weekly_campaign_metrics", tables["weekly"], week)
        storage.write_table("campaign_health", tables["health"], week)
        storage.write_table("anomaly_flags", tables["flags"], week)
    storage.write_staging("validated_campaigns", full[weeks[0]]["campaigns"])
    run = RunWeeks(tuple(weeks))
    read = read_event_columns(storage, "weekly_campaign_metrics", run, ("campaign_id", "email"))
    assert list(read.columns) == ["campaign_id", "email"] and len(read) == 12
    stored = read_event_columns(
        storage, "weekly_campaign_metrics", run, ("week_start", "campaign_id", "revenue", "spend")
    )
    assert "email" not in stored and stored["revenue"].isna().sum() == 6  # week 2 has none
    events = load_week_events(storage, run, "medium")
    assert list(events) == weeks
    for week in weeks:
        tables = full[week]
        expected = week_events(
            week, tables["weekly"], tables["health"], tables["flags"], tables["campaigns"]
        )
        assert events[week] == expected and len(expected) > 6
    assert not any("revenue" in e.properties for e in events[weeks[1]])
    assert all("revenue" in e.properties for e in events[weeks[0]] if e.kind == SUMMARY)


def _week_summary_spend(ga4: FakeGA4, week: str) -> dict[str, float]:
    """The spend of each campaign's week summary GA4 received for ``week``."""
    return {
        event["params"]["campaign_id"]: event["params"]["spend"]
        for event in ga4.events
        if event["name"] == SUMMARY and event["params"]["week_start"] == week
    }


def _spend_of(days) -> dict[str, float]:
    """Each campaign's spend over ``days`` in `_insights`."""
    return {
        campaign: round(sum(spend + day.day for day in days), 2)
        for campaign, spend in (("C1", 100.0), ("C2", 40.0))
    }


def _exported(tmp_path, written: str, last_day: str) -> None:
    """Raw exports whose delivery ends on ``last_day``, written (modified) at ``written``."""
    insights = "".join(
        row + "\n" for row in _insights().splitlines() if row.split(",")[2] <= last_day
    )
    raw = write_exports(
        tmp_path, campaigns=CAMPAIGNS, insights=insights, leads=LEADS, changes=CHANGES
    )
    stamp = pd.Timestamp(written, tz="UTC").timestamp()
    for path in raw.iterdir():
        os.utime(path, (stamp, stamp))


def _run_last_week(storage, ga4, amp, instance, exports=None, week=WEEKS[-1]):
    assert dg.materialize(ingestion_assets, resources=pipeline_resources(storage)).success
    resources = _resources(storage, ga4, amp) | ({"exports": exports} if exports else {})
    return dg.materialize(
        all_assets,
        selection=WEEKLY,
        partition_key=week,
        resources=resources,
        instance=instance,
    )


def test_a_week_an_export_predates_is_held_back_until_an_export_written_after_it(
    tmp_path, monkeypatch, fakes
):
    """Sent from the export of its Wednesday, the last week's summaries would stand at the
    destinations (an event is sent once). Held back, the run on the next export sends the whole
    week."""
    monkeypatch.setenv("GA4_API_SECRET", GA4_SECRET)
    monkeypatch.setenv("AMPLITUDE_API_KEY", AMPLITUDE_KEY)
    ga4, amp = fakes
    week = WEEKS[-1]  # 2025-01-20 .. 2025-01-26
    storage = PipelineStorage(data_dir=str(tmp_path), out_dir=str(tmp_path / "out"))
    instance = dg.DagsterInstance.ephemeral()
    _exported(tmp_path, written="2025-01-22 23:30", last_day="2025-01-22")
    partial = _run_last_week(storage, ga4, amp, instance)
    held = _metadata(partial, "ga4_export")["export"]
    n = held["events"]
    assert n >= 2 and held["sent"] == 0 and held["requests"] == 0
    assert held["skipped"] == {
        "held back: the newest raw export was written 2025-01-22 23:30 UTC, before the week "
        "ended; the first run on an export written after it sends them": n
    }
    assert _metadata(partial, "amplitude_export")["export"]["skipped"] == held["skipped"]
    assert (
        ga4.requests == [] and amp.requests == [] and len(storage.read_table("export_ledger")) == 0
    )

    _exported(tmp_path, written="2025-01-27 05:00", last_day="2025-01-26")
    complete = _run_last_week(storage, ga4, amp, instance)
    assert _metadata(complete, "ga4_export")["sent"] == len(ga4.events) == n
    assert _metadata(complete, "amplitude_export")["sent"] == len(amp.ingested) == n
    assert _week_summary_spend(ga4, week) == _spend_of(pd.date_range(week, periods=7))


@pytest.mark.parametrize(
    "written, send_partial_weeks",
    [
        # campaigns off from Thursday on: the export written after the week holds all there is
        ("2025-01-27 05:00", False),
        # written on the Wednesday, and sent as it stands on request
        ("2025-01-22 23:30", True),
    ],
    ids=["export-after-the-week", "send_partial_weeks"],
)
def test_a_week_the_data_end_inside_is_sent_as_it_is_when_not_held(
    tmp_path, monkeypatch, fakes, written, send_partial_weeks
):
    from campaign_pipeline.resources.exports import ExportSettings

    monkeypatch.setenv("GA4_API_SECRET", GA4_SECRET)
    monkeypatch.setenv("AMPLITUDE_API_KEY", AMPLITUDE_KEY)
    ga4, amp = fakes
    week = WEEKS[-1]
    storage = PipelineStorage(data_dir=str(tmp_path), out_dir=str(tmp_path / "out"))
    _exported(tmp_path, written=written, last_day="2025-01-22")
    settings = ExportSettings(send_partial_weeks=send_partial_weeks)
    result = _run_last_week(storage, ga4, amp, dg.DagsterInstance.ephemeral(), settings)
    report = _metadata(result, "ga4_export")["export"]
    assert report["sent"] == report["events"] == len(ga4.events) >= 2 and report["skipped"] == {}
    assert _week_summary_spend(ga4, week) == _spend_of(pd.date_range(week, "2025-01-22"))


def test_a_held_week_no_later_export_changes_is_sent_along_by_the_next_weeks_run(
    tmp_path, monkeypatch, fakes
):
    """An export written on the week's Sunday evening already held the whole week, and the next
    one changes none of its rows, so nothing runs that week again: the next week's run, on an
    export written after it, sends it along."""
    monkeypatch.setenv("GA4_API_SECRET", GA4_SECRET)
    monkeypatch.setenv("AMPLITUDE_API_KEY", AMPLITUDE_KEY)
    ga4, amp = fakes
    held_week, next_week = WEEKS[1], WEEKS[2]  # 2025-01-13 .. 19, 2025-01-20 .. 26
    storage = PipelineStorage(data_dir=str(tmp_path), out_dir=str(tmp_path / "out"))
    instance = dg.DagsterInstance.ephemeral()
    _exported(tmp_path, written="2025-01-19 22:00", last_day="2025-01-19")
    first = _run_last_week(storage, ga4, amp, instance, week=held_week)
    n = _metadata(first, "ga4_export")["export"]["weeks"][held_week]["skipped"]
    assert n >= 2 and ga4.events == [] and amp.ingested == []
    assert storage.held_export_weeks("ga4") == [held_week] == storage.held_export_weeks("amplitude")

    _exported(tmp_path, written="2025-01-27 05:00", last_day="2025-01-26")
    second = _run_last_week(storage, ga4, amp, instance, week=next_week)
    weeks = _metadata(second, "ga4_export")["export"]["weeks"]
    assert weeks[held_week]["sent"] == n and weeks[next_week]["sent"] >= 2
    assert _week_summary_spend(ga4, held_week) == _spend_of(pd.date_range(held_week, periods=7))
    assert len(amp.ingested) == len(ga4.events) == n + weeks[next_week]["sent"]
    assert storage.held_export_weeks("ga4") == [] == storage.held_export_weeks("amplitude")
    ledger = storage.read_table("export_ledger", [held_week])
    assert len(ledger) == 2 * n and set(ledger["status"]) == {"sent"}

    third = _run_last_week(storage, ga4, amp, instance, week=next_week)
    assert _metadata(third, "ga4_export")["export"]["sent"] == 0
    assert len(ga4.events) == n + weeks[next_week]["sent"]
