"""A small stand-in for the pipeline: the same partitions, storage resource and shape.

An unpartitioned ingestion asset feeding weekly-partitioned assets, one of which is an
``anomaly_flags`` table written per week with contract columns, so sensors, schedules and
executors can be tested without depending on the real detection's output. Importable by
module name, so multiprocess runs can reconstruct it.
"""

import os
import time

import dagster as dg
import pandas as pd

from campaign_pipeline.executors import in_process_first_executor
from campaign_pipeline.partitions import week_window, weekly_partitions
from campaign_pipeline.resources.storage import PipelineStorage


def _busy() -> None:
    """Lets the executor test make weekly steps last long enough to see them overlap."""
    time.sleep(float(os.environ.get("TOY_STEP_SECONDS", "0")))


@dg.asset(group_name="toy_ingestion")
def toy_validated_insights(storage: PipelineStorage) -> dg.MaterializeResult:
    with storage.raw_path("insights.csv").open() as handle:
        raw = pd.read_csv(handle, dtype=str)
    storage.write_staging("toy_validated_insights", raw)
    return dg.MaterializeResult(metadata={"dagster/row_count": len(raw)})


@dg.asset(
    group_name="toy_weekly",
    partitions_def=weekly_partitions,
    deps=[toy_validated_insights],
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def toy_weekly_spend(
    context: dg.AssetExecutionContext, storage: PipelineStorage
) -> dg.MaterializeResult:
    _busy()
    insights = storage.read_staging("toy_validated_insights")
    for week in context.partition_keys:
        start, end = week_window(week)
        day = pd.to_datetime(insights["created_at"], format="mixed").dt.normalize()
        part = insights.loc[(day >= pd.Timestamp(start)) & (day <= pd.Timestamp(end))]
        storage.write_table("toy_weekly_spend", part, week)
    return dg.MaterializeResult(metadata={"weeks": len(context.partition_keys)})


# Flags the toy asset "finds": one per severity, keyed like the contract.
def toy_flags(week: str) -> pd.DataFrame:
    start, end = week_window(week)
    rows = []
    for i, severity in enumerate(["low", "medium", "high", "critical", "high"]):
        rows.append(
            {
                "campaign_id": f"c{i}",
                "grain": "day",
                "period_start": pd.Timestamp(start),
                "metric": "spend",
                "period_end": pd.Timestamp(start),
                "value": 10.0 * (i + 1),
                "expected": 5.0,
                "score": 3.0 + i,
                "methods": "toy",
                "anomaly_type": "spike",
                "severity": severity,
                "confidence": 0.9,
                "explanation": f"spend <{i}> & more",
                "suggested_action": "Check the campaign",
            }
        )
    return pd.DataFrame(rows)


# Depends on the ingestion asset only, so it and toy_weekly_spend can run side by side.
@dg.asset(
    group_name="toy_weekly",
    partitions_def=weekly_partitions,
    deps=[toy_validated_insights],
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def anomaly_flags(
    context: dg.AssetExecutionContext, storage: PipelineStorage
) -> dg.MaterializeResult:
    _busy()
    for week in context.partition_keys:
        path = storage.write_table("anomaly_flags", toy_flags(week), week)
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path.parent))})


@dg.asset(group_name="toy_failing")
def toy_failing() -> None:
    raise dg.Failure(description="toy failure: the export endpoint refused the batch")


toy_assets = [toy_validated_insights, toy_weekly_spend, anomaly_flags]

toy_weekly_job = dg.define_asset_job(
    "toy_weekly_job", selection=dg.AssetSelection.assets(*toy_assets)
)
toy_failing_job = dg.define_asset_job(
    "toy_failing_job", selection=dg.AssetSelection.assets(toy_failing)
)

defs = dg.Definitions(
    assets=[*toy_assets, toy_failing],
    jobs=[toy_weekly_job, toy_failing_job],
    resources={"storage": PipelineStorage()},
    executor=in_process_first_executor,  # the pipeline's own
)
