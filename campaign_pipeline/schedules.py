"""The weekly schedule: Monday 06:00 materializes the week that just ended.

Built from the partitioned job so the schedule and the partitions cannot disagree: a tick
at Monday 06:00 asks for the last *complete* weekly partition, i.e. the Monday..Sunday
that ended a few hours earlier. 06:00 leaves the ad platforms' overnight exports time to
land. The timezone is the partitions' (``CAMPAIGN_PIPELINE_TIMEZONE``, UTC by default), so
"Monday 06:00" and "the week" are both in the marketing team's local time.
"""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

# 06:00 on Monday: after the nightly exports, before the teams' Monday review.
SCHEDULE_HOUR = 6
SCHEDULE_MINUTE = 0
MONDAY = 1  # cron day of week


def build_weekly_schedule(
    job: dg.JobDefinition | UnresolvedAssetJobDefinition,
    *,
    name: str = "weekly_pipeline_schedule",
    hour_of_day: int = SCHEDULE_HOUR,
    minute_of_hour: int = SCHEDULE_MINUTE,
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.STOPPED,
):
    """A schedule running ``job`` (weekly-partitioned) for the week just ended.

    STOPPED by default like every Dagster schedule: a deployment turns it on once
    (UI, or ``dagster schedule start weekly_pipeline_schedule``) and the state persists in
    the instance's schedule storage.
    """
    return dg.build_schedule_from_partitioned_job(
        job,
        name=name,
        hour_of_day=hour_of_day,
        minute_of_hour=minute_of_hour,
        day_of_week=MONDAY,
        default_status=default_status,
        description=(
            f"Mondays {hour_of_day:02d}:{minute_of_hour:02d} (partition timezone): "
            f"{job.name} for the week that just ended."
        ),
        tags={"campaign_pipeline/trigger": "weekly_schedule"},
    )
