"""The ensemble: evidence from every detector -> the contract's `anomaly_flags` table.

Why an alert needs agreement: on realistic data any single test fires on normal days (the
seeds' Z/IQR flags a few percent of all days). An alert here needs (1) a significant test
after multiple-testing control across the family of tests, (2) a robust z beyond
`min_robust_z` (the count test and the robust view agree), and (3) a relative change of at
least `min_relative_effect` (magnitude, not only significance). CUSUM alarms (sustained
drift) and consistency rules (data that cannot be right) are separate routes to an alert.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from campaign_pipeline.detection import explain
from campaign_pipeline.detection.detectors import count_pvalues, rate_noise, score_panel
from campaign_pipeline.detection.multiple_testing import adjust_pvalues, split_level
from campaign_pipeline.detection.settings import (
    CONTINUOUS_METRICS,
    COST_METRICS,
    COUNT_METRICS,
    RATE_METRICS,
    DetectionSettings,
)
from campaign_pipeline.parallel import map_in_processes

FLAG_COLUMNS = [
    "campaign_id",
    "grain",
    "period_start",
    "period_end",
    "metric",
    "value",
    "expected",
    "expected_lower",
    "expected_upper",
    "score",
    "p_value",
    "q_value",
    "methods",
    "anomaly_type",
    "severity",
    "confidence",
    "explanation",
    "suggested_action",
    "relative_change",
]
SUM_COLUMNS = ("spend", "impressions", "clicks", "conversions", "leads", "converted_leads")
# What `detect_by_week` reads of the daily metrics (rates are derived from the sums).
DAILY_COLUMNS = ("campaign_id", "date", "has_delivery", *SUM_COLUMNS)
EVIDENCE_KEYS = (
    "judged",
    "expected",
    "lower",
    "upper",
    "z",
    "p",
    "rel_effect",
    "cusum_up",
    "cusum_dn",
    "seeds_z",
    "seeds_iqr",
    "shift_z",
    "shift_p",
    "shift_rel",
    "shift_expected",
    "shift_days",
    "shift_ok",
    "count_var",
)
BOOL_KEYS = ("judged", "cusum_up", "cusum_dn", "seeds_z", "seeds_iqr", "shift_ok")
# The evidence the consistency rules read at every step, and of which metrics (a tracking
# break is a run of days that may begin before the judged ones); the rest is read at the
# judged steps only.
RULE_EVIDENCE: dict[str, tuple[str, ...]] = {
    "judged": ("clicks", "conversions", "leads"),
    "z": ("clicks",),
    "expected": ("conversions", "leads"),
    "count_var": ("conversions",),
}


def _every_step(ev: dict[str, np.ndarray], key: str, metric: str, metrics: tuple[str, ...]):
    """``ev[key]`` of ``metric`` at every step: kept apart as ``key:metric`` when `evidence`
    held the other steps in scope only (its ``full_keys``)."""
    held = ev.get(f"{key}:{metric}")
    return held if held is not None else ev[key][metrics.index(metric)]


def empty_flags() -> pd.DataFrame:
    """The flags table with no rows but the column types of a non-empty one."""
    text = (
        "campaign_id",
        "grain",
        "metric",
        "methods",
        "anomaly_type",
        "severity",
        "explanation",
        "suggested_action",
    )
    return pd.DataFrame(
        {
            c: pd.Series(dtype=object if c in text or c.startswith("period") else float)
            for c in FLAG_COLUMNS
        }
    )


def metric_kind(metric: str) -> str:
    if metric.endswith("_log"):
        return "log"
    if metric.endswith("_log1p"):
        return "continuous"
    if metric.endswith("_count"):
        return "count"
    if metric.endswith("_linear"):
        return "linear"
    if metric in COUNT_METRICS:
        return "count"
    if metric in RATE_METRICS:
        return "rate"
    if metric == "spend":
        return "continuous"  # zero spend is a real value (a paused day), so no log scale
    if metric in CONTINUOUS_METRICS:
        return "log"
    return "continuous"


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Ratio of sums with NaN for a zero or unknown denominator (never 0, never inf)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def derived_panels(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rates from the sums, so a rate is always the ratio of the counts the test uses."""
    out = dict(p)
    out["ctr"] = ratio(p["clicks"], p["impressions"])
    out["conversion_rate"] = ratio(p["conversions"], p["clicks"])
    out["lead_conversion_rate"] = ratio(p["converted_leads"], p["leads"])
    out["cpc"] = ratio(p["spend"], p["clicks"])
    out["cpm"] = ratio(1000.0 * p["spend"], p["impressions"])
    out["cpa"] = ratio(p["spend"], p["conversions"])
    out["cpl"] = ratio(p["spend"], p["leads"])
    return out


def evidence(
    panels: dict[str, np.ndarray],
    metrics: tuple[str, ...],
    *,
    period: int | None,
    window: int,
    min_history: int,
    settings: DetectionSettings,
    steps_per_day: int | None = None,
    pool_scales: bool = False,
    phase_scale: bool = False,
    block: int | None = None,
    scope: slice | None = None,
    chunk_cells: int | None = None,
    full_keys: dict[str, tuple[str, ...]] | None = None,
    threads: int = 1,
) -> dict[str, np.ndarray]:
    """Run the detectors with metrics of one kind stacked into one panel (no loop per metric).

    A rate's day noise is pooled across the series of each metric when the settings say so;
    with `pool_scales` the other kinds' baseline scales are too (`detectors.moderate_scales`).
    `block`: the series are independent blocks of this many rows (stacked calls, see
    `detect_by_week`), pooled each on its own; default one block of all series.
    `scope`: the steps that will be decided (`score_panel`); a kind that pools nothing then
    skips the series with no reading in scope (nothing of theirs can be decided there) and,
    with `chunk_cells`, scores the rest in blocks of about that many cells, so its trailing
    windows stay small (the result does not depend on it). With `full_keys` as well (evidence
    key -> metrics), every key (and `value`) holds the steps in scope only, and each key's
    listed metrics are kept at every step apart, as ``"key:metric"`` of shape (n_series,
    n_steps) (`_every_step` reads them).
    `threads`: the kinds, and a kind's blocks of series, are scored in this many threads (they
    share nothing, and numpy releases the interpreter lock inside its loops, so a one-week run
    uses every core; the result does not depend on it).
    Returns arrays of shape (n_metrics, n_series, n_steps) in the order of `metrics`.
    """
    n, t = next(iter(panels.values())).shape
    block = block or n
    n_blocks = n // block
    trim = scope is not None and full_keys is not None
    width = len(range(*scope.indices(t))) if trim else t
    kept = scope if trim else slice(None)
    result = {
        k: np.zeros((len(metrics), n, width), dtype=bool if k in BOOL_KEYS else float)
        for k in EVIDENCE_KEYS
    }
    every_step = (
        [(k, metrics.index(m)) for k, ms in (full_keys or {}).items() for m in ms if m in metrics]
        if trim
        else []
    )
    for k, i in every_step:
        result[f"{k}:{metrics[i]}"] = np.zeros((n, t), dtype=bool if k in BOOL_KEYS else float)
    tasks = []  # (score a block of series and store it), pooled kinds first: they take longest
    by_kind: dict[str, list[int]] = {}
    for i, m in enumerate(metrics):
        by_kind.setdefault(metric_kind(m), []).append(i)
    for kind, idx in by_kind.items():
        # a kind's stack (its metrics one above the other) is built by the task that scores
        # it, so a process scoring one kind at a time holds one kind's stack
        parts = {"values": [panels[metrics[i]] for i in idx]}
        kwargs = {
            "pool_groups": np.repeat(np.arange(len(idx) * n_blocks), block),
            "pool_segments": (
                np.tile(np.repeat(np.arange(n_blocks), block), len(idx)) if n_blocks > 1 else None
            ),
            "pool_scales": pool_scales,
            "phase_scale": phase_scale,
        }
        if kind == "rate":
            parts["numer"] = [panels[RATE_METRICS[metrics[i]][0]] for i in idx]
            parts["denom"] = [panels[RATE_METRICS[metrics[i]][1]] for i in idx]
        elif kind == "log" and all(
            metrics[i] in COST_METRICS and COST_METRICS[metrics[i]][1] in panels for i in idx
        ):
            parts["numer"] = [panels[COST_METRICS[metrics[i]][0]] for i in idx]
            parts["denom"] = [panels[COST_METRICS[metrics[i]][1]] for i in idx]
        score = dict(
            kind=kind,
            period=period,
            window=window,
            min_history=min_history,
            settings=settings,
            steps_per_day=steps_per_day,
            scope=scope,
        )
        pooled = (kind == "rate" and settings.rate_noise_pooling) or (
            kind != "rate" and pool_scales
        )
        # rows of the stack -> (metric position, series) in `result`
        metric_of = np.repeat(np.asarray(idx), n)
        series_of = np.tile(np.arange(n), len(idx))

        def scored(rows, values, metric_of=metric_of, series_of=series_of, **kwargs):
            # each block writes its own rows of `result`, so blocks can be stored concurrently
            ev = score_panel(values, **kwargs)
            for k in EVIDENCE_KEYS:
                result[k][metric_of[rows], series_of[rows]] = ev[k][:, kept]
            for k, i in every_step:
                mine = metric_of[rows] == i
                if mine.any():
                    result[f"{k}:{metrics[i]}"][series_of[rows][mine]] = ev[k][mine]

        if pooled or scope is None:

            def whole(scored=scored, parts=parts, score=score, kwargs=kwargs, pooled_rate=False):
                stacked = {name: np.concatenate(arrays, axis=0) for name, arrays in parts.items()}
                values = stacked.pop("values")
                if pooled_rate:
                    # only the day noise is pooled across series: with it computed for the
                    # stack, the rest is scored a block of series at a time, so the stack's
                    # evidence is never held whole before it is stored
                    rows_per_block = max(1, chunk_cells // t)
                    _score_pooled_rates(
                        scored, values, score, kwargs | stacked, rows_per_block=rows_per_block
                    )
                else:
                    chunk_rows = max(1, chunk_cells // t) if chunk_cells else None
                    scored(slice(None), values, **score, **kwargs, **stacked, chunk_rows=chunk_rows)

            pooled_rate = kind == "rate" and pooled and bool(chunk_cells)
            tasks.insert(0, partial(whole, pooled_rate=pooled_rate))
        else:
            # a series with no reading in scope cannot be decided there: the evidence of a
            # series that is never judged (False, NaN) is all it needs
            for k in EVIDENCE_KEYS:
                if k not in BOOL_KEYS:
                    result[k][idx] = np.nan
            rows = np.concatenate(
                [
                    np.flatnonzero((~np.isnan(values[:, scope])).any(axis=1)) + position * n
                    for position, values in enumerate(parts["values"])
                ]
            )
            step = max(1, (chunk_cells or n * t) // t)
            for lo in range(0, len(rows), step):
                part = rows[lo : lo + step]

                def block_of_rows(scored=scored, part=part, parts=parts, score=score):
                    stacked = {name: _stacked_rows(arrays, part) for name, arrays in parts.items()}
                    scored(part, stacked.pop("values"), **score, **stacked, phase_scale=phase_scale)

                tasks.append(block_of_rows)
    if threads > 1 and len(tasks) > 1:
        with ThreadPoolExecutor(min(threads, len(tasks))) as pool:
            for done in [pool.submit(task) for task in tasks]:
                done.result()  # raises a block's exception here
    else:
        for task in tasks:
            task()
    result["value"] = np.stack([panels[m][:, scope if trim else slice(None)] for m in metrics])
    return result


def _stacked_rows(arrays: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    """``np.concatenate(arrays)[rows]`` for increasing ``rows``, without the concatenation."""
    n = len(arrays[0])
    which = rows // n
    return np.concatenate(
        [arrays[i][rows[which == i] - i * n] for i in range(len(arrays)) if (which == i).any()]
    )


def _score_pooled_rates(
    scored, stack: np.ndarray, score: dict, kwargs: dict, rows_per_block: int
) -> None:
    """Score a stack of rates whose day noise is pooled: `rate_noise` over the whole stack,
    then ``scored`` (score and store) one block of ``rows_per_block`` series at a time."""
    numer, denom = kwargs["numer"], kwargs["denom"]
    noise = rate_noise(
        stack,
        numer,
        denom,
        window=score["window"],
        min_history=score["min_history"],
        settings=score["settings"],
        pool_groups=kwargs["pool_groups"],
        pool_segments=kwargs["pool_segments"],
        chunk_rows=rows_per_block,
    )
    for lo in range(0, len(stack), rows_per_block):
        rows = slice(lo, lo + rows_per_block)
        scored(
            rows,
            stack[rows],
            **score,
            numer=numer[rows],
            denom=denom[rows],
            noise=tuple(part[rows] for part in noise),
        )


def decide(
    ev: dict[str, np.ndarray],
    in_scope: np.ndarray,
    family: np.ndarray,
    s: DetectionSettings,
    steps: int = 1,
) -> dict[str, np.ndarray]:
    """Which detectors fire at each point (arrays like ev['z']); s must be `effective`.

    ``family`` groups the tests corrected together; with ``steps`` > 1 each group is one time
    step of a larger family that spends its level over that many steps, so the step's
    adjusted p-values are multiplied by it (`multiple_testing.split_level`)."""
    p = np.where(in_scope & ev["judged"], ev["p"], np.nan)
    fam = np.broadcast_to(family, p.shape).ravel()
    if s.use_window_shift:
        # the window-shift tests are tests of the same run: one family with the daily tests.
        # Every judged point has a shift hypothesis; where its recent days disagree in
        # direction (or its windows are incomplete) the shift test ran and did not reject, so
        # it counts in the family with p = 1. Leaving those out would let the direction
        # check, which reads the same data, shrink the family to about half and run BH at
        # about twice the stated `fdr`.
        p_shift = np.where(in_scope & ev["judged"], np.nan_to_num(ev["shift_p"], nan=1.0), np.nan)
        both = adjust_pvalues(
            np.concatenate([p.ravel(), p_shift.ravel()]),
            np.concatenate([fam, fam]),
            s.multiple_testing,
        )
        q, q_shift = both[: p.size].reshape(p.shape), both[p.size :].reshape(p.shape)
    else:
        q = adjust_pvalues(p.ravel(), fam, s.multiple_testing).reshape(p.shape)
        q_shift = np.full(p.shape, np.nan)
    q, q_shift = split_level(q, steps), split_level(q_shift, steps)
    level = s.fdr if s.multiple_testing == "bh" else s.alpha
    z, rel = _sizes(ev, "z", "rel_effect")
    big = rel >= s.min_relative_effect
    scope = in_scope & ev["judged"]
    stat = scope & (np.nan_to_num(q, nan=1.0) <= level) & big
    if s.use_robust:
        stat &= z >= s.min_robust_z
    fired = {"test": stat if (s.use_count_tests or s.use_robust) else np.zeros_like(stat)}
    if s.use_cusum:
        # a CUSUM alarm needs a material change too: half the single-day effect threshold
        fired["cusum"] = (
            scope & (ev["cusum_up"] | ev["cusum_dn"]) & (rel >= 0.5 * s.min_relative_effect)
        )
    if s.use_window_shift:
        shift_z, shift_rel = _sizes(ev, "shift_z", "shift_rel")
        fired["shift"] = (
            scope
            & ev["shift_ok"]
            & (np.nan_to_num(q_shift, nan=1.0) <= level)
            & (shift_rel >= s.min_relative_effect)
            & (shift_z >= s.min_robust_z)
        )
    if s.use_seeds_zscore:
        fired["seeds_z"] = scope & ev["seeds_z"]
    if s.use_seeds_iqr:
        fired["seeds_iqr"] = scope & ev["seeds_iqr"]
    return {"q": q, "q_shift": q_shift, "fired": fired}


CORROBORATED = ("test", "cusum", "shift")  # statistical routes; rules need no second opinion


def _sizes(
    ev: dict[str, np.ndarray], z_key: str, rel_key: str, ratio: bool | np.ndarray = False
) -> tuple[np.ndarray, np.ndarray]:
    """|z| and the size of the relative effect of a route, unknown as 0 (never large enough
    to fire). ratio (for all points, or per point as an array like ev's): a drop to 1/(1+e)
    is as large as a rise of e (the log scale's view)."""
    rel = np.nan_to_num(ev[rel_key], nan=0.0, posinf=1e9)
    with np.errstate(divide="ignore"):
        size = np.where(
            np.asarray(ratio, bool) & (rel < 0),
            1.0 / np.maximum(1.0 + rel, 1e-9) - 1.0,
            np.abs(rel),
        )
    return np.abs(np.nan_to_num(ev[z_key], nan=0.0)), size


def _strong_alone(z: np.ndarray, rel: np.ndarray, s: DetectionSettings) -> np.ndarray:
    return (z >= s.strong_single_factor * s.min_robust_z) & (
        rel >= s.strong_single_factor * s.min_relative_effect
    )


def _fired_within(mask: np.ndarray, lags: int) -> np.ndarray:
    """Whether `mask` was set at any of the `lags` steps before each step (last axis)."""
    counts = np.cumsum(mask, axis=-1)
    before = np.zeros(mask.shape, np.int64)
    before[..., 1:] = counts[..., :-1]  # set at steps < t
    older = np.zeros(mask.shape, np.int64)
    if lags + 1 < mask.shape[-1]:
        older[..., lags + 1 :] = counts[..., : -(lags + 1)]  # set at steps < t - lags
    return before - older > 0


def corroborate(
    dec: dict,
    ev: dict[str, np.ndarray],
    s: DetectionSettings,
    window: int | None = None,
    ratio_effect: bool | np.ndarray = False,
) -> dict:
    """Keep a test/CUSUM alert only if another metric of the same series-step fired too, or
    if it is strong alone (z and effect `strong_single_factor` times their thresholds).

    ratio_effect: measure the strong-alone effect as max(v/e, e/v) - 1 (symmetric on the log
    scale) instead of |v/e - 1|, everywhere or per point; see
    `DetectionSettings.lone_series_ratio_effect`.
    """
    fired = dict(dec["fired"])
    any_metric = np.zeros(ev["z"].shape, bool)
    for k in CORROBORATED:
        if k in fired:
            any_metric |= fired[k]
    n_metrics = any_metric.sum(axis=0, keepdims=True)  # metrics firing per campaign-day
    strong = _strong_alone(*_sizes(ev, "z", "rel_effect", ratio_effect), s)
    strong_shift = _strong_alone(*_sizes(ev, "shift_z", "shift_rel", ratio_effect), s)
    for k in CORROBORATED:
        if k in fired:
            fired[k] = fired[k] & ((n_metrics >= 2) | (strong_shift if k == "shift" else strong))
    if "shift" in fired and "test" in fired and s.points_absorb_shifts:
        fired["shift"] = fired["shift"] & ~_repeats_points(fired["test"], ev)
    if "shift" in fired and s.shift_onset_only:
        # one shift is one event: report its first step, not every step the new level lasts,
        # nor again the same way while the reference median still holds pre-change steps
        # (until `shift_quiet_share` of the baseline window lies after the change): earlier
        # steps only, so this stays causal
        raw = fired["shift"]
        quiet = max(s.shift_windows) + int(s.shift_quiet_share * (window or s.baseline_days))
        up = raw & (np.nan_to_num(ev["shift_z"]) > 0)
        down = raw & (np.nan_to_num(ev["shift_z"]) < 0)
        reported = {1.0: up & ~_fired_within(up, quiet), -1.0: down & ~_fired_within(down, quiet)}
        fired["shift"] = reported[1.0] | reported[-1.0]
        if s.shift_absorbs_points:
            absorbed = _repeats_a_shift(reported, ev, quiet, s.min_relative_effect)
            for k in ("test", "cusum"):
                if k in fired:
                    fired[k] = fired[k] & ~absorbed
    return {**dec, "fired": fired}


def _repeats_points(reported_points: np.ndarray, ev: dict[str, np.ndarray]) -> np.ndarray:
    """Window shifts carried by point alerts already reported: the shift's window (the
    `shift_days` steps ending at the step) holds a reported point alert of the same series (any
    metric) on an earlier step, and the step itself looks more like the old level than the
    shifted one (on the log scale, its own change is less than half the window's). The day
    after a two-day outage, back at 60 % of normal, is such a step; the second day of a
    lasting level shift is not. Causal: earlier reports and the step's own values only.
    """
    any_point = reported_points.any(axis=0)  # (series, steps)
    shift_days = ev["shift_days"]
    with np.errstate(divide="ignore", invalid="ignore"):
        own = np.log1p(np.nan_to_num(ev["rel_effect"], nan=0.0, posinf=1e9))
        window = np.log1p(np.nan_to_num(ev["shift_rel"], nan=0.0, posinf=1e9))
        recovered = np.sign(window) * own < 0.5 * np.abs(window)
    out = np.zeros(shift_days.shape, bool)
    for w in np.unique(shift_days[np.isfinite(shift_days)]).astype(int):  # the 2 window lengths
        out |= (shift_days == w) & _fired_within(any_point, w - 1)[None]
    return out & np.nan_to_num(recovered, nan=0.0).astype(bool)


def _repeats_a_shift(
    reported: dict[float, np.ndarray], ev: dict[str, np.ndarray], quiet: int, min_effect: float
) -> np.ndarray:
    """Steps whose point change the same way is no more than a shift reported within the last
    `quiet` steps: (1 + rel) / (1 + shift_rel) - 1, the step against the shifted level, stays
    short of `min_effect`.

    The step's own expected value stands in for the shift's reference. Within the quiet
    period the trailing median moves part of the way to the new level, which shrinks the
    ratio, so this errs toward absorbing: once the median has moved half-way after a 40 %
    drop, a step needs 44 % (not 30 %) beyond the new level to be reported. Earlier reports only
    (causal); the last report of each direction before the step counts. `reported` holds the
    reported shifts of each direction, keyed by its sign (+1.0 up, -1.0 down).
    """
    z, rel = np.nan_to_num(ev["z"]), np.nan_to_num(ev["rel_effect"], nan=0.0, posinf=1e9)
    shift_rel = np.nan_to_num(ev["shift_rel"])
    t = np.arange(shift_rel.shape[-1])
    out = np.zeros(shift_rel.shape, bool)
    for sign, rep in reported.items():
        last = np.maximum.accumulate(np.where(rep, t, -1), axis=-1)
        prev = np.full(last.shape, -1)
        prev[..., 1:] = last[..., :-1]  # the last report strictly before each step
        level = 1.0 + np.take_along_axis(shift_rel, np.maximum(prev, 0), axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            beyond = np.where(level > 0, (1.0 + rel) / level - 1.0, np.inf)
        out |= (
            (prev >= 0) & (t - prev <= quiet) & (np.sign(z) == sign) & (sign * beyond < min_effect)
        )
    return out


def _family(times: pd.DatetimeIndex, how: str) -> np.ndarray:
    """Each time's family for `how`: its day, its ISO week (Monday), or one for the call."""
    if how == "call":
        return np.zeros(len(times), dtype=np.int64)
    day = times.normalize()
    if how == "day":
        return day.asi8
    return (day - pd.to_timedelta(times.dayofweek, unit="D")).asi8


FAMILY_PERIODS = {"week": pd.Timedelta(days=7), "day": pd.Timedelta(days=1)}


def correction_groups(
    times: pd.DatetimeIndex, step: pd.Timedelta, s: DetectionSettings
) -> tuple[np.ndarray, int]:
    """The groups tests at ``times`` are corrected in, and the steps each group's family
    spends its level over: with `causal_correction` a group is one time step, one of the at
    most ceil(period / step) steps of its week's (or day's) family (a day of a week is one of
    7, an hour one of 168); else the whole family at once."""
    if s.causal_correction and s.correction_family != "call":
        return times.asi8, max(1, math.ceil(FAMILY_PERIODS[s.correction_family] / step))
    return _family(times, s.correction_family), 1


def _to_day(x) -> pd.Timestamp:
    return pd.Timestamp(x).normalize()


def _build_panels(
    frame: pd.DataFrame, key: str, time: str, columns, keys: pd.Index, times: pd.DatetimeIndex
):
    ki = keys.get_indexer(frame[key])
    ti = times.get_indexer(frame[time])
    ok = (ki >= 0) & (ti >= 0)
    out = {}
    for c in columns:
        arr = np.full((len(keys), len(times)), np.nan)
        if c in frame:
            arr[ki[ok], ti[ok]] = frame[c].to_numpy(dtype=float)[ok]
        out[c] = arr
    return out


def _run_sums(values: np.ndarray, run: np.ndarray) -> np.ndarray:
    """Sum of non-negative ``values`` over the current run of True in ``run`` (0 off runs)."""
    cs = np.cumsum(values, axis=1)
    at_break = np.maximum.accumulate(np.where(run, 0.0, cs), axis=1)
    return np.where(run, cs - at_break, 0.0)


def _rules(
    p: dict[str, np.ndarray],
    ev: dict[str, np.ndarray],
    metrics: tuple[str, ...],
    budget: np.ndarray,
    s: DetectionSettings,
) -> list[tuple[str, str, np.ndarray, str, np.ndarray | None]]:
    """Consistency rules -> list of (metric, anomaly_type, mask (n, T), note, per-campaign
    numbers or None). A note with ``{}`` names a number of the campaign's own (the budget a
    spend broke): a reader must see the limit that fired, not only the statistical band, which
    may well hold the flagged value."""
    out = []
    with np.errstate(invalid="ignore"):
        # conversions above clicks is not a rule: platforms count view-through conversions and
        # several conversions per click; a jump in conversions is the count test's to judge
        out.append(
            (
                "spend",
                "tracking_error",
                (p["spend"] > 0) & (p["impressions"] == 0),
                "spend was recorded without a single impression",
                None,
            )
        )
        cap = s.budget_overspend_ratio * budget[:, None]
        out.append(
            (
                "spend",
                "budget_overspend",
                (budget[:, None] > 0) & (p["spend"] > cap),
                f"spend is above {s.budget_overspend_ratio:g}x the daily budget of {{}}",
                budget,
            )
        )
    if "conversions" in metrics and "clicks" in metrics:
        days = s.tracking_break_days
        zero = np.nan_to_num(p["conversions"], nan=-1.0) == 0
        clicks_ok = (
            _every_step(ev, "judged", "clicks", metrics)
            & (
                np.abs(np.nan_to_num(_every_step(ev, "z", "clicks", metrics), nan=99.0))
                < s.min_robust_z
            )
            & (p["clicks"] > 0)
        )
        exp_conv = np.nan_to_num(
            _every_step(ev, "expected", "conversions", metrics), nan=0.0
        ) * _every_step(ev, "judged", "conversions", metrics)
        # -log P(0 conversions) of each day under the count test's negative binomial: size
        # log(1 + mean / size), the Poisson mean itself where the counts are not over-dispersed.
        # Over-dispersed counts (a campaign that has slow days) make zero days far likelier
        # than a Poisson of the same mean would, so the run must be longer to mean a break.
        _, p_zero = count_pvalues(
            np.zeros_like(exp_conv),
            exp_conv,
            np.nan_to_num(_every_step(ev, "count_var", "conversions", metrics), nan=0.0),
        )
        surprise = np.where(exp_conv > 0, -np.log(np.maximum(p_zero, 1e-300)), 0.0)
        run = zero & clicks_ok
        # surprise and length of the current zero run, reset wherever the run breaks:
        # cumulative sums minus their value at the last break (both never decrease)
        total = _run_sums(np.where(run, surprise, 0.0), run)
        length = _run_sums(run.astype(float), run)
        out.append(
            (
                "conversions",
                "tracking_error",
                run & (length >= days) & (total >= s.tracking_break_min_expected),
                "no conversions for several days while clicks were normal, where the baseline "
                f"expected at least {s.tracking_break_min_expected:g}",
                None,
            )
        )
    if "leads" in metrics:
        expected_leads = np.nan_to_num(_every_step(ev, "expected", "leads", metrics), nan=np.inf)
        with np.errstate(invalid="ignore"):
            flood = (
                _every_step(ev, "judged", "leads", metrics)
                & (p["leads"] >= s.lead_flood_min_leads)
                & (p["leads"] >= s.lead_flood_ratio * np.maximum(expected_leads, 1.0))
            )
        out.append(
            (
                "leads",
                "lead_flood",
                flood,
                f"at least {s.lead_flood_ratio:g}x the expected leads in one day",
                None,
            )
        )
    return out


# A fall to a fifth of the expected value or less is a collapse (an outage, a broken tag), not
# a mere drop; typing only, after the detectors decided (the flags do not depend on it).
COLLAPSE = -0.8
DELIVERY_METRICS = ("spend", "impressions", "clicks")


def _classify(
    metric: np.ndarray,
    rel: np.ndarray,
    methods_test: np.ndarray,
    methods_cusum: np.ndarray,
    sustained: np.ndarray,
    delivery_collapsed: np.ndarray | None = None,
    clicks_flat: np.ndarray | None = None,
) -> np.ndarray:
    """anomaly_type of each flag. delivery_collapsed: the campaign's spend, impressions or clicks
    collapsed that period, so a collapse of what follows them (conversions, leads) is the
    outage's, not a tracking error. clicks_flat: the campaign's clicks were judged and normal
    that period, so conversions that doubled or more without more clicks point at the
    conversion tag (a tag firing twice, a broadened conversion event): a tracking error."""
    up = np.nan_to_num(rel, nan=0.0, posinf=1e9) > 0
    m = metric
    collapsed = np.nan_to_num(rel, nan=0.0) <= COLLAPSE
    outage = np.zeros(len(m), bool) if delivery_collapsed is None else delivery_collapsed
    flat = np.zeros(len(m), bool) if clicks_flat is None else clicks_flat
    conversion_jump = np.isin(m, ["conversions", "conversion_rate"]) & up & (rel >= 1.0)
    # a collapse names its cause before "it lasted" or "it crept" does: the third day of an
    # outage is still an outage (critical, with the delivery action), not a "new level", and
    # the leads that stopped with delivery are the outage's even when only the slow detectors
    # (CUSUM, the window shift) were past their bar that day
    conds = [
        collapsed & (np.isin(m, DELIVERY_METRICS) | outage),
        (~methods_test) & methods_cusum,
        np.isin(m, ["conversions", "conversion_rate"]) & collapsed,
        sustained,
        (m == "spend") & up,
        np.isin(m, ["cpc", "cpm"]) & up,
        conversion_jump & flat,
        conversion_jump,
        (m == "leads") & up & (rel >= 1.0),
        up,
    ]
    choices = [
        "delivery_outage",
        "drift",
        "tracking_error",
        "level_shift",
        "spend_spike",
        "cost_spike",
        "tracking_error",
        "conversion_inflation",
        "lead_flood",
        "spike",
    ]
    return np.select(conds, choices, "drop").astype(object)


def _run_length(mask: np.ndarray) -> np.ndarray:
    """Along the last axis: how many steps in a row, ending at each step, `mask` holds (0 where
    not)."""
    steps = np.arange(mask.shape[-1])
    last_off = np.maximum.accumulate(np.where(mask, -1, steps), axis=-1)
    return np.where(mask, steps - last_off, 0)


def _weeks_running(ev: dict[str, np.ndarray], s: DetectionSettings) -> np.ndarray:
    """Weeks in a row, this one included, that a metric has been beyond its band in the same
    direction (|z| and effect past the thresholds). Read from the evidence of the past weeks,
    not from their flags: a week's partition is decided on its own, so an earlier week's flag
    is not known to the call that judges the next one, while its evidence is."""
    z_size, rel_size = _sizes(ev, "z", "rel_effect")
    beyond = ev["judged"] & (z_size >= s.min_robust_z) & (rel_size >= s.min_relative_effect)
    up = ev["z"] > 0
    return np.where(up, _run_length(beyond & up), _run_length(beyond & (ev["z"] < 0)))


def _flags_from_evidence(
    ev, dec, metrics, keys, times, grain, in_scope, s, rules=(), baseline_label="", offsets=None
):
    """Long table of fired points (only those: the table stays small). `offsets`: days each
    row's calendar lies after `times` (stacked calls, see `detect_by_week`)."""
    fired = dec["fired"]
    any_method = np.zeros(ev["z"].shape, bool)
    for mask in fired.values():
        any_method |= mask
    rule_masks = {}
    for metric, atype, mask, note, numbers in rules:
        if metric not in metrics:
            continue
        i = metrics.index(metric)
        full = np.zeros(ev["z"].shape, bool)
        full[i] = mask & in_scope[i]
        rule_masks[(metric, atype, note)] = (full, numbers)
        any_method |= full
    mi, ci, ti = np.nonzero(any_method)
    if len(mi) == 0:
        return empty_flags()
    names = list(fired) + ["rule"]
    method_hits = {k: v[mi, ci, ti] for k, v in fired.items()}
    rule_hit = np.zeros(len(mi), bool)
    rule_type = np.full(len(mi), None, dtype=object)
    rule_note = np.full(len(mi), "", dtype=object)
    for (metric, atype, note), (full, numbers) in rule_masks.items():
        hit = full[mi, ci, ti]
        rule_type = np.where(hit & (rule_type == None), atype, rule_type)  # noqa: E711
        noted = np.flatnonzero(hit & (rule_note == ""))
        if numbers is None:
            rule_note[noted] = note
        else:  # a few flags: formatted one by one
            rule_note[noted] = [
                note.format(explain.format_value(metric, numbers[c])) for c in ci[noted]
            ]
        rule_hit |= hit
    method_hits["rule"] = rule_hit
    methods = np.full(len(mi), "", dtype=object)
    for k in names:
        label = {
            "test": "count_test+robust_z" if s.use_count_tests else "robust_z",
            "shift": "window_shift",
        }.get(k, k)
        methods = np.where(
            method_hits.get(k, False),
            np.where(methods == "", label, methods + "," + label),
            methods,
        )
    # sustained: the test fired on this series on each of the two previous steps as well
    test = fired.get("test", np.zeros(ev["z"].shape, bool))
    sustained = (_run_length(test) >= 3)[mi, ci, ti]
    metric = np.asarray(metrics, dtype=object)[mi]
    no = np.zeros(len(mi), bool)
    # a window-shift flag without a daily test reports the window's numbers: the day alone
    # may be unremarkable, what is unusual is the run of days against the lagged reference
    shift_only = method_hits.get("shift", no) & ~method_hits.get("test", no) & ~rule_hit
    rel = np.where(shift_only, ev["shift_rel"][mi, ci, ti], ev["rel_effect"][mi, ci, ti])
    delivery_collapsed = np.zeros(ev["z"].shape[1:], bool)
    for i in (i for i, name in enumerate(metrics) if name in DELIVERY_METRICS):
        delivery_collapsed |= ev["judged"][i] & (
            np.nan_to_num(ev["rel_effect"][i], nan=0.0) <= COLLAPSE
        )
    clicks_flat = np.zeros(ev["z"].shape[1:], bool)
    if "clicks" in metrics:
        k = metrics.index("clicks")
        clicks_flat = ev["judged"][k] & (
            np.abs(np.nan_to_num(ev["z"][k], nan=np.inf)) < s.min_robust_z
        )
    atype = _classify(
        metric,
        rel,
        method_hits.get("test", no),
        method_hits.get("cusum", no) | method_hits.get("shift", no),
        sustained,
        delivery_collapsed[ci, ti],
        clicks_flat[ci, ti],
    )
    atype = np.where(rule_hit, rule_type, atype)
    weeks_running = np.full(len(mi), np.nan)
    if grain == "week":
        # a second week beyond the band in the same direction is a new level, not a spike
        weeks_running = _weeks_running(ev, s)[mi, ci, ti].astype(float)
        generic = np.isin(atype, ["spike", "drop", "spend_spike", "cost_spike"])
        atype = np.where(generic & (weeks_running >= 2), "level_shift", atype)
    z = np.where(shift_only, ev["shift_z"][mi, ci, ti], ev["z"][mi, ci, ti])
    q = np.where(shift_only, dec["q_shift"][mi, ci, ti], dec["q"][mi, ci, ti])
    expected = np.where(shift_only, ev["shift_expected"][mi, ci, ti], ev["expected"][mi, ci, ti])
    p_value = np.where(shift_only, ev["shift_p"][mi, ci, ti], ev["p"][mi, ci, ti])
    # a shift-only flag is about a run of days, so the one-day band does not describe it
    lower = np.where(shift_only, np.nan, ev["lower"][mi, ci, ti])
    upper = np.where(shift_only, np.nan, ev["upper"][mi, ci, ti])
    window_days = np.where(shift_only, ev["shift_days"][mi, ci, ti], np.nan)
    period_start = times[ti]
    if offsets is not None:
        period_start = period_start + pd.to_timedelta(offsets[ci], unit="D")
    period_end = period_start + (pd.Timedelta(days=6) if grain == "week" else pd.Timedelta(0))
    flags = pd.DataFrame(
        {
            "campaign_id": np.asarray(keys)[ci],
            "grain": grain,
            "period_start": period_start,
            "period_end": period_end,
            "metric": metric,
            "value": ev["value"][mi, ci, ti],
            "expected": expected,
            "expected_lower": lower,
            "expected_upper": upper,
            "score": np.abs(z),
            "p_value": p_value,
            "q_value": q,
            "methods": methods,
            "anomaly_type": atype,
            "relative_change": rel,
            "rule_note": rule_note,
            "window_days": window_days,
            "weeks_running": weeks_running,
        }
    )
    flags["severity"] = explain.severity(rel, atype, s)
    flags["confidence"] = explain.confidence(flags, s.confidence_coefficients)
    flags["explanation"] = explain.explanations(
        flags.assign(rel_effect=flags["relative_change"]), baseline_label
    )
    flags["suggested_action"] = explain.suggested_actions(
        flags["metric"], flags["anomaly_type"], flags["relative_change"]
    )
    return flags[FLAG_COLUMNS]


# Day cells (series x steps, padding included) judged in one stacked call of `detect_by_week`:
# the detectors hold a few dozen arrays of this size while they score it, so this bounds the
# memory of a long backfill, while the weeks of a few hundred campaigns still go in a few
# calls. A week's campaigns that can be judged are never split (they are pooled and tested
# together); its campaigns too short to be judged go in blocks of at most this many cells
# (`stretch_blocks`).
WEEK_CHUNK_CELLS = 100_000
# Worker processes are used only when each gets at least this many chunks: starting one
# (a fresh interpreter importing numpy, pandas and scipy) costs about a second, what judging
# a chunk or two costs, so a run of a few weeks of a small account stays in one process.
MIN_CHUNKS_PER_PROCESS = 4
# Cells (series x steps) scored at once by a detector kind that pools nothing across series:
# its trailing windows then take about 28 x 8 bytes x this (11 MB), which stays in the
# processor's caches instead of paging through hundreds of MB per temporary array.
SCORE_CHUNK_CELLS = 50_000


@dataclass
class _Panels:
    """Daily sums of one call, or of several independent calls stacked as blocks of rows.

    Rows are campaigns (one block per call, padded with empty rows to the same size), columns
    days. Every block's columns cover the same weekdays, so one calendar (`times`, the first
    block's) and a shift per row (`offsets`, in days) place every cell on its date.
    """

    base: dict[str, np.ndarray]  # SUM_COLUMNS -> (rows, days)
    keys: np.ndarray  # the campaign id of each row (None for a padding row)
    times: pd.DatetimeIndex  # the first block's days
    budget: np.ndarray  # daily budget of each row (NaN: unknown)
    block: int  # rows per call: pooling and multiple testing stay within a block
    offsets: np.ndarray | None = None  # days each row's calendar lies after `times`


def _as_slice(mask: np.ndarray) -> slice | None:
    """The steps of a contiguous mask as a slice (None when it is empty)."""
    at = np.flatnonzero(mask)
    if not len(at):
        return None
    if at[-1] - at[0] + 1 != len(at):
        raise ValueError("the judged steps must be contiguous")
    return slice(int(at[0]), int(at[-1]) + 1)


def _block_family(family: np.ndarray, n_rows: int, block: int) -> np.ndarray:
    """A multiple-testing family per column of one call, kept apart per block of rows."""
    if n_rows <= block:
        return family
    codes = pd.factorize(family)[0]
    return (np.arange(n_rows) // block)[:, None] * (codes.max() + 1) + codes[None, :]


def _judge(
    p: _Panels, start: pd.Timestamp, end: pd.Timestamp, s: DetectionSettings, threads: int = 1
):
    """Day- and week-grain flags of every block for the days [start, end] of `times`, scored
    in `threads` threads (`evidence`)."""
    n, t = next(iter(p.base.values())).shape
    panels = derived_panels(p.base)
    metrics = tuple(m for m in s.metrics if m in panels)
    in_scope_t = (p.times >= start) & (p.times <= end)
    scope = _as_slice(in_scope_t)
    if scope is None:
        return empty_flags()
    in_scope = np.broadcast_to(in_scope_t, (len(metrics), n, t))
    family, steps = correction_groups(p.times, pd.Timedelta(days=1), s)
    family = _block_family(family, n, p.block)
    ev = evidence(
        panels,
        metrics,
        period=7 if s.use_seasonality else None,
        window=s.baseline_days,
        min_history=s.min_history_days,
        settings=s,
        pool_scales=s.pool_scales_daily,
        block=p.block,
        scope=scope,
        chunk_cells=SCORE_CHUNK_CELLS,
        full_keys=RULE_EVIDENCE,
        threads=threads,
    )
    rules = _rules(panels, ev, metrics, p.budget, s) if s.use_rules else []
    # Every alert is on a step in scope, and deciding one looks back at earlier alerts only
    # (never at steps out of scope): from here on the steps in scope are all that is kept.
    ev = {k: v[..., scope] if v.shape[-1] == t else v for k, v in ev.items() if ":" not in k}
    rules = [(metric, kind, mask[:, scope], *rest) for metric, kind, mask, *rest in rules]
    in_scope, family = in_scope[..., scope], family[..., scope]
    dec = decide(ev, in_scope, family, s, steps)
    if s.require_corroboration:
        dec = corroborate(dec, ev, s)
    parts = [
        _flags_from_evidence(
            ev,
            dec,
            metrics,
            p.keys,
            p.times[scope],
            "day",
            in_scope,
            s,
            rules,
            f"trailing {s.baseline_days}-day baseline",
            offsets=p.offsets,
        )
    ]
    del ev, dec, rules, panels
    if s.use_weekly:
        parts.append(_weekly_flags(p, start, end, s, threads))
    parts = [part for part in parts if len(part)]
    return pd.concat(parts, ignore_index=True) if parts else empty_flags()


def _finish(flags: pd.DataFrame) -> pd.DataFrame:
    """Dates as dates, in the published order."""
    if not len(flags):
        return empty_flags()
    flags["period_start"] = pd.to_datetime(flags["period_start"]).dt.date
    flags["period_end"] = pd.to_datetime(flags["period_end"]).dt.date
    return flags.sort_values(["period_start", "campaign_id", "grain", "metric"]).reset_index(
        drop=True
    )


def _budgets(campaigns: pd.DataFrame | None, keys) -> np.ndarray:
    """The daily budget of each campaign in `keys` (NaN: unknown)."""
    if campaigns is None or not len(campaigns) or "daily_budget" not in campaigns:
        return np.full(len(keys), np.nan)
    cid = campaigns["campaign_id"] if "campaign_id" in campaigns else campaigns["id"]
    b = pd.Series(campaigns["daily_budget"].to_numpy(dtype=float), index=cid.astype(str))
    b = b[~b.index.duplicated(keep="last")]
    return b.reindex(keys).to_numpy(dtype=float)


def detect_by_week(
    daily: pd.DataFrame,
    week_starts,
    *,
    history_weeks: int,
    campaigns: pd.DataFrame | None = None,
    settings: DetectionSettings = DetectionSettings(),
    chunk_cells: int = WEEK_CHUNK_CELLS,
    processes: int = 1,
) -> pd.DataFrame:
    """Flags of each week (Monday start), each judged on that week and its own `history_weeks`.

    A week's flags are then a function of a fixed stretch of data, the same whether the week
    runs alone (the Monday schedule) or inside a range backfill. One call over the whole range
    would give its later weeks a longer past, and what is learned from the past (the CUSUM
    state, each series' tails) would differ from the week's own run.

    The weeks are judged together, not one call after another: each week's stretch is a block
    of rows (its campaigns, in the order one call would hold them) in one stacked panel, and
    everything that is pooled across campaigns (day noise, weekly scales, the multiple-testing
    family) stays within its block, so every week gets exactly the flags a call on its stretch
    alone would give. Campaigns with too few rows in the stretch to be judged at all pool
    nothing: they go in blocks of their own, and those without a row in the judged week are
    left out (`stretch_blocks`), with the same flags. `chunk_cells` bounds the cells judged at
    once (`WEEK_CHUNK_CELLS`); the result does not depend on it. The chunks share nothing, so
    with `processes` > 1 they are judged in that many processes (`judge_in_processes`); a
    range with too few chunks for that (one week) is judged in this process with `processes`
    threads instead. The result depends on neither. `week_calendar` then `judge_weeks` do the
    same in two steps, so that a caller can let go of ``daily`` once the calendar holds it.
    """
    calendar = week_calendar(daily, week_starts, history_weeks=history_weeks, campaigns=campaigns)
    return judge_weeks(calendar, settings=settings, chunk_cells=chunk_cells, processes=processes)


@dataclass(frozen=True)
class GridFile:
    """A calendar grid saved as ``.npy``: indexing it copies the cells asked for out of a
    memory map that is closed again, so a process that judges one stretch at a time holds
    that stretch, not the year. Pickled, it is its path: worker processes read their own
    cells instead of receiving copies from the step's process."""

    path: str
    dtype: np.dtype

    def __getitem__(self, index) -> np.ndarray:
        grid = np.load(self.path, mmap_mode="r")
        cells = grid[index]  # a copy already when the index is an array
        if isinstance(cells, np.memmap):  # a view (a slice) would keep the file mapped
            cells = np.array(cells)
        del grid  # unmaps the file: its pages leave this process' memory
        return cells


@dataclass
class WeekCalendar:
    """Every campaign's daily sums over a range of weeks and their histories, on one calendar
    of days: what `judge_weeks` slices each week's stretch from.

    Campaigns are in sorted order of their ids; the grids have one more, empty campaign that
    pads the stacked blocks. The grids are day-major (a row per day), so a stretch of days is
    one contiguous part of a grid, also when the grid is a file (`to_directory`).
    """

    weeks: list[pd.Timestamp]
    history_weeks: int
    first_day: pd.Timestamp
    keys: np.ndarray  # the campaign ids
    has_row: np.ndarray  # (campaigns, days): a daily row exists
    delivered: np.ndarray | GridFile  # (days, campaigns + 1): the row had delivery
    sums: dict[str, np.ndarray | GridFile]  # SUM_COLUMNS -> (days, campaigns + 1), NaN: no row
    budget: np.ndarray  # (campaigns + 1,): daily budget, NaN unknown

    @property
    def days_with_rows(self) -> int:
        """Days of the calendar with any campaign's daily row."""
        return int(self.has_row.any(axis=0).sum())

    @property
    def in_files(self) -> bool:
        return isinstance(self.delivered, GridFile)

    def to_directory(self, directory) -> WeekCalendar:
        """This calendar with its grids saved in ``directory`` and read from there.

        Judging in worker processes needs it: each worker then reads only the stretches it
        judges, and the step's process need not keep the grids (at 16,000 campaigns over a
        year and its history, 0.3 GB) once it lets go of the in-memory calendar."""
        if self.in_files:
            return self
        return replace(
            self,
            delivered=_saved_grid(directory, "delivered", self.delivered),
            sums={column: _saved_grid(directory, column, g) for column, g in self.sums.items()},
        )


def _saved_grid(directory, name: str, grid: np.ndarray) -> GridFile:
    """``grid`` saved as ``name.npy`` in ``directory``, read from there."""
    path = str(Path(directory) / f"{name}.npy")
    np.save(path, grid)
    return GridFile(path, grid.dtype)


def week_calendar(
    daily: pd.DataFrame,
    week_starts,
    *,
    history_weeks: int,
    campaigns: pd.DataFrame | None = None,
    directory=None,
) -> WeekCalendar | None:
    """The calendar `judge_weeks` judges the weeks of ``week_starts`` on (each with its
    ``history_weeks`` before it), filled from ``daily``; None when no row falls in it.

    With ``directory`` each grid is saved there as soon as it is filled and read from there
    (`WeekCalendar.to_directory`), so building the calendar holds one grid of (days x
    campaigns), not all seven: an account of many short campaigns has a wide calendar."""

    def kept(name: str, grid: np.ndarray) -> np.ndarray | GridFile:
        return grid if directory is None else _saved_grid(directory, name, grid)

    weeks = sorted({pd.Timestamp(w).normalize() for w in week_starts})
    if daily is None or len(daily) == 0 or not weeks:
        return None
    first_day = weeks[0] - pd.Timedelta(weeks=history_weeks)
    n_days = (weeks[-1] - first_day).days + 7
    dates = pd.to_datetime(daily["date"]).dt.normalize()
    day = ((dates - first_day) // pd.Timedelta(days=1)).to_numpy()
    rows = np.flatnonzero((day >= 0) & (day < n_days))
    if not len(rows):
        return None
    # every campaign's days on one calendar (a stretch is a slice of its columns), filled
    # straight from the columns: no copy of the frame, which for a year of a large account
    # is as large as the calendar itself
    campaign = daily["campaign_id"].iloc[rows]
    if not isinstance(campaign.dtype, pd.StringDtype | pd.ArrowDtype):  # text is factorized as is
        campaign = campaign.astype(str)
    codes, ids = pd.factorize(campaign)
    ids = np.asarray(ids, dtype=object)
    order = np.argsort(ids.astype(str), kind="stable")
    keys = np.asarray(ids[order], dtype=object)
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    ki, di = rank[codes], day[rows]
    last = ~pd.Series(ki * n_days + di).duplicated(keep="last").to_numpy()  # one row per cell
    rows, ki, di = rows[last], ki[last], di[last]
    has_row = np.zeros((len(keys), n_days), bool)
    has_row[ki, di] = True
    delivered = np.zeros((n_days, len(keys) + 1), bool)  # a last, empty campaign pads blocks
    delivered[di, ki] = (
        daily["has_delivery"].astype(bool) if "has_delivery" in daily else daily["spend"].notna()
    ).to_numpy()[rows]
    delivered = kept("delivered", delivered)
    sums = {}
    for column in SUM_COLUMNS:
        grid = np.full((n_days, len(keys) + 1), np.nan)
        if column in daily:
            # a count the day did not report is null in the table (Int64), NaN in the grid
            grid[di, ki] = daily[column].to_numpy(dtype=float, na_value=np.nan)[rows]
        sums[column] = kept(column, grid)
        del grid
    del dates, day, rows, codes, ki, di, last
    return WeekCalendar(
        weeks=weeks,
        history_weeks=history_weeks,
        first_day=first_day,
        keys=keys,
        has_row=has_row,
        delivered=delivered,
        sums=sums,
        budget=np.append(_budgets(campaigns, keys), np.nan),
    )


def rows_to_be_judged(settings: DetectionSettings) -> int:
    """Daily rows a campaign needs in a week's stretch before anything of it can be judged:
    a day needs `min_history_days` known days in its trailing window, a week (with
    `use_weekly`) `weekly_min_history_weeks` complete weeks of 7 known days. ``settings``
    must be `effective`. Below that, none of the campaign's days or weeks is judged at any
    step of the stretch, so it takes no part in what the stretch pools across campaigns (day
    noise, baseline scales, the multiple-testing family: each counts judged or `cnt >=
    min_history` series only) and its evidence is its own."""
    need = settings.min_history_days
    if settings.use_weekly:
        need = min(need, 7 * settings.weekly_min_history_weeks)
    return need


def stretch_blocks(
    rows_in_stretch: np.ndarray, rows_in_week: np.ndarray, *, min_rows: int, max_rows: int
) -> list[np.ndarray]:
    """The blocks of campaigns (positions in the calendar, in its order) a week's stretch is
    judged in, from each campaign's daily rows in the stretch and whether it has one in the
    judged week (its last 7 days).

    The campaigns with at least ``min_rows`` rows (`rows_to_be_judged`) are one block: they
    are pooled and corrected together. A campaign with fewer is never judged, pools nothing
    and draws on no pool, so it is judged apart, in blocks of at most ``max_rows`` campaigns
    (of about equal size); only its rules (spend without impressions, budget overspend) can
    flag it, and only on a day with a row, so one without a row in the judged week is left
    out. A stretch's panel then grows with its campaigns that can be judged, not with every
    short campaign of its history (an account of many one-day campaigns)."""
    judgeable = np.flatnonzero(rows_in_stretch >= min_rows)
    in_week = np.asarray(rows_in_week) > 0
    short = np.flatnonzero((rows_in_stretch > 0) & (rows_in_stretch < min_rows) & in_week)
    blocks = [judgeable] if len(judgeable) else []
    if len(short):
        blocks += np.array_split(short, -(-len(short) // max_rows))
    return blocks


def week_blocks(
    has_row: np.ndarray, starts: list[int], span: int, *, min_rows: int, max_rows: int
) -> list[tuple[int, np.ndarray]]:
    """Every week's blocks of calendar rows (`stretch_blocks`), as (week position, rows), in
    the order they are chunked and judged: each week's block of campaigns that can be judged,
    week by week, then the short campaigns' blocks, week by week. ``has_row`` is (campaigns x
    days); ``starts`` the first day of each week's stretch of ``span`` days.

    Interleaved (a week's heavy block, then its light ones), the chunks would alternate heavy
    and light, and `map_in_processes`, which gives every ``processes``-th piece to the same
    process, would give one process every heavy week while the other judged the light ones."""
    judgeable, short = [], []
    for i, a in enumerate(starts):  # a loop over weeks; each step works on whole columns
        rows_in_stretch = has_row[:, a : a + span].sum(axis=1)
        for rows in stretch_blocks(
            rows_in_stretch,
            has_row[:, a + span - 7 : a + span].any(axis=1),
            min_rows=min_rows,
            max_rows=max(1, max_rows),
        ):
            (judgeable if rows_in_stretch[rows[0]] >= min_rows else short).append((i, rows))
    return judgeable + short


def _chunk_plan(sizes: list[int], span: int, chunk_cells: int) -> list[tuple[int, int, int]]:
    """Consecutive blocks of ``sizes`` rows grouped into chunks of at most ``chunk_cells``
    cells once padded to their largest (a block larger than that is a chunk alone):
    (first block, end, rows per block) of each."""
    plan, j = [], 0
    while j < len(sizes):
        size, k = max(sizes[j], 1), 1
        while j + k < len(sizes) and (k + 1) * max(size, sizes[j + k]) * span <= chunk_cells:
            size, k = max(size, sizes[j + k]), k + 1
        plan.append((j, j + k, size))
        j += k
    return plan


def judge_weeks(
    calendar: WeekCalendar | None,
    *,
    settings: DetectionSettings = DetectionSettings(),
    chunk_cells: int = WEEK_CHUNK_CELLS,
    processes: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """The flags of every week of a `week_calendar` (see `detect_by_week`).

    Worker processes read their chunks' cells from the calendar's files: a calendar held in
    memory is first saved to a temporary directory (`WeekCalendar.to_directory`).
    ``progress(weeks_judged, weeks_to_judge)`` is called, in order, as chunks finish weeks (a
    week's blocks, `stretch_blocks`, may lie in several chunks; a week with nothing to judge in
    its stretch is not counted)."""
    if calendar is None:
        return empty_flags()
    s = settings.effective
    weeks, history_weeks, first_day = calendar.weeks, calendar.history_weeks, calendar.first_day
    span = 7 * (history_weeks + 1)  # days of one stretch: its history and the judged week
    n_keys = len(calendar.keys)
    keys_padded = np.append(calendar.keys, None)

    starts = [(w - first_day).days - 7 * history_weeks for w in weeks]
    stretches = week_blocks(
        calendar.has_row, starts, span, min_rows=rows_to_be_judged(s), max_rows=chunk_cells // span
    )
    plan = _chunk_plan([len(rows) for _, rows in stretches], span, chunk_cells)
    # the weeks each chunk finishes (a week's blocks can lie in several chunks)
    last_chunk = {}
    for c, (lo, hi, _) in enumerate(plan):
        for i, _ in stretches[lo:hi]:
            last_chunk[i] = c
    finished = np.bincount(list(last_chunk.values()), minlength=len(plan))

    def chunks():
        """Each chunk of the plan as a `_Chunk`: its rows of the calendar, not yet its cells."""
        for lo, hi, size in plan:
            part = stretches[lo:hi]
            row = np.concatenate(
                [np.concatenate([rows, np.full(size - len(rows), n_keys)]) for _, rows in part]
            ).astype(np.intp)
            first_days = np.concatenate([np.full(size, starts[i]) for i, _ in part])
            week = weeks[part[0][0]]
            yield _Chunk(
                sums=calendar.sums,
                delivered=calendar.delivered,
                row=row,
                first_days=first_days,
                span=span,
                keys=keys_padded[row],
                times=pd.date_range(week - pd.Timedelta(weeks=history_weeks), periods=span),
                budget=calendar.budget[row],
                block=size,
                judged=(week, week + pd.Timedelta(days=6)),
            )

    if processes > 1 and len(plan) >= MIN_CHUNKS_PER_PROCESS * processes:
        if not calendar.in_files:  # workers read their cells from files, never from pickles
            with tempfile.TemporaryDirectory(prefix="week_calendar_") as directory:
                return judge_weeks(
                    calendar.to_directory(directory),
                    settings=settings,
                    chunk_cells=chunk_cells,
                    processes=processes,
                    progress=progress,
                )
        judged = judge_in_processes(chunks(), s, processes)
    else:  # too few chunks to share out (a Monday run): each chunk's blocks share the CPUs
        judged = (_judge_chunk(chunk, s, threads=processes) for chunk in chunks())
    parts, done, total = [], 0, len(last_chunk)
    for part, weeks_done in zip(judged, finished, strict=True):
        if len(part):
            parts.append(part)
        done += int(weeks_done)
        if progress is not None and weeks_done:
            progress(done, total)
    return _finish(pd.concat(parts, ignore_index=True)) if parts else empty_flags()


@dataclass
class _Chunk:
    """Consecutive weeks of a `WeekCalendar` judged together, each week's stretch a block of
    ``block`` rows (its campaigns, padded with the empty campaign). It names its cells (the
    calendar's rows and days) and gathers them only in `panels`, so a worker process given a
    calendar in files receives a few index arrays and reads the cells itself."""

    sums: dict[str, np.ndarray | GridFile]
    delivered: np.ndarray | GridFile
    row: np.ndarray  # the calendar campaign of each panel row
    first_days: np.ndarray  # the calendar day each panel row's stretch starts on
    span: int  # days of a stretch
    keys: np.ndarray
    times: pd.DatetimeIndex  # the first block's days
    budget: np.ndarray
    block: int
    judged: tuple[pd.Timestamp, pd.Timestamp]  # the first block's judged days

    def cells(self, grid: np.ndarray | GridFile) -> np.ndarray:
        """The chunk's cells of a day-major calendar grid, a row per panel row: each block's
        stretch of days read whole (one contiguous part of the grid), then its campaigns."""
        out = np.empty((len(self.row), self.span), dtype=grid.dtype)
        for lo in range(0, len(self.row), self.block):  # a block per week of the chunk
            rows = slice(lo, lo + self.block)
            first = int(self.first_days[lo])
            out[rows] = grid[first : first + self.span][:, self.row[rows]].T
        return out

    def panels(self) -> _Panels:
        base = {column: self.cells(grid) for column, grid in self.sums.items()}
        # days a campaign did not deliver after it had delivered in the stretch are unknown
        # (`_blank_days_off_delivery`, per stretch)
        shown = self.cells(self.delivered)
        off = np.maximum.accumulate(shown, axis=1) & ~shown
        for grid in base.values():
            grid[off] = np.nan
        return _Panels(
            base=base,
            keys=self.keys,
            times=self.times,
            budget=self.budget,
            block=self.block,
            offsets=self.first_days - self.first_days[0],
        )


def _judge_chunk(chunk: _Chunk, settings: DetectionSettings, threads: int = 1) -> pd.DataFrame:
    """The flags of one chunk's judged weeks (a worker process' piece of `judge_weeks`)."""
    first, last = chunk.judged
    return _judge(chunk.panels(), first, last, settings, threads=threads)


def judge_in_processes(
    chunks, settings: DetectionSettings, processes: int
) -> Iterator[pd.DataFrame]:
    """Judge `_Chunk`s in `processes` processes (this one and workers, `map_in_processes`),
    results in the chunks' order, each as it is ready.

    The chunks share nothing (each holds whole blocks of a week's campaigns, `stretch_blocks`:
    their pooling and multiple-testing families), so where a chunk is judged cannot change its
    flags.
    """
    pieces = ((chunk, settings) for chunk in chunks)
    return map_in_processes(_judge_chunk, pieces, processes)


def detect_campaign_anomalies(
    daily: pd.DataFrame,
    weekly: pd.DataFrame | None = None,
    campaigns: pd.DataFrame | None = None,
    *,
    judge_start,
    judge_end,
    settings: DetectionSettings = DetectionSettings(),
) -> pd.DataFrame:
    """Day- and week-grain anomaly flags for the periods within [judge_start, judge_end].

    `daily` holds the contract's daily_campaign_metrics including the history before
    judge_start (at least `baseline_days`, and `weekly_baseline_weeks` weeks for the weekly
    grain). Each judged day uses only rows dated up to that day; rows after judge_end are
    ignored. Missing days are unknown (never zero). Multiple testing runs over all campaign
    x metric tests of a family (`correction_family`, default one ISO week), each day decided
    on its own at a seventh of the level (`causal_correction`), so a day's flags do not
    change when later days are appended. `weekly` is accepted for interface
    symmetry; week sums are recomputed from `daily` so that incomplete weeks can be skipped.
    """
    s = settings.effective
    start, end = _to_day(judge_start), _to_day(judge_end)
    if daily is None or len(daily) == 0:
        return empty_flags()
    d = daily.copy()
    d["date"] = pd.to_datetime(d["date"]).dt.normalize()
    d = d[d["date"] <= end]
    if len(d) == 0 or d["date"].max() < start:
        return empty_flags()
    d["campaign_id"] = d["campaign_id"].astype(str)
    d = d.drop_duplicates(["campaign_id", "date"], keep="last")
    d = _blank_days_off_delivery(d)
    keys = pd.Index(sorted(d["campaign_id"].unique()))
    times = pd.date_range(d["date"].min(), max(end, d["date"].min()), freq="D")
    base = _build_panels(d, "campaign_id", "date", SUM_COLUMNS, keys, times)
    panels = _Panels(base, keys.to_numpy(), times, _budgets(campaigns, keys), block=len(keys))
    return _finish(_judge(panels, start, end, s))


def _blank_days_off_delivery(d: pd.DataFrame) -> pd.DataFrame:
    """Make the days a delivering campaign did not deliver unknown, not zero.

    The daily table is an outer join of delivery and lead events, so a campaign that has
    ended (or paused) still gets rows: its leads convert days or weeks later. Those rows
    say leads = 0 and no delivery; judged, they read as "leads dropped to 0" on every day
    after a campaign's last day. A campaign that has not delivered yet (leads only, so far)
    keeps its lead counts, since they are all there is to judge. "Yet": a day's rows are read
    with the campaign's past only, so a delivery later in the data cannot blank the leads-only
    days before it (that would be a look-ahead).
    """
    d = d.sort_values(["campaign_id", "date"], kind="stable")  # a new frame: safe to write into
    delivered = d["has_delivery"].astype(bool) if "has_delivery" in d else d["spend"].notna()
    delivered_so_far = delivered.groupby(d["campaign_id"]).cummax()
    off = (delivered_so_far & ~delivered).to_numpy()
    if off.any():
        d.loc[off, [c for c in SUM_COLUMNS if c in d.columns]] = np.nan
    return d


def _weekly_flags(p: _Panels, start, end, s: DetectionSettings, threads: int = 1) -> pd.DataFrame:
    """A complete ISO week against the campaign's trailing complete weeks.

    No window shift here: a week is already an average of seven days, and five-week windows
    against eight lagged weeks would need half a year of history.
    """
    s = replace(s, use_window_shift=False)
    times = p.times
    week_of = times - pd.to_timedelta(times.dayofweek, unit="D")
    weeks = pd.DatetimeIndex(sorted(week_of.unique()))
    wi = weeks.get_indexer(week_of)
    n = len(p.keys)
    sums = {}
    for c, arr in p.base.items():
        total = np.zeros((n, len(weeks)))
        known = np.zeros((n, len(weeks)))
        np.add.at(total.T, wi, np.nan_to_num(arr).T)
        np.add.at(known.T, wi, (~np.isnan(arr)).T.astype(float))
        # a week with an unknown day is not comparable (a partial week looks like a drop)
        sums[c] = np.where(known == 7, total, np.nan)
    panels = derived_panels(sums)
    metrics = tuple(m for m in s.metrics if m in panels)
    scope_w = (weeks >= start) & (weeks + pd.Timedelta(days=6) <= end)
    if _as_slice(scope_w) is None:
        return empty_flags()
    ev = evidence(
        panels,
        metrics,
        period=None,
        window=s.weekly_baseline_weeks,
        min_history=s.weekly_min_history_weeks,
        settings=s,
        pool_scales=s.pool_scales_weekly,
        block=p.block,
        scope=_as_slice(scope_w),
        chunk_cells=SCORE_CHUNK_CELLS,
        threads=threads,
    )
    in_scope = np.broadcast_to(scope_w, ev["z"].shape)
    family = _family(weeks, "week" if s.correction_family != "call" else "call")
    dec = decide(ev, in_scope, _block_family(family, n, p.block), s)
    if s.require_corroboration and s.weekly_corroboration:
        dec = corroborate(dec, ev, s, window=s.weekly_baseline_weeks)
    return _flags_from_evidence(
        ev,
        dec,
        metrics,
        p.keys,
        weeks,
        "week",
        in_scope,
        s,
        (),
        f"trailing {s.weekly_baseline_weeks} weeks",
        offsets=p.offsets,
    )
