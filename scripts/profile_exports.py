#!/usr/bin/env python
"""Where the export steps spend their time on a year of stored weekly tables.

    python scripts/profile_exports.py WORK/c4000_d365_s7 [--profile N]

Reads the ``weekly_campaign_metrics``, ``anomaly_flags`` and ``campaign_health`` a run of
``scripts/benchmark_pipeline.py`` (or ``campaign-pipeline run --data-dir DIR``) published under
``DIR/out`` (and ``DIR/staging/validated_campaigns.parquet``), and runs what ``amplitude_export``
and ``ga4_export`` run in a dry run over every stored week: read the tables, build the week's
events, check them against the destination's rules, plan the requests, write the payload files
(into a temporary directory: the published ones are left alone). Prints each destination's CPU
and wall seconds and the CPU seconds of each stage; ``--profile N`` also prints the N heaviest
functions by own time under cProfile. Dagster's share of the steps (loading the code location,
storing a materialization per week) is not in these figures.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from campaign_pipeline.assets import exports as export_assets
from campaign_pipeline.assets.common import RunWeeks
from campaign_pipeline.exports import amplitude, delivery, ga4
from campaign_pipeline.exports.events import DEFAULT_MIN_SEVERITY
from campaign_pipeline.locations import Location
from campaign_pipeline.resources.amplitude import AmplitudeHTTP
from campaign_pipeline.resources.ga4 import GA4MeasurementProtocol
from campaign_pipeline.resources.storage import PipelineStorage

STAGES = {
    # `read_weeks` in a checkout without `read_event_columns` (to compare two commits)
    "read": (export_assets, ("read_event_columns", "read_weeks")),
    "events": (export_assets, "week_events"),
    "ga4 checks": (ga4, "prepare"),
    "ga4 plan": (ga4, "plan_requests"),
    "amplitude checks": (amplitude, "prepare"),
    "amplitude plan": (amplitude, "plan_batches"),
    "payload files": (delivery, "_dry_file"),
}


def _timed(cpu: dict[str, float], stage: str, function):
    @functools.wraps(function)
    def timed(*args, **kwargs):
        start = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            cpu[stage] += time.process_time() - start

    return timed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="a data dir with staging/ and out/")
    parser.add_argument("--profile", type=int, default=0, help="show the N heaviest functions")
    args = parser.parse_args(argv)
    storage = PipelineStorage(data_dir=str(args.dir), out_dir=str(args.dir / "out"))
    stored = storage.table_weeks("weekly_campaign_metrics")
    if not stored:
        print(f"no weekly_campaign_metrics under {args.dir / 'out'}", file=sys.stderr)
        return 2
    weeks = RunWeeks(tuple(sorted(stored)))
    cpu: dict[str, float] = defaultdict(float)
    for stage, (module, names) in STAGES.items():
        for name in [names] if isinstance(names, str) else names:
            if hasattr(module, name):
                setattr(module, name, _timed(cpu, stage, getattr(module, name)))
                break
    ga4_client, amplitude_client = GA4MeasurementProtocol(), AmplitudeHTTP()
    profile = cProfile.Profile() if args.profile else None
    print(f"{len(weeks.keys)} weeks, {weeks.first} .. {weeks.last}")
    with tempfile.TemporaryDirectory() as scratch:
        for destination in ("amplitude", "ga4"):
            wall, start = time.perf_counter(), time.process_time()
            if profile:
                profile.enable()
            events = export_assets.load_week_events(storage, weeks, DEFAULT_MIN_SEVERITY)
            common = {"live": False, "why": "dry run", "ledger": None, "out_dir": Location(scratch)}
            if destination == "ga4":
                report = delivery.export_ga4(events, client=ga4_client, **common)
            else:
                report = delivery.export_amplitude(events, client=amplitude_client, **common)
            if profile:
                profile.disable()
            print(
                f"{destination:<10} {time.process_time() - start:6.2f} s CPU "
                f"{time.perf_counter() - wall:6.2f} s wall: {report.events:,} events, "
                f"{report.requests:,} requests"
            )
    print("CPU by stage, both destinations: " + ", ".join(f"{k} {v:.2f} s" for k, v in cpu.items()))
    if profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
