"""`detect_series` on new series: what it cannot know in their first weeks, it does not judge."""

from __future__ import annotations

import numpy as np
import pandas as pd

from campaign_pipeline.detection import DetectionSettings, detect_series

WEEKDAY = np.array([1.0, 1.05, 1.1, 1.05, 1.0, 0.6, 0.5])  # Monday to Sunday


def _hourly_clicks(start: str, seed: int, days: int = 21, n: int = 20) -> pd.DataFrame:
    """n hourly Poisson series (mean 40 x an hour-of-day bump x `WEEKDAY`) from `start`."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=24 * days, freq="h")
    bump = 0.3 + 1.4 * np.exp(-((ts.hour.to_numpy() - 14) ** 2) / 20)
    mean = 40 * bump * WEEKDAY[ts.dayofweek.to_numpy()]
    return pd.concat(
        [
            pd.DataFrame(
                {"series": f"{start}_{seed}_{i}", "timestamp": ts, "value": rng.poisson(mean)}
            )
            for i in range(n)
        ],
        ignore_index=True,
    )


def test_a_new_hourly_series_meets_its_first_weekends_unjudged():
    """Judged after two days of history, a new hourly series met its first weekends before
    its weekday factor could know them (the factor needs two of each weekday): a quiet
    weekend morning read as a drop (here 2 of 60 series). Its steps are judged once two
    earlier days of their own weekday are known, and not before."""
    frame = pd.concat(
        [_hourly_clicks("2024-01-01", seed, days=16) for seed in (1, 2, 3)], ignore_index=True
    )
    out = detect_series(frame)
    assert not out["is_anomaly"].any(), out.loc[out["is_anomaly"], "explanation"].tolist()
    days_in = (out["timestamp"].dt.normalize() - pd.Timestamp("2024-01-01")).dt.days
    judged = out["expected"].notna()
    assert not judged[days_in < 14].any()  # no weekday seen twice yet
    assert judged[days_in >= 14].all()  # every step with two of its weekday behind it


def test_an_hourly_series_with_its_weekdays_known_still_finds_a_drop():
    """Not judging a new series' first fortnight is a wait, not blindness: a half-day outage
    in its third week is found."""
    frame = _hourly_clicks("2024-01-01", 4, days=28, n=1)
    outage = frame["timestamp"].between("2024-01-17 09:00", "2024-01-17 18:00")
    frame.loc[outage, "value"] = (frame.loc[outage, "value"] * 0.1).round()
    out = detect_series(frame)
    assert out.loc[outage.to_numpy(), "is_anomaly"].any()
    assert not out.loc[~outage.to_numpy(), "is_anomaly"].any()


def _daily_costs(seed: int, n: int = 5, days: int = 70) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2024-01-01", periods=days, freq="D")  # from a Monday
    value = 2.0 * WEEKDAY[ts.dayofweek.to_numpy()] * np.exp(rng.normal(0, 0.1, (n, days)))
    return pd.concat(
        [
            pd.DataFrame({"series": f"cpc_{i}", "timestamp": ts, "value": v})
            for i, v in enumerate(value)
        ],
        ignore_index=True,
    )


def test_an_outlier_in_the_unjudged_first_days_does_not_distort_the_weekday_profile():
    """A first Saturday at 10x, inside the 14 days before judging starts, made the third
    Saturday's expectation the mean of it and a normal one, and its spread shrank the Sunday
    dip away: normal weekend days read as drops. The phase is torn (two values that disagree)
    and left out until a third Saturday outvotes it; a later spike is still found."""
    frame = _daily_costs(1)
    first_saturday = frame["timestamp"] == pd.Timestamp("2024-01-06")
    frame.loc[first_saturday, "value"] *= 10
    spike = frame["timestamp"] == pd.Timestamp("2024-02-14")
    frame.loc[spike & (frame["series"] == "cpc_2"), "value"] *= 4
    out = detect_series(frame)
    flagged = out.loc[out["is_anomaly"], ["series", "timestamp"]]
    assert flagged.values.tolist() == [["cpc_2", pd.Timestamp("2024-02-14")]], flagged
    # the third Saturday is unknown (torn), the fourth judged against the median of three
    saturday3 = out["timestamp"] == pd.Timestamp("2024-01-20")
    saturday4 = out["timestamp"] == pd.Timestamp("2024-01-27")
    assert out.loc[saturday3, "expected"].isna().all()
    assert (out.loc[saturday4, "expected"] < 1.6).all()  # a Saturday's 1.2, not a weekday's 2
    # off: the distortion comes back
    off = detect_series(frame, DetectionSettings(profile_torn_z=0.0))
    assert off.loc[off["timestamp"].dt.dayofweek >= 5, "is_anomaly"].sum() >= 2
