"""Window-shift detector (slow drifts), the adaptive tracking-break rule, benchmark overrides."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from campaign_pipeline.detection import DetectionSettings, detect_campaign_anomalies
from campaign_pipeline.detection.detectors import _combine_windows
from campaign_pipeline.detection.ensemble import _run_length, _run_sums, detect_by_week
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
    assert shift_only["explanation"].str.contains(r"the last [35] days average").all()
    # the same data without the drift raises no window-shift flag anywhere
    calm = detect_campaign_anomalies(base, judge_start=start, judge_end=end)
    assert not calm["methods"].str.contains("window_shift").any()


def test_two_windows_keep_the_best_one_and_pay_for_trying_both():
    short = dict(
        judged=np.array([[True, True, False]]),
        shift_p=np.array([[0.001, 0.2, np.nan]]),
        shift_z=np.array([[4.0, 1.0, np.nan]]),
        shift_days=np.full((1, 3), 3.0),
    )
    long = dict(
        judged=np.array([[True, True, True]]),
        shift_p=np.array([[0.01, 0.03, 0.3]]),
        shift_z=np.array([[3.0, 2.5, 1.2]]),
        shift_days=np.full((1, 3), 5.0),
    )
    both = _combine_windows([short, long])
    # Bonferroni over the two windows: twice the smaller p, never above 1
    np.testing.assert_allclose(both["shift_p"], [[0.002, 0.06, 0.6]])
    # the numbers reported are those of the window that gave the smaller p (judged ones only)
    assert both["shift_days"].tolist() == [[3.0, 5.0, 5.0]]
    assert both["shift_z"].tolist() == [[4.0, 2.5, 1.2]]
    assert both["judged"].tolist() == [[True, True, True]]
    # a single window is passed through untouched
    assert _combine_windows([long]) is long
    assert DetectionSettings().shift_windows == (3, 5)
    assert DetectionSettings(shift_short_days=0).shift_windows == (5,)
    with pytest.raises(ValueError, match="shift_short_days"):
        DetectionSettings(shift_short_days=-1)


def test_short_window_finds_a_three_day_inflation_of_small_counts():
    # ~10 conversions a day that swing (8, 7, 11 on the days hit): tripled for three days. No
    # single day clears the daily bar, and a 5-day mean dilutes the jump with two ordinary
    # days (z 5.0 against 5.8 for the 3-day window since the day noise of a rate comes from
    # the moments of its counts; below the bar, z 4.6 and no 5-day flag, before)
    base = daily_frame(n_campaigns=4, n_days=70, seed=2, conv_rate=0.1)
    days = sorted(base["date"].unique())
    df = base.copy()
    hit = (df["campaign_id"] == "c2") & df["date"].isin(days[50:53])
    df.loc[hit, "conversions"] = np.round(df.loc[hit, "conversions"] * 3)
    df = add_rates(df)
    kw = dict(judge_start=days[35], judge_end=days[-1])
    both = _day_flags(detect_campaign_anomalies(df, **kw), "c2")
    found = both[pd.to_datetime(both["period_start"]).between(days[50], days[54])]
    assert found["methods"].str.contains("window_shift").any()
    assert found["explanation"].str.contains("the last 3 days average").any()
    # a shift-only flag is about the run of days: no one-day band, the day's value named apart
    shift_only = found[found["methods"] == "window_shift"]
    assert len(shift_only) and shift_only[["expected_lower", "expected_upper"]].isna().all().all()
    assert shift_only["explanation"].str.contains("that day").all()
    long_only = _day_flags(
        detect_campaign_anomalies(df, settings=DetectionSettings(shift_short_days=0), **kw), "c2"
    )
    assert not long_only["explanation"].str.contains("the last 3 days").any()
    assert (
        long_only.empty
        or long_only["score"].max()
        < found.loc[found["methods"].str.contains("window_shift"), "score"].max() - 0.5
    )
    # and the untouched data raises nothing at all
    assert detect_campaign_anomalies(base, **kw).empty


def test_window_shift_switch_and_onset_setting(drifting):
    _, df = drifting
    days = sorted(df["date"].unique())
    kw = dict(judge_start=days[28], judge_end=days[-1])
    off = detect_campaign_anomalies(df, settings=DetectionSettings(use_window_shift=False), **kw)
    assert not off["methods"].str.contains("window_shift").any()
    every_day = detect_campaign_anomalies(
        df, settings=DetectionSettings(shift_onset_only=False), **kw
    )
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
    pd.testing.assert_frame_equal(
        full[cols].reset_index(drop=True), truncated[cols].reset_index(drop=True)
    )


def _zero_conversions(df, cid, first_day, n_days):
    df = df.copy()
    dates = sorted(df["date"].unique())[first_day : first_day + n_days]
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
    low = detect_campaign_anomalies(
        long, settings=DetectionSettings(tracking_break_min_expected=4.0), **kw
    )
    low_hit = _day_flags(low, "c2")
    assert (
        pd.Timestamp(low_hit.loc[low_hit["anomaly_type"] == "tracking_error", "period_start"].min())
        == zero_days[1]
    )


def test_settings_from_overrides_types_and_errors():
    s = settings_from_overrides(
        ["fdr=0.05", "use_cusum=false", "min_history_days=21"], sensitivity="high"
    )
    assert (s.fdr, s.use_cusum, s.min_history_days, s.sensitivity) == (0.05, False, 21, "high")
    assert settings_from_overrides([]) == DetectionSettings()
    with pytest.raises(ValueError, match="fdrr"):
        settings_from_overrides(["fdrr=0.05"])
    with pytest.raises(ValueError, match="NAME=VALUE"):
        settings_from_overrides(["fdr"])
    # a value of the wrong type names the setting instead of silently meaning something
    s = settings_from_overrides(["use_cusum=OFF", "severity_effects=0.4,1,2"])
    assert (s.use_cusum, s.severity_effects) == (False, (0.4, 1.0, 2.0))
    with pytest.raises(ValueError, match="use_cusum: expected true or false"):
        settings_from_overrides(["use_cusum=maybe"])  # a typo must not turn the switch off
    with pytest.raises(ValueError, match="fdr: expected float"):
        settings_from_overrides(["fdr=five"])
    with pytest.raises(
        ValueError, match="severity_effects: expected float values separated by commas"
    ):
        settings_from_overrides(["severity_effects=0.5,x,3"])
    with pytest.raises(
        ValueError, match="DetectionSettings field"
    ):  # a derived property, not a setting
        settings_from_overrides(["shift_windows=3,5"])  # a clear error, not a TypeError


def test_autocorrelation_switch_widens_the_window_test_of_a_wandering_series():
    from campaign_pipeline.detection.detectors import score_panel

    rng = np.random.default_rng(8)
    ar = np.zeros((20, 120))
    for j in range(1, 120):  # log-level AR(1), rho 0.7: runs of high steps are ordinary here
        ar[:, j] = 0.7 * ar[:, j - 1] + rng.normal(0, 0.1, 20)
    values = np.exp(ar)
    kw = dict(kind="log", period=None, window=96, min_history=48)
    plain = score_panel(
        values, settings=DetectionSettings(use_seasonality=False, use_autocorrelation=False), **kw
    )
    ac = score_panel(
        values, settings=DetectionSettings(use_seasonality=False), **kw
    )  # on by default
    both = ~np.isnan(plain["shift_z"]) & ~np.isnan(ac["shift_z"])
    assert both.sum() > 50
    shrink = np.abs(ac["shift_z"][both]) / np.abs(plain["shift_z"][both])
    assert (shrink <= 1 + 1e-9).all() and np.median(shrink) < 0.8
    # the daily point test does not depend on the switch
    np.testing.assert_array_equal(plain["z"], ac["z"])


def _persistence_of(
    u: np.ndarray, window: int, s: DetectionSettings
) -> tuple[np.ndarray, np.ndarray]:
    """(raw one-baseline lag-1 estimate, what the shift test allows for) at every step."""
    from campaign_pipeline.detection.baselines import (
        lag1_autocorrelation,
        nan_count,
        robust_level_scale,
        trailing_windows,
    )
    from campaign_pipeline.detection.detectors import persistence

    u_w = trailing_windows(u, window)
    level, scale = robust_level_scale(u_w)
    return lag1_autocorrelation(u_w, level, scale), persistence(
        u_w, level, scale, nan_count(u_w), window, s
    )


def test_persistence_is_what_the_noise_has_less_its_sampling_error():
    rng = np.random.default_rng(3)
    n, window = 600, 96
    white = rng.normal(0, 1, (30, n))
    ar = np.zeros((30, n))
    for t in range(1, n):
        ar[:, t] = 0.6 * ar[:, t - 1] + rng.normal(0, 0.8, 30)
    s = DetectionSettings()
    _, rho_white = _persistence_of(white, window, s)
    _, rho_ar = _persistence_of(ar, window, s)
    late = slice(3 * window, None)  # two baselines of estimates behind each step
    # independent steps: nothing to discount (the margin of 1/sqrt(95) = 0.10 absorbs the noise)
    assert np.nanquantile(rho_white[:, late], 0.9) < 0.05
    # AR(1) with 0.6: recognised, lowered by about one standard error and no more
    assert 0.35 < np.nanmedian(rho_ar[:, late]) < 0.6


def test_one_event_in_the_baseline_is_not_taken_for_persistence():
    rng = np.random.default_rng(4)
    n, window = 700, 96
    u = rng.normal(0, 1, (40, n))
    u[:, 300:312] += 3.0  # a 12-step temporary shift: inside the baseline of steps 312-395
    raw, rho = _persistence_of(u, window, DetectionSettings())
    after = slice(330, 396)
    assert np.nanmedian(raw[:, after]) > 0.2  # one baseline alone reads the block as persistence
    assert np.nanquantile(rho[:, after], 0.9) < 0.1
    # the raw estimate is what the test would use without the margin and the median
    raw_settings = DetectionSettings(autocorrelation_margin=0.0, autocorrelation_baselines=0)
    _, unsmoothed = _persistence_of(u, window, raw_settings)
    np.testing.assert_allclose(unsmoothed, np.minimum(raw, 0.9))


def test_persistence_at_some_steps_is_its_value_at_those_steps():
    from campaign_pipeline.detection.baselines import (
        nan_count,
        robust_level_scale,
        trailing_windows,
    )
    from campaign_pipeline.detection.detectors import persistence

    rng = np.random.default_rng(5)
    u = rng.normal(0, 1, (20, 63))
    u[rng.random(u.shape) < 0.2] = np.nan
    u_w = trailing_windows(u, 28)
    level, scale = robust_level_scale(u_w)
    s = DetectionSettings()
    every = persistence(u_w, level, scale, nan_count(u_w), 28, s)
    some = persistence(u_w, level, scale, nan_count(u_w), 28, s, slice(52, 63))
    np.testing.assert_array_equal(some[:, 52:], every[:, 52:])
    assert np.isfinite(some[:, 52:]).any() and np.isnan(some[:, :52]).all()


def test_autocorrelation_settings_are_checked():
    for bad in (
        dict(max_autocorrelation=1.0),
        dict(autocorrelation_margin=-1.0),
        dict(autocorrelation_baselines=-1),
    ):
        with pytest.raises(ValueError, match="autocorrelation"):
            DetectionSettings(**bad)
    with pytest.raises(ValueError, match="weekday_seasonal_weeks"):
        DetectionSettings(weekday_seasonal_weeks=0)
    for bad in (
        dict(phase_scale_cycles=2),
        dict(phase_scale_harmonics=0),
        dict(phase_scale_alpha=1.0),
    ):
        with pytest.raises(ValueError, match="phase_scale"):
            DetectionSettings(**bad)
    for bad in (dict(noise_pool_min_series=1), dict(noise_prior_min_df=0.0)):
        with pytest.raises(ValueError, match="noise_p"):
            DetectionSettings(**bad)


def test_a_permanent_shift_is_reported_once_until_the_reference_has_adopted_it():
    from campaign_pipeline.detection import detect_series

    rng = np.random.default_rng(0)
    ts = pd.date_range("2024-01-01", periods=900, freq="h")
    parts = []
    for i in range(8):
        v = np.exp(rng.normal(0, 0.25, 900) + np.cumsum(rng.normal(0, 0.01, 900)))
        v[500:] *= 0.4 if i < 4 else 1.0  # s0-s3 drop to 40 % for good at hour 500
        parts.append(pd.DataFrame({"series": f"s{i}", "timestamp": ts, "value": v}))
    frame = pd.concat(parts, ignore_index=True)

    def hours(settings):
        out = detect_series(frame, settings)
        hit = out[out["is_anomaly"]]
        return {
            k: ((g["timestamp"] - ts[0]) / pd.Timedelta(hours=1)).astype(int).tolist()
            for k, g in hit.groupby("series")
        }

    once = hours(DetectionSettings())
    assert sorted(once) == ["s0", "s1", "s2", "s3"]
    assert all(len(h) == 1 and 500 <= h[0] <= 506 for h in once.values())
    # quiet only over the recent window: the same drop is reported again within the baseline
    again = hours(DetectionSettings(shift_quiet_share=0.0))
    assert sum(map(len, again.values())) > 4


def test_tracking_break_needs_a_longer_zero_run_when_conversions_are_overdispersed():
    from campaign_pipeline.detection.ensemble import _rules

    t = 12
    panels = {
        "clicks": np.full((1, t), 100.0),
        "conversions": np.r_[np.full(4, 2.0), np.zeros(8)][None],
        "spend": np.full((1, t), 50.0),
        "impressions": np.full((1, t), 5000.0),
    }
    metrics = ["clicks", "conversions"]

    def first_break(var):
        ev = {
            "judged": np.ones((2, 1, t), bool),
            "z": np.zeros((2, 1, t)),
            "expected": np.full((2, 1, t), 2.0),
            "count_var": np.full((2, 1, t), var),
        }
        masks = [
            m
            for metric, kind, m, *_ in _rules(
                panels, ev, metrics, np.array([np.nan]), DetectionSettings()
            )
            if metric == "conversions" and kind == "tracking_error"
        ]
        hit = np.nonzero(masks[-1][0])[0]
        return int(hit[0]) if len(hit) else None

    # Poisson (variance = mean 2): -log P(0) is 2 a day, e^-10 is reached on the 5th zero day
    assert first_break(2.0) == 4 + 4
    # variance 10 (size 0.5): -log P(0) = 0.5 log 5 = 0.80 a day, 8 zero days are not enough
    assert first_break(10.0) is None


def test_fired_within_matches_a_loop_over_lags():
    from campaign_pipeline.detection.ensemble import _fired_within

    rng = np.random.default_rng(1)
    for lags in (1, 3, 19, 53, 200):
        mask = rng.random((2, 5, 120)) < 0.1
        expected = np.zeros_like(mask)
        for lag in range(1, min(lags, 119) + 1):
            expected[..., lag:] |= mask[..., :-lag]
        np.testing.assert_array_equal(_fired_within(mask, lags), expected)


def test_a_lone_series_drop_is_as_large_as_the_rise_it_mirrors():
    from campaign_pipeline.detection import detect_series

    rng = np.random.default_rng(5)
    ts = pd.date_range("2024-01-01", periods=160, freq="D")
    parts = []
    for i in range(6):  # 5 % day noise; s0-s2 drop to 0.65x for good on day 120 (-35 %, log -0.43)
        v = np.exp(rng.normal(0, 0.05, 160)) * 2.0
        v[120:] *= 0.65 if i < 3 else 1.0
        parts.append(pd.DataFrame({"series": f"s{i}", "timestamp": ts, "value": v}))
    frame = pd.concat(parts, ignore_index=True)

    def flagged(settings):
        out = detect_series(frame, settings)
        return sorted(out.loc[out["is_anomaly"] & (out["timestamp"] >= ts[120]), "series"].unique())

    # -35 % is short of the 45 % a lone series needs, but 1/0.65 = +54 % on the ratio scale
    assert flagged(DetectionSettings()) == ["s0", "s1", "s2"]
    assert flagged(DetectionSettings(lone_series_ratio_effect=False)) == []


def test_ratio_effect_sizes():
    from campaign_pipeline.detection.ensemble import _sizes

    ev = {
        "z": np.array([5.0, -5.0, -5.0, np.nan, -9.0]),
        "rel": np.array([0.5, -0.5, -0.2, np.nan, -1.0]),
    }
    z, pct = _sizes(ev, "z", "rel")
    _, ratio = _sizes(ev, "z", "rel", ratio=True)
    np.testing.assert_allclose(z, [5, 5, 5, 0, 9])
    np.testing.assert_allclose(pct, [0.5, 0.5, 0.2, 0.0, 1.0])
    np.testing.assert_allclose(ratio[:4], [0.5, 1.0, 0.25, 0.0])
    assert ratio[4] > 1e6  # to zero: as large as it gets


def _drop_then(further_at: int | None):
    """One lone daily series at 5 % noise that drops to 0.6x for good on day 100."""
    rng = np.random.default_rng(11)
    ts = pd.date_range("2024-01-01", periods=140, freq="D")
    v = np.exp(rng.normal(0, 0.05, 140)) * 3.0
    v[100:] *= 0.6
    if further_at is not None:
        v[further_at] *= 0.2  # a one-day collapse on top of the new level
    return ts, pd.DataFrame({"series": "a", "timestamp": ts, "value": v})


def test_a_reported_shift_absorbs_the_point_alerts_that_repeat_it():
    from campaign_pipeline.detection import detect_series

    ts, frame = _drop_then(None)

    def flag_days(settings):
        out = detect_series(frame, settings)
        hit = out[out["is_anomaly"]]
        return ((hit["timestamp"] - ts[0]).dt.days).tolist(), hit

    days, hit = flag_days(DetectionSettings())
    shift_day = int((hit.loc[hit["anomaly_type"] == "level_shift", "timestamp"].min() - ts[0]).days)
    assert 100 <= shift_day <= 104
    # after the shift is reported, the median still at the old level raises no "drop" a day
    assert [d for d in days if d > shift_day] == []
    repeated, _ = flag_days(DetectionSettings(shift_absorbs_points=False))
    assert len([d for d in repeated if d > shift_day]) >= 3


def test_a_further_change_after_a_shift_is_still_reported():
    from campaign_pipeline.detection import detect_series

    ts, frame = _drop_then(110)
    out = detect_series(frame)
    assert bool(out.loc[out["timestamp"] == ts[110], "is_anomaly"].iat[0])


def test_repeats_a_shift_uses_earlier_reports_only_and_the_same_direction():
    from campaign_pipeline.detection.ensemble import _repeats_a_shift

    t = 8
    reported = np.zeros((1, 1, t), bool)
    reported[0, 0, 2] = True  # a drop of 40 % reported at step 2
    ev = {
        "shift_z": np.full((1, 1, t), -5.0),
        "shift_rel": np.full((1, 1, t), -0.4),
        "z": np.array([[[-5, -5, -5, -5, -5, 5, -5, -5]]], float),
        "rel_effect": np.array([[[-0.4, -0.4, -0.4, -0.45, -0.5, 0.5, -0.8, -0.4]]]),
    }
    got = _repeats_a_shift(
        {-1.0: reported, 1.0: np.zeros_like(reported)}, ev, quiet=4, min_effect=0.3
    )[0, 0]
    # step 2 itself is not absorbed (its own report), 3-4 repeat it, 5 goes the other way,
    # 6 is 0.2 / 0.6 = 67 % below the new level (a further change), 7 is past the quiet period
    assert got.tolist() == [False, False, False, True, True, False, False, False]


def _campaigns_with_c0_changed(seed: int, change) -> tuple[pd.DataFrame, list]:
    df = daily_frame(n_campaigns=6, n_days=70, seed=seed)
    dates = sorted(df["date"].unique())
    counts = ["spend", "impressions", "clicks", "conversions", "leads", "converted_leads"]
    change(df, df["campaign_id"] == "c0", dates, counts)
    rates = ["ctr", "cpc", "cpm", "cpa", "cpl", "conversion_rate", "lead_conversion_rate"]
    return add_rates(df.drop(columns=rates)), dates


def _c0_flags(df, dates, **settings):
    flags = detect_campaign_anomalies(
        df,
        judge_start=dates[28],
        judge_end=dates[-1],
        settings=DetectionSettings(use_weekly=False, **settings),
    )
    flags = flags[flags["campaign_id"] == "c0"]
    return flags.assign(period_start=pd.to_datetime(flags["period_start"]))[
        ["period_start", "metric", "methods"]
    ]


def test_a_shift_made_of_reported_outage_days_is_not_reported_on_the_recovery_day():
    def outage_then_recovery(df, c0, dates, counts):
        df.loc[c0 & df["date"].isin(dates[50:52]), counts] = 0.0  # two days without delivery
        back = c0 & (df["date"] == dates[52])  # then back, at 60 % for a day
        df.loc[back, counts] = (df.loc[back, counts] * 0.6).round()

    df, dates = _campaigns_with_c0_changed(4, outage_then_recovery)
    off = _c0_flags(df, dates, points_absorb_shifts=False)
    on = _c0_flags(df, dates)
    # the outage itself is reported either way
    assert (on["period_start"].isin(dates[50:52])).sum() >= 5
    # the day after: the 3-day mean is two-thirds outage; without the rule four metrics "drift"
    after = lambda f: f[f["period_start"] >= dates[52]]  # noqa: E731
    assert (after(off)["methods"] == "window_shift").sum() >= 3
    assert after(on).empty


def test_a_lasting_outage_stays_an_outage_and_a_broken_tag_is_named_on_both_metrics():
    def flags_of_c0(change):
        df, dates = _campaigns_with_c0_changed(4, change)
        f = detect_campaign_anomalies(
            df,
            judge_start=dates[28],
            judge_end=dates[-1],
            settings=DetectionSettings(use_weekly=False),
        )
        return f[f["campaign_id"] == "c0"], dates

    def outage(df, c0, dates, counts):
        df.loc[c0 & df["date"].isin(dates[50:54]), counts] = 0.0  # four days without delivery

    f, dates = flags_of_c0(outage)
    assert set(f["metric"]) == {"spend", "impressions", "clicks", "conversions", "leads"}
    assert f["period_start"].nunique() >= 3
    # every day of it, and what follows delivery (conversions, leads) with it: protects against
    # the third day typed a "level_shift" (severity high) and zero conversions a tracking error
    assert (f["anomaly_type"] == "delivery_outage").all() and (f["severity"] == "critical").all()
    conv = f[f["metric"] == "conversions"]
    assert conv["suggested_action"].str.startswith("Restore delivery first").all()

    def broken_tag(df, c0, dates, counts):
        df.loc[c0 & df["date"].isin(dates[50:54]), "conversions"] = 0.0  # clicks go on

    f, _ = flags_of_c0(broken_tag)
    assert {"conversions", "conversion_rate"} <= set(f["metric"])
    assert (f["anomaly_type"] == "tracking_error").all()
    rate = f[f["metric"] == "conversion_rate"]
    assert (
        rate["explanation"].str.startswith("Conversion rate looks like a tracking error on ").all()
    )
    assert rate["suggested_action"].str.contains("pixel").all()
    # a plural metric takes a plural verb
    assert (
        f.loc[f["metric"] == "conversions", "explanation"]
        .str.startswith("Conversions look like a tracking error on ")
        .all()
    )


def test_conversions_above_clicks_are_data_not_a_rule_breach():
    """View-through conversions and several conversions per click make conversions above clicks
    a normal day: no flag may come from that alone."""

    def view_through(df, c0, dates, counts):
        rng = np.random.default_rng(5)
        df["conversions"] = rng.poisson(df["clicks"] * 1.4).astype(float)

    df, dates = _campaigns_with_c0_changed(6, view_through)
    assert (df["conversions"] > df["clicks"]).mean() > 0.9
    flags = detect_campaign_anomalies(
        df, judge_start=dates[28], judge_end=dates[-1], settings=DetectionSettings(use_weekly=False)
    )
    conversion_flags = flags[flags["metric"].isin(["conversions", "conversion_rate", "cpa"])]
    assert not conversion_flags["methods"].str.contains("rule").any()
    assert (conversion_flags["anomaly_type"] != "tracking_error").all()
    # the normal level of conversion rate above 100% is not itself anomalous
    assert len(conversion_flags) <= 2


def test_a_conversion_jump_with_flat_clicks_is_a_tracking_problem_with_the_tag_action():
    def tag_fires_five_times(df, c0, dates, counts):
        df.loc[c0 & df["date"].isin(dates[50:52]), "conversions"] *= 5  # clicks unchanged

    df, dates = _campaigns_with_c0_changed(6, tag_fires_five_times)
    flags = detect_campaign_anomalies(
        df, judge_start=dates[28], judge_end=dates[-1], settings=DetectionSettings(use_weekly=False)
    )
    days = pd.to_datetime(flags["period_start"]).isin(pd.to_datetime(dates[50:52]))
    c0 = flags[(flags["campaign_id"] == "c0") & days]
    jump = c0[c0["metric"].isin(["conversions", "conversion_rate"])]
    assert len(jump) >= 2, c0[["period_start", "metric", "anomaly_type"]]
    assert (jump["anomaly_type"] == "tracking_error").all()
    assert jump["suggested_action"].str.startswith("Check the conversion tag").all()
    assert set(jump["severity"]) <= {"high", "critical"}
    assert not c0["metric"].eq("clicks").any()  # the clicks were normal


def test_a_conversion_jump_that_comes_with_more_clicks_is_not_called_a_tag_problem():
    def more_traffic(df, c0, dates, counts):
        days = c0 & df["date"].isin(dates[50:52])
        df.loc[days, ["impressions", "clicks", "spend"]] *= 3
        df.loc[days, "conversions"] *= 5

    df, dates = _campaigns_with_c0_changed(6, more_traffic)
    flags = detect_campaign_anomalies(
        df, judge_start=dates[28], judge_end=dates[-1], settings=DetectionSettings(use_weekly=False)
    )
    days = pd.to_datetime(flags["period_start"]).isin(pd.to_datetime(dates[50:52]))
    c0 = flags[(flags["campaign_id"] == "c0") & days]
    assert c0["metric"].eq("clicks").any()
    assert not (c0["anomaly_type"] == "tracking_error").any()


def test_a_lasting_level_shift_is_still_reported_as_a_shift_after_its_first_day():
    def level_shift(df, c0, dates, counts):
        late = c0 & (df["date"] >= dates[50])
        df.loc[late, counts] = (df.loc[late, counts] * 2.5).round()

    df, dates = _campaigns_with_c0_changed(0, level_shift)
    # the family at once: in a panel of 6 campaigns a day's share of the week's level (a
    # seventh) leaves the second day's shift test short of it; absorption is what is tested
    on = _c0_flags(df, dates, causal_correction=False)
    off = _c0_flags(df, dates, causal_correction=False, points_absorb_shifts=False)
    pd.testing.assert_frame_equal(on, off)
    # the onset day's point alerts do not absorb the next day's shift: the level stayed
    assert on[on["period_start"] == dates[51]]["methods"].str.contains("window_shift").any()


def test_a_shift_test_that_did_not_apply_still_counts_in_the_family():
    """Every judged point carries a point test and a shift test. Where the recent days
    disagree in direction the shift test has no p-value of its own; it ran and did not
    reject, so it counts in the BH family as p = 1. Dropping it would let a check that reads
    the same data halve the family and run BH at about twice the stated fdr."""
    from campaign_pipeline.detection.ensemble import BOOL_KEYS, EVIDENCE_KEYS, decide

    shape = (1, 1, 100)  # one metric, one series, 100 judged steps in one family
    ev = {k: np.zeros(shape, dtype=bool if k in BOOL_KEYS else float) for k in EVIDENCE_KEYS}
    ev["judged"][:] = True
    ev["p"][:] = 1.0
    ev["p"][0, 0, 10] = 4e-4
    ev["shift_p"][:] = np.nan  # the shift test applied nowhere ...
    ev["shift_p"][0, 0, 50] = 1e-3  # ... but here
    in_scope = np.ones(shape, bool)
    dec = decide(ev, in_scope, np.zeros(100, np.int64), DetectionSettings().effective)
    # 200 tests: 100 points and 100 shifts, not 100 points and the one shift that applied
    assert dec["q"][0, 0, 10] == pytest.approx(4e-4 * 200 / 1)
    assert dec["q_shift"][0, 0, 50] == pytest.approx(1e-3 * 200 / 2)
    # one day of a week family: its own tests corrected among themselves, at a seventh of the
    # level, so its q-values are the day's times 7 (at most 1)
    day = decide(ev, in_scope, np.zeros(100, np.int64), DetectionSettings().effective, steps=7)
    assert day["q"][0, 0, 10] == pytest.approx(4e-4 * 200 * 7)
    assert np.nanmax(day["q"]) == 1.0
    assert dec["q_shift"][0, 0, 20] == 1.0
    # a step that is not judged has neither test
    ev["judged"][0, 0, 60:] = False
    dec = decide(ev, in_scope, np.zeros(100, np.int64), DetectionSettings().effective)
    assert dec["q"][0, 0, 10] == pytest.approx(4e-4 * 120 / 1)


def _rate_null_evidence(mu: float, sigma: float, n: int = 2000, seed: int = 1):
    """Shift evidence of a rate under its own null: clicks ~ Poisson(impressions x p x e^eps)."""
    from campaign_pipeline.detection.detectors import score_panel

    rng = np.random.default_rng(seed)
    imp = rng.poisson(20000, (n, 70)).astype(float)
    clicks = rng.poisson(
        imp * mu / 20000 * np.exp(rng.normal(-(sigma**2) / 2, sigma, imp.shape))
    ).astype(float)
    ev = score_panel(
        clicks / imp,
        kind="rate",
        period=None,
        window=28,
        min_history=14,
        settings=DetectionSettings(),
        numer=clicks,
        denom=imp,
    )
    judged = ev["judged"][:, 35:]
    return np.nan_to_num(ev["shift_p"][:, 35:], nan=1.0)[judged], np.nan_to_num(
        ev["shift_z"][:, 35:]
    )[judged]


def test_rate_window_shift_is_calibrated_both_ways_under_its_null():
    """A window's click sum is right-skewed under multiplicative day noise: a normal tail on
    (sum - expected) / sd called rises at p 0.001 3.5x too often and drops almost never. The
    sum's own Poisson-lognormal tail keeps both directions near their level."""
    p, z = _rate_null_evidence(100.0, 0.25)
    a = 1e-3
    up = ((p < a) & (z > 0)).mean() / (a / 2)
    down = ((p < a) & (z < 0)).mean() / (a / 2)
    assert up < 2.5 and down > 0.5
    assert 0.4 < up / down < 2.5


def test_sum_pvalues_is_the_poisson_tail_without_day_noise():
    from scipy import stats

    from campaign_pipeline.detection.detectors import sum_pvalues

    obs, mean = np.array([3.0, 25.0, 40.0, 10.0]), np.array([10.0, 10.0, 20.0, 10.0])
    p = sum_pvalues(obs, mean, np.zeros(4), np.ones(4), np.full(4, 24.0))
    expected = np.minimum(
        1.0, 2 * np.minimum(stats.poisson.sf(obs - 1, mean), stats.poisson.cdf(obs, mean))
    )
    np.testing.assert_allclose(p, expected, rtol=1e-9)
    # day noise estimated from few days widens the tail more than the same noise from many
    wide = sum_pvalues(obs[2:3], mean[2:3], np.array([40.0]), np.ones(1), np.array([8.0]))
    narrow = sum_pvalues(obs[2:3], mean[2:3], np.array([40.0]), np.ones(1), np.array([24.0]))
    assert expected[2] < narrow[0] < wide[0]


def _rate_day_noise_estimates(mu: float, sigma: float, moments: bool, n: int = 2000, seed: int = 5):
    """The day-noise variance of n 28-day windows of clicks ~ Poisson(impressions x 0.02 x
    e^eps)."""
    from campaign_pipeline.detection.detectors import rate_day_noise, rate_day_noise_log_spread

    rng = np.random.default_rng(seed)
    imp = np.round(rng.lognormal(np.log(mu / 0.02), 0.1, (n, 29)))
    clicks = rng.poisson(imp * 0.02 * np.exp(rng.normal(-(sigma**2) / 2, sigma, imp.shape))).astype(
        float
    )
    numer_w, denom_w = clicks[:, None, :28], imp[:, None, :28]
    p0 = numer_w.sum(-1) / denom_w.sum(-1)
    floor2 = np.log1p(DetectionSettings().relative_scale_floor) ** 2
    pilot = rate_day_noise_log_spread(numer_w, denom_w, p0, floor2)
    return (rate_day_noise(numer_w, denom_w, p0, pilot, floor2) if moments else pilot)[:, 0]


def test_rate_day_noise_by_moments_is_steadier_than_the_log_spread_at_small_counts():
    """At 8 clicks a day the log-rate spread minus its Poisson part overstates a day noise of
    sd 0.1 (variance 0.01) and scatters widely; the moments of the counts do not."""
    truth = 0.01
    old = _rate_day_noise_estimates(8.0, 0.1, moments=False)
    new = _rate_day_noise_estimates(8.0, 0.1, moments=True)
    rmse = lambda e: np.sqrt(np.mean((e - truth) ** 2))  # noqa: E731
    assert rmse(new) < 0.8 * rmse(old)
    assert abs(new.mean() - truth) < 0.6 * abs(old.mean() - truth)  # 0.0072 against 0.0143
    assert (new > 0.05).mean() < 0.6 * (old > 0.05).mean()
    # where Poisson noise is small both agree (400 clicks a day)
    big_old = _rate_day_noise_estimates(400.0, 0.2, moments=False)
    big_new = _rate_day_noise_estimates(400.0, 0.2, moments=True)
    assert big_new.mean() == pytest.approx(0.04, abs=0.003)
    assert big_new.mean() == pytest.approx(big_old.mean(), rel=0.05)


def test_rate_day_noise_is_not_blown_up_by_an_anomalous_day_in_the_baseline():
    from campaign_pipeline.detection.detectors import rate_day_noise

    rng = np.random.default_rng(3)
    denom = np.full((500, 1, 28), 5000.0)
    numer = rng.poisson(denom * 0.02 * np.exp(rng.normal(-0.005, 0.1, denom.shape))).astype(float)
    p0 = numer.sum(-1) / denom.sum(-1)
    pilot = np.full(p0.shape, 0.01)
    clean = rate_day_noise(numer, denom, p0, pilot, 0.0024)
    spiked = numer.copy()
    spiked[..., 10] *= 5  # one day of five times the clicks inside the baseline
    dirty = rate_day_noise(spiked, denom, spiked.sum(-1) / denom.sum(-1), pilot, 0.0024)
    assert np.median(clean) == pytest.approx(0.01, abs=0.002)
    # unclipped, one 5x day among 28 would add about (4 x 100)^2 / 28 / 100^2 = 0.57 to kappa
    assert np.median(dirty) < 0.03


def _moderated_day_noise(mu, sigma, settings=DetectionSettings(), seed: int = 11):
    """Own and moderated day-noise variance of campaigns with `mu` clicks a day and day noise
    of sd `sigma` (per campaign), one 28-day window each, all in one group."""
    from campaign_pipeline.detection.detectors import (
        moderate_day_noise,
        rate_day_noise,
        rate_day_noise_log_spread,
        scale_df,
    )

    rng = np.random.default_rng(seed)
    n = len(mu)
    imp = np.round(rng.lognormal(np.log(np.asarray(mu, float)[:, None] / 0.02), 0.1, (n, 28)))
    sig = np.asarray(sigma, float)[:, None]
    clicks = rng.poisson(
        imp * 0.02 * np.exp(rng.normal(0.0, 1.0, imp.shape) * sig - sig**2 / 2)
    ).astype(float)
    numer_w, denom_w = clicks[:, None, :], imp[:, None, :]
    p0 = numer_w.sum(-1) / denom_w.sum(-1)
    floor2 = np.log1p(settings.relative_scale_floor) ** 2
    own = rate_day_noise(
        numer_w, denom_w, p0, rate_day_noise_log_spread(numer_w, denom_w, p0, floor2), floor2
    )
    own_df = scale_df(np.full(own.shape, 28), settings)
    post, post_df = moderate_day_noise(
        own,
        own_df,
        denom_w * p0[..., None],
        np.ones(numer_w.shape, bool),
        np.ones(own.shape, bool),
        np.zeros(n, int),
        settings,
    )
    return own[:, 0], post[:, 0], own_df[:, 0], post_df[:, 0]


def test_trigamma_inverse_and_the_information_of_a_day_noise_estimate():
    from scipy import special

    from campaign_pipeline.detection.detectors import noise_information_df, trigamma_inverse

    x = np.array([0.01, 0.1, 1.0, 10.0])
    np.testing.assert_allclose(special.polygamma(1, trigamma_inverse(x)), x, rtol=1e-7)
    # 28 days of 100 expected clicks, kappa 0.04: each day's variance is 100 + 400, of which
    # 400 is day noise, so the window is worth 28 x (400 / 500)^2 = 17.9 degrees of freedom
    m, known = np.full((1, 1, 28), 100.0), np.ones((1, 1, 28), bool)
    assert noise_information_df(m, known, np.array([[0.04]]))[0, 0] == pytest.approx(28 * 0.8**2)
    # 2 a day: Poisson noise hides the day noise, the window says next to nothing about it
    assert noise_information_df(m / 50, known, np.array([[0.04]]))[0, 0] < 0.5


def test_moderated_day_noise_pools_campaigns_that_are_alike():
    """300 campaigns with the same CTR day noise (variance 0.04): each one's 28 days estimate
    it with an RMSE of 0.0135; pooled it is 0.004, and the t tails gain the prior's df."""
    own, post, own_df, post_df = _moderated_day_noise(np.full(300, 100.0), np.full(300, 0.2))
    rmse = lambda e: np.sqrt(np.mean((e - 0.04) ** 2))  # noqa: E731
    assert rmse(post) < 0.4 * rmse(own)
    assert np.median(post_df) > 3 * own_df[0]


def test_moderated_day_noise_keeps_campaigns_whose_noise_differs():
    """Half the campaigns calm (sd 0.05), half loud (sd 0.4): the spread of the estimates shows
    it, the prior is weak, and each campaign keeps (about) its own estimate."""
    sigma = np.where(np.arange(300) % 2 == 0, 0.05, 0.4)
    truth = np.log1p(np.expm1(sigma**2))
    own, post, own_df, post_df = _moderated_day_noise(np.full(300, 100.0), sigma)
    rmse = lambda e: np.sqrt(np.mean((e - truth) ** 2))  # noqa: E731
    assert rmse(post) < 1.1 * rmse(own)
    assert np.median(post[sigma == 0.4]) > 20 * np.median(post[sigma == 0.05])
    assert np.median(post_df) < own_df[0]  # no narrower tails than a campaign's own


def test_moderated_day_noise_prior_is_fitted_on_informative_estimates_only():
    """A campaign with one click a day says next to nothing about its day noise; its estimate is
    pulled to the prior but must not shape it (it sits on the floor, and its log-chi2 bias
    correction would double the prior: 0.08 against a true 0.04)."""
    mu = np.where(np.arange(200) < 100, 100.0, 1.0)
    _, post, _, _ = _moderated_day_noise(mu, np.full(200, 0.2))
    assert np.median(post[100:]) == pytest.approx(0.04, rel=0.15)
    # every estimate is worth at least 0.5 df (the clip in `moderate_day_noise`): 0.1 lets all in
    _, unguarded, _, _ = _moderated_day_noise(
        mu, np.full(200, 0.2), DetectionSettings(noise_prior_min_df=0.1)
    )
    assert np.median(unguarded[100:]) > 1.5 * 0.04


def test_moderated_day_noise_needs_enough_campaigns():
    own, post, own_df, post_df = _moderated_day_noise(np.full(9, 100.0), np.full(9, 0.2))
    np.testing.assert_array_equal(post, own)
    np.testing.assert_array_equal(post_df, own_df)


def test_campaign_evidence_pools_ctr_noise_across_campaigns():
    """Wiring: `evidence` gives the rate detector its metric's rows as one group, so with 60
    alike campaigns a halved CTR is more surprising than each campaign's 28 days alone say
    (narrower t tails), and with 9 campaigns (under `noise_pool_min_series`) nothing changes."""
    from campaign_pipeline.detection.ensemble import derived_panels, evidence

    rng = np.random.default_rng(4)
    n, days = 60, 50
    imp = rng.poisson(5000 * rng.gamma(50, 1 / 50, (n, days))).astype(float)
    ctr = 0.02 * np.exp(rng.normal(-0.02, 0.2, (n, days)))
    ctr[1, -1] *= 0.4
    clicks = rng.binomial(imp.astype(int), ctr).astype(float)
    zeros = np.zeros((n, days))
    panels = derived_panels(
        dict(
            impressions=imp,
            clicks=clicks,
            spend=imp / 50,
            conversions=zeros,
            leads=zeros,
            converted_leads=zeros,
        )
    )

    def p_last(rows, pooling):
        ev = evidence(
            {k: v[rows] for k, v in panels.items()},
            ("ctr",),
            period=7,
            window=28,
            min_history=14,
            settings=DetectionSettings(rate_noise_pooling=pooling),
        )
        return ev["p"][0, 1, -1]

    every = np.arange(n)
    assert p_last(every, True) < 0.75 * p_last(every, False)  # 0.0011 against 0.0018
    assert p_last(every[:9], True) == p_last(every[:9], False)


def _ctr_day_p(
    clicks_per_day: float, day_sd: float, last_factor: float, satterthwaite: bool, seed: int = 2
) -> float:
    from campaign_pipeline.detection.ensemble import derived_panels, evidence

    rng = np.random.default_rng(seed)
    imp = np.full((1, 40), 10_000.0)
    rate = clicks_per_day / 10_000 * np.exp(rng.normal(-(day_sd**2) / 2, day_sd, imp.shape))
    rate[0, -1] *= last_factor
    clicks = rng.poisson(imp * rate).astype(float)
    zeros = np.zeros(imp.shape)
    panels = derived_panels(
        dict(
            impressions=imp,
            clicks=clicks,
            spend=imp / 50,
            conversions=zeros,
            leads=zeros,
            converted_leads=zeros,
        )
    )
    ev = evidence(
        panels,
        ("ctr",),
        period=7,
        window=28,
        min_history=14,
        settings=DetectionSettings(rate_z_satterthwaite=satterthwaite, use_tail_calibration=False),
    )
    return float(ev["p"][0, 0, -1])


def test_rate_z_tail_counts_only_the_estimated_part_of_its_variance():
    """At 20 clicks a day with little day noise the log-rate z's variance is almost all Poisson
    (known): its t tail should be near normal, not that of 24 df; where day noise dominates
    (2,000 clicks a day, sd 0.2) the df, and the p-value, stay about the same. (Rises: the t
    tail of the log-rate z is the binding one there, the count test's for drops.)"""
    small_on, small_off = _ctr_day_p(20.0, 0.02, 2.5, True), _ctr_day_p(20.0, 0.02, 2.5, False)
    assert small_on < 0.3 * small_off  # 0.00014 against 0.00066
    big_on, big_off = _ctr_day_p(2000.0, 0.2, 2.0, True), _ctr_day_p(2000.0, 0.2, 2.0, False)
    assert big_on == pytest.approx(big_off, rel=0.15)
    assert big_on < 0.01  # the day is surprising either way: the check compares like with like


def _moderated_scales(true_sd, cnt, settings=DetectionSettings(), seed=3):
    """Each series' scale as an SD estimate from `cnt` points (chi2 with scale_df(cnt) df),
    floored like the detectors' log scales."""
    from campaign_pipeline.detection.detectors import moderate_scales, scale_df

    rng = np.random.default_rng(seed)
    sd = np.asarray(true_sd, float)[:, None]
    cnt = np.full(sd.shape, float(cnt))
    df = scale_df(cnt, settings)
    floor = np.full(sd.shape, np.log1p(settings.relative_scale_floor))
    own = np.maximum(sd * np.sqrt(rng.chisquare(df) / df), floor)
    post, post_df = moderate_scales(
        own, cnt, np.ones(sd.shape, bool), floor, np.zeros(len(sd), int), settings
    )
    return own[:, 0], post[:, 0], df[:, 0], post_df[:, 0], floor[0, 0]


def test_moderated_scales_pool_alike_weeks_and_keep_the_floor():
    """200 campaigns whose weekly spend varies by 15 %: 8 trailing weeks estimate it with a
    t tail of 6.3 df; pooled, the estimates are closer to the truth and the tails narrower.
    100 more campaigns below the 5 % floor sit on it: they do not shape the prior (the others'
    posterior is the same with or without them) and none is moderated below the floor."""
    sd = np.full(200, 0.15)
    own, post, df, post_df, floor = _moderated_scales(sd, 8)
    rmse = lambda e: np.sqrt(np.mean((e - 0.15) ** 2))  # noqa: E731
    assert rmse(post) < 0.5 * rmse(own)
    assert np.median(post_df) > 5 * df[0]
    _, post_with_calm, _, _, _ = _moderated_scales(np.concatenate([sd, np.full(100, 0.01)]), 8)
    np.testing.assert_allclose(post_with_calm[:200], post, rtol=1e-12)
    assert post_with_calm[200:].min() >= floor
    # a history too short to fit the prior (4 weeks: 2.7 df < noise_prior_min_df) keeps its own
    own4, post4, df4, post_df4, _ = _moderated_scales(sd, 4)
    np.testing.assert_array_equal(post4, own4)
    np.testing.assert_array_equal(post_df4, df4)


def test_week_grain_reports_the_first_week_of_a_lasting_drop():
    """A campaign among 40 whose delivery drops to 0.6x from a Monday on: its own 8 weeks give
    the week's scale a t tail of ~6 df, which in the week-wide BH family over the 40
    campaigns' metrics let the first dropped week pass in 1 of 5 draws; with the scales
    pooled across the campaigns (`pool_scales_weekly`) in 4 of 5, and no other campaign's
    week is flagged in either."""
    found = {True: 0, False: 0}
    for seed in range(5):
        df = daily_frame(n_campaigns=40, n_days=98, seed=seed)
        hit = (df["campaign_id"] == "c1") & (df["date"] >= "2024-03-11")
        for c in ("impressions", "clicks", "conversions", "leads", "converted_leads"):
            df.loc[hit, c] = np.round(df.loc[hit, c] * 0.6)
        df.loc[hit, "spend"] *= 0.6
        df = add_rates(df)
        for pool in (True, False):
            flags = detect_campaign_anomalies(
                df,
                judge_start="2024-02-05",
                judge_end="2024-04-07",
                settings=DetectionSettings(pool_scales_weekly=pool),
            )
            week = flags[flags["grain"] == "week"]
            assert (week["campaign_id"] == "c1").all()
            found[pool] += (
                pd.to_datetime(week["period_start"]) == pd.Timestamp("2024-03-11")
            ).any()
    assert found[True] >= 4 and found[False] <= 2


def test_run_length_counts_steps_in_a_row():
    mask = np.array([[True, True, False, True, True, True, False], [False] * 7])
    np.testing.assert_array_equal(_run_length(mask), [[1, 2, 0, 1, 2, 3, 0], [0] * 7])


def test_week_grain_calls_a_lasting_change_a_level_shift_from_its_second_week():
    """Spend and volumes of one campaign among 40 at 2.5x from a Monday on, judged one week per
    call as the pipeline's partitions are: the first week is a spend spike; every later
    spend flag is a level shift and says how many weeks in a row it has lasted, though no
    call sees the earlier weeks' flags. A one-week jump that ends gives no level shift."""
    weeks = pd.date_range("2024-03-11", "2024-04-08", freq="7D")
    for lasting in (True, False):
        df = daily_frame(n_campaigns=40, n_days=112, seed=1)
        hit = (df["campaign_id"] == "c1") & (df["date"] >= "2024-03-11")
        if not lasting:
            hit &= df["date"] <= "2024-03-17"
        for c in ("impressions", "clicks", "conversions", "leads", "converted_leads"):
            df.loc[hit, c] = np.round(df.loc[hit, c] * 2.5)
        df.loc[hit, "spend"] *= 2.5
        flags = detect_by_week(add_rates(df), weeks, history_weeks=8)
        spend = flags[(flags["grain"] == "week") & (flags["metric"] == "spend")].sort_values(
            "period_start"
        )
        first = spend.iloc[0]
        assert (
            pd.Timestamp(first["period_start"]) == weeks[0]
            and first["anomaly_type"] == "spend_spike"
        )
        assert "in a row" not in first["explanation"]
        if lasting:
            later = spend.iloc[1:]
            assert len(later) >= 2 and (later["anomaly_type"] == "level_shift").all()
            for row in later.itertuples():
                n = (pd.Timestamp(row.period_start) - weeks[0]).days // 7 + 1
                assert f"{n} weeks in a row beyond the normal range" in row.explanation
        else:
            assert not (flags["anomaly_type"] == "level_shift").any()


def test_week_grain_lone_metric_needs_corroboration():
    """Clean campaigns (nothing injected): with the pooled week scales alone, a lone metric's
    week (here leads, at z ~4, 40 % off) passes BH in some of these draws; as on the day grain,
    a week flag needs a second metric or a strong-alone size (`weekly_corroboration`)."""
    lone = {True: 0, False: 0}
    for seed in (1, 2, 4):
        df = daily_frame(n_campaigns=40, n_days=98, seed=seed)
        for corroborate in (True, False):
            flags = detect_campaign_anomalies(
                df,
                judge_start="2024-02-05",
                judge_end="2024-04-07",
                settings=DetectionSettings(weekly_corroboration=corroborate),
            )
            lone[corroborate] += int((flags["grain"] == "week").sum())
    assert lone[True] == 0 and lone[False] >= 2


def test_tail_prior_df_is_validated():
    assert DetectionSettings(tail_prior_df=10.0).tail_prior_df == 10.0
    for bad in (1.0, float("nan")):
        with pytest.raises(ValueError, match="tail_prior_df"):
            DetectionSettings(tail_prior_df=bad)


def test_moderation_pools_within_each_metric_block_only():
    """Two metrics stacked (as `evidence` stacks them) are moderated as if each were alone: a
    loud metric's estimates do not pull a calm one's toward them. Rows must come in equal,
    contiguous blocks."""
    from campaign_pipeline.detection.detectors import moderate_variances

    rng = np.random.default_rng(8)
    n, settings = 150, DetectionSettings()
    df = np.full((2 * n, 3), 20.0)
    truth = np.repeat([0.04, 0.16], n)[:, None]
    est = truth * rng.chisquare(20.0, (2 * n, 3)) / 20.0
    ok = np.ones(est.shape, bool)
    both, both_df = moderate_variances(est, df, df, ok, ok, np.repeat([0, 1], n), settings)
    for g in (0, 1):
        rows = slice(g * n, (g + 1) * n)
        alone, alone_df = moderate_variances(
            est[rows], df[rows], df[rows], ok[rows], ok[rows], np.zeros(n, int), settings
        )
        np.testing.assert_allclose(both[rows], alone, rtol=1e-12)
        np.testing.assert_allclose(both_df[rows], alone_df, rtol=1e-12)
    assert np.median(both[:n]) < 0.06 < np.median(both[n:])
    with pytest.raises(ValueError, match="contiguous"):
        moderate_variances(est, df, df, ok, ok, np.tile([0, 1], n), settings)


def test_thresholds_outside_their_meaning_are_refused_naming_the_setting():
    """A negative minimum effect passed every point; severity_effects out of order made a
    +50 % spike critical; a lead-flood ratio of 0 flagged ordinary days."""
    from campaign_pipeline.detection.settings import settings_from_overrides

    for override, message in (
        ("min_relative_effect=-5", "need min_relative_effect >= 0"),
        ("min_robust_z=-3", "need min_robust_z >= 0"),
        ("cusum_h=0", "need cusum_h > 0"),
        ("lead_flood_ratio=1", "need lead_flood_ratio > 1"),
        ("budget_overspend_ratio=-1", "need budget_overspend_ratio > 0"),
        ("tracking_break_days=0", "need tracking_break_days >= 1"),
        ("weekly_baseline_weeks=0", "need weekly_baseline_weeks >= weekly_min_history_weeks"),
        ("severity_effects=3,1,0.5", "severity_effects must be three increasing positive"),
    ):
        with pytest.raises(ValueError, match=message):
            settings_from_overrides([override])
    for sensitivity in ("low", "medium", "high"):  # every preset keeps within the bounds
        effective = settings_from_overrides([], sensitivity=sensitivity).effective
        assert effective.min_relative_effect > 0 and effective.min_robust_z > 0
