"""Single detectors on panels (n_series, n_steps); each one causal and NaN-aware.

`score_panel` runs the statistical detectors for one kind of metric on many series at once
and returns per-point arrays (expected value, band, robust z, p-value, CUSUM alarms, the
seeds' trailing rules). Deciding what becomes an alert is the ensemble's job: a single
detector here only reports evidence.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from campaign_pipeline.detection.baselines import (
    nan_count,
    nan_mean_std,
    nan_quantiles,
    robust_level_scale,
    seasonal_factors,
    trailing_windows,
)
from campaign_pipeline.detection.settings import DetectionSettings

KINDS = ("count", "rate", "continuous", "log", "linear")


def count_pvalues(observed: np.ndarray, mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-sided (upper, lower) p-values of integer counts under Poisson or negative binomial.

    Negative binomial with the variance estimated from the trailing window when the counts
    are over-dispersed (var > mean), which real ad counts nearly always are; Poisson
    otherwise. Counts are rounded: a summed count is an integer up to float noise.
    """
    x = np.round(observed)
    mean = np.maximum(mean, 1e-9)
    over = var > mean * 1.0001
    with np.errstate(invalid="ignore", divide="ignore"):
        size = np.where(over, mean**2 / np.where(over, var - mean, 1.0), 1.0)
        prob = np.where(over, size / (size + mean), 0.5)
        up_nb = stats.nbinom.sf(x - 1, size, prob)
        lo_nb = stats.nbinom.cdf(x, size, prob)
        up_po = stats.poisson.sf(x - 1, mean)
        lo_po = stats.poisson.cdf(x, mean)
    upper = np.where(over, up_nb, up_po)
    lower = np.where(over, lo_nb, lo_po)
    return upper, lower


def two_sided(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    return np.minimum(1.0, 2.0 * np.minimum(upper, lower))


def cusum_alarms(z: np.ndarray, k: float, h: float, clip: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided tabular CUSUM on standardized residuals, reset after each alarm.

    Loops over steps (time is inherently sequential) while each step updates every series at
    once. A missing residual leaves the sums unchanged: an unknown day is no evidence.
    """
    n, t = z.shape
    zc = np.clip(z, -clip, clip)
    s_up = np.zeros(n)
    s_dn = np.zeros(n)
    alarm_up = np.zeros((n, t), bool)
    alarm_dn = np.zeros((n, t), bool)
    for j in range(t):
        col = zc[:, j]
        known = ~np.isnan(col)
        s_up = np.where(known, np.maximum(0.0, s_up + np.nan_to_num(col) - k), s_up)
        s_dn = np.where(known, np.maximum(0.0, s_dn - np.nan_to_num(col) - k), s_dn)
        up = s_up > h
        dn = s_dn > h
        alarm_up[:, j] = up
        alarm_dn[:, j] = dn
        s_up = np.where(up, 0.0, s_up)
        s_dn = np.where(dn, 0.0, s_dn)
    return alarm_up, alarm_dn


def _ratio_of_sums(numer_w: np.ndarray, denom_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    both = ~np.isnan(numer_w) & ~np.isnan(denom_w)
    num = np.where(both, numer_w, 0.0).sum(axis=-1)
    den = np.where(both, denom_w, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan), den


def score_panel(
    values: np.ndarray,
    *,
    kind: str,
    period: int | None,
    window: int,
    min_history: int,
    settings: DetectionSettings,
    numer: np.ndarray | None = None,
    denom: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Evidence for every point of a panel, each point from its trailing window only.

    kind: "count" (Poisson/NB and a robust z on log(1 + x)), "rate" (values = numer/denom;
    binomial-type test on the counts), "continuous" (robust z on log(1 + x): non-negative,
    zeros allowed, e.g. spend), "log" (robust z on log x, for positive costs), "linear"
    (robust z on the raw scale, for series that can be negative). Returns arrays of shape (n, T): judged, expected,
    lower, upper, z, p, rel_effect, cusum_up, cusum_dn, seeds_z, seeds_iqr.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    s = settings
    x = values.astype(float)
    n_cycles = max(1, window // period) if period else 1

    if kind == "rate":
        assert numer is not None and denom is not None
        p0, den_sum = _ratio_of_sums(trailing_windows(numer, window), trailing_windows(denom, window))
        rate_w = trailing_windows(x, window)
        cnt = nan_count(rate_w)
        _, rate_scale = robust_level_scale(rate_w)
        den_w = trailing_windows(denom, window)
        pos = np.where(den_w > 0, den_w, np.nan)
        n_pos = nan_count(pos)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_den = np.where(n_pos > 0, np.nansum(pos, axis=-1) / np.maximum(n_pos, 1), np.nan)
        # keep p0 off 0 and 1 so a first conversion after zero is testable
        floor = 0.5 / np.maximum(den_sum, 1.0)
        p0 = np.clip(p0, floor, 1 - floor)
        d = denom
        judged = (cnt >= min_history) & ~np.isnan(x) & (d > 0) & ~np.isnan(p0) & ~np.isnan(numer)
        # beta-binomial over-dispersion rho from the robust spread of trailing daily rates
        with np.errstate(invalid="ignore", divide="ignore"):
            binom_var_rate = p0 * (1 - p0) / mean_den
            rho = (rate_scale**2 / binom_var_rate - 1.0) / np.maximum(mean_den - 1.0, 1.0)
        rho = np.clip(np.nan_to_num(rho, nan=0.0), 0.0, 0.5)
        # rate scale floor (relative) so a perfectly flat history is not infinitely sure
        rho = np.maximum(rho, (s.relative_scale_floor**2) * p0 / np.maximum(1 - p0, 1e-9))
        mean_cnt = d * p0
        var_cnt = d * p0 * (1 - p0) * (1.0 + (d - 1.0) * rho)
        # count test on the numerator given the day's denominator (NB matched to the
        # beta-binomial mean and variance: the rate's counts, not the ratio, carry the power)
        up, lo = count_pvalues(np.nan_to_num(numer), mean_cnt, np.maximum(var_cnt, 1e-12))
        p = two_sided(up, lo)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (numer - mean_cnt) / np.sqrt(var_cnt)
            sd_rate = np.sqrt(var_cnt) / d
        p = np.maximum(p, 2.0 * stats.t.sf(np.abs(np.nan_to_num(z)), np.maximum(cnt - 1, 1)))
        expected = p0
        band = s.min_robust_z * sd_rate
        lower, upper = np.maximum(p0 - band, 0.0), np.minimum(p0 + band, 1.0)
        base_w = rate_w
    else:
        f = seasonal_factors(x, period, n_cycles, s.seasonal_shrinkage) if (s.use_seasonality and period) else np.ones_like(x)
        y = x / f
        if kind == "linear":  # series that can be negative: raw scale
            u = y
        else:
            # multiplicative noise (ad delivery scales) is symmetric on the log scale; offset 1
            # keeps zero counts and zero-spend days finite, costs ("log") are strictly positive
            offset = 0.0 if kind == "log" else 1.0
            with np.errstate(divide="ignore", invalid="ignore"):
                u = np.log(np.where(y + offset > 0, y + offset, np.where(np.isnan(y), np.nan, 1e-12)))
        u_w = trailing_windows(u, window)
        cnt = nan_count(u_w)
        level, scale = robust_level_scale(u_w)
        if kind == "linear":
            scale = np.maximum(scale, s.relative_scale_floor * np.abs(level))
            scale = np.maximum(scale, 1e-9)
            back = lambda v: v  # noqa: E731
        else:
            scale = np.maximum(scale, np.log1p(s.relative_scale_floor))
            if kind == "count":  # Poisson floor: sd(log X) ~ 1 / sqrt(mu)
                scale = np.maximum(scale, 1.0 / np.sqrt(np.maximum(np.exp(level), 1.0)))
            back = lambda v: np.maximum(np.exp(v) - offset, 0.0)  # noqa: E731
        with np.errstate(invalid="ignore"):
            z = (u - level) / scale
        expected = back(level) * f
        lower = back(level - s.min_robust_z * scale) * f
        upper = back(level + s.min_robust_z * scale) * f
        judged = (cnt >= min_history) & ~np.isnan(x) & ~np.isnan(level)
        df = np.maximum(cnt - 1, 1)
        # t rather than normal: the scale itself is estimated from ~window points
        p = 2.0 * stats.t.sf(np.abs(np.nan_to_num(z)), df)
        if kind == "count" and s.use_count_tests:
            # NB on the raw counts with a winsorized trailing mean (the median of 0,0,1,0,2 is
            # 0, which would make any lead "infinitely" surprising) and the trailing variance
            x_w = trailing_windows(y, window)
            med, raw_sd = robust_level_scale(x_w)
            sig = np.maximum(np.maximum(raw_sd, np.sqrt(np.maximum(med, 0.0))), 1.0)[..., None]
            clipped = np.clip(x_w, med[..., None] - 4 * sig, med[..., None] + 4 * sig)
            with np.errstate(invalid="ignore"):
                mean = np.where(cnt > 0, np.nansum(clipped, axis=-1) / np.maximum(cnt, 1), np.nan) * f
            var = np.maximum((raw_sd * f) ** 2, mean)
            up, lo = count_pvalues(np.nan_to_num(x), mean, var)
            p_count = two_sided(up, lo)
            small = np.maximum(mean, np.nan_to_num(x)) < s.min_expected_count
            # both views must find it surprising: the larger p of the two is used
            p = np.where(small, 1.0, np.maximum(p, p_count))
            expected = np.where(np.isnan(mean), expected, mean)
        if kind == "log" and s.use_count_tests and numer is not None and denom is not None:
            # cost per event: at the expected cost the day's spend buys spend/expected events;
            # a few events short of a small expectation is noise, not a cost spike (Poisson)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean_events = np.where(expected > 0, numer / expected, np.nan)
            up, lo = count_pvalues(np.nan_to_num(denom), np.nan_to_num(mean_events, nan=1e-9), np.nan_to_num(mean_events, nan=1e-9))
            small = np.maximum(np.nan_to_num(mean_events), np.nan_to_num(denom)) < s.min_expected_count
            p = np.where(small, 1.0, np.maximum(p, two_sided(up, lo)))
        base_w = trailing_windows(x, window)

    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(expected > 0, x / expected - 1.0, np.where(x > 0, np.inf, 0.0))
    z = np.where(judged, z, np.nan)
    p = np.where(judged, p, np.nan)

    out = dict(judged=judged, expected=expected, lower=lower, upper=upper, z=z, p=p, rel_effect=rel)
    if s.use_cusum:
        out["cusum_up"], out["cusum_dn"] = cusum_alarms(z, s.cusum_k, s.cusum_h, s.cusum_clip)
    else:
        out["cusum_up"] = out["cusum_dn"] = np.zeros_like(judged)
    # the seeds' rules, applied to the trailing window instead of the whole series
    mean, std = nan_mean_std(base_w)
    q1, q3 = nan_quantiles(base_w, (0.25, 0.75))
    iqr = q3 - q1
    with np.errstate(invalid="ignore", divide="ignore"):
        out["seeds_z"] = judged & (std > 0) & (np.abs(x - mean) / std > 3.0)
    out["seeds_iqr"] = judged & ((x < q1 - 1.5 * iqr) | (x > q3 + 1.5 * iqr))
    return out
