"""`baselines.shrunk_phase_profile` gives, bit for bit, what its plain statement gives.

The shipped function computes the torn-phase test and the winsorized within-phase spread in
reused buffers, reads the two-value phases only, and skips the masking when no phase is torn.
`reference_profile` below is the plain statement of the same rule, one fresh array per
expression: every factor, count and torn mark must match it exactly, on random panels with
missing values, ties, phases known from 0-4 values and outliers that tear a phase, both as
called directly and through the two callers' own array layouts.
"""

import numpy as np
import pytest

from campaign_pipeline.detection import baselines
from campaign_pipeline.detection.baselines import (
    _WINSOR_CONSISTENCY,
    MAD_TO_SIGMA,
    WINSOR_C,
    PhaseProfile,
    lagged_windows,
    nan_count,
    nan_median,
    seasonal_profile_js,
    shrunk_phase_profile,
    weekday_profile,
)


def reference_profile(cycles, phase_medians=None, torn_z=0.0) -> PhaseProfile:
    """The rule of `shrunk_phase_profile`, stated plainly (fresh arrays throughout)."""
    n, t, n_cycles, period = cycles.shape
    overall = nan_median(cycles.reshape(n, t, n_cycles * period))
    group = np.moveaxis(cycles, 2, 3)
    if phase_medians is None:
        group_med, k = nan_median(group), nan_count(group)
    else:
        group_med, k = phase_medians
    torn = np.zeros(k.shape, bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        dev = group - group_med[..., None]
        if torn_z > 0:
            norm = np.abs(dev) * np.sqrt(k / np.maximum(k - 1, 1))[..., None]
            norm = np.where((k >= 2)[..., None], norm, np.nan)
            sd = _reference_sd(norm)
            torn = (k == 2) & (
                np.nanmax(np.nan_to_num(norm, nan=0.0), axis=-1) > torn_z * sd[..., None]
            )
            torn &= sd[..., None] > 0
            k = np.where(torn, 0, k)
            group_med = np.where(torn, np.nan, group_med)
            dev = np.where(torn[..., None], np.nan, dev)
            bound = WINSOR_C * sd[..., None, None]
            dev2 = np.where(sd[..., None, None] > 0, np.minimum(dev**2, bound**2), dev**2)
            dev2 = dev2 / np.where(sd[..., None, None] > 0, _WINSOR_CONSISTENCY, 1.0)
        else:
            dev2 = dev**2
        within = np.nansum(dev2, axis=(-1, -2)) / (k.sum(axis=-1) - (k > 0).sum(axis=-1))
        effect = group_med - overall[..., None]
        n_groups = (k > 0).sum(axis=-1)
        between = np.nansum(effect**2, axis=-1) / n_groups
        noise = (
            1.2 * within * np.sum(np.where(k > 0, 1.0 / np.maximum(k, 1), 0.0), axis=-1) / n_groups
        )
        weight = np.clip(1.0 - noise / between, 0.0, 1.0)
    log_factor = np.nan_to_num(weight * effect[..., -1], nan=0.0)
    return PhaseProfile(
        np.exp(np.clip(log_factor, np.log(0.2), np.log(5.0))), k[..., -1], torn[..., -1]
    )


def _reference_sd(norm: np.ndarray) -> np.ndarray:
    """The within-phase sd: winsorized root mean square of the scaled deviations `norm`."""
    n, t, period, n_cycles = norm.shape
    flat = norm.reshape(n, t, period * n_cycles)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd0 = MAD_TO_SIGMA * nan_median(flat)
        sq = np.minimum(flat**2, (WINSOR_C * sd0[..., None]) ** 2)
        sd = np.sqrt(np.nansum(sq, axis=-1) / nan_count(flat) / _WINSOR_CONSISTENCY)
    return np.where(sd0 > 0, sd, 0.0)


def _assert_identical(got: PhaseProfile, want: PhaseProfile) -> None:
    for name, a, b in zip(PhaseProfile._fields, got, want, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        # bit for bit: equal numbers, NaN where NaN, and the same zero signs
        assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), name


def _random_logs(rng, n: int, t: int, period: int) -> np.ndarray:
    """Log readings with a phase pattern, wander, gaps, tied values and rare outliers."""
    pattern = rng.normal(0.0, 0.4, (n, 1, period))
    noise = rng.normal(0.0, rng.uniform(0.02, 0.3, (n, 1, 1)), (n, -(-t // period), period))
    logs = (pattern + noise).reshape(n, -1)[:, :t]
    # ties: a third of the series on a coarse grid (small counts), some of them flat
    coarse = rng.random(n) < 0.33
    logs[coarse] = np.round(logs[coarse] * 2) / 2
    logs[rng.random(n) < 0.08] = 1.0
    # outliers (torn pairs when they fall among a phase's first two values) and gaps
    outlier = rng.random(logs.shape) < 0.04
    logs[outlier] += rng.choice([-3.0, 3.0], outlier.sum())
    logs[rng.random(logs.shape) < 0.12] = np.nan
    logs[rng.random(n) < 0.05, : t // 2] = np.nan  # series starting late
    return logs


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("torn_z", [0.0, 2.0, 5.0])
def test_profile_matches_the_reference_on_random_cycles(seed, torn_z):
    rng = np.random.default_rng(seed)
    n, t, n_cycles, period = 60, 45, 4, 7
    logs = _random_logs(rng, n, t, period)
    cycles = lagged_windows(logs, 1, period * n_cycles).reshape(n, t, n_cycles, period)
    got = shrunk_phase_profile(cycles, torn_z=torn_z)
    want = reference_profile(cycles, torn_z=torn_z)
    _assert_identical(got, want)
    # the inputs reach every branch: phases from 0 to 4 values, two-value phases torn and not
    k = nan_count(np.moveaxis(cycles, 2, 3))
    assert {0, 1, 2, 3, 4} <= set(np.unique(k).tolist())
    if torn_z == 2.0:
        assert 0 < want.torn.sum() < (want.known == 0).sum()
        assert (want.factor != 1.0).any() and (want.factor == 1.0).any()


@pytest.mark.parametrize("seed", [3, 4])
def test_the_callers_match_the_reference_in_their_own_layouts(seed):
    """`seasonal_profile_js` (phase medians passed in) and `weekday_profile` (medians of the
    cycles) hand `shrunk_phase_profile` differently laid out arrays: a sum over a differently
    ordered buffer could round differently, so both are compared whole."""
    rng = np.random.default_rng(seed)
    n, period, n_cycles = 40, 7, 4
    values = np.exp(_random_logs(rng, n, 70, period))
    for torn_z in (0.0, 2.0, 5.0):
        got = seasonal_profile_js(values, period, n_cycles, torn_z)
        with np.errstate(invalid="ignore", divide="ignore"):
            logs = np.log(np.where(values > 0, values, np.nan))
        cycles = lagged_windows(logs, 1, period * n_cycles).reshape(n, 70, n_cycles, period)
        medians = baselines._same_phase_medians(logs, period, n_cycles)
        _assert_identical(got, reference_profile(cycles, medians, torn_z))

    # the weekday profile's cycles: whole-day log medians, 7 x n_weeks days back (as
    # `weekday_profile` builds them)
    p, n_weeks = 24, 3
    hourly = np.exp(_random_logs(rng, 12, p * 7 * 5, p))
    t = hourly.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        day_w = hourly.reshape(12, -1, p)
        day_med = np.where(nan_count(day_w) >= (p + 1) // 2, nan_median(day_w), np.nan)
        by_step = np.repeat(np.log(np.where(day_med > 0, day_med, np.nan)), p, axis=1)
    days = lagged_windows(by_step, p, 7 * n_weeks).reshape(12, t, n_weeks, 7)
    for torn_z in (0.0, 2.0, 5.0):
        want = reference_profile(days, torn_z=torn_z)
        _assert_identical(shrunk_phase_profile(days, torn_z=torn_z), want)
        got = weekday_profile(hourly, p, n_weeks, torn_z)
        assert got.factor.tobytes() == want.factor.tobytes()
        assert got.torn.tobytes() == want.torn.tobytes()
        if torn_z == 2.0:
            assert want.torn.any()


def test_a_pair_exactly_at_the_bound_is_not_torn():
    """Torn is strictly beyond `torn_z` sds: a two-value phase whose scaled deviation equals
    torn_z x sd to the last bit stays known, one a bit beyond it is torn."""
    rng = np.random.default_rng(5)
    logs = rng.normal(0.0, 0.1, (1, 21))
    logs[0, 13] += 1.0  # the phase of step 20 known from two values (days 6 and 13)
    cycles = lagged_windows(logs, 1, 28).reshape(1, 21, 4, 7)
    group = np.moveaxis(cycles, 2, 3)
    k = nan_count(group)
    dev = group - nan_median(group)[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.abs(dev) * np.sqrt(k / np.maximum(k - 1, 1))[..., None]
    norm = np.where((k >= 2)[..., None], norm, np.nan)
    sd = _reference_sd(norm)[0, 20]
    largest = np.nanmax(norm[0, 20, -1])
    assert k[0, 20, -1] == 2 and sd > 0
    # a torn_z whose product with sd is the pair's scaled deviation, bit for bit
    z = largest / sd
    while z * sd < largest:
        z = np.nextafter(z, np.inf)
    while z * sd > largest:
        z = np.nextafter(z, -np.inf)
    assert z * sd == largest
    at = shrunk_phase_profile(cycles, torn_z=z)
    assert not at.torn[0, 20]
    _assert_identical(at, reference_profile(cycles, torn_z=z))
    beyond = shrunk_phase_profile(cycles, torn_z=np.nextafter(z, -np.inf))
    assert beyond.torn[0, 20]
    _assert_identical(beyond, reference_profile(cycles, torn_z=np.nextafter(z, -np.inf)))
