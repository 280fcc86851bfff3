"""Weekly partitions, Monday start (ISO weeks), as the data contract fixes.

The partitions begin with the week of ``EARLIEST_DATE``, the earliest date ingestion accepts
by default (an older date is an export mistake, quarantined as ``date_out_of_range``). A
partitions definition must have a fixed start when the code location loads, and Dagster
offers no way to move it at run time; a fixed start that every plausible export lies after
keeps the definition the same in the UI, the daemon and every run process, whatever data a
run finds. The weeks a run actually covers come from the accepted rows' delivery, lead and
conversion days (the CLI; `PipelineStorage.accepted_day_range`) or from the
partition a user, the schedule or a sensor picks; weeks before a dataset's first row simply
stay unmaterialized.

The timezone is a deployment setting read when the code location loads
(``CAMPAIGN_PIPELINE_TIMEZONE``, default UTC): the schedule's "Monday 06:00" and the
freshness deadlines are in it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from campaign_pipeline.constants import partition_timezone

# Ad platforms and CRMs of interest post-date 2000; anything older is a typo (1900-01-01 is a
# spreadsheet's zero date). The first partition is the Monday of this date's week.
EARLIEST_DATE = dt.date(2000, 1, 1)


def monday_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


PARTITION_START = monday_of(EARLIEST_DATE)


weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=PARTITION_START.isoformat(),
    day_offset=1,  # Monday
    timezone=partition_timezone(),
)


def week_window(partition_key: str) -> tuple[dt.date, dt.date]:
    """The inclusive Monday..Sunday dates of a weekly partition key."""
    start = dt.date.fromisoformat(partition_key)
    return start, start + dt.timedelta(days=6)


def describe_weeks(weeks: list[str]) -> str:
    """A list of weeks as a count and a range (never thousands of dates)."""
    if not weeks:
        return "0 weeks"
    if len(weeks) == 1:
        return f"1 week ({weeks[0]})"
    return f"{len(weeks)} weeks ({weeks[0]} .. {weeks[-1]})"


def week_ranges(weeks: Iterable[str]) -> list[tuple[str, ...]]:
    """The weeks (keys, in order) in ranges of consecutive Mondays."""
    ranges: list[list[str]] = []
    for week in weeks:
        if ranges and dt.date.fromisoformat(week) - dt.date.fromisoformat(
            ranges[-1][-1]
        ) == dt.timedelta(days=7):
            ranges[-1].append(week)
        else:
            ranges.append([week])
    return [tuple(found) for found in ranges]


def describe_stretches(stretches: Sequence[Sequence[str]], most: int = 4) -> str:
    """Ranges of consecutive weeks, each as `describe_weeks` says it: ``1 week (2017-03-06),
    18 weeks (2025-01-06 .. 2025-05-05)``; past ``most`` ranges, the first ones and how many
    more."""
    shown = [describe_weeks(list(stretch)) for stretch in stretches[:most]]
    more = len(stretches) - len(shown)
    return ", ".join(shown) + (f" and {more} more ranges" if more > 0 else "")


def missing_weeks(
    stored: Iterable[str], first: str, last: str, data_weeks: Iterable[str]
) -> list[str]:
    """The weeks from ``first`` to ``last`` (keys) that hold accepted data (``data_weeks``)
    and have no stored partition, in order: the history a run reads that was never
    materialized. A week without data would give no rows stored or not, whether it lies
    before the data, after it or in a gap of it, so naming it would only mislead."""
    # ISO dates order as text
    return sorted(week for week in set(data_weeks).difference(stored) if first <= week <= last)


def week_keys(first: str, last: str) -> list[str]:
    """Every week key from ``first`` to ``last`` (both Mondays), in order."""
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [(start + dt.timedelta(weeks=n)).isoformat() for n in range((end - start).days // 7 + 1)]


def history_missing_weeks(
    stored: Iterable[str],
    first: str,
    last: str,
    data_weeks_between: Callable[[str, str], Iterable[str]],
) -> list[str]:
    """`missing_weeks` of the stretch ``first``..``last``, asking ``data_weeks_between(a, b)``
    for the weeks that hold accepted data only when a week of the stretch has no stored
    partition, and only for the weeks ``a``..``b`` from the first such week to the last.

    Which weeks hold data is found by scanning the validated layer's date columns, whose
    length grows with the stored history; a Monday run over a history whose weeks are all
    stored (the schedule's case) needs no scan, and a stretch with a few unstored weeks
    scans only their days."""
    kept = set(stored)
    unstored = [week for week in week_keys(first, last) if week not in kept]
    if not unstored:
        return []
    return missing_weeks(kept, first, last, data_weeks_between(unstored[0], unstored[-1]))


def last_complete_week(when: dt.datetime) -> str | None:
    """The key of the last week that ended by ``when`` (a time in the partitions' timezone):
    on a Monday, the Monday..Sunday just ended. None before the first partition ends."""
    week = monday_of(when.date()) - dt.timedelta(days=7)
    return week.isoformat() if week >= PARTITION_START else None


# What started a run ("raw_file_sensor", "weekly_schedule"): set by the sensor and the schedule,
# named by the schedule when it skips a week that run covered.
TRIGGER_TAG = "campaign_pipeline/trigger"

# The digest of the raw files (`raw_files.contents_digest`) a run was asked for with: set by the
# raw-file sensor and the weekly schedule, read by the schedule to skip a week already run from
# the same files.
RAW_CONTENTS_TAG = "campaign_pipeline/raw_contents"


def range_run_tags(first: str, last: str) -> dict[str, str]:
    """Tags of one run over the weeks ``first`` .. ``last``: the weekly assets declare a
    single-run backfill policy, so a range is one run, not a run per week."""
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def run_weeks(tags: Mapping[str, str]) -> str | None:
    """The week a run's tags name, or its range of weeks ("FIRST to LAST"); None for neither."""
    if tags.get("dagster/partition"):
        return tags["dagster/partition"]
    first, last = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    return f"{first} to {last}" if first and last else None


def run_covers(tags: Mapping[str, str], week: str) -> bool:
    """Whether a run with these tags materialized ``week``: its partition, or a range holding it."""
    if tags.get("dagster/partition"):
        return tags["dagster/partition"] == week
    first, last = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    return bool(first and last) and first <= week <= last
