"""The ingestion assets through Dagster: checks, metadata, and blocking on a lost row."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from campaign_pipeline import ingestion
from campaign_pipeline.assets.ingestion import _unique_ids, ingestion_assets
from campaign_pipeline.resources.storage import PipelineStorage
from campaign_pipeline_tests.builders import failed_alone, pipeline_resources, write_exports

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
