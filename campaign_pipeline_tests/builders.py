"""Builders shared by the tests: tiny raw exports in the contract's layout, validated-table
frames for the pure metrics code, and the seed's health rules transcribed row by row.

Test modules import from here (or use the fixtures in conftest.py), never from each other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from campaign_pipeline.health import HealthRules

# --- raw exports (the contract's CSV layout) -------------------------------------------------

CAMPAIGNS = """id,user_id,project_name,daily_budget,platform,name,created_at
C1,U1,P1,100,Facebook,Camp 1,2025-01-01
C2,U1,P1,50,Google Ads,Camp 2,01/02/2025
"""
INSIGHTS_HEADER = "id,campaign_id,created_at,spend,impressions,clicks,conversions\n"
LEADS = """id,campaign_id,name,email,phone,lead_status,added_date,deal_value
L1,C1,Ann Smith,ann@example.com,+1 555 0100, done_deal ,2025-01-06,500
L2,C1,Bob Jones,bob@example.com,+1 555 0101,new,2025-01-06,
"""
CHANGES = """id,lead_id,old_status,new_status,created_at
S1,L1,NEW,DONE_DEAL,2025-01-10 12:00:00
"""


def write_exports(
    folder: Path, campaigns=CAMPAIGNS, insights="", leads=LEADS, changes=CHANGES, bom=False
) -> Path:
    raw = folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    encoding = "utf-8-sig" if bom else "utf-8"
    (raw / "campaigns.csv").write_text(campaigns, encoding=encoding)
    (raw / "insights.csv").write_text(INSIGHTS_HEADER + insights, encoding=encoding)
    (raw / "campaign_leads.csv").write_text(leads, encoding=encoding)
    (raw / "lead_status_changes.csv").write_text(changes, encoding=encoding)
    return raw


# --- validated tables --------------------------------------------------------------------------


def make_campaigns(*ids: str, platforms: dict[str, str] | None = None) -> pd.DataFrame:
    platforms = platforms or {}
    return pd.DataFrame(
        {
            "campaign_id": list(ids),
            "user_id": [f"user_{i}" for i in ids],
            "project_name": [f"project_{i}" for i in ids],
            "daily_budget": [50.0] * len(ids),
            "platform": [platforms.get(i, "Facebook") for i in ids],
            "campaign_name": [f"name {i}" for i in ids],
            "created_at": pd.to_datetime([pd.NaT] * len(ids)),
        }
    )


def make_insights(rows: list[tuple]) -> pd.DataFrame:
    """rows: (campaign_id, day, spend, impressions, clicks, conversions)."""
    frame = pd.DataFrame(
        rows, columns=["campaign_id", "date", "spend", "impressions", "clicks", "conversions"]
    )
    frame["date"] = pd.to_datetime(frame["date"])
    for column in ("spend", "impressions", "clicks", "conversions"):
        frame[column] = frame[column].astype("float64")
    frame["n_parts"] = np.ones(len(frame), dtype="int64")
    return frame


def make_leads(rows: list[tuple]) -> pd.DataFrame:
    """rows: (lead_id, campaign_id, lead_status, added_date, deal_value)."""
    frame = pd.DataFrame(
        rows, columns=["lead_id", "campaign_id", "lead_status", "added_date", "deal_value"]
    )
    frame["added_date"] = pd.to_datetime(frame["added_date"])
    frame["deal_value"] = frame["deal_value"].astype("float64")
    return frame


def make_changes(rows: list[tuple]) -> pd.DataFrame:
    """rows: (lead_id, old_status or None, new_status, changed_at)."""
    frame = pd.DataFrame(rows, columns=["lead_id", "old_status", "new_status", "changed_at"])
    frame["changed_at"] = pd.to_datetime(frame["changed_at"])
    frame.insert(0, "change_id", [f"ch{i}" for i in range(len(frame))])
    frame["date"] = frame["changed_at"].dt.normalize()
    return frame


NO_CHANGES = make_changes([])


# Insights dated as ISO instants, a format the contract lacks: every row is quarantined, so the
# file has rows and none accepted (with the `data_dir` fixture's other exports).
ISO_DATED_INSIGHTS = INSIGHTS_HEADER + (
    "1,c1,2024-01-08T10:00:00Z,10,1000,10,1\n"
    "2,c1,2024-01-09T10:00:00Z,12,1100,12,1\n"
    "3,c2,2024-01-17T10:00:00Z,5,500,5,1\n"
)


def iso_dated_insights_stop_line(out: Path) -> str:
    """The line that stops a run on `ISO_DATED_INSIGHTS` beside the `data_dir` fixture's other
    exports, with the quarantine table under ``out``."""
    return (
        "insights.csv: none of its 3 rows was accepted (unparseable_date: 3 of 3 quarantined; "
        "e.g. line 2: unparseable date: '2024-01-08T10:00:00Z' is not YYYY-MM-DD[ HH:MM:SS] or "
        "MM/DD/YYYY); no week is processed without its rows: correct the file and run again "
        "(rows accepted: campaigns.csv 2 of 2, insights.csv 0 of 3, campaign_leads.csv 2 of 2, "
        f"lead_status_changes.csv 1 of 1; {out / 'quarantine.parquet'} gives each set-aside "
        "row's reason)"
    )


# --- the seed's health rules, one campaign at a time --------------------------------------------


def seed_health_reference(frame: pd.DataFrame, rules: HealthRules = HealthRules()) -> list[str]:
    """The seed's rules, one campaign at a time, percentiles by pandas ``quantile`` on the
    universe."""
    if rules.benchmark_scope == "platform_wide":
        segment_of = ["all"] * len(frame)
    else:
        segment_of = ["<none>" if pd.isna(v) else v for v in frame[rules.benchmark_scope]]
    in_universe = (frame["total_leads"] >= rules.min_leads) & (
        frame["total_spend"] > rules.min_spend
    )
    cache = {}
    out = []
    for segment, row in zip(segment_of, frame.itertuples()):
        if segment not in cache:
            members = frame[in_universe & (pd.Series(segment_of, index=frame.index) == segment)]
            cache[segment] = (
                members["cpl"].quantile(rules.hero_cpl_quantile),
                members["cpl"].quantile(rules.median_cpl_quantile),
                members["cpl"].quantile(rules.bad_cpl_quantile),
                members["conversion_rate"].quantile(rules.top_conversion_quantile),
            )
        p25, p50, p75, c75 = cache[segment]
        if (
            row.total_leads < rules.min_leads
            or not row.total_spend > rules.min_spend
            or row.days_active < rules.min_days_active
        ):
            out.append("NEEDS_MORE_DATA")
        elif (
            row.total_leads >= rules.bad_min_leads
            and row.conversion_rate <= rules.bad_max_conversion_rate
            and row.cpl >= p75
        ):
            out.append("BAD")
        elif row.conversion_rate >= c75 and row.cpl <= p25:
            out.append("HERO")
        elif row.conversion_rate >= c75 and row.cpl <= p50:
            out.append("GOOD")
        elif row.conversion_rate > rules.mixed_min_conversion_rate and row.cpl > p50:
            out.append("MIXED")
        else:
            out.append("NEEDS_MORE_DATA")
    return out


# --- resources ----------------------------------------------------------------------------------


def pipeline_resources(storage, **overrides) -> dict:
    """The resources the assets need, with ``storage`` and defaults for the rest (exports:
    mode auto with no credentials, i.e. dry runs; the ledger a SQLite file in the out dir)."""
    from campaign_pipeline.resources.amplitude import AmplitudeHTTP
    from campaign_pipeline.resources.exports import ExportLedgerStore, ExportSettings
    from campaign_pipeline.resources.ga4 import GA4MeasurementProtocol
    from campaign_pipeline.resources.ingestion_rules import IngestionRulesResource
    from campaign_pipeline.resources.salesforce import SalesforceSource

    return {
        "storage": storage,
        "ingestion_rules": IngestionRulesResource(),
        "exports": ExportSettings(),
        "ga4": GA4MeasurementProtocol(),
        "amplitude": AmplitudeHTTP(),
        "export_ledger_store": ExportLedgerStore(),
        "salesforce": SalesforceSource(),  # off: the raw lead files are read
        **overrides,
    }


def failed_alone(assets, selection: list[str], resources: dict, **kwargs) -> str:
    """Materialize ``selection`` expecting its one step to fail; that failure's message."""
    import dagster as dg

    result = dg.materialize(
        assets, selection=selection, resources=resources, raise_on_error=False, **kwargs
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    return failure.event_specific_data.error.message
