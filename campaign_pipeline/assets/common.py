"""What the weekly assets share: which weeks a run covers and how to read the layers above."""

import datetime as dt
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from campaign_pipeline.resources.storage import PipelineStorage


def daily_history(weeks_before: int) -> dg.AssetDep:
    """Depend on the same week's daily metrics and ``weeks_before`` earlier weeks.

    Weeks never materialized are allowed: they only shorten the history a detector or a
    trailing window sees, which the readers handle (fewer judgements, never false alarms).
    """
    return dg.AssetDep(
        "daily_campaign_metrics",
        partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=-weeks_before, allow_nonexistent_upstream_partitions=True
        ),
    )


def run_weeks(context: dg.AssetExecutionContext) -> list[str]:
    """The week keys this run materializes: one for a normal run, many in a single-run backfill."""
    return list(context.partition_keys)


def week_bounds(week_start: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(week_start)
    return start, start + pd.Timedelta(days=6)


def shift_week(week_start: str, weeks: int) -> str:
    return (dt.date.fromisoformat(week_start) + dt.timedelta(weeks=weeks)).isoformat()


@dataclass
class ValidatedTables:
    campaigns: pd.DataFrame
    insights: pd.DataFrame
    leads: pd.DataFrame
    lead_status_changes: pd.DataFrame


def load_validated(storage: PipelineStorage) -> ValidatedTables:
    return ValidatedTables(
        campaigns=storage.read_staging("validated_campaigns"),
        insights=storage.read_staging("validated_insights"),
        leads=storage.read_staging("validated_leads"),
        lead_status_changes=storage.read_staging("validated_lead_status_changes"),
    )


def read_weeks(
    storage: PipelineStorage, table: str, first_week: str, last_week: str
) -> pd.DataFrame:
    """The stored weekly partitions of ``table`` from first_week to last_week (missing ones skipped)."""
    weeks, week = [], first_week
    while week <= last_week:
        weeks.append(week)
        week = shift_week(week, 1)
    return storage.read_table(table, weeks)


def split_by_week(frame: pd.DataFrame, date_column: str) -> dict[str, pd.DataFrame]:
    monday = frame[date_column] - pd.to_timedelta(frame[date_column].dt.weekday, unit="D")
    return {ts.date().isoformat(): part for ts, part in frame.groupby(monday.dt.normalize())}


def schema_check(model, stored: pd.DataFrame, check_name: str = "schema") -> dg.AssetCheckResult:
    """Re-validate what was written against its pandera model (lazy: every failure counted)."""
    try:
        model.validate(stored, lazy=True)
        return dg.AssetCheckResult(
            check_name=check_name,
            passed=True,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"rows": len(stored)},
        )
    except Exception as error:  # pandera SchemaErrors / SchemaError
        return dg.AssetCheckResult(
            check_name=check_name,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description=str(error).splitlines()[0][:500],
        )


def reconcile_check(
    check_name: str, totals: dict[str, tuple[float, float]], tolerance: float = 1e-6
) -> dg.AssetCheckResult:
    """Pass when each (published, source) pair of totals agrees: nothing lost or doubled on the way."""
    differences = {name: float(published - source) for name, (published, source) in totals.items()}
    passed = all(
        abs(diff) <= tolerance * max(1.0, abs(totals[name][1]))
        for name, diff in differences.items()
    )
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={f"{name}_published": float(p) for name, (p, _) in totals.items()}
        | {f"{name}_source": float(s) for name, (_, s) in totals.items()}
        | {f"{name}_difference": d for name, d in differences.items()},
    )
