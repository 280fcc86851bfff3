"""The closing summary of `campaign-pipeline run`, read back from what was written (through
the storage resource, so the same on a local folder and on an object store), and the line that
stops any run on a raw file that has rows and none accepted (`none_accepted_stop`)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from campaign_pipeline.constants import HEALTH_BUCKETS, SEVERITIES
from campaign_pipeline.health import action_summary
from campaign_pipeline.ingestion import FILE_SPECS
from campaign_pipeline.partitions import describe_stretches, describe_weeks, week_ranges
from campaign_pipeline.report.files import report_path
from campaign_pipeline.resources.storage import PipelineStorage

# The blocking check on `quarantine` that `none_accepted_stop` decides (assets/ingestion.py).
NONE_ACCEPTED_CHECK = "every_file_has_accepted_rows"


def accounting(storage: PipelineStorage) -> pd.DataFrame:
    """Rows read, accepted, quarantined and removed as duplicates, a row per raw file read."""
    rows = []
    for key in FILE_SPECS:
        try:
            rows.append(storage.read_staging_json(f"accounting_{key}"))
        except FileNotFoundError:
            continue
    return pd.DataFrame(rows)


def accepted_counts(table: pd.DataFrame) -> str:
    """``campaigns.csv 3 of 3, insights.csv 0 of 21, ...``: what each file gave the weeks."""
    return ", ".join(
        f"{row.source_file} {row.rows_accepted:,} of {row.rows_read:,}"
        for row in table.itertuples()
    )


def files_with_none_accepted(table: pd.DataFrame) -> list[tuple[str, str | None, int]]:
    """(file, its most common quarantine reason code, that code's row count) of each file that
    has rows and none of them accepted (``table``: `accounting`, with its ``reasons``).

    Such a file is a mistake in the whole export (a date format the contract lacks, a renamed
    campaign), not a few bad rows: the weeks built without it would publish, and export, their
    facts without its figures (leads but no spend), and the export ledger keys facts, so those
    weeks would not be sent again once the file is corrected. A file with no rows at all (an
    account without leads) is an export of nothing, not a mistake."""
    found = []
    for row in table[(table["rows_read"] > 0) & (table["rows_accepted"] == 0)].itertuples():
        reasons = getattr(row, "reasons", None)
        reasons = reasons if isinstance(reasons, dict) and reasons else {None: 0}
        code, count = min(reasons.items(), key=lambda item: (-item[1], str(item[0])))
        found.append((row.source_file, code, int(count)))
    return found


def quarantine_example(storage: PipelineStorage, source_file: str, reason_code: str) -> str:
    """The first quarantined row of ``source_file`` with ``reason_code``, as ``line N: <its
    reason>``: the reason quotes the offending cell, and never a lead's name, email or phone
    (the quarantine drops them)."""
    key = next(k for k, spec in FILE_SPECS.items() if spec.filename == source_file)
    rows = storage.read_staging(
        f"quarantine_{key}",
        columns=["line_number", "reason"],
        filters=[("reason_code", "==", reason_code)],
        arrow_strings=True,
    )
    if not len(rows):
        return ""
    first = rows.loc[rows["line_number"].idxmin()]
    return f"line {int(first['line_number'])}: {first['reason']}"


def none_accepted_line(
    table: pd.DataFrame,
    found: list[tuple[str, str | None, int]],
    examples: dict[str, str],
    quarantine: str,
) -> str:
    """The one line that stops a run on the files `files_with_none_accepted` found."""
    read = table.set_index("source_file")
    parts = []
    for source_file, code, count in found:
        quarantined = int(read.loc[source_file, "rows_quarantined"])
        why = f"{code}: {count:,} of {quarantined:,} quarantined" if code else "none quarantined"
        example = examples.get(source_file)
        parts.append(
            f"{source_file}: none of its {int(read.loc[source_file, 'rows_read']):,} rows was "
            f"accepted ({why}{'; e.g. ' + example if example else ''})"
        )
    return (
        "; ".join(parts) + "; no week is processed without "
        f"{'its' if len(found) == 1 else 'their'} rows: correct the "
        f"{'file' if len(found) == 1 else 'files'} and run again (rows accepted: "
        f"{accepted_counts(table)}; {quarantine} gives each set-aside row's reason)"
    )


def none_accepted_stop(storage: PipelineStorage) -> str | None:
    """`none_accepted_line` of the raw files the validated layer holds that have rows and none
    accepted, or None. The one judgement that stops every launcher: the blocking check
    ``quarantine:every_file_has_accepted_rows`` (the ingestion layer's runs: the schedule, the
    raw-file sensor, the UI, `campaign-pipeline run`) and the weekly and lifetime tables' first
    steps (runs of them alone, on the validated layer as it stands)."""
    table = accounting(storage)
    found = files_with_none_accepted(table) if len(table) else []
    if not found:
        return None
    examples = {
        source_file: quarantine_example(storage, source_file, code)
        for source_file, code, _ in found
        if code
    }
    return none_accepted_line(table, found, examples, str(storage.table_path("quarantine")))


def action_lines(latest_health: pd.DataFrame) -> list[str]:
    """A line per recommended action that some campaign got, most campaigns first.

    Spend and its share come from `health.action_summary`, the published
    `health_action_summary`, so the run's closing lines say what that table says: a share is
    shown only when the portfolio reported spend, and an action whose campaigns reported none
    (no delivery rows in the window) says so instead of showing 0.00.
    """
    summary = action_summary(latest_health)
    summary = summary[summary["n_campaigns"] > 0].sort_values(
        "n_campaigns", ascending=False, kind="stable"
    )
    lines = []
    for row in summary.itertuples():
        if pd.isna(row.total_spend):  # none of its campaigns reported spend
            spend = f"{'none reported':>14}"
        else:
            spend = f"{row.total_spend:>14,.2f}"
        share = "" if pd.isna(row.share_of_spend) else f"  ({row.share_of_spend:.1%})"
        lines.append(
            f"  {row.recommended_action:<45}{row.n_campaigns:>5} campaigns  spend {spend}{share}"
        )
    return lines


def summarize(
    storage: PipelineStorage,
    weeks: list[str],
    seconds: float,
    exports: dict[str, dict] | None = None,
    export_mode: str = "",
    not_built: Sequence[str] = (),
) -> str:
    """The run's summary. ``weeks``: the weeks it built, in order (ranges of consecutive weeks
    when a long gap without data lies between them); ``not_built``: the weeks of that gap
    (`runner.plan_weeks`)."""
    lines = ["Summary", "-------"]
    accounting_rows = accounting(storage)
    if len(accounting_rows):
        lines.append(
            f"{'file':<26}{'read':>10}{'accepted':>10}{'quarantined':>13}{'duplicates':>12}"
        )
        for row in accounting_rows.itertuples():
            lines.append(
                f"{row.source_file:<26}{row.rows_read:>10,}{row.rows_accepted:>10,}"
                f"{row.rows_quarantined:>13,}{row.duplicates_removed:>12,}"
            )
    span = f" ({weeks[0]} .. {weeks[-1]})" if weeks else ""
    lines.append(f"weeks processed: {len(weeks)}{span}")
    if not_built:
        # a lone week far from the rest is most often a mistyped date: each range is named
        stretches = week_ranges(weeks)
        lines.append(
            f"  in {len(stretches)} ranges: {describe_stretches(stretches)}; not built: "
            f"{describe_weeks(list(not_built))} without any accepted delivery or lead event"
        )

    # the weeks this run published: an out dir may also hold other weeks (an earlier run's,
    # on exports that reached further), which are not this run's to report
    flags = storage.read_table("anomaly_flags", week_starts=weeks)
    if len(flags):
        by_severity = flags["severity"].value_counts()
        sev = ", ".join(f"{s} {int(by_severity.get(s, 0))}" for s in reversed(SEVERITIES))
        by_grain = flags["grain"].value_counts()
        lines.append(
            f"anomaly flags: {len(flags):,} ({sev}); day grain {int(by_grain.get('day', 0)):,}, "
            f"week grain {int(by_grain.get('week', 0)):,}"
        )
    else:
        lines.append("anomaly flags: 0")

    health = storage.read_table("campaign_health", week_starts=weeks)
    if len(health):
        latest = health[health["week_start"] == health["week_start"].max()]
        week = pd.Timestamp(latest["week_start"].iloc[0]).date().isoformat()
        counts = latest["health_bucket"].value_counts()
        lines.append(
            f"health buckets, week {week}: "
            + ", ".join(f"{b} {int(counts.get(b, 0))}" for b in HEALTH_BUCKETS)
        )
        lines.append("action summary (trailing window of that week):")
        lines += action_lines(latest)

    if exports:
        from campaign_pipeline.exports.delivery import summary_lines

        lines.append(f"exports{f' (--export {export_mode})' if export_mode else ''}:")
        lines += summary_lines(exports)

    lines.append(f"tables written to {storage.published_dir}:")
    # a weekly table's files of this run's weeks: the folder may also hold other weeks (an
    # earlier run's, on exports that reached further), which the note below names
    for name, count in storage.published_tables(weeks).items():
        if name == "exports" and count is not None:
            # the files this run wrote: the folder may hold an earlier dry run's as well
            payloads = sum(len(report.get("files", [])) for report in (exports or {}).values())
            if not payloads:
                continue
            kind = f"{payloads} payload files (dry run)"
        elif count is None:
            name, kind = f"{name}.parquet", "1 file"
        elif not count:  # only other weeks' files: none of them is this run's
            continue
        else:
            kind = f"{count} weekly files"
        lines.append(f"  {name:<36}{kind}")
    page = report_path(storage.published_dir, weeks[-1]) if weeks else None
    if page is not None and page.is_file():
        lines.append(f"latest weekly report: {page}")
    others = sorted(set(storage.table_weeks("campaign_health")) - set(weeks))
    if others:
        lines.append(
            f"note: {storage.published_dir} also holds the tables and pages of "
            f"{describe_weeks(others)} that these raw files do not cover; this run left them as "
            "an earlier run published them"
        )
    lines.append(f"done in {seconds:.1f}s")
    return "\n".join(lines)
