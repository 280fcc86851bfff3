"""Small synthetic daily-metrics frames for the detection tests (built here, no generator)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def daily_frame(
    n_campaigns: int = 4,
    n_days: int = 56,
    seed: int = 0,
    start: str = "2024-01-01",
    impressions: float = 5000.0,
    ctr: float = 0.02,
    conv_rate: float = 0.1,
    cpc: float = 1.0,
    weekly: bool = True,
) -> pd.DataFrame:
    """Over-dispersed counts with a weekday pattern; rates and costs derived from the sums."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=n_days, freq="D")
    rows = []
    dow = np.array([1.0, 1.05, 1.1, 1.05, 1.0, 0.8, 0.75]) if weekly else np.ones(7)
    for c in range(n_campaigns):
        level = impressions * rng.uniform(0.5, 1.5)
        mu = level * dow[dates.dayofweek] * rng.gamma(50, 1 / 50, n_days)
        imp = rng.poisson(mu).astype(float)
        clicks = rng.binomial(imp.astype(int), ctr).astype(float)
        conv = rng.binomial(clicks.astype(int), conv_rate).astype(float)
        spend = clicks * cpc * rng.gamma(100, 1 / 100, n_days)
        leads = rng.poisson(conv * 0.8 + 1).astype(float)
        converted = rng.binomial(leads.astype(int), 0.3).astype(float)
        rows.append(
            pd.DataFrame(
                {
                    "campaign_id": f"c{c}",
                    "date": dates,
                    "platform": "Facebook",
                    "spend": spend,
                    "impressions": imp,
                    "clicks": clicks,
                    "conversions": conv,
                    "leads": leads,
                    "converted_leads": converted,
                }
            )
        )
    return add_rates(pd.concat(rows, ignore_index=True))


def add_rates(df: pd.DataFrame) -> pd.DataFrame:
    def r(a, b):
        return (df[a] / df[b]).where(df[b] > 0)

    return df.assign(
        ctr=r("clicks", "impressions"),
        cpc=r("spend", "clicks"),
        cpm=1000 * r("spend", "impressions"),
        cpa=r("spend", "conversions"),
        cpl=r("spend", "leads"),
        conversion_rate=r("conversions", "clicks"),
        lead_conversion_rate=r("converted_leads", "leads"),
    )
