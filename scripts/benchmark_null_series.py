#!/usr/bin/env python
"""How often `campaign-pipeline detect` flags series in which nothing happens.

Every flag on these series is false, so the share of ISO weeks with at least one flag is the
chance a person reading a week of them is sent after nothing. Benjamini-Hochberg at `fdr`
bounds it near `fdr` when the tests' p-values are right; a model that misreads the noise
(overdispersed counts read on the log scale, a weekday dip whose noise is not the weekday's)
shows here as weeks flagged far more often. No anomaly is injected and nothing is tuned on
these figures.

Kinds (a weekday profile of 1, 1.05, 1.1, 1.05, 1, 0.6, 0.5 from Monday unless flat):
  poisson          Poisson counts, mean 50 x the weekday profile
  negbin           negative binomial counts, mean 30 x profile, size 4 (variance 8x the mean)
  gauss            N(0, 1): a series that can be negative
  lognormal        costs, 2 x profile x exp(N(0, 0.25))
  poisson_hourly   Poisson counts, mean 40 x an hour-of-day bump x the weekday profile

Usage:
  python scripts/benchmark_null_series.py [--kinds ...] [--seeds 1 2 3] [--series 50]
        [--days 364] [--set NAME=VALUE ...]
Daily kinds run `--series` series of `--days` days from Monday 2024-01-01; the hourly kind 20
series of 63 days. It prints, per kind, the ISO weeks judged, those with a flag and their share
with a Wilson 95 % interval, and the flags per judged point.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from campaign_pipeline.detection import detect_series  # noqa: E402
from campaign_pipeline.detection.settings import settings_from_overrides  # noqa: E402

WEEKDAY = np.array([1.0, 1.05, 1.1, 1.05, 1.0, 0.6, 0.5])
KINDS = ("poisson", "negbin", "gauss", "lognormal", "poisson_hourly")
START = pd.Timestamp("2024-01-01")  # a Monday


def null_series(kind: str, seed: int, n_series: int, days: int) -> pd.DataFrame:
    """``n_series`` series of ``kind`` in the long format `detect` reads."""
    rng = np.random.default_rng(seed)
    hourly = kind.endswith("hourly")
    steps = pd.date_range(START, periods=days * (24 if hourly else 1), freq="h" if hourly else "D")
    profile = WEEKDAY[steps.dayofweek.to_numpy()]
    shape = (n_series, len(steps))
    if kind == "poisson":
        values = rng.poisson(50 * profile, shape).astype(float)
    elif kind == "negbin":
        mean, size = 30 * profile, 4
        values = rng.negative_binomial(size, size / (size + mean), shape).astype(float)
    elif kind == "gauss":
        values = rng.normal(0, 1, shape)
    elif kind == "lognormal":
        values = 2.0 * profile * np.exp(rng.normal(0, 0.25, shape))
    elif kind == "poisson_hourly":
        bump = 0.3 + 1.4 * np.exp(-((steps.hour.to_numpy() - 14) ** 2) / 20)
        values = rng.poisson(40 * bump * profile, shape).astype(float)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return pd.DataFrame(
        {
            "series": np.repeat([f"{kind}_{i}" for i in range(n_series)], len(steps)),
            "timestamp": np.tile(steps, n_series),
            "value": values.ravel(),
        }
    )


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--series", type=int, default=50)
    ap.add_argument("--days", type=int, default=364)
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE")
    args = ap.parse_args(argv)
    settings = settings_from_overrides(args.set)
    rows = []
    for kind in args.kinds:
        hourly = kind.endswith("hourly")
        weeks = flagged_weeks = flags = judged = 0
        for seed in args.seeds:
            frame = null_series(
                kind, seed, 20 if hourly else args.series, 63 if hourly else args.days
            )
            out = detect_series(frame, settings)
            week = out["timestamp"].dt.to_period("W-SUN")
            per_week = (
                out.assign(week=week, judged=out["expected"].notna())
                .groupby(["series", "week"])[["judged", "is_anomaly"]]
                .sum()
                .groupby("week")
                .sum()
            )
            per_week = per_week[per_week["judged"] > 0]
            weeks += len(per_week)
            flagged_weeks += int((per_week["is_anomaly"] > 0).sum())
            flags += int(per_week["is_anomaly"].sum())
            judged += int(per_week["judged"].sum())
        low, high = wilson(flagged_weeks, weeks)
        rows.append(
            {
                "kind": kind,
                "weeks judged": weeks,
                "weeks with a flag": flagged_weeks,
                "share": f"{flagged_weeks / max(weeks, 1):.3f} ({low:.3f}-{high:.3f})",
                "flags per judged point": f"{flags / max(judged, 1):.5f}",
            }
        )
        print(f"{kind}: done", file=sys.stderr)
    print(pd.DataFrame(rows).to_markdown(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
