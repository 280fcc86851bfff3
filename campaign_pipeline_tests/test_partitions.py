"""Week keys: how a list of weeks is named, and which weeks of a stretch were never stored."""

import pandas as pd

from campaign_pipeline.partitions import (
    describe_stretches,
    describe_weeks,
    history_missing_weeks,
    missing_weeks,
    week_keys,
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


def test_week_keys_are_every_monday_of_the_stretch():
    assert week_keys("2024-12-23", "2025-01-13") == [
        "2024-12-23",
        "2024-12-30",
        "2025-01-06",
        "2025-01-13",
    ]
    assert week_keys("2025-01-06", "2025-01-06") == ["2025-01-06"]
    assert week_keys("2025-01-13", "2025-01-06") == []


def test_history_of_stored_weeks_is_judged_without_asking_which_weeks_hold_data():
    """A Monday run whose history weeks are all stored reads no date column: the scan that
    says which weeks hold data grows with the stored history, not with the week."""
    asked = []

    def data_weeks_between(first, last):
        asked.append((first, last))
        return ["2025-01-06", "2025-01-13", "2025-01-20", "2025-01-27", "2025-02-03"]

    stored = ["2024-12-30", "2025-01-06", "2025-01-13", "2025-01-20", "2025-01-27"]
    assert history_missing_weeks(stored, "2025-01-06", "2025-01-27", data_weeks_between) == []
    assert asked == []
    # unstored weeks: the data weeks are asked for the span of those weeks only, and the
    # answer is missing_weeks' over the whole stretch
    stored = ["2025-01-06", "2025-01-20"]
    found = history_missing_weeks(stored, "2024-12-30", "2025-02-03", data_weeks_between)
    assert found == ["2025-01-13", "2025-01-27", "2025-02-03"]
    assert found == missing_weeks(stored, "2024-12-30", "2025-02-03", data_weeks_between("", ""))
    assert asked[0] == ("2024-12-30", "2025-02-03")
    asked.clear()
    assert history_missing_weeks(
        ["2025-01-06"], "2025-01-06", "2025-01-20", data_weeks_between
    ) == [
        "2025-01-13",
        "2025-01-20",
    ]
    assert asked == [("2025-01-13", "2025-01-20")]


def test_data_weeks_of_a_stretch_are_those_of_its_days_only(tmp_path):
    from campaign_pipeline.assets.common import data_weeks
    from campaign_pipeline.resources.storage import PipelineStorage

    storage = PipelineStorage(data_dir=str(tmp_path), out_dir=str(tmp_path / "out"))
    day = pd.Timestamp
    storage.write_staging(
        "validated_insights", pd.DataFrame({"date": [day("2025-01-05"), day("2025-01-14")]})
    )
    storage.write_staging(
        "lead_events",
        pd.DataFrame(
            {
                "added_date": [day("2025-01-20"), day("2025-03-03")],
                "converted_date": [pd.NaT, day("2025-01-26")],  # a Sunday: its Monday's week
            }
        ),
    )
    every = {"2024-12-30", "2025-01-13", "2025-01-20", "2025-03-03"}
    assert data_weeks(storage) == every
    assert data_weeks(storage, "2025-01-13", "2025-01-20") == {"2025-01-13", "2025-01-20"}
    assert data_weeks(storage, "2025-01-06", "2025-01-06") == set()
    assert data_weeks(storage, "2024-12-30", "2025-03-03") == every
