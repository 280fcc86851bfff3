#!/usr/bin/env python
"""The earlier system's way of doing the weekly analysis, as one plain pandas script.

This is the yardstick of `scripts/benchmark_pipeline.py`: the pipeline replaced a set of
notebooks and scripts (the "seed") that loaded the four exports with pandas, derived the
metrics, printed a weekly report, flagged anomalies with a Z-score and an IQR rule in a loop
over campaigns and metrics, joined the leads, and bucketed campaigns with row-by-row rules.
It is written the way that system was: straightforward pandas, whole-series statistics, a
Python loop per campaign and metric and per campaign row, no validation layer, nothing
written per week. Its results are not the pipeline's (no quarantine, look-ahead anomaly
statistics, lifetime buckets only, as the seed had); only its cost is compared.

What it does, in order (each step timed):

1. read the CSVs (``pd.read_csv``) and parse the mixed-format timestamps;
2. derived metrics: ad-set parts summed per campaign and day; CTR, CPC, CPM, CPA and
   conversion rate per day;
3. leads integration: a lead's conversion day is its first status change into a converted
   status (else its added date), leads, conversions and revenue per campaign and day joined
   to the delivery (outer join);
4. weekly report: per week and campaign, and the portfolio's weekly totals;
5. anomalies: for every campaign and each of the seed's ten metrics, the Z-score rule
   (|x - mean| > 3 sd) and the IQR rule (outside Q1 - 1.5 IQR .. Q3 + 1.5 IQR) over the
   campaign's whole series;
6. health: the seed's ``campaign_perf_4`` lifetime summary, platform-wide percentiles, and
   the decision rules applied one campaign row at a time.

    python scripts/legacy_baseline.py DATA_DIR [--out DIR]

DATA_DIR holds ``raw/`` with the four exports (``campaign-pipeline sample --out DATA_DIR``).
The results are written as CSV to ``--out`` (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

CONVERTED = ["DONE_DEAL", "ALREADY_BOUGHT", "RESALE_REQUEST", "MEETING_DONE", "HIGH_INTEREST",
             "QUALIFIED"]  # fmt: skip
SEED_METRICS = ["spend", "impressions", "clicks", "conversions", "ctr", "cpc", "cpm", "cpa",
                "leads", "cpl"]  # fmt: skip


class Steps:
    """Wall time of each step, printed as it ends."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def done(self, name: str, detail: str = "") -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self._t
        print(f"  {name:<22}{now - self._t:8.1f}s  {detail}", flush=True)
        self._t = now


def load(raw: Path):
    campaigns = pd.read_csv(raw / "campaigns.csv", encoding="utf-8-sig")
    insights = pd.read_csv(raw / "insights.csv")
    leads = pd.read_csv(raw / "campaign_leads.csv")
    changes = pd.read_csv(raw / "lead_status_changes.csv")
    for frame in (campaigns, insights, leads, changes):
        frame.columns = [c.strip().lower() for c in frame.columns]
    # unreadable dates become NaT and the rows drop out of every group-by (as in the seed)
    insights["date"] = pd.to_datetime(
        insights["created_at"], format="mixed", errors="coerce"
    ).dt.normalize()
    leads["added_date"] = pd.to_datetime(leads["added_date"], format="mixed", errors="coerce")
    changes["created_at"] = pd.to_datetime(changes["created_at"], format="mixed", errors="coerce")
    for column in ("spend", "impressions", "clicks", "conversions"):
        insights[column] = pd.to_numeric(insights[column], errors="coerce")
    leads["lead_status"] = leads["lead_status"].str.strip().str.upper()
    changes["new_status"] = changes["new_status"].str.strip().str.upper()
    campaigns["platform"] = campaigns["platform"].fillna("Unknown")
    return campaigns, insights, leads, changes


def add_rates(frame: pd.DataFrame) -> pd.DataFrame:
    frame["ctr"] = frame["clicks"] / frame["impressions"]
    frame["cpc"] = frame["spend"] / frame["clicks"]
    frame["cpm"] = frame["spend"] / frame["impressions"] * 1000
    frame["cpa"] = frame["spend"] / frame["conversions"]
    frame["conversion_rate"] = frame["conversions"] / frame["clicks"]
    frame["cpl"] = frame["spend"] / frame["leads"]
    frame["lead_conversion_rate"] = frame["converted_leads"] / frame["leads"]
    frame["roas"] = frame["revenue"] / frame["spend"]
    return frame.replace([np.inf, -np.inf], np.nan)


def daily_metrics(insights: pd.DataFrame, leads: pd.DataFrame, changes: pd.DataFrame):
    daily = insights.groupby(["campaign_id", "date"], as_index=False)[
        ["spend", "impressions", "clicks", "conversions"]
    ].sum()
    # leads integration: first change into a converted status, else the added date
    into = changes[changes["new_status"].isin(CONVERTED)]
    first = into.groupby("lead_id")["created_at"].min()
    leads["is_converted"] = leads["lead_status"].isin(CONVERTED)
    leads["converted_date"] = leads["id"].map(first).fillna(leads["added_date"])
    leads["converted_date"] = leads["converted_date"].where(leads["is_converted"]).dt.normalize()
    leads["day"] = leads["added_date"].dt.normalize()
    leads["revenue"] = leads["deal_value"].where(leads["is_converted"], 0).fillna(0)
    added = leads.groupby(["campaign_id", "day"]).size().rename("leads")
    conv = leads[leads["is_converted"]]
    converted = conv.groupby(["campaign_id", "converted_date"]).size().rename("converted_leads")
    revenue = conv.groupby(["campaign_id", "converted_date"])["revenue"].sum()
    events = (
        pd.concat(
            [
                added,
                converted.rename_axis(["campaign_id", "day"]),
                revenue.rename_axis(["campaign_id", "day"]),
            ],
            axis=1,
        )
        .fillna(0)
        .reset_index()
        .rename(columns={"day": "date"})
    )
    daily = daily.merge(events, on=["campaign_id", "date"], how="outer")
    for column in ("leads", "converted_leads", "revenue"):
        daily[column] = daily[column].fillna(0)
    return add_rates(daily)


def weekly_report(daily: pd.DataFrame, campaigns: pd.DataFrame):
    daily["week_start"] = daily["date"] - pd.to_timedelta(daily["date"].dt.weekday, unit="D")
    sums = ["spend", "impressions", "clicks", "conversions", "leads", "converted_leads", "revenue"]
    weekly = daily.groupby(["week_start", "campaign_id"], as_index=False)[sums].sum()
    weekly = weekly.merge(
        campaigns[["id", "platform", "user_id", "project_name"]],
        left_on="campaign_id",
        right_on="id",
        how="left",
    )
    weekly = add_rates(weekly)
    totals = add_rates(daily.groupby("week_start", as_index=False)[sums].sum())
    return weekly, totals


def anomalies(daily: pd.DataFrame) -> pd.DataFrame:
    """The seed's rules, one campaign and one metric at a time, on the whole series."""
    rows = []
    for campaign_id, days in daily.groupby("campaign_id"):
        for metric in SEED_METRICS:
            series = days[metric].dropna()
            if len(series) < 3:
                continue
            mean, std = series.mean(), series.std()
            q1, q3 = series.quantile(0.25), series.quantile(0.75)
            iqr = q3 - q1
            z = (series - mean) / std if std > 0 else series * 0
            hit = (z.abs() > 3) | (series < q1 - 1.5 * iqr) | (series > q3 + 1.5 * iqr)
            for index in series[hit].index:
                rows.append(
                    {
                        "campaign_id": campaign_id,
                        "date": days.at[index, "date"],
                        "metric": metric,
                        "value": series[index],
                        "expected": mean,
                        "z": z[index],
                    }
                )
    return pd.DataFrame(rows)


def health(daily: pd.DataFrame, campaigns: pd.DataFrame) -> pd.DataFrame:
    """campaign_perf_4 and the decision rules, row by row."""
    perf = daily.groupby("campaign_id").agg(
        total_spend=("spend", "sum"),
        days_active=("spend", "count"),
        total_leads=("leads", "sum"),
        converted_leads=("converted_leads", "sum"),
    )
    perf["conversion_rate"] = perf["converted_leads"] / perf["total_leads"]
    perf["cpl"] = perf["total_spend"] / perf["total_leads"]
    perf = perf.replace([np.inf, -np.inf], np.nan).reset_index()
    perf = perf.merge(campaigns, left_on="campaign_id", right_on="id", how="left")
    universe = perf[(perf["total_leads"] >= 10) & (perf["total_spend"] > 0)]
    p25, p50, p75 = (universe["cpl"].quantile(q) for q in (0.25, 0.5, 0.75))
    c75 = universe["conversion_rate"].quantile(0.75)
    buckets, actions = [], []
    for row in perf.itertuples():
        if row.total_leads < 10 or not row.total_spend > 0 or row.days_active < 3:
            bucket, action = "NEEDS_MORE_DATA", "Keep Monitoring"
        elif row.total_leads >= 20 and row.conversion_rate == 0 and row.cpl >= p75:
            bucket, action = "BAD", "Stop / Reallocate"
        elif row.conversion_rate >= c75 and row.cpl <= p25:
            bucket, action = "HERO", "Scale Up"
        elif row.conversion_rate >= c75 and row.cpl <= p50:
            bucket, action = "GOOD", "Keep Running"
        elif row.conversion_rate > 0 and row.cpl > p50:
            bucket, action = "MIXED", "Optimize (Targeting / Creative / Audience)"
        else:
            bucket, action = "NEEDS_MORE_DATA", "Keep Monitoring"
        buckets.append(bucket)
        actions.append(action)
    perf["health_bucket"] = buckets
    perf["recommended_action"] = actions
    return perf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", help="folder holding raw/ with the four exports")
    parser.add_argument("--out", help="where the CSV results go (default: a temporary folder)")
    args = parser.parse_args(argv)
    raw = Path(args.data_dir) / "raw"
    if not raw.is_dir():
        print(f"error: {raw}: raw folder not found", file=sys.stderr)
        return 2
    out = Path(args.out or tempfile.mkdtemp(prefix="legacy_baseline_"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"legacy baseline: {raw} -> {out}", flush=True)
    steps = Steps()
    campaigns, insights, leads, changes = load(raw)
    steps.done(
        "load", f"{len(insights):,} insights, {len(leads):,} leads, {len(changes):,} changes"
    )
    daily = daily_metrics(insights, leads, changes)
    steps.done("derived metrics", f"{len(daily):,} campaign-days")
    weekly, totals = weekly_report(daily, campaigns)
    steps.done("weekly report", f"{len(weekly):,} campaign-weeks, {len(totals)} weeks")
    flags = anomalies(daily)
    steps.done("anomalies", f"{len(flags):,} flags")
    judged = health(daily, campaigns)
    steps.done("health", f"{len(judged):,} campaigns")
    weekly.to_csv(out / "weekly_campaign_metrics.csv", index=False)
    totals.to_csv(out / "weekly_report.csv", index=False)
    flags.to_csv(out / "anomalies.csv", index=False)
    judged[["campaign_id", "health_bucket", "recommended_action"]].to_csv(
        out / "campaign_health.csv", index=False
    )
    steps.done("write", str(out))
    print(f"legacy baseline: done in {sum(steps.seconds.values()):.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
