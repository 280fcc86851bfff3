"""Which weeks the scale benchmark (scripts/benchmark_pipeline.py) times a Monday run on.

A Monday judges a whole week; timing one that holds a day of data would flatter the target."""

import pandas as pd

from campaign_pipeline_tests.detection.script_modules import load_script

monday_weeks = load_script("benchmark_pipeline").monday_weeks


def _days(rows_per_day: dict[str, int]) -> pd.Series:
    """A daily table's date column: each day repeated once per campaign-day."""
    return pd.Series([pd.Timestamp(day) for day, rows in rows_per_day.items() for _ in range(rows)])


def _week(start: str, rows: int) -> dict[str, int]:
    return {str(day.date()): rows for day in pd.date_range(start, periods=7)}


def test_the_last_complete_week_and_the_busiest_are_timed_never_a_partial_last_week():
    days = _days(
        _week("2025-01-06", 3)
        | _week("2025-01-13", 9)  # the busiest
        | _week("2025-01-20", 2)  # the last complete week
        | {"2025-01-27": 50}  # one day of its week: partial, although its rows are the most
    )
    assert monday_weeks(days) == [
        {"week": "2025-01-20", "why": "last complete week", "campaign_days": 14},
        {"week": "2025-01-13", "why": "most campaign-days", "campaign_days": 63},
    ]


def test_a_week_begun_before_the_data_is_partial_too():
    days = _days({"2025-01-09": 100} | _week("2025-01-13", 1))  # from a Thursday
    assert monday_weeks(days) == [
        {
            "week": "2025-01-13",
            "why": "last complete week, most campaign-days",
            "campaign_days": 7,
        }
    ]


def test_no_complete_week_times_nothing():
    assert monday_weeks(_days({"2025-01-07": 5, "2025-01-12": 5})) == []
