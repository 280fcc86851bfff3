"""The code location: every asset, check, job, schedule, sensor and resource, wired once."""

import dagster as dg

from campaign_pipeline.assets import all_assets
from campaign_pipeline.checks import freshness_checks, freshness_checks_sensor
from campaign_pipeline.jobs import all_jobs, weekly_pipeline_job
from campaign_pipeline.resources.exports import export_resources
from campaign_pipeline.resources.ingestion_rules import IngestionRulesResource
from campaign_pipeline.resources.salesforce import salesforce_source_from_env
from campaign_pipeline.resources.storage import PipelineStorage
from campaign_pipeline.schedules import build_weekly_schedule
from campaign_pipeline.sensors import (
    build_anomaly_alert_sensor,
    build_raw_file_sensor,
    build_run_failure_alert_sensor,
)

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=freshness_checks,
    jobs=all_jobs,
    schedules=[build_weekly_schedule(weekly_pipeline_job)],
    sensors=[
        build_raw_file_sensor(weekly_pipeline_job),
        build_anomaly_alert_sensor(),
        build_run_failure_alert_sensor(),
        freshness_checks_sensor,
    ],
    resources={
        "storage": PipelineStorage(),
        "ingestion_rules": IngestionRulesResource(),
        **export_resources(),
        "salesforce": salesforce_source_from_env(),
    },
)
