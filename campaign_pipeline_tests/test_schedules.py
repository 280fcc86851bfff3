"""The weekly schedule: its cron, its timezone, and the week a Monday tick materializes."""

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from campaign_pipeline import raw_files
from campaign_pipeline.constants import RAW_FILES
from campaign_pipeline.partitions import RAW_CONTENTS_TAG, range_run_tags
from campaign_pipeline.resources.salesforce import SalesforceSource
from campaign_pipeline.schedules import build_weekly_schedule
from campaign_pipeline_tests import _toy_definitions as toy
from campaign_pipeline_tests._orchestration_support import REPO_ROOT


def _resources(storage=None, salesforce=None) -> dict:
    return {
        "storage": storage or toy.PipelineStorage(),
        "salesforce": salesforce or SalesforceSource(),
    }


def _resolved(schedule, resources=None):
    defs = dg.Definitions(
        assets=toy.toy_assets,
        jobs=[toy.toy_weekly_job],
        schedules=[schedule],
        resources=resources or _resources(),
    )
    return defs, defs.resolve_schedule_def(schedule.name)


# The toy code location, loaded once at import, outside any test instance (as a deployment
# loads its code location before any run): loaded inside a test after a run there, it failed
# now and then with Dagster's "Attempted to resolve undefined DagsterInstance weakref".
TOY_REPOSITORY = _resolved(build_weekly_schedule(toy.toy_weekly_job))[0].get_repository_def()


def _evaluate(instance, when: dt.datetime, storage=None, salesforce=None):
    # entered and exited: the context opens an instance of its own from ``instance``'s ref,
    # which a context never exited closes whenever it is garbage-collected, putting that
    # instance's definitions-state storage back as the current one, by then in a later test
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=when,
        resources=_resources(storage, salesforce),
        repository_def=TOY_REPOSITORY,
    ) as context:
        return TOY_REPOSITORY.get_schedule_def("weekly_pipeline_schedule").evaluate_tick(context)


def _tick(when: dt.datetime):
    with dg.instance_for_test() as instance:
        return _evaluate(instance, when).run_requests


def test_cron_is_monday_six_utc_by_default():
    with dg.instance_for_test():
        _, schedule = _resolved(build_weekly_schedule(toy.toy_weekly_job))
    assert schedule.cron_schedule == "0 6 * * 1"
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


@pytest.mark.parametrize(
    ("monday", "week"),
    [
        (dt.datetime(2024, 3, 11, 6, 0), "2024-03-04"),
        (dt.datetime(2024, 1, 8, 6, 0), "2024-01-01"),
        (dt.datetime(2024, 12, 30, 6, 0), "2024-12-23"),
    ],
)
def test_monday_tick_materializes_the_week_that_just_ended(monday, week):
    (request,) = _tick(monday.replace(tzinfo=dt.UTC))
    assert request.partition_key == week
    assert request.tags["campaign_pipeline/trigger"] == "weekly_schedule"
    start = dt.date.fromisoformat(week)
    assert start.weekday() == 0 and start + dt.timedelta(days=7) == monday.date()


def test_schedule_follows_the_configured_timezone():
    """CAMPAIGN_PIPELINE_TIMEZONE moves both the tick and the week boundaries (new process:
    the partitions are built at import)."""
    code = """
import datetime as dt, json
from zoneinfo import ZoneInfo
import dagster as dg
from campaign_pipeline.schedules import build_weekly_schedule
from campaign_pipeline_tests import _toy_definitions as toy
with dg.instance_for_test() as instance:
    from campaign_pipeline.resources.salesforce import SalesforceSource
    defs = dg.Definitions(assets=toy.toy_assets, jobs=[toy.toy_weekly_job],
                          schedules=[build_weekly_schedule(toy.toy_weekly_job)],
                          resources={"storage": toy.PipelineStorage(),
                                     "salesforce": SalesforceSource()})
    schedule = defs.resolve_schedule_def("weekly_pipeline_schedule")
    when = dt.datetime(2024, 3, 11, 6, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                        resources={"storage": toy.PipelineStorage(),
                                                   "salesforce": SalesforceSource()},
                                        repository_def=defs.get_repository_def())
    (request,) = schedule.evaluate_tick(context).run_requests
print(json.dumps({"tz": schedule.execution_timezone, "cron": schedule.cron_schedule,
                  "partition": request.partition_key}))
"""
    env = {
        **os.environ,
        "CAMPAIGN_PIPELINE_TIMEZONE": "America/Los_Angeles",
        "PYTHONWARNINGS": "ignore",
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"tz": "America/Los_Angeles", "cron": "0 6 * * 1", "partition": "2024-03-04"}
    # the same instant is still Monday 14:00 in UTC: a UTC schedule would have ticked 8 h earlier
    assert (
        dt.datetime(2024, 3, 11, 6, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
        .astimezone(dt.UTC)
        .hour
        == 13
    )


# --- a week already run from the same files -------------------------------------------------

MONDAY_AFTER = dt.datetime(2024, 1, 29, 6, 0, tzinfo=dt.UTC)  # its last complete week: 2024-01-22
WEEK = "2024-01-22"
INSIGHTS = "campaign_id,created_at,spend\nc1,2024-01-23,10\nc1,2024-01-24,12\n"


@pytest.fixture
def storage(tmp_path):
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    (raw / RAW_FILES["insights"]).write_text(INSIGHTS)
    (raw / RAW_FILES["campaigns"]).write_text("campaign_id,platform\nc1,google\n")
    return toy.PipelineStorage(data_dir=str(tmp_path / "data"), out_dir=str(tmp_path / "out"))


def _run_toy_job(instance, storage, tags):
    """A real run of the toy job on the instance, asked for with ``tags``; its status."""
    result = TOY_REPOSITORY.get_job("toy_weekly_job").execute_in_process(
        instance=instance, tags=tags, resources={"storage": storage}, raise_on_error=False
    )
    return result.success


def _raw(storage, kind: str) -> Path:
    return Path(str(storage.raw_dir)) / RAW_FILES[kind]


def _contents(storage):
    return raw_files.current_contents_digest(storage.raw_dir)


def test_a_week_run_from_the_files_as_they_are_is_skipped_until_a_file_changes(storage):
    with dg.instance_for_test() as instance:
        assert _run_toy_job(
            instance,
            storage,
            {"dagster/partition": WEEK, RAW_CONTENTS_TAG: _contents(storage)},
        )
        (run,) = instance.get_runs()
        result = _evaluate(instance, MONDAY_AFTER, storage)
        assert not result.run_requests
        assert WEEK in result.skip_message and run.run_id in result.skip_message

        # the same name, new contents (one more row): the week is run again, and the request
        # carries the new contents
        with _raw(storage, "insights").open("a") as handle:
            handle.write("c1,2024-01-25,9\n")
        (request,) = _evaluate(instance, MONDAY_AFTER, storage).run_requests
        assert request.partition_key == WEEK
        assert request.tags[RAW_CONTENTS_TAG] == _contents(storage) != run.tags[RAW_CONTENTS_TAG]
        assert request.tags["campaign_pipeline/trigger"] == "weekly_schedule"


@pytest.mark.parametrize(
    ("tags", "skipped"),
    [
        (range_run_tags("2024-01-08", "2024-01-22"), True),  # a range holding the week
        (range_run_tags("2024-01-08", "2024-01-15"), False),  # a range that ends before it
        ({"dagster/partition": "2024-01-15"}, False),  # another week
    ],
)
def test_a_run_counts_only_if_it_covered_the_week(storage, tags, skipped):
    with dg.instance_for_test() as instance:
        assert _run_toy_job(instance, storage, {**tags, RAW_CONTENTS_TAG: _contents(storage)})
        assert bool(_evaluate(instance, MONDAY_AFTER, storage).run_requests) is not skipped


def test_only_the_weeks_latest_successful_run_counts(storage):
    with dg.instance_for_test() as instance:
        tags = {"dagster/partition": WEEK, RAW_CONTENTS_TAG: _contents(storage)}
        assert _run_toy_job(instance, storage, tags)
        assert not _evaluate(instance, MONDAY_AFTER, storage).run_requests
        # a later run launched by hand carries no digest: what it read is unknown, so the
        # week (whose tables are now that run's) is run again
        assert _run_toy_job(instance, storage, {"dagster/partition": WEEK})
        assert _evaluate(instance, MONDAY_AFTER, storage).run_requests
        # a failed run over the files as they are (no created_at column for the weekly step)
        # does not count either
        _raw(storage, "insights").write_text("campaign_id,spend\nc1,10\n")
        tags = {"dagster/partition": WEEK, RAW_CONTENTS_TAG: _contents(storage)}
        assert not _run_toy_job(instance, storage, tags)
        assert _evaluate(instance, MONDAY_AFTER, storage).run_requests


def test_with_the_salesforce_source_on_the_monday_run_always_runs(storage):
    """The Monday run is what pulls the week's leads from the org: never skipped."""
    salesforce = SalesforceSource(
        instance_url="https://example.my.salesforce.com", access_token="token"
    )
    with dg.instance_for_test() as instance:
        tags = {"dagster/partition": WEEK, RAW_CONTENTS_TAG: _contents(storage)}
        assert _run_toy_job(instance, storage, tags)
        (request,) = _evaluate(instance, MONDAY_AFTER, storage, salesforce).run_requests
        assert request.partition_key == WEEK
        # half set: the run reports the missing variable, so it must run too
        half = SalesforceSource(instance_url="https://example.my.salesforce.com")
        assert _evaluate(instance, MONDAY_AFTER, storage, half).run_requests
        assert not _evaluate(instance, MONDAY_AFTER, storage).run_requests  # off: skipped
