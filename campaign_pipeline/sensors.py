"""Sensors: raw files arriving, anomaly alerts, failed runs.

Each sensor is built by a factory that takes the job it starts (or nothing) so that
``definitions.py`` wires them once and tests can build them around small toy jobs.
All three are STOPPED by default: turning a sensor on is a decision (it launches runs or
posts to a channel), made in the UI, with ``dagster sensor start``, or by passing
``default_status=dg.DefaultSensorStatus.RUNNING``.

The logic lives in pure modules: ``raw_files`` (what changed, which weeks) and ``alerts``
(what to post). Here only the Dagster plumbing and the cursors.
"""

import json
import os
import time
from collections.abc import Sequence

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from campaign_pipeline import alerts, raw_files
from campaign_pipeline.locations import Location
from campaign_pipeline.partitions import (
    RAW_CONTENTS_TAG,
    TRIGGER_TAG,
    range_run_tags,
    run_weeks,
    weekly_partitions,
)
from campaign_pipeline.resources.storage import PipelineStorage, read_parquet

ANOMALY_FLAGS_KEY = dg.AssetKey("anomaly_flags")
# A raw file modified less than this long ago may still be being copied in: a tick then waits
# for the next one rather than run weeks on a half-written export (whose missing rows would
# read as a collapse of delivery and post false alerts). A minute covers copying the scale
# benchmark's 0.9 GB of exports on a local disk many times over, and delays a run by at most
# about one tick (`minimum_interval_seconds`).
RAW_FILE_SETTLE_SECONDS = 60
UI_URL_ENV = "CAMPAIGN_PIPELINE_UI_URL"  # optional: failure alerts then link to the run

# --- raw file arrival ----------------------------------------------------------------------


def build_raw_file_sensor(
    job: dg.JobDefinition | UnresolvedAssetJobDefinition,
    *,
    name: str = "raw_file_sensor",
    partitions_def: dg.PartitionsDefinition = weekly_partitions,
    minimum_interval_seconds: int = 60,  # exports land a few times a day; a minute is prompt enough
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    settle_seconds: float = RAW_FILE_SETTLE_SECONDS,
) -> dg.SensorDefinition:
    """Requests runs of ``job`` for the weeks that a new or replaced raw file touches: one run
    per stretch of consecutive touched weeks (a single week, or a range in one run).

    The cursor is the folder's fingerprint (per file: size, mtime, SHA-256 and one digest
    per week, see ``raw_files``). Weeks that are not (yet) partitions, such as the
    current unfinished week, are reported and left to the weekly schedule.
    """

    @dg.sensor(
        name=name,
        job=job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            "Watches <data dir>/raw for new or replaced exports and runs only the weeks whose "
            "rows changed, consecutive weeks as one run; run keys carry the file contents so a "
            "file is never processed twice."
        ),
    )
    def raw_file_sensor(
        context: dg.SensorEvaluationContext, storage: PipelineStorage
    ) -> dg.SensorResult:
        stats = raw_files.watched_stats(storage.raw_dir)
        young = raw_files.unsettled_files(stats, settle_seconds, time.time())
        if young:  # the cursor stays: the next tick looks again
            named = ", ".join(f"{name} ({age:.0f} s ago)" for name, age in young)
            return dg.SensorResult(
                skip_reason=dg.SkipReason(
                    f"{named} modified less than {settle_seconds:g} s ago, maybe still being "
                    "copied in: waiting for it to settle"
                ),
                cursor=context.cursor,
            )
        previous = raw_files.load_state(context.cursor)
        scan = raw_files.scan_raw_dir(storage.raw_dir, previous, stats)
        cursor = raw_files.dump_state(scan)
        if not scan.changes:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"no new or replaced file in {storage.raw_dir}"),
                cursor=cursor,
            )

        for change in scan.changes:
            detail = f"{change.name}: {change.kind}, {len(change.weeks)} week(s) changed"
            if change.undated_changed:
                detail += ", rows without a date changed (quarantine)"
            if change.error:
                context.log.warning(f"{detail}; the file breaks the contract: {change.error}")
            else:
                context.log.info(detail)

        valid = set(partitions_def.get_partition_keys())
        touched = scan.touched_weeks
        outside = [week for week in touched if week not in valid]
        if outside:
            context.log.info(
                f"{len(outside)} touched week(s) are not partitions yet or before the first "
                "partition "
                f"({', '.join(outside[:5])}{'…' if len(outside) > 5 else ''}); the weekly "
                "schedule covers new weeks"
            )
        contents = raw_files.scanned_contents_digest(scan)
        requests = [
            _run_request(weeks, [c for week in weeks for c in touched[week]], contents)
            for weeks in raw_files.consecutive_weeks(w for w in touched if w in valid)
        ]
        if not requests:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(
                    "raw files changed but touched no complete weekly partition"
                ),
                cursor=cursor,
            )
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return raw_file_sensor


def _run_request(
    weeks: tuple[str, ...], changes: Sequence[raw_files.FileChange], contents: str
) -> dg.RunRequest:
    """One run for a week, or for a range of consecutive weeks (the weekly assets' single-run
    backfill policy), so the raw files are read and validated once for the whole range. Its
    ``contents`` tag lets the weekly schedule skip a week this run covered from the same files."""
    tags = {
        TRIGGER_TAG: "raw_file_sensor",
        "campaign_pipeline/raw_files": ",".join(sorted({c.name for c in changes})),
        RAW_CONTENTS_TAG: contents,
    }
    key = raw_files.run_key_for_weeks(weeks, changes)
    if len(weeks) == 1:
        return dg.RunRequest(run_key=key, partition_key=weeks[0], tags=tags)
    return dg.RunRequest(run_key=key, tags={**tags, **range_run_tags(weeks[0], weeks[-1])})


# --- anomaly alerts ------------------------------------------------------------------------


def _flags_path(record: dg.EventLogRecord, storage: PipelineStorage) -> Location | None:
    """The week's Parquet: from the materialization's ``path``/``dagster/uri`` metadata (a
    file, or the table's folder of ``<week>.parquet``), else where storage puts that week."""
    materialization = record.asset_materialization
    metadata = materialization.metadata if materialization else {}
    partition = record.partition_key
    for key in ("path", "dagster/uri"):
        value = metadata.get(key)
        if value is None:
            continue
        path = Location(str(getattr(value, "value", value)))
        if path.is_dir():
            return path / f"{partition}.parquet" if partition else None
        return path
    return (
        storage.table_path("anomaly_flags", partition)
        if partition
        else storage.table_path("anomaly_flags")
    )


def build_anomaly_alert_sensor(
    *,
    name: str = "anomaly_alert_sensor",
    asset_key: dg.AssetKey = ANOMALY_FLAGS_KEY,
    settings: alerts.AlertSettings = alerts.AlertSettings(),
    minimum_interval_seconds: int = 60,
    # A sensor turned on for the first time looks back this far, so an old backlog of
    # flags does not flood the channel; flags older than that are in the table anyway.
    first_tick_lookback_seconds: float = 7 * 24 * 3600,
    # Bounds the posts per tick; whatever is left is posted on the next tick.
    max_messages_per_tick: int = 10,
    # A post starts only if it can end, at its worst (settings.worst_case_seconds: every try
    # timing out), this many seconds into the tick: Dagster ends a tick at 60 s and then keeps
    # none of its cursor, so every message the tick had posted would be posted again.
    tick_budget_seconds: float = 50.0,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.SensorDefinition:
    """Posts high and critical anomaly flags to ALERT_WEBHOOK_URL, each flag once.

    Cursor: ``{"after_storage_id": <last event fully handled>, "posted": [flag digests]}``.
    A flag is marked posted only after its message was accepted, so a failed post is
    retried and a re-materialized week does not post its flags again.
    """

    @dg.sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            f"After `{asset_key.to_user_string()}` materializes, posts its "
            f"{settings.min_severity}-or-worse "
            f"flags to ${alerts.WEBHOOK_ENV} (Slack-compatible JSON), each flag once."
        ),
    )
    def anomaly_alert_sensor(
        context: dg.SensorEvaluationContext, storage: PipelineStorage
    ) -> dg.SkipReason | None:
        url = alerts.webhook_url_from_env()
        if not url:
            return dg.SkipReason(
                f"{alerts.WEBHOOK_ENV} is not set: nothing posted, flags stay pending"
            )
        state = json.loads(context.cursor) if context.cursor else {}
        after = state.get("after_storage_id")
        posted: set[str] = set(state.get("posted", []))
        records_filter = dg.AssetRecordsFilter(
            asset_key=asset_key,
            after_storage_id=after,
            after_timestamp=None
            if after is not None
            else time.time() - first_tick_lookback_seconds,
        )
        records = context.instance.fetch_materializations(
            records_filter, limit=100, ascending=True
        ).records

        def save(last_id: int | None) -> None:
            context.update_cursor(
                json.dumps(
                    {
                        "after_storage_id": last_id if last_id is not None else after,
                        "posted": sorted(posted),
                    }
                )
            )

        messages_sent = flags_sent = 0
        last_done = after
        started = time.monotonic()
        for record in records:
            path = _flags_path(record, storage)
            if path is None or not path.is_file():
                context.log.warning(
                    f"anomaly flags of event {record.storage_id} not found at {path}; skipped"
                )
                last_done = record.storage_id
                continue
            try:
                flags = alerts.alertable_flags(read_parquet(path), settings.min_severity)
            except Exception as error:  # an unreadable file or a store error: keep what was posted
                save(last_done)
                reason = f"{path} cannot be read ({type(error).__name__}); retried next tick"
                context.log.warning(reason)
                return dg.SkipReason(f"posted {flags_sent} flag(s), then: {reason}")
            pending = flags.loc[~flags["flag_key"].isin(posted)]
            week = record.partition_key or "unpartitioned"
            for keys, payload in alerts.build_flag_messages(
                pending, settings, context=f"week {week}"
            ):
                late = time.monotonic() - started + settings.worst_case_seconds()
                if messages_sent >= max_messages_per_tick or late > tick_budget_seconds:
                    save(last_done)
                    return dg.SkipReason(f"posted {flags_sent} flag(s); more next tick")
                try:
                    alerts.post_json(url, payload, settings)
                except alerts.AlertUnconfirmed as error:
                    context.log.warning(f"counted as posted: {error}")
                except alerts.AlertPostError as error:
                    save(last_done)
                    context.log.warning(f"alert post failed, retried next tick: {error}")
                    return dg.SkipReason(f"posted {flags_sent} flag(s), then: {error}")
                posted.update(keys)
                messages_sent += 1
                flags_sent += len(keys)
            last_done = record.storage_id
        save(last_done)
        if flags_sent == 0:
            return dg.SkipReason(
                f"no new {settings.min_severity}-or-worse flag in {len(records)} materialization(s)"
            )
        context.log.info(f"posted {flags_sent} flag(s) in {messages_sent} message(s)")
        return None

    return anomaly_alert_sensor


# --- failed runs ---------------------------------------------------------------------------


def build_run_failure_alert_sensor(
    *,
    name: str = "run_failure_alert_sensor",
    monitored_jobs: Sequence[dg.JobDefinition | UnresolvedAssetJobDefinition] | None = None,
    settings: alerts.AlertSettings = alerts.AlertSettings(),
    # A failure whose alert the webhook did not accept is tried again each tick for this long
    # after the run failed, then given up with a warning (see the constant for the reason).
    max_age_seconds: float = alerts.FAILURE_ALERT_MAX_AGE_SECONDS,
    # Dagster's own interval for run-status sensors: a failure is posted within about half a
    # minute, and a tick that finds nothing costs one query of the event log.
    minimum_interval_seconds: int = 30,
    # Bounds the posts per tick; whatever is left is posted on the next tick.
    max_messages_per_tick: int = 10,
    # As for the anomaly alerts: a post starts only if it can end, with every try timing out,
    # this many seconds into the tick (Dagster ends a tick at 60 s and keeps none of its cursor).
    tick_budget_seconds: float = 50.0,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.SensorDefinition:
    """Posts each failed run of this code location (or of ``monitored_jobs``) to the webhook,
    once, retrying on later ticks while the webhook does not accept it.

    A plain sensor rather than Dagster's ``run_failure_sensor``: that one moves its cursor past
    a run whatever its function did, so a post whose every try failed would be lost. The cursor
    here is an ``alerts.FailureQueue``: the last failure event read plus the runs still to post.
    """
    job_names = {job.name for job in monitored_jobs} if monitored_jobs else None

    @dg.sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            "Posts failed runs (job, week, failed steps, each failed blocking check with its "
            "own line, the first error line) to "
            f"${alerts.WEBHOOK_ENV}, each once; a post the webhook does not accept is tried "
            f"again each tick for {max_age_seconds / 3600:g} h after the failure."
        ),
    )
    def run_failure_alert_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason | None:
        url = alerts.webhook_url_from_env()
        if not url:
            return dg.SkipReason(
                f"{alerts.WEBHOOK_ENV} is not set: nothing posted, failed runs stay pending"
            )
        now = time.time()
        queue = alerts.FailureQueue.from_cursor(context.cursor)
        # a first tick looks back as far as a failure may wait to be posted
        failures, last_id = _new_failures(context, queue, job_names, since=now - max_age_seconds)
        queue, given_up = queue.with_failures(failures, last_id).expire(now, max_age_seconds)
        for failure in given_up:
            context.log.warning(alerts.failure_given_up_line(failure, max_age_seconds))
        context.update_cursor(queue.to_cursor())
        dropped = f"; gave up {len(given_up)} failed run(s) never posted" if given_up else ""

        posted = 0
        started = time.monotonic()
        for failure in queue.in_posting_order():
            late = time.monotonic() - started + settings.worst_case_seconds()
            if posted >= max_messages_per_tick or late > tick_budget_seconds:
                return dg.SkipReason(f"posted {posted} failed run(s); more next tick{dropped}")
            try:
                payload = _run_failure_payload(context.instance, failure.run_id)
                if payload is None:  # the run was deleted: nothing is left to point to
                    context.log.warning(f"run {failure.run_id} is gone; its failure not posted")
                    queue = queue.posted(failure.run_id)
                    context.update_cursor(queue.to_cursor())
                    continue
                alerts.post_json(url, payload, settings)
            except alerts.AlertUnconfirmed as error:
                context.log.warning(f"counted as posted: {error}")
            except Exception as error:  # noqa: BLE001 (a post or instance error: keep the queue)
                # AlertPostError names only the webhook's host; anything else only its type,
                # since a library's error text may hold the URL
                reason = (
                    str(error)
                    if isinstance(error, alerts.AlertPostError)
                    else f"{type(error).__name__} reading the run"
                )
                queue = queue.failed(failure.run_id)
                context.update_cursor(queue.to_cursor())
                context.log.warning(
                    f"failure alert of run {failure.run_id} not posted, tried again next tick: "
                    f"{reason}"
                )
                return dg.SkipReason(
                    f"posted {posted} failed run(s), then run {failure.run_id}: {reason}; "
                    f"{len(queue.pending)} waiting{dropped}"
                )
            queue = queue.posted(failure.run_id)
            context.update_cursor(queue.to_cursor())
            posted += 1
        if posted == 0:
            return dg.SkipReason(f"no failed run to post{dropped}")
        context.log.info(f"posted {posted} failed run(s){dropped}")
        return None

    return run_failure_alert_sensor


# Failure events read per tick (one query of the event log, one of the runs); the rest are read
# on the next tick. Far more runs than fail between two ticks, and each is only queued here.
FAILURE_EVENTS_PER_TICK = 100


def _new_failures(
    context: dg.SensorEvaluationContext,
    queue: alerts.FailureQueue,
    job_names: set[str] | None,
    *,
    since: float,
) -> tuple[list[alerts.PendingFailure], int | None]:
    """The failed runs this sensor watches among the failure events after the queue's place
    (on a first tick: after ``since``), and the storage id of the last event read."""
    records = context.instance.fetch_run_status_changes(
        dg.RunStatusChangeRecordsFilter(
            event_type=dg.DagsterEventType.RUN_FAILURE,
            after_storage_id=queue.after_storage_id,
            after_timestamp=since if queue.after_storage_id is None else None,
        ),
        limit=FAILURE_EVENTS_PER_TICK,
        ascending=True,
    ).records
    if not records:
        return [], None
    run_ids = list({record.event_log_entry.run_id for record in records})
    runs = {
        run.run_id: run for run in context.instance.get_runs(filters=dg.RunsFilter(run_ids=run_ids))
    }
    here = (
        context.code_location_origin.location_name if context.code_location_origin else None,
        context.repository_name,
    )
    failures = []
    for record in records:
        run = runs.get(record.event_log_entry.run_id)
        if run is None:
            continue
        # Dagster's run-status sensors' rule: a run of this code location's repository
        # (both unknown for a run executed in process and a sensor evaluated outside a daemon)
        origin = run.remote_job_origin
        where = (
            (
                origin.repository_origin.code_location_origin.location_name,
                origin.repository_origin.repository_name,
            )
            if origin
            else (None, None)
        )
        if where != here or (job_names is not None and run.job_name not in job_names):
            continue
        failures.append(alerts.PendingFailure(run.run_id, record.timestamp))
    return failures, records[-1].storage_id


def _run_failure_payload(instance: dg.DagsterInstance, run_id: str) -> dict | None:
    """The failed run's message, built from the instance (None if the run is gone)."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return None
    entries = instance.all_logs(
        run_id,
        of_type={
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.RUN_FAILURE,
            dg.DagsterEventType.ASSET_CHECK_EVALUATION,
        },
    )
    events = [entry.dagster_event for entry in entries if entry.dagster_event is not None]
    failures = [e for e in events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    run_failure = next((e for e in events if e.event_type == dg.DagsterEventType.RUN_FAILURE), None)
    checks = _failed_blocking_checks(events)
    steps = sorted({event.step_key for event in failures if event.step_key})
    step_error = _first_step_error(failures, skip_check_failures=bool(checks))
    return alerts.build_run_failure_message(
        run.job_name,
        run.run_id,
        # with failed checks, Dagster's run line ("Steps failed: [...]") adds nothing to them
        step_error or (run_failure.message if run_failure and not checks else None),
        partition=run_weeks(run.tags),
        step_keys=steps,
        failed_checks=checks,
        ui_base_url=os.environ.get(UI_URL_ENV) or None,
    )


def _failed_blocking_checks(events) -> list[alerts.FailedCheck]:
    """The blocking checks that failed with ERROR severity among a run's events, in the order
    evaluated: each one stopped the run (its step failed with Dagster's "1 blocking asset check
    failed ..."), and its evaluation's description is the check's own line."""
    found = []
    for event in events:
        if event.event_type != dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            continue
        evaluation = event.asset_check_evaluation_data
        if (
            not evaluation.passed
            and evaluation.blocking
            and evaluation.severity == dg.AssetCheckSeverity.ERROR
        ):
            found.append(
                alerts.FailedCheck(
                    evaluation.asset_key.to_user_string(),
                    evaluation.check_name,
                    evaluation.description,
                )
            )
    return found


# The error a step fails with when a blocking check of its asset failed: its message says only
# how many checks failed, and the checks' own lines tell what.
_CHECK_FAILED_ERROR = "DagsterAssetCheckFailedError"


def _first_step_error(failures, *, skip_check_failures: bool = False) -> str | None:
    """The error the first failed step raised ("insights.csv, column 'spend': required column
    missing"), not the run's own line ("Execution of run ... failed. Steps failed: [...]"),
    which says nothing an on-call person can act on. Dagster wraps an asset's exception
    ("Error occurred while executing op ..."); the exception itself is its cause.
    ``skip_check_failures``: pass over steps failed by a blocking check (the alert names the
    checks themselves)."""
    for event in failures:
        error = event.step_failure_data.error if event.step_failure_data else None
        while (
            error is not None
            and error.cause is not None
            and (error.cls_name == "DagsterExecutionStepExecutionError")
        ):
            error = error.cause
        if error is not None and skip_check_failures and error.cls_name == _CHECK_FAILED_ERROR:
            continue
        if error is not None:
            # the message starts with the exception's dotted class path: keep its name only
            head, sep, rest = error.message.strip().partition(": ")
            name = head.rsplit(".", 1)[-1] if sep and " " not in head else None
            return f"{event.step_key}: " + (f"{name}: {rest}" if name else error.message.strip())
    return None
