"""The campaign benchmark's scorers (scripts/benchmark_detection.py), day and week grain,
on hand-made flags whose right answers are counted here by hand."""

import pandas as pd
import pytest

from campaign_pipeline_tests.detection.script_modules import load_script

bench = load_script("benchmark_detection")

# Four weeks, Monday 2024-01-01 to Sunday 2024-01-28, for campaigns A and B; B misses one
# day of its last week, so that week is incomplete and never a unit of the week grain.
DAYS = pd.date_range("2024-01-01", "2024-01-28", freq="D")
DAILY = pd.concat(
    [
        pd.DataFrame({"campaign_id": "A", "date": DAYS}),
        pd.DataFrame({"campaign_id": "B", "date": DAYS[DAYS != pd.Timestamp("2024-01-24")]}),
    ]
)
# A: a spend spike on Wednesday of week 2; B: a level shift from Thursday of week 3 (its
# abnormal stretch runs to the end of the data)
LABELS = pd.DataFrame(
    {
        "campaign_id": ["A", "B"],
        "kind": ["spend_spike", "level_shift"],
        "start_date": ["2024-01-10", "2024-01-18"],
        "end_date": ["2024-01-10", "2024-01-19"],
    }
)


def _flags(rows):
    return pd.DataFrame(rows, columns=["campaign_id", "grain", "period_start"]).assign(
        period_start=lambda x: pd.to_datetime(x["period_start"]).dt.date
    )


def test_week_grain_counts_overlaps_complete_weeks_and_events():
    flags = _flags(
        [
            ("A", "week", "2024-01-08"),  # overlaps A's spike: true, finds it
            ("A", "week", "2024-01-22"),  # A is normal that week: false
            (
                "B",
                "week",
                "2024-01-22",
            ),  # after the shift's window but still shifted: true, finds it (level shift)
            ("A", "day", "2024-01-01"),  # day grain: ignored here
        ]
    )
    sc = bench.score_weeks(flags, DAILY, LABELS)
    assert sc["flagged_weeks"] == 3
    assert sc["precision"] == pytest.approx(2 / 3)
    assert sc["recall"] == 1.0
    # complete weeks: A 4, B 3 (its last is short); abnormal: A's week 2, B's week 3 -> 5 normal
    assert sc["normal_weeks"] == 5
    assert sc["fpr"] == pytest.approx(1 / 5)
    assert sc["per_kind"] == {"level_shift": 1.0, "spend_spike": 1.0}


def test_week_grain_misses_an_event_flagged_only_after_its_window():
    # a spike's week is week 2; a flag in week 3 is after its window: false, and the spike missed
    flags = _flags([("A", "week", "2024-01-15")])
    sc = bench.score_weeks(flags, DAILY, LABELS)
    assert sc["precision"] == 0.0 and sc["recall"] == 0.0 and sc["per_kind"]["spend_spike"] == 0.0
    assert sc["fpr"] == pytest.approx(1 / 5)


def test_day_grain_ignores_week_flags_and_counts_days():
    flags = _flags(
        [
            ("A", "day", "2024-01-10"),  # the spike day
            ("A", "day", "2024-01-11"),  # the day after: false
            (
                "B",
                "day",
                "2024-01-25",
            ),  # after the level shift's labelled days: still shifted, true
            ("A", "week", "2024-01-08"),
        ]
    )
    sc = bench.score(flags, DAILY, LABELS)
    assert sc["flagged_days"] == 3
    assert sc["precision"] == pytest.approx(2 / 3)
    # the level shift is found by a flag anywhere from its start to the end of the data
    assert sc["recall"] == 1.0
    # normal days: A 28 - 1 = 27, B 27 - 10 (Jan 18-28 but the missing 24th) = 17
    assert sc["fpr"] == pytest.approx(1 / 44)
