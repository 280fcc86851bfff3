#!/usr/bin/env python
"""Labelled synthetic benchmark of the generic series path: `detect_series` vs the seeds.

Purpose: choose detector settings for regular single-value series (hourly or daily
cost-per-click / CPM readings of an ad exchange) on our OWN synthetic data, never on a
held-out labelled set.

Generator (`generate`, numpy, seeded): positive cost-like series
  value = base (lognormal across series, CPC-like 0.1-3)
          x intra-day profile (hourly; amplitude 0-40 % per series) or weekday profile (daily)
          x slow AR(1) drift on the log scale (a few %, not an anomaly)
          x multiplicative lognormal noise (sd 5-25 % per series; a third of the series
            have student-t(5) noise instead of normal: heavier tails)
with, per series, 1-4 separated injected anomalies after an anomaly-free head (15 %):
  spike (1-3 steps, x2-5 or /2-4), level_shift (permanent x0.5-0.7 or x1.5-2.5),
  temporary_shift (12-72 h / 3-10 d at those factors, then back), drift (log-linear ramp to
  x0.5 or x2 over 1-3 d / 7-14 d, then stays), variance_burst (noise sd x4 for 6-24 h / 4-10 d),
  dropout_to_floor (value at 1-5 % of the level for 2-6 h / 1-3 d).
Half of the series lose 2-4 % of their points in gaps of 2-4 steps (never inside an event)
and carry one duplicated timestamp (an exact copy of a row), as real exports do.
Setting `noisy`: noise sd x1.8 and a 1.5x stronger intra-day / weekday profile.
Setting `persistent`: the `default` series with AR(1) noise, coefficient 0.3-0.8 per series
(same marginal sd): a run of high readings is then common, not a shift.
Setting `weekly`: the `default` series times the weekday pattern (busy mid-week, quiet
weekend) at an amplitude of 10-40 % per series: on hourly series a second cycle on top of the
hour of day, on daily ones a stronger weekday profile.
Setting `hetero`: the `default` series with noise that depends on the volume behind each
reading (a ratio's noise goes as 1 / sqrt(volume)): hourly, a diurnal volume curve 3-10x
from trough to peak (so the quietest hour is 1.7-3.2x as noisy as the busiest); daily, the
weekday pattern's volume (weekend quieter, up to 3.2x); same marginal spread as `default`.
Setting `counts` (opt-in, not in the default list): the `default` series is the expected count,
scaled to a typical mean of 0.3-30 per step, and the reading its Poisson draw (the quiet
series are mostly zero: hourly conversions or clicks of small campaigns).

Labels: one window [start, end] per injected anomaly, centred on the onset with a width of
48-72 steps (hourly) / 6-8 steps (daily), extended to cover the event's extent when the event
lasts longer (temporary shift, drift ramp, variance burst, dropout). `event_start`/`event_end`
keep the exact extent; for a level shift the extent is its onset and for a drift its ramp
(`persists` = True: the new level stays, as in common benchmarks flags long after the
window are counted as false positives).

Scoring (the rules of a common window scorer, per series, summed over series and runs):
  TP = windows with >= 1 flagged timestamp inside [start, end]; FP = events made of flagged
  timestamps outside every window, flags at most one step apart merged into one event;
  precision = TP / (TP + FP), recall = TP / windows, F1; point FPR = flagged points outside
  windows / points outside windows (the point universe is the distinct timestamps of the
  data); recall per anomaly kind; run time of the detector alone and, with --memory, its
  peak memory (tracemalloc, numpy buffers included; the largest run's in pooled rows).

Usage:
  python scripts/benchmark_series.py [--seeds 1 2 3]
        [--settings default noisy persistent weekly hetero] (or counts)
        [--spacing hourly daily] [--n-series 24] [--sensitivity medium]
        [--set NAME=VALUE ...] [--explain-fp] [--quiet] [--memory]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from campaign_pipeline.detection import detect_series, seeds_series_flags  # noqa: E402
from campaign_pipeline.detection.settings import settings_from_overrides  # noqa: E402

KINDS = ("spike", "level_shift", "temporary_shift", "drift", "variance_burst", "dropout_to_floor")
PERSISTENT = ("level_shift", "drift")
HEAD_SHARE = 0.15

# Everything that depends on the spacing, in steps.
SPACINGS = {
    "hourly": dict(
        step=pd.Timedelta(hours=1),
        n=1608,
        spike=(1, 3),
        temporary_shift=(12, 72),
        drift=(24, 72),
        variance_burst=(6, 24),
        dropout_to_floor=(2, 6),
        window=(48, 72),
        margin=48,
        tail=48,
        ar_phi=0.995,
    ),
    "daily": dict(
        step=pd.Timedelta(days=1),
        n=400,
        spike=(1, 3),
        temporary_shift=(3, 10),
        drift=(7, 14),
        variance_burst=(4, 10),
        dropout_to_floor=(1, 3),
        window=(6, 8),
        margin=14,
        tail=14,
        ar_phi=0.9,
    ),
}
GENERATOR_SETTINGS = {
    "default": dict(noise=1.0, profile=1.0, persistence=(0.0, 0.0)),
    "noisy": dict(noise=1.8, profile=1.5, persistence=(0.0, 0.0)),
    # neighbouring readings move together (an auction's clearing price holds for a while):
    # the noise is AR(1) with a per-series coefficient, same marginal spread as `default`
    "persistent": dict(noise=1.0, profile=1.0, persistence=(0.3, 0.8)),
    # trade follows the working week: hourly series get the weekday pattern on top of the
    # hour-of-day one (a second cycle), daily ones a stronger weekday pattern
    "weekly": dict(noise=1.0, profile=1.0, persistence=(0.0, 0.0), weekly=(0.1, 0.4)),
    # a ratio's noise goes as 1 / sqrt(volume), and volume follows the clock: hourly series
    # get a diurnal volume curve 3-10x from trough to peak (noise 1.7-3.2x from the busiest
    # to the quietest hour), daily ones the weekday pattern's volume (weekend quieter);
    # same marginal spread as `default`
    "hetero": dict(noise=1.0, profile=1.0, persistence=(0.0, 0.0), hetero=(2.0, 9.0)),
    # counts instead of costs (hourly conversions or clicks of small campaigns): the `default`
    # series is the expected count, scaled to a typical mean of 0.3-30 per step, and the
    # reading is its Poisson draw, so the quiet series are mostly zero; opt-in
    # (`--settings counts`), outside the default list the settings were chosen on
    "counts": dict(noise=1.0, profile=1.0, persistence=(0.0, 0.0), counts=(0.3, 30.0)),
}
DEFAULT_SETTINGS = ("default", "noisy", "persistent", "weekly", "hetero")
# A weekday pattern (Mon..Sun) scaled by the series' amplitude: busy mid-week, quiet weekend.
WEEKDAY = np.array([0.25, 0.35, 0.35, 0.25, 0.0, -0.6, -0.6])


@dataclass
class Synthetic:
    frame: pd.DataFrame  # series, timestamp, value (long format, as exported: gaps, one duplicate)
    labels: (
        pd.DataFrame
    )  # series, kind, start, end, event_start, event_end, onset, persists, factor
    # per series: base, profile_amp, noise_sd, heavy_tail, noise_ar, weekday_amp, volume_range, ...
    meta: pd.DataFrame
    step: pd.Timedelta


# ---------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------


def _factor(rng: np.random.Generator, up: tuple[float, float], down: tuple[float, float]) -> float:
    return float(rng.uniform(*up)) if rng.random() < 0.5 else float(rng.uniform(*down))


def _ar1(first: np.ndarray, innov: np.ndarray, phi) -> np.ndarray:
    """AR(1) paths, one per row: x_0 = first, x_t = phi x_(t-1) + innov_t (phi shared or per
    row)."""
    out = np.empty(innov.shape)
    out[:, 0] = first
    for t in range(1, innov.shape[1]):  # a loop over steps, each step over every series at once
        out[:, t] = phi * out[:, t - 1] + innov[:, t]
    return out


def _place_events(rng: np.random.Generator, n: int, cfg: dict) -> list[dict]:
    """1-4 separated events: kind, onset, extent and label window, all in steps."""
    head = int(np.ceil(HEAD_SHARE * n))
    events: list[dict] = []
    taken: list[tuple[int, int]] = []
    for _ in range(int(rng.integers(1, 5))):
        kind = KINDS[int(rng.integers(len(KINDS)))]
        for _attempt in range(50):
            w = int(rng.integers(cfg["window"][0], cfg["window"][1] + 1))
            length = (
                1 if kind == "level_shift" else int(rng.integers(cfg[kind][0], cfg[kind][1] + 1))
            )
            lo = head + w // 2
            hi = n - 1 - max(length, w) - cfg["tail"]
            if hi <= lo:
                break
            onset = int(rng.integers(lo, hi))
            ev_end = onset + length - 1
            start, end = onset - w // 2, max(onset - w // 2 + w - 1, ev_end)
            if any(start - cfg["margin"] <= b and end + cfg["margin"] >= a for a, b in taken):
                continue
            taken.append((start, end))
            if kind in ("spike", "temporary_shift"):
                factor = _factor(
                    rng,
                    (2.0, 5.0) if kind == "spike" else (1.5, 2.5),
                    (1 / 4, 1 / 2) if kind == "spike" else (0.5, 0.7),
                )
            elif kind == "level_shift":
                factor = _factor(rng, (1.5, 2.5), (0.5, 0.7))
            elif kind == "drift":
                factor = 2.0 if rng.random() < 0.5 else 0.5
            elif kind == "variance_burst":
                factor = 4.0
            else:
                factor = float(rng.uniform(0.01, 0.05))  # the floor as a share of the level
            events.append(
                dict(kind=kind, onset=onset, ev_end=ev_end, start=start, end=end, factor=factor)
            )
            break
    return sorted(events, key=lambda e: e["onset"])


def generate(
    seed: int,
    *,
    spacing: str = "hourly",
    setting: str = "default",
    n_series: int = 24,
    inject: bool = True,
    start: str = "2024-01-01",
) -> Synthetic:
    """Synthetic cost-like series with labelled anomalies.

    Independent random streams for the base series, the anomalies and the export defects, so
    `inject=False` gives the very same series (same labels, gaps, duplicate) without the
    anomalies applied: the difference between the two is exactly what was injected.
    """
    cfg, gen = SPACINGS[spacing], GENERATOR_SETTINGS[setting]
    n, step = cfg["n"], cfg["step"]
    grid = pd.date_range(start, periods=n, freq=step)
    rb, ra, rd = (np.random.default_rng([seed, i, list(SPACINGS).index(spacing)]) for i in range(3))
    k = n_series
    # --- base: level x profile x AR(1) drift x noise, vectorized over series ------------
    base = np.clip(np.exp(rb.normal(np.log(0.6), 0.8, k)), 0.1, 3.0)
    amp = np.minimum(rb.uniform(0.0, 0.4, k) * gen["profile"], 0.6)
    weekday = WEEKDAY[grid.dayofweek.to_numpy()][None, :]  # (1, n): the pattern at each step
    if spacing == "hourly":
        hour = grid.hour.to_numpy()[None, :]
        ph1, ph2 = rb.uniform(0, 24, (2, k, 1))
        shape = 0.7 * np.sin(2 * np.pi * (hour - ph1) / 24) + 0.3 * np.sin(
            4 * np.pi * (hour - ph2) / 24
        )
    else:
        shape = np.broadcast_to(weekday, (k, n))
    log_profile = np.log1p(amp[:, None] * shape)
    phi = cfg["ar_phi"]
    drift_sd = rb.uniform(0.02, 0.08, k)
    innov = rb.normal(0.0, 1.0, (k, n)) * (drift_sd * np.sqrt(1 - phi**2))[:, None]
    ar = _ar1(rb.normal(0.0, drift_sd), innov, phi)
    noise_sd = rb.uniform(0.05, 0.25, k) * gen["noise"]
    heavy = rb.random(k) < 1 / 3
    eps = np.where(
        heavy[:, None], rb.standard_t(5, (k, n)) / np.sqrt(5 / 3), rb.normal(0.0, 1.0, (k, n))
    )
    floor_noise = rb.normal(0.0, 0.1, (k, n))
    rho = rb.uniform(
        *gen["persistence"], k
    )  # drawn last: the other settings' series stay as they were
    if rho.any():  # AR(1) noise of unit marginal variance: the same innovations, filtered
        eps = _ar1(eps[:, 0], eps * np.sqrt(1 - rho**2)[:, None], rho)
    week_amp = rb.uniform(*gen.get("weekly", (0.0, 0.0)), k)  # drawn last as well
    if week_amp.any():
        log_profile = log_profile + np.log1p(week_amp[:, None] * weekday)
    vol_range = rb.uniform(*gen.get("hetero", (0.0, 0.0)), k)  # drawn last as well
    vol_peak = rb.uniform(0, 24, (k, 1))
    count_lo, count_hi = gen.get("counts", (1.0, 1.0))
    count_mean = np.exp(rb.uniform(np.log(count_lo), np.log(count_hi), k))  # drawn last as well
    if vol_range.any():
        if spacing == "hourly":
            bump = ((1 + np.cos(2 * np.pi * (hour - vol_peak) / 24)) / 2) ** 2
        else:  # the weekday pattern as volume: busy mid-week, quiet weekend
            bump = (weekday - WEEKDAY.min()) / (WEEKDAY.max() - WEEKDAY.min())
        volume = 1.0 + vol_range[:, None] * bump
        noise_mult = volume**-0.5
        eps = eps * noise_mult / np.sqrt(np.mean(noise_mult**2, axis=1, keepdims=True))
    # --- anomalies -------------------------------------------------------------------------
    effect = np.zeros((k, n))  # added to the log value
    burst = np.ones((k, n))  # multiplies the noise
    floor = np.full((k, n), np.nan)  # dropout: the value is replaced by a floor
    label_rows = []
    for i in range(k):
        for e in _place_events(ra, n, cfg):
            a, b, f, kind = e["onset"], e["ev_end"], e["factor"], e["kind"]
            if kind in ("spike", "temporary_shift"):
                effect[i, a : b + 1] += np.log(f)
            elif kind == "level_shift":
                effect[i, a:] += np.log(f)
            elif kind == "drift":
                effect[i, a : b + 1] += np.log(f) * np.arange(1, b - a + 2) / (b - a + 1)
                effect[i, b + 1 :] += np.log(f)
            elif kind == "variance_burst":
                burst[i, a : b + 1] = f
            else:
                floor[i, a : b + 1] = f
            label_rows.append(
                dict(
                    series=f"s{i:02d}",
                    kind=kind,
                    start=grid[e["start"]],
                    end=grid[e["end"]],
                    event_start=grid[a],
                    event_end=grid[b],
                    onset=grid[a],
                    persists=kind in PERSISTENT,
                    factor=f,
                )
            )
    if not inject:
        effect[:] = 0.0
        burst[:] = 1.0
        floor[:] = np.nan
    level = np.log(base)[:, None] + log_profile + ar
    log_v = level + effect + noise_sd[:, None] * eps * burst
    # a dropout sits near a small floor of the expected level (a little noise around it)
    log_v = np.where(
        np.isnan(floor), log_v, level + np.log(np.where(np.isnan(floor), 1.0, floor)) + floor_noise
    )
    values = np.exp(log_v)
    if "counts" in gen:  # Poisson readings of the expected count (their own stream of draws)
        rc = np.random.default_rng([seed, 3, list(SPACINGS).index(spacing)])
        values = rc.poisson(values / base[:, None] * count_mean[:, None]).astype(float)
    labels = pd.DataFrame(
        label_rows,
        columns=[
            "series",
            "kind",
            "start",
            "end",
            "event_start",
            "event_end",
            "onset",
            "persists",
            "factor",
        ],
    )
    # --- export defects: gaps and one duplicated timestamp in half of the series ------------
    keep = np.ones((k, n), bool)
    dup_at = np.full(k, -1)
    for i in range(k):
        if rd.random() >= 0.5:
            continue
        busy = np.zeros(n + 8, bool)  # no gap within 2 steps of an event's extent
        for r in labels[labels["series"] == f"s{i:02d}"].itertuples():
            a, b = grid.get_loc(r.event_start), grid.get_loc(r.event_end)
            busy[max(a - 2, 0) : b + 3] = True
        busy[0] = True  # the first point stays: the series starts where the grid starts
        target = int(rd.uniform(0.02, 0.04) * n)
        for _attempt in range(1000):
            if (~keep[i]).sum() >= target:
                break
            g0, glen = int(rd.integers(1, n - 5)), int(rd.integers(2, 5))
            if busy[g0 - 1 : g0 + glen + 1].any() or not keep[i, g0 - 1 : g0 + glen + 1].all():
                continue  # gaps stay separate and outside events
            keep[i, g0 : g0 + glen] = False
        candidates = np.flatnonzero(keep[i] & ~busy[:n])
        dup_at[i] = int(rd.choice(candidates))
    names = np.array([f"s{i:02d}" for i in range(k)])
    rows_i, rows_t = np.nonzero(keep)
    frame = pd.DataFrame(
        {"series": names[rows_i], "timestamp": grid[rows_t], "value": values[rows_i, rows_t]}
    )
    has_dup = dup_at >= 0
    dups = pd.DataFrame(
        {
            "series": names[has_dup],
            "timestamp": grid[dup_at[has_dup]],
            "value": values[has_dup, dup_at[has_dup]],
        }
    )
    frame = (
        pd.concat([frame, dups], ignore_index=True)
        .sort_values(["series", "timestamp"], kind="stable")
        .reset_index(drop=True)
    )
    meta = pd.DataFrame(
        {
            "series": names,
            "base": base,
            "profile_amp": amp,
            "noise_sd": noise_sd,
            "count_mean": count_mean if "counts" in gen else np.nan,
            "heavy_tail": heavy,
            "noise_ar": rho,
            "weekday_amp": week_amp,
            "volume_range": vol_range,
            "volume_peak": vol_peak[:, 0],
            "drift_sd": drift_sd,
            "n_gap_points": (~keep).sum(axis=1),
            "duplicate": pd.Series(grid[np.maximum(dup_at, 0)]).where(has_dup).to_numpy(),
        }
    )
    return Synthetic(frame=frame, labels=labels, meta=meta, step=step)


# ---------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------


def n_events(ts: np.ndarray, gap: pd.Timedelta) -> int:
    """Events after merging sorted flagged timestamps that are at most `gap` apart."""
    ts = np.asarray(ts, dtype="datetime64[ns]")
    return int(len(ts) and 1 + (np.diff(ts) > np.timedelta64(gap)).sum())


def fp_event_table(pred: pd.DataFrame, labels: pd.DataFrame, gap: pd.Timedelta) -> pd.DataFrame:
    """One row per false-positive event: series, start, end, n_points (flags outside windows)."""
    rows = []
    flagged = pred[pred["is_anomaly"].astype(bool)]
    for s, grp in flagged.groupby("series", sort=True):
        ts = np.unique(pd.to_datetime(grp["timestamp"]).to_numpy())
        inside = np.zeros(len(ts), bool)
        for r in labels[labels["series"] == s].itertuples():
            inside |= (ts >= np.datetime64(r.start)) & (ts <= np.datetime64(r.end))
        out = ts[~inside]
        if not len(out):
            continue
        cut = np.flatnonzero(np.diff(out) > np.timedelta64(gap)) + 1
        for chunk in np.split(out, cut):
            rows.append(
                dict(
                    series=s,
                    start=pd.Timestamp(chunk[0]),
                    end=pd.Timestamp(chunk[-1]),
                    n_points=len(chunk),
                )
            )
    return pd.DataFrame(rows, columns=["series", "start", "end", "n_points"])


def score(
    pred: pd.DataFrame, frame: pd.DataFrame, labels: pd.DataFrame, gap: pd.Timedelta
) -> tuple[dict, pd.DataFrame]:
    """Window scoring of per-point flags -> (totals, labels with a `found` column).

    pred: series, timestamp, is_anomaly (series absent from pred: nothing flagged). The
    point universe is the distinct (series, timestamp) of `frame`.
    """
    pred = pred.assign(
        series=pred["series"].astype(str), timestamp=pd.to_datetime(pred["timestamp"])
    )
    flagged = pred[pred["is_anomaly"].astype(bool)]
    flag_by = {s: np.unique(g["timestamp"].to_numpy()) for s, g in flagged.groupby("series")}
    found = np.zeros(len(labels), bool)
    tot = dict(windows=len(labels), tp=0, fp_events=0, flagged_points=0, fp_points=0, neg_points=0)
    lab_idx = {
        s: np.flatnonzero(labels["series"].to_numpy() == s) for s in labels["series"].unique()
    }
    starts = labels["start"].to_numpy(dtype="datetime64[ns]")
    ends = labels["end"].to_numpy(dtype="datetime64[ns]")
    universe = frame.assign(
        series=frame["series"].astype(str), timestamp=pd.to_datetime(frame["timestamp"])
    )
    for s, g in universe.groupby("series", sort=True):
        ts = np.unique(g["timestamp"].to_numpy())
        f_ts = flag_by.get(s, np.array([], dtype="datetime64[ns]"))
        in_f = np.zeros(len(f_ts), bool)
        in_all = np.zeros(len(ts), bool)
        for j in lab_idx.get(s, []):
            hit = (f_ts >= starts[j]) & (f_ts <= ends[j])
            found[j] = hit.any()
            in_f |= hit
            in_all |= (ts >= starts[j]) & (ts <= ends[j])
        out = f_ts[~in_f]
        tot["fp_events"] += n_events(out, gap)
        tot["flagged_points"] += len(f_ts)
        tot["fp_points"] += int(np.isin(ts[~in_all], out).sum())
        tot["neg_points"] += int((~in_all).sum())
    tot["tp"] = int(found.sum())
    return tot, labels.assign(found=found)


def prf(tot: dict) -> dict:
    tp, fp, w = tot["tp"], tot["fp_events"], tot["windows"]
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / w if w else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    fpr = tot["fp_points"] / tot["neg_points"] if tot["neg_points"] else 0.0
    return dict(precision=p, recall=r, f1=f, point_fpr=fpr)


# ---------------------------------------------------------------------------------------
# False-positive context (why did the ensemble fire outside the windows?)
# ---------------------------------------------------------------------------------------


def explain_fp(pred: pd.DataFrame, syn: Synthetic, settings) -> pd.DataFrame:
    """Each ensemble FP event with its anomaly_type, max score, likely route and context.

    Route: with one metric per series a point-test or CUSUM alert must be strong alone
    (|z| >= strong_single_factor x min_robust_z), so an event whose points all have a smaller
    point |z| can only come from the window-shift test. Context: within one baseline
    (`baseline_days`, in calendar time) after the window of a persisting change (level shift,
    drift), within two window widths after another labelled event, within 8 steps after a
    gap, else "normal" (split by the series' noise family).
    """
    s = settings.effective
    strong_z = s.strong_single_factor * s.min_robust_z
    baseline = (
        pd.Timedelta(days=s.baseline_days)
        if syn.step == pd.Timedelta(days=1)
        else pd.Timedelta(days=s.baseline_days / 7)
    )
    ev = fp_event_table(pred, syn.labels, syn.step)
    if ev.empty:
        return ev.assign(anomaly_type=[], max_score=[], route=[], context=[])
    p = pred.assign(timestamp=pd.to_datetime(pred["timestamp"]))
    p = p[p["is_anomaly"].astype(bool)]
    present = syn.frame.assign(timestamp=pd.to_datetime(syn.frame["timestamp"]))
    meta = syn.meta.set_index("series")
    step = syn.step
    types, scores, ctx = [], [], []
    for r in ev.itertuples():
        pts = p[(p["series"] == r.series) & p["timestamp"].between(r.start, r.end)]
        types.append(pts["anomaly_type"].mode().iat[0] if len(pts) else None)
        scores.append(float(pts["score"].max()) if len(pts) else np.nan)
        lab = syn.labels[syn.labels["series"] == r.series]
        before = lab[lab["end"] < r.start]
        last = before.iloc[-1] if len(before) else None
        ts = present.loc[present["series"] == r.series, "timestamp"].drop_duplicates().sort_values()
        recent = ts[(ts > r.start - 8 * step) & (ts <= r.start)]
        gap_near = len(recent) and (recent.diff().dropna() > step).any()
        if last is not None and last["persists"] and r.start - last["end"] <= baseline:
            c = f"after {last['kind']} window"
        elif last is not None and (r.start - last["end"]) <= 2 * (last["end"] - last["start"]):
            c = f"just after {last['kind']} window"
        elif gap_near:
            c = "after a gap"
        elif meta.loc[r.series, "heavy_tail"]:
            c = "normal (t5 noise series)"
        else:
            c = "normal (gaussian noise series)"
        ctx.append(c)
    route = np.where(np.array(scores) >= strong_z, "point test/cusum (or shift)", "window shift")
    return ev.assign(anomaly_type=types, max_score=scores, route=route, context=ctx)


# ---------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------


def _measured(fn, *args, memory: bool = False, **kwargs):
    """(result, seconds, peak MB allocated during the call or NaN).

    The peak comes from a second call under tracemalloc (which sees numpy's buffers), because
    tracing doubles the run time: the seconds are those of the untraced call.
    """
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    secs = time.perf_counter() - t0
    peak = np.nan
    if memory:
        tracemalloc.start()
        try:
            fn(*args, **kwargs)
            peak = tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
    return out, secs, peak


def run_one(
    seed: int, setting: str, spacing: str, args, settings
) -> tuple[list[dict], pd.DataFrame]:
    syn = generate(seed, spacing=spacing, setting=setting, n_series=args.n_series)
    rows, fps = [], []
    ours, t_ours, mb_ours = _measured(detect_series, syn.frame, settings, memory=args.memory)
    seeds, t_seeds, mb_seeds = _measured(
        seeds_series_flags, syn.frame, whole_series=True, memory=args.memory
    )
    for method, pred, secs, mb in (
        ("ensemble", ours, t_ours, mb_ours),
        ("seeds", seeds, t_seeds, mb_seeds),
    ):
        tot, lab = score(pred, syn.frame, syn.labels, syn.step)
        per_kind = lab.groupby("kind")["found"].agg(["sum", "count"])
        row = dict(
            method=method,
            spacing=spacing,
            setting=setting,
            seed=seed,
            points=len(syn.frame),
            **tot,
            seconds=secs,
            peak_mb=mb,
        )
        for kind in KINDS:
            row[f"tp[{kind}]"] = int(per_kind["sum"].get(kind, 0))
            row[f"n[{kind}]"] = int(per_kind["count"].get(kind, 0))
        rows.append(row)
    if args.explain_fp:
        fps.append(
            explain_fp(ours, syn, settings).assign(spacing=spacing, setting=setting, seed=seed)
        )
    return rows, (pd.concat(fps, ignore_index=True) if fps else pd.DataFrame())


def with_rates(df: pd.DataFrame) -> pd.DataFrame:
    rates = pd.DataFrame([prf(r) for r in df.to_dict("records")], index=df.index)
    rates["point_fpr_%"] = 100.0 * rates["point_fpr"]  # the fraction prints as 0.000 at 3 decimals
    return pd.concat([df, rates], axis=1)


def kind_recall(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for kind in KINDS:
        n = df[f"n[{kind}]"]
        out[kind] = (df[f"tp[{kind}]"] / n.where(n > 0)).round(3)
    return out


TABLE = [
    "windows",
    "tp",
    "fp_events",
    "flagged_points",
    "fp_points",
    "precision",
    "recall",
    "f1",
    "point_fpr_%",
    "seconds",
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument(
        "--settings", nargs="+", default=list(DEFAULT_SETTINGS), choices=list(GENERATOR_SETTINGS)
    )
    ap.add_argument("--spacing", nargs="+", default=["hourly", "daily"], choices=list(SPACINGS))
    ap.add_argument("--n-series", type=int, default=24)
    ap.add_argument("--sensitivity", default="medium", choices=["low", "medium", "high"])
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="override DetectionSettings fields, e.g. --set fdr=0.01 min_robust_z=3.5",
    )
    ap.add_argument(
        "--explain-fp",
        action="store_true",
        help="also tabulate the ensemble's false-positive events by context and anomaly_type",
    )
    ap.add_argument("--quiet", action="store_true", help="print the pooled tables only")
    ap.add_argument(
        "--memory",
        action="store_true",
        help="also report each method's peak memory (a second, traced call per run)",
    )
    args = ap.parse_args(argv)
    settings = settings_from_overrides(args.set, sensitivity=args.sensitivity)
    table = TABLE + ["peak_mb"] if args.memory else TABLE
    t_start = time.perf_counter()
    results, fps = [], []
    for setting in args.settings:
        for seed in args.seeds:
            run_rows = []
            for spacing in args.spacing:
                rows, fp = run_one(seed, setting, spacing, args, settings)
                run_rows.extend(rows)
                fps.append(fp)
            results.extend(run_rows)
            if args.quiet:
                continue
            run = with_rates(pd.DataFrame(run_rows))
            for method, grp in run.groupby("method", sort=False):
                print(f"\n### {method}, setting={setting}, seed={seed}\n")
                print(grp.set_index("spacing")[table].to_markdown(floatfmt=".3f"))
    res = pd.DataFrame(results)
    count_cols = [
        "windows",
        "tp",
        "fp_events",
        "flagged_points",
        "fp_points",
        "neg_points",
        "points",
        "seconds",
        *[c for c in res.columns if c.startswith(("tp[", "n["))],
    ]
    agg = {**{c: "sum" for c in count_cols}, "peak_mb": "max"}  # memory: the largest run's peak
    by_setting = with_rates(res.groupby(["method", "spacing", "setting"], sort=False).agg(agg))
    pooled = with_rates(res.groupby(["method", "spacing"], sort=False).agg(agg))
    over = " ".join(args.set) or "none"
    print(
        f"\n## Pooled over seeds {args.seeds} (sums over runs; sensitivity={args.sensitivity}; "
        f"--set {over})\n"
    )
    print(by_setting[table].to_markdown(floatfmt=".3f"))
    print("\n## Pooled over settings and seeds\n")
    print(pooled[table].to_markdown(floatfmt=".3f"))
    print("\n## Event recall per kind (pooled)\n")
    print(kind_recall(pooled).to_markdown(floatfmt=".3f"))
    fp = (
        pd.concat([f for f in fps if len(f)], ignore_index=True)
        if any(len(f) for f in fps)
        else pd.DataFrame()
    )
    if args.explain_fp and len(fp):
        print("\n## Ensemble false-positive events by context\n")
        tab = fp.groupby(["spacing", "context"]).agg(
            events=("series", "size"),
            points=("n_points", "sum"),
            median_score=("max_score", "median"),
        )
        print(tab.to_markdown(floatfmt=".2f"))
        print("\n## Ensemble false-positive events by route and anomaly_type\n")
        print(
            fp.groupby(["spacing", "route", "anomaly_type"])
            .size()
            .rename("events")
            .to_frame()
            .to_markdown()
        )
    print(f"\nwall time {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
