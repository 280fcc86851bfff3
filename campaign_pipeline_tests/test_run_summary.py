"""The closing summary of `campaign-pipeline run`: its lines say what the published tables say."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from campaign_pipeline.exports.delivery import DestinationReport
from campaign_pipeline.health import action_summary
from campaign_pipeline.resources.storage import PipelineStorage
from campaign_pipeline.run_summary import (
    action_lines,
    files_with_none_accepted,
    none_accepted_line,
    summarize,
)


def latest_health(rows) -> pd.DataFrame:
    """rows: (campaign_id, recommended_action, total_spend)."""
    frame = pd.DataFrame(rows, columns=["campaign_id", "recommended_action", "total_spend"])
    return frame.assign(total_leads=10.0, converted_leads=1.0)


def test_action_lines_most_campaigns_first_with_each_actions_share_of_spend():
    lines = action_lines(
        latest_health(
            [
                ("A", "Scale Up", 300.0),
                ("B", "Keep Monitoring", 50.0),
                ("C", "Keep Monitoring", np.nan),  # no delivery in the window
                ("D", "Keep Monitoring", 50.0),
            ]
        )
    )
    assert [line.split("  ")[1] for line in lines] == ["Keep Monitoring", "Scale Up"]
    assert re.fullmatch(r"  Keep Monitoring +3 campaigns  spend +100\.00  \(25\.0%\)", lines[0])
    assert re.fullmatch(r"  Scale Up +1 campaigns  spend +300\.00  \(75\.0%\)", lines[1])


def test_action_lines_say_when_no_spend_was_reported_instead_of_a_share_of_nothing():
    # a week whose insights export held no rows: every campaign's spend is unknown
    lines = action_lines(
        latest_health([("A", "Keep Monitoring", np.nan), ("B", "Keep Monitoring", np.nan)])
    )
    assert len(lines) == 1
    assert re.fullmatch(r"  Keep Monitoring +2 campaigns  spend +none reported", lines[0])
    # reported spend of zero is a figure, not an unknown; its share of a zero total is not
    lines = action_lines(latest_health([("A", "Stop / Reallocate", 0.0)]))
    assert re.fullmatch(r"  Stop / Reallocate +1 campaigns  spend +0\.00", lines[0])
    assert not [line for line in lines if "nan" in line.lower()]


def test_the_summary_of_a_published_run_matches_its_tables(published_sample):
    storage = PipelineStorage(
        data_dir=str(published_sample.data_dir), out_dir=str(published_sample.out_dir)
    )
    text = summarize(storage, published_sample.weeks, seconds=12.34)
    week = published_sample.weeks[-1]
    health = storage.read_table("campaign_health")
    latest = health[health["week_start"] == pd.Timestamp(week)]
    assert f"health buckets, week {week}: " in text
    shown = text.split("action summary (trailing window of that week):\n")[1].splitlines()
    published = action_summary(latest).query("n_campaigns > 0")
    for row in published.itertuples():
        line = next(line for line in shown if line.startswith(f"  {row.recommended_action} "))
        assert f"{row.n_campaigns} campaigns" in line
        assert re.search(rf"spend +{row.total_spend:,.2f}  \({row.share_of_spend:.1%}\)$", line)
    assert len(published) >= 2
    first = published_sample.weeks[0]
    assert f"weeks processed: {len(published_sample.weeks)} ({first} .. {week})" in text
    assert text.endswith("done in 12.3s")


def test_weeks_the_run_did_not_publish_are_named_not_reported(published_sample):
    """An out dir that also holds weeks these raw files do not cover (an earlier run on exports
    that reached further): the summary reports the run's weeks and names the others."""
    storage = PipelineStorage(
        data_dir=str(published_sample.data_dir), out_dir=str(published_sample.out_dir)
    )
    weeks = published_sample.weeks[:-2]  # as if the exports now ended two weeks earlier
    text = summarize(storage, weeks, seconds=1.0)
    flags = storage.read_table("anomaly_flags", week_starts=weeks)
    assert len(flags) < len(storage.read_table("anomaly_flags"))
    assert re.search(rf"^anomaly flags: {len(flags)} \(", text, re.M)
    assert f"health buckets, week {weeks[-1]}: " in text
    page = published_sample.out_dir / "weekly_report" / f"{weeks[-1]}.html"
    assert f"latest weekly report: {page}\n" in text
    later = published_sample.weeks[-2:]
    assert (
        f"note: {published_sample.out_dir} also holds the tables and pages of 2 weeks "
        f"({later[0]} .. {later[1]}) that these raw files do not cover; this run left them as "
        "an earlier run published them"
    ) in text
    # a run that published every stored week has no such note
    assert "also holds" not in summarize(storage, published_sample.weeks, seconds=1.0)


def test_the_tables_lines_count_only_the_weeks_this_run_published(published_sample):
    """Each weekly table's line counts this run's files, not the other weeks the out dir
    holds (an earlier run's, on exports that reached further); a table holding none of this
    run's weeks is not listed as written."""
    storage = PipelineStorage(
        data_dir=str(published_sample.data_dir), out_dir=str(published_sample.out_dir)
    )
    weeks = published_sample.weeks[:-2]  # as if the exports now ended two weeks earlier
    text = summarize(storage, weeks, seconds=1.0)
    listed = text.split(f"tables written to {published_sample.out_dir}:\n")[1].splitlines()
    weekly = {
        line.split()[0]: int(line.split()[1]) for line in listed if line.endswith("weekly files")
    }
    for table in ("daily_campaign_metrics", "anomaly_flags", "campaign_health", "weekly_report"):
        assert weekly[table] == len(weeks), (table, weekly)
        stored = storage.published_tables()[table]
        assert stored == len(published_sample.weeks) > len(weeks)  # the folder holds more
    assert set(weekly.values()) == {len(weeks)}
    # a table the run wrote nothing to (its folder holds only other weeks) is not listed
    later = published_sample.weeks[-2:]
    assert "campaign_health" not in summarize(storage, [], seconds=1.0).split("tables written")[1]
    only_later = summarize(storage, later, seconds=1.0)
    assert re.search(r"^  campaign_health +2 weekly files$", only_later, re.M), only_later


def test_payload_files_are_listed_only_when_this_run_wrote_them(tmp_path):
    """An out dir keeps an earlier dry run's payload files; a run with --export off wrote
    none of them."""
    out = tmp_path / "out"
    for destination in ("ga4", "amplitude"):
        folder = out / "exports" / destination
        folder.mkdir(parents=True)
        for week in ("2025-01-06", "2025-01-13"):
            (folder / f"{week}.json").write_text("{}\n")
    storage = PipelineStorage(data_dir=str(tmp_path), out_dir=str(out))
    assert "payload files" not in summarize(storage, [], seconds=1.0, export_mode="off")
    dry = {
        d: DestinationReport(d, "dry-run", files=[f"{out}/exports/{d}/2025-01-13.json"])
        for d in ("ga4", "amplitude")
    }
    exports = {d: report.to_metadata() for d, report in dry.items()}
    text = summarize(storage, [], seconds=1.0, exports=exports, export_mode="dry-run")
    assert re.search(r"^  exports +2 payload files \(dry run\)$", text, re.M), text


def _accounting(*rows: tuple) -> pd.DataFrame:
    """rows: (file, read, accepted, quarantined, duplicates, reasons)."""
    columns = ["source_file", "rows_read", "rows_accepted", "rows_quarantined"]
    return pd.DataFrame(
        [dict(zip([*columns, "duplicates_removed", "reasons"], row)) for row in rows]
    )


def test_files_with_rows_and_none_accepted_are_named_with_their_most_common_reason():
    table = _accounting(
        ("campaigns.csv", 3, 3, 0, 0, {}),
        ("insights.csv", 22, 0, 21, 1, {"negative_spend": 1, "unparseable_date": 20}),
        ("campaign_leads.csv", 0, 0, 0, 0, {}),  # header only: an account without leads
        ("lead_status_changes.csv", 4, 0, 4, 0, {"unknown_lead": 2, "rejected_lead": 2}),
    )
    found = files_with_none_accepted(table)
    # a tie goes to the code first in alphabetical order, so the line is the same every run
    assert found == [
        ("insights.csv", "unparseable_date", 20),
        ("lead_status_changes.csv", "rejected_lead", 2),
    ]
    line = none_accepted_line(
        table,
        found,
        {"insights.csv": "line 2: unparseable date: '2025-03-03T12:00:00Z' is not ..."},
        "/out/quarantine.parquet",
    )
    assert line == (
        "insights.csv: none of its 22 rows was accepted (unparseable_date: 20 of 21 "
        "quarantined; e.g. line 2: unparseable date: '2025-03-03T12:00:00Z' is not ...); "
        "lead_status_changes.csv: none of its 4 rows was accepted (rejected_lead: 2 of 4 "
        "quarantined); no week is processed without their rows: correct the files and run "
        "again (rows accepted: campaigns.csv 3 of 3, insights.csv 0 of 22, campaign_leads.csv "
        "0 of 0, lead_status_changes.csv 0 of 4; /out/quarantine.parquet gives each set-aside "
        "row's reason)"
    )
    # one accepted row is a file with bad rows, for the quarantine to hold, not a stop
    table.loc[table["source_file"] != "campaign_leads.csv", "rows_accepted"] = 1
    assert files_with_none_accepted(table) == []
