#!/usr/bin/env python
"""Where anomaly detection spends its time on a year of stored daily metrics.

    python scripts/profile_detection.py WORK/c4000_d365_s7 [--campaigns 250] [--week MONDAY]
        [--history-weeks N]

Reads the ``daily_campaign_metrics`` a run of ``scripts/benchmark_pipeline.py`` published
under ``DIR/out`` (and ``DIR/staging/validated_campaigns.parquet``), keeps the first
``--campaigns`` campaigns (0: all), judges every stored week as ``anomaly_flags`` does (one
process, the default settings and history) under cProfile, and prints the cumulative time of
the detectors' heaviest functions as a share of the whole call. With ``--week`` it judges that
week alone, on its history, as a Monday run does (in one thread: the profile is of the work,
not of how it is shared out). ``--history-weeks`` gives that week a longer (or shorter) history
than the detector's: with a history reaching back to the data's first week, the call is one
causal pass over the stored year, the work a detector whose state carried over from week to
week would do once for the whole range (the detector judges each week on its own fixed
history instead, so that a backfill publishes what each Monday run would).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import sys
from pathlib import Path

import pandas as pd

from campaign_pipeline.assets.anomalies import detector_history_weeks
from campaign_pipeline.detection import DetectionSettings, detect_by_week

SHOWN = (
    "score_panel",
    "robust_level_scale",
    "seasonal_profile_js",  # the weekday profile (its torn-phase check included)
    "_rate_baseline",
    "persistence",
    "lag1_autocorrelation",
    # the multiple-testing step: the week's level split over its days, BH within each day
    "decide",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--campaigns", type=int, default=250, help="0: all")
    parser.add_argument("--week", help="judge only this week (its Monday, YYYY-MM-DD)")
    parser.add_argument(
        "--history-weeks",
        type=int,
        help="with --week: weeks of history to judge it on (default: the detector's)",
    )
    args = parser.parse_args(argv)
    if args.history_weeks is not None and (not args.week or args.history_weeks < 1):
        parser.error("--history-weeks needs --week and at least 1 week")
    files = sorted((args.run_dir / "out" / "daily_campaign_metrics").glob("*.parquet"))
    if not files:
        parser.error(f"{args.run_dir}/out/daily_campaign_metrics has no weekly files")
    daily = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    kept = sorted(daily["campaign_id"].unique())[: args.campaigns or None]
    daily = daily[daily["campaign_id"].isin(kept)]
    campaigns = pd.read_parquet(args.run_dir / "staging" / "validated_campaigns.parquet")
    weeks = [f.stem for f in files]
    settings = DetectionSettings()
    history_weeks = args.history_weeks or detector_history_weeks(settings)
    if args.week:
        if args.week not in weeks:
            parser.error(f"no stored week {args.week} (stored: {weeks[0]} .. {weeks[-1]})")
        weeks = [args.week]
        # the days its judgement reads: the week and the history before it
        first = pd.Timestamp(args.week) - pd.Timedelta(weeks=history_weeks)
        days = pd.to_datetime(daily["date"])
        daily = daily[(days >= first) & (days < pd.Timestamp(args.week) + pd.Timedelta(days=7))]
        kept = daily["campaign_id"].unique()
    profile = cProfile.Profile()
    profile.enable()
    flags = detect_by_week(
        daily,
        weeks,
        history_weeks=history_weeks,
        campaigns=campaigns,
        settings=settings,
    )
    profile.disable()
    stats = pstats.Stats(profile)
    total = stats.total_tt
    print(
        f"{len(kept):,} campaigns, {len(weeks)} week{'s' * (len(weeks) != 1)}, "
        f"{len(daily):,} campaign-days: "
        f"{total:.1f} s, {len(flags):,} flags, {history_weeks} weeks of history, peak "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB"
    )
    for (_, _, function), (_, calls, _, cumulative, _) in sorted(
        stats.stats.items(), key=lambda item: -item[1][3]
    ):
        if function in SHOWN:
            print(
                f"  {function:<24}{calls:>6} calls {cumulative:>7.2f} s {cumulative / total:>6.1%}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
