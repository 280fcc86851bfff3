"""Anomaly flags per week, judged causally on the trailing history of stored daily metrics."""

import tempfile
from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from campaign_pipeline.assets.common import (
    RunWeeks,
    check_stored_weeks,
    history_never_materialized,
    history_weeks,
    progress_logger,
    read_weeks,
    require_run_weeks,
    weekly_result,
    write_run_weeks,
)
from campaign_pipeline.detection import DetectionSettings
from campaign_pipeline.detection.ensemble import DAILY_COLUMNS, judge_weeks, week_calendar
from campaign_pipeline.metadata import most_severe_first
from campaign_pipeline.parallel import worker_processes
from campaign_pipeline.partitions import weekly_partitions
from campaign_pipeline.resources.storage import PipelineStorage
from campaign_pipeline.schemas import AnomalyFlags

_DEFAULTS = DetectionSettings()
PREVIEW_COLUMNS = [
    "campaign_id",
    "grain",
    "period_start",
    "metric",
    "value",
    "expected",
    "anomaly_type",
    "severity",
    "confidence",
    "explanation",
]


def detector_history_weeks(settings: DetectionSettings) -> int:
    """Weeks of stored daily metrics the detector reads before a judged week: the longer of
    the daily baseline and the weekly baseline."""
    return history_weeks(max(settings.baseline_days, 7 * settings.weekly_baseline_weeks))


class AnomalyConfig(dg.Config):
    """The knobs users change most; every other threshold keeps DetectionSettings' default.
    Each default and its reason is in docs/anomaly_detection.md (Settings)."""

    # choices, not free text: the launchpad refuses another value before the run starts
    sensitivity: Literal["low", "medium", "high"] = Field(
        default=_DEFAULTS.sensitivity,
        description=(
            "One knob for how many alerts: low gives fewer, surer alerts, high more recall "
            "(fdr, effect size, z and CUSUM threshold scaled together). Default "
            f"{_DEFAULTS.sensitivity}: the benchmarked settings as they are."
        ),
    )
    multiple_testing: Literal["bh", "bonferroni", "none"] = Field(
        default=_DEFAULTS.multiple_testing,
        description=(
            "Correction over a week's tests: bh (Benjamini-Hochberg) holds the share of false "
            "alerts among alerts near fdr; bonferroni the chance of any false alert near 0.05; "
            f"none corrects nothing. Default {_DEFAULTS.multiple_testing}: Bonferroni loses "
            "recall as the number of campaigns grows."
        ),
    )
    fdr: float = Field(
        default=_DEFAULTS.fdr,
        description=(
            "Largest share of false alerts among a week's test alerts (before the effect-size "
            f"gate). Default {_DEFAULTS.fdr}: precision stays above 0.9 on the campaign "
            "benchmark; 0.1 buys recall with precision."
        ),
    )
    min_history_days: int = Field(
        default=_DEFAULTS.min_history_days,
        description=(
            "Known days a series needs before its days are judged. Default "
            f"{_DEFAULTS.min_history_days}: fewer make the median, the scale and the weekday "
            "profile unreliable."
        ),
    )
    baseline_days: int = Field(
        default=_DEFAULTS.baseline_days,
        description=(
            f"Trailing days the expected value is learned from. Default {_DEFAULTS.baseline_days}"
            ": long enough for a median that survives a one-week outage, short enough to follow "
            "budget changes within a month."
        ),
    )
    min_relative_effect: float = Field(
        default=_DEFAULTS.min_relative_effect,
        description=(
            "Smallest change |value / expected - 1| that is flagged. Default "
            f"{_DEFAULTS.min_relative_effect}: with thousands of impressions a 3 % dip is "
            "significant but not worth acting on."
        ),
    )
    use_seasonality: bool = Field(
        default=_DEFAULTS.use_seasonality,
        description=(
            "Expect each weekday's own level (trailing same-weekday medians). Default "
            f"{_DEFAULTS.use_seasonality}: weekday patterns such as weekend dips are not anomalies."
        ),
    )
    use_count_tests: bool = Field(
        default=_DEFAULTS.use_count_tests,
        description=(
            "Judge counts and rates as counts (Poisson / negative binomial, Poisson-lognormal). "
            f"Default {_DEFAULTS.use_count_tests}: a CTR on 200 impressions is not as sure as one "
            "on 200,000."
        ),
    )
    use_cusum: bool = Field(
        default=_DEFAULTS.use_cusum,
        description=(
            f"CUSUM for sustained drifts and level shifts. Default {_DEFAULTS.use_cusum}: a slow "
            "slide no single day shows is still a change."
        ),
    )
    use_rules: bool = Field(
        default=_DEFAULTS.use_rules,
        description=(
            "Rules for impossible combinations and budget overspend (no history needed). "
            f"Default {_DEFAULTS.use_rules}: data that cannot be right needs no statistics."
        ),
    )
    use_weekly: bool = Field(
        default=_DEFAULTS.use_weekly,
        description=(
            "Also flag whole weeks against the trailing weeks. Default "
            f"{_DEFAULTS.use_weekly}: the week grain answers whether the week was unusual, the day "
            "grain which day."
        ),
    )
    use_seeds_zscore: bool = Field(
        default=_DEFAULTS.use_seeds_zscore,
        description=(
            "Add the seed project's z > 3 on the trailing window. Default "
            f"{_DEFAULTS.use_seeds_zscore}: kept for comparison only."
        ),
    )
    use_seeds_iqr: bool = Field(
        default=_DEFAULTS.use_seeds_iqr,
        description=(
            "Add the seed project's 1.5 IQR rule on the trailing window. Default "
            f"{_DEFAULTS.use_seeds_iqr}: for comparison only; alone it fires on 15-20 % of "
            "normal days."
        ),
    )
    # Processes judging a range of weeks (a backfill, `campaign-pipeline run`): the step's own
    # and `processes - 1` workers (parallel.map_in_processes); 0 means one per CPU this run
    # may use. Flags never depend on it; a run too small to share out
    # stays in the step's process (detection.ensemble.MIN_CHUNKS_PER_PROCESS).
    processes: int = Field(
        default=0,
        ge=0,
        description=(
            "Processes judging a range of weeks: the step's own and processes - 1 workers. "
            "Default 0: one per CPU the run may use. The flags never depend on it; a range too "
            "small to share out stays in the step's process."
        ),
    )

    def to_settings(self) -> DetectionSettings:
        return DetectionSettings(**self.model_dump(exclude={"processes"}))


@dg.asset(
    group_name="anomalies",
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[
        "daily_campaign_metrics",
        "validated_campaigns",
    ],
    kinds={"pandas", "parquet"},
    check_specs=[
        dg.AssetCheckSpec(
            "schema",
            asset="anomaly_flags",
            description="contract columns, severity and grain values, confidence in [0, 1]",
        )
    ],
)
def anomaly_flags(
    context: dg.AssetExecutionContext, config: AnomalyConfig, storage: PipelineStorage
) -> dg.MaterializeResult:
    """Days and weeks that behaved abnormally, with the expected value, the methods that
    fired, a severity, a confidence and an explanation a campaign manager can act on.

    Each day is judged only on data up to that day, so a past week's flags never change
    when later weeks arrive. History comes from the stored daily partitions: weeks that were
    never materialized simply give less history (and fewer judgements), never false alarms.
    """
    settings = config.to_settings()
    weeks = RunWeeks.of(context)
    require_run_weeks(storage, weeks, "daily_campaign_metrics")
    history = detector_history_weeks(settings)
    campaigns = storage.read_staging("validated_campaigns")
    unread = history_never_materialized(
        context,
        storage,
        "daily_campaign_metrics",
        weeks.history_start(history),
        weeks.last,
        f"the weeks of this run are judged without them ({history} weeks of history each, "
        "so fewer judgements and flags that can differ from their Monday runs'). Materialize "
        "daily_campaign_metrics for those weeks, then anomaly_flags again, for the flags "
        "their Monday runs give.",
    )
    # the daily rows are read into the calendar and let go, and the calendar's grids are kept
    # in a temporary directory as each is filled: the step's process holds the stretch being
    # judged, never the year (0.3 GB at 16,000 campaigns), and worker processes read their
    # own stretches
    with tempfile.TemporaryDirectory(prefix="anomaly_flags_") as directory:
        calendar = week_calendar(
            read_weeks(
                storage,
                "daily_campaign_metrics",
                weeks.history_start(history),
                weeks.last,
                columns=list(DAILY_COLUMNS),  # what the detectors use: 0.3 of 0.9 GB at 1x
                arrow_strings=True,  # a year of campaign ids as Python strings: 0.2 GB more
            ),
            list(weeks.keys),
            history_weeks=history,
            campaigns=campaigns,
            directory=directory,
        )
        history_days_read = calendar.days_with_rows if calendar is not None else 0
        # each week on its own fixed history: a backfill publishes what the Monday run would
        flags = judge_weeks(
            calendar,
            settings=settings,
            processes=worker_processes(config.processes),
            progress=progress_logger(context, "weeks judged"),
        )
    flags = flags.assign(
        period_start=pd.to_datetime(flags["period_start"]),
        period_end=pd.to_datetime(flags["period_end"]),
    )
    counts = write_run_weeks(storage, "anomaly_flags", flags, weeks, "period_start")
    severity = flags["severity"].value_counts().to_dict() if len(flags) else {}
    shown = most_severe_first(flags) if len(flags) else flags
    stored = check_stored_weeks(storage, "anomaly_flags", weeks, AnomalyFlags)
    return weekly_result(
        storage,
        "anomaly_flags",
        flags,
        counts,
        check_results=[stored.schema],
        preview=shown[[c for c in PREVIEW_COLUMNS if c in shown.columns]],
        metadata={
            "by_severity": dg.MetadataValue.json({k: int(v) for k, v in severity.items()}),
            "campaigns_flagged": int(flags["campaign_id"].nunique()) if len(flags) else 0,
            "history_days_read": history_days_read,
            "history_weeks_never_materialized": len(unread),
        },
        model=AnomalyFlags,
    )
