"""Reading a week's published tables for its report, and writing the page.

Parquet files under the out dir (the data contract's layout; a local folder or an object-store
URL), no Dagster: the asset and `campaign-pipeline report` call the same loader, so a page
rebuilt from the command line is the page the pipeline wrote.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaign_pipeline.locations import Location
from campaign_pipeline.parquet_io import read_parquet

REPORT_FOLDER = "weekly_report"
# The week's own partitions; without any of them there is nothing to report on.
REQUIRED_WEEK_TABLES = (
    "campaign_health",
    "weekly_totals",
    "anomaly_flags",
    "weekly_campaign_metrics",
    "daily_campaign_metrics",
)
# The anomaly charts' "recent days": the judged week and the three before it (28 days).
DAILY_WEEKS_BEFORE = 3
# A week-grain flag is judged against the campaign's 8 weeks before; its chart shows them.
WEEKLY_WEEKS_BEFORE = 8


class MissingTablesError(Exception):
    """The week's published tables are not there (never run, or another out dir).

    The message names them; each caller adds what its user can do about it (`hint`), since a
    command-line user and someone materializing one asset in the Dagster UI act differently.
    """

    def with_hint(self, hint: str) -> str:
        return f"{self} ({hint})"


@dataclass(frozen=True)
class ReportTables:
    """Everything one week's page is built from, as published."""

    week: str
    health: pd.DataFrame  # campaign_health, the week
    previous_health: pd.DataFrame  # campaign_health, the week before (empty if never published)
    totals: pd.DataFrame  # weekly_totals, the week and the week before
    # weekly_campaign_metrics: the week's rows, and the 8 weeks before of the flagged campaigns
    weekly: pd.DataFrame
    # daily_campaign_metrics of the flagged campaigns, the 28 days ending on the week's Sunday
    daily: pd.DataFrame
    flags: pd.DataFrame  # anomaly_flags of the week
    # the whole quarantine table; None when quarantine.parquet is not in the out dir (an out
    # dir copied without it), which the page must not show as a clean, empty quarantine
    quarantine: pd.DataFrame | None
    # the week's days on which any campaign delivered (daily_campaign_metrics.has_delivery)
    delivery_days: tuple[pd.Timestamp, ...]


def check_week(week: str) -> str:
    """A week key is the ISO date of a Monday; anything else is a usage error."""
    try:
        day = dt.date.fromisoformat(week)
    except (TypeError, ValueError):
        raise ValueError(f"--week {week!r} is not a date (YYYY-MM-DD)") from None
    if day.weekday() != 0:
        monday = day - dt.timedelta(days=day.weekday())
        raise ValueError(
            f"--week {week} is a {day:%A}; weeks start on Monday (that week is {monday})"
        )
    return day.isoformat()


def shift(week: str, weeks: int) -> str:
    return (dt.date.fromisoformat(week) + dt.timedelta(weeks=weeks)).isoformat()


def report_path(out_dir: str | Path | Location, week: str) -> Location:
    """Where the data contract puts a week's page: ``<out>/weekly_report/<week_start>.html``."""
    return Location(out_dir) / REPORT_FOLDER / f"{week}.html"


def _week_file(out_dir: Location, table: str, week: str) -> Location:
    return out_dir / table / f"{week}.parquet"


def _read_weeks(
    out_dir: Location,
    table: str,
    first: str,
    last: str,
    campaigns: pd.Series | None = None,
    whole_week: str | None = None,
) -> pd.DataFrame:
    """The table's stored weeks from first to last; weeks never published are skipped.

    With ``campaigns``, every week but ``whole_week`` keeps only those campaigns' rows, read
    from the file that way: a page charts a few dozen flagged campaigns, and a large account's
    28 days of all of them (230k rows in a week of the scale benchmark's 16,000 campaigns, with
    its 9 weeks of weekly rows 145 MB of frames) are read for nothing.
    """
    only = None
    if campaigns is not None:
        only = pc.field("campaign_id").isin(pa.array(campaigns.unique(), pa.string()))
    frames, week = [], first
    while week <= last:
        path = _week_file(out_dir, table, week)
        if path.exists():
            frames.append(read_parquet(path, filters=None if week == whole_week else only))
        week = shift(week, 1)
    filled = [f for f in frames if len(f)]
    if filled:
        return pd.concat(filled, ignore_index=True)
    return frames[-1] if frames else pd.DataFrame()


def load_report_tables(out_dir: str | Path | Location, week: str) -> ReportTables:
    """The published tables one week's report needs; MissingTablesError names what is missing."""
    out = Location(out_dir)
    week = check_week(week)
    missing = [t for t in REQUIRED_WEEK_TABLES if not _week_file(out, t, week).exists()]
    if missing:
        raise MissingTablesError(f"{out}: week {week} has no published {', '.join(missing)}")
    quarantine_path = out / "quarantine.parquet"
    flags = _read_weeks(out, "anomaly_flags", week, week)
    flagged = flags["campaign_id"] if len(flags) else pd.Series([], dtype=object)
    # the 28 days of the flagged campaigns; of the others only the week's delivery days, from
    # two columns (a large account's week is 112k daily rows of 22 columns)
    daily = _read_weeks(
        out, "daily_campaign_metrics", shift(week, -DAILY_WEEKS_BEFORE), week, campaigns=flagged
    )
    return ReportTables(
        week=week,
        health=_read_weeks(out, "campaign_health", week, week),
        previous_health=_read_weeks(out, "campaign_health", shift(week, -1), shift(week, -1)),
        totals=_read_weeks(out, "weekly_totals", shift(week, -1), week),
        weekly=_read_weeks(
            out,
            "weekly_campaign_metrics",
            shift(week, -WEEKLY_WEEKS_BEFORE),
            week,
            campaigns=flagged,
            whole_week=week,
        ),
        daily=daily.reset_index(drop=True),
        flags=flags,
        quarantine=read_parquet(quarantine_path) if quarantine_path.exists() else None,
        delivery_days=_delivery_days(_week_file(out, "daily_campaign_metrics", week), week),
    )


def _delivery_days(path: Location, week: str) -> tuple[pd.Timestamp, ...]:
    """The days from ``week`` on with any delivery in a week's ``daily_campaign_metrics``."""
    daily = read_parquet(path, columns=["date", "has_delivery"])
    delivered = daily.loc[
        (daily["date"] >= pd.Timestamp(week)) & daily["has_delivery"].astype(bool), "date"
    ]
    return tuple(pd.Timestamp(day) for day in sorted(delivered.unique()))


def write_report_page(out_dir: str | Path | Location, week: str, html: str) -> Location:
    """Write the page atomically (a reader never opens half a file, on a disk or a store)."""
    path = report_path(out_dir, week)
    path.write_text(html, encoding="utf-8")
    return path
