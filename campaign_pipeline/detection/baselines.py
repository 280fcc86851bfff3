"""Causal (trailing) statistics on panels: arrays of shape (n_series, n_steps).

Every statistic at step t is computed from steps t-window .. t-1 only, so a point is never
part of its own baseline and appending later steps cannot change an earlier value. The
panel layout (one row per campaign x metric, one column per day) lets numpy work on all
series at once: no Python loop per campaign or per metric.

Missing values (NaN) are unknown, not zero: they are skipped by every statistic and a
window with too few known points yields NaN (the point is then not judged).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import stats

MAD_TO_SIGMA = 1.4826  # MAD of a normal sample times this estimates its standard deviation


def trailing_windows(values: np.ndarray, window: int) -> np.ndarray:
    """View of shape (n, T, window): [i, t, :] holds values[i, t-window:t] (NaN before start)."""
    n, t = values.shape
    padded = np.concatenate([np.full((n, window), np.nan), values], axis=1)
    # windows ending just before each step: padded[:, t : t + window] == values[:, t-window:t]
    return sliding_window_view(padded, window, axis=1)[:, :t, :]


def lagged_windows(values: np.ndarray, lag: int, count: int) -> np.ndarray:
    """Shape (n, T, count): [i, t, k] = values[i, t - (k + 1) * lag] (same phase, earlier)."""
    n, t = values.shape
    out = np.full((n, t, count), np.nan)
    for k in range(count):  # loop over a handful of lags, not over series
        shift = (k + 1) * lag
        if shift < t:
            out[:, shift:, k] = values[:, : t - shift]
    return out


def nan_quantiles(windows: np.ndarray, qs: tuple[float, ...]) -> tuple[np.ndarray, ...]:
    """Linear-interpolated quantiles along the last axis, ignoring NaN (vectorized sort)."""
    ordered = np.sort(windows, axis=-1)  # NaN sorts to the end
    count = nan_count(windows)
    return tuple(_quantile_of_sorted(ordered, count, q) for q in qs)


def _quantile_of_sorted(ordered: np.ndarray, count: np.ndarray, q: float) -> np.ndarray:
    """The q quantile of each row of `ordered` (sorted, NaN last) of which `count` are known."""
    width = ordered.shape[-1]
    pos = (count - 1) * q
    lo = np.clip(np.floor(pos).astype(int), 0, width - 1)
    hi = np.clip(np.ceil(pos).astype(int), 0, width - 1)
    # each row's cells picked by their flat position: the same cells `take_along_axis` picks,
    # without the broadcast index arrays it builds (most of its time on short rows)
    cells = ordered.reshape(-1)
    first = np.arange(0, cells.size, width).reshape(count.shape)
    v_lo = cells.take(first + lo)
    v_hi = cells.take(first + hi)
    val = v_lo + (v_hi - v_lo) * (pos - np.floor(pos))
    return np.where(count > 0, val, np.nan)


def nan_median(windows: np.ndarray) -> np.ndarray:
    return nan_quantiles(windows, (0.5,))[0]


def nan_count(windows: np.ndarray) -> np.ndarray:
    # a product with a vector of ones counts in BLAS, about twice as fast as a sum over short
    # rows; exact, as float32 holds every whole number up to 2^24
    known = (~np.isnan(windows)).astype(np.float32)
    return (known @ np.ones(windows.shape[-1], np.float32)).astype(np.intp)


# Deviations beyond this many MAD-sigmas from the median are pulled in to it before the scale
# is computed: an anomalous day inside the baseline then counts as a 2.5-sigma day, not as
# itself, while normal data (99 % within 2.5 sigma) is used almost in full.
WINSOR_C = 2.5
# E[min(Z^2, c^2)] for a standard normal Z at c = WINSOR_C: makes the winsorized scale
# consistent for sigma under normal noise.
_WINSOR_CONSISTENCY = 0.97756


def robust_level_scale(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and a winsorized standard deviation of each window.

    The MAD alone is robust but wasteful: from 28 normal points it estimates sigma with 40 % of
    the efficiency of an SD, and a scale that comes out small by chance turns ordinary days
    into alarms. Winsorizing at `WINSOR_C` MAD-sigmas around the median and taking the root
    mean square keeps the robustness (an outlier adds at most c^2) at about 93 % efficiency
    (simulated: n = 28 normal points, 200,000 draws).
    """
    # one count and two sorts, the second and the squares in reused buffers: the windows are
    # (series x steps x window) arrays, and each fresh one costs more in page faults than in
    # arithmetic; every number is computed as the plain expressions would
    count = nan_count(windows)
    work = np.sort(windows, axis=-1)
    med = _quantile_of_sorted(work, count, 0.5)
    dev = np.subtract(windows, med[..., None], out=work)
    spread = np.abs(dev)
    spread.sort(axis=-1)
    sigma0 = MAD_TO_SIGMA * _quantile_of_sorted(spread, count, 0.5)
    with np.errstate(invalid="ignore", divide="ignore"):
        bound = WINSOR_C * sigma0
        # min(dev^2, bound^2) is the square of dev clipped to +-bound, bit for bit
        sq = np.multiply(dev, dev, out=spread)
        np.minimum(sq, (bound * bound)[..., None], out=sq)
        sq[np.isnan(sq)] = 0.0
        var = np.sum(sq, axis=-1) / np.where(count > 1, count - 1, np.nan)
        sigma = np.sqrt(var / _WINSOR_CONSISTENCY)
    return med, np.where(np.isnan(sigma0), np.nan, sigma)


def lag1_autocorrelation(
    windows: np.ndarray, level: np.ndarray, scale: np.ndarray, clip: float = WINSOR_C
) -> np.ndarray:
    """Lag-1 autocorrelation of each window's residuals about its median, winsorized at `clip`.

    Residuals are standardized by the window's own robust scale and clipped, so one outlier
    cannot fake (or hide) a dependence; pairs with a missing member are skipped. Returns NaN
    where fewer than three pairs are known.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.subtract(windows, level[..., None])
        np.divide(r, scale[..., None], out=r)
        np.clip(r, -clip, clip, out=r)
    # a pair is known where its product is (clipped residuals are finite or NaN)
    num = r[..., :-1] * r[..., 1:]
    unpaired = np.isnan(num)
    n_pairs = nan_count(num)
    num[unpaired] = 0.0
    np.square(r, out=r)
    den = r[..., :-1] + r[..., 1:]
    den *= 0.5
    den[unpaired] = 0.0
    num, den = num.sum(axis=-1), den.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = num / den
    return np.where((n_pairs >= 3) & (den > 0), rho, np.nan)


def mean_variance_factor(rho: np.ndarray, n: np.ndarray, max_n: int) -> np.ndarray:
    """Variance of the mean of n AR(1) residuals relative to n independent ones.

    1 + 2 sum_{k<n} (1 - k/n) rho^k: with rho = 0.5, five hourly readings carry the information
    of about two independent ones. Negative rho is treated as 0 (no credit for alternation).
    """
    rho = np.clip(np.nan_to_num(rho, nan=0.0), 0.0, None)
    n = np.maximum(np.asarray(n, float), 1.0)
    g = np.ones(np.broadcast(rho, n).shape)
    for k in range(1, max_n):  # a handful of lags, each over every series at once
        g = g + 2.0 * np.clip(1.0 - k / n, 0.0, None) * rho**k
    return g


def nan_mean_std(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation (ddof=1), NaN-aware; what the seeds used."""
    cnt = nan_count(windows)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(windows, axis=-1) / np.where(cnt > 0, cnt, np.nan)
        dev = np.where(np.isnan(windows), 0.0, windows - mean[..., None])
        var = np.sum(dev**2, axis=-1) / np.where(cnt > 1, cnt - 1, np.nan)
    return mean, np.sqrt(var)


def seasonal_factors(
    values: np.ndarray, period: int | None, n_cycles: int, shrinkage: float
) -> np.ndarray:
    """Multiplicative seasonal factor known at each step (causal), shape (n, T).

    Factor for step t = median of the last `n_cycles` same-phase values divided by the median
    of the trailing `n_cycles * period` values, shrunk to 1 by k / (k + shrinkage) where k is
    the number of same-phase points seen. Multiplicative because ad delivery scales: a weekend
    dip is a share of the level, not a fixed number of clicks.
    """
    n, t = values.shape
    if not period or period < 2:
        return np.ones((n, t))
    same_phase = lagged_windows(values, period, n_cycles)
    phase_med = nan_median(same_phase)
    k = nan_count(same_phase)
    overall = nan_median(trailing_windows(values, period * n_cycles))
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = phase_med / overall
    raw = np.where(np.isfinite(raw) & (overall > 0), raw, 1.0)
    raw = np.clip(raw, 0.2, 5.0)  # a factor beyond 5x is a broken series, not seasonality
    weight = k / (k + shrinkage)
    return 1.0 + weight * (raw - 1.0)


def weekday_factors(values: np.ndarray, steps_per_day: int, n_weeks: int) -> np.ndarray:
    """Multiplicative day-of-week factor of a sub-daily series known at each step (causal): the
    factor of `weekday_profile`."""
    return weekday_profile(values, steps_per_day, n_weeks).factor


class PhaseProfile(NamedTuple):
    """A seasonal factor at each step (n, T) with what it rests on.

    factor: multiplicative, 1 where nothing is known. known: how many earlier values of the
    step's own phase (the same weekday, or hour of day) stand behind it. torn: the step's own
    phase rests on two values that disagree beyond `torn_z` (`shrunk_phase_factor`): one of
    them is an outlier and two values cannot say which, so the phase is unknown (factor 1).
    """

    factor: np.ndarray
    known: np.ndarray
    torn: np.ndarray


def weekday_profile(
    values: np.ndarray, steps_per_day: int, n_weeks: int, torn_z: float = 0.0
) -> PhaseProfile:
    """Multiplicative day-of-week factor of a sub-daily series known at each step (causal).

    Column 0 of `values` is the first step of a calendar day (`series.detect_series` starts each
    series' grid at the beginning of its first day), so every `steps_per_day` columns are one
    calendar day. An hourly series judged against its last few days (the hour-of-day profile of
    `seasonal_factors`) meets every weekend as a shift. At step t, take the median of each of
    the last 7 x `n_weeks` whole calendar days before t's own (whole days, so the hour-of-day
    profile cancels and a spike moves them little; a day with fewer than half its steps known
    is unknown), on the log scale. Group them by day of week: the log factor of t's own day of
    the week is its group's median minus the median of all of them. Calendar days, not
    24-hour windows centred on t's time of day: a window centred on a Saturday 04:00 is mostly
    the Friday before it, so the quiet hours after midnight took the previous day's level (a
    Saturday night's counts read as drops of the Friday).

    That estimate is shrunk towards 1 by how clearly a weekly pattern stands out of the
    day-to-day wander (positive-part James-Stein): weight = 1 - (the variance of a group median
    from the wander within groups) / (the spread of the 7 group medians). A series without a
    working-week cycle gets (nearly) no factor, instead of last week's chance highs and lows;
    with one week known there is no within-group spread yet and no factor. `known` counts the
    whole days of the step's own weekday behind the factor; `torn_z`: `shrunk_phase_factor`.
    """
    n, t = values.shape
    p = int(steps_per_day)
    if p < 2 or n_weeks < 1:
        return _no_profile(n, t)
    n_days = -(-t // p)
    padded = np.full((n, n_days * p), np.nan)
    padded[:, :t] = values
    day_w = padded.reshape(n, n_days, p)  # [i, d, :] = the steps of calendar day d
    with np.errstate(invalid="ignore", divide="ignore"):
        day_med = np.where(nan_count(day_w) >= (p + 1) // 2, nan_median(day_w), np.nan)
        log_day = np.log(np.where(day_med > 0, day_med, np.nan))
    # each step holds its own day's value, read only from `p` steps or more later: by the steps
    # of a later day, after the whole of this one
    by_step = np.repeat(log_day, p, axis=1)[:, :t]
    # days[..., j, r]: the calendar day (7 j + r + 1) days before t's own; r = 6 is t's own day
    # of the week, j weeks back (all ended before t's day began: causal)
    days = lagged_windows(by_step, p, 7 * n_weeks).reshape(n, t, n_weeks, 7)
    profile = shrunk_phase_profile(days, torn_z=torn_z)
    # the known days of the step's own weekday, a day with a median of 0 (a mostly-zero
    # series) included: it has no log level for the factor, but it was seen
    seen = np.repeat(nan_count(day_w) >= (p + 1) // 2, p, axis=1)[:, :t].astype(float)
    known = nan_count(np.where(lagged_windows(seen, 7 * p, n_weeks) > 0, 1.0, np.nan))
    return profile._replace(known=np.where(profile.torn, 0, known))


def _no_profile(n: int, t: int) -> PhaseProfile:
    return PhaseProfile(np.ones((n, t)), np.zeros((n, t), np.intp), np.zeros((n, t), bool))


def shrunk_phase_factor(cycles: np.ndarray, phase_medians=None) -> np.ndarray:
    """The factor of `shrunk_phase_profile` (no phase torn)."""
    return shrunk_phase_profile(cycles, phase_medians).factor


def shrunk_phase_profile(
    cycles: np.ndarray, phase_medians=None, torn_z: float = 0.0
) -> PhaseProfile:
    """Multiplicative factor of the last phase of `cycles` (n, T, n_cycles, period), shrunk by
    James-Stein.

    cycles[..., j, r] holds a log value j cycles back at phase r; the last phase is the judged
    step's own. The raw effect is that phase's median minus the median of all; it is shrunk
    towards 0 by how clearly the phase pattern stands out of the wander within phases
    (positive-part James-Stein): weight = 1 - (the variance of a phase median implied by the
    spread within phases) / (the spread of the phase medians). 1 where nothing is known; kept
    within 0.2-5x (beyond 5x is a broken series, not a cycle). `phase_medians`: each phase's
    median and known count, when the caller has them (`_same_phase_medians`).

    With `torn_z` > 0, a phase known from two values only that differ by more than `torn_z`
    within-phase standard deviations is torn: the median of two is their mean, so an outlier
    among them (a 10x Saturday in a series' first, unjudged fortnight) would move the phase's
    factor half-way to it and shrink every other phase through the spread it adds. A torn
    phase is left out (factor 1, no share in the weight) until a third value's median can
    outvote the outlier. The within-phase sd is robust here: 1.4826 x the median absolute
    deviation (scaled by sqrt(k / (k - 1)) for centring on k values) over the phases known
    from two values or more, the deviations winsorized at `WINSOR_C` MADs and their root mean
    square taken, so one outlier cannot hide itself by widening it; and every
    deviation counts in the spread within phases winsorized at `WINSOR_C` of that sd.
    """
    n, t, n_cycles, period = cycles.shape
    overall = nan_median(cycles.reshape(n, t, n_cycles * period))
    group = np.moveaxis(cycles, 2, 3)  # (n, t, period, n_cycles)
    if phase_medians is None:
        group_med, k = nan_median(group), nan_count(group)  # (n, t, period)
    else:
        group_med, k = phase_medians
    torn = np.zeros(k.shape, bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        dev = group - group_med[..., None]
        if torn_z > 0:
            sd = _within_phase_sd(dev, k)
            torn = _torn_phases(dev, k, sd, torn_z)
            if torn.any():
                k = np.where(torn, 0, k)
                group_med = np.where(torn, np.nan, group_med)
                dev[torn] = np.nan  # `dev` is this call's own array
            # an outlier a median of three or more outvotes still counts in the wander
            # within phases as a 2.5-sd value, not as itself (`robust_level_scale`'s rule), so
            # it cannot shrink the weight of every other phase to nothing; the squares in one
            # buffer of `dev`'s layout, nothing clipped (and divided by 1) where sd is 0
            measured = sd > 0
            dev2 = np.square(dev)
            np.minimum(
                dev2, np.where(measured, (WINSOR_C * sd) ** 2, np.inf)[..., None, None], out=dev2
            )
            np.divide(dev2, np.where(measured, _WINSOR_CONSISTENCY, 1.0)[..., None, None], out=dev2)
        else:
            dev2 = dev**2
        dev2[np.isnan(dev2)] = 0.0  # `np.nansum` without its copy: `dev2` is this call's own
        within = np.sum(dev2, axis=(-1, -2)) / (k.sum(axis=-1) - (k > 0).sum(axis=-1))
        effect = group_med - overall[..., None]
        n_groups = (k > 0).sum(axis=-1)
        between = np.nansum(effect**2, axis=-1) / n_groups
        # a median of k normal values has ~1.2x the variance of their mean (k = 2 .. 4)
        noise = (
            1.2 * within * np.sum(np.where(k > 0, 1.0 / np.maximum(k, 1), 0.0), axis=-1) / n_groups
        )
        weight = np.clip(1.0 - noise / between, 0.0, 1.0)
    log_factor = np.nan_to_num(weight * effect[..., -1], nan=0.0)
    return PhaseProfile(
        np.exp(np.clip(log_factor, np.log(0.2), np.log(5.0))), k[..., -1], torn[..., -1]
    )


def _within_phase_sd(dev: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The robust within-phase sd of `shrunk_phase_profile` (n, t): the winsorized root mean
    square of the phases' centred deviations |dev| x sqrt(k / (k - 1)) over the phases known
    from two values or more; 0 where their MAD is 0 or no phase is known from two values.

    The scaled deviations go into one C-ordered (n, t, period x n_cycles) buffer and their
    squares into the same buffer, cleared of NaN in place: the same numbers, summed in the
    same order, as the plain expressions on fresh arrays.
    """
    n, t, period, n_cycles = dev.shape
    with np.errstate(invalid="ignore", divide="ignore"):
        # NaN for a phase known from fewer than two values: left out of the median and the sum
        # (a table of the few possible k, read per phase)
        counts = np.arange(max(int(k.max(initial=0)), 1) + 1)
        scale = np.where(counts >= 2, np.sqrt(counts / np.maximum(counts - 1, 1)), np.nan)[k]
        flat = np.empty((n, t, period, n_cycles))
        np.abs(dev, out=flat)
        np.multiply(flat, scale[..., None], out=flat)
        flat = flat.reshape(n, t, period * n_cycles)
        count = nan_count(flat)
        sd0 = MAD_TO_SIGMA * _quantile_of_sorted(np.sort(flat, axis=-1), count, 0.5)
        # the winsorized root mean square about 0 (`robust_level_scale`'s estimate): a MAD
        # from the seven pairs of a daily series' first judged week is too noisy a yardstick
        sq = np.square(flat, out=flat)
        np.minimum(sq, ((WINSOR_C * sd0) ** 2)[..., None], out=sq)
        sq[np.isnan(sq)] = 0.0
        sd = np.sqrt(np.sum(sq, axis=-1) / count / _WINSOR_CONSISTENCY)
    return np.where(sd0 > 0, sd, 0.0)


def _torn_phases(dev: np.ndarray, k: np.ndarray, sd: np.ndarray, torn_z: float) -> np.ndarray:
    """(n, t, period): the phases known from two values whose larger scaled deviation
    (|dev| x sqrt(2)) exceeds `torn_z` within-phase sds (`shrunk_phase_profile`); none where
    sd is 0 (ties everywhere, small counts: nothing to measure by). Only the phases known
    from two values, a few of all, are read."""
    candidate = (k == 2) & (sd[..., None] > 0)
    torn = np.zeros(k.shape, bool)
    if candidate.any():
        with np.errstate(invalid="ignore"):
            largest = np.max(np.nan_to_num(np.abs(dev[candidate]) * np.sqrt(2.0), nan=0.0), axis=-1)
            threshold = np.broadcast_to((torn_z * sd)[..., None], k.shape)[candidate]
            torn[candidate] = largest > threshold
    return torn


def seasonal_factors_js(values: np.ndarray, period: int | None, n_cycles: int) -> np.ndarray:
    """Like `seasonal_factors`, with the James-Stein weight of `shrunk_phase_factor` (log scale)."""
    return seasonal_profile_js(values, period, n_cycles).factor


def seasonal_profile_js(
    values: np.ndarray, period: int | None, n_cycles: int, torn_z: float = 0.0
) -> PhaseProfile:
    """`seasonal_factors_js` with what its factor rests on (`PhaseProfile`; `torn_z`:
    `shrunk_phase_profile`)."""
    n, t = values.shape
    if not period or period < 2:
        return _no_profile(n, t)
    with np.errstate(invalid="ignore", divide="ignore"):
        logs = np.log(np.where(values > 0, values, np.nan))
    cycles = lagged_windows(logs, 1, period * n_cycles).reshape(n, t, n_cycles, period)
    return shrunk_phase_profile(cycles, _same_phase_medians(logs, period, n_cycles), torn_z)


def _same_phase_medians(logs: np.ndarray, period: int, n_cycles: int):
    """The median and the known count of each phase's values in `shrunk_phase_factor`'s cycles.

    The phase r values at step t, (t - r - 1, t - r - 1 - period, ...), are the same as the
    phase 0 values at step t - r, so each step's median over its `n_cycles` same-phase
    values is computed once and read back `period` times (the same numbers as medians of
    every cycle group, at a `period`-th of the sorting).
    """
    same_phase = np.concatenate(
        [logs[..., None], lagged_windows(logs, period, n_cycles - 1)], axis=-1
    )  # [i, tau, j] = logs[i, tau - j * period]
    median, known = nan_median(same_phase), nan_count(same_phase).astype(float)
    return (
        lagged_windows(median, 1, period),  # [i, t, r] = the median at step t - r - 1
        np.nan_to_num(lagged_windows(known, 1, period)).astype(np.int64),
    )


def _same_phase_sums(a: np.ndarray, period: int, n_cycles: int) -> np.ndarray:
    """[i, t, ...] = sum of a[i, t - j * period, ...] over j = 1 .. n_cycles (zero before the
    start)."""
    out = np.zeros_like(a)
    t = a.shape[1]
    for j in range(1, n_cycles + 1):  # a loop over a few lags, not over series
        if j * period < t:
            out[:, j * period :] += a[:, : t - j * period]
    return out


def _phase_offsets(a: np.ndarray, period: int) -> np.ndarray:
    """Shape (n, T, period): [i, t, d] = a[i, t - d] (NaN before the start)."""
    back = trailing_windows(a, period)  # [..., k] = a[t - period + k]
    return np.concatenate([back[..., 1:], a[..., None]], axis=-1)[..., ::-1]


def phase_scale_factors(
    z: np.ndarray,
    period: int,
    n_cycles: int,
    harmonics: int = 2,
    min_cycles: int = 3,
    min_known_share: float = 0.75,
    floor: float = 0.25,
    alpha: float = 0.0,
) -> np.ndarray:
    """Noise scale of each step's phase (hour of day; weekday on daily series) relative to the
    series' overall scale.

    A ratio such as CPC read every hour is noisier in the quiet hours: fewer clicks stand
    behind it (the variance of a ratio of counts goes as 1 / volume). One scale for all hours
    makes the night's ordinary wobbles look like alarms and hides the day's. `z` holds
    residuals already standardized by the overall trailing scale; their squares (winsorized
    at `WINSOR_C`, so a past spike counts as a 2.5-sigma point) describe the noise variance.
    Each of the last `n_cycles` whole cycles before the step (the `period` steps ending
    `j` cycles back, j = 1 .. n_cycles) gives the Fourier coefficients of its squares at
    `harmonics` harmonics, phased relative to the judged step: a volume curve is smooth, and
    a few coefficients are stable where 24 hourly variances from 14 points each are not.
    Their mean over the cycles is the profile; their spread between cycles is its sampling
    noise, measured rather than assumed, so noise that moves together within a day (a day
    above its level, autocorrelated readings) is not taken for a profile. The harmonic part
    is shrunk by positive-part James-Stein against that noise, so a series whose noise does
    not depend on the hour gets (nearly) 1. A cycle counts when `min_known_share` of its
    steps are known (the rest stand at the mean square, 1); fewer than `min_cycles` such
    cycles give 1. With `alpha` > 0 a profile is used only where an F test of its
    coefficients against that noise rejects "no profile" at `alpha`. Returns sqrt(fitted
    variance at the step's phase / mean), within 0.5-2.
    Uses only steps before t.
    """
    harmonics = min(harmonics, (period - 1) // 2)
    if harmonics < 1:
        return np.ones(z.shape)
    e = np.minimum(z**2, WINSOR_C**2)
    known = ~np.isnan(e)
    # one cycle: the `period` steps ending at tau, as offsets d = 0 .. period-1 back from tau
    cycle = np.nan_to_num(_phase_offsets(np.where(known, e, 1.0), period), nan=1.0)
    share = np.nan_to_num(_phase_offsets(known.astype(float), period), nan=0.0).mean(axis=-1)
    valid = (share >= min_known_share).astype(float)
    d = np.arange(period)
    angles = 2 * np.pi * np.outer(np.arange(1, harmonics + 1), d) / period  # (harmonics, period)
    basis = np.concatenate([np.cos(angles), np.sin(angles)]).T * (2.0 / period)  # (period, 2h)
    coef = (cycle @ basis) * valid[..., None]  # (n, T, 2h) per cycle ending at tau
    level = cycle.mean(axis=-1) * valid
    # the cycles ending one, two, ... n_cycles periods before t (same phase as t)
    n_valid = _same_phase_sums(valid, period, n_cycles)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_coef = _same_phase_sums(coef, period, n_cycles) / n_valid[..., None]
        mean_sq = _same_phase_sums(coef**2, period, n_cycles) / n_valid[..., None]
        a0 = _same_phase_sums(level, period, n_cycles) / n_valid
        # variance of a mean coefficient: the between-cycle variance / cycles (averaged over
        # coefficients)
        between = (
            np.maximum(mean_sq - mean_coef**2, 0.0)
            * (n_valid / np.maximum(n_valid - 1, 1))[..., None]
        )
        noise = between.mean(axis=-1) / n_valid
        size2 = np.sum(mean_coef**2, axis=-1)
        p = 2 * harmonics
        weight = np.clip(1.0 - (p - 2) * noise / size2, 0.0, 1.0)
        if alpha > 0:
            # use a profile only where the coefficients stand out of their noise (an F test:
            # size2 / noise ~ p F(p, p (cycles - 1)) when the noise does not depend on the phase)
            crit = p * stats.f.ppf(1.0 - alpha, p, p * np.maximum(n_valid - 1, 1))
            weight = np.where(size2 / noise > crit, weight, 0.0)
        ratio = (
            a0 + weight * mean_coef[..., :harmonics].sum(axis=-1)
        ) / a0  # cos terms: the fit at offset 0
    ratio = np.where(n_valid >= min_cycles, ratio, np.nan)
    return np.where(np.isfinite(ratio), np.sqrt(np.clip(ratio, floor, 4.0)), 1.0)
