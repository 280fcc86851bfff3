"""The closing summary of `campaign-pipeline run`, read back from what was written (through
the storage resource, so the same on a local folder and on an object store)."""

from __future__ import annotations

import pandas as pd

from campaign_pipeline.constants import HEALTH_BUCKETS, SEVERITIES
from campaign_pipeline.ingestion import FILE_SPECS
from campaign_pipeline.report.files import latest_report
from campaign_pipeline.resources.storage import PipelineStorage


def _accounting(storage: PipelineStorage) -> pd.DataFrame:
    rows = []
    for key in FILE_SPECS:
        try:
            rows.append(storage.read_staging_json(f"accounting_{key}"))
        except FileNotFoundError:
            continue
    return pd.DataFrame(rows)


def summarize(
    storage: PipelineStorage,
    weeks: list[str],
    seconds: float,
    exports: dict[str, dict] | None = None,
    export_mode: str = "",
) -> str:
    lines = ["Summary", "-------"]
    accounting = _accounting(storage)
    if len(accounting):
        lines.append(
            f"{'file':<26}{'read':>10}{'accepted':>10}{'quarantined':>13}{'duplicates':>12}"
        )
        for row in accounting.itertuples():
            lines.append(
                f"{row.source_file:<26}{row.rows_read:>10,}{row.rows_accepted:>10,}"
                f"{row.rows_quarantined:>13,}{row.duplicates_removed:>12,}"
            )
    span = f" ({weeks[0]} .. {weeks[-1]})" if weeks else ""
    lines.append(f"weeks processed: {len(weeks)}{span}")

    flags = storage.read_table("anomaly_flags")
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

    health = storage.read_table("campaign_health")
    if len(health):
        latest = health[health["week_start"] == health["week_start"].max()]
        week = pd.Timestamp(latest["week_start"].iloc[0]).date().isoformat()
        counts = latest["health_bucket"].value_counts()
        lines.append(
            f"health buckets, week {week}: "
            + ", ".join(f"{b} {int(counts.get(b, 0))}" for b in HEALTH_BUCKETS)
        )
        spend = latest.groupby("recommended_action")[
            "total_spend"
        ].sum()  # NaN spend (no delivery) adds 0
        n = latest["recommended_action"].value_counts()
        total = spend.sum()
        lines.append("action summary (trailing window of that week):")
        for action in n.index:
            share = spend.get(action, 0.0) / total if total else float("nan")
            lines.append(
                f"  {action:<45}{int(n[action]):>5} campaigns  spend "
                f"{spend.get(action, 0.0):>14,.2f}  ({share:.1%})"
            )

    if exports:
        from campaign_pipeline.exports.delivery import summary_lines

        lines.append(f"exports{f' (--export {export_mode})' if export_mode else ''}:")
        lines += summary_lines(exports)

    lines.append(f"tables written to {storage.published_dir}:")
    for name, count in storage.published_tables().items():
        if name == "exports" and count is not None:
            payloads = sum(len(d.files(".json")) for d in (storage.published_dir / name).iterdir())
            kind = f"{payloads} payload files (dry run)"
        elif count is None:
            name, kind = f"{name}.parquet", "1 file"
        else:
            kind = f"{count} weekly files"
        lines.append(f"  {name:<36}{kind}")
    latest = latest_report(storage.published_dir)
    if latest is not None:
        lines.append(f"latest weekly report: {latest}")
    lines.append(f"done in {seconds:.1f}s")
    return "\n".join(lines)
