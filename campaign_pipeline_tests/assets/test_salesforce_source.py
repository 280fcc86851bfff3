"""The raw lead assets with the Salesforce resource on, through Dagster against a fake org on
127.0.0.1: same validated tables as the same leads in CSV files, metadata that describes the
pull, failures as one line, and the token nowhere in the run's events, config or files."""

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._serdes import serialize_value

from campaign_pipeline.assets.ingestion import ingestion_assets
from campaign_pipeline.resources.salesforce import (
    ACCESS_TOKEN_ENV,
    INSTANCE_URL_ENV,
    SalesforceSource,
)
from campaign_pipeline.resources.storage import PipelineStorage
from campaign_pipeline.salesforce.client import AUTH_MESSAGE
from campaign_pipeline_tests.builders import pipeline_resources
from campaign_pipeline_tests.fake_salesforce import FakeSalesforce


def _storage(source: Path, tmp_path: Path, name: str) -> PipelineStorage:
    shutil.copytree(source / "raw", tmp_path / name / "raw")
    return PipelineStorage(data_dir=str(tmp_path / name), out_dir=str(tmp_path / name / "out"))


def _source(**settings) -> SalesforceSource:
    return SalesforceSource(
        instance_url=dg.EnvVar(INSTANCE_URL_ENV),
        access_token=dg.EnvVar(ACCESS_TOKEN_ENV),
        campaign_key_field="Ad_Campaign_Id__c",
        batch_size=200,
        **settings,
    )


@pytest.fixture
def fake_org(salesforce_sample, monkeypatch):
    with FakeSalesforce(salesforce_sample.built.org) as sf:
        monkeypatch.setenv(INSTANCE_URL_ENV, sf.url)
        monkeypatch.setenv(ACCESS_TOKEN_ENV, sf.token)
        yield sf


def _metadata(result, asset: str) -> dict:
    for mat in result.asset_materializations_for_node(asset):
        return {k: v.value for k, v in mat.metadata.items()}
    raise AssertionError(f"{asset} was not materialized")


def _everything_the_run_stored(instance: dg.DagsterInstance, result, storage) -> str:
    events = [serialize_value(e) for e in instance.all_logs(result.run_id)]
    run = instance.get_run_by_id(result.run_id)
    files = [p.read_bytes().decode("latin-1") for p in Path(storage.data_dir).rglob("*.*")]
    return "\n".join([*events, serialize_value(run), *files])


def _staged(storage: PipelineStorage, name: str) -> pd.DataFrame:
    frame = storage.read_staging(name)
    return frame.sort_values(list(frame.columns[:2])).reset_index(drop=True)


def test_the_lead_assets_pull_from_salesforce_and_validate_like_the_csv_files(
    salesforce_sample, fake_org, tmp_path
):
    csv = _storage(salesforce_sample.csv_dir, tmp_path, "csv")
    assert dg.materialize(ingestion_assets, resources=pipeline_resources(csv)).success
    live = _storage(salesforce_sample.salesforce_dir, tmp_path, "live")
    assert not (live.raw_dir / "campaign_leads.csv").exists()
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            ingestion_assets,
            resources=pipeline_resources(live, salesforce=_source()),
            instance=instance,
        )
        assert result.success
        stored = _everything_the_run_stored(instance, result, live)

    leads = _metadata(result, "raw_campaign_leads")
    assert leads["source"] == "salesforce"
    assert leads["rows_read"] == len(salesforce_sample.built.expected_leads)
    assert leads["pages_fetched"] >= 10 and leads["requests"] == leads["pages_fetched"]
    assert leads["leads_without_campaign"] == 30
    assert leads["records_by_object"]["Lead"] == leads["rows_read"] + 30
    changes = _metadata(result, "raw_lead_status_changes")
    assert changes["source"] == "salesforce"
    assert changes["rows_read"] == len(salesforce_sample.built.expected_changes)
    assert _metadata(result, "raw_campaigns")["source"] == "csv"
    for name in ("validated_leads", "validated_lead_status_changes", "validated_insights"):
        pd.testing.assert_frame_equal(_staged(live, name), _staged(csv, name))
    assert _metadata(result, "validated_leads")["rows_quarantined"] == 0

    assert fake_org.token not in stored
    assert "person1@example.com" not in stored  # the org's personal data never came in


def test_an_expired_token_fails_the_lead_assets_with_one_line_and_no_token(
    salesforce_sample, fake_org, tmp_path
):
    fake_org.expire_token()
    live = _storage(salesforce_sample.salesforce_dir, tmp_path, "live")
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            ingestion_assets,
            resources=pipeline_resources(live, salesforce=_source()),
            instance=instance,
            raise_on_error=False,
        )
        stored = _everything_the_run_stored(instance, result, live)
    assert not result.success
    failures = {
        e.step_key: e.event_specific_data.error.message for e in result.get_step_failure_events()
    }
    assert set(failures) == {"raw_campaign_leads", "raw_lead_status_changes"}
    for message in failures.values():
        assert message.strip().splitlines()[-1].endswith(AUTH_MESSAGE)
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "raw_campaigns" in materialized and "validated_leads" not in materialized
    assert fake_org.token not in stored


def test_half_configured_fails_naming_the_missing_variable(salesforce_sample, tmp_path):
    live = _storage(salesforce_sample.salesforce_dir, tmp_path, "live")
    source = SalesforceSource(instance_url="http://127.0.0.1:9")
    result = dg.materialize(
        ingestion_assets,
        resources=pipeline_resources(live, salesforce=source),
        raise_on_error=False,
    )
    messages = [e.event_specific_data.error.message for e in result.get_step_failure_events()]
    assert len(messages) == 2
    assert all(f"{ACCESS_TOKEN_ENV} is not" in m for m in messages)
