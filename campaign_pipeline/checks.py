"""Freshness checks on the published tables, and the sensor that evaluates them.

Schema and row-accounting checks live on the assets themselves (``check_specs``) because
they judge exactly the weeks a run wrote; freshness is about time passing with no run at all,
so it is evaluated by a sensor, in runs of its own, and never by a run that materializes.

Dagster puts every check of an asset into each run that materializes it unless the run names
its checks: the jobs here name theirs (``jobs.py`` leaves freshness out), but `dagster asset
materialize`, the UI's Materialize button and asset backfills all run the implicit asset job
with every check of the selected assets. A re-run of an old week would then report that last
week's partition is missing, which says nothing about the week it wrote. So each freshness
check stands aside in a run that materializes an asset (``evaluates_freshness``): it records
no result there, and the sensor evaluates it in a checks-only run (``freshness_checks_sensor``
also picks up a check such a run planned and left unevaluated, see ``left_unevaluated``).

Dagster 1.13 marks these builders superseded by `FreshnessPolicy` on the assets. They stay:
a `FreshnessPolicy` judges the time of an asset's latest materialization, whichever
partition it wrote, so a Wednesday re-run of an old week would pass it while last week's
partition is still missing; `build_time_partition_freshness_checks` asks whether last week's
partition itself exists. The supersession warning is silenced here only, for that reason.
"""

import datetime as dt
import warnings
from collections.abc import Iterable, Sequence

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_factories.freshness_checks.sensor import (
    freshness_checks_get_evaluations_iter,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.tags import SENSOR_NAME_TAG

from campaign_pipeline.assets import weekly_assets, whole_table_assets
from campaign_pipeline.constants import partition_timezone

# The schedule runs Mondays 06:00; by 09:00 last week's partition should exist. Three hours
# is a full run on the sample several hundred times over, yet still before people read reports.
FRESHNESS_DEADLINE_CRON = "0 9 * * 1"
FRESHNESS_SENSOR_NAME = "freshness_checks_sensor"
# Dagster's own freshness sensor ticks every 30 s; a check costs a few event-log reads.
FRESHNESS_SENSOR_INTERVAL_SECONDS = 30


def evaluates_freshness(materialized_asset_keys: Iterable[dg.AssetKey]) -> bool:
    """Whether a run evaluates its freshness checks: only a run that materializes nothing (the
    sensor's, or "Execute checks" in the UI). A run that writes some week, old or new, leaves
    them to the sensor: it judges that week's data, not the time since the last run."""
    return not any(True for _ in materialized_asset_keys)


def _standing_aside_in_materializations(checks_def: dg.AssetChecksDefinition):
    """``checks_def`` (one of Dagster's freshness multi-checks) with the same checks, name and
    evaluation, that records no result in a run materializing an asset."""
    evaluate = checks_def.node_def.compute_fn.decorated_fn

    @dg.multi_asset_check(
        specs=list(checks_def.check_specs),
        can_subset=True,
        name=checks_def.node_def.name,
        description="Freshness, evaluated by freshness_checks_sensor in runs of its own.",
    )
    def freshness(context: dg.AssetCheckExecutionContext):
        if not evaluates_freshness(context.job_def.asset_layer.selected_asset_keys):
            context.log.info(
                "freshness checks are not evaluated in a run that materializes assets: "
                f"{FRESHNESS_SENSOR_NAME} evaluates them in a run of their own"
            )
            return
        yield from evaluate(context)

    return freshness


with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    _weekly = dg.build_time_partition_freshness_checks(
        assets=weekly_assets,
        deadline_cron=FRESHNESS_DEADLINE_CRON,
        timezone=partition_timezone(),
    )
    # Whole-history tables are rebuilt every week: more than eight days old means a missed Monday.
    _whole_table = dg.build_last_update_freshness_checks(
        assets=whole_table_assets,
        lower_bound_delta=dt.timedelta(days=8),
        deadline_cron=FRESHNESS_DEADLINE_CRON,
        timezone=partition_timezone(),
    )

weekly_freshness_checks = [_standing_aside_in_materializations(c) for c in _weekly]
whole_table_freshness_checks = [_standing_aside_in_materializations(c) for c in _whole_table]
freshness_checks = [*weekly_freshness_checks, *whole_table_freshness_checks]
FRESHNESS_CHECK_KEYS = [key for checks_def in freshness_checks for key in checks_def.check_keys]


def left_unevaluated(
    instance: dg.DagsterInstance, keys: Sequence[dg.AssetCheckKey], sensor_name: str
) -> list[dg.AssetCheckKey]:
    """The checks whose latest execution was planned by a finished run that did not come from
    ``sensor_name`` and recorded no result: a run that materialized their asset.

    Dagster's freshness-sensor logic waits for such a planned evaluation to complete, which it
    never does, so a check planned that way before its first evaluation would never be
    evaluated, and one that had passed would show "skipped" until its next deadline."""
    summaries = instance.event_log_storage.get_asset_check_summary_records(list(keys))
    found = []
    for key in keys:
        latest = summaries[key].last_check_execution_record
        if latest is None or latest.status != AssetCheckExecutionRecordStatus.PLANNED:
            continue
        record = instance.get_run_record_by_id(latest.run_id)
        if record is None:  # the run was deleted: nothing will complete it
            found.append(key)
            continue
        run = record.dagster_run
        if run.is_finished and run.tags.get(SENSOR_NAME_TAG) != sensor_name:
            found.append(key)
    return found


def build_freshness_checks_sensor(
    checks: Sequence[dg.AssetChecksDefinition] = tuple(freshness_checks),
    *,
    name: str = FRESHNESS_SENSOR_NAME,
    minimum_interval_seconds: int = FRESHNESS_SENSOR_INTERVAL_SECONDS,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.SensorDefinition:
    """Requests a checks-only run of the freshness checks that are due, as Dagster's
    `build_sensor_for_freshness_checks` does (never evaluated; passed, and past the time it
    could turn overdue; failed, and the asset materialized since), plus ``left_unevaluated``."""
    keys = sorted({k for c in checks for k in c.check_keys}, key=lambda k: k.to_user_string())

    @dg.sensor(
        name=name,
        asset_selection=dg.AssetSelection.checks(*checks),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            "Evaluates the freshness checks in runs of their own: last week's partition of "
            "each weekly table by Monday 09:00, the whole-history tables updated within 8 days. "
            "Runs that materialize assets leave these checks to this sensor."
        ),
    )
    def freshness_sensor(context: dg.SensorEvaluationContext):
        due = {
            key
            for key, evaluate in freshness_checks_get_evaluations_iter(
                context=context,
                start_time=dt.datetime.now(dt.UTC),
                left_off_asset_check_key=None,
                freshness_checks=list(checks),
            )
            if evaluate
        }
        due.update(left_unevaluated(context.instance, keys, name))
        if not due:
            return dg.SkipReason(
                "no freshness check is due: each is being evaluated, has failed with no "
                "materialization since, or cannot be overdue yet"
            )
        return dg.RunRequest(asset_check_keys=sorted(due, key=lambda k: k.to_user_string()))

    return freshness_sensor


freshness_checks_sensor = build_freshness_checks_sensor()
