#!/usr/bin/env python
"""Scale benchmark: the whole pipeline, exactly as `campaign-pipeline run` runs it, on
generated accounts of growing size, against a script in the style of the earlier system.

    python scripts/benchmark_pipeline.py [--sizes 0.25 0.5 1] [--campaigns 16000] [--days 365]
        [--seed 7] [--work DIR] [--monday | --monday-only] [--no-legacy] [--markdown FILE]

For each size (a multiple of ``--campaigns``, all over ``--days`` days) it

1. generates the four raw exports with the project's sample generator (`campaign-pipeline
   sample --anomalies --defects`: the shipped sample's layout, labelled anomalies and contract
   defects included) into ``WORK/<size>/raw``, once (kept for the next invocation; the
   generator is deterministic);
2. runs ``campaign-pipeline run --data-dir WORK/<size> --out WORK/<size>/out`` in a fresh
   Python process that calls the CLI's entry point (`campaign_pipeline.cli.main`) in-process,
   so whatever the CLI does (preflight, the ingestion run, one run of every week, the
   lifetime run, the summary) is what is measured;
3. runs ``scripts/legacy_baseline.py`` on the same files in its own process, and prints
   the ratio of their wall times and peak memories.

With ``--monday`` it then times a Monday: with the year of history the largest size's run
materialized, ``weekly_pipeline_job`` (the schedule's job: the raw exports re-read and
validated, then the week's assets and the whole tables) and ``weekly_assets_job`` (the week's
assets alone, on the stored validated layer), each for two weeks: the last complete week of
the data (what the Monday after it judges; the generator's accounts wind down towards the
year's end, so it is a light week) and the week with the most campaign-days (the heaviest
Monday of the year). A last week that holds only some of its days is never the one timed.
Each job runs in a fresh process, as the schedule's run launcher starts it; the process's
imports and loading of the definitions before the run are timed apart (``startup`` in the
child's JSON), not in the job's times. ``--monday-only`` times just those runs, over the year
an earlier invocation stored.

How the stages are measured. The measured process runs the CLI in-process with the default
ephemeral Dagster instance and the in-process executor, so the steps run one at a time in
that process (anomaly detection shares a long range out to worker processes it starts).
After the run its Dagster event log gives each step's start and end (STEP_START /
STEP_SUCCESS timestamps) and the rows it reported (``dagster/row_count``). A sampling thread
reads ``/proc/<pid>/status`` (VmRSS) and ``/proc/<pid>/stat`` (user + system CPU) of the
process and of every process it started, every 20 ms; a step's peak memory is the highest
sum of resident sets sampled while it ran (pages shared between processes counted in each:
an upper bound) and its CPU the CPU time of all of them in its interval (steps run one at a
time, so the attribution is the step's own; the run's peak is the larger of that sampled
peak and the process's VmHWM, which a spike shorter than a sample cannot escape). Preflight
is timed by wrapping the CLI's ``_preflight``. "Overhead" is the rest of the wall time:
imports, loading the definitions, launching the runs, reading the weeks, the closing
summary. Rows per second divide a stage's unit of work by its wall time: raw rows of its
file for the ingestion steps (all four files for preflight and quarantine), campaign-days
(rows of ``daily_campaign_metrics``) for every later stage. Stages without a step in the run
(exports, report) are reported as absent.

On a machine shared with other work, wall times are noisy; CPU seconds are printed beside
them (user + system of the measured process and of the processes it starts).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RAW_FILES = ("campaigns", "insights", "campaign_leads", "lead_status_changes")
# Stages in the order they run; each matches step keys by a pattern (ingestion steps are
# listed one by one, as each reads its own file).
STAGES = [
    ("preflight", None),
    ("raw_campaigns", r"raw_campaigns$"),
    ("raw_insights", r"raw_insights$"),
    ("raw_campaign_leads", r"raw_campaign_leads$"),
    ("raw_lead_status_changes", r"raw_lead_status_changes$"),
    ("validated_campaigns", r"validated_campaigns$"),
    ("validated_insights", r"validated_insights$"),
    ("validated_leads", r"validated_leads$"),
    ("validated_lead_status_changes", r"validated_lead_status_changes$"),
    ("quarantine", r"quarantine$"),
    (
        "metrics",  # lead_events (staged by the ingestion job) is the leads' part of it
        r"(lead_events|daily_campaign_metrics|weekly_campaign_metrics|weekly_totals|"
        r"campaign_lifetime_metrics)$",
    ),  # fmt: skip
    ("anomalies", r"anomaly_flags$"),
    ("health", r"campaign_health$"),
    ("exports", r"(export|ga4|amplitude)"),
    ("report", r"report"),
]
RAW_OF_STEP = {
    "raw_campaigns": ("campaigns",),
    "validated_campaigns": ("campaigns",),
    "raw_insights": ("insights",),
    "validated_insights": ("insights",),
    "raw_campaign_leads": ("campaign_leads",),
    "validated_campaign_leads": ("campaign_leads",),
    "validated_leads": ("campaign_leads",),
    "raw_lead_status_changes": ("lead_status_changes",),
    "validated_lead_status_changes": ("lead_status_changes",),
    "preflight": RAW_FILES,
    "quarantine": RAW_FILES,
}


# ---------------------------------------------------------------------------------------
# The measured process
# ---------------------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    """Every live process started by ``pid``, recursively (detection's worker processes)."""
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as children:
                    kids = [int(k) for k in children.read().split()]
            except OSError:
                continue
            found += kids
            queue += kids
    return found


def _rss_and_cpu(pid: int, tick: int) -> tuple[int, float, float]:
    """Resident bytes, own CPU seconds and reaped children's CPU seconds of one process."""
    rss = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
                break
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    reaped = (int(fields[13]) + int(fields[14])) / tick  # cutime + cstime
    return rss, own, reaped


class Sampler(threading.Thread):
    """Resident memory and CPU time of this process and every process it started (the
    detection's worker processes), every `every` seconds. Memory is the sum of their
    resident sets (pages they share are counted once per process: an upper bound); CPU adds
    the children's, live and reaped."""

    def __init__(self, every: float = 0.02):
        super().__init__(daemon=True)
        self.every = every
        self.samples: list[tuple[float, int, float]] = []  # (time, rss bytes, cpu seconds)
        self._halt = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK")
        self._pid = os.getpid()

    def read(self) -> tuple[float, int, float]:
        rss, own, reaped = _rss_and_cpu(self._pid, self._tick)
        cpu = own + reaped
        for child in _descendants(self._pid):
            try:
                child_rss, child_own, _ = _rss_and_cpu(child, self._tick)
            except (OSError, IndexError, ValueError):
                continue  # ended between the listing and the read
            rss, cpu = rss + child_rss, cpu + child_own
        return time.time(), rss, cpu

    def peak(self) -> int:
        return max((sample[1] for sample in self.samples), default=0)

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append(self.read())
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.samples.append(self.read())

    def window(self, start: float, end: float) -> tuple[int, float]:
        """Peak RSS and CPU seconds between two times."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        before = [s for s in self.samples if s[0] <= start]
        after = [s for s in self.samples if s[0] >= end]
        edge = ([before[-1]] if before else []) + ([after[0]] if after else [])
        peak = max((s[1] for s in inside + edge), default=0)
        cpu = (after[0][2] if after else self.samples[-1][2]) - (
            before[-1][2] if before else self.samples[0][2]
        )
        return peak, cpu


def _peak_rss_of_process() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _capture_instances() -> list:
    """Record every Dagster instance the CLI creates, to read its event log afterwards."""
    import dagster as dg

    created = []
    ephemeral, get = dg.DagsterInstance.ephemeral, dg.DagsterInstance.get

    def record(factory):
        def make(*args, **kwargs):
            instance = factory(*args, **kwargs)
            created.append(instance)
            return instance

        return make

    dg.DagsterInstance.ephemeral = staticmethod(record(ephemeral))
    dg.DagsterInstance.get = staticmethod(record(get))
    return created


def _steps(instances) -> list[dict]:
    """Every step of every run: key, start, end, state, rows reported."""
    from dagster import DagsterEventType

    steps: dict[tuple[str, str], dict] = {}
    for instance in {id(i): i for i in instances}.values():
        for run in instance.get_runs():
            for entry in instance.all_logs(run.run_id):
                event = entry.dagster_event
                if event is None or not entry.step_key:
                    continue
                step = steps.setdefault(
                    (run.run_id, entry.step_key),
                    {"step": entry.step_key, "job": run.job_name, "rows": None},
                )
                kind = event.event_type
                if kind == DagsterEventType.STEP_START:
                    step["start"] = entry.timestamp
                elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                    step["end"] = entry.timestamp
                    step["ok"] = kind == DagsterEventType.STEP_SUCCESS
                elif kind == DagsterEventType.ASSET_MATERIALIZATION:
                    count = event.event_specific_data.materialization.metadata.get(
                        "dagster/row_count"
                    )
                    if count is not None and step["rows"] is None:
                        step["rows"] = int(count.value)
    return sorted(
        (s for s in steps.values() if "start" in s and "end" in s), key=lambda s: s["start"]
    )


def child_run(data_dir: str, out_dir: str, result_path: str) -> int:
    """`campaign-pipeline run` in this process, measured."""
    sampler = Sampler()
    sampler.start()
    started = time.time()
    from campaign_pipeline import cli

    instances = _capture_instances()
    preflight = {}
    real_preflight = cli._preflight

    def timed_preflight(*args, **kwargs):
        t0 = time.time()
        try:
            return real_preflight(*args, **kwargs)
        finally:
            preflight.update(start=t0, end=time.time())

    cli._preflight = timed_preflight
    code = cli.main(["run", "--data-dir", data_dir, "--out", out_dir])
    ended = time.time()
    sampler.stop()
    steps = _steps(instances)
    for step in steps:
        step["peak_rss"], step["cpu"] = sampler.window(step["start"], step["end"])
    if preflight:
        peak, cpu = sampler.window(preflight["start"], preflight["end"])
        preflight.update(peak_rss=peak, cpu=cpu)
    usage = os.times()
    Path(result_path).write_text(
        json.dumps(
            {
                "exit_code": code,
                "wall": ended - started,
                "cpu": usage.user + usage.system + usage.children_user + usage.children_system,
                "peak_rss": max(_peak_rss_of_process(), sampler.peak()),
                "preflight": preflight,
                "steps": steps,
            }
        )
    )
    return 0


def monday_weeks(days) -> list[dict]:
    """The weeks a Monday run is timed on, from the stored daily rows' dates: the last week
    whose 7 days the data covers, and the week with the most campaign-days (rows)."""
    import pandas as pd

    day = pd.to_datetime(days).dt.normalize()
    week = day - pd.to_timedelta(day.dt.weekday, unit="D")
    rows = week.value_counts().sort_index()
    complete = rows[(rows.index >= day.min()) & (rows.index + pd.Timedelta(days=6) <= day.max())]
    if complete.empty:
        return []
    picked: dict = {}
    for start, why in ((complete.index[-1], "last complete week"),
                       (complete.idxmax(), "most campaign-days")):  # fmt: skip
        picked[start] = f"{picked[start]}, {why}" if start in picked else why
    return [
        {"week": str(start.date()), "why": why, "campaign_days": int(rows[start])}
        for start, why in picked.items()
    ]


def child_monday(data_dir: str, out_dir: str, result_path: str, week: str, job: str) -> int:
    """One Monday job for one week, in this fresh process as the schedule's run launcher would
    start it (a run after another in one process would begin on the first one's memory)."""
    sampler = Sampler()
    sampler.start()
    # what the run launcher's fresh process spends before the run starts: the imports and
    # loading the definitions (not part of the job's wall time below)
    s0, scpu0 = time.time(), sum(os.times()[:4])
    import dagster as dg

    from campaign_pipeline.definitions import defs
    from campaign_pipeline.runner import storage_run_config

    config = storage_run_config(data_dir, out_dir) | {
        "loggers": {"console": {"config": {"log_level": "WARNING"}}}
    }
    instance = dg.DagsterInstance.ephemeral()
    t0, cpu0 = time.time(), sum(os.times()[:4])
    startup = {"wall": t0 - s0, "cpu": cpu0 - scpu0}
    result = defs.resolve_job_def(job).execute_in_process(
        partition_key=week,
        run_config=config,
        instance=instance,
        raise_on_error=False,
        tags={"campaign_pipeline/trigger": "weekly_schedule"},
    )
    t1, cpu1 = time.time(), sum(os.times()[:4])
    steps = _steps([instance])
    for step in steps:
        step["peak_rss"], step["cpu"] = sampler.window(step["start"], step["end"])
    peak, _ = sampler.window(t0, t1)
    sampler.stop()
    measured = {
        "ok": result.success,
        "wall": t1 - t0,
        "cpu": cpu1 - cpu0,
        "peak_rss": peak,
        "startup": startup,
    }
    Path(result_path).write_text(json.dumps(measured | {"steps": steps}))
    return 0


# ---------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------


def _run_measured(argv: list[str], log: Path) -> tuple[int, float, float, int]:
    """A command in its own process: exit code, wall seconds, CPU seconds, peak RSS bytes."""
    t0 = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - t0
    return (
        os.waitstatus_to_exitcode(status),
        wall,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss * 1024,
    )


def generate(data_dir: Path, campaigns: int, days: int, seed: int, say) -> dict:
    """The raw exports of one size (generated once; a manifest records the arguments)."""
    manifest_path = data_dir / "benchmark_manifest.json"
    wanted = {"campaigns": campaigns, "days": days, "seed": seed, "anomalies": True,
              "defects": True}  # fmt: skip
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("arguments") == wanted:
            return manifest
    say(f"  generating {campaigns:,} campaigns x {days} days into {data_dir} ...")
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "campaign_pipeline.cli",
            "sample",
            "--out",
            str(data_dir),
            "--campaigns",
            str(campaigns),
            "--days",
            str(days),
            "--seed",
            str(seed),
            "--anomalies",
            "--defects",
            "--force",  # the work dir is the benchmark's own: another size's files are replaced
        ],  # fmt: skip
        check=True,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )
    rows = {}
    for name in RAW_FILES:
        with open(data_dir / "raw" / f"{name}.csv", "rb") as handle:
            rows[name] = (
                sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 24), b"")) - 1
            )
    manifest = {
        "arguments": wanted,
        "rows": rows,
        "csv_bytes": sum((data_dir / "raw" / f"{n}.csv").stat().st_size for n in RAW_FILES),
        "generate_seconds": time.perf_counter() - t0,
    }
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return manifest


def stage_table(result: dict, raw_rows: dict[str, int]) -> list[dict]:
    """Per stage: wall, CPU, peak memory, rows of work and rows per second."""
    steps = result["steps"]
    campaign_days = next(
        (s["rows"] for s in steps if s["step"] == "daily_campaign_metrics" and s["rows"]), None
    )
    rows_out = []
    used = set()
    for name, pattern in STAGES:
        if name == "preflight":
            pre = result.get("preflight") or {}
            if not pre:
                rows_out.append({"stage": name, "absent": True})
                continue
            matched = [{"start": pre["start"], "end": pre["end"], "peak_rss": pre["peak_rss"],
                        "cpu": pre["cpu"]}]  # fmt: skip
        else:
            matched = [s for s in steps if re.search(pattern, s["step"]) and id(s) not in used]
            used.update(id(s) for s in matched)
        if not matched:
            rows_out.append({"stage": name, "absent": True})
            continue
        wall = sum(s["end"] - s["start"] for s in matched)
        files = RAW_OF_STEP.get(name)
        work = sum(raw_rows[f] for f in files) if files else campaign_days
        rows_out.append(
            {
                "stage": name,
                "steps": len(matched),
                "wall": wall,
                "cpu": sum(s["cpu"] for s in matched),
                "peak_rss": max(s["peak_rss"] for s in matched),
                "work": work,
                "unit": "raw rows" if files else "campaign-days",
            }
        )
    for step in steps:  # steps no stage names (a new asset): shown on their own
        if id(step) not in used:
            rows_out.append(
                {
                    "stage": step["step"],
                    "steps": 1,
                    "wall": step["end"] - step["start"],
                    "cpu": step["cpu"],
                    "peak_rss": step["peak_rss"],
                    "work": campaign_days,
                    "unit": "campaign-days",
                }
            )
    in_steps = sum(r.get("wall", 0.0) for r in rows_out)
    rows_out.append({"stage": "overhead", "wall": result["wall"] - in_steps, "cpu": None,
                     "peak_rss": None, "work": None})  # fmt: skip
    return rows_out


def _mb(value) -> str:
    return "" if value is None else f"{value / 2**20:,.0f} MB"


def print_stages(stages: list[dict], say) -> None:
    say(f"    {'stage':<31}{'wall s':>8}{'CPU s':>8}{'peak mem':>11}{'rows/s':>15}  unit")
    for row in stages:
        if row.get("absent"):
            say(f"    {row['stage']:<31}{'absent':>8}")
            continue
        rate = (  # a stage shorter than 0.05 s has no meaningful rate
            f"{row['work'] / row['wall']:>15,.0f}"
            if row.get("work") and row["wall"] >= 0.05
            else " " * 15
        )
        cpu = f"{row['cpu']:>8.1f}" if row.get("cpu") is not None else " " * 8
        say(
            f"    {row['stage']:<31}{row['wall']:>8.1f}{cpu}{_mb(row.get('peak_rss')):>11}"
            f"{rate}  {row.get('unit') or ''}"
        )


def commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return sha + ("+changes" if dirty else "")
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--campaigns", type=int, default=16000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--work",
        default=str(Path(tempfile.gettempdir()) / "campaign_pipeline_benchmark"),
        help="where the generated data and the outputs go (kept between invocations)",
    )
    parser.add_argument("--monday", action="store_true", help="also time a Monday run")
    parser.add_argument(
        "--monday-only",
        action="store_true",
        help="time only the Monday runs, over the year an earlier invocation stored for the "
        "largest --sizes",
    )
    parser.add_argument("--no-legacy", action="store_true", help="skip the earlier-system script")
    parser.add_argument("--markdown", help="also write the summary table to this file")
    parser.add_argument("--child", nargs=4, metavar=("MODE", "DATA", "OUT", "RESULT"),
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--week", help=argparse.SUPPRESS)  # the Monday child's week and job
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, data, out, result = args.child
        if mode == "monday":
            return child_monday(data, out, result, args.week, args.job)
        return child_run(data, out, result)

    def say(line: str = "") -> None:
        print(line, flush=True)

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    say(f"benchmark_pipeline: commit {commit()}, {os.cpu_count()} CPUs, work dir {work}")
    summary = []
    for size in [] if args.monday_only else args.sizes:
        campaigns = max(1, round(args.campaigns * size))
        data_dir = work / f"c{campaigns}_d{args.days}_s{args.seed}"
        say(f"\nsize {size:g}x: {campaigns:,} campaigns x {args.days} days")
        manifest = generate(data_dir, campaigns, args.days, args.seed, say)
        rows = manifest["rows"]
        say(
            "  raw rows: "
            + ", ".join(f"{k} {v:,}" for k, v in rows.items())
            + f"; {manifest['csv_bytes'] / 1e6:,.0f} MB of CSV"
        )
        out_dir = data_dir / "out"
        result_path = data_dir / "pipeline_result.json"
        say("  pipeline (campaign-pipeline run, in a fresh process) ...")
        code, wall, cpu, peak = _run_measured(
            [sys.executable, __file__, "--child", "run", str(data_dir), str(out_dir),
             str(result_path)],
            data_dir / "pipeline.log",
        )  # fmt: skip
        result = json.loads(result_path.read_text()) if result_path.exists() else None
        if code != 0 or result is None or result["exit_code"] != 0:
            say(f"  pipeline FAILED (exit {code}); see {data_dir / 'pipeline.log'}")
            summary.append({"size": size, "campaigns": campaigns, "rows": rows, "failed": True})
            continue
        # wait4's peak is the largest single process; the sampled peak sums the run's processes
        peak = max(peak, result["peak_rss"])
        say(
            f"  pipeline: {wall:.1f} s wall, {cpu:.1f} s CPU, peak {_mb(peak)} "
            f"({data_dir / 'pipeline.log'})"
        )
        stages = stage_table(result, rows)
        print_stages(stages, say)
        entry = {
            "size": size,
            "campaigns": campaigns,
            "rows": rows,
            "csv_bytes": manifest["csv_bytes"],
            "wall": wall,
            "cpu": cpu,
            "peak_rss": peak,
            "stages": stages,
        }
        if not args.no_legacy:
            say("  earlier-system script (scripts/legacy_baseline.py) ...")
            code, l_wall, l_cpu, l_peak = _run_measured(
                [sys.executable, str(REPO / "scripts" / "legacy_baseline.py"), str(data_dir),
                 "--out", str(data_dir / "legacy_out")],
                data_dir / "legacy.log",
            )  # fmt: skip
            if code == 0:
                entry.update(legacy_wall=l_wall, legacy_cpu=l_cpu, legacy_peak=l_peak)
                say(
                    f"  legacy: {l_wall:.1f} s wall, {l_cpu:.1f} s CPU, peak {_mb(l_peak)}; "
                    f"pipeline / legacy wall time: {wall / l_wall:.2f} "
                    f"(the pipeline is {l_wall / wall:.2f}x as fast)"
                )
            else:
                say(f"  legacy FAILED (exit {code}); see {data_dir / 'legacy.log'}")
        summary.append(entry)

    monday, last = None, None  # `last`: the size whose stored year the Monday runs read
    if args.monday_only:
        size = max(args.sizes)
        last = {"size": size, "campaigns": max(1, round(args.campaigns * size))}
        stored = work / f"c{last['campaigns']}_d{args.days}_s{args.seed}" / "out"
        if not (stored / "daily_campaign_metrics").is_dir():
            say(f"--monday-only: no stored year at {stored}; run with --sizes {size:g} first")
            return 2
    elif args.monday and summary and not summary[-1].get("failed"):
        last = summary[-1]
    if last is not None:
        data_dir = work / f"c{last['campaigns']}_d{args.days}_s{args.seed}"
        say(f"\nMonday runs over the stored year of the {last['size']:g}x size ...")
        import pandas as pd

        days = pd.read_parquet(data_dir / "out" / "daily_campaign_metrics", columns=["date"])
        monday = {"weeks": monday_weeks(days["date"])}
        if not monday["weeks"]:
            say("  no week of the stored data holds all its 7 days: nothing timed")
        for week in monday["weeks"]:
            say(f"  week {week['week']} ({week['why']}, {week['campaign_days']:,} campaign-days)")
            week["jobs"] = {}
            for job in ("weekly_pipeline_job", "weekly_assets_job"):
                result_path = data_dir / f"monday_{week['week']}_{job}.json"
                result_path.unlink(missing_ok=True)
                log = data_dir / f"monday_{week['week']}_{job}.log"
                code, *_ = _run_measured(
                    [sys.executable, __file__, "--child", "monday", str(data_dir),
                     str(data_dir / "out"), str(result_path), "--week", week["week"],
                     "--job", job],
                    log,
                )  # fmt: skip
                if code != 0 or not result_path.exists():
                    say(f"  {job} FAILED (exit {code}); see {log}")
                    week["jobs"][job] = {"ok": False, "wall": float("nan"), "cpu": float("nan"),
                                         "peak_rss": 0, "steps": []}  # fmt: skip
                    continue
                measured = week["jobs"][job] = json.loads(result_path.read_text())
                say(
                    f"  {job}: {measured['wall']:.1f} s wall, "
                    f"{measured['cpu']:.1f} s CPU, peak {_mb(measured['peak_rss'])}"
                    + ("" if measured["ok"] else " (FAILED)")
                    + (
                        f"; before it, the process's imports and definitions: "
                        f"{measured['startup']['wall']:.1f} s wall, "
                        f"{measured['startup']['cpu']:.1f} s CPU"
                        if "startup" in measured
                        else ""
                    )
                )
                for step in measured["steps"]:
                    say(
                        f"    {step['step']:<31}{step['end'] - step['start']:>8.1f}"
                        f"{step['cpu']:>8.1f}{_mb(step['peak_rss']):>11}"
                    )

    table = markdown(summary, monday, args)
    say("\n" + table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    return 0


def markdown(summary: list[dict], monday: dict | None, args) -> str:
    if args.monday_only:
        flags = f"--sizes {max(args.sizes):g} --monday-only"
    else:
        flags = "--sizes " + " ".join(f"{entry['size']:g}" for entry in summary)
        flags += " --monday" if monday else ""
    lines = [
        f"Measured with `python scripts/benchmark_pipeline.py {flags}` at commit {commit()} "
        f"on {os.cpu_count()} CPUs ({args.days} days, seed {args.seed}).",
    ]
    if summary:
        lines += [
            "",
            "| size | campaigns | insights / leads / status changes (raw rows) | CSV | "
            "pipeline wall | pipeline CPU | peak memory | ingestion | metrics | anomalies | "
            "health | exports | report | earlier-system script | speed-up |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
    for entry in summary:
        rows = entry["rows"]
        raw = (
            f"{rows['insights'] / 1e6:.2f}M / {rows['campaign_leads'] / 1e6:.2f}M / "
            f"{rows['lead_status_changes'] / 1e6:.2f}M"
        )
        if entry.get("failed"):
            lines.append(
                f"| {entry['size']:g}x | {entry['campaigns']:,} | {raw} | | failed |||||||||||"
            )
            continue
        by_stage = {r["stage"]: r for r in entry["stages"] if not r.get("absent")}
        ingestion = sum(
            r["wall"]
            for name, r in by_stage.items()
            if name == "preflight"
            or name.startswith(("raw_", "validated_"))
            or name == "quarantine"
        )

        def wall(name, by_stage=by_stage):
            return f"{by_stage[name]['wall']:.1f} s" if name in by_stage else "absent"

        legacy = (
            f"{entry['legacy_wall']:.1f} s, {_mb(entry['legacy_peak'])}"
            if "legacy_wall" in entry
            else "not run"
        )
        speed = f"{entry['legacy_wall'] / entry['wall']:.2f}x" if "legacy_wall" in entry else ""
        lines.append(
            f"| {entry['size']:g}x | {entry['campaigns']:,} | {raw} | "
            f"{entry['csv_bytes'] / 1e6:,.0f} MB | {entry['wall']:.1f} s | {entry['cpu']:.1f} s | "
            f"{_mb(entry['peak_rss'])} | {ingestion:.1f} s | {wall('metrics')} | "
            f"{wall('anomalies')} | {wall('health')} | {wall('exports')} | {wall('report')} | "
            f"{legacy} | {speed} |"
        )
    if monday:
        lines.append("")
        lines.append("Monday runs over the stored year:")
        lines.append("")
        shown = (
            "validated_leads",
            "lead_events",
            "daily_campaign_metrics",
            "anomaly_flags",
            "weekly_report",
        )
        lines.append(
            "| week | campaign-days | job | wall | CPU | peak memory | "
            + " | ".join(f"{s} step" for s in shown)
            + " |"
        )
        lines.append("|---|---|---|---|---|---|" + "---|" * len(shown))
        for week in monday["weeks"]:
            for job, measured in week["jobs"].items():
                took = {s["step"]: s["end"] - s["start"] for s in measured["steps"]}
                lines.append(
                    f"| {week['week']} ({week['why']}) | {week['campaign_days']:,} | `{job}` | "
                    f"{measured['wall']:.1f} s{'' if measured['ok'] else ' (failed)'} | "
                    f"{measured['cpu']:.1f} s | {_mb(measured['peak_rss'])} | "
                    + " | ".join(f"{took[s]:.1f} s" if s in took else "not run" for s in shown)
                    + " |"
                )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
