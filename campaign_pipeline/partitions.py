"""Weekly partitions, Monday start (ISO weeks), as the data contract fixes.

The first week is configuration because a partitions definition needs a fixed start at
load time while users' exports can begin anywhere: `CAMPAIGN_PIPELINE_PARTITION_START`
(a date; it is moved back to its Monday). The CLI sets it from the earliest week found in
the raw files, so `campaign-pipeline run` covers every week present without the user
having to know this. The default covers the shipped sample data and a year before it.
"""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg

DEFAULT_PARTITION_START = "2024-01-01"
PARTITION_START_ENV = "CAMPAIGN_PIPELINE_PARTITION_START"
PARTITION_TIMEZONE_ENV = "CAMPAIGN_PIPELINE_TIMEZONE"


def monday_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def partition_start() -> dt.date:
    raw = os.environ.get(PARTITION_START_ENV, DEFAULT_PARTITION_START)
    try:
        day = dt.date.fromisoformat(raw.strip())
    except ValueError as exc:
        raise ValueError(
            f"{PARTITION_START_ENV}={raw!r} is not a date (expected YYYY-MM-DD)"
        ) from exc
    return monday_of(day)


def partition_timezone() -> str:
    return os.environ.get(PARTITION_TIMEZONE_ENV, "UTC")


weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=partition_start().isoformat(),
    day_offset=1,  # Monday
    timezone=partition_timezone(),
)


def week_window(partition_key: str) -> tuple[dt.date, dt.date]:
    """The inclusive Monday..Sunday dates of a weekly partition key."""
    start = dt.date.fromisoformat(partition_key)
    return start, start + dt.timedelta(days=6)
