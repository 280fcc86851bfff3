"""The baseline scale: robust to an anomalous day, yet nearly as efficient as an SD."""

import numpy as np
import pytest

from campaign_pipeline.detection.baselines import (
    _WINSOR_CONSISTENCY,
    MAD_TO_SIGMA,
    WINSOR_C,
    lag1_autocorrelation,
    mean_variance_factor,
    nan_count,
    nan_median,
    phase_scale_factors,
    robust_level_scale,
    seasonal_factors,
    seasonal_factors_js,
    seasonal_profile_js,
    trailing_windows,
    weekday_factors,
    weekday_profile,
)


def test_scale_is_consistent_and_far_less_noisy_than_the_mad():
    rng = np.random.default_rng(1)
    windows = rng.normal(0.0, 2.0, size=(20000, 28))
    _, scale = robust_level_scale(windows)
    med = nan_median(windows)
    mad_sigma = MAD_TO_SIGMA * nan_median(np.abs(windows - med[:, None]))
    sd = windows.std(axis=1, ddof=1)
    assert abs(scale.mean() / 2.0 - 1) < 0.03  # consistent for sigma (small-sample bias aside)
    efficiency = sd.var() / scale.var()
    assert efficiency > 0.85  # the MAD alone is about 0.40
    assert sd.var() / mad_sigma.var() < 0.5


def test_one_wild_day_moves_the_scale_a_little_and_nans_are_skipped():
    rng = np.random.default_rng(2)
    window = rng.normal(0.0, 1.0, 28)
    _, clean = robust_level_scale(window[None])
    wild = window.copy()
    wild[5] = 1e6
    _, with_outlier = robust_level_scale(wild[None])
    assert with_outlier[0] < 1.2 * clean[0]  # an SD would be ~190,000
    gappy = window.copy()
    gappy[[3, 9]] = np.nan
    _, skipped = robust_level_scale(gappy[None])
    assert np.isfinite(skipped[0]) and abs(skipped[0] / clean[0] - 1) < 0.2


def test_flat_window_has_zero_scale_and_empty_window_none():
    level, scale = robust_level_scale(np.array([[3.0] * 10, [np.nan] * 10]))
    assert level[0] == 3.0 and scale[0] == 0.0
    assert np.isnan(level[1]) and np.isnan(scale[1])


def test_poisson_lognormal_tails_match_poisson_without_noise_and_simulation_with_it():
    from scipy import stats

    from campaign_pipeline.detection.detectors import poisson_lognormal_pvalues

    k = np.array([0.0, 3.0, 10.0, 25.0])
    up, lo = poisson_lognormal_pvalues(k, np.full(4, 10.0), np.zeros(4))
    np.testing.assert_allclose(up, stats.poisson.sf(k - 1, 10.0), rtol=1e-9)
    np.testing.assert_allclose(lo, stats.poisson.cdf(k, 10.0), rtol=1e-9)
    # with day noise: X ~ Poisson(50 e^eps), eps ~ N(-s^2/2, s^2), s = 0.4
    rng = np.random.default_rng(3)
    sigma = 0.4
    draws = rng.poisson(50.0 * np.exp(rng.normal(-(sigma**2) / 2, sigma, 400_000)))
    k = np.array([20.0, 35.0, 80.0, 120.0])
    up, lo = poisson_lognormal_pvalues(k, np.full(4, 50.0), np.full(4, sigma))
    np.testing.assert_allclose(up, [(draws >= v).mean() for v in k], rtol=0.05, atol=2e-4)
    np.testing.assert_allclose(lo, [(draws <= v).mean() for v in k], rtol=0.05, atol=2e-4)
    # day noise makes a 2.5x drop far less surprising than Poisson alone says, yet still rare
    assert 1e4 * stats.poisson.cdf(20, 50.0) < lo[0] < 0.05


def test_small_count_jump_is_judged_on_the_variance_stabilizing_scale():
    """Conversions at ~4 a day jumping to 28: log(1 + x) squeezes it, the count's own scale does
    not."""
    from campaign_pipeline.detection import DetectionSettings
    from campaign_pipeline.detection.detectors import score_panel

    rng = np.random.default_rng(4)
    days = 60
    counts = rng.poisson(4.0, size=(50, days)).astype(float)
    counts[:, -1] = 28.0
    kw = dict(kind="count", period=None, window=28, min_history=14)
    vst = score_panel(counts, settings=DetectionSettings(), **kw)
    log1p = score_panel(counts, settings=DetectionSettings(use_count_tests=False), **kw)
    assert np.median(vst["z"][:, -1]) > 6.0
    assert np.median(log1p["z"][:, -1]) < 4.0
    # ordinary days stay ordinary on the new scale: |z| > 4 on under 0.5 % of them
    normal = vst["z"][:, 30:-1]
    assert np.mean(np.abs(normal) > 4) < 0.005
    # large counts with day noise: a 3x drop and a 3x rise are about equally unusual
    big = 5000 * np.exp(rng.normal(0, 0.2, size=(50, days)))
    big = rng.poisson(big).astype(float)
    up, down = big.copy(), big.copy()
    up[:, -1] *= 3
    down[:, -1] /= 3
    z_up = np.median(score_panel(up, settings=DetectionSettings(), **kw)["z"][:, -1])
    z_down = np.median(score_panel(down, settings=DetectionSettings(), **kw)["z"][:, -1])
    assert z_up > 3 and z_down < -3 and 0.7 < abs(z_up / z_down) < 1.4


def _awkward_windows() -> np.ndarray:
    """Trailing windows with gaps, a start of series, ties, zeros, constant and empty rows."""
    rng = np.random.default_rng(11)
    x = np.log1p(rng.lognormal(size=(60, 70)))
    x[rng.random(x.shape) < 0.1] = np.nan
    x[:4] = np.nan
    x[4:8, :45] = np.nan
    x[8:14] = 0.7
    x[14:20, ::3] = 0.0
    x[20:26] = np.round(x[20:26], 1)
    return trailing_windows(x, 28)


def test_baselines_equal_their_plain_formulas_bit_for_bit():
    """The baselines count, sort and square in reused buffers for speed; every number must be
    the one the plain expressions give, or a published flag could move."""
    windows = _awkward_windows()
    count = np.sum(~np.isnan(windows), axis=-1)
    ordered = np.sort(windows, axis=-1)

    def median(rows_sorted):
        pos = (count - 1) * 0.5
        lo = np.clip(np.floor(pos).astype(int), 0, rows_sorted.shape[-1] - 1)
        hi = np.clip(np.ceil(pos).astype(int), 0, rows_sorted.shape[-1] - 1)
        v_lo = np.take_along_axis(rows_sorted, lo[..., None], axis=-1)[..., 0]
        v_hi = np.take_along_axis(rows_sorted, hi[..., None], axis=-1)[..., 0]
        return np.where(count > 0, v_lo + (v_hi - v_lo) * (pos - np.floor(pos)), np.nan)

    med = median(ordered)
    sigma0 = MAD_TO_SIGMA * median(np.sort(np.abs(windows - med[..., None]), axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        bound = WINSOR_C * sigma0[..., None]
        clipped = np.clip(windows - med[..., None], -bound, bound)
        var = np.nansum(clipped**2, axis=-1) / np.where(count > 1, count - 1, np.nan)
        sigma = np.where(np.isnan(sigma0), np.nan, np.sqrt(var / _WINSOR_CONSISTENCY))
        r = np.clip((windows - med[..., None]) / sigma[..., None], -WINSOR_C, WINSOR_C)
    a, b = r[..., :-1], r[..., 1:]
    pair = ~np.isnan(a) & ~np.isnan(b)
    num = np.where(pair, a * b, 0.0).sum(axis=-1)
    den = np.where(pair, 0.5 * (a**2 + b**2), 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where((pair.sum(axis=-1) >= 3) & (den > 0), num / den, np.nan)

    assert np.array_equal(nan_count(windows), count) and nan_count(windows).dtype == count.dtype
    assert np.array_equal(nan_median(windows), med, equal_nan=True)
    level, scale = robust_level_scale(windows)
    assert np.array_equal(level, med, equal_nan=True)
    assert np.array_equal(scale, sigma, equal_nan=True)
    assert np.array_equal(lag1_autocorrelation(windows, level, scale), rho, equal_nan=True)
    assert np.isnan(scale[:4]).all() and (scale[8:14, 40:] == 0).all()  # the cases were there


def test_lag1_autocorrelation_recovers_ar1_and_mean_variance_factor_follows_it():
    rng = np.random.default_rng(3)
    n, t = 200, 97
    e = rng.normal(size=(n, t))
    ar = np.zeros((n, t))
    for j in range(1, t):  # AR(1) with rho 0.6, one step at a time over all series
        ar[:, j] = 0.6 * ar[:, j - 1] + e[:, j]
    for series, want in ((e, 0.0), (ar, 0.6)):
        w = trailing_windows(series, 96)[:, -1:, :]
        level, scale = robust_level_scale(w)
        rho = lag1_autocorrelation(w, level, scale)
        assert abs(np.median(rho) - want) < 0.08
    # a gap breaks the pair on each side of it; too few pairs is unknown, not zero
    gappy = np.array([[[0.1, np.nan, 0.3, -0.2]]])
    assert np.isnan(lag1_autocorrelation(gappy, np.zeros((1, 1)), np.ones((1, 1))))
    # 1 + 2 sum (1 - k/n) rho^k, negative rho earns no credit
    np.testing.assert_allclose(mean_variance_factor(np.array([0.5]), np.array([5]), 5), [2.225])
    np.testing.assert_allclose(
        mean_variance_factor(np.array([-0.4, np.nan]), np.array([5, 5]), 5), [1.0, 1.0]
    )


def test_tail_calibration_learns_heavy_tails_from_the_past_only():
    from scipy import stats

    from campaign_pipeline.detection.detectors import tail_calibrated_pvalues

    rng = np.random.default_rng(4)
    n, t = 400, 1000
    heavy = rng.standard_t(3, size=(n, t)) / 1.29  # t3 on the winsorized-sigma scale
    calm = rng.normal(size=(n, t))
    judged = np.ones((n, t), bool)
    z = np.full((n, 1), 5.0)  # the same |z| = 5 judged at the end of each history
    p_heavy = tail_calibrated_pvalues(
        np.concatenate([heavy, z], axis=1), np.ones((n, t + 1), bool), 200.0
    )[:, -1]
    p_calm = tail_calibrated_pvalues(
        np.concatenate([calm, z], axis=1), np.ones((n, t + 1), bool), 200.0
    )[:, -1]
    normal_p = 2 * stats.norm.sf(5.0)
    # after a normal history |z| = 5 stays about as rare as under a normal
    assert np.median(p_calm) < 20 * normal_p
    # after a t3 history it is a 1-in-a-few-hundred event, not 1-in-1.7-million
    assert 1e-3 < np.median(p_heavy) < 2e-2
    # causal: the first point has no past and gets the (near-)normal tail
    first = tail_calibrated_pvalues(heavy, judged, 200.0)[:, 0]
    np.testing.assert_allclose(
        first, 2 * stats.t.sf(np.abs(heavy[:, 0]) * 1.001, 1000.0), rtol=0.02
    )
    # appending later points does not change an earlier p-value
    np.testing.assert_array_equal(
        tail_calibrated_pvalues(heavy[:, :500], judged[:, :500], 200.0),
        tail_calibrated_pvalues(heavy, judged, 200.0)[:, :500],
    )
    # a t5 prior (`tail_prior_df`): with no past |z| = 5 is judged under (about) a t5, and a
    # long calm past still brings it back toward the normal
    p5 = tail_calibrated_pvalues(
        np.concatenate([calm, z], axis=1), np.ones((n, t + 1), bool), 200.0, 5.0
    )
    assert p5[0, 0] == pytest.approx(2 * stats.t.sf(abs(calm[0, 0]) * 1.170912, 5.0), rel=0.02)
    assert np.median(p_calm) < np.median(p5[:, -1]) < 2 * stats.t.sf(5.0 * 1.170912, 5.0)


def test_tail_grid_constants_match_their_definition():
    from campaign_pipeline.detection.detectors import _TAIL_DF, _TAIL_SIGMA, _winsorized_sigma_of_t

    np.testing.assert_allclose(
        _TAIL_SIGMA, [_winsorized_sigma_of_t(d) for d in _TAIL_DF], atol=2e-6
    )
    # and the normal end of the grid is (nearly) the normal-consistent scale itself
    assert abs(_TAIL_SIGMA[-1] - 1.0) < 1e-3


def _hourly_weeks(rng, weeks, weekend, wander, n=6):
    """n hourly series over `weeks` weeks from a Monday: weekend level x `weekend`, day-level
    wander of sd `wander` (log scale), 10 % hour noise."""
    t = 24 * 7 * weeks
    day = np.arange(t) // 24
    level = rng.normal(0.0, wander, (n, weeks * 7))[:, day]
    weekend_log = np.where(day % 7 >= 5, np.log(weekend), 0.0)
    return np.exp(level + weekend_log + rng.normal(0.0, 0.1, (n, t)))


def test_weekday_factor_finds_a_working_week_and_none_where_there_is_none():
    rng = np.random.default_rng(3)
    t_sat = 24 * 7 * 5 + 24 * 5 + 12  # a Saturday noon in week 6, four full weeks known
    t_wed = 24 * 7 * 5 + 24 * 2 + 12  # that week's Wednesday noon
    # weekends at 60 %: the weekend/weekday factor ratio is found (to the day-level noise)
    pattern = weekday_factors(_hourly_weeks(rng, 6, 0.6, 0.03), 24, 4)
    ratio = pattern[:, t_sat] / pattern[:, t_wed]
    assert np.abs(np.log(ratio) - np.log(0.6)).max() < 0.1
    # no weekly cycle, but days wander by 15 %: (nearly) no factor instead of chance highs and lows
    flat = weekday_factors(_hourly_weeks(rng, 6, 1.0, 0.15, n=40), 24, 4)
    assert np.median(np.abs(np.log(flat[:, 24 * 7 * 4 :]))) < 0.02


def test_weekday_factor_follows_calendar_days():
    """Every hour of a Saturday takes Saturday's factor, and a Friday's last hour Friday's: a
    factor from 24-hour windows centred on the judged hour gave the hours after midnight
    mostly the day before's level (a weekend night's counts read as drops of Friday's)."""
    rng = np.random.default_rng(5)
    factor = weekday_factors(_hourly_weeks(rng, 6, 0.6, 0.03), 24, 4)
    week6 = 24 * 7 * 5
    wednesday = factor[:, week6 + 24 * 2 : week6 + 24 * 3]
    saturday = factor[:, week6 + 24 * 5 : week6 + 24 * 6]
    assert np.abs(np.log(saturday / wednesday) - np.log(0.6)).max() < 0.1
    friday_late = factor[:, week6 + 24 * 5 - 1]
    assert np.abs(np.log(friday_late / wednesday[:, -1])).max() < 0.1


def test_weekday_factor_is_causal_and_needs_two_weeks():
    rng = np.random.default_rng(4)
    v = _hourly_weeks(rng, 6, 0.6, 0.03)
    full = weekday_factors(v, 24, 4)
    t = 24 * 7 * 4 + 37
    changed = v.copy()
    changed[:, t:] *= 5.0  # the point and everything after it
    np.testing.assert_array_equal(weekday_factors(changed, 24, 4)[:, : t + 1], full[:, : t + 1])
    # in the first 8 days no weekday has two known days: no spread to judge a pattern by
    assert (full[:, : 24 * 8] == 1.0).all()
    assert (np.abs(np.log(full[:, 24 * 7 * 3 :])) > 0.1).any()
    # a sub-daily series only: one step per day has no day windows of its own
    assert (weekday_factors(v[:, :50], 1, 4) == 1.0).all()


def _daily_weeks(rng, weeks, weekend, noise, n=40):
    """n daily series over `weeks` weeks from a Monday: weekend level x `weekend`, log noise
    `noise`."""
    day = np.arange(7 * weeks)
    return np.exp(
        np.where(day % 7 >= 5, np.log(weekend), 0.0) + rng.normal(0.0, noise, (n, 7 * weeks))
    )


def test_daily_weekday_profile_keeps_a_clear_weekend_dip_and_adds_none_to_wander():
    rng = np.random.default_rng(5)
    saturdays = 7 * np.arange(4, 8) + 5  # Saturdays with four earlier weeks known
    wednesdays = saturdays - 3  # the same weeks' Wednesdays

    def log_ratio(factors):  # the weekend/weekday ratio is what the detector divides out
        return np.median(np.log(factors[:, saturdays] / factors[:, wednesdays]))

    # a weekend at 55 % (a B2B platform) with 15 % day noise: the James-Stein weight keeps the
    # dip nearly whole, where k / (k + 2) keeps two-thirds of it (a bias of 0.2 on the log scale)
    dip = _daily_weeks(rng, 8, 0.55, 0.15)
    assert abs(log_ratio(seasonal_factors_js(dip, 7, 4)) - np.log(0.55)) < 0.06
    assert abs(log_ratio(seasonal_factors(dip, 7, 4, 2.0)) - np.log(0.55)) > 0.15
    # no weekly pattern, 30 % day noise: (nearly) no factor, where the count weight turns the
    # chance highs and lows of four same weekdays into one
    flat = _daily_weeks(rng, 8, 1.0, 0.3)
    days = np.arange(28, 56)
    assert np.median(np.abs(np.log(seasonal_factors_js(flat, 7, 4)[:, days]))) < 0.02
    assert np.median(np.abs(np.log(seasonal_factors(flat, 7, 4, 2.0)[:, days]))) > 0.05


def test_daily_weekday_profile_is_causal_and_skips_unknown_days():
    rng = np.random.default_rng(6)
    v = _daily_weeks(rng, 8, 0.55, 0.1, n=4)
    full = seasonal_factors_js(v, 7, 4)
    changed = v.copy()
    changed[:, 40:] *= 5.0  # day 40 and everything after it
    np.testing.assert_array_equal(seasonal_factors_js(changed, 7, 4)[:, :41], full[:, :41])
    gappy = v.copy()
    gappy[:, 30:33] = np.nan
    gappy[:, 20] = 0.0  # a day without delivery is no information about the profile
    out = seasonal_factors_js(gappy, 7, 4)
    assert np.isfinite(out).all()
    # a Saturday after the gaps, against that week's Wednesday
    assert abs(np.log(out[:, 54] / out[:, 51]).mean() - np.log(0.55)) < 0.08
    assert (seasonal_factors_js(v, None, 4) == 1.0).all()


def test_an_outlier_among_two_values_tears_its_phase_and_leaves_the_others_whole():
    """A first Saturday at 10x among a series' unjudged first days: with two Saturdays known
    their median is their mean (3x a weekday where a Saturday is 0.55x), and the spread it adds
    within phases shrank every other phase's factor to 1. The Saturday phase is torn (unknown)
    until a third Saturday's median outvotes the outlier; the Sunday keeps its dip."""
    rng = np.random.default_rng(7)
    v = _daily_weeks(rng, 8, 0.55, 0.1, n=20)
    v[:, 5] *= 10 / 0.55  # the first Saturday at 10x a weekday
    plain = seasonal_profile_js(v, 7, 4)
    robust = seasonal_profile_js(v, 7, 4, torn_z=5.0)
    saturday3, sunday3, saturday4 = 19, 20, 26
    assert robust.torn[:, saturday3].all() and not robust.torn[:, [sunday3, saturday4]].any()
    assert (robust.factor[:, saturday3] == 1.0).all() and (robust.known[:, saturday3] == 0).all()
    # the Sunday and the fourth Saturday against that week's Wednesday: the 0.55 dip
    for day, wednesday in ((sunday3, 16), (saturday4, 23)):
        ratio = np.log(robust.factor[:, day] / robust.factor[:, wednesday])
        assert abs(np.median(ratio) - np.log(0.55)) < 0.12, ratio  # some shrinkage
        # without it: the outlier's spread shrinks the dip away (or the Saturday turns high)
        ratio = np.log(plain.factor[:, day] / plain.factor[:, wednesday])
        assert np.median(ratio) > np.log(0.55) + 0.3, ratio
    assert not plain.torn.any()


def test_normal_noise_seldom_tears_a_phase_and_tearing_is_causal():
    rng = np.random.default_rng(8)
    v = _daily_weeks(rng, 10, 0.55, 0.15, n=400)
    torn = seasonal_profile_js(v, 7, 4, torn_z=5.0).torn
    # two values per phase only in the third week (days 14-20); a median of three after it
    assert torn[:, 14:21].mean() < 0.005 and not torn[:, 21:].any()
    heavy = np.exp(np.log(v) + 0.1 * rng.standard_t(3, v.shape))
    assert seasonal_profile_js(heavy, 7, 4, torn_z=5.0).torn[:, 14:21].mean() < 0.02
    changed = v.copy()
    changed[:, 19:] *= 10.0  # the step and everything after it
    np.testing.assert_array_equal(
        seasonal_profile_js(changed, 7, 4, torn_z=5.0).torn[:, :20], torn[:, :20]
    )


def test_weekday_profile_counts_the_days_of_the_steps_own_weekday():
    rng = np.random.default_rng(9)
    week = weekday_profile(_hourly_weeks(rng, 5, 0.6, 0.03), 24, 4)
    day = np.arange(24 * 7 * 5) // 24
    # the weeks before the step's own day, at most four
    np.testing.assert_array_equal(
        week.known, np.broadcast_to(np.minimum(day // 7, 4), week.known.shape)
    )
    one_day_out = _hourly_weeks(rng, 5, 0.6, 0.03)
    one_day_out[:, 24 * 2 : 24 * 3] = np.nan  # the first Wednesday unknown
    known = weekday_profile(one_day_out, 24, 4).known
    assert (known[:, 24 * 9 : 24 * 10] == 0).all() and (known[:, 24 * 16 : 24 * 17] == 1).all()


def test_daily_detector_expects_the_whole_weekend_dip():
    """A doubled Sunday on a campaign that spends 55 % at weekends: the whole dip is expected,
    so the day reads as the doubling it is (the count weight, k / (k + 2), expected a third
    of the dip too much and read it as +66 %)."""
    from campaign_pipeline.detection import DetectionSettings
    from campaign_pipeline.detection.detectors import score_panel

    rng = np.random.default_rng(7)
    spend = 100 * _daily_weeks(rng, 8, 0.55, 0.1)
    sunday = 7 * 7 + 6
    spend[:, sunday] *= 2.0
    kw = dict(kind="log", period=7, window=28, min_history=14)
    on = score_panel(spend, settings=DetectionSettings(), **kw)
    off = score_panel(spend, settings=DetectionSettings(weekday_james_stein=False), **kw)
    ratio_on = np.median(spend[:, sunday] / on["expected"][:, sunday])
    ratio_off = np.median(spend[:, sunday] / off["expected"][:, sunday])
    assert abs(np.log(ratio_on) - np.log(2.0)) < 0.12
    assert ratio_off < 1.7
    assert np.median(on["z"][:, sunday]) > np.median(off["z"][:, sunday]) + 1.0


def _volume_noise(hours: np.ndarray) -> np.ndarray:
    """Noise sd by hour for a volume curve 5x from trough to peak (noise ~ 1 / sqrt(volume)), mean
    square 1."""
    sd = (1 + 4 * ((1 + np.cos(2 * np.pi * (hours - 14) / 24)) / 2) ** 2) ** -0.5
    return sd / np.sqrt(np.mean(sd**2))


def test_phase_scale_finds_noise_by_hour_and_none_where_there_is_none():
    rng = np.random.default_rng(5)
    n, t = 20, 24 * 30
    true = _volume_noise(np.arange(t) % 24)
    late = slice(24 * 15, None)  # 14 days known
    g = phase_scale_factors(rng.normal(size=(n, t)) * true, 24, 14)
    assert np.median([np.corrcoef(row[late], true[late])[0, 1] for row in g]) > 0.9
    assert np.median(np.abs(np.log(g[:, late] / true[late]))) < 0.12
    # the same noise at every hour: (nearly) no profile, also when neighbouring readings move
    # together (AR(1), 0.8) or whole days sit above or below their level, which the spread of
    # the coefficients between days measures
    flat = phase_scale_factors(rng.normal(size=(n, t)), 24, 14)
    assert np.median(np.abs(flat[:, late] - 1)) < 0.04
    ar = np.zeros((n, t))
    innovations = rng.normal(size=(n, t))
    for k in range(1, t):  # the test's own AR(1) series, not the code under test
        ar[:, k] = 0.8 * ar[:, k - 1] + 0.6 * innovations[:, k]
    assert np.median(np.abs(phase_scale_factors(ar, 24, 14)[:, late] - 1)) < 0.04
    days = np.repeat(rng.normal(0.0, 0.7, (n, t // 24)), 24, axis=1)
    assert (
        np.median(np.abs(phase_scale_factors(rng.normal(size=(n, t)) + days, 24, 14)[:, late] - 1))
        < 0.04
    )


def test_phase_scale_pretest_keeps_constant_noise_series_on_one_scale():
    """With alpha (the default 1 %) a profile is used only where it stands out of its noise:
    constant noise gets none at almost every step, volume-driven noise at every step."""
    rng = np.random.default_rng(7)
    n, t = 20, 24 * 30
    late = slice(24 * 15, None)
    flat = phase_scale_factors(rng.normal(size=(n, t)), 24, 14, alpha=0.01)
    assert (flat[:, late] != 1.0).mean() < 0.01
    # without the test, James-Stein alone leaves a chance profile at most steps
    assert (phase_scale_factors(rng.normal(size=(n, t)), 24, 14)[:, late] != 1.0).mean() > 0.3
    true = _volume_noise(np.arange(t) % 24)
    g = phase_scale_factors(rng.normal(size=(n, t)) * true, 24, 14, alpha=0.01)
    assert (g[:, late] != 1.0).mean() > 0.99
    assert np.median(np.abs(np.log(g[:, late] / true[late]))) < 0.12


def test_phase_scale_is_causal_robust_to_a_spike_and_needs_three_cycles():
    rng = np.random.default_rng(6)
    z = rng.normal(size=(4, 24 * 30)) * _volume_noise(np.arange(24 * 30) % 24)
    full = phase_scale_factors(z, 24, 14)
    t = 24 * 20 + 7
    changed = z.copy()
    changed[:, t:] *= 5.0
    np.testing.assert_array_equal(
        phase_scale_factors(changed, 24, 14)[:, : t + 1], full[:, : t + 1]
    )
    # a wild reading counts as a 2.5-sigma one
    spiked = z.copy()
    spiked[:, 24 * 10 + 5] = 60.0
    assert np.abs(phase_scale_factors(spiked, 24, 14) - full).max() < 0.1
    # fewer than three cycles (three-quarters known) before the step: no profile yet
    assert (full[:, : 24 * 3] == 1.0).all() and (full[:, 24 * 5 :] != 1.0).all()
    # within 0.5-2, and a daily series' 7 phases allow up to 3 harmonics (2 asked)
    assert full.min() >= 0.5 and full.max() <= 2.0
    assert phase_scale_factors(z[:, :200], 7, 14).shape == (4, 200)
