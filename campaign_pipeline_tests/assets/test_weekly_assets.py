"""Weekly partitions through Dagster: a week's run touches that week's rows only."""

import hashlib
import os
import shutil

import dagster as dg
import pandas as pd
import pytest

from campaign_pipeline.assets.ingestion import ingestion_assets
from campaign_pipeline.definitions import all_assets
from campaign_pipeline.partitions import weekly_partitions
from campaign_pipeline.resources.storage import PipelineStorage
from campaign_pipeline_tests.builders import (
    CAMPAIGNS,
    failed_alone,
    pipeline_resources,
    seed_health_reference,
    write_exports,
)

WEEKS = ["2025-01-06", "2025-01-13", "2025-01-20"]
WEEKLY = [
    "daily_campaign_metrics",
    "weekly_campaign_metrics",
    "weekly_totals",
    "anomaly_flags",
    "campaign_health",
]


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


LEADS = """id,campaign_id,name,email,phone,lead_status,added_date,deal_value
L1,C1,Ann,ann@example.com,1,DONE_DEAL,2025-01-07,500
L2,C1,Bob,bob@example.com,1,NEW,2025-01-14,
L3,C2,Cy,cy@example.com,1,QUALIFIED,2025-01-08,
"""
CHANGES = """id,lead_id,old_status,new_status,created_at
S1,L1,NEW,DONE_DEAL,2025-01-15 09:00:00
S2,L3,NEW,QUALIFIED,2025-01-09
"""


def _ingested_copy(template, folder) -> PipelineStorage:
    """A storage on a copy of ``template`` (raw exports, validated layer and out dir, file times
    kept): ingestion runs once per module, each test gets a store of its own to write."""
    shutil.copytree(template, folder, dirs_exist_ok=True)
    return PipelineStorage(data_dir=str(folder), out_dir=str(folder / "out"))


@pytest.fixture(scope="module")
def _ingested_exports(tmp_path_factory):
    """Three weeks of two campaigns (``_insights``, LEADS, CHANGES), ingested; copied by
    `storage`."""
    assert weekly_partitions.get_first_partition_key() <= WEEKS[0]
    folder = tmp_path_factory.mktemp("exports")
    write_exports(folder, campaigns=CAMPAIGNS, insights=_insights(), leads=LEADS, changes=CHANGES)
    storage = PipelineStorage(data_dir=str(folder), out_dir=str(folder / "out"))
    assert dg.materialize(ingestion_assets, resources=pipeline_resources(storage)).success
    return folder


@pytest.fixture
def storage(_ingested_exports, tmp_path) -> PipelineStorage:
    """The ingested three weeks, no weekly asset materialized yet, in this test's own folder."""
    return _ingested_copy(_ingested_exports, tmp_path)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _materialize_week(storage, week):
    return dg.materialize(
        all_assets, selection=WEEKLY, partition_key=week, resources=pipeline_resources(storage)
    )


@pytest.fixture(scope="module")
def _three_weeks(_ingested_exports, tmp_path_factory):
    """The ingested exports with each of the three weeks materialized in a run of its own, in
    order on a fresh store (the folder, and each week's run result); for tests that read them
    (or their own copy)."""
    folder = tmp_path_factory.mktemp("three_weeks")
    storage = _ingested_copy(_ingested_exports, folder)
    return folder, {week: _materialize_week(storage, week) for week in WEEKS}


def test_each_week_writes_only_its_rows_and_rerun_leaves_other_weeks_alone(_three_weeks, tmp_path):
    folder, runs = _three_weeks
    assert all(runs[week].success for week in WEEKS)
    storage = _ingested_copy(folder, tmp_path)
    for week in WEEKS:
        daily = pd.read_parquet(storage.table_path("daily_campaign_metrics", week))
        start = pd.Timestamp(week)
        assert daily["date"].between(start, start + pd.Timedelta(days=6)).all()
        assert len(daily) == 14  # 2 campaigns x 7 days
        weekly = pd.read_parquet(storage.table_path("weekly_campaign_metrics", week))
        assert set(weekly["week_start"]) == {start}

    others = {
        w: _digest(storage.table_path(t, w))
        for t in ("daily_campaign_metrics", "weekly_campaign_metrics")
        for w in WEEKS
        if w != WEEKS[1]
    }
    mtimes = {
        w: os.stat(storage.table_path("daily_campaign_metrics", w)).st_mtime_ns for w in WEEKS
    }
    result = _materialize_week(storage, WEEKS[1])
    assert result.success
    touched = {e.partition for e in result.get_asset_materialization_events()}
    assert touched == {WEEKS[1]}
    assert {
        w: _digest(storage.table_path(t, w))
        for t in ("daily_campaign_metrics", "weekly_campaign_metrics")
        for w in WEEKS
        if w != WEEKS[1]
    } == others
    assert (
        os.stat(storage.table_path("daily_campaign_metrics", WEEKS[0])).st_mtime_ns
        == mtimes[WEEKS[0]]
    )
    assert (
        os.stat(storage.table_path("daily_campaign_metrics", WEEKS[1])).st_mtime_ns
        > mtimes[WEEKS[1]]
    )


def test_conversion_counts_in_the_week_of_the_status_change(_three_weeks):
    folder, runs = _three_weeks
    assert all(runs[week].success for week in WEEKS)
    storage = PipelineStorage(data_dir=str(folder), out_dir=str(folder / "out"))
    weekly = storage.read_table("weekly_campaign_metrics").set_index(["campaign_id", "week_start"])
    # L1 was added in week 1 and converted (DONE_DEAL) on 2025-01-15, in week 2
    assert weekly.loc[("C1", pd.Timestamp("2025-01-06")), "leads"] == 1
    assert weekly.loc[("C1", pd.Timestamp("2025-01-06")), "converted_leads"] == 0
    assert weekly.loc[("C1", pd.Timestamp("2025-01-13")), "converted_leads"] == 1
    assert weekly.loc[("C1", pd.Timestamp("2025-01-13")), "revenue"] == 500
    # week-over-week uses the previous calendar week's partition
    assert (
        weekly.loc[("C1", pd.Timestamp("2025-01-13")), "spend_prev"]
        == weekly.loc[("C1", pd.Timestamp("2025-01-06")), "spend"]
    )


def test_single_run_backfill_over_a_range_writes_every_week(storage):
    job = dg.Definitions(
        assets=all_assets,
        jobs=[dg.define_asset_job("range_job", selection=WEEKLY)],
        resources=pipeline_resources(storage),
    ).resolve_job_def("range_job")
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    result = job.execute_in_process(
        tags={ASSET_PARTITION_RANGE_START_TAG: WEEKS[0], ASSET_PARTITION_RANGE_END_TAG: WEEKS[-1]},
    )
    assert result.success
    # one run, one materialization per asset covering all three weeks
    assert len(result.get_asset_materialization_events()) == len(WEEKLY) * len(WEEKS)
    for week in WEEKS:
        assert storage.table_path("daily_campaign_metrics", week).exists()
        assert storage.table_path("campaign_health", week).exists()
    daily = storage.read_table("daily_campaign_metrics")
    assert len(daily) == 42


@pytest.fixture(scope="module")
def _ingested_sample(tmp_path_factory):
    """Five weeks of a generated account, ingested; copied by `sample_storage`."""
    from campaign_pipeline.sample_data import generate_sample

    folder = tmp_path_factory.mktemp("sample")
    generate_sample(folder / "raw", seed=9, n_campaigns=60, n_days=35)
    storage = PipelineStorage(data_dir=str(folder), out_dir=str(folder / "out"))
    assert dg.materialize(ingestion_assets, resources=pipeline_resources(storage)).success
    return folder


@pytest.fixture
def sample_storage(_ingested_sample, tmp_path) -> PipelineStorage:
    """Five weeks of a generated account, ingested, in this test's own folder."""
    return _ingested_copy(_ingested_sample, tmp_path / "sample")


SAMPLE_WEEKS = ["2025-01-06", "2025-01-13", "2025-01-20", "2025-01-27", "2025-02-03"]


def test_lifetime_window_equals_the_seed_rules_on_the_whole_history(sample_storage):
    from campaign_pipeline import metrics

    storage, weeks = sample_storage, SAMPLE_WEEKS
    # every week's daily rows stored (in one range run): the whole history is there to read
    assert _run_range(storage, ["daily_campaign_metrics"], weeks[0], weeks[-1]).success
    result = dg.materialize(
        all_assets,
        selection=["campaign_health"],
        partition_key=weeks[-1],
        resources=pipeline_resources(storage),
        run_config={"ops": {"campaign_health": {"config": {"window": "lifetime"}}}},
    )
    assert result.success
    published = pd.read_parquet(storage.table_path("campaign_health", weeks[-1])).set_index(
        "campaign_id"
    )
    campaigns = storage.read_staging("validated_campaigns")
    events = metrics.lead_events(
        storage.read_staging("validated_leads"),
        storage.read_staging("validated_lead_status_changes"),
    )
    whole = metrics.campaign_period_summary(
        metrics.daily_campaign_metrics(
            storage.read_staging("validated_insights"), events, campaigns
        ),
        campaigns,
    )
    expected = dict(zip(whole["campaign_id"], seed_health_reference(whole)))
    assert published["health_bucket"].to_dict() == expected
    assert len(set(expected.values())) >= 3  # a real mix of buckets, not all NEEDS_MORE_DATA
    assert published["total_spend"].to_dict() == pytest.approx(
        whole.set_index("campaign_id")["total_spend"].to_dict(), nan_ok=True
    )


def test_metrics_and_health_built_a_week_at_a_time_equal_those_built_at_once(
    sample_storage, tmp_path, monkeypatch
):
    """A range run builds its daily and weekly rows and its health buckets in blocks of weeks
    to bound its memory; a daily row depends only on its own day, a weekly row on its week and
    the week before, and a week's buckets on their window and the week before, so the blocks
    must not show in the tables or their checks."""
    from campaign_pipeline.assets import health as health_assets
    from campaign_pipeline.assets import metrics as metric_assets

    at_once = PipelineStorage(data_dir=sample_storage.data_dir, out_dir=str(tmp_path / "at_once"))
    assets = ["daily_campaign_metrics", "weekly_campaign_metrics", "campaign_health"]
    tables = [*assets, "health_action_summary"]  # the last one written by campaign_health
    for module in (metric_assets, health_assets):
        monkeypatch.setattr(module, "DAILY_BLOCK_WEEKS", len(SAMPLE_WEEKS))
    assert _run_range(at_once, assets, SAMPLE_WEEKS[0], SAMPLE_WEEKS[-1]).success
    for module in (metric_assets, health_assets):
        monkeypatch.setattr(module, "DAILY_BLOCK_WEEKS", 1)
    blocked = _run_range(sample_storage, assets, SAMPLE_WEEKS[0], SAMPLE_WEEKS[-1])
    assert blocked.success
    checks = {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in blocked.get_asset_check_evaluations()
    }
    assert len(checks) == 5 and all(check.passed for check in checks.values())
    validated_spend = sample_storage.read_staging("validated_insights")["spend"].sum()
    for reconciled in (
        checks[("daily_campaign_metrics", "reconciles_with_validated")],
        checks[("weekly_campaign_metrics", "reconciles_with_daily")],
    ):
        assert reconciled.metadata["spend_source"].value == pytest.approx(validated_spend)
    for table in tables:
        for week in SAMPLE_WEEKS:
            expected = pd.read_parquet(at_once.table_path(table, week))
            assert len(expected) > 0
            pd.testing.assert_frame_equal(
                pd.read_parquet(sample_storage.table_path(table, week)), expected
            )


def test_lifetime_table_built_in_blocks_equals_one_pass_over_the_history(
    sample_storage, monkeypatch
):
    from campaign_pipeline import metric_schemas, metrics
    from campaign_pipeline.assets import metrics as metric_assets

    monkeypatch.setattr(metric_assets, "DAILY_BLOCK_WEEKS", 1)
    result = dg.materialize(
        all_assets,
        selection=["campaign_lifetime_metrics"],
        resources=pipeline_resources(sample_storage),
    )
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    campaigns = sample_storage.read_staging("validated_campaigns")
    one_pass = metrics.campaign_period_summary(
        metrics.daily_campaign_metrics(
            sample_storage.read_staging("validated_insights"),
            sample_storage.read_staging("lead_events"),
            campaigns,
        ),
        campaigns,
    )
    # exactly equal, not close: each campaign's days are summed in the same order
    pd.testing.assert_frame_equal(
        sample_storage.read_table("campaign_lifetime_metrics"),
        metric_schemas.CampaignPeriodSummary.validate(one_pass),
    )


def test_health_config_exposes_every_threshold_of_the_rules():
    import dataclasses

    from campaign_pipeline.assets.health import HealthConfig
    from campaign_pipeline.health import HealthRules

    names = {f.name for f in dataclasses.fields(HealthRules)}
    assert names <= set(HealthConfig.model_fields)
    changed = HealthConfig(min_leads=3, bad_cpl_quantile=0.9, benchmark_scope="platform").to_rules()
    assert (changed.min_leads, changed.bad_cpl_quantile, changed.benchmark_scope) == (
        3,
        0.9,
        "platform",
    )
    assert HealthConfig().to_rules() == HealthRules()


def test_health_thresholds_from_run_config_reach_the_published_reasons(storage):
    for week in WEEKS[:2]:
        assert dg.materialize(
            all_assets,
            selection=["daily_campaign_metrics"],
            partition_key=week,
            resources=pipeline_resources(storage),
        ).success
    result = dg.materialize(
        all_assets,
        selection=["campaign_health"],
        partition_key=WEEKS[1],
        resources=pipeline_resources(storage),
        run_config={"ops": {"campaign_health": {"config": {"min_leads": 1, "min_days_active": 2}}}},
    )
    assert result.success
    published = pd.read_parquet(storage.table_path("campaign_health", WEEKS[1])).set_index(
        "campaign_id"
    )
    # two and one leads: under the default min_leads of 10 both would wait for more data; at 1,
    # C2 (1 of 1 converted, cheaper lead) is the top converter and C1 pays above the median CPL
    assert published["health_bucket"].to_dict() == {"C1": "MIXED", "C2": "HERO"}
    assert published.loc["C1", "reason"].startswith("converting (1 of 2 leads, 50.0%)")


def test_every_published_weekly_table_has_passing_schema_and_reconciliation_checks(_three_weeks):
    folder, runs = _three_weeks
    result = runs[WEEKS[0]]  # the first run on the fresh store
    storage = PipelineStorage(data_dir=str(folder), out_dir=str(folder / "out"))
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in result.get_asset_check_evaluations()
    }
    for table in WEEKLY:
        assert evaluations[(table, "schema")] is True, table
    assert evaluations[("daily_campaign_metrics", "reconciles_with_validated")] is True
    assert evaluations[("weekly_campaign_metrics", "reconciles_with_daily")] is True
    assert evaluations[("weekly_totals", "reconciles_with_weekly_campaign_metrics")] is True
    (flagged,) = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "anomaly_flags"
    ]
    # the detector's history: the 7 stored days of the week (earlier weeks never ran), not
    # the 9 weeks of calendar it could have read
    assert flagged.metadata["history_days_read"].value == 7
    # every weekly table stores its week the same way, so tables join on it as read
    import pyarrow.parquet as pq

    week_types = {
        table: str(
            pq.read_schema(storage.table_path(table, WEEKS[0]).local_path).field("week_start").type
        )
        for table in [*WEEKLY, "health_action_summary"]
        if table not in ("daily_campaign_metrics", "anomaly_flags")  # keyed by day / period
    }
    assert set(week_types.values()) == {"timestamp[ns]"}, week_types


def test_weekly_totals_count_the_weeks_quarantined_rows_and_reconcile_with_the_raw_file(tmp_path):
    """Published spend + quarantined spend = the raw file's spend of the week (no duplicates
    here), and a row with an implausible amount is counted but its amount is not money."""
    bad = (
        "B1,C1,2025-01-07,-4,500,5,0\n"  # negative spend
        "B2,C9,2025-01-08,7.5,50,10,1\n"  # unknown campaign
        "B3,C1,2025-01-15,3,100,200,1\n"  # clicks > impressions, week 2
        "B4,C1,bad-date,9,10,1,0\n"  # no readable date: in no week
    )
    write_exports(
        tmp_path, campaigns=CAMPAIGNS, insights=_insights() + bad, leads=LEADS, changes=CHANGES
    )
    storage = PipelineStorage(data_dir=str(tmp_path), out_dir=str(tmp_path / "out"))
    assert dg.materialize(ingestion_assets, resources=pipeline_resources(storage)).success
    for week in WEEKS:  # weekly_totals and the tables it is built from, a run per week
        assert dg.materialize(
            all_assets,
            selection=["daily_campaign_metrics", "weekly_campaign_metrics", "weekly_totals"],
            partition_key=week,
            resources=pipeline_resources(storage),
        ).success
    totals = storage.read_table("weekly_totals")
    portfolio = totals[totals["scope"] == "all"].set_index("week_start")
    assert portfolio["quarantined_rows"].tolist() == [2, 1, 0]
    raw = pd.read_csv(tmp_path / "raw" / "insights.csv")
    raw["day"] = pd.to_datetime(raw["created_at"], errors="coerce")
    for week in WEEKS:
        start = pd.Timestamp(week)
        in_week = raw["day"].between(start, start + pd.Timedelta(days=6))
        published = portfolio.loc[start, "spend"]
        assert published + portfolio.loc[start, "quarantined_spend"] == pytest.approx(
            raw.loc[in_week, "spend"].sum()
        )
    assert totals.loc[totals["scope"] != "all", "quarantined_rows"].isna().all()


def test_reconcile_check_fails_on_a_lost_amount():
    from campaign_pipeline.assets.common import reconcile_check

    assert reconcile_check("r", {"spend": (100.0, 100.0)}).passed
    failed = reconcile_check("r", {"spend": (99.0, 100.0), "leads": (5, 5)})
    assert not failed.passed and failed.metadata["spend_difference"].value == -1.0


def test_stored_weeks_are_written_and_checked_one_week_at_a_time(tmp_storage):
    """Every week of the run gets its file (an empty one for a week without rows); the check
    re-reads them, so a week spoiled after writing fails it, and totals add up across weeks."""
    import pandera.pandas as pa

    from campaign_pipeline.assets.common import RunWeeks, check_stored_weeks, write_run_weeks

    model = pa.DataFrameSchema(
        {"day": pa.Column("datetime64[ns]"), "scope": pa.Column(str), "spend": pa.Column(float)}
    )
    weeks = RunWeeks(("2024-01-01", "2024-01-08", "2024-01-15"))
    frame = pd.DataFrame(
        {
            "day": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-16", "2024-01-30"]),
            "scope": ["all", "meta", "all", "all"],
            "spend": [1.0, 2.0, 4.0, 8.0],
        }
    )
    counts = write_run_weeks(tmp_storage, "t", frame, weeks, "day")
    assert counts == {"2024-01-01": 2, "2024-01-08": 0, "2024-01-15": 1}  # 01-30: not in the run
    assert tmp_storage.table_weeks("t") == list(weeks.keys)
    stored = check_stored_weeks(
        tmp_storage, "t", weeks, model, ("spend",), totals_of=lambda w: w[w["scope"] == "all"]
    )
    assert stored.schema.passed and stored.rows == 3 and stored.totals == {"spend": 5.0}

    tmp_storage.write_table("t", frame.iloc[2:3].assign(spend="x"), "2024-01-15")
    failed = check_stored_weeks(tmp_storage, "t", weeks, model)
    assert not failed.schema.passed and "spend" in failed.schema.description


def test_freshness_checks_cover_every_published_table():
    from campaign_pipeline.definitions import defs

    keys = {
        key.asset_key.to_user_string()
        for check in defs.asset_checks or []
        for key in check.check_keys
    }
    assert {
        "daily_campaign_metrics",
        "weekly_campaign_metrics",
        "weekly_totals",
        "anomaly_flags",
        "campaign_health",
        "quarantine",
        "campaign_lifetime_metrics",
    } <= keys


def _run_range(storage, selection, first, last):
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    job = dg.Definitions(
        assets=all_assets,
        jobs=[dg.define_asset_job("range_job", selection=selection)],
        resources=pipeline_resources(storage),
    ).resolve_job_def("range_job")
    return job.execute_in_process(
        tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
    )


def test_a_range_backfill_publishes_the_flags_each_week_gets_alone(tmp_path):
    """A single-run backfill must publish for each week what that week's own Monday run would:
    judged in one call, later weeks would see a longer past (CUSUM state, learned tails)."""
    from campaign_pipeline.sample_data import generate_sample

    generate_sample(tmp_path / "raw", seed=4, n_campaigns=80, n_days=84, anomalies=True)
    storage = PipelineStorage(data_dir=str(tmp_path), out_dir=str(tmp_path / "out"))
    assert dg.materialize(ingestion_assets, resources=pipeline_resources(storage)).success
    weeks = [d.date().isoformat() for d in pd.date_range("2025-01-06", periods=12, freq="7D")]
    assert _run_range(storage, ["daily_campaign_metrics"], weeks[0], weeks[-1]).success
    judged = weeks[-4:]
    assert _run_range(storage, ["anomaly_flags"], judged[0], judged[-1]).success
    in_range = {w: pd.read_parquet(storage.table_path("anomaly_flags", w)) for w in judged}
    for week in judged:
        assert dg.materialize(
            all_assets,
            selection=["anomaly_flags"],
            partition_key=week,
            resources=pipeline_resources(storage),
        ).success
    alone = {w: pd.read_parquet(storage.table_path("anomaly_flags", w)) for w in judged}
    assert sum(map(len, alone.values())) >= 10  # real flags to compare, not empty tables
    for week in judged:
        pd.testing.assert_frame_equal(in_range[week], alone[week])


HISTORY_READERS = ("anomaly_flags", "campaign_health")


def _history_warnings_and_gaps(storage, week) -> dict[str, tuple[list[str], int]]:
    """Materialize ``week``'s weekly assets; for each of HISTORY_READERS, its warnings about
    unstored history weeks, and the count its metadata gives."""
    import logging

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            all_assets,
            selection=WEEKLY,
            partition_key=week,
            resources=pipeline_resources(storage),
            instance=instance,
        )
        assert result.success
        logs = instance.all_logs(result.run_id)
    found = {}
    for asset in HISTORY_READERS:
        warnings = [
            entry.user_message
            for entry in logs
            if entry.step_key == asset and entry.level == logging.WARNING
        ]
        [materialization] = result.asset_materializations_for_node(asset)
        found[asset] = warnings, materialization.metadata["history_weeks_never_materialized"].value
    return found


@pytest.fixture(scope="module")
def _history_runs(_ingested_exports, _three_weeks, tmp_path_factory) -> dict:
    """The week 2025-01-20 picked alone on a fresh store ("alone"); the same week again on a
    copy of the store whose three weeks ran in order (`_three_weeks`: the two weeks before it
    are stored, "stored"); then, there, a week past the data ("past")."""
    alone = _ingested_copy(_ingested_exports, tmp_path_factory.mktemp("history"))
    runs = {"alone": _history_warnings_and_gaps(alone, WEEKS[2])}
    folder, three_runs = _three_weeks
    assert all(three_runs[week].success for week in WEEKS[:2])
    storage = _ingested_copy(folder, tmp_path_factory.mktemp("history_stored"))
    runs["stored"] = _history_warnings_and_gaps(storage, WEEKS[2])
    runs["past"] = _history_warnings_and_gaps(storage, "2025-03-10")
    return runs


def test_flags_judged_without_stored_history_weeks_are_warned_of(_history_runs):
    """One week picked alone on a fresh store: the two weeks of data before it were never
    materialized, so it is judged on less history than its Monday run had."""
    warnings, gaps = _history_runs["alone"]["anomaly_flags"]
    assert gaps == 2
    [warning] = warnings
    assert "daily_campaign_metrics has never been materialized for 2 weeks (2025-01-06 .. " in (
        warning
    )
    assert "though they hold accepted delivery or lead events" in warning
    assert "(8 weeks of history each" in warning
    # with the weeks before it stored, nothing is missing: the weeks before the data are not
    assert _history_runs["stored"]["anomaly_flags"] == ([], 0)
    # nor are the weeks after the data ends: a week picked past the data is not warned of them
    assert _history_runs["past"]["anomaly_flags"] == ([], 0)


def test_buckets_judged_without_stored_window_weeks_are_warned_of(_history_runs):
    """The same for campaign_health: its 28-day window of the week picked alone (and of the
    week before, for previous_bucket) reaches into two weeks of data never materialized, so
    its buckets are judged on 7 of the 28 days their rows name."""
    warnings, gaps = _history_runs["alone"]["campaign_health"]
    assert gaps == 2
    [warning] = warnings
    assert warning.startswith(
        "daily_campaign_metrics has never been materialized for 2 weeks (2025-01-06 .. "
        "2025-01-13), though they hold accepted delivery or lead events: the buckets of this "
        "run are judged without them, on fewer days than the window their rows name (28 days)"
    )
    assert "then campaign_health again" in warning
    assert _history_runs["stored"]["campaign_health"] == ([], 0)


def test_weeks_of_a_gap_in_the_data_are_not_named_never_materialized(tmp_path):
    """Data in 2025-01-06 .. 01-19 and 2025-03-03 .. 03-09, the week 2025-03-03 picked alone:
    of the weeks the detector and the buckets read before it, only the two holding data were
    never materialized; the six of the gap hold nothing, stored or not."""
    rows = [
        f"I{i},C1,{day:%Y-%m-%d},100,1000,20,1"
        for i, day in enumerate(
            [*pd.date_range("2025-01-06", "2025-01-19"), *pd.date_range("2025-03-03", "2025-03-09")]
        )
    ]
    write_exports(
        tmp_path,
        campaigns=CAMPAIGNS,
        insights="\n".join(rows) + "\n",
        leads=LEADS,
        changes=CHANGES,
    )
    storage = PipelineStorage(data_dir=str(tmp_path), out_dir=str(tmp_path / "out"))
    assert dg.materialize(ingestion_assets, resources=pipeline_resources(storage)).success
    found = _history_warnings_and_gaps(storage, "2025-03-03")
    warnings, gaps = found["anomaly_flags"]
    assert gaps == 2
    [warning] = warnings
    assert "never been materialized for 2 weeks (2025-01-06 .. 2025-01-13)" in warning
    # the buckets' 4 weeks before 2025-03-03 all lie in the gap
    assert found["campaign_health"] == ([], 0)


@pytest.mark.parametrize(
    ("asset", "upstream"),
    [
        ("weekly_campaign_metrics", "daily_campaign_metrics"),
        ("anomaly_flags", "daily_campaign_metrics"),
        ("campaign_health", "daily_campaign_metrics"),
        ("weekly_totals", "weekly_campaign_metrics"),
        ("ga4_export", "weekly_campaign_metrics"),
    ],
)
def test_an_asset_picked_alone_fails_naming_the_upstream_week_never_materialized(
    storage, _three_weeks, tmp_path, asset, upstream
):
    """One asset picked alone in the UI, for a week its upstream table never had: a clear
    failure, and no file for the week (an empty one would read as "judged: nothing found")."""
    message = failed_alone(all_assets, [asset], pipeline_resources(storage), partition_key=WEEKS[1])
    assert f"{upstream} has never been materialized for 1 week ({WEEKS[1]}) of this run" in message
    assert "KeyError" not in message
    assert not storage.table_weeks(asset if asset != "ga4_export" else "export_ledger")
    # the same asset runs once its upstream weeks are there: picked alone on a copy of the
    # store whose weekly assets ran for every week (`_three_weeks`)
    folder, runs = _three_weeks
    assert runs[WEEKS[1]].success
    stored = _ingested_copy(folder, tmp_path / "stored")
    assert dg.materialize(
        all_assets, selection=[asset], partition_key=WEEKS[1], resources=pipeline_resources(stored)
    ).success


def test_the_ledger_picked_alone_for_a_week_no_export_ran_fails_and_writes_nothing(storage):
    """export_ledger for a week neither export ran: a clear failure, not an empty ledger file
    that reads as "sent nothing"; once an export ran for the week, the ledger publishes it."""
    with dg.DagsterInstance.ephemeral() as instance:
        assert _materialize_week(storage, WEEKS[1]).success
        message = failed_alone(
            all_assets,
            ["export_ledger"],
            pipeline_resources(storage),
            partition_key=WEEKS[1],
            instance=instance,
        )
        assert (
            f"neither ga4_export nor amplitude_export has ever been materialized for 1 week "
            f"({WEEKS[1]}) of this run: materialize them" in message
        )
        assert not storage.table_weeks("export_ledger")
        for selection in (["ga4_export"], ["export_ledger"]):
            assert dg.materialize(
                all_assets,
                selection=selection,
                partition_key=WEEKS[1],
                resources=pipeline_resources(storage),
                instance=instance,
            ).success
    assert storage.table_weeks("export_ledger") == [WEEKS[1]]


def test_the_lifetime_table_checks_describe_the_whole_history():
    """campaign_lifetime_metrics is one file of the whole history, not weeks."""
    from campaign_pipeline.assets.metrics import campaign_lifetime_metrics

    specs = {spec.name: spec.description for spec in campaign_lifetime_metrics.check_specs}
    assert specs == {
        "schema": "the stored table passes the table's pandera model",
        "reconciles_with_validated": (
            "totals equal those of validated over the whole history (nothing lost or doubled)"
        ),
    }
