"""The seeds' method, kept only for comparison in benchmarks.

Per campaign and metric: |x - mean| / std > 3 OR x outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR].
The seeds computed mean, std and quartiles over the whole series, so every day's flag used
the days after it (look-ahead); `whole_series=False` gives the trailing-window variant,
which is causal but otherwise identical. Seed 002 replaced the fixed z > 3 by a Bonferroni
threshold over all campaign x metric x day tests (`bonferroni=True`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from campaign_pipeline.detection.baselines import nan_mean_std, nan_quantiles, trailing_windows

SEED_METRICS = (
    "spend",
    "impressions",
    "clicks",
    "conversions",
    "ctr",
    "cpc",
    "cpm",
    "cpa",
    "leads",
    "cpl",
)


def seeds_flags(
    daily: pd.DataFrame,
    *,
    metrics: tuple[str, ...] = SEED_METRICS,
    whole_series: bool = True,
    window: int = 28,
    bonferroni: bool = False,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Flags of the seeds' rule: campaign_id, grain, period_start, period_end, metric, value,
    expected (the mean), score (|z|), methods."""
    metrics = tuple(m for m in metrics if m in daily.columns)
    long = daily[["campaign_id", "date", *metrics]].melt(
        ["campaign_id", "date"], var_name="metric", value_name="value"
    )
    long["date"] = pd.to_datetime(long["date"])
    # the published counts are Int64 (null where not reported) beside float rates: melted
    # together they are objects holding pd.NA, which the seeds' arithmetic cannot compare
    long["value"] = long["value"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    long = long.sort_values(["campaign_id", "metric", "date"]).reset_index(drop=True)
    if whole_series:
        g = long.groupby(["campaign_id", "metric"])["value"]
        mean, std = g.transform("mean"), g.transform("std")
        q1, q3 = g.transform(lambda v: v.quantile(0.25)), g.transform(lambda v: v.quantile(0.75))
        mean, std, q1, q3 = (a.to_numpy() for a in (mean, std, q1, q3))
    else:
        # panel rows = (campaign, metric); trailing window excludes the day itself
        keys = long[["campaign_id", "metric"]].drop_duplicates().reset_index(drop=True)
        times = pd.date_range(long["date"].min(), long["date"].max(), freq="D")
        row = pd.MultiIndex.from_frame(keys).get_indexer(
            pd.MultiIndex.from_frame(long[["campaign_id", "metric"]])
        )
        col = times.get_indexer(long["date"])
        panel = np.full((len(keys), len(times)), np.nan)
        panel[row, col] = long["value"].to_numpy(dtype=float)
        w = trailing_windows(panel, window)
        m, sd = nan_mean_std(w)
        a, b = nan_quantiles(w, (0.25, 0.75))
        mean, std, q1, q3 = m[row, col], sd[row, col], a[row, col], b[row, col]
    x = long["value"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.abs(x - mean) / std
    z = np.where(std > 0, z, np.nan)
    if bonferroni:
        m_tests = int(np.sum(~np.isnan(z)))
        z_limit = stats.norm.isf(alpha / max(m_tests, 1) / 2.0)
    else:
        z_limit = 3.0
    z_hit = np.nan_to_num(z, nan=0.0) > z_limit
    iqr = q3 - q1
    iqr_hit = (x < q1 - 1.5 * iqr) | (x > q3 + 1.5 * iqr)
    hit = z_hit | iqr_hit
    out = long[hit].copy()
    out["grain"] = "day"
    out["period_start"] = out["date"]
    out["period_end"] = out["date"]
    out["expected"] = mean[hit]
    out["score"] = z[hit]
    out["methods"] = np.where(
        z_hit[hit] & iqr_hit[hit], "seeds_z,seeds_iqr", np.where(z_hit[hit], "seeds_z", "seeds_iqr")
    )
    return out.drop(columns="date").reset_index(drop=True)[
        [
            "campaign_id",
            "grain",
            "period_start",
            "period_end",
            "metric",
            "value",
            "expected",
            "score",
            "methods",
        ]
    ]


def seeds_series_flags(frame: pd.DataFrame, *, whole_series: bool = True) -> pd.DataFrame:
    """The seeds' rule on long-format series (series, timestamp, value) -> series, timestamp,
    is_anomaly."""
    df = frame[["series", "timestamp", "value"]].copy()
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    df = df.groupby(["series", "timestamp"], as_index=False)["value"].mean()
    g = df.groupby("series")["value"]
    x = df["value"].to_numpy(dtype=float)
    if whole_series:
        mean, std = g.transform("mean").to_numpy(), g.transform("std").to_numpy()
        q1 = g.transform(lambda v: v.quantile(0.25)).to_numpy()
        q3 = g.transform(lambda v: v.quantile(0.75)).to_numpy()
    else:
        raise NotImplementedError("use seeds_flags(whole_series=False) on a panel")
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.abs(x - mean) / std
    iqr = q3 - q1
    hit = (np.nan_to_num(z) > 3.0) | (x < q1 - 1.5 * iqr) | (x > q3 + 1.5 * iqr)
    return df.assign(is_anomaly=hit)[["series", "timestamp", "is_anomaly"]]
