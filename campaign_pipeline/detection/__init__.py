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

from campaign_pipeline.lazy import lazy_exports

# Each public name and the module that defines it, imported on first use, so that
# ``detection.settings`` (the CLI's check of `--set` values) does not wait for scipy.
_EXPORTS = {
    "DetectionSettings": "settings",
    "FLAG_COLUMNS": "ensemble",
    "SERIES_COLUMNS": "series",
    "adjust_pvalues": "multiple_testing",
    "detect_by_week": "ensemble",
    "detect_campaign_anomalies": "ensemble",
    "detect_series": "series",
    "seeds_flags": "seeds",
    "seeds_series_flags": "seeds",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
