"""Sensors evaluated with Dagster's own sensor contexts, around the toy pipeline."""

import datetime as dt
import json
import os
import time

import dagster as dg
import pytest

from campaign_pipeline import alerts
from campaign_pipeline.jobs import REWRITES_VALIDATED_LAYER_TAG
from campaign_pipeline.partitions import run_weeks
from campaign_pipeline.resources.salesforce import SalesforceSource
from campaign_pipeline.resources.storage import PipelineStorage
from campaign_pipeline.sensors import (
    build_anomaly_alert_sensor,
    build_raw_file_sensor,
    build_run_failure_alert_sensor,
)
from campaign_pipeline_tests import _toy_definitions as toy
from campaign_pipeline_tests._orchestration_support import (
    INSIGHTS,
    WebhookListener,
    replace_file,
)
from campaign_pipeline_tests.builders import ISO_DATED_INSIGHTS, iso_dated_insights_stop_line

SECRET = "T0K3N-SECRET"


@pytest.fixture
def storage(data_dir):
    return PipelineStorage(data_dir=str(data_dir), out_dir=None)


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def _tick(sensor, instance, storage, cursor=None):
    """One evaluation the way the daemon does it, inside a code location holding the sensor."""
    defs = dg.Definitions(
        assets=toy.toy_assets,
        jobs=[toy.toy_weekly_job],
        sensors=[sensor],
        resources={"storage": storage},
    )
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"storage": storage}, definitions=defs
    )
    return defs.resolve_sensor_def(sensor.name).evaluate_tick(context)


# --- raw files -----------------------------------------------------------------------------


def test_raw_file_sensor_requests_exactly_the_touched_weeks_then_nothing(instance, storage):
    """The first tick touches every stored week: consecutive weeks are one run of their range,
    so the raw files are validated once, not once per week."""
    sensor = build_raw_file_sensor(toy.toy_weekly_job, settle_seconds=0)
    first = _tick(sensor, instance, storage)
    (request,) = first.run_requests
    assert request.partition_key is None
    assert run_weeks(request.tags) == "2024-01-08 to 2024-01-22"
    assert request.run_key.startswith("raw:2024-01-08..2024-01-22:")
    assert request.tags["campaign_pipeline/trigger"] == "raw_file_sensor"
    assert request.tags["campaign_pipeline/raw_files"] == (
        "campaign_leads.csv,campaigns.csv,insights.csv,lead_status_changes.csv"
    )

    again = _tick(sensor, instance, storage, cursor=first.cursor)
    assert again.run_requests == []
    assert "no new or replaced file" in again.skip_message


def test_raw_file_sensor_replaced_file_runs_only_the_changed_week(instance, storage):
    sensor = build_raw_file_sensor(toy.toy_weekly_job, settle_seconds=0)
    first = _tick(sensor, instance, storage)
    replace_file(
        storage.raw_dir / "insights.csv", INSIGHTS.replace("01/16/2024,9,", "01/16/2024,19,")
    )
    second = _tick(sensor, instance, storage, cursor=first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["2024-01-15"]
    assert second.run_requests[0].tags["campaign_pipeline/raw_files"] == "insights.csv"
    assert second.run_requests[0].run_key not in {r.run_key for r in first.run_requests}


def test_raw_file_sensor_runs_weeks_apart_separately_without_the_weeks_between(instance, storage):
    sensor = build_raw_file_sensor(toy.toy_weekly_job, settle_seconds=0)
    first = _tick(sensor, instance, storage)
    replace_file(
        storage.raw_dir / "insights.csv",
        INSIGHTS.replace("2024-01-09,12,", "2024-01-09,13,") + "5,c1,2024-01-30,4,400,4,0\n",
    )
    second = _tick(sensor, instance, storage, cursor=first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["2024-01-08", "2024-01-29"]
    assert all(run_weeks(r.tags) == r.partition_key for r in second.run_requests)


def test_raw_file_sensor_skips_weeks_that_are_not_partitions(instance, storage):
    sensor = build_raw_file_sensor(toy.toy_weekly_job, settle_seconds=0)
    first = _tick(sensor, instance, storage)
    # before the first partition (1999-12-27) and far in the future: not partitions
    replace_file(
        storage.raw_dir / "insights.csv",
        INSIGHTS + "7,c1,1990-06-01,1,10,1,0\n8,c1,2999-01-01,1,10,1,0\n",
    )
    second = _tick(sensor, instance, storage, cursor=first.cursor)
    assert second.run_requests == []
    assert "touched no complete weekly partition" in second.skip_message


def test_raw_file_sensor_run_keys_make_dagster_skip_a_reprocessed_file(instance, storage):
    """A lost cursor re-reads the same files; the run keys are the same, so no run repeats."""
    sensor = build_raw_file_sensor(toy.toy_weekly_job, settle_seconds=0)
    defs = dg.Definitions(
        assets=toy.toy_assets,
        jobs=[toy.toy_weekly_job],
        sensors=[sensor],
        resources={"storage": storage},
    )
    first = _tick(sensor, instance, storage)
    job = defs.resolve_job_def("toy_weekly_job")
    (request,) = first.run_requests
    result = job.execute_in_process(
        instance=instance,
        tags={**request.tags, "dagster/run_key": request.run_key},
    )
    assert result.success
    # the run wrote every week of its range
    assert instance.get_materialized_partitions(dg.AssetKey("anomaly_flags")) == {
        "2024-01-08",
        "2024-01-15",
        "2024-01-22",
    }
    reset = _tick(sensor, instance, storage, cursor=None)
    assert {r.run_key for r in reset.run_requests} == {r.run_key for r in first.run_requests}


# --- anomaly alerts ------------------------------------------------------------------------


def _materialize_weeks(instance, storage, *weeks):
    job = dg.Definitions(
        assets=toy.toy_assets, jobs=[toy.toy_weekly_job], resources={"storage": storage}
    ).resolve_job_def("toy_weekly_job")
    for week in weeks:
        assert job.execute_in_process(instance=instance, partition_key=week).success


def _posted_flags(bodies):
    """(campaign_id, period) of every flag section received."""
    seen = []
    for body in bodies:
        for block in body["blocks"]:
            if block["type"] == "section":
                text = block["text"]["text"]
                campaign = text.split("campaign `")[1].split("`")[0]
                period = text.split("(day ")[1].split(")")[0]
                seen.append((campaign, period))
    return seen


def test_alert_sensor_posts_each_high_and_critical_flag_once_across_ticks(
    instance, storage, monkeypatch
):
    sensor = build_anomaly_alert_sensor()
    with WebhookListener() as hook:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", f"{hook.url}/{SECRET}")
        _materialize_weeks(instance, storage, "2024-01-08")
        first = _tick(sensor, instance, storage)
        assert len(_posted_flags(hook.bodies)) == 3  # toy week: 2 high + 1 critical, 2 below

        # the same week again (same flags) and a new week: only the new week's flags are posted
        _materialize_weeks(instance, storage, "2024-01-08", "2024-01-15")
        second = _tick(sensor, instance, storage, cursor=first.cursor)
        third = _tick(sensor, instance, storage, cursor=second.cursor)

    flags = _posted_flags(hook.bodies)
    assert len(flags) == 6 and len(set(flags)) == 6
    assert {period for _, period in flags} == {"2024-01-08", "2024-01-15"}
    assert {campaign for campaign, _ in flags} == {"c2", "c3", "c4"}
    assert all(path.endswith(SECRET) for path in hook.paths)
    assert "no new high-or-worse flag" in third.skip_message
    assert len(json.loads(third.cursor)["posted"]) == 6


def test_alert_sensor_retries_a_failed_post_next_tick_without_leaking_the_url(
    instance, storage, monkeypatch
):
    sensor = build_anomaly_alert_sensor(settings=alerts.AlertSettings(retries=0))
    _materialize_weeks(instance, storage, "2024-01-08")
    with WebhookListener(statuses=[500]) as hook:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", f"{hook.url}/{SECRET}")
        failed = _tick(sensor, instance, storage)
        assert "HTTP 500" in failed.skip_message and SECRET not in failed.skip_message
        assert json.loads(failed.cursor)["posted"] == []
        retried = _tick(sensor, instance, storage, cursor=failed.cursor)
    accepted = hook.bodies[1:]  # the first body got the 500
    assert len(_posted_flags(accepted)) == 3
    assert len(json.loads(retried.cursor)["posted"]) == 3


def test_alert_sensor_without_webhook_posts_nothing_and_keeps_its_place(
    instance, storage, monkeypatch
):
    monkeypatch.delenv("ALERT_WEBHOOK_URL", raising=False)
    _materialize_weeks(instance, storage, "2024-01-08")
    result = _tick(build_anomaly_alert_sensor(), instance, storage, cursor=None)
    assert "ALERT_WEBHOOK_URL is not set" in result.skip_message
    assert result.cursor is None


def test_alert_sensor_bounds_messages_per_tick(instance, storage, monkeypatch):
    sensor = build_anomaly_alert_sensor(
        settings=alerts.AlertSettings(max_flags_per_message=1), max_messages_per_tick=2
    )
    _materialize_weeks(instance, storage, "2024-01-08")
    with WebhookListener() as hook:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", hook.url)
        first = _tick(sensor, instance, storage)
        assert len(hook.bodies) == 2
        _tick(sensor, instance, storage, cursor=first.cursor)
    assert len(hook.bodies) == 3 and len(set(map(tuple, _posted_flags(hook.bodies)))) == 3


def test_alert_sensor_never_posts_again_what_a_slow_webhook_took(instance, storage, monkeypatch):
    """A webhook that answers after the timeout got each message once per attempt (3 a
    tick), tick after tick; a request sent without an answer is now counted as posted."""
    sensor = build_anomaly_alert_sensor(settings=alerts.AlertSettings(timeout_seconds=0.2))
    _materialize_weeks(instance, storage, "2024-01-08")
    with WebhookListener(delay=0.6) as hook:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", hook.url)
        first = _tick(sensor, instance, storage)
        second = _tick(sensor, instance, storage, cursor=first.cursor)
        time.sleep(0.7)  # the listener records a body before its delay
    assert len(hook.bodies) == 1 and len(_posted_flags(hook.bodies)) == 3
    assert len(json.loads(first.cursor)["posted"]) == 3
    assert "no new high-or-worse flag" in second.skip_message


def test_alert_sensor_ends_its_tick_in_time_and_posts_the_rest_next_tick(
    instance, storage, monkeypatch
):
    """Dagster ends a tick at 60 s and keeps none of its cursor: a tick that ran over posted
    its messages again on every following tick. A post starts only if it can end in time."""
    settings = alerts.AlertSettings(max_flags_per_message=1, timeout_seconds=0.5, retries=0)
    sensor = build_anomaly_alert_sensor(settings=settings, tick_budget_seconds=0.9)
    _materialize_weeks(instance, storage, "2024-01-08")
    with WebhookListener(delay=0.3) as hook:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", hook.url)
        cursor, posted_per_tick = None, []
        for _ in range(4):
            result = _tick(sensor, instance, storage, cursor=cursor)
            cursor = result.cursor
            posted_per_tick.append(len(hook.bodies) - sum(posted_per_tick))
    assert 1 <= posted_per_tick[0] < 3  # the third post could not have ended in 0.9 s
    flags = _posted_flags(hook.bodies)
    assert len(flags) == len(set(flags)) == 3


def test_alert_sensor_keeps_what_it_posted_when_a_weeks_file_cannot_be_read(
    instance, storage, monkeypatch
):
    """An unreadable file raised out of the tick, so its cursor was lost and the weeks
    before it were posted again on every tick."""
    sensor = build_anomaly_alert_sensor()
    _materialize_weeks(instance, storage, "2024-01-08", "2024-01-15")
    broken = storage.table_path("anomaly_flags", "2024-01-15")
    good = broken.read_bytes()
    broken.write_bytes(b"not parquet")
    with WebhookListener() as hook:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", hook.url)
        first = _tick(sensor, instance, storage)
        assert "cannot be read (ArrowInvalid); retried next tick" in first.skip_message
        second = _tick(sensor, instance, storage, cursor=first.cursor)
        assert len(_posted_flags(hook.bodies)) == 3  # the first week's, once
        broken.write_bytes(good)
        _tick(sensor, instance, storage, cursor=second.cursor)
    flags = _posted_flags(hook.bodies)
    assert len(flags) == len(set(flags)) == 6


# --- failed runs ---------------------------------------------------------------------------


def _fail_toy_run(instance) -> str:
    job = dg.Definitions(assets=[toy.toy_failing], jobs=[toy.toy_failing_job]).resolve_job_def(
        "toy_failing_job"
    )
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    return result.run_id


def _run_ids(bodies):
    """The run id of each failure message received, in order."""
    return [body["blocks"][0]["text"]["text"].split("run `")[1].split("`")[0] for body in bodies]


def _pending(result):
    return [p["run_id"] for p in json.loads(result.cursor)["pending"]]


def test_run_failure_sensor_posts_each_failed_run_once_across_ticks(instance, storage, monkeypatch):
    sensor = build_run_failure_alert_sensor()
    with WebhookListener() as hook:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", f"{hook.url}/{SECRET}")
        run_id = _fail_toy_run(instance)
        first = _tick(sensor, instance, storage)
        second = _tick(sensor, instance, storage, cursor=first.cursor)
        later = _fail_toy_run(instance)
        third = _tick(sensor, instance, storage, cursor=second.cursor)
        fourth = _tick(sensor, instance, storage, cursor=third.cursor)
    assert _run_ids(hook.bodies) == [run_id, later]
    assert "no failed run to post" in second.skip_message
    assert "no failed run to post" in fourth.skip_message and _pending(fourth) == []
    assert all(path.endswith(SECRET) for path in hook.paths)
    body = hook.bodies[0]
    text = body["blocks"][0]["text"]["text"]
    assert "toy_failing_job" in body["text"] and "`toy_failing`" in text
    # the step's own error, not Dagster's 'Execution of run ... failed. Steps failed: [...]'
    error_line = next(line for line in text.splitlines() if line.startswith("error: "))
    assert error_line == (
        "error: toy_failing: Failure: toy failure: the export endpoint refused the batch"
    ), error_line


def test_run_failure_alert_of_a_run_stopped_by_a_blocking_check_names_the_check_and_its_line(
    instance, data_dir, tmp_path, monkeypatch
):
    """Insights with rows and none accepted stop the week's run at the blocking check
    `quarantine:every_file_has_accepted_rows`. The alert names that check and gives its own
    line (the file, its counts, what to do), not Dagster's "1 blocking asset check failed"."""
    from campaign_pipeline.definitions import defs

    (data_dir / "raw" / "insights.csv").write_text(ISO_DATED_INSIGHTS)
    out = tmp_path / "out"
    storage = PipelineStorage(data_dir=str(data_dir), out_dir=str(out))
    result = defs.resolve_job_def("weekly_pipeline_job").execute_in_process(
        instance=instance,
        partition_key="2024-01-15",
        resources={"storage": storage},
        raise_on_error=False,
    )
    assert not result.success
    with WebhookListener() as hook:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", f"{hook.url}/{SECRET}")
        _tick(build_run_failure_alert_sensor(), instance, storage)
    [body] = hook.bodies
    assert body["text"] == (
        "Run failed: weekly_pipeline_job for week 2024-01-15: "
        "check quarantine:every_file_has_accepted_rows"
    )
    lines = body["blocks"][0]["text"]["text"].splitlines()
    assert lines[2] == "failed steps: `quarantine`"
    prefix = "failed check `quarantine:every_file_has_accepted_rows`: "
    [check_line] = lines[3:]  # no "error:" line: the check's line is the whole story
    assert check_line.startswith(prefix + "insights.csv: none of its 3 rows was accepted (")
    shown = check_line.removeprefix(prefix).removesuffix("…")
    assert iso_dated_insights_stop_line(out).startswith(shown) and len(shown) >= 400
    assert "blocking asset check failed" not in body["blocks"][0]["text"]["text"]


def test_run_failure_alert_waits_for_the_webhook_to_recover_and_posts_once(
    instance, storage, monkeypatch, capfd
):
    """A webhook answering 503 to every try of a tick lost the failure: Dagster's run-failure
    sensor moves past the run whatever its post did. Here each run waits in the cursor."""
    settings = alerts.AlertSettings(max_backoff_seconds=0.01)  # 3 tries a tick, no waiting
    sensor = build_run_failure_alert_sensor(settings=settings)
    with WebhookListener(statuses=[503] * 4) as hook:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", f"{hook.url}/{SECRET}")
        first, second = _fail_toy_run(instance), _fail_toy_run(instance)
        down = _tick(sensor, instance, storage)  # the first run: 3 tries, 3 x 503
        assert len(hook.bodies) == 3
        assert "HTTP 503" in down.skip_message and SECRET not in down.skip_message
        assert _pending(down) == [first, second]
        # the second run (no failed try yet) goes first: 503, then 200; then the first: 200
        recovered = _tick(sensor, instance, storage, cursor=down.cursor)
        after = _tick(sensor, instance, storage, cursor=recovered.cursor)
        again = _tick(sensor, instance, storage, cursor=after.cursor)
    assert len(hook.bodies) == 6
    assert _run_ids(hook.bodies[4:]) == [second, first]  # the accepted posts, one per run
    assert _pending(recovered) == [] and _pending(again) == []
    assert "no failed run to post" in after.skip_message and "no failed run" in again.skip_message
    logged = capfd.readouterr()
    assert f"failure alert of run {first} not posted, tried again next tick" in logged.err
    assert SECRET not in logged.out + logged.err


def test_run_failure_alert_is_given_up_past_its_age_bound_with_a_log_line(
    instance, storage, monkeypatch, capfd
):
    sensor = build_run_failure_alert_sensor(
        settings=alerts.AlertSettings(retries=0), max_age_seconds=1.0
    )
    with WebhookListener(statuses=[503]) as hook:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", f"{hook.url}/{SECRET}")
        old = _fail_toy_run(instance)
        down = _tick(sensor, instance, storage)
        assert _pending(down) == [old]
        time.sleep(1.1)
        fresh = _fail_toy_run(instance)
        recovered = _tick(sensor, instance, storage, cursor=down.cursor)
        again = _tick(sensor, instance, storage, cursor=recovered.cursor)
    # the old run's one try got the 503; it is never posted, the fresh run is, once
    assert _run_ids(hook.bodies) == [old, fresh]
    assert _pending(recovered) == [] and "no failed run to post" in again.skip_message
    logged = capfd.readouterr().err
    assert f"gave up posting the failure of run {old} (failed " in logged
    assert "not accepted by the webhook within 1 s of the failure, 1 failed tick(s)" in logged
    assert SECRET not in logged


def test_run_failure_sensor_without_webhook_keeps_failures_for_later(
    instance, storage, monkeypatch
):
    monkeypatch.delenv("ALERT_WEBHOOK_URL", raising=False)
    run_id = _fail_toy_run(instance)
    sensor = build_run_failure_alert_sensor()
    unset = _tick(sensor, instance, storage)
    assert "ALERT_WEBHOOK_URL is not set" in unset.skip_message and unset.cursor is None
    with WebhookListener() as hook:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", hook.url)
        _tick(sensor, instance, storage, cursor=unset.cursor)
    assert _run_ids(hook.bodies) == [run_id]


def test_run_failure_sensor_resumes_after_dagsters_run_failure_sensor_cursor(
    instance, storage, monkeypatch
):
    """A deployment whose sensor of this name kept Dagster's run-status cursor: the failures
    that cursor handled are not posted again, the ones after it are."""
    from dagster._core.definitions.run_status_sensor_definition import RunStatusSensorCursor

    _fail_toy_run(instance)
    (handled,) = instance.fetch_run_status_changes(dg.DagsterEventType.RUN_FAILURE, limit=1).records
    cursor = RunStatusSensorCursor(record_id=handled.storage_id, record_timestamp=None).to_json()
    new = _fail_toy_run(instance)
    with WebhookListener() as hook:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", hook.url)
        _tick(build_run_failure_alert_sensor(), instance, storage, cursor=cursor)
    assert _run_ids(hook.bodies) == [new]


def test_run_failure_sensor_posts_only_the_monitored_jobs(instance, storage, monkeypatch):
    _fail_toy_run(instance)
    sensor = build_run_failure_alert_sensor(monitored_jobs=[toy.toy_weekly_job])
    with WebhookListener() as hook:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", hook.url)
        result = _tick(sensor, instance, storage)
    assert hook.bodies == [] and "no failed run to post" in result.skip_message
    assert _pending(result) == [] and json.loads(result.cursor)["after_storage_id"] is not None


def test_both_data_sensors_work_on_an_s3_data_dir(instance, data_dir, s3_prefix, monkeypatch):
    """The raw-file sensor watches ``s3://.../raw``; the alert sensor reads the flags the
    materialization wrote to the bucket (its ``path`` metadata is an s3:// URL)."""
    from campaign_pipeline.locations import Location

    storage = PipelineStorage(data_dir=f"{s3_prefix}/data", out_dir=f"{s3_prefix}/out")
    for path in sorted((data_dir / "raw").iterdir()):
        (storage.raw_dir / path.name).write_bytes(path.read_bytes())
    raw = _tick(build_raw_file_sensor(toy.toy_weekly_job, settle_seconds=0), instance, storage)
    assert [run_weeks(r.tags) for r in raw.run_requests] == ["2024-01-08 to 2024-01-22"]
    with WebhookListener() as hook:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", f"{hook.url}/{SECRET}")
        _materialize_weeks(instance, storage, "2024-01-08")
        assert Location(f"{s3_prefix}/out/anomaly_flags/2024-01-08.parquet").is_file()
        _tick(build_anomaly_alert_sensor(), instance, storage)
    assert len(_posted_flags(hook.bodies)) == 3  # as on a local folder: 2 high + 1 critical


def test_the_raw_file_sensors_range_run_runs_the_real_pipeline_once_for_every_week(
    instance, data_dir, tmp_path
):
    """The code location's sensor, ticked on the tiny exports, asks for one run of its range;
    that run of `weekly_pipeline_job` validates each raw file once and writes every week."""
    from campaign_pipeline.definitions import defs

    storage = PipelineStorage(data_dir=str(data_dir), out_dir=str(tmp_path / "out"))
    context = dg.build_sensor_context(
        instance=instance, resources={"storage": storage}, definitions=defs
    )
    sensor = defs.resolve_sensor_def("raw_file_sensor")
    # the exports were written a moment ago: they may still be being copied in
    waiting = sensor.evaluate_tick(context)
    assert not waiting.run_requests and waiting.cursor is None
    assert "modified less than 60 s ago, maybe still being copied in" in waiting.skip_message
    a_while_ago = time.time() - 61
    for path in (data_dir / "raw").iterdir():
        os.utime(path, (a_while_ago, a_while_ago))
    (request,) = sensor.evaluate_tick(context).run_requests
    result = defs.resolve_job_def("weekly_pipeline_job").execute_in_process(
        instance=instance, tags=request.tags, resources={"storage": storage}
    )
    assert result.success
    weeks = {"2024-01-08", "2024-01-15", "2024-01-22"}
    for table in ("daily_campaign_metrics", "anomaly_flags", "campaign_health"):
        assert instance.get_materialized_partitions(dg.AssetKey(table)) == weeks
        assert {p.stem for p in (tmp_path / "out" / table).glob("*.parquet")} == weeks
    materialized = [e.asset_key.path[-1] for e in result.get_asset_materialization_events()]
    assert materialized.count("validated_insights") == 1
    # the job's own run tag, which dagster.yaml's run queue limits to one run at a time
    assert instance.get_run_by_id(result.run_id).tags[REWRITES_VALIDATED_LAYER_TAG] == "true"

    # the next Monday's schedule tick finds its week (2024-01-22) covered by that run from the
    # same files, so it does not validate the exports and judge the week again
    with dg.build_schedule_context(  # exited here: see test_schedules._evaluate
        instance=instance,
        scheduled_execution_time=dt.datetime(2024, 1, 29, 6, 0, tzinfo=dt.UTC),
        resources={"storage": storage, "salesforce": SalesforceSource()},
        repository_def=defs.get_repository_def(),
    ) as schedule_context:
        tick = defs.resolve_schedule_def("weekly_pipeline_schedule").evaluate_tick(schedule_context)
    assert not tick.run_requests and result.run_id in tick.skip_message


def test_a_failure_alert_names_the_exception_an_asset_raised(instance):
    """Dagster wraps an asset's exception; the alert shows the exception, not the wrapper."""
    from campaign_pipeline.sensors import _first_step_error

    @dg.asset
    def validated_insights_probe():
        raise ValueError("insights.csv, column 'spend': required column missing")

    result = dg.materialize([validated_insights_probe], instance=instance, raise_on_error=False)
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert _first_step_error(failures) == (
        "validated_insights_probe: ValueError: insights.csv, column 'spend': required column "
        "missing"
    )
