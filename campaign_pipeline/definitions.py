"""The code location: every asset, check, job, schedule, sensor and resource, wired once."""

from __future__ import annotations

import dagster as dg

from campaign_pipeline.assets.ingestion import ingestion_assets
from campaign_pipeline.resources.storage import PipelineStorage

all_assets = [*ingestion_assets]

ingestion_job = dg.define_asset_job(
    "ingestion_job",
    selection=dg.AssetSelection.groups("ingestion"),
    description="Read and validate the raw exports (no weekly partitions).",
)

defs = dg.Definitions(
    assets=all_assets,
    jobs=[ingestion_job],
    resources={"storage": PipelineStorage()},
)
