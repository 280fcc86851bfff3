"""Single detectors on panels (n_series, n_steps); each one causal and NaN-aware.

`score_panel` runs the statistical detectors for one kind of metric on many series at once
and returns per-point arrays (expected value, band, robust z, p-value, CUSUM alarms, the
seeds' trailing rules). Deciding what becomes an alert is the ensemble's job: a single
detector here only reports evidence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from scipy import special, stats

from campaign_pipeline.detection.baselines import (
    _WINSOR_CONSISTENCY,
    MAD_TO_SIGMA,
    WINSOR_C,
    PhaseProfile,
    lag1_autocorrelation,
    mean_variance_factor,
    nan_count,
    nan_mean_std,
    nan_median,
    nan_quantiles,
    phase_scale_factors,
    robust_level_scale,
    seasonal_factors,
    seasonal_profile_js,
    trailing_windows,
    weekday_profile,
)
from campaign_pipeline.detection.settings import DetectionSettings

KINDS = ("count", "rate", "continuous", "log", "linear")


def count_pvalues(
    observed: np.ndarray, mean: np.ndarray, var: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One-sided (upper, lower) p-values of integer counts under Poisson or negative binomial.

    Negative binomial with the variance estimated from the trailing window when the counts
    are over-dispersed (var > mean), which real ad counts nearly always are; Poisson
    otherwise. Counts are rounded: a summed count is an integer up to float noise.
    """
    x, mean, var = np.broadcast_arrays(np.round(observed), np.maximum(mean, 1e-9), var)
    over = var > mean * 1.0001
    # each point under its own distribution only: the other one's value would be discarded
    upper, lower = np.empty(x.shape), np.empty(x.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        x_nb, m_nb = x[over], mean[over]
        size = m_nb**2 / (var[over] - m_nb)
        prob = size / (size + m_nb)
        upper[over] = stats.nbinom.sf(x_nb - 1, size, prob)
        lower[over] = stats.nbinom.cdf(x_nb, size, prob)
        poisson = ~over
        x_po, m_po = x[poisson], mean[poisson]
        upper[poisson] = stats.poisson.sf(x_po - 1, m_po)
        lower[poisson] = stats.poisson.cdf(x_po, m_po)
    return upper, lower


_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite.hermgauss(20)


def poisson_lognormal_pvalues(
    observed: np.ndarray, mean: np.ndarray, sigma: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One-sided (upper, lower) p-values of counts whose Poisson mean carries day noise.

    X ~ Poisson(mean * exp(e)), e ~ N(-sigma^2 / 2, sigma^2): the day's rate is the trailing
    rate times a multiplicative shock (mean-preserving), as ad rates behave (a 3x drop and a
    3x rise are equally unusual). Integrated over e by 20-point Gauss-Hermite quadrature,
    vectorized over every point.
    """
    x = np.round(observed)[..., None]
    sig = np.maximum(np.nan_to_num(sigma), 0.0)[..., None]
    mu = np.maximum(mean, 1e-9)[..., None] * np.exp(np.sqrt(2.0) * sig * _GH_NODES - sig**2 / 2)
    w = _GH_WEIGHTS / np.sqrt(np.pi)
    upper = (stats.poisson.sf(x - 1, mu) * w).sum(axis=-1)
    lower = (stats.poisson.cdf(x, mu) * w).sum(axis=-1)
    return np.minimum(upper, 1.0), np.minimum(lower, 1.0)


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


def _winsorized_sigma_of_t(df: float) -> float:
    """Population value of `robust_level_scale`'s sigma for a unit-scale student t with `df`."""
    dist = stats.t(df)
    b = WINSOR_C * MAD_TO_SIGMA * dist.ppf(0.75)
    inner = dist.expect(lambda v: v * v, lb=-b, ub=b)
    return float(np.sqrt((inner + b * b * 2.0 * dist.sf(b)) / _WINSOR_CONSISTENCY))


# Tail grid: degrees of freedom from very heavy (2) to normal, with the share of robust z
# beyond TAIL_Z each implies (z = residual / winsorized sigma, as the detectors compute it).
TAIL_Z = 3.0
_TAIL_DF = np.array([2.0, 2.5, 3.0, 4.0, 5.0, 7.0, 10.0, 15.0, 30.0, 1000.0])
# `_winsorized_sigma_of_t` of each df, to 6 decimals (numerical integration costs 0.2 s at
# import; test_baselines.py recomputes them)
_TAIL_SIGMA = np.array(
    [
        1.451083,
        1.354935,
        1.292358,
        1.215855,
        1.170912,
        1.120507,
        1.083448,
        1.055121,
        1.027283,
        1.000810,
    ]
)
_TAIL_SHARE = 2.0 * stats.t.sf(TAIL_Z * _TAIL_SIGMA, _TAIL_DF)


def tail_calibrated_pvalues(
    z: np.ndarray,
    judged: np.ndarray,
    prior_points: float,
    prior_df: float = np.inf,
    scope: slice = slice(None),
) -> np.ndarray:
    """Two-sided p-values of robust z under the tails each series has shown so far.

    Ad costs have heavier tails than a normal: a series whose past residuals went beyond 3
    robust sd five times as often as a normal would is given a student t with the degrees of
    freedom that match that share (interpolated on a grid), and its |z| of 5 is judged under
    that t. The share counts the series' earlier judged points only (causal), with
    `prior_points` pseudo-points at the normal share, so a short or calm history keeps
    normal tails. Used as a lower bound on a point's p-value (never makes it smaller).
    Returns the p-values of the steps in ``scope`` (the tails are learned from every step).
    """
    known = judged & ~np.isnan(z)
    beyond = known & (np.abs(np.nan_to_num(z)) > TAIL_Z)
    n_past = np.cumsum(known, axis=1) - known
    e_past = np.cumsum(beyond, axis=1) - beyond
    prior_share = (
        _TAIL_SHARE[-1]
        if not np.isfinite(prior_df)
        else float(np.interp(prior_df, _TAIL_DF, _TAIL_SHARE))
    )
    share = (e_past + prior_points * prior_share) / (n_past + prior_points)
    # the share falls as df grows: interpolate on the reversed (increasing) grid
    share = share[:, scope]
    df = np.interp(share, _TAIL_SHARE[::-1], _TAIL_DF[::-1])
    sigma = np.interp(share, _TAIL_SHARE[::-1], _TAIL_SIGMA[::-1])
    return 2.0 * stats.t.sf(np.abs(np.nan_to_num(z[:, scope])) * sigma, df)


def profile_unknown(week: PhaseProfile, s: DetectionSettings) -> np.ndarray:
    """The steps of a sub-daily series whose day-of-week factor cannot be known yet.

    A day of the week is learned from earlier days of that weekday, and its James-Stein weight
    needs two of each to tell a working week from wander (`baselines.weekday_factors`): before
    `weekday_min_weeks` of them are known the factor is 1 and a quiet weekend is judged against
    weekdays, a drop no causal detector can know to be normal. Such steps are not judged, as
    a daily series waits `min_history_days` (two of each weekday) for its weekday profile. A
    torn weekday (`baselines.shrunk_phase_profile`) is unknown too.
    """
    need = min(s.weekday_min_weeks, s.weekday_seasonal_weeks)
    return (week.known < need) | week.torn


def scale_df(cnt: np.ndarray, s: DetectionSettings) -> np.ndarray:
    """Degrees of freedom of the t reference for a robust z whose scale came from ``cnt`` points.

    The baseline scale (winsorized SD, see `baselines.robust_level_scale`) estimates sigma with
    about `scale_df_share` of the efficiency of a plain standard deviation, so its sampling
    error is that of an SD from fewer points.
    """
    return np.maximum(s.scale_df_share * (cnt - 1), 1.0)


def shift_columns(a: np.ndarray, k: int) -> np.ndarray:
    """a[:, t - k] at column t (NaN / False before the start): move a statistic k steps later."""
    if k <= 0:
        return a
    out = np.full(a.shape, np.nan) if a.dtype.kind == "f" else np.zeros(a.shape, a.dtype)
    if k < a.shape[1]:
        out[:, k:] = a[:, :-k]
    return out


def recent_windows(values: np.ndarray, recent: int) -> np.ndarray:
    """View of shape (n, T, recent): [i, t, :] = values[i, t-recent+1 : t+1] (the day included)."""
    n, t = values.shape
    padded = np.concatenate([np.full((n, recent - 1), np.nan), values], axis=1)
    return sliding_window_view(padded, recent, axis=1)[:, :t, :]


def _shift_consistent(
    day_z: np.ndarray, window_z: np.ndarray, n_known: np.ndarray, recent: int, s: DetectionSettings
) -> np.ndarray:
    """Whether the recent days agree with the direction of the window's shift.

    The last `shift_confirm_days` days and the median recent day must all lie at least
    `shift_min_day_z` on the side of the shift, and enough days must be known. A short event
    (a 3-day outage) that sits inside the recent window moves its mean for `recent` days; it
    does not make the days after it unusual, so it cannot keep a shift alarm alive after it ended.
    """
    med = nan_median(day_z)
    sign = np.sign(np.nan_to_num(window_z))
    ok = n_known >= max(2, int(np.ceil(s.shift_min_known_share * recent)))
    ok &= sign * np.nan_to_num(med) >= s.shift_min_day_z
    for j in range(
        1, min(s.shift_confirm_days, recent) + 1
    ):  # the last few days, a handful of lags
        ok &= sign * np.nan_to_num(day_z[..., -j]) >= s.shift_min_day_z
    return ok


def _count_vst_residual(
    y, level, scale, f, window, s: DetectionSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A count's residual on its variance-stabilizing scale, g(x) = (2/sd) asinh(sd sqrt(x)),
    with the trailing window's robust scale there and that scale's Poisson floor (z is their
    ratio).

    Counts carry Poisson noise and multiplicative day noise (variance mu + sd^2 mu^2), which
    is what g stabilizes: about 2 sqrt(x) (Anscombe) where Poisson noise dominates, about
    log(x) / sd where day noise does. log(1 + x) alone squeezes upward jumps of small counts
    (4 -> 28 conversions read as z ~ 2.7). sd is the day noise of each day's trailing
    window (its log(1 + x) spread minus the Poisson part); the window and the day are
    transformed with that same sd, so the comparison stays causal and like with like.
    """
    floor2 = np.log1p(s.relative_scale_floor) ** 2
    with np.errstate(invalid="ignore", over="ignore"):
        sd2 = np.maximum(scale**2 - 1.0 / np.exp(level), floor2)
    sd = np.sqrt(np.nan_to_num(sd2, nan=floor2))

    u_w = vst(trailing_windows(y, window), sd[..., None])
    lvl, scl = robust_level_scale(u_w)
    # Poisson floor: 2 sqrt(X) has sd ~1, and y = x / f has its variance divided by f
    scl_floor = 1.0 / np.sqrt(np.maximum(f, 1e-9))
    scl = np.maximum(scl, scl_floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        return vst(y, sd) - lvl, scl, scl_floor


def vst(v, sd):
    """Variance-stabilizing transform of a count with variance mu + sd^2 mu^2 (unit variance):
    (2 / sd) asinh(sd sqrt(v)), and 2 sqrt(v) (Anscombe) where there is no day noise."""
    root = np.sqrt(np.maximum(v, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sd > 1e-6, (2.0 / sd) * np.arcsinh(sd * root), 2.0 * root)


def rate_day_noise_log_spread(
    numer_w: np.ndarray, denom_w: np.ndarray, p0: np.ndarray, floor2: float
) -> np.ndarray:
    """Log-variance of a rate's day noise as the robust spread of the window's daily log rates
    (0.5 continuity correction keeps a zero-count day finite) minus their average Poisson part:
    the pilot that `rate_day_noise` winsorizes with, and the estimate itself with
    `rate_noise_moments` off."""
    with np.errstate(invalid="ignore", divide="ignore"):
        known_denom = np.where(denom_w > 0, denom_w, np.nan)
        _, log_scale = robust_level_scale(np.log((numer_w + 0.5) / (known_denom + 0.5)))
        inv_expected = 1.0 / (known_denom * p0[..., None] + 0.5)
        poisson_part = np.nansum(inv_expected, axis=-1) / nan_count(inv_expected)
    return np.nan_to_num(np.maximum(log_scale**2 - poisson_part, floor2), nan=floor2)


def rate_day_noise(
    numer_w: np.ndarray,
    denom_w: np.ndarray,
    p0: np.ndarray,
    pilot_sigma2: np.ndarray,
    floor2: float,
) -> np.ndarray:
    """Log-variance of a rate's day noise, by moments on the counts of each trailing window.

    A day's count is Poisson(m e^eps) with m = denominator x window rate, so its variance is
    m + kappa m^2 with kappa = e^(sigma^2) - 1, and (n - m)^2 - m estimates kappa m^2 without
    bias at any count. The log-rate spread minus its Poisson part (the pilot) is a difference
    of two noisy numbers where counts are small, and the log of a small count is skewed, so
    it overstates the day noise there. Deviations are winsorized at
    `WINSOR_C` pilot standard deviations, as the robust scale is, so an anomalous day inside
    the baseline counts as a 2.5-sigma day; the window rate was fitted to the same days, which
    the factor k / (k - 1) undoes.
    """
    m = denom_w * p0[..., None]
    known = ~np.isnan(numer_w) & ~np.isnan(denom_w) & (denom_w > 0)
    with np.errstate(invalid="ignore", over="ignore"):
        sd = np.sqrt(m + m**2 * np.expm1(pilot_sigma2)[..., None])
        bound = WINSOR_C * sd
        dev = np.clip(numer_w - m, -bound, bound)
        k = known.sum(axis=-1)
        excess = (
            np.where(known, dev**2 / _WINSOR_CONSISTENCY - m, 0.0).sum(axis=-1)
            * k
            / np.maximum(k - 1, 1)
        )
        kappa = excess / np.where(known, m**2, 0.0).sum(axis=-1)
    return np.nan_to_num(np.maximum(np.log1p(np.maximum(kappa, 0.0)), floor2), nan=floor2)


# Cap on the degrees of freedom of a pooled day-noise estimate: `sum_pvalues` integrates over
# chi2(df) with weights that hold gamma(df / 2), which overflows past df ~ 340. (At z = 4 a t
# with 200 df gives 1.4x the normal tail, with 24 df, one campaign's 28 days, 8x.)
MAX_NOISE_DF = 200.0


def trigamma_inverse(x: np.ndarray, segments: np.ndarray | None = None) -> np.ndarray:
    """y with trigamma(y) = x (x > 0), by Newton's method from 0.5 + 1/x as in limma.

    The iterations stop when every element has converged. With ``segments`` (a label per
    element) each segment stops on its own, after exactly the steps it would take alone: the
    panels of several independent calls stacked into one (`ensemble.detect_by_week`) then get
    the values each call would have got.
    """
    x = np.asarray(x, float)
    y = 0.5 + 1.0 / x
    if segments is None:
        for _ in range(50):  # converges in a handful of steps; the cap guards against NaN input
            tri = special.polygamma(1, y)
            dif = tri * (1.0 - tri / x) / special.polygamma(2, y)
            y = y + dif
            if np.nanmax(-dif / y, initial=0.0) < 1e-8:
                break
        return y
    codes, labels = pd.factorize(np.asarray(segments).ravel())
    codes = codes.reshape(x.shape)
    active = np.ones(len(labels), bool)
    for _ in range(50):
        rows = active[codes]
        if not rows.any():
            break
        ya, xa = y[rows], x[rows]
        tri = special.polygamma(1, ya)
        dif = tri * (1.0 - tri / xa) / special.polygamma(2, ya)
        ya = ya + dif
        y[rows] = ya
        worst = np.zeros(len(labels))
        np.fmax.at(worst, codes[rows], -dif / ya)
        active &= ~(worst < 1e-8)
    return y


def noise_information_df(m_w: np.ndarray, known: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """How many degrees of freedom the moment estimate of a rate's day noise is worth.

    kappa_hat = sum((n - m)^2 - m) / sum(m^2) has variance about 2 sum(V^2) / sum(m^2)^2 with
    V = m + kappa m^2 (a count's variance), and a variance estimate from d degrees of freedom
    has relative variance 2 / d, so d = kappa^2 sum(m^2)^2 / sum(V^2). Where day noise
    dominates (large counts) that is about the number of days; where Poisson noise does (a few
    conversions a day) the window says little about the day noise, and d falls toward 0.
    """
    m = np.where(known, m_w, 0.0)
    var = m + kappa[..., None] * m**2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(kappa**2 * (m**2).sum(axis=-1) ** 2 / (var**2).sum(axis=-1))


def _group_blocks(groups: np.ndarray) -> tuple[int, int]:
    """(number of groups, rows per group) of rows stacked as equal, contiguous blocks, as
    `ensemble.evidence` stacks one block of series per metric; the moderation works on the
    blocks reshaped to (groups, series, ...), with no loop over the metrics."""
    groups = np.asarray(groups)
    labels = np.unique(groups)
    k = len(labels)
    n = len(groups) // max(k, 1)
    if k == 0 or k * n != len(groups) or not np.array_equal(groups, np.repeat(labels, n)):
        raise ValueError(
            "pool groups must be equal, contiguous blocks of rows (one per stacked metric)"
        )
    return k, n


def moderate_day_noise(
    sigma2: np.ndarray,
    df: np.ndarray,
    m_w: np.ndarray,
    known_w: np.ndarray,
    valid: np.ndarray,
    groups: np.ndarray,
    s: DetectionSettings,
    segments: np.ndarray | None = None,
    information=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Empirical Bayes day noise of a rate: each series' estimate pulled toward its group's.

    `moderate_variances` with d_i the information of the moment estimate
    (`noise_information_df`, at the group's median noise), at most `df`: about the number of
    days where day noise dominates, near 0 at a few conversions a day.

    The prior is fitted only on estimates worth `noise_prior_min_df` degrees of freedom: below
    that the estimate sits on its floor often and its log is no log chi2.
    `information(kappa)`, when given, computes `noise_information_df` itself (from windows it
    builds a block of series at a time) instead of from `m_w` and `known_w`.
    """
    k, n = _group_blocks(groups)
    by_group = np.where(valid, sigma2, np.nan).reshape(k, n, *sigma2.shape[1:])
    median_noise = nan_median(np.moveaxis(by_group, 1, -1))  # (groups, steps)
    kappa = np.repeat(np.expm1(median_noise), n, axis=0)
    info = noise_information_df(m_w, known_w, kappa) if information is None else information(kappa)
    own_d = np.where(valid, np.clip(info, 0.5, df), 0.0)
    return moderate_variances(
        sigma2, df, own_d, valid, valid & (own_d >= s.noise_prior_min_df), groups, s, segments
    )


def moderate_variances(
    sigma2: np.ndarray,
    df: np.ndarray,
    own_d: np.ndarray,
    valid: np.ndarray,
    fit: np.ndarray,
    groups: np.ndarray,
    s: DetectionSettings,
    segments: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Empirical Bayes variances: each series' estimate pulled toward its group's.

    The moderated variance of limma (Smyth 2004): each step's estimates of the group's series
    (one metric of all campaigns) are taken as sigma_i^2 chi2(d_i) / d_i around true values
    that vary across series as s0^2 / (chi2(d0) / d0). s0^2 and d0 come from the mean and
    variance of the log estimates marked `fit` (minus the variance the d_i alone explain); the
    posterior of every `valid` estimate is (d0 s0^2 + d_i s_i^2) / (d0 + d_i) with d0 + d_i
    degrees of freedom (at most `MAX_NOISE_DF`). When the series' noise differs little, d0 is
    large and each t tail narrows toward the normal; when it differs a lot, d0 is small and
    each keeps its own estimate. A step with fewer than `noise_pool_min_series` estimates to
    fit keeps every series' own estimate and `df`. Causal: the estimates of step t come from
    each series' trailing window. ``segments`` (a label per row, constant within a group)
    marks groups that come from independent stacked calls (`trigamma_inverse`).
    """
    k, n = _group_blocks(groups)
    shape = sigma2.shape

    def blocks(a):
        return np.asarray(a).reshape(k, n, *shape[1:])

    est, d_i, v = blocks(sigma2), blocks(own_d), blocks(valid)
    fit_g = blocks(fit) & v
    n_fit = fit_g.sum(axis=1)  # (groups, steps)
    dp = np.where(fit_g, d_i, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        e = np.log(np.where(fit_g, est, np.nan)) - special.digamma(dp / 2) + np.log(dp / 2)
        e_mean = np.nansum(e, axis=1) / n_fit
        e_var = (
            np.nansum((e - e_mean[:, None]) ** 2, axis=1) / np.maximum(n_fit - 1, 1)
            - np.nansum(special.polygamma(1, dp / 2), axis=1) / n_fit
        )
    pooled = n_fit >= s.noise_pool_min_series
    d0 = np.full(e_var.shape, np.inf)
    spread = pooled & (e_var > 0)
    if segments is None:
        d0[spread] = 2.0 * trigamma_inverse(e_var[spread])
    else:
        of_group = np.asarray(segments).reshape(k, n)[:, 0]
        d0[spread] = 2.0 * trigamma_inverse(
            e_var[spread], np.broadcast_to(of_group[:, None], e_var.shape)[spread]
        )
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        s0_sq = np.where(
            np.isfinite(d0),
            np.exp(e_mean + special.digamma(d0 / 2) - np.log(d0 / 2)),
            np.exp(e_mean),
        )
        d0_b, s0_b = d0[:, None], s0_sq[:, None]
        mod = np.where(np.isfinite(d0_b), (d0_b * s0_b + d_i * est) / (d0_b + d_i), s0_b)
    use = pooled[:, None] & v
    post = np.where(use, mod, est).reshape(shape)
    post_df = (
        np.where(use, np.minimum(d_i + d0_b, MAX_NOISE_DF), blocks(df)).reshape(shape).astype(float)
    )
    return post, post_df


def moderate_scales(
    scale: np.ndarray,
    cnt: np.ndarray,
    valid: np.ndarray,
    floor: np.ndarray,
    groups: np.ndarray,
    s: DetectionSettings,
    segments: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each series' baseline scale moderated across series, with its t degrees of freedom.

    `moderate_variances` on the squared scales, each worth `scale_df(cnt)` degrees of freedom.
    A scale on its floor (`floor`: the relative or Poisson floor) says only that the noise is
    below it, so it does not shape the prior, and no posterior goes below its floor. Series
    that are not `valid` keep their scale and `scale_df(cnt)`.
    """
    df = scale_df(cnt, s)
    ok = valid & np.isfinite(scale) & (scale > 0)
    sigma2 = np.where(ok, scale, np.nan) ** 2
    fit = ok & (df >= s.noise_prior_min_df) & (scale > floor * (1 + 1e-9))
    post, post_df = moderate_variances(
        sigma2, df, np.where(ok, df, 0.0), ok, fit, groups, s, segments
    )
    with np.errstate(invalid="ignore"):
        return np.where(ok, np.maximum(np.sqrt(post), floor), scale), np.where(ok, post_df, df)


def _by_rows(compute, n_rows: int, chunk_rows: int | None) -> tuple[np.ndarray, ...]:
    """``compute(rows)`` (a tuple of arrays with a row per series) for blocks of rows, joined."""
    if not chunk_rows or chunk_rows >= n_rows:
        return compute(slice(None))
    parts = [compute(slice(lo, lo + chunk_rows)) for lo in range(0, n_rows, chunk_rows)]
    return tuple(np.concatenate(arrays, axis=0) for arrays in zip(*parts, strict=True))


def _rate_baseline(numer, denom, rate, window: int, floor2: float, s: DetectionSettings):
    """A rate's trailing baseline: the ratio of sums p0 (kept off 0 and 1 so that a first
    conversion after zero is testable), its denominator's sum, the known days and the day
    noise's log-variance (`rate_day_noise`)."""
    numer_w, denom_w = trailing_windows(numer, window), trailing_windows(denom, window)
    p0, den_sum = _ratio_of_sums(numer_w, denom_w)
    cnt = nan_count(trailing_windows(rate, window))
    floor = 0.5 / np.maximum(den_sum, 1.0)
    p0 = np.clip(p0, floor, 1 - floor)
    sigma2 = rate_day_noise_log_spread(numer_w, denom_w, p0, floor2)
    if s.rate_noise_moments:
        sigma2 = rate_day_noise(numer_w, denom_w, p0, sigma2, floor2)
    return p0, den_sum, cnt, sigma2


def _rate_information(numer, denom, p0, kappa, window: int) -> np.ndarray:
    """`noise_information_df` of a rate's trailing windows."""
    numer_w, denom_w = trailing_windows(numer, window), trailing_windows(denom, window)
    known_w = ~np.isnan(numer_w) & ~np.isnan(denom_w) & (denom_w > 0)
    return noise_information_df(denom_w * p0[..., None], known_w, kappa)


def _ratio_of_sums(numer_w: np.ndarray, denom_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    both = ~np.isnan(numer_w) & ~np.isnan(denom_w)
    num = np.where(both, numer_w, 0.0).sum(axis=-1)
    den = np.where(both, denom_w, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan), den


def rate_noise(
    values: np.ndarray,
    numer: np.ndarray,
    denom: np.ndarray,
    *,
    window: int,
    min_history: int,
    settings: DetectionSettings,
    pool_groups: np.ndarray | None = None,
    pool_segments: np.ndarray | None = None,
    chunk_rows: int | None = None,
) -> tuple[np.ndarray, ...]:
    """A rate's trailing baseline and day noise at every step: (p0, den_sum, cnt, sigma2,
    noise_df), the day noise pooled within `pool_groups` when the settings say so.

    The only part of scoring a rate that looks across series: with it computed for a whole
    panel, `score_panel` scores the panel's series a block at a time (its ``noise``) and gives
    each the numbers of the whole panel scored at once.
    """
    s = settings
    x = values.astype(float)
    # Day noise of a rate is multiplicative: its log varies by sigma_day on top of the
    # Poisson noise of its count (variance ~ 1 / expected count on the log scale).
    floor2 = np.log1p(s.relative_scale_floor) ** 2
    p0, den_sum, cnt, sigma2 = _by_rows(
        lambda r: _rate_baseline(numer[r], denom[r], x[r], window, floor2, s),
        len(x),
        chunk_rows,
    )
    noise_df = scale_df(cnt, s)
    if s.rate_noise_pooling and pool_groups is not None:

        def information(kappa):
            return _by_rows(
                lambda r: (_rate_information(numer[r], denom[r], p0[r], kappa[r], window),),
                len(x),
                chunk_rows,
            )[0]

        sigma2, noise_df = moderate_day_noise(
            sigma2,
            noise_df,
            None,
            None,
            cnt >= min_history,
            pool_groups,
            s,
            pool_segments,
            information=information,
        )
    return p0, den_sum, cnt, sigma2, noise_df


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
    steps_per_day: int | None = None,
    pool_groups: np.ndarray | None = None,
    pool_segments: np.ndarray | None = None,
    pool_scales: bool = False,
    phase_scale: bool = False,
    scope: slice | None = None,
    chunk_rows: int | None = None,
    noise: tuple[np.ndarray, ...] | None = None,
) -> dict[str, np.ndarray]:
    """Evidence for every point of a panel, each point from its trailing window only.

    kind: "count" (Poisson/NB and a robust z on its variance-stabilizing scale), "rate" (values =
    numer/denom;
    Poisson-lognormal test on the counts), "continuous" (robust z on log(1 + x): non-negative,
    zeros allowed, e.g. spend), "log" (robust z on log x, for positive costs), "linear"
    (robust z on the raw scale, for series that can be negative). Returns arrays of shape (n, T):
    judged, expected,
    lower, upper, z, p, rel_effect, cusum_up, cusum_dn, seeds_z, seeds_iqr.

    scope: the steps (a slice of the columns) whose p-values and window-shift tests are
    wanted; elsewhere those are NaN (not judged). Every other output, and everything an
    in-scope value depends on (the CUSUM state, each series' tails, the baselines), is
    computed at every step, so the in-scope values are those of a panel scored whole. The
    tests are most of the cost, and a weekly run decides only its own week. The seeds' rules
    are evaluated only when the settings switch them on (all False otherwise).
    chunk_rows: a rate's trailing windows are built for this many series at a time (the
    result does not depend on it), so a large panel does not hold them all at once.
    noise: a rate's `rate_noise` of these series, already computed (pooled over a larger
    panel); without it the rate's noise is computed here, pooled over this panel's groups.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    s = settings
    x = values.astype(float)
    cols = slice(None) if scope is None else scope
    # the steps the window-shift tests of the steps in scope read (`_shift_steps`)
    shift_steps = _shift_steps(cols, x.shape[1], s) if s.use_window_shift else None
    n_cycles = max(1, window // period) if period else 1

    if kind == "rate":
        assert numer is not None and denom is not None
        if noise is None:
            noise = rate_noise(
                x,
                numer,
                denom,
                window=window,
                min_history=min_history,
                settings=s,
                pool_groups=pool_groups,
                pool_segments=pool_segments,
                chunk_rows=chunk_rows,
            )
        p0, den_sum, cnt, sigma2, noise_df = noise
        d = denom
        judged = (cnt >= min_history) & ~np.isnan(x) & (d > 0) & ~np.isnan(p0) & ~np.isnan(numer)
        mean_cnt = d * p0
        up, lo = poisson_lognormal_pvalues(
            np.nan_to_num(numer[:, cols]), mean_cnt[:, cols], np.sqrt(sigma2[:, cols])
        )
        p = np.full(x.shape, np.nan)
        p[:, cols] = two_sided(up, lo)
        with np.errstate(invalid="ignore", divide="ignore"):
            z_sd = np.sqrt(sigma2 + 1.0 / (mean_cnt + 0.5))
            z = (np.log((numer + 0.5) / (d + 0.5)) - np.log(p0)) / z_sd
        # both views must find it surprising: the count test with day noise, and the t tail
        # of the log-rate z (the day-noise spread is itself estimated from ~window days)
        z_df = noise_df
        if s.rate_z_satterthwaite:
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                z_df = np.minimum(
                    noise_df * ((sigma2 + 1.0 / (mean_cnt + 0.5)) / sigma2) ** 2, MAX_NOISE_DF
                )
            z_df = np.maximum(np.nan_to_num(z_df, nan=1.0), noise_df)
        p[:, cols] = np.maximum(
            p[:, cols], 2.0 * stats.t.sf(np.abs(np.nan_to_num(z[:, cols])), z_df[:, cols])
        )
        expected = p0
        if s.use_window_shift:
            make_shift = lambda r, at: _rate_shift(  # noqa: E731
                *(at(a) for a in (numer, denom, p0, sigma2, den_sum, cnt)), r, s, at(noise_df)
            )
        with np.errstate(invalid="ignore", over="ignore"):
            lower = p0 * np.exp(-s.min_robust_z * z_sd)
            upper = np.minimum(p0 * np.exp(s.min_robust_z * z_sd), 1.0)
        base_w = trailing_windows(x, window)
    else:
        f = np.ones_like(x)
        # the weekday and hour profiles are factors: a series that can be negative or near zero
        # (kind "linear") has no level for a factor to scale (a factor learned from its
        # positive readings turned N(0, 1) noise into "drops" of -30,000 % in half its weeks)
        seasonal = s.use_seasonality and kind != "linear"
        # steps whose profile cannot be known yet: not judged (`profile_unknown`)
        unknown = np.zeros(x.shape, bool)
        if seasonal and s.use_weekday_seasonality and steps_per_day:
            # a sub-daily series: the day-of-week level first (whole-day medians, which the
            # hour-of-day profile does not move), then the hour-of-day profile on top of it
            week = weekday_profile(x, steps_per_day, s.weekday_seasonal_weeks, s.profile_torn_z)
            f = week.factor
            unknown |= profile_unknown(week, s)
        if seasonal and period:
            if (s.weekday_james_stein and not steps_per_day) or (
                s.count_hour_james_stein and steps_per_day and kind == "count"
            ):
                # the weekday profile of a daily series, and the hour-of-day profile of a
                # sub-daily count series: shrunk by how clearly it stands out of the wander,
                # not by a fixed count (a LinkedIn weekend at 55 % of the week would keep only
                # two-thirds of its dip; a count test reads a night left at 1.25x as a drop)
                phase = seasonal_profile_js(x / f, period, n_cycles, s.profile_torn_z)
                f = f * phase.factor
                unknown |= phase.torn
            else:
                f = f * seasonal_factors(x / f, period, n_cycles, s.seasonal_shrinkage)
        y = x / f
        if kind == "linear":  # series that can be negative: raw scale
            u = y
        else:
            # multiplicative noise (ad delivery scales) is symmetric on the log scale; offset 1
            # keeps zero counts and zero-spend days finite, costs ("log") are strictly positive
            offset = 0.0 if kind == "log" else 1.0
            with np.errstate(divide="ignore", invalid="ignore"):
                u = np.log(
                    np.where(y + offset > 0, y + offset, np.where(np.isnan(y), np.nan, 1e-12))
                )
        u_w = trailing_windows(u, window)
        cnt = nan_count(u_w)
        level, scale = robust_level_scale(u_w)
        if kind == "continuous":
            # more than half the window at one value (zeros: a quiet hour's spend) makes the MAD,
            # and the robust scale with it, 0, and every non-zero reading an alarm; the window's
            # root-mean-square deviation from its median is the scale there instead
            with np.errstate(invalid="ignore"):
                rms = np.sqrt(
                    np.nansum((u_w - level[..., None]) ** 2, axis=-1) / np.maximum(cnt - 1, 1)
                )
            scale = np.where(scale > 0, scale, rms)
        if kind == "linear":
            scale_floor = np.maximum(s.relative_scale_floor * np.abs(level), 1e-9)
            back = lambda v: v  # noqa: E731
        else:
            scale_floor = np.full(scale.shape, np.log1p(s.relative_scale_floor))
            if kind == "count":  # Poisson floor: sd(log X) ~ 1 / sqrt(mu)
                scale_floor = np.maximum(scale_floor, 1.0 / np.sqrt(np.maximum(np.exp(level), 1.0)))
            back = lambda v: np.maximum(np.exp(v) - offset, 0.0)  # noqa: E731
        scale = np.maximum(scale, scale_floor)
        judged = (cnt >= min_history) & ~np.isnan(x) & ~np.isnan(level) & ~unknown
        count_vst = kind == "count" and s.use_count_tests
        if count_vst:
            residual, z_scale, z_floor = _count_vst_residual(y, level, scale, f, window, s)
        else:
            residual, z_scale, z_floor = u - level, scale, scale_floor
        if pool_scales and pool_groups is not None:
            z_scale, z_df = moderate_scales(
                z_scale, cnt, cnt >= min_history, z_floor, pool_groups, s, pool_segments
            )
        else:
            z_df = scale_df(cnt, s)
        phase_factor = None
        if phase_scale and period:
            # noise by phase (hour of day, or weekday): quiet hours are noisier, from the
            # standardized residuals of the last `phase_scale_cycles` cycles
            with np.errstate(invalid="ignore", divide="ignore"):
                phase_factor = phase_scale_factors(
                    residual / z_scale,
                    period,
                    s.phase_scale_cycles,
                    s.phase_scale_harmonics,
                    floor=1.0 if s.phase_scale_widen_only else 0.25,
                    alpha=s.phase_scale_alpha,
                )
            z_scale = z_scale * phase_factor
        with np.errstate(invalid="ignore", divide="ignore"):
            z = residual / z_scale
        # the band is drawn on the log scale; a count's VST scale is not one. The window shift
        # and the persistence keep the series' own scale (their windows are not pooled).
        band_scale = scale if count_vst else z_scale
        expected = back(level) * f
        lower = back(level - s.min_robust_z * band_scale) * f
        upper = back(level + s.min_robust_z * band_scale) * f
        if s.use_window_shift:
            # neighbouring steps that move together (hourly readings, a drifting level) make a
            # run of high values less surprising than the same run of independent ones
            rho = (
                persistence(u_w, level, scale, cnt, window, s, shift_steps)
                if s.use_autocorrelation
                else None
            )
            make_shift = lambda r, at: _level_shift(  # noqa: E731
                at(u),
                at(level),
                at(scale),
                at(cnt),
                back,
                at(f),
                kind,
                r,
                s,
                at(rho),
                at(phase_factor),
            )
        # t rather than normal: the scale itself is estimated from ~window points (or, pooled,
        # from the campaigns' agreement as well)
        p = np.full(x.shape, np.nan)
        p[:, cols] = 2.0 * stats.t.sf(np.abs(np.nan_to_num(z[:, cols])), z_df[:, cols])
        if count_vst:
            # NB on the raw counts with a winsorized trailing mean (the median of 0,0,1,0,2 is
            # 0, which would make any lead "infinitely" surprising) and the trailing variance
            x_w = trailing_windows(y, window)
            med, raw_sd = robust_level_scale(x_w)
            sig = np.maximum(np.maximum(raw_sd, np.sqrt(np.maximum(med, 0.0))), 1.0)[..., None]
            clipped = np.clip(x_w, med[..., None] - 4 * sig, med[..., None] + 4 * sig)
            with np.errstate(invalid="ignore"):
                mean = (
                    np.where(cnt > 0, np.nansum(clipped, axis=-1) / np.maximum(cnt, 1), np.nan) * f
                )
            var = np.maximum((raw_sd * f) ** 2, mean)
            up, lo = count_pvalues(np.nan_to_num(x[:, cols]), mean[:, cols], var[:, cols])
            p_count = two_sided(up, lo)
            small = np.maximum(mean[:, cols], np.nan_to_num(x[:, cols])) < s.min_expected_count
            # both views must find it surprising: the larger p of the two is used
            p[:, cols] = np.where(small, 1.0, np.maximum(p[:, cols], p_count))
            expected = np.where(np.isnan(mean), expected, mean)
        if kind == "log" and s.use_count_tests and numer is not None and denom is not None:
            # cost per event: at the expected cost the day's spend buys spend/expected events;
            # a few events short of a small expectation is noise, not a cost spike (Poisson)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean_events = np.where(expected > 0, numer / expected, np.nan)
            mean_events, events = mean_events[:, cols], denom[:, cols]
            up, lo = count_pvalues(
                np.nan_to_num(events),
                np.nan_to_num(mean_events, nan=1e-9),
                np.nan_to_num(mean_events, nan=1e-9),
            )
            small = (
                np.maximum(np.nan_to_num(mean_events), np.nan_to_num(events)) < s.min_expected_count
            )
            p[:, cols] = np.where(small, 1.0, np.maximum(p[:, cols], two_sided(up, lo)))
        base_w = trailing_windows(x, window)

    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(expected > 0, x / expected - 1.0, np.where(x > 0, np.inf, 0.0))
    z = np.where(judged, z, np.nan)
    if s.use_tail_calibration:
        p[:, cols] = np.maximum(
            p[:, cols],
            tail_calibrated_pvalues(z, judged, s.tail_prior_points, s.tail_prior_df, cols),
        )
    p = np.where(judged, p, np.nan)

    out = dict(
        judged=judged,
        expected=expected,
        lower=lower,
        upper=upper,
        z=z,
        p=p,
        rel_effect=rel,
        count_var=var if (kind == "count" and s.use_count_tests) else np.full(x.shape, np.nan),
    )
    if s.use_window_shift:
        first = cols.indices(x.shape[1])[0]
        lo, stop = shift_steps.start, shift_steps.stop

        def at(a):
            return None if a is None else a[:, lo:stop]

        per_window = []
        for r in s.shift_windows:
            shift = make_shift(r, at)
            if s.use_count_tests and kind == "count":
                shift = _count_shift_check(shift, at(x), at(mean / f), at(var / f**2), at(f), r, s)
            elif s.use_count_tests and kind == "log" and numer is not None and denom is not None:
                shift = _cost_shift_check(shift, at(numer), at(denom), r, s)
            per_window.append(dict(shift, shift_days=np.full(shift["judged"].shape, float(r))))
        shift = {}
        for k, v in _combine_windows(per_window).items():
            full = np.zeros(x.shape, bool) if v.dtype == bool else np.full(x.shape, np.nan)
            full[:, first:stop] = v[:, first - lo :]
            shift[k] = full
        shift_judged = judged & shift.pop("judged")
        out.update(
            {
                k: np.where(shift_judged, v, np.nan) if v.dtype.kind == "f" else v & shift_judged
                for k, v in shift.items()
            }
        )
    else:
        out.update(
            shift_z=np.full(x.shape, np.nan),
            shift_p=np.full(x.shape, np.nan),
            shift_rel=np.full(x.shape, np.nan),
            shift_expected=np.full(x.shape, np.nan),
            shift_days=np.full(x.shape, np.nan),
            shift_ok=np.zeros(x.shape, bool),
        )
    if s.use_cusum:
        out["cusum_up"], out["cusum_dn"] = cusum_alarms(z, s.cusum_k, s.cusum_h, s.cusum_clip)
    else:
        out["cusum_up"] = out["cusum_dn"] = np.zeros_like(judged)
    # the seeds' rules, applied to the trailing window instead of the whole series
    out["seeds_z"] = out["seeds_iqr"] = np.zeros_like(judged)
    if s.use_seeds_zscore:
        mean, std = nan_mean_std(base_w)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["seeds_z"] = judged & (std > 0) & (np.abs(x - mean) / std > 3.0)
    if s.use_seeds_iqr:
        q1, q3 = nan_quantiles(base_w, (0.25, 0.75))
        iqr = q3 - q1
        out["seeds_iqr"] = judged & ((x < q1 - 1.5 * iqr) | (x > q3 + 1.5 * iqr))
    return out


def _combine_windows(per_window: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One shift test per point from several window lengths: the smallest p, Bonferroni-adjusted.

    Each point keeps the numbers (z, effect, reference, length) of the window whose p-value
    is smallest among those judged there; that p is multiplied by the number of windows, so
    trying a short and a long window cannot make a point look more surprising than it is.
    """
    if len(per_window) == 1:
        return per_window[0]
    judged = np.stack([w["judged"] for w in per_window])
    p = np.where(
        judged, np.stack([np.nan_to_num(w["shift_p"], nan=1.0) for w in per_window]), np.inf
    )
    best = np.argmin(p, axis=0)[None]
    out = {
        k: np.take_along_axis(np.stack([w[k] for w in per_window]), best, axis=0)[0]
        for k in per_window[0]
        if k != "judged"
    }
    out["shift_p"] = np.minimum(out["shift_p"] * len(per_window), 1.0)
    out["judged"] = judged.any(axis=0)
    return out


def _shift_pvalue(window_z: np.ndarray, cnt_ref: np.ndarray, s: DetectionSettings) -> np.ndarray:
    # t rather than normal: the reference scale is itself estimated from ~baseline_days points
    return 2.0 * stats.t.sf(np.abs(np.nan_to_num(window_z)), scale_df(np.nan_to_num(cnt_ref), s))


def persistence(
    u_w, level, scale, cnt, window: int, s: DetectionSettings, steps: slice = slice(None)
) -> np.ndarray:
    """The lag-1 autocorrelation the window-shift test allows for at each step of `steps`
    (NaN at the others).

    One baseline's estimate is noisy (sd ~ 1/sqrt(n - 1): 0.19 from 28 days) and reads an
    event or a ramp inside the baseline as persistence, which silences the next shift. So
    the estimate is lowered by `autocorrelation_margin` standard errors (only persistence
    the data clearly show is discounted) and replaced by the median of the estimates over
    the last `autocorrelation_baselines` baselines (one event sways a minority of them).
    That median (56 estimates by default) is taken at `steps` only: the shift tests read
    a few steps, and sorting its windows at every step was most of this function's time.
    """
    rho = lag1_autocorrelation(u_w, level, scale)
    rho = rho - s.autocorrelation_margin / np.sqrt(np.maximum(cnt - 1, 1))
    if s.autocorrelation_baselines > 0:
        history = trailing_windows(rho, s.autocorrelation_baselines * window)
        rho = np.full(rho.shape, np.nan)
        rho[:, steps] = nan_median(history[:, steps])
    return np.minimum(rho, s.max_autocorrelation)


def _shift_steps(cols: slice, n_steps: int, s: DetectionSettings) -> slice:
    """The steps the window-shift tests of the steps in `cols` read: those steps and the
    `max(shift_windows) - 1` before them."""
    first, stop, _ = cols.indices(n_steps)
    return slice(max(0, first - (max(s.shift_windows) - 1)), stop)


def _level_shift(
    u,
    level,
    scale,
    cnt,
    back,
    f,
    kind,
    r: int,
    s: DetectionSettings,
    rho: np.ndarray | None = None,
    phase_factor: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Recent window vs a lagged reference on the transformed scale (counts, spend, costs).

    The reference is the trailing baseline that ended just before the recent window, so a
    slow decline inside the recent days is not absorbed by the median it is compared with.
    Each recent day's residual is clipped at `cusum_clip` (one spike cannot pose as a
    shift); the mean residual times sqrt(days) is a z under independence, widened by the
    error of the reference median (var of a median ~ pi/2 sigma^2 / n, shared by all days).
    With `phase_factor` (noise by phase, `baselines.phase_scale_factors`) each recent step's
    residual is measured in its own hour's scale: a window over the quiet hours is no shift.
    """
    lag = r - 1  # the reference of day t is the baseline of day t-r+1: it ends at t-r
    level_ref, scale_ref = shift_columns(level, lag), shift_columns(scale, lag)
    cnt_ref = shift_columns(cnt.astype(float), lag)
    uw = recent_windows(u, r)
    with np.errstate(invalid="ignore", divide="ignore"):
        day_z = (uw - level_ref[..., None]) / scale_ref[..., None]
        if phase_factor is not None:
            day_z = day_z / recent_windows(phase_factor, r)
    known = ~np.isnan(day_z)
    n_known = known.sum(axis=-1)
    clipped = np.where(known, np.clip(day_z, -s.cusum_clip, s.cusum_clip), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_z = clipped.sum(axis=-1) / n_known
        # var(mean of n residuals) = g / n (g > 1 under positive autocorrelation, see
        # `mean_variance_factor`), plus the reference median's pi/2 / n_ref
        g = mean_variance_factor(shift_columns(rho, lag), n_known, r) if rho is not None else 1.0
        window_z = mean_z / np.sqrt(g / n_known + (np.pi / 2) / cnt_ref)
        mean_u = np.where(known, uw, 0.0).sum(axis=-1) / n_known
        if kind == "linear":
            rel = np.where(level_ref != 0, (mean_u - level_ref) / np.abs(level_ref), np.nan)
        else:
            ref = back(level_ref)
            rel = np.where(ref > 0, back(mean_u) / ref - 1.0, np.nan)
    ok = _shift_consistent(day_z, window_z, n_known, r, s)
    judged = ok & (np.nan_to_num(cnt_ref) >= 1) & ~np.isnan(window_z)
    return dict(
        judged=judged,
        shift_z=window_z,
        shift_p=_shift_pvalue(window_z, cnt_ref, s),
        shift_rel=rel,
        shift_expected=back(level_ref) * f if kind != "linear" else level_ref * f,
        shift_ok=ok,
    )


def _rate_shift(
    numer, denom, p0, sigma2, den_sum, cnt, r: int, s: DetectionSettings, noise_df: np.ndarray
) -> dict[str, np.ndarray]:
    """Recent window vs a lagged reference for a rate, on its counts.

    Numerator summed over the recent days given their denominators, against the reference
    ratio of sums with the same Poisson-lognormal day variance as the daily test; the
    variance is widened by the reference's own sampling error (its share of the data).
    """
    lag = r - 1
    p_ref, sigma2_ref = shift_columns(p0, lag), shift_columns(sigma2, lag)
    cnt_ref, dsum_ref = shift_columns(cnt.astype(float), lag), shift_columns(den_sum, lag)
    nw, dw = recent_windows(numer, r), recent_windows(denom, r)
    both = ~np.isnan(nw) & ~np.isnan(dw) & (dw > 0)
    pr = p_ref[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        var_day = dw * pr + (dw * pr) ** 2 * np.expm1(sigma2_ref[..., None])
        day_z = np.where(both, (nw - dw * pr) / np.sqrt(var_day), np.nan)
        n_sum = np.where(both, nw, 0.0).sum(axis=-1)
        d_sum = np.where(both, dw, 0.0).sum(axis=-1)
        v_sum = np.where(both, var_day, 0.0).sum(axis=-1)
        n_known = both.sum(axis=-1)
        inflate = 1.0 + np.maximum(d_sum / dsum_ref, n_known / cnt_ref)
        exp_sum = d_sum * p_ref
        day_var = np.maximum(v_sum - exp_sum, 0.0)  # the day-noise part of the sum's variance
        # z on the sum's variance-stabilizing scale (variance mu + kappa mu^2, as the daily
        # count z): the sum is right-skewed, so a plain (n - mu) / sd overstates rises and
        # understates drops (docs/anomaly_detection.md, "Window shift")
        noise_sd = np.sqrt(np.nan_to_num(day_var / exp_sum**2))
        window_z = (vst(n_sum, noise_sd) - vst(exp_sum, noise_sd)) / np.sqrt(inflate)
        rel = np.where((d_sum > 0) & (p_ref > 0), (n_sum / d_sum) / p_ref - 1.0, np.nan)
    ok = _shift_consistent(day_z, window_z, n_known, r, s)
    # a reference rate built on fewer events than `min_expected_count` is not known well
    # enough to call a shift (0 conversions in 28 days then 3 is not a 30x rate change)
    ref_events = dsum_ref * p_ref
    enough = (np.nan_to_num(ref_events) >= s.min_expected_count) & (
        np.maximum(np.nan_to_num(exp_sum), n_sum) >= s.min_expected_count
    )
    judged = ok & enough & (np.nan_to_num(cnt_ref) >= 1) & ~np.isnan(window_z) & ~np.isnan(p_ref)
    p = np.full(window_z.shape, np.nan)
    p[judged] = sum_pvalues(
        n_sum[judged],
        exp_sum[judged],
        day_var[judged],
        inflate[judged],
        shift_columns(noise_df, lag)[judged],
    )
    return dict(
        judged=judged, shift_z=window_z, shift_p=p, shift_rel=rel, shift_expected=p_ref, shift_ok=ok
    )


_SUM_NODES = 16  # generalized Gauss-Laguerre nodes: the t tail to < 1 % up to t = 6 (df 12-24)
_SUM_BLOCK = 4096  # points per block: 4096 x 16 nodes x 20 Gauss-Hermite nodes, ~10 MB an array


def sum_pvalues(observed, expected, day_var, inflate, df) -> np.ndarray:
    """Two-sided p-value of a count sum: Poisson noise plus day noise whose size was estimated.

    The sum is Poisson with a lognormal day factor matched to the sum's extra variance (a
    sum of lognormal day shocks is close to one lognormal, Fenton-Wilkinson; a negative
    binomial's gamma tail was too light: rises at p 1e-4 came 6x too often under the null),
    Poisson where there is no day noise. The day-noise part of the variance comes
    from about `df` degrees of freedom of baseline days, so it is integrated over its
    sampling distribution (true = estimate x df / chi2_df, by generalized Gauss-Laguerre
    quadrature): where day noise dominates the tail is as wide as a t tail, where Poisson
    noise dominates (small counts, whose noise is known) it stays the count's own. The whole
    variance is widened by `inflate` (the reference's own sampling error).
    """
    shape = np.shape(observed)
    df = np.maximum(np.round(np.asarray(df, float)), 1.0)
    # the quadrature of each distinct df (at most a few hundred: pooled df vary by point),
    # then every point's nodes and weights at once
    distinct, which = np.unique(df, return_inverse=True)
    nodes = np.empty((len(distinct), _SUM_NODES))
    weights = np.empty((len(distinct), _SUM_NODES))
    for k, d in enumerate(distinct):
        x, w = special.roots_genlaguerre(_SUM_NODES, d / 2.0 - 1.0)
        nodes[k], weights[k] = 2.0 * x, w / special.gamma(d / 2.0)
    observed, expected, day_var, inflate, df = (
        np.asarray(a, float).ravel() for a in (observed, expected, day_var, inflate, df)
    )
    which = which.ravel()
    up = np.empty(observed.shape)
    lo = np.empty(observed.shape)
    for start in range(0, observed.size, _SUM_BLOCK):  # blocks of points bound the memory
        at = slice(start, start + _SUM_BLOCK)
        mean = np.maximum(expected[at], 1e-9)[:, None]
        node, weight = nodes[which[at]], weights[which[at]]
        extra = np.maximum(
            (mean + day_var[at, None] * df[at, None] / node) * inflate[at, None] - mean, 0.0
        )
        u, lw = poisson_lognormal_pvalues(
            np.broadcast_to(observed[at, None], node.shape),
            np.broadcast_to(mean, node.shape),
            np.sqrt(np.log1p(extra / mean**2)),
        )
        up[at] = (weight * u).sum(axis=-1)
        lo[at] = (weight * lw).sum(axis=-1)
    return two_sided(up, lo).reshape(shape)


def _count_shift_check(shift: dict, x, mean_ds, var_ds, f, r: int, s: DetectionSettings) -> dict:
    """Counts: the recent days' sum against the lagged reference under NB (both views must agree).

    The reference mean and variance are per de-seasonalized day; the recent days' expected
    sum is that mean times the sum of their weekday factors.
    """
    lag = r - 1
    m_ref, v_ref = shift_columns(mean_ds, lag), shift_columns(var_ds, lag)
    xw, fw = recent_windows(x, r), recent_windows(f, r)
    known = ~np.isnan(xw)
    total = np.where(known, xw, 0.0).sum(axis=-1)
    f_sum = np.where(known, fw, 0.0).sum(axis=-1)
    f2_sum = np.where(known, fw**2, 0.0).sum(axis=-1)
    exp_sum = m_ref * f_sum
    var_sum = np.maximum(v_ref * f2_sum, exp_sum)
    up, lo = count_pvalues(
        total, np.nan_to_num(exp_sum, nan=1e-9), np.nan_to_num(var_sum, nan=1e-9)
    )
    small = np.maximum(np.nan_to_num(exp_sum), total) < s.min_expected_count
    out = dict(shift)
    out["shift_p"] = np.where(small, 1.0, np.maximum(shift["shift_p"], two_sided(up, lo)))
    out["judged"] = shift["judged"] & ~np.isnan(exp_sum)
    return out


def _cost_shift_check(shift: dict, money, events, r: int, s: DetectionSettings) -> dict:
    """Cost per event: the events the recent spend bought against what the reference cost buys.

    A cost 'shift' on a handful of leads is Poisson noise: at the reference cost the recent
    spend should have bought spend/cost events, and falling a few short of a small number
    is not news (the same check as the daily cost test, on the window's sums).
    """
    mw, ew = recent_windows(money, r), recent_windows(events, r)
    both = ~np.isnan(mw) & ~np.isnan(ew)
    spend = np.where(both, mw, 0.0).sum(axis=-1)
    got = np.where(both, ew, 0.0).sum(axis=-1)
    # shift_expected is the reference cost of the judged day (weekday factor included)
    with np.errstate(invalid="ignore", divide="ignore"):
        should = np.where(shift["shift_expected"] > 0, spend / shift["shift_expected"], np.nan)
    m = np.nan_to_num(should, nan=1e-9)
    up, lo = count_pvalues(got, m, m)
    small = np.maximum(np.nan_to_num(should), got) < s.min_expected_count
    out = dict(shift)
    out["shift_p"] = np.where(small, 1.0, np.maximum(shift["shift_p"], two_sided(up, lo)))
    return out
