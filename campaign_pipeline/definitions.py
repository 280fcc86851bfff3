"""The code location: every asset, check, job, schedule, sensor and resource, wired once, and
the executor its runs use (`executors.in_process_first_executor`)."""

import dagster as dg

from campaign_pipeline.assets import all_assets
from campaign_pipeline.checks import freshness_checks, freshness_checks_sensor
from campaign_pipeline.executors import in_process_first_executor
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


def build_defs(executor: dg.ExecutorDefinition) -> dg.Definitions:
    """Everything the code location holds, run by ``executor``: a function, not a second
    module-level Definitions (Dagster loads a module's only one), so that the Celery location
    (`celery_definitions`) holds the same with its own executor."""
    return dg.Definitions(
        assets=all_assets,
        asset_checks=freshness_checks,
        jobs=all_jobs,
        executor=executor,
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


defs = build_defs(in_process_first_executor)
