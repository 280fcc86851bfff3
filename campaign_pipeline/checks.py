"""Freshness checks on the published tables, and the sensor that evaluates them.

Schema and row-accounting checks live on the assets themselves (``check_specs``) because
they judge exactly the weeks a run wrote; freshness is about time passing with no run at all,
so it is evaluated by a sensor.

Dagster 1.13 marks these builders superseded by `FreshnessPolicy` on the assets. They stay:
a `FreshnessPolicy` judges the time of an asset's latest materialization, whichever
partition it wrote, so a Wednesday re-run of an old week would pass it while last week's
partition is still missing; `build_time_partition_freshness_checks` asks whether last week's
partition itself exists. The supersession warning is silenced here only, for that reason.
"""

import datetime as dt
import warnings

import dagster as dg

from campaign_pipeline.assets import weekly_assets, whole_table_assets
from campaign_pipeline.constants import partition_timezone

# The schedule runs Mondays 06:00; by 09:00 last week's partition should exist. Three hours
# is a full run on the sample several hundred times over, yet still before people read reports.
FRESHNESS_DEADLINE_CRON = "0 9 * * 1"

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    weekly_freshness_checks = dg.build_time_partition_freshness_checks(
        assets=weekly_assets,
        deadline_cron=FRESHNESS_DEADLINE_CRON,
        timezone=partition_timezone(),
    )
    # Whole-history tables are rebuilt every week: more than eight days old means a missed Monday.
    whole_table_freshness_checks = dg.build_last_update_freshness_checks(
        assets=whole_table_assets,
        lower_bound_delta=dt.timedelta(days=8),
        deadline_cron=FRESHNESS_DEADLINE_CRON,
        timezone=partition_timezone(),
    )
    freshness_checks = [*weekly_freshness_checks, *whole_table_freshness_checks]
    freshness_checks_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=freshness_checks
    )
