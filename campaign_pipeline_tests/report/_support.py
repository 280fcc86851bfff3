"""Helpers for the report tests: reading the published sample's tables and a page's parts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from bs4 import BeautifulSoup

SECTIONS = ("overview", "anomalies", "explorer", "scatter", "campaigns")


def week_table(out_dir: Path, table: str, week: str) -> pd.DataFrame:
    return pd.read_parquet(out_dir / table / f"{week}.parquet")


def busiest_week(out_dir: Path) -> str:
    """The week with the most critical and high flags (it also has a week before it)."""
    counts = {}
    for path in sorted((out_dir / "anomaly_flags").glob("*.parquet"))[1:]:
        flags = pd.read_parquet(path)
        counts[path.stem] = int(flags["severity"].isin(["critical", "high"]).sum())
    return max(counts, key=counts.get)


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def value(element) -> float:
    """A shown number's unrounded value (its data-v attribute); NaN for an unknown one."""
    raw = element["data-v"]
    return float(raw) if raw != "" else float("nan")


def same(a, b) -> bool:
    """Equal numbers, or both unknown."""
    if pd.isna(a) and pd.isna(b):
        return True
    return float(a) == float(b)
