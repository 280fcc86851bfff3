"""The CLI as a user meets it: one-line errors with exit code 2, and a full run through Dagster."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from campaign_pipeline_tests._cli_support import run_cli_in_process
from campaign_pipeline_tests.builders import write_exports

REPO = Path(__file__).resolve().parents[1]


def start_cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    """``campaign-pipeline ARGS`` started as a user starts it, without this process'
    CAMPAIGN_PIPELINE_* and DAGSTER_HOME (but the variables of ``env``); `finish` waits."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGN_PIPELINE_")}
    full_env.pop("DAGSTER_HOME", None)
    full_env.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "campaign_pipeline.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=REPO,
    )


def finish(started: subprocess.Popen, timeout: int = 300) -> subprocess.CompletedProcess:
    stdout, stderr = started.communicate(timeout=timeout)
    return subprocess.CompletedProcess(started.args, started.returncode, stdout, stderr)


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return finish(start_cli(*args, env=env))


def run_cli_here(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`run_cli`'s command in this process (`run_cli_in_process`), the same variables unset: for
    the tests of an error's message and exit code, or of what a command computes, which need no
    interpreter of their own (a subprocess' imports cost seconds)."""
    return run_cli_in_process(*args, unset=("CAMPAIGN_PIPELINE_", "DAGSTER_HOME"), env=env)[0]


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_file_exits_2_naming_the_file(tmp_path):
    raw = write_exports(tmp_path)
    (raw / "insights.csv").unlink()
    assert_one_line_error(
        run_cli_here("run", "--data-dir", str(tmp_path)), "insights.csv", "file not found"
    )


def test_missing_required_column_exits_2_naming_file_and_column(tmp_path):
    raw = write_exports(tmp_path)
    text = (raw / "campaign_leads.csv").read_text().replace("lead_status", "status")
    (raw / "campaign_leads.csv").write_text(text)
    assert_one_line_error(
        run_cli_here("run", "--data-dir", str(tmp_path)),
        "campaign_leads.csv",
        "column 'lead_status'",
    )


def test_unreadable_file_exits_2(tmp_path):
    raw = write_exports(tmp_path)
    (raw / "campaigns.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    assert_one_line_error(run_cli_here("run", "--data-dir", str(tmp_path)), "campaigns.csv")


def test_missing_raw_folder_exits_2(tmp_path):
    assert_one_line_error(
        run_cli_here("run", "--data-dir", str(tmp_path / "nowhere")), "raw folder not found"
    )


_HEAVY_IMPORTS = (
    "campaign_pipeline.assets",
    "campaign_pipeline.definitions",
    "dagster",
    "scipy",
    "matplotlib",
)


def _codes_and_heavy_imports(
    *commands: list[str], env: dict[str, str], env_of: dict[int, dict[str, str]] | None = None
) -> list[tuple[list, str]]:
    """Each command's exit code, then which of `_HEAVY_IMPORTS` the interpreter had imported
    when it returned, and its stderr: the commands one after another in ONE interpreter (each
    start costs seconds), so what the last one lists is what all of them imported. ``env`` is
    the interpreter's environment; ``env_of[i]`` is set for command ``i`` alone."""
    probe = (
        "import contextlib, io, json, os, sys\n"
        "from campaign_pipeline.cli import main\n"
        "found = []\n"
        "for args, extra in json.loads(sys.argv[1]):\n"
        "    before = dict(os.environ)\n"
        "    os.environ.update(extra)\n"
        "    with contextlib.redirect_stderr(io.StringIO()) as stderr:\n"
        "        code = main(args)\n"
        "    os.environ.clear()\n"
        "    os.environ.update(before)\n"
        f"    heavy = [m for m in {_HEAVY_IMPORTS!r} if m in sys.modules]\n"
        "    found.append([[str(code), *heavy], stderr.getvalue()])\n"
        "print(json.dumps(found))\n"
    )
    plan = [[list(args), (env_of or {}).get(i, {})] for i, args in enumerate(commands)]
    proc = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(plan)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    return [tuple(result) for result in json.loads(proc.stdout)]


def _environment() -> dict[str, str]:
    """This process' variables but those the run reads (as a user without them runs it)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CAMPAIGN_PIPELINE_", "SALESFORCE_"))
    }


def test_raw_file_mistakes_are_found_before_the_pipeline_is_imported(tmp_path):
    """The preflight reads headers only, so a typo in a path or a renamed column is answered
    before the run imports the asset definitions and their libraries (seconds of imports); a
    half-set Salesforce source too. (Resolving the storage has imported Dagster by then.)"""
    raw = write_exports(tmp_path / "missing")
    (raw / "insights.csv").unlink()
    # every file there, but the out dir is a file: named before the run, not by its first write
    complete = tmp_path / "complete"
    write_exports(complete)
    (tmp_path / "published").write_text("")
    results = _codes_and_heavy_imports(
        ["run", "--data-dir", str(raw.parent)],
        ["run", "--data-dir", str(raw.parent)],
        ["run", "--data-dir", str(complete), "--out", str(tmp_path / "published")],
        env=_environment(),
        env_of={1: {"SALESFORCE_INSTANCE_URL": "https://example.my.salesforce.com"}},
    )
    for (code, stderr), expected in zip(
        results,
        (
            "insights.csv",
            "SALESFORCE_ACCESS_TOKEN is not",
            f"error: {tmp_path / 'published'}: the out folder cannot be written (File exists)",
        ),
        strict=True,
    ):
        assert code[0] == "2" and set(code[1:]) <= {"dagster"}, (code, stderr)
        assert expected in stderr
    assert results[2][1].strip() == (
        f"error: {tmp_path / 'published'}: the out folder cannot be written (File exists)"
    )


def test_report_and_detect_answer_a_bad_argument_before_the_heavy_imports(tmp_path):
    """A week that is not a Monday, or a detection setting with a typo, is one line and exit 2
    before Dagster, scipy or matplotlib are imported."""
    missing = str(tmp_path / "nowhere.csv")
    out = str(tmp_path / "flags.csv")
    series = tmp_path / "series.csv"
    pd.DataFrame({"series": ["a"], "timestamp": ["2025-01-01"], "value": [1.0]}).to_csv(series)
    # an output that cannot be written is named before the input is read
    unwritable = ((tmp_path, "(it is a folder)"), (series / "f.csv", f"exists: {series})"))
    results = _codes_and_heavy_imports(
        ["report", "--week", "2025-01-08", "--out", str(tmp_path)],
        ["detect", missing, "--out", out, "--set", "min_relative_efect=10"],
        ["detect", missing, "--out", out],  # a good setting and a missing file: before scipy
        *(["detect", str(series), "--out", str(path)] for path, _ in unwritable),
        env=dict(os.environ),
    )
    for code, stderr in results:
        assert code == ["2"], (code, stderr)
    assert "2025-01-08 is a Wednesday" in results[0][1]
    assert "min_relative_efect=10" in results[1][1]
    assert "file not found" in results[2][1]
    for (_, stderr), (path, reason) in zip(results[3:], unwritable, strict=True):
        assert stderr.startswith(f"error: {path}: cannot write the flags there (") and (
            reason in stderr
        ), stderr


def test_detect_missing_column_exits_2(tmp_path):
    path = tmp_path / "series.csv"
    pd.DataFrame({"series": ["a"], "time": ["2025-01-01"], "value": [1.0]}).to_csv(
        path, index=False
    )
    assert_one_line_error(
        run_cli_here("detect", str(path), "--out", str(tmp_path / "f.csv")), "column 'timestamp'"
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [("a", "2025-01-01"), ("a", "01/02/2025"), ("a", "2025-01-03")],
            "column 'timestamp': 1 value(s) are not timestamps (the first in data row 2: "
            "'01/02/2025'); write them as YYYY-MM-DD, YYYY-MM-DD HH:MM:SS or any one format",
        ),
        (
            [("a", "2025-01-01"), ("a", ""), ("a", "2025-01-03")],
            "column 'timestamp': 1 value(s) are not timestamps (the first in data row 2: blank)",
        ),
        (
            [("a", "2025-01-01"), (" ", "2025-01-02"), ("", "2025-01-03")],
            "column 'series': 2 value(s) are blank (the first in data row 2); every reading needs "
            "the name of its series",
        ),
    ],
)
def test_detect_names_the_first_row_it_cannot_take(rows, message, tmp_path, capsys):
    from campaign_pipeline.cli import main

    path = tmp_path / "series.csv"
    path.write_text("series,timestamp,value\n" + "".join(f"{s},{t},1\n" for s, t in rows))
    assert main(["detect", str(path), "--out", str(tmp_path / "f.csv")]) == 2
    assert capsys.readouterr().err.strip().startswith(f"error: {path}, {message}")
    assert not (tmp_path / "f.csv").exists()


def test_detect_reads_iso_dates_and_date_times_mixed_in_one_file(tmp_path):
    path = tmp_path / "series.csv"
    path.write_text("series,timestamp,value\na,2025-01-01,1\na,2025-01-02 10:00,2\n")
    proc = run_cli_here("detect", str(path), "--out", str(tmp_path / "f.csv"))
    assert proc.returncode == 0, proc.stderr
    assert pd.read_csv(tmp_path / "f.csv")["timestamp"].tolist() == [
        "2025-01-01 00:00:00",
        "2025-01-02 10:00:00",
    ]


def test_detect_takes_any_detection_setting_and_refuses_a_bad_one_before_reading(tmp_path):
    rng = np.random.default_rng(5)
    ts = pd.date_range("2025-03-03", periods=24 * 20, freq="h")
    values = np.exp(rng.normal(0.0, 0.05, len(ts)))
    values[24 * 16 + 12] *= (
        6.0  # +500 %, in the third week (judged once two of each weekday are known)
    )
    path, out = tmp_path / "series.csv", tmp_path / "flags.csv"
    pd.DataFrame({"series": "a", "timestamp": ts, "value": values}).to_csv(path, index=False)
    assert run_cli_here("detect", str(path), "--out", str(out)).returncode == 0
    assert pd.read_csv(out)["is_anomaly"].sum() == 1
    # asking for an effect of at least +1000 % makes the +500 % hour not an alert
    proc = run_cli_here(
        "detect",
        str(path),
        "--out",
        str(out),
        "--set",
        "min_relative_effect=10",
        "--set",
        "use_cusum=false",
    )
    assert proc.returncode == 0, proc.stderr
    assert pd.read_csv(out)["is_anomaly"].sum() == 0
    # a typo or a wrong value ends it at once, naming the setting, even before the file is read
    missing = str(tmp_path / "nowhere.csv")
    assert_one_line_error(
        run_cli_here("detect", missing, "--out", str(out), "--set", "min_relative_efect=10"),
        "min_relative_efect=10",
        "DetectionSettings field",
        "(did you mean min_relative_effect?)",
    )
    assert_one_line_error(
        run_cli_here("detect", missing, "--out", str(out), "--set", "use_cusum=maybe"),
        "use_cusum",
        "true or false",
    )


def test_detect_says_what_it_does_with_text_values_and_repeated_timestamps(tmp_path):
    days = pd.date_range("2025-01-01", periods=40, freq="D").strftime("%Y-%m-%d").tolist()
    rows = [("a", d, "10") for d in days] + [
        ("a", days[5], "14"),
        ("a", days[6], "12,5"),
        ("a", days[7], ""),
        ("a", days[8], "inf"),  # infinite: no reading either
        ("a", days[9], "-inf"),
    ]
    path = tmp_path / "series.csv"
    pd.DataFrame(rows, columns=["series", "timestamp", "value"]).to_csv(path, index=False)
    proc = run_cli_here("detect", str(path), "--out", str(tmp_path / "f.csv"))
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr
    notes = [line for line in proc.stdout.splitlines() if line.startswith("detect: note: ")]
    assert len(notes) == 2
    assert (
        "3 value(s) are not finite numbers (the first in data row 42: '12,5'); treated as missing"
        in notes[0]
    )
    assert (
        "5 (series, timestamp) pair(s) appear more than once (5 extra row(s)); their values are "
        "averaged" in notes[1]
    )
    flags = pd.read_csv(tmp_path / "f.csv")
    assert len(flags) == 40  # one row per distinct timestamp
    assert flags["value"].between(10, 12).all()  # the pairs' finite readings, averaged
    assert proc.stdout.splitlines()[-1].startswith("detect: 40 points in 1 series -> ")
    # a clean file gets no notes
    pd.DataFrame({"series": "a", "timestamp": days, "value": 10.0}).to_csv(path, index=False)
    assert "note:" not in run_cli_here("detect", str(path), "--out", str(tmp_path / "f.csv")).stdout


def test_detect_keeps_series_names_as_text_and_notes_readings_that_share_a_step(tmp_path):
    hours = pd.date_range("2025-01-01", periods=24 * 10, freq="h")
    rows = [("1", t, 10.0) for t in hours] + [("01", t, 20.0) for t in hours]
    rows += [("007", t, 5.0) for t in hours] + [("1", hours[100] + pd.Timedelta(minutes=20), 99.0)]
    path, out = tmp_path / "series.csv", tmp_path / "flags.csv"
    pd.DataFrame(rows, columns=["series", "timestamp", "value"]).to_csv(path, index=False)
    proc = run_cli_here("detect", str(path), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    flags = pd.read_csv(out, dtype={"series": str})
    # "1" and "01" are two series (read as numbers they were one, averaged), "007" stays "007"
    assert sorted(flags["series"].unique()) == ["007", "01", "1"]
    assert flags.groupby("series")["value"].max().to_dict() == {"007": 5.0, "01": 20.0, "1": 54.5}
    assert (
        "detect: note: "
        f"{path}: 1 reading(s) fall on a step of their series' grid that an earlier reading holds "
        "(the first: series '1' at 2025-01-05 04:20:00, spacing 1 h); each step's readings are "
        "averaged into one"
    ) in proc.stdout.splitlines()


def test_detect_names_a_grid_far_longer_than_its_readings(tmp_path):
    hours = pd.date_range("2025-01-01", periods=200, freq="h")
    rows = [("a", t, 10.0) for t in hours] + [("a", pd.Timestamp("2027-01-01"), 10.0)]
    path, out = tmp_path / "series.csv", tmp_path / "flags.csv"
    pd.DataFrame(rows, columns=["series", "timestamp", "value"]).to_csv(path, index=False)
    proc = run_cli_here("detect", str(path), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (
        "1 series has a grid over 10x longer than its readings (the first: 'a', 201 readings "
        "over 17,521 steps from 2025-01-01 00:00:00 to 2027-01-01 00:00:00): a stray timestamp?"
    ) in proc.stdout


def test_detect_names_a_file_separated_by_something_else(tmp_path):
    path = tmp_path / "series.csv"
    path.write_text("series;timestamp;value\na;2025-01-01;1\n")
    assert_one_line_error(
        run_cli_here("detect", str(path), "--out", str(tmp_path / "f.csv")),
        "the file looks ';'-separated",
    )


def test_detect_reads_timestamps_with_a_utc_offset_as_instants(tmp_path):
    # Berlin local time across the change to summer time (+01:00, then +02:00): protects
    # against a traceback on offset timestamps and an hour lost or merged at the change; one
    # note, and every reading judged on UTC's clock
    utc = pd.date_range("2025-03-01", periods=24 * 40, freq="h", tz="UTC")
    local = utc.tz_convert("Europe/Berlin")
    rng = np.random.default_rng(3)
    values = np.exp(rng.normal(0.0, 0.05, len(utc)))
    values[800] *= 6.0
    path, out = tmp_path / "series.csv", tmp_path / "flags.csv"
    pd.DataFrame(
        {
            "series": "a",
            "timestamp": local.strftime("%Y-%m-%d %H:%M:%S%z").str[:-2] + ":00",
            "value": values,
        }
    ).to_csv(path, index=False)
    assert "+02:00" in path.read_text() and "+01:00" in path.read_text()
    proc = run_cli_here("detect", str(path), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stdout.splitlines() if line.startswith("detect: note: ")]
    assert (
        len(notes) == 1 and "960 timestamp(s) carry a UTC offset; all are read as UTC" in notes[0]
    )
    flags = pd.read_csv(out)
    assert len(flags) == len(utc)  # no hour lost or merged at the change of offset
    hits = pd.to_datetime(flags.loc[flags["is_anomaly"], "timestamp"], utc=True)
    assert list(hits) == [utc[800]]


def test_detect_writes_the_contract_columns_flags_spikes_and_shows_progress(tmp_path):
    # 60 hourly series of 6 weeks: two chunks of series (see detection.series.CHUNK_CELLS)
    rng = np.random.default_rng(2)
    ts = pd.date_range("2025-03-03", periods=24 * 42, freq="h")
    values = np.exp(rng.normal(0.0, 0.05, (60, len(ts))))
    values[::10, 500] *= 6.0  # a spike in every tenth series
    frame = pd.DataFrame(
        {
            "series": np.repeat([f"s{i:02d}" for i in range(60)], len(ts)),
            "timestamp": np.tile(ts, 60),
            "value": values.ravel(),
        }
    )
    path, out = tmp_path / "series.csv", tmp_path / "flags" / "flags.csv"
    frame.to_csv(path, index=False)
    proc = run_cli("detect", str(path), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    flags = pd.read_csv(out)
    assert list(flags.columns) == [
        "series",
        "timestamp",
        "is_anomaly",
        "score",
        "expected",
        "anomaly_type",
        "severity",
        "confidence",
        "value",
        "expected_lower",
        "expected_upper",
        "q_value",
        "methods",
        "explanation",
    ]
    assert len(flags) == len(frame)
    hits = flags[flags["is_anomaly"]]
    assert set(hits["series"]) == {f"s{i:02d}" for i in range(0, 60, 10)}
    assert (pd.to_datetime(hits["timestamp"]) == ts[500]).all()
    assert (
        hits["explanation"]
        .str.match(r"s\d0 spiked on 2025-03-23 20:00: [\d.]+ against an expected [\d.]+ ")
        .all()
    )
    assert flags.loc[~flags["is_anomaly"], "explanation"].isna().all()
    lines = proc.stdout.splitlines()
    progress = [line for line in lines if line.startswith("detect: scored ")]
    assert len(progress) == 2 and progress[0].startswith("detect: scored 41 / 60 series (")
    assert progress[1].startswith("detect: scored 60 / 60 series (")
    assert lines[-1].startswith("detect: 60,480 points in 60 series -> 6 anomalies written to ")


CONTRACT_COLUMNS = {
    "daily_campaign_metrics": [
        "campaign_id",
        "date",
        "platform",
        "spend",
        "impressions",
        "clicks",
        "conversions",
        "leads",
        "converted_leads",
        "ctr",
        "cpc",
        "cpm",
        "cpa",
        "cpl",
        "conversion_rate",
        "lead_conversion_rate",
    ],
    "weekly_campaign_metrics": [
        "week_start",
        "campaign_id",
        "platform",
        "user_id",
        "project_name",
        "spend",
        "impressions",
        "clicks",
        "conversions",
        "leads",
        "converted_leads",
        "ctr",
        "cpc",
        "cpm",
        "cpa",
        "cpl",
        "conversion_rate",
        "lead_conversion_rate",
        "revenue",
        "roas",
        "days_active",
    ],
    "anomaly_flags": [
        "campaign_id",
        "grain",
        "period_start",
        "metric",
        "period_end",
        "value",
        "expected",
        "score",
        "methods",
        "anomaly_type",
        "severity",
        "confidence",
        "explanation",
        "suggested_action",
    ],
    "campaign_health": [
        "week_start",
        "campaign_id",
        "health_bucket",
        "recommended_action",
        "reason",
        "total_spend",
        "total_leads",
        "converted_leads",
        "conversion_rate",
        "cpl",
        "days_active",
    ],
    "quarantine": ["source_file", "row_key", "reason"],
}


def test_run_end_to_end_publishes_the_contract_tables(published_sample):
    """`campaign-pipeline run --export off` on the generated sample (the session's shared run,
    `published_sample`: the command in this process; the command as a subprocess runs in
    test_run_export_dry_run_writes_the_payload_files_and_off_writes_none)."""
    out = published_sample.out_dir
    stdout = published_sample.stdout
    # 49 days = 7 weeks, all in one run of the weekly assets, with a line per finished step
    assert "weekly assets: 7 weeks (2025-01-06 .. 2025-02-17) in one run" in stdout
    for step in ("daily_campaign_metrics", "anomaly_flags", "campaign_health", "weekly_totals"):
        assert re.search(rf"^  {step} +[\d,]+ rows  done \(\d+\.\ds\)$", stdout, re.M), step
    assert "weeks processed: 7 (2025-01-06 .. 2025-02-17)" in stdout
    assert "insights.csv" in stdout and "quarantined" in stdout
    assert "health buckets, week 2025-02-17" in stdout
    assert f"latest weekly report: {out / 'weekly_report' / '2025-02-17.html'}" in stdout
    assert len(list((out / "weekly_report").glob("*.html"))) == 7
    for table, columns in CONTRACT_COLUMNS.items():
        path = out / f"{table}.parquet"
        # a weekly table's folder reads as one table: its files' schemas agree, weeks without
        # rows (the first weeks' flags, the ledger without exports) included
        frame = pd.read_parquet(path if path.exists() else out / table)
        assert set(columns) <= set(frame.columns), (table, set(columns) - set(frame.columns))
        assert not {"name", "email", "phone"} & set(frame.columns)
    quarantine = pd.read_parquet(out / "quarantine.parquet")
    assert not quarantine["raw_values"].str.contains("@example.com").any()
    assert len(quarantine) >= 7
    health = pd.concat([pd.read_parquet(p) for p in (out / "campaign_health").glob("*.parquet")])
    assert set(health["health_bucket"]) <= {"HERO", "GOOD", "MIXED", "BAD", "NEEDS_MORE_DATA"}
    flags = pd.concat([pd.read_parquet(p) for p in (out / "anomaly_flags").glob("*.parquet")])
    if len(flags):
        assert flags["confidence"].between(0, 1).all()
        assert set(flags["severity"]) <= {"low", "medium", "high", "critical"}


def test_report_rebuilds_a_weeks_page_from_the_published_tables_alone(published_sample, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(published_sample.out_dir, out)
    week = published_sample.weeks[-1]
    written_by_the_pipeline = (out / "weekly_report" / f"{week}.html").read_bytes()
    shutil.rmtree(out / "weekly_report")
    tables = {path: path.stat().st_mtime_ns for path in out.rglob("*.parquet")}
    no_data = tmp_path / "no_data"  # nothing to recompute from
    proc = run_cli("report", "--week", week, "--out", str(out), "--data-dir", str(no_data))
    assert proc.returncode == 0, proc.stderr
    page = out / "weekly_report" / f"{week}.html"
    assert re.search(
        rf"^report: week {week} -> {re.escape(str(page))} \(\d+ kB;", proc.stdout, re.M
    )
    assert page.read_bytes() == written_by_the_pipeline
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*.parquet")} == tables
    assert not no_data.exists()


def test_report_for_a_week_without_tables_exits_2_naming_them(tmp_path):
    proc = run_cli_here("report", "--week", "2025-01-06", "--out", str(tmp_path / "out"))
    assert_one_line_error(
        proc,
        "report:",
        str(tmp_path / "out"),
        "week 2025-01-06 has no published campaign_health",
        "run `campaign-pipeline run` for that week first",
    )


def test_report_week_must_be_a_monday(tmp_path):
    proc = run_cli_here("report", "--week", "2025-01-08", "--out", str(tmp_path))
    assert_one_line_error(proc, "2025-01-08 is a Wednesday", "(that week is 2025-01-06)")
    proc = run_cli_here("report", "--week", "last week", "--out", str(tmp_path))
    assert_one_line_error(proc, "'last week' is not a date (YYYY-MM-DD)")


def _two_weeks_of_exports(folder: Path) -> None:
    rows = [
        f"I{i},C{1 + i % 2},{day:%Y-%m-%d},{20 + i % 7},{900 + i},{30 + i % 5},{i % 3}"
        for i, day in enumerate(pd.date_range("2025-01-06", "2025-01-19").repeat(2))
    ]
    write_exports(folder, insights="\n".join(rows) + "\n")


def test_run_export_dry_run_writes_the_payload_files_and_off_writes_none(tmp_path):
    """The run with --export off also shows that without --data-dir and --out the CLI uses the
    same variables as Dagster runs started elsewhere."""
    no_credentials = {
        name: ""
        for name in (
            "GA4_MEASUREMENT_ID",
            "GA4_API_SECRET",
            "AMPLITUDE_API_KEY",
            "EXPORT_LEDGER_URL",
        )
    }
    # the run with --export off as a user starts it (its own data dir: a data dir takes one run
    # at a time) ...
    off, off_data = tmp_path / "off", tmp_path / "off_data"
    _two_weeks_of_exports(off_data)
    from_the_environment = {
        "CAMPAIGN_PIPELINE_DATA_DIR": str(off_data),
        "CAMPAIGN_PIPELINE_OUT_DIR": str(off),
    }
    started = start_cli("run", "--export", "off", env=no_credentials | from_the_environment)
    # ... and meanwhile the dry run in this process (a subprocess' imports cost seconds; the
    # two runs take the time of one on a second core)
    try:
        _two_weeks_of_exports(tmp_path / "data")
        dry = tmp_path / "dry"
        proc, _ = run_cli_in_process(
            "run", "--data-dir", str(tmp_path / "data"), "--out", str(dry), "--export", "dry-run",
            unset=("CAMPAIGN_PIPELINE_", "DAGSTER_HOME"), env=no_credentials,
        )  # fmt: skip
    finally:
        off_proc = finish(started)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for destination in ("ga4", "amplitude"):
        files = sorted((dry / "exports" / destination).glob("*.json"))
        assert [f.stem for f in files] == ["2025-01-06", "2025-01-13"]
        written = json.loads(files[0].read_text())
        assert written["events"] >= 2 and written["requests"]
        assert re.search(
            rf"^  {destination} +dry-run \(export mode dry-run\): would send \d+ of \d+ events in "
            r"\d+ requests -> .+ \(2 files\); skipped 0 \(already sent\); refused 0$",
            proc.stdout,
            re.M,
        ), proc.stdout[-2000:]
    assert "exports (--export dry-run):" in proc.stdout
    for step in ("ga4_export", "amplitude_export"):
        assert re.search(rf"^  {step} +done \(\d+\.\ds\)$", proc.stdout, re.M), step
    assert re.search(r"^  export_ledger +0 rows  done", proc.stdout, re.M)
    proc = off_proc
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"-> {off}" in proc.stdout
    assert (off / "quarantine.parquet").exists() and any(
        (off / "daily_campaign_metrics").glob("*.parquet")
    )
    assert not (off_data / "out").exists()
    assert not (off / "exports").exists() and not (off / "export_ledger.sqlite").exists()
    assert re.search(r"^  ga4 +off \(export mode off\)$", proc.stdout, re.M)
    assert re.search(r"^  amplitude +off \(export mode off\)$", proc.stdout, re.M)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--campaigns", "0"], "argument --campaigns: 0 is below 1"),
        (["--days", "-3"], "argument --days: -3 is below 1"),
        (["--days", "2.5"], "argument --days: '2.5' is not a whole number"),
        (["--scale", "0"], "argument --scale: 0 is not a finite number above 0"),
        (["--scale", "nan"], "argument --scale: nan is not a finite number above 0"),
        (["--seed", "-1"], "argument --seed: -1 is below 0"),  # numpy's traceback before
    ],
)
def test_sample_refuses_sizes_it_would_otherwise_round_up(args, message, tmp_path):
    # argparse's refusal ends `cli.main` with SystemExit: the process' exit code
    proc = run_cli_here("sample", "--out", str(tmp_path / "data"), *args)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(f"error: {message}")
    assert not (tmp_path / "data").exists()


def test_run_with_a_live_export_misconfigured_ends_before_any_step(tmp_path):
    """A region that is no region used to fail the export step at the end of the run, minutes
    later on a large account, after every table had been rewritten."""
    raw = write_exports(tmp_path)
    env = {"AMPLITUDE_API_KEY": "k3y-not-printed", "AMPLITUDE_REGION": "mars"}
    proc = run_cli_here(
        "run", "--data-dir", str(raw.parent), "--out", str(tmp_path / "out"), env=env
    )
    assert_one_line_error(
        proc, "error: amplitude: not exported: AMPLITUDE_REGION 'mars' is neither us nor eu"
    )
    assert "k3y-not-printed" not in proc.stderr + proc.stdout
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends: nothing listens


@pytest.mark.parametrize(
    ("port", "fragments"),
    [
        (
            "closed",
            (
                "PostgreSQL someone@127.0.0.1:",
                "/pipeline (DAGSTER_PG_*) cannot be reached: connection to server at",
                "start it, or unset DAGSTER_PG_* for embedded SQLite",
            ),
        ),
        ("5432x", ("DAGSTER_PG_PORT '5432x' is not a port number",)),
    ],
)
def test_run_with_an_unreachable_postgres_ends_in_one_line_before_dagster_starts(
    tmp_path, port, fragments
):
    """Otherwise Dagster's storage retries for about 15 s and prints a page of traceback."""
    raw = write_exports(tmp_path)
    env = {
        "DAGSTER_HOME": str(REPO),
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(_closed_port()) if port == "closed" else port,
        "DAGSTER_PG_USER": "someone",
        "DAGSTER_PG_PASSWORD": "not-to-be-printed",
        "DAGSTER_PG_DB": "pipeline",
    }
    proc = run_cli_here(
        "run", "--data-dir", str(raw.parent), "--out", str(tmp_path / "out"), env=env
    )
    assert_one_line_error(proc, *fragments)
    assert "not-to-be-printed" not in proc.stderr + proc.stdout
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_run_with_a_dagster_home_that_does_not_exist_ends_in_one_line_before_dagster_starts(
    tmp_path,
):
    """Dagster refuses it when the run opens the instance, in a page of traceback (exit 1)."""
    raw = write_exports(tmp_path)
    home = tmp_path / "no" / "home"
    proc = run_cli_here(
        "run",
        "--data-dir",
        str(raw.parent),
        "--out",
        str(tmp_path / "out"),
        env={"DAGSTER_HOME": str(home)},
    )
    assert_one_line_error(
        proc,
        f"error: DAGSTER_HOME={home} does not exist: create the folder (mkdir -p {home}), or "
        "unset DAGSTER_HOME for an ephemeral in-memory instance",
    )
    assert not home.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    ("url", "fragments"),
    [
        ("not a url", ("error: EXPORT_LEDGER_URL is not a SQLAlchemy URL",)),
        (
            "postgresql+psycopg2://ledger:s3cret-pw@127.0.0.1:notaport/ledger",
            ("error: EXPORT_LEDGER_URL: the port 'notaport' is not a port number",),
        ),
        (
            "postgresql+psycopg2://ledger:s3cret-pw@127.0.0.1:{closed}/ledger",
            (
                "error: EXPORT_LEDGER_URL (postgresql+psycopg2://ledger:***@127.0.0.1:{closed}/"
                "ledger) cannot be reached: connection to server at",
                "start the server, or unset EXPORT_LEDGER_URL for the default ledger",
            ),
        ),
    ],
)
def test_run_with_an_export_ledger_url_that_cannot_open_the_ledger_ends_before_any_step(
    tmp_path, url, fragments, monkeypatch, capsys
):
    """SQLAlchemy's own errors name no variable, and both export steps raised them at the end
    of a whole run. (In this process: the checks run before the pipeline is imported.)"""
    from campaign_pipeline.cli import main

    raw = write_exports(tmp_path)
    closed = str(_closed_port())
    monkeypatch.setenv("EXPORT_LEDGER_URL", url.replace("{closed}", closed))
    code = main(["run", "--data-dir", str(raw.parent), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    proc = subprocess.CompletedProcess([], code, captured.out, captured.err)
    assert_one_line_error(proc, *(f.replace("{closed}", closed) for f in fragments))
    assert "s3cret-pw" not in proc.stderr + proc.stdout
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_sample_refuses_to_overwrite_exports_unless_forced(tmp_path, capsys):
    from campaign_pipeline.cli import main

    raw = write_exports(tmp_path)
    before = {path.name: path.read_bytes() for path in raw.glob("*.csv")}
    assert main(["sample", "--out", str(tmp_path), "--campaigns", "2", "--days", "3"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: sample: {raw} already holds campaigns.csv, insights.csv, campaign_leads.csv, "
        "lead_status_changes.csv; the sample would replace them: choose another --out, or pass "
        "--force"
    )
    assert {path.name: path.read_bytes() for path in raw.glob("*.csv")} == before
    # the command as a user starts it (a subprocess), replacing them when told to
    proc = run_cli("sample", "--out", str(tmp_path), "--campaigns", "2", "--days", "3", "--force")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"sample data written to {raw}: ")
    assert (raw / "campaigns.csv").read_bytes() != before["campaigns.csv"]


def test_sample_replacing_a_labelled_set_takes_its_labels_and_names_a_file_in_the_way(
    tmp_path, capsys
):
    from campaign_pipeline.cli import main

    out, raw = tmp_path / "data", tmp_path / "data" / "raw"
    small = ["--campaigns", "5", "--days", "30"]
    assert main(["sample", "--out", str(out), *small, "--anomalies", "--defects"]) == 0
    assert (raw / "anomaly_labels.csv").is_file() and (raw / "defects.csv").is_file()
    # labels of the old set would score the new one: they go with it
    assert main(["sample", "--out", str(out), *small, "--seed", "8", "--force"]) == 0
    assert not (raw / "anomaly_labels.csv").exists() and not (raw / "defects.csv").exists()
    capsys.readouterr()
    (tmp_path / "afile").write_text("hi")
    assert main(["sample", "--out", str(tmp_path / "afile"), *small]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: sample: cannot write to {tmp_path / 'afile' / 'raw'} (Not a directory)"
    )


def test_the_raw_folder_given_as_the_data_dir_is_named_as_that_slip(tmp_path, capsys):
    from campaign_pipeline.cli import main

    raw = write_exports(tmp_path)
    assert main(["run", "--data-dir", str(raw), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {raw / 'raw'}: raw folder not found (expected the four export files there); "
        f"{raw} holds the exports itself: pass its parent folder"
    )
    # a folder with no exports anywhere gets no guess
    assert main(["run", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip().endswith("(expected the four export files there)")


def test_a_second_run_on_a_data_dir_in_use_ends_at_once_naming_it(tmp_path, capsys):
    """Two runs on one data dir would rewrite its validated layer under each other."""
    from campaign_pipeline.cli import main

    write_exports(tmp_path)
    holder = subprocess.Popen(  # a run in progress, as far as the lock goes
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"folder = os.open({str(tmp_path)!r}, os.O_RDONLY)\n"
            "fcntl.flock(folder, fcntl.LOCK_EX)\n"
            "print('holding', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        assert main(["run", "--data-dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
        assert capsys.readouterr().err.strip() == (
            f"error: {tmp_path}: another `campaign-pipeline run` is using this data dir; wait "
            "for it to end, or give this run a copy of the exports in another data dir"
        )
        assert not (tmp_path / "out" / "quarantine.parquet").exists()
    finally:
        holder.communicate("")
    # released when the holder ends (it never unlocked): the next run takes the data dir
    from campaign_pipeline.cli import _one_run_per_data_dir
    from campaign_pipeline.locations import Location

    for _ in range(2):
        with _one_run_per_data_dir(Location(tmp_path)):
            pass


def test_a_time_zone_setting_that_is_no_time_zone_is_one_line(tmp_path, capsys, monkeypatch):
    from campaign_pipeline.cli import main
    from campaign_pipeline.constants import partition_timezone

    monkeypatch.setenv("CAMPAIGN_PIPELINE_TIMEZONE", "Mars/Phobos")
    assert main(["run", "--data-dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: CAMPAIGN_PIPELINE_TIMEZONE='Mars/Phobos' is not a time zone: give an IANA name "
        "such as Europe/Berlin or America/New_York, or UTC"
    )
    monkeypatch.setenv("CAMPAIGN_PIPELINE_TIMEZONE", "")  # set but empty: the default
    assert partition_timezone() == "UTC"
    monkeypatch.setenv("CAMPAIGN_PIPELINE_TIMEZONE", "Europe/Berlin")
    assert partition_timezone() == "Europe/Berlin"
