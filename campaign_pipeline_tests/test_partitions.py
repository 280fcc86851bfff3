"""Week keys: how a list of weeks is named, and which weeks of a stretch were never stored."""

import pandas as pd

from campaign_pipeline.partitions import (
    describe_stretches,
    describe_weeks,
    missing_weeks,
    week_ranges,
)


def test_describe_weeks_is_a_count_and_a_range_never_a_list():
    weeks = [d.date().isoformat() for d in pd.date_range("2026-01-05", periods=5123, freq="7D")]
    text = describe_weeks(weeks)
    assert text == f"5123 weeks (2026-01-05 .. {weeks[-1]})"
    assert describe_weeks(["2024-01-08"]) == "1 week (2024-01-08)"
    assert describe_weeks([]) == "0 weeks"


def test_ranges_of_consecutive_weeks_are_named_each_with_its_count_and_range():
    weeks = ["2017-03-06", "2024-12-30", "2025-01-06", "2025-01-13", "2025-02-03"]
    ranges = week_ranges(weeks)
    assert ranges == [("2017-03-06",), ("2024-12-30", "2025-01-06", "2025-01-13"), ("2025-02-03",)]
    assert week_ranges([]) == []
    assert describe_stretches(ranges) == (
        "1 week (2017-03-06), 3 weeks (2024-12-30 .. 2025-01-13), 1 week (2025-02-03)"
    )
    # many ranges (a week with data every other week): the first few and how many more
    alternate = week_ranges(["2017-03-06", "2025-09-01", "2025-09-15"])
    assert describe_stretches(alternate, most=2) == (
        "1 week (2017-03-06), 1 week (2025-09-01) and 1 more ranges"
    )


def test_missing_weeks_are_the_unstored_weeks_of_the_stretch_that_hold_data():
    stored = ["2025-01-06", "2025-01-20", "2025-02-03"]
    data = ["2025-01-06", "2025-01-13", "2025-01-20", "2025-01-27", "2025-02-03", "2025-05-26"]
    assert missing_weeks(stored, "2024-12-02", "2025-02-03", data) == ["2025-01-13", "2025-01-27"]
    assert missing_weeks(stored, "2025-01-20", "2025-01-20", data) == []
    # a stretch that ends before the data begins has nothing missing, nor one after it ends
    assert missing_weeks([], "2024-01-01", "2024-02-05", data) == []
    assert missing_weeks([], "2025-06-02", "2025-07-07", data) == []
    # nor do the weeks of a gap in the data: only the weeks holding data are named
    assert missing_weeks([], "2025-01-27", "2025-07-07", data) == [
        "2025-01-27",
        "2025-02-03",
        "2025-05-26",
    ]
