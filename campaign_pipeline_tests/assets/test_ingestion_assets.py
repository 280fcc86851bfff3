"""The ingestion assets through Dagster: checks, metadata, and blocking on a lost row."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from campaign_pipeline import ingestion
from campaign_pipeline.assets.ingestion import _unique_ids, ingestion_assets
from campaign_pipeline.resources.storage import PipelineStorage
from campaign_pipeline_tests._orchestration_support import INSIGHTS as TINY_INSIGHTS
from campaign_pipeline_tests.builders import (
    ISO_DATED_INSIGHTS,
    failed_alone,
    iso_dated_insights_stop_line,
    pipeline_resources,
    write_exports,
)

INSIGHTS = (
    "I1,C1,2025-01-06,10,1000,10,1\n"
    "I1,C1,2025-01-06,10,1000,10,1\n"  # exact re-delivery
    "I2,C1,2025-01-06,5,500,5,0\n"  # second ad-set part of the same day
    "I3,C1,2025-01-07,-1,500,5,0\n"  # negative spend
    "I4,C9,2025-01-07,1,50,10,1\n"  # unknown campaign
)


@pytest.fixture
def storage(tmp_storage) -> PipelineStorage:
    write_exports(Path(tmp_storage.data_dir), insights=INSIGHTS)
    return tmp_storage


def _metadata(result, asset: str) -> dict:
    for mat in result.asset_materializations_for_node(asset):
        return {k: v.value for k, v in mat.metadata.items()}
    raise AssertionError(f"{asset} was not materialized")


def test_ingestion_materializes_with_passing_checks_and_accounting_metadata(storage):
    result = dg.materialize(ingestion_assets, resources=pipeline_resources(storage))
    assert result.success
    checks = {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in result.get_asset_check_evaluations()
    }
    assert checks[("validated_insights", "row_accounting")] is True
    assert all(checks.values()), checks
    meta = _metadata(result, "validated_insights")
    assert (
        meta["rows_read"],
        meta["rows_accepted"],
        meta["rows_quarantined"],
        meta["duplicates_removed"],
    ) == (5, 2, 2, 1)
    assert meta["dagster/row_count"] == 1  # two parts summed into one campaign-day
    raw = _metadata(result, "raw_insights")
    assert raw["rows_read"] == 5
    assert raw["columns"] == "id, campaign_id, created_at, spend, impressions, clicks, conversions"
    quarantine = pd.read_parquet(storage.table_path("quarantine"))
    assert sorted(quarantine["reason_code"]) == ["negative_spend", "unknown_campaign"]
    assert not quarantine["raw_values"].str.contains("example.com").any()


def test_a_lost_row_fails_the_blocking_accounting_check(storage, monkeypatch):
    """Simulate a bug that silently drops a campaign-day after validation."""
    original = ingestion.sum_campaign_day_parts
    monkeypatch.setattr(
        ingestion, "sum_campaign_day_parts", lambda parts: original(parts).iloc[:-1]
    )
    result = dg.materialize(
        ingestion_assets, resources=pipeline_resources(storage), raise_on_error=False
    )
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }
    failed = evaluations[("validated_insights", "row_accounting")]
    assert failed.passed is False
    assert failed.metadata["difference"].value == 2
    # the check blocks what depends on validated_insights: nothing downstream materialized
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "validated_insights" in materialized
    assert "quarantine" not in materialized


@pytest.mark.parametrize(
    ("ids", "unique"),
    [
        (["L1", "L2", "L3"], True),
        (["L1", None, "L3"], True),
        (["L1", "L2", "L1"], False),
        ([None, "L2", None], False),
        ([], True),
    ],
)
@pytest.mark.parametrize("dtype", [object, "string[pyarrow]"])
def test_lead_events_check_finds_an_id_twice(ids, unique, dtype):
    """The one_row_per_lead check's test of the ids, as pandas' is_unique would say."""
    series = pd.Series(ids, dtype=dtype)
    assert series.is_unique == unique  # the reference
    assert _unique_ids(series) is unique


def test_quarantine_picked_alone_names_the_asset_to_materialize_first(storage):
    """The files' rejects are staged by the validated_* assets: the failure names one of
    them, not the staging file (there is no asset called quarantine_campaigns)."""
    message = failed_alone(ingestion_assets, ["quarantine"], pipeline_resources(storage))
    assert "materialize the asset `validated_campaigns` first" in message
    assert "quarantine_campaigns.parquet does not exist" in message


def test_a_file_with_rows_and_none_accepted_stops_every_launcher_before_any_week(
    data_dir, tmp_path
):
    """The schedule's and the raw-file sensor's job, `weekly_pipeline_job`, on insights whose
    rows are all quarantined: the blocking check on `quarantine` fails naming the file, and no
    weekly asset, export or lifetime table is built (weeks of leads without spend, which the
    export ledger would never send again once the file is corrected). The weekly and lifetime
    assets run alone on that validated layer (a backfill picked in the UI) fail with the same
    line. A header-only file (an account whose leads never moved) passes the check."""
    from campaign_pipeline.definitions import defs
    from campaign_pipeline.run_summary import NONE_ACCEPTED_CHECK

    (data_dir / "raw" / "insights.csv").write_text(ISO_DATED_INSIGHTS)
    out = tmp_path / "out"
    storage = PipelineStorage(data_dir=str(data_dir), out_dir=str(out))
    line = iso_dated_insights_stop_line(out)

    def run(job: str):
        return defs.resolve_job_def(job).execute_in_process(
            instance=instance,
            partition_key=None if job in ("lifetime_job", "ingestion_job") else "2024-01-08",
            resources=pipeline_resources(storage),
            raise_on_error=False,
        )

    def materialized(result) -> set[str]:
        return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}

    def failures(result) -> dict[str, str]:
        return {
            e.step_key: e.event_specific_data.user_failure_data.description
            if e.event_specific_data.user_failure_data
            else e.event_specific_data.error.message
            for e in result.all_events
            if e.is_step_failure
        }

    with dg.instance_for_test() as instance:
        result = run("weekly_pipeline_job")
        assert not result.success
        (stop,) = [
            e for e in result.get_asset_check_evaluations() if e.check_name == NONE_ACCEPTED_CHECK
        ]
        assert (stop.asset_key.to_user_string(), stop.passed, stop.description) == (
            "quarantine",
            False,
            line,
        )
        assert stop.severity == dg.AssetCheckSeverity.ERROR and stop.blocking
        # the whole ingestion layer is written, the quarantine the line points to included
        assert materialized(result) == {
            "raw_campaigns",
            "raw_insights",
            "raw_campaign_leads",
            "raw_lead_status_changes",
            "validated_campaigns",
            "validated_insights",
            "validated_leads",
            "validated_lead_status_changes",
            "lead_events",
            "quarantine",
        }
        assert list(failures(result)) == ["quarantine"]
        assert (out / "quarantine.parquet").is_file()
        for folder in ("daily_campaign_metrics", "weekly_totals", "exports"):
            assert not (out / folder).exists(), folder
        assert not (out / "campaign_lifetime_metrics.parquet").exists()

        # the weekly assets, or the lifetime table, alone on the validated layer as it stands
        for job, first in (
            ("weekly_assets_job", "daily_campaign_metrics"),
            ("lifetime_job", "campaign_lifetime_metrics"),
        ):
            result = run(job)
            assert not result.success and not materialized(result), job
            assert failures(result) == {first: line}, job
        assert not (out / "daily_campaign_metrics").exists() and not (out / "exports").exists()

        # corrected, with a header-only status changes file: the check passes, nothing waits
        (data_dir / "raw" / "insights.csv").write_text(TINY_INSIGHTS)
        (data_dir / "raw" / "lead_status_changes.csv").write_text(
            "id,lead_id,old_status,new_status,created_at\n"
        )
        result = run("ingestion_job")
        assert result.success
        (stop,) = [
            e for e in result.get_asset_check_evaluations() if e.check_name == NONE_ACCEPTED_CHECK
        ]
        assert stop.passed
