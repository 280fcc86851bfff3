"""Campaign health buckets: the seed "Strategic Decision System (Campaign Stop / Scale)".

Pure pandas; no Dagster. Rules are checked in this order (first match wins):

1. NEEDS_MORE_DATA / Keep Monitoring when total_leads < 10 or total_spend <= 0 (or unknown)
   or days_active < 3: too little evidence to judge.
2. BAD / Stop / Reallocate when total_leads >= 20 and conversion_rate == 0 and cpl >= P75(cpl).
3. HERO / Scale Up when conversion_rate >= P75(conv) and cpl <= P25(cpl).
4. GOOD / Keep Running when conversion_rate >= P75(conv) and cpl <= P50(cpl).
5. MIXED / Optimize when conversion_rate > 0 and cpl > P50(cpl).
6. otherwise NEEDS_MORE_DATA / Keep Monitoring.

Percentiles come from the benchmark universe: campaigns with total_leads >= 10 and
total_spend > 0 in the same window (pandas ``quantile``, linear interpolation, as the seed).
A comparison with a null (NaN cpl or conversion rate, or an empty universe's percentiles) is
false, exactly as in the seed's pandas code, so such a campaign falls through to rule 6.

A quirk kept on purpose: when no campaign of the universe converted, P75(conv) = 0 and every
campaign satisfies ``conversion_rate >= P75``; a zero-conversion campaign with a low CPL then
becomes HERO or GOOD. That is what the seed does, and the contract asks that a whole-history
window equals the seed; the reason text says "P75 of 0.0%" so a reader can see it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from campaign_pipeline.constants import HEALTH_BUCKETS, RECOMMENDED_ACTIONS

SCOPES = ("platform_wide", "platform", "user_id", "project_name")

ACTION_OF_BUCKET = {
    "HERO": "Scale Up",
    "GOOD": "Keep Running",
    "MIXED": "Optimize (Targeting / Creative / Audience)",
    "BAD": "Stop / Reallocate",
    "NEEDS_MORE_DATA": "Keep Monitoring",
}


@dataclass(frozen=True)
class HealthRules:
    """Thresholds of the seed's decision system; defaults are the seed's final version."""

    min_leads: int = 10  # fewer leads than this: conversion rate and CPL are too noisy to judge
    min_spend: float = 0.0  # spend must be above this: nothing to stop or scale without spend
    min_days_active: int = 3  # a campaign live under three days has not met its audience yet
    bad_min_leads: int = 20  # 20 leads with zero conversions is evidence, not bad luck
    bad_conversion_rate: float = 0.0  # BAD needs exactly this conversion rate (the seed: zero)
    bad_cpl_quantile: float = 0.75  # and a CPL in the most expensive quarter
    hero_conv_quantile: float = 0.75  # HERO/GOOD convert in the top quarter ...
    hero_cpl_quantile: float = 0.25  # ... HERO at a CPL in the cheapest quarter
    good_cpl_quantile: float = 0.50  # ... GOOD at a CPL at or below the median
    mixed_cpl_quantile: float = 0.50  # MIXED converts but pays more than the median CPL
    benchmark_scope: str = "platform_wide"  # or per platform, user_id or project_name

    def __post_init__(self) -> None:
        if self.benchmark_scope not in SCOPES:
            raise ValueError(f"benchmark_scope must be one of {SCOPES}, got {self.benchmark_scope!r}")
        for q in (self.bad_cpl_quantile, self.hero_conv_quantile, self.hero_cpl_quantile,
                  self.good_cpl_quantile, self.mixed_cpl_quantile):
            if not 0 <= q <= 1:
                raise ValueError("quantiles must be in [0, 1]")


def _segment(summary: pd.DataFrame, rules: HealthRules) -> pd.Series:
    if rules.benchmark_scope == "platform_wide":
        return pd.Series("all", index=summary.index)
    return summary[rules.benchmark_scope].astype(str).fillna("")


def _universe_quantile(values: pd.Series, in_universe: pd.Series, segment: pd.Series, q: float) -> pd.Series:
    """Per-segment quantile of ``values`` over the universe, broadcast to every row."""
    masked = values.where(in_universe)
    return masked.groupby(segment).transform(lambda s: s.quantile(q))


def _fmt(values: pd.Series, pattern: str) -> pd.Series:
    """Format numbers for a reason; 'n/a' for null. Always an object Series (even when empty)."""
    return pd.Series([("n/a" if pd.isna(v) else pattern.format(v)) for v in values], index=values.index, dtype=object)


def _fmt_money(values: pd.Series) -> pd.Series:
    return _fmt(values, "{:,.0f}")


def _fmt_pct(values: pd.Series) -> pd.Series:
    return _fmt(values, "{:.1%}")


def _fmt_int(values: pd.Series) -> pd.Series:
    return _fmt(values, "{:,.0f}")


def assign_health(summary: pd.DataFrame, rules: HealthRules = HealthRules()) -> pd.DataFrame:
    """Add health_bucket, recommended_action, reason and the percentiles used."""
    out = summary.copy()
    leads = out["total_leads"].astype("float64")
    spend = out["total_spend"].astype("float64")
    days = out["days_active"].astype("float64")
    conv = out["conversion_rate"].astype("float64")
    cpl = out["cpl"].astype("float64")
    segment = _segment(out, rules)

    in_universe = (leads >= rules.min_leads) & (spend > rules.min_spend)
    out["in_universe"] = in_universe
    out["universe_size"] = in_universe.groupby(segment).transform("sum").astype("int64")
    out["cpl_p25"] = _universe_quantile(cpl, in_universe, segment, rules.hero_cpl_quantile)
    out["cpl_p50"] = _universe_quantile(cpl, in_universe, segment, rules.good_cpl_quantile)
    out["cpl_p75"] = _universe_quantile(cpl, in_universe, segment, rules.bad_cpl_quantile)
    out["conv_p75"] = _universe_quantile(conv, in_universe, segment, rules.hero_conv_quantile)
    mixed_p50 = _universe_quantile(cpl, in_universe, segment, rules.mixed_cpl_quantile)

    too_little = ~((leads >= rules.min_leads) & (spend > rules.min_spend) & (days >= rules.min_days_active))
    bad = (leads >= rules.bad_min_leads) & (conv == rules.bad_conversion_rate) & (cpl >= out["cpl_p75"])
    hero = (conv >= out["conv_p75"]) & (cpl <= out["cpl_p25"])
    good = (conv >= out["conv_p75"]) & (cpl <= out["cpl_p50"])
    mixed = (conv > 0) & (cpl > mixed_p50)
    conditions = [too_little, bad, hero, good, mixed]
    buckets = ["NEEDS_MORE_DATA", "BAD", "HERO", "GOOD", "MIXED"]
    out["health_bucket"] = np.select(conditions, buckets, default="NEEDS_MORE_DATA")
    out["recommended_action"] = out["health_bucket"].map(ACTION_OF_BUCKET)
    rule = np.select(conditions, ["too_little", "bad", "hero", "good", "mixed"], default="fallthrough")
    out["reason"] = _reasons(out, rule, rules, leads, spend, days, conv, cpl)
    return out


def _reasons(out, rule, rules: HealthRules, leads, spend, days, conv, cpl) -> pd.Series:
    """Plain-English reason with the campaign's numbers and the thresholds met or missed."""
    n_leads, converted = _fmt_int(leads), _fmt_int(out["converted_leads"])
    cpl_s, conv_s = _fmt_money(cpl), _fmt_pct(conv)
    p25, p50, p75 = _fmt_money(out["cpl_p25"]), _fmt_money(out["cpl_p50"]), _fmt_money(out["cpl_p75"])
    conv75 = _fmt_pct(out["conv_p75"])
    action = out["recommended_action"].astype(object)

    # what a NEEDS_MORE_DATA campaign lacks, each shortfall with its threshold
    lacks = pd.DataFrame(
        {
            "leads": (n_leads + f" leads (< {rules.min_leads} needed)").where(leads < rules.min_leads, ""),
            "spend": ("spend " + _fmt_money(spend) + f" (must be > {rules.min_spend:g})").where(~(spend > rules.min_spend), ""),
            "days": (_fmt_int(days) + f" active days (< {rules.min_days_active} needed)").where(days < rules.min_days_active, ""),
        },
        index=out.index,
    )
    lacking = lacks.apply(lambda row: "; ".join(p for p in row if p), axis=1) if len(lacks) else pd.Series(dtype=object)

    texts = {
        "too_little": lacking.astype(object) + " -> " + action,
        "bad": n_leads + " leads, 0 converted, CPL " + cpl_s + " at or above the P75 of " + p75 + " -> " + action,
        "hero": "conversion rate " + conv_s + " >= P75 of " + conv75 + " and CPL " + cpl_s + " <= P25 of " + p25 + " -> " + action,
        "good": "conversion rate " + conv_s + " >= P75 of " + conv75 + " and CPL " + cpl_s + " <= P50 of " + p50
        + " (above the P25 of " + p25 + ") -> " + action,
        "mixed": "converting (" + converted + " of " + n_leads + " leads, " + conv_s + ") but CPL " + cpl_s
        + " above the P50 of " + p50 + " -> " + action,
        "fallthrough": n_leads + " leads, " + converted + " converted (" + conv_s + "), CPL " + cpl_s
        + ": no rule met (P75 conversion " + conv75 + ", CPL P25/P50/P75 " + p25 + "/" + p50 + "/" + p75 + ") -> " + action,
    }
    reason = pd.Series("", index=out.index, dtype=object)
    for key, text in texts.items():
        mask = rule == key
        reason[mask] = text[mask]
    return reason


def health_transitions(current: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """from_bucket -> to_bucket per campaign of the current week (from is null for new ones)."""
    prev = (
        previous[["campaign_id", "health_bucket"]].rename(columns={"health_bucket": "from_bucket"})
        if previous is not None and len(previous)
        else pd.DataFrame({"campaign_id": pd.Series(dtype=object), "from_bucket": pd.Series(dtype=object)})
    )
    out = current[["campaign_id", "health_bucket"]].rename(columns={"health_bucket": "to_bucket"}).merge(
        prev, on="campaign_id", how="left"
    )
    out["from_bucket"] = out["from_bucket"].astype(object).where(out["from_bucket"].notna(), None)
    out["changed"] = out["from_bucket"].ne(out["to_bucket"]) & out["from_bucket"].notna()
    return out[["campaign_id", "from_bucket", "to_bucket", "changed"]]


def newly_bad_or_hero(transitions: pd.DataFrame) -> pd.DataFrame:
    """Campaigns that became BAD or HERO this week (new campaigns included)."""
    became = transitions["to_bucket"].isin(["BAD", "HERO"]) & transitions["from_bucket"].ne(transitions["to_bucket"])
    return transitions[became].reset_index(drop=True)


def action_summary(health: pd.DataFrame) -> pd.DataFrame:
    """The seed's action summary: campaigns and spend per recommended action, all five listed."""
    spend = health["total_spend"].astype("float64").fillna(0.0)
    grouped = health.assign(_spend=spend).groupby("recommended_action").agg(
        n_campaigns=("campaign_id", "count"),
        total_spend=("_spend", "sum"),
        total_leads=("total_leads", "sum"),
        converted_leads=("converted_leads", "sum"),
    )
    grouped = grouped.reindex(list(RECOMMENDED_ACTIONS)).fillna(0)
    total = grouped["total_spend"].sum()
    grouped["share_of_spend"] = grouped["total_spend"] / total if total > 0 else np.nan
    grouped["health_bucket"] = [next(b for b, a in ACTION_OF_BUCKET.items() if a == action) for action in grouped.index]
    grouped = grouped.reset_index().rename(columns={"index": "recommended_action"})
    grouped = grouped.astype({"n_campaigns": "int64"})
    return grouped[["recommended_action", "health_bucket", "n_campaigns", "total_spend", "share_of_spend", "total_leads", "converted_leads"]]


assert set(ACTION_OF_BUCKET) == set(HEALTH_BUCKETS) and set(ACTION_OF_BUCKET.values()) == set(RECOMMENDED_ACTIONS)
