"""Helpers the export tests share (not a test module): a week of published tables as
frames, with planted personal data and a recognisable secret, and what a leak looks like."""

from __future__ import annotations

import pandas as pd

from campaign_pipeline.exports.events import CampaignEvent, week_events

WEEK = "2025-03-03"
GA4_MEASUREMENT_ID = "G-FAKE4TEST"
GA4_SECRET = "ga4-secret-XYZZY-4711"
AMPLITUDE_KEY = "amp-key-PLUGH-0815"
SECRETS = (GA4_SECRET, AMPLITUDE_KEY)

# Personal data planted in raw leads: none of it may appear in anything the exports produce.
PII = (
    "Zebulon Quackenbush",
    "zebulon.quackenbush@leak.example",
    "+1 555 0199 777",
    "LEAD-PII-000123",
)


def week_tables(
    n_campaigns: int = 12, flags_per_campaign: int = 2, week: str = WEEK
) -> dict[str, pd.DataFrame]:
    """The published tables of one week for ``n_campaigns`` campaigns: every campaign active
    with metrics, every third with a bucket change, each with flags of rising severity."""
    start = pd.Timestamp(week)
    ids = [f"CMP{i:04d}" for i in range(n_campaigns)]
    platforms = ["Facebook", "Google Ads", "LinkedIn", "TikTok"]
    weekly = pd.DataFrame(
        {
            "week_start": start,
            "campaign_id": ids,
            "platform": [platforms[i % 4] for i in range(n_campaigns)],
            "user_id": "U-owner",
            "spend": [100.0 + i for i in range(n_campaigns)],
            "impressions": [10_000.0 + i for i in range(n_campaigns)],
            "clicks": [200.0] * n_campaigns,
            "conversions": [float(i % 5) for i in range(n_campaigns)],
            "leads": [i % 7 for i in range(n_campaigns)],
            "converted_leads": [i % 3 for i in range(n_campaigns)],
            "revenue": [0.0] * n_campaigns,
            "cpl": [(100.0 + i) / (i % 7) if i % 7 else float("nan") for i in range(n_campaigns)],
            "roas": [0.0] * n_campaigns,
        }
    )
    buckets = ["HERO", "GOOD", "MIXED", "BAD", "NEEDS_MORE_DATA"]
    health = pd.DataFrame(
        {
            "week_start": start,
            "campaign_id": ids,
            "platform": weekly["platform"],
            "health_bucket": [buckets[i % 5] for i in range(n_campaigns)],
            "previous_bucket": [
                buckets[(i + 1) % 5] if i % 3 == 0 else buckets[i % 5] for i in range(n_campaigns)
            ],
            "bucket_changed": [i % 3 == 0 for i in range(n_campaigns)],
            "recommended_action": "Keep Monitoring",
            "reason": "6 leads (< 10 needed) -> Keep Monitoring",
        }
    )
    severities = ["low", "medium", "high", "critical"]
    rows = []
    for i, campaign in enumerate(ids):
        for j in range(flags_per_campaign):
            day = start + pd.Timedelta(days=j % 7)
            rows.append(
                {
                    "campaign_id": campaign,
                    "grain": "day",
                    "period_start": day,
                    "period_end": day,
                    "metric": ["clicks", "spend", "cpl", "ctr"][j % 4],
                    "value": 10.0 * (j + 1),
                    "expected": 5.0,
                    "anomaly_type": "spike",
                    "severity": severities[(i + j) % 4],
                    "confidence": 0.9,
                    "explanation": "Clicks spiked: " + "x" * 150,
                    "suggested_action": "Check the new clicks for bots or accidental placements "
                    "before trusting the extra traffic, and look at the placement report.",
                }
            )
    flags = pd.DataFrame(rows)
    campaigns = pd.DataFrame({"campaign_id": ids, "platform": weekly["platform"]})
    return {"weekly": weekly, "health": health, "flags": flags, "campaigns": campaigns}


def events_for(tables: dict[str, pd.DataFrame], week: str = WEEK) -> list[CampaignEvent]:
    return week_events(
        week, tables["weekly"], tables["health"], tables["flags"], tables["campaigns"]
    )


def leaks(text: str | bytes, needles=PII + SECRETS) -> list[str]:
    """The planted personal data and secrets found in ``text``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return [needle for needle in needles if needle in text]
