"""What stretch of days scripts/profile_detection.py judges a week on.

Its figures stand in README and docs/scale.md for the cost of a Monday's judgement and of one
causal pass over a year; a stretch longer or shorter than asked would misstate both."""

import pytest

from campaign_pipeline.assets.anomalies import detector_history_weeks
from campaign_pipeline.detection import DetectionSettings
from campaign_pipeline_tests.builders import make_campaigns
from campaign_pipeline_tests.detection.script_modules import load_script
from campaign_pipeline_tests.detection.synth import daily_frame

profile_detection = load_script("profile_detection")


@pytest.fixture
def run_dir(tmp_path):
    """12 weeks of 3 campaigns' daily metrics, stored a week a file as a run publishes them."""
    daily = daily_frame(n_campaigns=3, n_days=84, start="2024-01-01").assign(has_delivery=True)
    weekly = tmp_path / "out" / "daily_campaign_metrics"
    weekly.mkdir(parents=True)
    for week, rows in daily.groupby(daily["date"].dt.to_period("W-SUN").dt.start_time):
        rows.to_parquet(weekly / f"{week.date()}.parquet")
    staging = tmp_path / "staging"
    staging.mkdir()
    make_campaigns("c0", "c1", "c2").to_parquet(staging / "validated_campaigns.parquet")
    return tmp_path


DETECTOR_WEEKS = detector_history_weeks(DetectionSettings())


# the week and its history, in days; a history longer than the stored weeks reads all of them
@pytest.mark.parametrize(
    ("history_weeks", "days"), [(None, 7 * (DETECTOR_WEEKS + 1)), (2, 21), (20, 84)]
)
def test_a_week_is_judged_on_the_history_asked_for(run_dir, capsys, history_weeks, days):
    argv = [str(run_dir), "--campaigns", "0", "--week", "2024-03-18"]
    if history_weeks:
        argv += ["--history-weeks", str(history_weeks)]
    assert profile_detection.main(argv) == 0
    summary = capsys.readouterr().out.splitlines()[0]
    assert summary.startswith(f"3 campaigns, 1 week, {3 * days:,} campaign-days")
    assert f"{history_weeks or DETECTOR_WEEKS} weeks of history" in summary


def test_a_history_without_a_week_is_refused(run_dir, capsys):
    with pytest.raises(SystemExit) as exit_:
        profile_detection.main([str(run_dir), "--history-weeks", "51"])
    assert exit_.value.code == 2
    assert "--history-weeks needs --week" in capsys.readouterr().err


def test_every_function_the_profile_names_is_one_the_detector_calls(run_dir, capsys):
    # a detector function renamed or no longer called would drop out of the printed shares
    # without a word, and the profile would say nothing of where that time went
    assert profile_detection.main([str(run_dir), "--campaigns", "0"]) == 0
    printed = {line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]}
    assert printed == set(profile_detection.SHOWN)
