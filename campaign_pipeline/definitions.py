"""The code location: every asset, check, job, schedule, sensor and resource, wired once."""

import dagster as dg

from campaign_pipeline.assets.anomalies import anomaly_flags
from campaign_pipeline.assets.health import campaign_health
from campaign_pipeline.assets.ingestion import ingestion_assets
from campaign_pipeline.assets.metrics import campaign_lifetime_metrics, metric_assets
from campaign_pipeline.checks import freshness_checks, freshness_checks_sensor
from campaign_pipeline.resources.storage import PipelineStorage

all_assets = [*ingestion_assets, *metric_assets, anomaly_flags, campaign_health]

weekly_assets = dg.AssetSelection.assets(
    "daily_campaign_metrics",
    "weekly_campaign_metrics",
    "weekly_totals",
    "anomaly_flags",
    "campaign_health",
)

ingestion_job = dg.define_asset_job(
    "ingestion_job",
    selection=dg.AssetSelection.groups("ingestion"),
    description="Read and validate the raw exports (whole files, not partitioned).",
)
weekly_assets_job = dg.define_asset_job(
    "weekly_assets_job",
    selection=weekly_assets,
    description="The weekly-partitioned assets of one week, from the validated layer as it stands.",
)
lifetime_job = dg.define_asset_job(
    "lifetime_job",
    selection=dg.AssetSelection.assets(campaign_lifetime_metrics),
    description="The campaign lifetime table (whole history).",
)
weekly_pipeline_job = dg.define_asset_job(
    "weekly_pipeline_job",
    selection=dg.AssetSelection.all(),
    description=(
        "Everything for one week: the ingestion layer is re-read first (cheap, and it keeps each "
        "partition run self-contained), then the week's metrics, anomalies, health and exports."
    ),
)

# --- schedules and sensors (orchestration) ---
from campaign_pipeline.schedules import build_weekly_schedule  # noqa: E402
from campaign_pipeline.sensors import (  # noqa: E402
    build_anomaly_alert_sensor,
    build_raw_file_sensor,
    build_run_failure_alert_sensor,
)

schedules: list = [build_weekly_schedule(weekly_pipeline_job)]
sensors: list = [
    build_raw_file_sensor(weekly_pipeline_job),
    build_anomaly_alert_sensor(),
    build_run_failure_alert_sensor(),
    freshness_checks_sensor,
]
# --- end schedules and sensors ---

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=freshness_checks,
    jobs=[ingestion_job, weekly_assets_job, lifetime_job, weekly_pipeline_job],
    schedules=schedules,
    sensors=sensors,
    resources={"storage": PipelineStorage()},
)
