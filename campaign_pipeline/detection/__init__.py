"""Anomaly detection core: causal, count-aware ensemble (no Dagster inside).

Public API:
- DetectionSettings: every threshold, with its default and reason.
- detect_campaign_anomalies(daily, weekly=None, campaigns=None, *, judge_start, judge_end,
  settings) -> the data contract's anomaly_flags table.
- detect_by_week(daily, week_starts, *, history_weeks, campaigns, settings): the same, each
  week judged on its own fixed history (what the weekly asset publishes).
- detect_series(frame, settings) -> per-point flags for any regular long-format series.
- seeds_flags / seeds_series_flags: the seeds' Z-score + IQR method, for comparison only.
- adjust_pvalues: Benjamini-Hochberg / Bonferroni within families.
"""

from campaign_pipeline.detection.ensemble import (
    FLAG_COLUMNS,
    detect_by_week,
    detect_campaign_anomalies,
)
from campaign_pipeline.detection.multiple_testing import adjust_pvalues
from campaign_pipeline.detection.seeds import seeds_flags, seeds_series_flags
from campaign_pipeline.detection.series import SERIES_COLUMNS, detect_series
from campaign_pipeline.detection.settings import DetectionSettings

__all__ = [
    "DetectionSettings",
    "FLAG_COLUMNS",
    "SERIES_COLUMNS",
    "adjust_pvalues",
    "detect_by_week",
    "detect_campaign_anomalies",
    "detect_series",
    "seeds_flags",
    "seeds_series_flags",
]
