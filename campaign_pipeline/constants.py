"""Names and defaults shared by every layer.

They live in one place because the data contract (../shared/DATA_CONTRACT.md in the
design repo) fixes them: tests, benchmarks and outside readers rely on the spelling.
"""

from __future__ import annotations

import os
import zoneinfo

# A lead counts as converted when its (trimmed, upper-cased) status is one of these.
# Configurable through the pipeline settings; this is the contract's default.
CONVERTED_STATUSES: tuple[str, ...] = (
    "DONE_DEAL",
    "ALREADY_BOUGHT",
    "RESALE_REQUEST",
    "MEETING_DONE",
    "HIGH_INTEREST",
    "QUALIFIED",
)

# `campaign-pipeline run --max-gap-weeks` (runner.plan_weeks): a gap of up to 4 weeks without
# data between weeks with data (a pause, a holiday, an outage) is built with them: its weeks'
# 28-day health windows (the default window) still hold the weeks before it, so their pages
# show the campaigns going quiet. A longer gap is not built: it is most often a mistyped date
# (a row dated 2017 in a 2025 export), and each of its weeks costs the run its steps' work, its
# files, a page and export payloads for no row (a row 8 years off took 20 minutes and wrote
# 3,350 files).
MAX_GAP_WEEKS = 4

# A step's progress lines start with this: `campaign-pipeline run` prints them under the step
# (runner._step_progress); the UI shows them in the step's log like any other line.
PROGRESS_PREFIX = "progress: "

# Raw file names in <data dir>/raw/.
RAW_FILES: dict[str, str] = {
    "campaigns": "campaigns.csv",
    "insights": "insights.csv",
    "campaign_leads": "campaign_leads.csv",
    "lead_status_changes": "lead_status_changes.csv",
}

# Quarantine reasons whose amounts are not money anyone spent (left out of quarantined_spend).
IMPLAUSIBLE_REASONS: tuple[str, ...] = ("implausible_value",)

# Personal data: never leaves the validated layer.
PII_COLUMNS: tuple[str, ...] = ("name", "email", "phone")

HEALTH_BUCKETS: tuple[str, ...] = ("HERO", "GOOD", "MIXED", "BAD", "NEEDS_MORE_DATA")
RECOMMENDED_ACTIONS: tuple[str, ...] = (
    "Scale Up",
    "Keep Running",
    "Optimize (Targeting / Creative / Audience)",
    "Stop / Reallocate",
    "Keep Monitoring",
)
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
SEVERITY_RANK: dict[str, int] = {
    name: rank for rank, name in enumerate(SEVERITIES)
}  # higher = more severe

# The deployment's time zone: the weekly partitions' weeks, the schedule's "Monday 06:00" and
# the freshness deadlines are in it. Read when the code location loads.
PARTITION_TIMEZONE_ENV = "CAMPAIGN_PIPELINE_TIMEZONE"


def partition_timezone() -> str:
    """``$CAMPAIGN_PIPELINE_TIMEZONE``; UTC when unset or empty. A value that is no IANA time
    zone is a ValueError naming the variable, not zoneinfo's traceback from inside Dagster."""
    name = os.environ.get(PARTITION_TIMEZONE_ENV) or "UTC"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{PARTITION_TIMEZONE_ENV}={name!r} is not a time zone: give an IANA name such as "
            "Europe/Berlin or America/New_York, or UTC"
        ) from None
    return name
