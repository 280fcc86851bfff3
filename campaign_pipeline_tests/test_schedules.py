"""The weekly schedule: its cron, its timezone, and the week a Monday tick materializes."""

import datetime as dt
import json
import os
import subprocess
import sys
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from campaign_pipeline.schedules import build_weekly_schedule
from campaign_pipeline_tests import _toy_definitions as toy
from campaign_pipeline_tests._orchestration_support import REPO_ROOT


def _resolved(schedule):
    defs = dg.Definitions(
        assets=toy.toy_assets,
        jobs=[toy.toy_weekly_job],
        schedules=[schedule],
        resources={"storage": toy.PipelineStorage()},
    )
    return defs, defs.resolve_schedule_def(schedule.name)


def _tick(when: dt.datetime):
    # the instance first: Dagster ties definition loading to the current test instance
    with dg.instance_for_test() as instance:
        defs, schedule = _resolved(build_weekly_schedule(toy.toy_weekly_job))
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=when,
            repository_def=defs.get_repository_def(),
        )
        return schedule.evaluate_tick(context).run_requests


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
    defs = dg.Definitions(assets=toy.toy_assets, jobs=[toy.toy_weekly_job],
                          schedules=[build_weekly_schedule(toy.toy_weekly_job)],
                          resources={"storage": toy.PipelineStorage()})
    schedule = defs.resolve_schedule_def("weekly_pipeline_schedule")
    when = dt.datetime(2024, 3, 11, 6, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
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
