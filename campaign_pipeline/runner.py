"""`campaign-pipeline run`: every asset for every week in the raw folder, through Dagster.

The order is the asset graph's: the ingestion layer once, then the weeks the accepted rows
cover, each range of consecutive weeks as ONE run of the weekly assets (their single-run
backfill policy: the validated layer and the daily history are read once for the whole range,
not once per week), then the lifetime table. A long gap without data between the rows (a
mistyped year) is not built (`plan_weeks`), so a run costs what its data hold, not its span.
Settings reach the assets as Dagster run configuration (resource config), the same way a
launchpad or a schedule passes them, so nothing depends on environment variables set before the
definitions are imported.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from campaign_pipeline.constants import MAX_GAP_WEEKS, PROGRESS_PREFIX
from campaign_pipeline.partitions import describe_stretches, describe_weeks, week_ranges

if TYPE_CHECKING:
    from campaign_pipeline.resources.storage import PipelineStorage

WEEKLY_JOB = "weekly_assets_job"


class RunFailed(Exception):
    """A Dagster run of the pipeline failed; the message lists the failed steps and checks."""

    def __init__(self, lines: list[str], user_error: bool = False):
        self.lines = lines
        self.user_error = user_error  # the failure is the input's (a raw file), not the code's
        super().__init__("; ".join(lines))


@dataclass
class PipelineRun:
    """What a run did, for the summary."""

    weeks: list[str] = field(default_factory=list)  # built, in date order
    skipped_weeks: list[str] = field(default_factory=list)  # not complete yet
    not_built: list[str] = field(default_factory=list)  # complete, no data (`plan_weeks`)
    ingestion: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0
    exports: dict[str, dict] = field(default_factory=dict)  # export asset -> its report
    export_failures: list[str] = field(default_factory=list)


def storage_run_config(data_dir: str, out_dir: str) -> dict:
    return {"resources": {"storage": {"config": {"data_dir": data_dir, "out_dir": out_dir}}}}


def merge_run_config(base: dict, extra: dict | None) -> dict:
    """``extra`` over ``base``, merged key by key (so extra resources keep storage's)."""
    merged = dict(base)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_run_config(merged[key], value)
        else:
            merged[key] = value
    return merged


def _quiet(run_config: dict) -> dict:
    """No Dagster console output: each finished step prints a line (``_step_progress``) and
    each failure one line (``_failures``), instead of Dagster's stack traces."""
    return run_config | {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def weeks_between(first_day: pd.Timestamp, last_day: pd.Timestamp) -> list[str]:
    """Every Monday-start week from the one holding ``first_day`` to the one holding
    ``last_day``, empty weeks in between included."""
    first_monday = first_day - pd.Timedelta(days=first_day.weekday())
    return [d.date().isoformat() for d in pd.date_range(first_monday, last_day, freq="7D")]


@dataclass(frozen=True)
class WeekPlan:
    """Which weeks of the accepted rows' span a run builds, as ranges of consecutive weeks."""

    stretches: tuple[tuple[str, ...], ...]  # each built as ONE range run, in date order
    not_built: tuple[str, ...]  # weeks holding no accepted delivery or lead event, left out

    @property
    def weeks(self) -> list[str]:
        return [week for stretch in self.stretches for week in stretch]

    def within(self, keep: set[str]) -> WeekPlan:
        """The plan for the weeks in ``keep`` only (the complete ones)."""
        stretches = (tuple(week for week in stretch if week in keep) for stretch in self.stretches)
        return WeekPlan(
            tuple(stretch for stretch in stretches if stretch),
            tuple(week for week in self.not_built if week in keep),
        )


def plan_weeks(weeks: list[str], data_weeks: set[str], max_gap_weeks: int) -> WeekPlan:
    """The weeks of ``weeks`` (consecutive keys, in order) to build: each week holding data,
    the weeks of a gap without data of at most ``max_gap_weeks`` weeks between them, and the
    week just before each week with data. That week's buckets are what the next week's report
    compares with (read from the published campaign_health, not recomputed), so a week after
    a long gap gets the page a run over the whole span gives, whatever the health window.
    Every other table a week with data publishes is computed from stored daily metrics, and a
    week without data adds no row to them, built or not."""
    build = []
    gap: list[str] = []
    for week in [*weeks, None]:  # None: the end, closing a gap that reaches it
        if week is not None and week not in data_weeks:
            gap.append(week)
            continue
        between = bool(build) and week is not None  # a gap with data on both sides
        if between and len(gap) <= max_gap_weeks:
            build += gap
        elif gap and week is not None:
            build.append(gap[-1])  # the week before a week with data
        gap = []
        if week is not None:
            build.append(week)
    built = set(build)
    stretches = tuple(week_ranges(build))
    return WeekPlan(stretches, tuple(week for week in weeks if week not in built))


def merge_export_reports(first: dict, second: dict) -> dict:
    """One destination's export reports (`DestinationReport.to_metadata`) of two runs as one:
    counts added, files and weeks joined."""
    merged = dict(first)
    for key, value in second.items():
        before = merged.get(key)
        if before is None or isinstance(value, (str, bool)):
            merged[key] = before or value  # the same mode and why; the first stop's reason
        elif isinstance(value, (int, float)):
            merged[key] = before + value
        elif isinstance(value, list):
            merged[key] = [*before, *value]
        elif key == "weeks":  # week -> its counts: no week is in two runs
            merged[key] = {**before, **value}
        else:  # reason -> count
            merged[key] = {k: before.get(k, 0) + value.get(k, 0) for k in {**before, **value}}
    return merged


def partial_week_notes(
    weeks: list[str], first_day: pd.Timestamp, last_day: pd.Timestamp
) -> list[str]:
    """Notes for the weeks processed that the accepted rows begin or end inside: such a week's
    figures cover a few days, and a reader comparing it with its neighbour should know (the
    week after a partial first week shows its changes against a few days)."""
    if not weeks:
        return []
    first, last = pd.Timestamp(first_day).normalize(), pd.Timestamp(last_day).normalize()
    start, end = pd.Timestamp(weeks[0]), pd.Timestamp(weeks[-1])
    head = (start + pd.Timedelta(days=6) - first).days + 1  # days of the first week held
    tail = (last - end).days + 1
    if len(weeks) == 1 and (head < 7 or tail < 7):
        days = (min(last, end + pd.Timedelta(days=6)) - max(first, start)).days + 1
        return [
            f"note: the accepted rows run from {first.date()} to {last.date()}, so week "
            f"{weeks[0]} holds {days} of its 7 days: its figures are a partial week's"
        ]
    notes = []
    if 0 < head < 7:
        notes.append(
            f"note: the accepted rows begin on {first.date()}, so week {weeks[0]} holds {head} "
            "of its 7 days: its figures are a partial week's, and the next week's changes "
            "compare with them"
        )
    if 0 < tail < 7:
        notes.append(
            f"note: the accepted rows end on {last.date()}, so week {weeks[-1]} holds {tail} "
            "of its 7 days: its figures are a partial week's, and its week-grain flags come when "
            "its other days do"
        )
    return notes


def _materializations(result) -> dict[str, dict]:
    out = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        out[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    return out


_FAILURE_PREFIX = "dagster._core.definitions.events.Failure: "


_DAGSTER_WRAPPERS = {"DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError"}


def _cause(error):
    """The exception the step's code raised, not Dagster's wrapper around it (whose message is
    only 'Error occurred while executing op ...')."""
    while error.cause is not None and error.cls_name in _DAGSTER_WRAPPERS:
        error = error.cause
    return error


def _failures(result) -> tuple[list[str], bool]:
    """One line per distinct failure: steps that failed for the same reason (both raw lead
    assets on an expired Salesforce token) share a line naming them all.

    A raw file with rows and none accepted fails the blocking check
    `run_summary.NONE_ACCEPTED_CHECK`: its line is that check's description, first, and the
    input's mistake; the failure Dagster gives its step for it (a blocking check failed) says
    nothing more and is left out."""
    from campaign_pipeline.run_summary import NONE_ACCEPTED_CHECK

    steps_by_text: dict[str, list[str]] = {}
    user_error = False
    stops = [
        evaluation
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed and evaluation.check_name == NONE_ACCEPTED_CHECK
    ]
    stopped_steps = {evaluation.asset_key.to_user_string() for evaluation in stops}
    for event in result.all_events:
        if event.is_step_failure:
            error = event.event_specific_data.error
            if (
                event.step_key in stopped_steps
                and error is not None
                and _cause(error).cls_name == "DagsterAssetCheckFailedError"
            ):
                continue
            failure = event.event_specific_data.user_failure_data  # a dg.Failure's own words
            text = (
                (
                    (failure.description if failure and failure.description else None)
                    or (_cause(error).message if error else "step failed")
                )
                .strip()
                .splitlines()[0]
            )
            text = text.removeprefix(_FAILURE_PREFIX)
            steps_by_text.setdefault(text, []).append(event.step_key)
            user_error = user_error or event.step_key.startswith("raw_")
    lines = [evaluation.description for evaluation in stops]
    user_error = user_error or bool(stops)
    lines += [f"{', '.join(steps)}: {text}" for text, steps in steps_by_text.items()]
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation not in stops:
            lines.append(
                f"check failed: {evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            )
    return lines, user_error


EXPORT_STEPS = ("ga4_export", "amplitude_export", "export_ledger")


def _export_reports(result) -> dict[str, dict]:
    """Each export asset's report: from its materialization, or from its failure."""
    reports = {}
    for event in result.all_events:
        if event.step_key not in EXPORT_STEPS[:2]:
            continue
        metadata = {}
        if event.is_step_materialization:
            metadata = event.event_specific_data.materialization.metadata
        elif event.is_step_failure and event.event_specific_data.user_failure_data:
            metadata = event.event_specific_data.user_failure_data.metadata
        if "export" in metadata:
            reports[event.step_key] = metadata["export"].value
    return {step: reports[step] for step in EXPORT_STEPS if step in reports}


def _step_progress(say: Callable[[str], None]) -> Callable:
    """An event listener printing one line per finished step (its rows and its time) and a
    long step's progress lines (`assets.common.progress_logger`) as they come."""
    started: dict[str, float] = {}
    rows: dict[str, int] = {}
    lock = threading.Lock()

    def listen(record) -> None:
        event = record.dagster_event
        if event is None:
            message = record.user_message or ""
            if record.step_key and message.startswith(PROGRESS_PREFIX):
                say(f"  {record.step_key}: {message.removeprefix(PROGRESS_PREFIX)}")
            return
        if event.step_key is None:
            return
        with lock:
            if event.is_step_start:
                started[event.step_key] = time.perf_counter()
            elif event.is_step_materialization:
                metadata = event.event_specific_data.materialization.metadata
                count = metadata.get("dagster/row_count")
                if count is not None:
                    rows.setdefault(event.step_key, int(count.value))
            elif event.is_step_success or event.is_step_failure:
                seconds = time.perf_counter() - started.get(event.step_key, time.perf_counter())
                state = "done" if event.is_step_success else "FAILED"
                count = f"{rows[event.step_key]:>12,} rows" if event.step_key in rows else " " * 17
                say(f"  {event.step_key:<34}{count}  {state} ({seconds:.1f}s)")

    return listen


def _execute(job, instance, run_config: dict, say, *, tags: dict | None = None):
    from dagster._core.utils import make_new_run_id

    run_id = make_new_run_id()
    instance.add_event_listener(run_id, _step_progress(say))
    result = job.execute_in_process(
        instance=instance,
        run_config=_quiet(run_config),
        raise_on_error=False,
        run_id=run_id,
        tags=tags,
    )
    if interrupted(result):
        raise KeyboardInterrupt
    return result


# How Ctrl-C reaches a step: Dagster turns the signal into the step's failure
# (DagsterExecutionInterruptedError), and a KeyboardInterrupt raised in a step is one too.
INTERRUPTIONS = ("KeyboardInterrupt", "DagsterExecutionInterruptedError")


def interrupted(result) -> bool:
    """Whether a step of the run failed because the run was interrupted. Such a run must end
    as interrupted: read as a step's error, an interrupted export let the run carry on to the
    lifetime table and a summary without the weeks' totals, ledger or report."""
    for event in result.all_events:
        error = event.event_specific_data.error if event.is_step_failure else None
        while error is not None:
            if error.cls_name in INTERRUPTIONS:
                return True
            error = error.cause
    return False


def run_pipeline(
    data_dir: str,
    out_dir: str,
    *,
    say: Callable[[str], None] = print,
    extra_run_config: dict | None = None,
    today: dt.date | None = None,
    max_gap_weeks: int = MAX_GAP_WEEKS,
) -> PipelineRun:
    """Ingestion, then the accepted rows' complete weeks (`plan_weeks`: a run per range of
    consecutive weeks built), then the lifetime table.

    ``extra_run_config`` is merged into each run's configuration (e.g. resource config of the
    export stage); ``today`` decides which weeks are complete (default: the current date);
    ``max_gap_weeks`` is the longest gap without data built with the weeks around it.
    """
    import dagster as dg

    from campaign_pipeline.assets.common import data_weeks
    from campaign_pipeline.definitions import defs
    from campaign_pipeline.partitions import range_run_tags, weekly_partitions
    from campaign_pipeline.resources.storage import PipelineStorage

    started = time.perf_counter()
    run_config = merge_run_config(storage_run_config(data_dir, out_dir), extra_run_config)
    storage = PipelineStorage(data_dir=data_dir, out_dir=out_dir)
    instance = (
        dg.DagsterInstance.get()
        if os.environ.get("DAGSTER_HOME")
        else dg.DagsterInstance.ephemeral()
    )
    summary = PipelineRun()

    say("ingestion: reading and validating the raw exports ...")
    ingestion = _execute(defs.resolve_job_def("ingestion_job"), instance, run_config, say)
    summary.ingestion = _materializations(ingestion)
    failures, user_error = _failures(ingestion)
    if not ingestion.success or failures:
        raise RunFailed(failures or ["ingestion failed"], user_error=user_error)

    day_range = storage.accepted_day_range()
    if day_range is None:
        from campaign_pipeline.run_summary import accepted_counts, accounting

        raise RunFailed(
            [
                f"no accepted row has a date, so there is no week to process (rows accepted: "
                f"{accepted_counts(accounting(storage))}; {storage.table_path('quarantine')} "
                "gives each set-aside row's reason)"
            ],
            True,
        )
    weeks = weeks_between(*day_range)
    now = dt.datetime.combine(today, dt.time()) if today else None
    complete = set(weekly_partitions.get_partition_keys(current_time=now))
    summary.skipped_weeks = [w for w in weeks if w not in complete]
    plan = plan_weeks(weeks, data_weeks(storage), max_gap_weeks).within(complete)
    summary.weeks, summary.not_built = plan.weeks, list(plan.not_built)
    if summary.skipped_weeks:
        say(
            f"note: {describe_weeks(summary.skipped_weeks)} not complete yet (or outside the "
            "partitions), skipped"
        )
    if summary.not_built:
        say(
            f"note: {describe_weeks(summary.not_built)} between the accepted rows hold no "
            f"accepted delivery or lead event, not built; the weeks built: "
            f"{describe_stretches(plan.stretches)}"
        )
    for note in partial_week_notes(summary.weeks, *day_range):
        say(note)

    for stretch in plan.stretches:
        say(f"weekly assets: {describe_weeks(list(stretch))} in one run ...")
        weekly = _execute(
            defs.resolve_job_def(WEEKLY_JOB),
            instance,
            run_config,
            say,
            tags=range_run_tags(stretch[0], stretch[-1]),
        )
        failures, user_error = _failures(weekly)
        for step, report in _export_reports(weekly).items():
            before = summary.exports.get(step)
            summary.exports[step] = (
                report if before is None else merge_export_reports(before, report)
            )
        export_only = failures and all(line.startswith(EXPORT_STEPS) for line in failures)
        if not weekly.success and not export_only:
            raise RunFailed(failures or ["weekly assets failed"], user_error=user_error)
        if not weekly.success:  # the exports failed; every other weekly asset is written
            summary.export_failures += failures
            failures = []
        for line in failures:
            say(f"warning: {line}")

    say("lifetime table ...")
    lifetime = _execute(defs.resolve_job_def("lifetime_job"), instance, run_config, say)
    failures, user_error = _failures(lifetime)
    if not lifetime.success:
        raise RunFailed(failures or ["lifetime table failed"], user_error=user_error)
    summary.seconds = time.perf_counter() - started
    return summary


def dagster_home_problem(home: str | None) -> str | None:
    """Why ``DAGSTER_HOME`` cannot hold the instance `run_pipeline` opens from it, or None
    (unset or empty: the ephemeral instance). Dagster's own refusal (an absolute path to an
    existing folder, ``~`` expanded) is a traceback when the run begins; `campaign-pipeline run`
    says it in one line before the run."""
    if not home:
        return None
    path = Path(home).expanduser()
    instead = "or unset DAGSTER_HOME for an ephemeral in-memory instance"
    if not path.is_absolute():
        return f"DAGSTER_HOME={home} is not an absolute path: give one, {instead}"
    if path.is_dir():
        return None
    shown = home if str(path) == home else f"{home} ({path})"
    what = "is a file, not a folder" if path.exists() else "does not exist"
    return f"DAGSTER_HOME={shown} {what}: create the folder (mkdir -p {path}), {instead}"


def instance_description() -> str:
    home = os.environ.get("DAGSTER_HOME")
    return f"DAGSTER_HOME={home}" if home else "ephemeral (in memory)"


def resolve_storage(data_dir: str | None, out_dir: str | None) -> PipelineStorage:
    """The storage of a run, with both dirs resolved once here (flag, else
    $CAMPAIGN_PIPELINE_DATA_DIR, else the shipped data/; flag, else $CAMPAIGN_PIPELINE_OUT_DIR,
    else <data dir>/out), so every step of the run gets the same local paths or URLs."""
    from campaign_pipeline.resources.storage import (
        PipelineStorage,
        resolve_data_dir,
        resolve_out_dir,
    )

    data = resolve_data_dir(data_dir)
    return PipelineStorage(data_dir=str(data), out_dir=str(resolve_out_dir(out_dir, data)))
