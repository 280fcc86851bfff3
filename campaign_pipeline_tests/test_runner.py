"""`campaign-pipeline run` through Dagster: ingestion once, the complete weeks of the accepted
rows, each range of consecutive weeks as ONE run of the weekly assets, weeks that are not
complete named as a count and a range, a long gap without data not built."""

import contextlib
import datetime as dt
import os

import dagster as dg
import pandas as pd
import pytest

from campaign_pipeline import runner
from campaign_pipeline_tests._orchestration_support import RAW_EXPORTS, sqlite_home
from campaign_pipeline_tests.builders import ISO_DATED_INSIGHTS, iso_dated_insights_stop_line


def test_weeks_between_includes_empty_weeks_and_starts_on_mondays():
    weeks = runner.weeks_between(pd.Timestamp("2024-01-10"), pd.Timestamp("2024-02-05"))
    assert weeks == ["2024-01-08", "2024-01-15", "2024-01-22", "2024-01-29", "2024-02-05"]


def test_a_first_or_last_week_the_data_begin_or_end_inside_is_named_with_its_days():
    weeks = ["2025-04-28", "2025-05-05"]
    monday = pd.Timestamp("2025-04-28")
    notes = runner.partial_week_notes(weeks, monday, pd.Timestamp("2025-05-07"))
    assert notes == [
        "note: the accepted rows end on 2025-05-07, so week 2025-05-05 holds 3 of its 7 days: "
        "its figures are a partial week's, and its week-grain flags come when its other days do"
    ]
    notes = runner.partial_week_notes(weeks, monday, pd.Timestamp("2025-05-05"))
    assert len(notes) == 1 and "holds 1 of its 7 days" in notes[0]
    assert runner.partial_week_notes(weeks, monday, pd.Timestamp("2025-05-11")) == []
    assert runner.partial_week_notes([], monday, pd.Timestamp("2025-05-07")) == []
    # the data begin on a Sunday: the first week holds one day, the next compares with it
    sunday = pd.Timestamp("2025-05-04 23:59:59")
    notes = runner.partial_week_notes(weeks, sunday, pd.Timestamp("2025-05-11"))
    assert notes == [
        "note: the accepted rows begin on 2025-05-04, so week 2025-04-28 holds 1 of its 7 days: "
        "its figures are a partial week's, and the next week's changes compare with them"
    ]
    assert len(runner.partial_week_notes(weeks, sunday, pd.Timestamp("2025-05-06"))) == 2
    # one week that the rows both begin and end inside: one note with the days it holds
    notes = runner.partial_week_notes(
        ["2025-05-05"], pd.Timestamp("2025-05-07"), pd.Timestamp("2025-05-09")
    )
    assert notes == [
        "note: the accepted rows run from 2025-05-07 to 2025-05-09, so week 2025-05-05 holds "
        "3 of its 7 days: its figures are a partial week's"
    ]


def _weeks(first: str, count: int) -> list[str]:
    return [d.date().isoformat() for d in pd.date_range(first, periods=count, freq="7D")]


def test_a_long_gap_without_data_is_not_built_but_its_last_week_and_short_gaps_are():
    span = _weeks("2017-03-06", 420)  # a row of 2017 in an export of 2025
    data = {"2017-03-06", *span[-18:]}
    plan = runner.plan_weeks(span, data, max_gap_weeks=4)
    # the week before the data resume is built: the next week's report compares with its buckets
    assert plan.stretches == (("2017-03-06",), tuple(span[-19:]))
    assert plan.not_built == tuple(span[1:-19])
    assert plan.weeks == ["2017-03-06", *span[-19:]]
    # a gap of 4 weeks (an outage, a pause) is built with the weeks around it; one of 5 is not
    weeks = _weeks("2025-01-06", 12)
    short = runner.plan_weeks(weeks, {weeks[0], weeks[5], weeks[11]}, max_gap_weeks=4)
    assert short.stretches == (tuple(weeks[:6]), tuple(weeks[10:]))
    assert short.not_built == tuple(weeks[6:10])
    assert runner.plan_weeks(weeks, {weeks[0], weeks[11]}, 10).stretches == (tuple(weeks),)
    # 0: only the weeks with data and the week before each
    assert runner.plan_weeks(weeks, {weeks[0], weeks[2]}, 0).weeks == weeks[:3]
    assert runner.plan_weeks(weeks, {weeks[0], weeks[3]}, 0).weeks == [weeks[0], *weeks[2:4]]
    # a run today keeps the complete weeks: the plan of those, in the same ranges
    assert short.within(set(weeks[:11])).stretches == (tuple(weeks[:6]), (weeks[10],))
    assert short.within(set(weeks[:11])).not_built == tuple(weeks[6:10])
    assert short.within(set(weeks[:3])).stretches == (tuple(weeks[:3]),)


def test_the_export_reports_of_several_runs_add_up():
    first = {
        "destination": "ga4",
        "mode": "dry-run",
        "why": "export mode dry-run",
        "events": 3,
        "sent": 0,
        "skipped": {"already sent": 1},
        "refused": {},
        "failed": {},
        "requests": 2,
        "files": ["out/exports/ga4/2017-03-06.json"],
        "weeks": {"2017-03-06": {"would_send": 3}},
        "stopped": None,
    }
    second = first | {
        "events": 5,
        "skipped": {"already sent": 2, "outside the week": 1},
        "requests": 4,
        "files": ["out/exports/ga4/2025-01-06.json"],
        "weeks": {"2025-01-06": {"would_send": 5}},
        "stopped": "ga4 unavailable: HTTP 503",
    }
    merged = runner.merge_export_reports(first, second)
    assert merged["mode"] == "dry-run" and merged["why"] == "export mode dry-run"
    assert (merged["events"], merged["requests"]) == (8, 6)
    assert merged["skipped"] == {"already sent": 3, "outside the week": 1}
    assert merged["files"] == first["files"] + second["files"]
    assert merged["weeks"] == first["weeks"] | second["weeks"]
    assert merged["stopped"] == "ga4 unavailable: HTTP 503"


@pytest.fixture
def instance_home(tmp_path, monkeypatch):
    home = sqlite_home(tmp_path / "home")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_a_range_of_weeks_is_one_run_and_unfinished_weeks_are_skipped(
    data_dir, tmp_path, instance_home
):
    lines: list[str] = []
    # the tiny exports have rows in the weeks of 2024-01-08 and 2024-01-15 (the last on
    # 2024-01-17); on 2024-01-20 only the first is complete
    out = tmp_path / "out"
    run = runner.run_pipeline(str(data_dir), str(out), say=lines.append, today=dt.date(2024, 1, 20))
    assert run.weeks == ["2024-01-08"]
    assert run.skipped_weeks == ["2024-01-15"]
    assert any("note: 1 week (2024-01-15) not complete yet" in line for line in lines)
    # the data go on past the last week run: not a partial week
    assert not any("partial week" in line for line in lines)
    assert "weekly assets: 1 week (2024-01-08) in one run ..." in lines

    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
    by_job: dict[str, list] = {}
    for each in runs:
        by_job.setdefault(each.job_name, []).append(each)
    assert {name: len(found) for name, found in by_job.items()} == {
        "ingestion_job": 1,
        "weekly_assets_job": 1,
        "lifetime_job": 1,
    }
    tags = by_job["weekly_assets_job"][0].tags
    assert tags["dagster/asset_partition_range_start"] == "2024-01-08"
    assert tags["dagster/asset_partition_range_end"] == "2024-01-08"
    for week in run.weeks:
        assert (out / "daily_campaign_metrics" / f"{week}.parquet").exists()
    assert not (out / "daily_campaign_metrics" / "2024-01-15.parquet").exists()
    # a progress line per finished step of the weekly run
    assert any(line.strip().startswith("anomaly_flags") and "done" in line for line in lines)


def test_status_changes_that_date_no_figure_open_no_week(data_dir, tmp_path, instance_home):
    """A run covers the days a figure can fall on: a status change before its lead was added
    counts on the added day, and one that converts nothing counts nowhere, so neither opens
    empty weeks (one such cell dated years back opened 52 empty weeks for each year)."""
    changes = data_dir / "raw" / "lead_status_changes.csv"
    changes.write_text(
        changes.read_text()
        + "s2,l2,NEW,DONE_DEAL,2023-12-20 10:00:00\n"  # l2 was added on 2024-01-17
        + "s3,l1,QUALIFIED,NEW,2024-02-14 10:00:00\n"  # l1 converts nothing
    )
    # on 2024-01-10 no week has ended: the run names its weeks and builds none of them
    run = runner.run_pipeline(
        str(data_dir), str(tmp_path / "out"), say=lambda _: None, today=dt.date(2024, 1, 10)
    )
    assert run.weeks == [] and run.skipped_weeks == ["2024-01-08", "2024-01-15"]


def test_a_long_steps_progress_lines_and_the_partial_last_week_are_printed(
    data_dir, tmp_path, instance_home, monkeypatch
):
    """A year's anomaly step runs for minutes at a large account: its progress lines
    (`progress_logger`, every 30 s by default; every piece here) are printed as they come.
    On 2024-01-24 the week of 2024-01-15 has ended and the data end on its Wednesday: the run
    names that partial week."""
    from campaign_pipeline.assets import common

    monkeypatch.setattr(common, "PROGRESS_EVERY_SECONDS", 0.0)
    lines: list[str] = []
    run = runner.run_pipeline(
        str(data_dir), str(tmp_path / "out"), say=lines.append, today=dt.date(2024, 1, 24)
    )
    report_done = next(
        i for i, line in enumerate(lines) if line.startswith("  weekly_report ") and "done" in line
    )
    # two pages: the first is reported, the last is the step's own "done" line
    first = "  weekly_report: 1 of 2 pages built ("
    first_page = next(i for i, line in enumerate(lines) if line.startswith(first))
    assert first_page < report_done
    assert not any("2 of 2 pages" in line for line in lines)
    assert run.weeks[-1] == "2024-01-15"
    assert (
        "note: the accepted rows end on 2024-01-17, so week 2024-01-15 holds 3 of its 7 days: "
        "its figures are a partial week's, and its week-grain flags come when its other days do"
    ) in lines


def test_a_failed_raw_file_is_the_users_error(data_dir, tmp_path):
    """A file whose header is fine but whose rows cannot be read fails in ingestion: the run
    reports the file in one line and marks it as the input's fault (exit code 2 in the CLI)."""
    (data_dir / "raw" / "insights.csv").write_text(
        'id,campaign_id,created_at,spend,impressions,clicks,conversions\n1,c1,"2024-01-08,10\n'
    )
    with pytest.raises(runner.RunFailed) as failed:
        runner.run_pipeline(str(data_dir), str(tmp_path / "out"), say=lambda _: None)
    assert failed.value.user_error
    assert any("insights.csv" in line for line in failed.value.lines)


def test_a_failed_step_is_reported_by_the_error_its_code_raised(data_dir, tmp_path):
    """Not by Dagster's wrapper around it ('Error occurred while executing op ...'), which
    names no cause. Here the out dir is a file, so the first step that publishes fails."""
    out = tmp_path / "out"
    out.write_text("not a folder")
    with pytest.raises(runner.RunFailed) as failed:
        runner.run_pipeline(str(data_dir), str(out), say=lambda _: None)
    assert not failed.value.user_error
    assert failed.value.lines, failed.value
    for line in failed.value.lines:
        assert "Error occurred while executing" not in line, line
    assert any(str(out) in line and "Error: " in line for line in failed.value.lines), (
        failed.value.lines
    )


def test_exports_with_no_accepted_row_say_what_was_accepted_and_where_the_reasons_are(
    data_dir, tmp_path
):
    for name in RAW_EXPORTS:  # header only: an export of nothing, every file
        path = data_dir / "raw" / name
        path.write_text(path.read_text().splitlines()[0] + "\n")
    with pytest.raises(runner.RunFailed) as failed:
        runner.run_pipeline(str(data_dir), str(tmp_path / "out"), say=lambda _: None)
    assert failed.value.user_error
    [line] = failed.value.lines
    assert line.startswith("no accepted row has a date, so there is no week to process")
    assert "campaigns.csv 0 of 0, insights.csv 0 of 0, " in line
    assert f"{tmp_path / 'out' / 'quarantine.parquet'} gives each set-aside row's reason" in line
    assert (tmp_path / "out" / "quarantine.parquet").is_file()


def test_a_step_ended_by_ctrl_c_ends_the_run_as_interrupted():
    """Dagster turns Ctrl-C into the running step's failure. Read as a step's error, an
    interrupted export let the run carry on to the lifetime table and print a summary of a run
    whose totals, ledger and report were never built; it must end as interrupted (the CLI's
    exit 130), while any other failure stays a failure."""
    from dagster._core.errors import DagsterExecutionInterruptedError

    def job_raising(error: BaseException) -> dg.JobDefinition:
        @dg.op(name="step")
        def step():
            raise error

        @dg.job(name="toy")
        def toy():
            step()

        return toy

    with dg.DagsterInstance.ephemeral() as instance:
        for error in (
            KeyboardInterrupt(),
            DagsterExecutionInterruptedError("Execution interrupted"),
        ):
            with pytest.raises(KeyboardInterrupt):
                runner._execute(job_raising(error), instance, {}, lambda _: None)
        result = runner._execute(job_raising(ValueError("bad cell")), instance, {}, lambda _: None)
        assert not result.success and not runner.interrupted(result)


def test_a_file_with_rows_and_none_accepted_stops_the_run_before_any_weekly_asset(
    data_dir, tmp_path
):
    """Insights dated as ISO instants (2024-01-08T10:00:00Z, a format the contract lacks) are
    all quarantined: weeks built from the leads alone would publish and export leads without
    spend, and the ledger would never send those weeks again once the file is corrected."""
    (data_dir / "raw" / "insights.csv").write_text(ISO_DATED_INSIGHTS)
    out = tmp_path / "out"
    lines: list[str] = []
    with pytest.raises(runner.RunFailed) as failed:
        runner.run_pipeline(str(data_dir), str(out), say=lines.append, today=dt.date(2024, 1, 24))
    assert failed.value.user_error
    assert failed.value.lines == [iso_dated_insights_stop_line(out)]
    assert (out / "quarantine.parquet").is_file()
    assert not any(line.startswith("weekly assets") for line in lines)
    assert not (out / "daily_campaign_metrics").exists() and not (out / "exports").exists()


def test_a_lead_file_none_accepted_is_named_without_personal_data_and_an_empty_one_is_not(
    data_dir, tmp_path
):
    """Every lead's date is unparseable: the line quotes a date, never a name, an email or a
    phone. The status changes file is header only (an account whose leads never moved): an
    export of nothing, not a mistake."""
    raw = data_dir / "raw"
    (raw / "campaign_leads.csv").write_text(
        "id,campaign_id,name,email,phone,lead_status,added_date,deal_value\n"
        "l1,c1,Ann,ann@example.com,+1 202-555-0143,NEW,2024-01-09T08:00:00Z,\n"
        "l2,c2,Bob,bob@example.com,+1 202-555-0178,DONE_DEAL,2024-01-17T08:00:00Z,120\n"
    )
    (raw / "lead_status_changes.csv").write_text("id,lead_id,old_status,new_status,created_at\n")
    with pytest.raises(runner.RunFailed) as failed:
        runner.run_pipeline(
            str(data_dir), str(tmp_path / "out"), say=lambda _: None, today=dt.date(2024, 1, 24)
        )
    [line] = failed.value.lines
    assert line.startswith(
        "campaign_leads.csv: none of its 2 rows was accepted (unparseable_date: 2 of 2 "
        "quarantined; e.g. line 2: unparseable date: '2024-01-09T08:00:00Z' is not "
    ), line
    assert "lead_status_changes.csv 0 of 0" in line
    assert (
        not line.startswith("lead_status_changes.csv") and "; lead_status_changes.csv:" not in line
    )
    for personal in ("Ann", "Bob", "ann@example.com", "bob@example.com", "202-555"):
        assert personal not in line


def test_a_dagster_home_dagster_would_refuse_is_named_with_what_to_do(tmp_path):
    assert runner.dagster_home_problem(None) is None  # unset: the ephemeral instance
    assert runner.dagster_home_problem("") is None
    assert runner.dagster_home_problem(str(tmp_path)) is None
    missing = tmp_path / "home"
    assert runner.dagster_home_problem(str(missing)) == (
        f"DAGSTER_HOME={missing} does not exist: create the folder (mkdir -p {missing}), or "
        "unset DAGSTER_HOME for an ephemeral in-memory instance"
    )
    missing.write_text("")
    assert f"DAGSTER_HOME={missing} is a file, not a folder: " in runner.dagster_home_problem(
        str(missing)
    )
    assert runner.dagster_home_problem("dagster_home") == (
        "DAGSTER_HOME=dagster_home is not an absolute path: give one, or unset DAGSTER_HOME for "
        "an ephemeral in-memory instance"
    )


@contextlib.contextmanager
def one_cpu():
    """This process runs on one of its CPUs (as a container limited to one CPU does), so the
    steps whose `processes` default to one per CPU (`parallel.worker_processes`) start no
    worker; its CPUs as they were afterwards."""
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, cpus)


def test_a_row_months_before_the_rest_costs_its_own_week_not_the_gap(
    data_dir, tmp_path, instance_home
):
    """A mistyped date (one insights row in 2023-11 of an export of 2024-01) opens a gap of 5
    weeks without data, one more than `--max-gap-weeks`: the run builds the row's week, then
    the week before the data resume and the data's weeks, each range as one run, names the
    gap, and publishes for those weeks exactly what a run over the whole span publishes (the
    week-over-week status of the week after the gap included: the gap's last week is known
    and empty in both, though one run reads it as the start of a range)."""
    from campaign_pipeline.resources.storage import PipelineStorage
    from campaign_pipeline.run_summary import summarize

    insights = data_dir / "raw" / "insights.csv"
    insights.write_text(insights.read_text() + "9,c1,2023-11-28,3,100,1,0\n")
    lines: list[str] = []
    out = tmp_path / "out"
    run = runner.run_pipeline(str(data_dir), str(out), say=lines.append)
    built = ["2023-11-27", "2024-01-01", "2024-01-08", "2024-01-15"]
    assert run.weeks == built
    assert run.not_built == _weeks("2023-12-04", 4)
    assert (
        "note: 4 weeks (2023-12-04 .. 2023-12-25) between the accepted rows hold no accepted "
        "delivery or lead event, not built; the weeks built: 1 week (2023-11-27), "
        "3 weeks (2024-01-01 .. 2024-01-15)"
    ) in lines
    with dg.DagsterInstance.get() as instance:
        weekly_runs = [r for r in instance.get_runs() if r.job_name == runner.WEEKLY_JOB]
    ranges = sorted(
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in weekly_runs
    )
    assert ranges == [("2023-11-27", "2023-11-27"), ("2024-01-01", "2024-01-15")]
    assert sorted(p.stem for p in (out / "weekly_report").glob("*.html")) == built
    summary = summarize(
        PipelineStorage(data_dir=str(data_dir), out_dir=str(out)),
        run.weeks,
        1.0,
        not_built=run.not_built,
    )
    assert (
        "weeks processed: 4 (2023-11-27 .. 2024-01-15)\n  in 2 ranges: 1 week (2023-11-27), "
        "3 weeks (2024-01-01 .. 2024-01-15); not built: 4 weeks (2023-12-04 .. 2023-12-25) "
        "without any accepted delivery or lead event"
    ) in summary

    # every week of the span in one run: the same tables and pages for the weeks built. Run on
    # one CPU, as in a container limited to one: its 8 pages are built in the step's process
    # (a worker process' start-up is most of a tiny run's time; a page does not depend on
    # where it was built, report/test_build.py)
    whole = tmp_path / "whole"
    with one_cpu():
        everything = runner.run_pipeline(
            str(data_dir), str(whole), say=lambda _: None, max_gap_weeks=99
        )
    assert everything.weeks == _weeks("2023-11-27", 8) and everything.not_built == []
    files = sorted(
        p.relative_to(out) for p in out.rglob("*") if p.is_file() and "exports" not in p.parts
    )
    assert len(files) > 30
    for name in files:
        if name.suffix == ".parquet":
            pd.testing.assert_frame_equal(
                pd.read_parquet(out / name), pd.read_parquet(whole / name)
            )
        else:
            assert (out / name).read_bytes() == (whole / name).read_bytes(), name
    # the gap's last week is known and empty: the week after it compares with no activity
    after_gap = pd.read_parquet(out / "weekly_campaign_metrics" / "2024-01-08.parquet")
    assert set(after_gap.loc[after_gap["campaign_id"] == "c1", "prev_week_status"]) == {
        "no_activity"
    }
