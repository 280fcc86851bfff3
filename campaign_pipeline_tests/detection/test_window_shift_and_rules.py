"""Window-shift detector (slow drifts), the adaptive tracking-break rule, benchmark overrides."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from campaign_pipeline.detection import DetectionSettings, detect_campaign_anomalies
from campaign_pipeline.detection.ensemble import _run_sums
from campaign_pipeline.detection.settings import settings_from_overrides
from campaign_pipeline_tests.detection.synth import add_rates, daily_frame

RAMP_START, RAMP_DAYS = 42, 10


def _ctr_drift(df: pd.DataFrame, cid: str, floor: float = 0.4) -> pd.DataFrame:
    """Clicks (and what follows from them) fall linearly to ``floor`` x, then stay there."""
    df = df.copy()
    rows = df.index[df["campaign_id"] == cid]
    step = np.arange(len(rows)) - RAMP_START + 1
    factor = np.where(step <= 0, 1.0, 1 - (1 - floor) * np.minimum(step, RAMP_DAYS) / RAMP_DAYS)
    for col in ("clicks", "conversions", "spend"):
        df.loc[rows, col] = np.round(df.loc[rows, col].to_numpy() * factor)
    return add_rates(df)


@pytest.fixture(scope="module")
def drifting():
    base = daily_frame(n_campaigns=4, n_days=70, seed=11)
    return base, _ctr_drift(base, "c1")


def _day_flags(flags, cid):
    return flags[(flags["grain"] == "day") & (flags["campaign_id"] == cid)]


def test_run_sums_restart_at_every_break():
    values = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    run = np.array([[True, True, False, True, True]])
    assert _run_sums(values, run).tolist() == [[1.0, 3.0, 0.0, 4.0, 9.0]]


def test_slow_ctr_drift_is_caught_by_the_window_shift_and_reported_once(drifting):
    base, df = drifting
    days = sorted(df["date"].unique())
    start, end = days[28], days[-1]
    flags = detect_campaign_anomalies(df, judge_start=start, judge_end=end)
    c1 = _day_flags(flags, "c1")
    shift = c1[c1["methods"].str.contains("window_shift")]
    ramp = (days[RAMP_START], days[RAMP_START + RAMP_DAYS - 1])
    assert len(shift), "a 60% CTR decline over ten days must be reported"
    first = pd.Timestamp(shift["period_start"].min())
    assert ramp[0] <= first <= ramp[1] + pd.Timedelta(days=3)
    # onset only: one report per metric for one change, not one a day while it lasts
    assert shift.groupby("metric").size().max() <= 2
    # a flag only the window shift raised explains itself with the window's numbers
    shift_only = shift[shift["methods"] == "window_shift"]
    assert len(shift_only)
    assert shift_only["explanation"].str.contains("the last 5 days average").all()
    # the same data without the drift raises no window-shift flag anywhere
    calm = detect_campaign_anomalies(base, judge_start=start, judge_end=end)
    assert not calm["methods"].str.contains("window_shift").any()


def test_window_shift_switch_and_onset_setting(drifting):
    _, df = drifting
    days = sorted(df["date"].unique())
    kw = dict(judge_start=days[28], judge_end=days[-1])
    off = detect_campaign_anomalies(df, settings=DetectionSettings(use_window_shift=False), **kw)
    assert not off["methods"].str.contains("window_shift").any()
    every_day = detect_campaign_anomalies(df, settings=DetectionSettings(shift_onset_only=False), **kw)
    once = detect_campaign_anomalies(df, **kw)
    n_every = every_day["methods"].str.contains("window_shift").sum()
    n_once = once["methods"].str.contains("window_shift").sum()
    assert n_every > n_once > 0


def test_window_shift_flags_do_not_depend_on_later_days(drifting):
    _, df = drifting
    days = sorted(df["date"].unique())
    cut = days[RAMP_START + RAMP_DAYS + 2]
    kw = dict(judge_start=days[28], judge_end=cut)
    full = detect_campaign_anomalies(df, **kw)
    truncated = detect_campaign_anomalies(df[df["date"] <= cut], **kw)
    cols = ["campaign_id", "period_start", "metric", "methods", "value", "expected"]
    pd.testing.assert_frame_equal(full[cols].reset_index(drop=True), truncated[cols].reset_index(drop=True))


def _zero_conversions(df, cid, first_day, n_days):
    df = df.copy()
    dates = sorted(df["date"].unique())[first_day:first_day + n_days]
    df.loc[(df["campaign_id"] == cid) & df["date"].isin(dates), "conversions"] = 0.0
    return add_rates(df), dates


def test_tracking_break_waits_until_the_zero_run_is_improbable():
    # about 3 conversions a day: two zero days expect ~6 (not news), four expect ~12
    base = daily_frame(n_campaigns=4, n_days=70, seed=5, conv_rate=0.03)
    days = sorted(base["date"].unique())
    kw = dict(judge_start=days[35], judge_end=days[-1])
    short, _ = _zero_conversions(base, "c2", 50, 2)
    f = _day_flags(detect_campaign_anomalies(short, **kw), "c2")
    assert not (f["anomaly_type"] == "tracking_error").any()
    long, zero_days = _zero_conversions(base, "c2", 50, 5)
    f = _day_flags(detect_campaign_anomalies(long, **kw), "c2")
    hit = f[(f["anomaly_type"] == "tracking_error") & (f["metric"] == "conversions")]
    assert len(hit)
    first = pd.Timestamp(hit["period_start"].min())
    assert zero_days[2] <= first <= zero_days[-1]
    # a lower bar calls it on the second zero day
    low = detect_campaign_anomalies(long, settings=DetectionSettings(tracking_break_min_expected=4.0), **kw)
    low_hit = _day_flags(low, "c2")
    assert pd.Timestamp(low_hit.loc[low_hit["anomaly_type"] == "tracking_error", "period_start"].min()) == zero_days[1]


def test_settings_from_overrides_types_and_errors():
    s = settings_from_overrides(["fdr=0.05", "use_cusum=false", "min_history_days=21"], sensitivity="high")
    assert (s.fdr, s.use_cusum, s.min_history_days, s.sensitivity) == (0.05, False, 21, "high")
    assert settings_from_overrides([]) == DetectionSettings()
    with pytest.raises(ValueError, match="fdrr"):
        settings_from_overrides(["fdrr=0.05"])
    with pytest.raises(ValueError, match="NAME=VALUE"):
        settings_from_overrides(["fdr"])
