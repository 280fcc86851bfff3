"""Generic long-format API: any regular series (daily, hourly, ...) through the same core.

Used by `campaign-pipeline detect`. The step of each series is inferred (median spacing),
points are placed on that grid (a missing step is NaN: unknown, and duplicate timestamps
are averaged), and the seasonal period follows from the step: 7 for daily data (weekday),
24 for hourly data (hour of day), steps-per-day for sub-daily data. The baseline and the
minimum history are expressed in days in `DetectionSettings` and converted to steps, so a
daily series and an hourly one get the same behaviour in calendar time: a 28-day baseline
becomes 4 seasonal cycles (4 weeks daily, 4 days hourly) - see `_grid_params`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from campaign_pipeline.detection import explain
from campaign_pipeline.detection.ensemble import (
    _classify,
    _run_length,
    correction_groups,
    corroborate,
    decide,
    evidence,
)
from campaign_pipeline.detection.settings import DetectionSettings

SERIES_COLUMNS = [
    "series",
    "timestamp",
    "is_anomaly",
    "score",
    "expected",
    "anomaly_type",
    "severity",
    "confidence",
]
# After the contract's columns: what a reader needs to check a flag without re-running anything
# (the reading judged, its normal range, the adjusted p-value and the methods behind the
# confidence, and a sentence with the numbers, as `anomaly_flags` has). Every column but the
# explanation describes the point itself; a flag the window shift raised alone explains the
# run of steps instead (its `score` and `expected` stay the point's).
DETAIL_COLUMNS = ["value", "expected_lower", "expected_upper", "q_value", "methods", "explanation"]
OUTPUT_COLUMNS = SERIES_COLUMNS + DETAIL_COLUMNS
DAY = pd.Timedelta(days=1)
# The scales a point can be judged on (`_kinds_so_far`), named as `ensemble.metric_kind` reads
# a metric's suffix.
KINDS = ("log", "count", "log1p", "linear")
# Series are scored in chunks of at most this many (series x steps x baseline steps) window
# cells: the trailing windows are materialized per chunk, so memory stays about flat in the
# number of series instead of growing by ~6 MB per hourly series of 1,600 points (one chunk is
# 25 such series, ~140 MB at the peak). Only the per-point evidence of all series is kept:
# the multiple-testing family spans every series at a time step, so decisions wait for all
# chunks.
CHUNK_CELLS = 4_000_000


def infer_step(timestamps: pd.Series, series: pd.Series) -> pd.Series:
    """Median positive spacing per series (robust to a few gaps and duplicates)."""
    diffs = timestamps.groupby(series).diff()
    diffs = diffs[diffs > pd.Timedelta(0)]
    step = diffs.groupby(series[diffs.index]).median()
    return step.reindex(series.unique()).fillna(DAY)


def grid_origin(first: pd.Series, step: pd.Series) -> pd.Series:
    """Where each series' grid starts, given its first reading and its step: for a step that
    divides a day, the grid step of the first reading's day that holds midnight (so every
    `steps_per_day` grid steps are one calendar day, as `baselines.weekday_factors` reads
    them; the steps before the first reading are unknown); otherwise the first reading."""
    daily_cycle = (step < DAY) & ((DAY % step) == pd.Timedelta(0))
    into_day = (first - first.dt.normalize()) // step
    return first - step * np.where(daily_cycle, into_day, 0)


def _grid_params(step: pd.Timedelta, s: DetectionSettings) -> tuple[int | None, int, int]:
    """(seasonal period, baseline window, minimum history), all in steps.

    Daily: 7, baseline_days, min_history_days. Sub-daily: one day per cycle and the same
    number of cycles as the daily baseline has weeks (28 days -> 4 cycles). Coarser than a
    day (weekly, ...): no seasonality, baseline and history counted in steps.
    """
    cycles = s.baseline_days / 7.0
    hist_cycles = s.min_history_days / 7.0
    if step == DAY:
        return 7, s.baseline_days, s.min_history_days
    if step < DAY and (DAY % step) == pd.Timedelta(0):
        period = int(DAY / step)
        return period, int(round(cycles * period)), int(round(hist_cycles * period))
    return None, s.weekly_baseline_weeks, s.weekly_min_history_weeks


def detect_series(
    frame: pd.DataFrame,
    settings: DetectionSettings = DetectionSettings(),
    *,
    chunk_cells: int = CHUNK_CELLS,
    progress: Callable[[int, int], None] | None = None,
    note: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Flag each point of each series using only the points before it.

    Input columns: series, timestamp, value. Output, one row per distinct (series,
    timestamp): series, timestamp, is_anomaly, score, expected, anomaly_type, severity,
    confidence (the data contract's), then `DETAIL_COLUMNS`. A point is judged on the scale its
    series had reached by then (`_kinds_so_far`): counts while every reading is a
    non-negative whole number, then log while positive (costs scale multiplicatively),
    log(1 + x) from a zero, the raw scale from a negative value. Time-zone-aware timestamps
    are judged on UTC's clock and returned in their zone.

    chunk_cells bounds the memory of scoring (see `CHUNK_CELLS`); the result does not depend
    on it. progress(series_done, series_total) is called after each chunk. note(text) is told
    what is done to the input that its user should know: readings of a series that fall on one
    step of its grid (averaged into one), a series whose grid is far longer than its readings.
    """
    s = settings.effective
    df = frame[["series", "timestamp", "value"]].copy()
    df["series"] = df["series"].astype(str)
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    zone = getattr(df["timestamp"].dt, "tz", None)
    if zone is not None:  # instants: judged on UTC's clock, returned in the input's zone
        df["timestamp"] = df["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None)
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df = df.dropna(subset=["timestamp"])
    if df.empty:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    df = df.groupby(["series", "timestamp"], as_index=False, sort=True)["value"].mean()
    step = infer_step(df["timestamp"], df["series"])
    df["step"] = df["series"].map(step)
    df["origin"] = grid_origin(df.groupby("series")["timestamp"].transform("min"), df["step"])
    df["k"] = np.round((df["timestamp"] - df["origin"]) / df["step"]).astype(np.int64)
    if note is not None:
        _note_grid(df, note)
    df["kind"] = _kinds_so_far(df)
    out_parts = []
    done, total = 0, df["series"].nunique()

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    # one panel per spacing (a handful at most), vectorized over its series
    for stp, grp in df.groupby("step", sort=False):
        out_parts.append(_detect_group(grp, stp, s, chunk_cells, advance, utc=zone is not None))
    out = pd.concat(out_parts, ignore_index=True)
    out = out.sort_values(["series", "timestamp"]).reset_index(drop=True)[OUTPUT_COLUMNS]
    if zone is not None:
        out["timestamp"] = out["timestamp"].dt.tz_localize("UTC").dt.tz_convert(zone)
    return out


# A grid this many times longer than its series' readings (and longer than SPARSE_GRID_MIN_STEPS)
# is named in a note: scoring costs time and memory per step, and one stray timestamp (a year
# typed 2099) makes a 1,600-reading hourly series 657,000 steps long (a minute and 2 GB instead
# of half a second). A note, not a limit: a sparse series may be meant.
SPARSE_GRID_RATIO = 10
SPARSE_GRID_MIN_STEPS = 10_000


def _note_grid(df: pd.DataFrame, note: Callable[[str], None]) -> None:
    """Tell ``note`` of readings that share a grid step and of sparse grids. df: one row per
    distinct (series, timestamp), with its ``step`` and grid position ``k``."""
    shared = df.duplicated(["series", "k"], keep="first")
    if shared.any():
        first = df.loc[shared.to_numpy().argmax()]
        note(
            f"{int(shared.sum()):,} reading(s) fall on a step of their series' grid that an "
            f"earlier reading holds (the first: series {first['series']!r} at "
            f"{first['timestamp']}, spacing {_spacing(first['step'])}); each step's readings "
            "are averaged into one"
        )
    grid = df.groupby("series").agg(last=("k", "max"), first=("k", "min"), readings=("k", "size"))
    grid["steps"] = grid["last"] - grid["first"] + 1  # from the first reading to the last
    sparse = grid[
        (grid["steps"] > SPARSE_GRID_RATIO * grid["readings"])
        & (grid["steps"] > SPARSE_GRID_MIN_STEPS)
    ]
    if len(sparse):
        name, row = next(iter(sparse.iterrows()))
        span = df.loc[df["series"] == name, "timestamp"]
        note(
            f"{len(sparse):,} series {'has' if len(sparse) == 1 else 'have'} a grid over "
            f"{SPARSE_GRID_RATIO}x longer than its readings "
            f"(the first: {name!r}, {int(row['readings']):,} readings over "
            f"{int(row['steps']):,} steps from {span.min()} to {span.max()}): a stray "
            "timestamp? Scoring takes time and memory per step"
        )


def _spacing(step: pd.Timedelta) -> str:
    """A grid's spacing as a person writes it ("1 h", "1 day", "15 min")."""
    for unit, size in (
        ("day", DAY),
        ("h", pd.Timedelta(hours=1)),
        ("min", pd.Timedelta(minutes=1)),
    ):
        if step >= size and step % size == pd.Timedelta(0):
            n = step // size
            return f"{n} {unit}" + ("s" if unit == "day" and n != 1 else "")
    return f"{step.total_seconds():g} s"


def _kinds_so_far(df: pd.DataFrame) -> np.ndarray:
    """The scale each point is judged on, from its series up to and including that point.

    Non-negative whole numbers so far: counts, with or without a zero among them (clicks,
    conversions, leads: a 3 among mostly zeros is ordinary for them, and so is a Sunday of 35
    among weekdays of 50, which only a count model with its own dispersion says; on the log
    scale an over-dispersed count's low days and a weekday dip's Poisson noise look extreme).
    Other positive: log. Other non-negative: log(1 + x). A negative value so far: the raw
    scale. Read from the past only, so a zero or a fraction that arrives later cannot change
    how an earlier point was judged (letting the whole series decide would be a look-ahead).
    df: sorted by series and time.
    """
    by_series = df["series"]
    low = df["value"].fillna(np.inf).groupby(by_series).cummin()  # an unknown reading says nothing
    whole = (
        (df["value"].isna() | (df["value"] == np.round(df["value"])))
        .astype(np.int8)
        .groupby(by_series)
        .cummin()
    )
    return np.select(
        [(whole == 1) & (low >= 0), low > 0, low >= 0], ["count", "log", "log1p"], "linear"
    )


def _chunked_evidence(
    values: np.ndarray,
    metric: str,
    rows: int,
    advance: Callable[[int], None],
    counted: np.ndarray | None = None,
    **kwargs,
) -> dict[str, np.ndarray]:
    """`evidence` for blocks of `rows` series at a time, assembled into one set of arrays.

    Every statistic of a series uses that series alone, so the blocks give the very arrays one
    call over all series would (tested); only the peak memory differs. counted: the series
    that count as done for `advance` after their block (default all).
    """
    n = values.shape[0]
    counted = np.ones(n, bool) if counted is None else counted
    out: dict[str, np.ndarray] = {}
    for lo in range(0, n, rows):  # a loop over blocks of series, each block vectorized
        ev = evidence({metric: values[lo : lo + rows]}, (metric,), **kwargs)
        if not out:
            out = {k: np.empty((v.shape[0], n, *v.shape[2:]), v.dtype) for k, v in ev.items()}
        for k, v in ev.items():
            out[k][:, lo : lo + v.shape[1]] = v
        if counted[lo : lo + rows].any():
            advance(int(counted[lo : lo + rows].sum()))
    return out


def _evidence_by_kind(
    values: np.ndarray, kinds: np.ndarray, rows: int, advance: Callable[[int], None], **kwargs
) -> dict[str, np.ndarray]:
    """Evidence for each point on the scale its series had reached by then (`_kinds_so_far`;
    kinds holds indexes into `KINDS`).

    Each kind's evidence is computed over the series that take it at some step, with the steps
    after its last one blanked (they are judged on a later kind, and a log scale cannot take
    the zero that ended it); every statistic is causal, so the steps it judges see the same
    past either way. A series counts as done when its last kind is.
    """
    out: dict[str, np.ndarray] = {}
    steps = np.arange(values.shape[1])
    for code in np.unique(kinds):
        on = kinds == code
        members = np.flatnonzero(on.any(axis=1))
        last = np.where(on[members], steps, -1).max(axis=1)
        part = np.where(steps[None, :] <= last[:, None], values[members], np.nan)
        ev = _chunked_evidence(
            part,
            f"value_{KINDS[code]}",
            rows,
            advance,
            counted=(kinds[members, -1] == code),
            **kwargs,
        )
        if not out:
            out = {
                k: np.zeros((v.shape[0], values.shape[0], *v.shape[2:]), v.dtype)
                for k, v in ev.items()
            }
        for k, v in ev.items():
            block = out[k][:, members]
            block[:, on[members]] = v[:, on[members]]
            out[k][:, members] = block
    return out


def _detect_group(
    grp: pd.DataFrame,
    step: pd.Timedelta,
    s: DetectionSettings,
    chunk_cells: int,
    advance: Callable[[int], None],
    utc: bool = False,
) -> pd.DataFrame:
    period, window, min_hist = _grid_params(step, s)
    keys = pd.Index(sorted(grp["series"].unique()))
    ri = keys.get_indexer(grp["series"])
    ki = grp["k"].to_numpy()
    n_steps = int(ki.max()) + 1
    values = np.full((len(keys), n_steps), np.nan)
    # points that round to the same grid step: the mean (a duplicated reading is one reading)
    agg = grp.groupby([ri, ki])["value"].mean()
    values[agg.index.get_level_values(0), agg.index.get_level_values(1)] = agg.to_numpy()
    # each step's scale as its series had it then (readings that share a grid step: the later
    # one's); a step without a reading keeps the one before it, and the steps before a
    # series' first reading (its grid starts at the beginning of that day) take the first's
    kinds = np.full(values.shape, -1, np.int8)
    kinds[ri, ki] = pd.Categorical(grp["kind"], categories=KINDS).codes
    read = kinds >= 0
    last_read = np.maximum(
        np.maximum.accumulate(np.where(read, np.arange(n_steps), 0), axis=1),
        read.argmax(axis=1)[:, None],
    )
    kinds = np.take_along_axis(kinds, last_read, axis=1)
    rows = max(1, chunk_cells // (n_steps * window))
    ev = _evidence_by_kind(
        values,
        kinds,
        rows,
        advance,
        period=period if s.use_seasonality else None,
        window=window,
        min_history=min_hist,
        settings=s,
        steps_per_day=period if step < DAY else None,
        phase_scale=s.use_phase_scale if step < DAY else s.use_phase_scale_daily,
    )
    # family for multiple testing (`correction_family`): every series' tests of one ISO week
    # (or day) of wall-clock time, decided a time step at a time (`causal_correction`)
    origin = grp.groupby(ri)["origin"].first().reindex(range(len(keys))).to_numpy()
    wall = origin[:, None] + np.arange(n_steps)[None, :] * np.timedelta64(step)
    wall_idx = pd.DatetimeIndex(wall.ravel())
    family, steps = correction_groups(wall_idx, step, s)
    in_scope = np.ones(values.shape, bool)[None]
    dec = decide(ev, in_scope, family.reshape(wall.shape)[None], s, steps)
    if s.require_corroboration:
        # one metric per series: nothing can corroborate, so an alert must be strong alone,
        # the rule a lone metric of a campaign-day meets in the campaign pipeline, except that
        # a positive series' effect is sized as a ratio (`lone_series_ratio_effect`)
        ratio = s.lone_series_ratio_effect & (kinds != KINDS.index("linear"))[None]
        dec = corroborate(dec, ev, s, window=window, ratio_effect=ratio)
    fired = np.zeros(values.shape, bool)[None]
    for mask in dec["fired"].values():
        fired = fired | mask
    hit = fired[0, ri, ki]
    z = ev["z"][0, ri, ki]
    rel = ev["rel_effect"][0, ri, ki]
    test = dec["fired"].get("test", np.zeros_like(fired))[0]
    cus = dec["fired"].get("cusum", np.zeros_like(fired))[0]
    shift = dec["fired"].get("shift", np.zeros_like(fired))[0]
    # as in `anomaly_flags`: a flag the window shift raised without the point test is about
    # the run of steps, so its direction, size (severity) and type are the run's
    shift_only = (shift & ~test)[ri, ki]
    effect = np.where(shift_only, ev["shift_rel"][0, ri, ki], rel)
    # sustained: the test fired on this series on each of the two previous steps as well
    atype = _classify(
        np.full(len(ri), "value", dtype=object),
        effect,
        test[ri, ki],
        (cus | shift)[ri, ki],
        (_run_length(test) >= 3)[ri, ki],
    )
    judged = ev["judged"][0, ri, ki]
    out = pd.DataFrame(
        {
            "series": grp["series"].to_numpy(),
            "timestamp": grp["timestamp"].to_numpy(),
            "is_anomaly": hit,
            "score": np.abs(z),
            "expected": np.where(judged, ev["expected"][0, ri, ki], np.nan),
            "anomaly_type": np.where(hit, atype, None),
            "severity": np.where(hit, explain.severity(effect, atype, s), None),
            "confidence": np.nan,
            "value": values[ri, ki],
            "expected_lower": np.where(judged, ev["lower"][0, ri, ki], np.nan),
            "expected_upper": np.where(judged, ev["upper"][0, ri, ki], np.nan),
            "q_value": np.nan,
            "methods": None,
            "explanation": None,
        }
    )
    if hit.any():
        how = _flag_methods(dec, ri[hit], ki[hit], shift_only[hit])
        out.loc[hit, "confidence"] = explain.confidence(how, s.series_confidence_coefficients)
        out.loc[hit, "q_value"] = how["q_value"].to_numpy()
        out.loc[hit, "methods"] = how["methods"].to_numpy()
        out.loc[hit, "explanation"] = _explanations(
            out[hit], shift_only[hit], effect[hit], ev, ri[hit], ki[hit], step, window, utc
        )
    return out


def _explanations(
    flagged: pd.DataFrame,
    shift_only: np.ndarray,
    effect: np.ndarray,
    ev: dict,
    ri: np.ndarray,
    ki: np.ndarray,
    step: pd.Timedelta,
    window: int,
    utc: bool,
) -> list[str]:
    """`anomaly_flags`' sentence for each flagged point, in the series' own units of time.

    A flag the window shift raised alone is about the run of steps, so its sentence gives the
    run's mean against the reference before it (as a shift-only `anomaly_flags` row does).
    """

    def at(key: str) -> np.ndarray:
        return ev[key][0, ri, ki]

    if step < DAY:
        time_format, baseline = "%Y-%m-%d %H:%M", f"trailing {window * step / DAY:g}-day baseline"
    elif step == DAY:
        time_format, baseline = "%Y-%m-%d", f"trailing {window}-day baseline"
    else:
        time_format, baseline = "%Y-%m-%d", f"trailing {window} steps"
    step_word = {pd.Timedelta(hours=1): "hours", DAY: "days", 7 * DAY: "weeks"}.get(step, "steps")
    rows = pd.DataFrame(
        {
            "metric": flagged["series"].to_numpy(),
            "grain": "point",
            "period_start": pd.DatetimeIndex(flagged["timestamp"]),
            "anomaly_type": flagged["anomaly_type"].to_numpy(),
            "value": flagged["value"].to_numpy(float),
            "expected": np.where(
                shift_only, at("shift_expected"), flagged["expected"].to_numpy(float)
            ),
            "expected_lower": flagged["expected_lower"].to_numpy(float),
            "expected_upper": flagged["expected_upper"].to_numpy(float),
            "rel_effect": effect,
            "window_days": np.where(shift_only, at("shift_days"), np.nan),
            "score": np.where(shift_only, np.abs(at("shift_z")), flagged["score"].to_numpy(float)),
            "q_value": flagged["q_value"].to_numpy(float),
            "rule_note": "",
            "methods": flagged["methods"].to_numpy(),
        }
    )
    return explain.explanations(
        rows, baseline, time_format=time_format + (" UTC" if utc else ""), step_word=step_word
    )


def _flag_methods(
    dec: dict, ri: np.ndarray, ki: np.ndarray, shift_only: np.ndarray
) -> pd.DataFrame:
    """The flagged points as `explain.confidence` reads a flag: the methods that fired (named as
    in the campaign pipeline's `methods`) and the q-value of the test it reports (the window
    shift's where only the shift fired: `shift_only`)."""
    hits = {k: m[0, ri, ki] for k, m in dec["fired"].items()}
    names = np.array([{"test": "robust_z", "shift": "window_shift"}.get(k, k) for k in hits])
    fired = np.column_stack(list(hits.values()))
    methods = [",".join(names[row]) for row in fired]  # flagged points only: few
    q = np.where(shift_only, dec["q_shift"][0, ri, ki], dec["q"][0, ri, ki])
    return pd.DataFrame(
        {"campaign_id": ri, "grain": "point", "period_start": ki, "q_value": q, "methods": methods}
    )
