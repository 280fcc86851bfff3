"""Every asset of the code location, and the lists the jobs and checks are built from.

The weekly assets are found by their partitioning instead of by name, so adding a weekly
asset puts it in the weekly jobs, the schedule and the freshness checks without a second
list to keep in step.
"""

import warnings

# Single-run backfill policies and partition mappings that tolerate missing upstream weeks are
# "beta" in Dagster 1.13; they are what the design needs, so the warning is noise for users.
warnings.filterwarnings("ignore", message=r".*is currently in beta.*")

from campaign_pipeline.assets.anomalies import anomaly_flags  # noqa: E402
from campaign_pipeline.assets.exports import export_assets  # noqa: E402
from campaign_pipeline.assets.health import campaign_health  # noqa: E402
from campaign_pipeline.assets.ingestion import ingestion_assets, quarantine  # noqa: E402
from campaign_pipeline.assets.metrics import (  # noqa: E402
    campaign_lifetime_metrics,
    metric_assets,
)

all_assets = [*ingestion_assets, *metric_assets, anomaly_flags, campaign_health, *export_assets]

# The week's work: every asset partitioned by week.
weekly_assets = [asset for asset in all_assets if asset.partitions_def is not None]

# Published tables that are rebuilt whole (not per week).
whole_table_assets = [quarantine, campaign_lifetime_metrics]
