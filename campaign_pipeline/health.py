"""Campaign health buckets: the seed "Strategic Decision System (Campaign Stop / Scale)".

Pure pandas/numpy; no Dagster. Rules are checked in this order (first match wins):

1. NEEDS_MORE_DATA / Keep Monitoring when total_leads < 10 or total_spend <= 0 (or unknown)
   or days_active < 3: too little evidence to judge.
2. BAD / Stop / Reallocate when total_leads >= 20 and conversion_rate == 0 and cpl >= P75(cpl).
3. HERO / Scale Up when conversion_rate >= P75(conv) and cpl <= P25(cpl).
4. GOOD / Keep Running when conversion_rate >= P75(conv) and cpl <= P50(cpl).
5. MIXED / Optimize when conversion_rate > 0 and cpl > P50(cpl).
6. otherwise NEEDS_MORE_DATA / Keep Monitoring.

Percentiles come from the benchmark universe: campaigns with total_leads >= 10 and
total_spend > 0 in the same window, computed exactly as the seed's pandas ``quantile``
(linear interpolation) did, so a window holding the whole history reproduces the seed.

Nulls. A comparison with a null is false, as in the seed's pandas code: a NaN cpl (no leads,
or no spend reported) or NaN conversion rate never meets rules 2-5, and an empty universe has
NaN percentiles, so everyone falls through to rule 6. An unknown lead count, spend or number of
active days fails rule 1 (unknown is not evidence).

A quirk kept on purpose: when at least three quarters of the universe converted nothing,
P75(conv) = 0 and ``conversion_rate >= P75`` holds for every campaign with a known rate; a
zero-conversion campaign with a low CPL then becomes HERO or GOOD. The seed does exactly this
and a whole-history window must equal the seed, so it stays; the reason of such a campaign says
so in words, so nobody scales a campaign without reading why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from campaign_pipeline.constants import HEALTH_BUCKETS, RECOMMENDED_ACTIONS

SCOPES: tuple[str, ...] = ("platform_wide", "platform", "user_id", "project_name")

ACTION_OF_BUCKET: dict[str, str] = {
    "HERO": "Scale Up",
    "GOOD": "Keep Running",
    "MIXED": "Optimize (Targeting / Creative / Audience)",
    "BAD": "Stop / Reallocate",
    "NEEDS_MORE_DATA": "Keep Monitoring",
}
BUCKET_OF_ACTION: dict[str, str] = {action: bucket for bucket, action in ACTION_OF_BUCKET.items()}

REQUIRED_COLUMNS: tuple[str, ...] = (
    "campaign_id",
    "total_spend",
    "total_leads",
    "converted_leads",
    "conversion_rate",
    "cpl",
    "days_active",
)


@dataclass(frozen=True)
class HealthRules:
    """Thresholds of the seed's decision system; every default is the seed's final version.

    The benchmark universe uses the same lead and spend floors as rule 1, so moving a floor
    moves the campaigns that are judged and the campaigns they are compared with together.
    The output columns cpl_p25 / cpl_p50 / cpl_p75 / conv_p75 are named after the seed's levels
    and hold whatever levels are configured here.
    """

    min_leads: int = 10  # fewer leads than this: conversion rate and CPL are too noisy to judge
    min_spend: float = (
        0.0  # spend must be strictly above this: nothing to stop or scale without spend
    )
    min_days_active: int = 3  # live under three days: the campaign has not met its audience yet
    bad_min_leads: int = 20  # 20 leads with no conversion is evidence, not bad luck
    bad_max_conversion_rate: float = (
        0.0  # BAD needs a rate <= this; the seed's "== 0" (rates are >= 0)
    )
    bad_cpl_quantile: float = 0.75  # ... and a CPL in the most expensive quarter of the universe
    top_conversion_quantile: float = 0.75  # HERO and GOOD convert in the top quarter
    hero_cpl_quantile: float = 0.25  # HERO also buys leads in the cheapest quarter
    median_cpl_quantile: float = (
        0.50  # GOOD at or below it, MIXED above: one cut, so no gap or overlap
    )
    mixed_min_conversion_rate: float = 0.0  # MIXED needs a rate above this: "converts at all"
    benchmark_scope: str = (
        "platform_wide"  # compare with everyone, or within platform / user_id / project_name
    )

    def __post_init__(self) -> None:
        if self.benchmark_scope not in SCOPES:
            raise ValueError(
                f"benchmark_scope must be one of {SCOPES}, got {self.benchmark_scope!r}"
            )
        for name in (
            "bad_cpl_quantile",
            "top_conversion_quantile",
            "hero_cpl_quantile",
            "median_cpl_quantile",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        for name in ("min_leads", "min_days_active", "bad_min_leads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")


# --- percentiles ------------------------------------------------------------------------------


def _segment_codes(
    summary: pd.DataFrame, rules: HealthRules, by: str | None = None
) -> tuple[np.ndarray, int]:
    """Integer segment per row; a missing segment value is a segment of its own. With ``by``
    (e.g. ``week_start``) each value of that column is judged apart."""
    if rules.benchmark_scope == "platform_wide":
        codes, n = np.zeros(len(summary), dtype=np.intp), 1
    elif rules.benchmark_scope not in summary.columns:
        raise ValueError(
            f"benchmark_scope {rules.benchmark_scope!r} needs a {rules.benchmark_scope!r} column"
        )
    else:
        codes, uniques = pd.factorize(summary[rules.benchmark_scope], use_na_sentinel=False)
        codes, n = codes.astype(np.intp), len(uniques)
    if by is None:
        return codes, n
    groups, _ = pd.factorize(summary[by], use_na_sentinel=False)
    combined, codes = np.unique(groups.astype(np.intp) * n + codes, return_inverse=True)
    return codes.astype(np.intp).ravel(), len(combined)


def _segment_quantiles(
    values: np.ndarray,
    member: np.ndarray,
    codes: np.ndarray,
    n_segments: int,
    levels: dict[str, float],
) -> dict[str, np.ndarray]:
    """Per-segment linear quantiles of ``values`` over the members, broadcast to every row.

    One sort for all segments instead of a quantile call per segment. The arithmetic copies
    what ``Series.quantile`` runs (pandas hands numpy ``q * 100`` and numpy divides by 100;
    index ``(n - 1) * q``; numpy's two-sided lerp), so a campaign sitting exactly on a
    percentile compares the same way as in the seed, bit for bit. A segment without members
    gets NaN. NaN values are skipped, as pandas does.
    """
    keep = member & ~np.isnan(values)
    kept_values, kept_codes = values[keep], codes[keep]
    if len(kept_values) == 0:
        return {name: np.full(len(codes), np.nan) for name in levels}
    ordered = kept_values[np.lexsort((kept_values, kept_codes))]
    sizes = np.bincount(kept_codes, minlength=n_segments)
    starts = np.cumsum(sizes) - sizes
    last = np.maximum(sizes - 1, 0)  # 0 for an empty segment, whose result is masked below
    result = {}
    for name, level in levels.items():
        q = np.true_divide(level * 100.0, 100)
        virtual = last * q
        below = np.floor(virtual)
        gamma = virtual - below
        below_index = below.astype(np.intp)
        lo = ordered[np.minimum(starts + below_index, len(ordered) - 1)]
        hi = ordered[np.minimum(starts + np.minimum(below_index + 1, last), len(ordered) - 1)]
        diff = hi - lo
        per_segment = np.where(gamma >= 0.5, hi - diff * (1 - gamma), lo + diff * gamma)
        per_segment[sizes == 0] = np.nan
        result[name] = per_segment[codes]
    return result


# --- number formatting for reasons (vectorized) ---------------------------------------------


def _each_distinct(format_values):
    """Format each distinct value once and broadcast: percentiles repeat per segment and
    counts repeat a lot, so this is most of the speed of the reasons on large windows."""

    def formatted(values: pd.Series) -> pd.Series:
        codes, distinct = pd.factorize(values.astype("float64"), use_na_sentinel=False)
        text = format_values(np.asarray(distinct, dtype="float64"))
        return pd.Series(text[codes] if len(codes) else [], index=values.index, dtype=object)

    formatted.__doc__ = format_values.__doc__
    return formatted


def _with_commas(whole: np.ndarray) -> pd.Series:
    """Non-negative whole numbers as text, thousands separated ("1,433")."""
    text = pd.Series(whole.astype(np.int64).astype(str), dtype=object)
    large = whole >= 1000
    if large.any():
        text[large] = text[large].str.replace(r"\B(?=(\d{3})+(?!\d))", ",", regex=True)
    return text


def _minus(v: np.ndarray, shown_nonzero: np.ndarray) -> pd.Series:
    return pd.Series(np.where((v < 0) & shown_nonzero, "-", ""), dtype=object)


@_each_distinct
def _fmt_amount(v: np.ndarray) -> np.ndarray:
    """Money-like amounts: whole units from 100 up ("CPL 1,433"), up to two decimals below 100
    so a CPL of 17.5 does not read as equal to a P25 of 18; "unknown" for NaN."""
    known = np.isfinite(v) & (np.abs(v) < 1e15)  # int64-safe; real amounts are far below
    magnitude = np.where(known, np.abs(v), 0.0)
    cents = np.rint(magnitude * 100)
    small = cents < 10_000
    whole = np.where(small, cents // 100, np.rint(magnitude))
    decimals = (
        pd.Series(np.where(small, cents % 100, 0).astype(np.int64).astype(str), dtype=object)
        .str.zfill(2)
        .str.rstrip("0")
    )
    has_decimals = (decimals != "").to_numpy()
    text = (
        _minus(v, (whole > 0) | has_decimals)
        + _with_commas(whole)
        + ("." + decimals).where(has_decimals, "")
    )
    text = text.where(known, "unknown").to_numpy(dtype=object)
    huge = np.isfinite(v) & ~known
    text[huge] = [f"{x:,.0f}" for x in v[huge]]  # never on real data; exact rather than clipped
    return text


@_each_distinct
def _fmt_percent(v: np.ndarray) -> np.ndarray:
    """A rate as a percentage with one decimal ("12.5%"); "unknown" for NaN."""
    known = np.isfinite(v) & (np.abs(v) < 1e12)
    tenths = np.rint(np.where(known, np.abs(v), 0.0) * 1000)
    text = (
        _minus(v, tenths > 0)
        + _with_commas(tenths // 10)
        + "."
        + pd.Series((tenths % 10).astype(np.int64).astype(str), dtype=object)
        + "%"
    )
    return text.where(known, "unknown").to_numpy(dtype=object)


def distinct_texts(kind: str, numbers: list[float], texts: list[str]) -> list[str]:
    """``texts`` of a number and the thresholds it is compared with (``numbers``, NaN when
    unknown; ``kind`` "percent" or "amount"), with more decimals for all the known ones when
    the number and a different threshold read alike ("14.9% below the P75 of 14.9%"). Used by
    the reasons here and by the report's campaign cards, each in its own usual format."""

    def alike(shown: list[str]) -> bool:
        first = numbers[0]
        return math.isfinite(first) and any(
            math.isfinite(x) and x != first and t == shown[0]
            for x, t in zip(numbers[1:], shown[1:], strict=True)
        )

    decimals = 2
    while alike(texts) and decimals < 10:
        texts = [
            text
            if not math.isfinite(x)
            else (f"{100 * x:,.{decimals}f}%" if kind == "percent" else f"{x:,.{decimals}f}")
            for x, text in zip(numbers, texts, strict=True)
        ]
        decimals += 1
    return texts


def _apart(kind: str, value: pd.Series, *thresholds: pd.Series) -> list[pd.Series]:
    """Texts of a number and of the thresholds it is compared with, each in its usual rounding,
    told apart where they would read alike (`distinct_texts`, on those few rows only)."""
    fmt = _fmt_percent if kind == "percent" else _fmt_amount
    texts = [fmt(s) for s in (value, *thresholds)]
    alike = np.zeros(len(value), dtype=bool)
    for threshold, text in zip(thresholds, texts[1:], strict=True):
        differ = (threshold != value) & np.isfinite(threshold) & np.isfinite(value)
        alike |= ((text == texts[0]) & differ).to_numpy(dtype=bool)
    for row in np.flatnonzero(alike):  # rare: a few rows of a year
        numbers = [float(s.iloc[row]) for s in (value, *thresholds)]
        shown = distinct_texts(kind, numbers, [text.iloc[row] for text in texts])
        for text, one in zip(texts, shown, strict=True):
            text.iloc[row] = one
    return texts


@_each_distinct
def _fmt_count(v: np.ndarray) -> np.ndarray:
    """A count as a whole number ("1,250"); "unknown" for NaN."""
    known = np.isfinite(v) & (np.abs(v) < 1e15)
    whole = np.rint(np.where(known, np.abs(v), 0.0))
    return (
        (_minus(v, whole > 0) + _with_commas(whole)).where(known, "unknown").to_numpy(dtype=object)
    )


def _fmt_scalar(formatter, value: float) -> str:
    return formatter(pd.Series([value], dtype="float64")).iloc[0]


def _level_name(level: float) -> str:
    return f"P{level * 100:g}"


# --- buckets ----------------------------------------------------------------------------------

_RULE_NAMES = ("too_little", "bad", "hero", "good", "mixed")


def assign_health(
    summary: pd.DataFrame, rules: HealthRules = HealthRules(), by: str | None = None
) -> pd.DataFrame:
    """Bucket every campaign of one window's summary, with its action and a reason.

    Adds health_bucket, recommended_action, reason, the percentiles each campaign was compared
    with (cpl_p25, cpl_p50, cpl_p75, conv_p75: per benchmark segment), universe_size (campaigns in
    that segment's universe) and in_universe. Input columns are kept; the input is not modified.
    ``by``: a column telling several windows apart (``week_start`` in
    `metrics.trailing_period_summaries`); each is judged as one call per window would be.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in summary.columns]
    if missing:
        raise ValueError(f"summary lacks columns {missing}")
    numbers = pd.DataFrame(
        {
            name: summary[column].to_numpy(dtype="float64", na_value=np.nan)
            for name, column in (
                ("leads", "total_leads"),
                ("converted", "converted_leads"),
                ("spend", "total_spend"),
                ("days", "days_active"),
                ("conv", "conversion_rate"),
                ("cpl", "cpl"),
            )
        }
    )
    leads, spend, days, conv, cpl = (
        numbers[c].to_numpy() for c in ("leads", "spend", "days", "conv", "cpl")
    )

    with np.errstate(invalid="ignore"):
        in_universe = (leads >= rules.min_leads) & (spend > rules.min_spend)
        codes, n_segments = _segment_codes(summary, rules, by)
        levels = {
            "p25": rules.hero_cpl_quantile,
            "p50": rules.median_cpl_quantile,
            "p75": rules.bad_cpl_quantile,
        }
        numbers = numbers.assign(
            **_segment_quantiles(cpl, in_universe, codes, n_segments, levels),
            **_segment_quantiles(
                conv, in_universe, codes, n_segments, {"c75": rules.top_conversion_quantile}
            ),
        )
        p25, p50, p75, c75 = (numbers[c].to_numpy() for c in ("p25", "p50", "p75", "c75"))

        enough_data = in_universe & (days >= rules.min_days_active)
        is_bad = (
            (leads >= rules.bad_min_leads) & (conv <= rules.bad_max_conversion_rate) & (cpl >= p75)
        )
        top_converter = conv >= c75
        is_hero = top_converter & (cpl <= p25)
        is_good = top_converter & (cpl <= p50)
        is_mixed = (conv > rules.mixed_min_conversion_rate) & (cpl > p50)

    rule_masks = [~enough_data, is_bad, is_hero, is_good, is_mixed]
    bucket = np.select(
        rule_masks, ["NEEDS_MORE_DATA", "BAD", "HERO", "GOOD", "MIXED"], default="NEEDS_MORE_DATA"
    )
    rule = np.select(rule_masks, list(_RULE_NAMES), default="no_rule")
    action = pd.Series(bucket, dtype=object).map(ACTION_OF_BUCKET).to_numpy(dtype=object)

    out = summary.copy()
    out["in_universe"] = in_universe
    out["universe_size"] = np.bincount(codes[in_universe], minlength=n_segments)[codes].astype(
        "int64"
    )
    out["cpl_p25"], out["cpl_p50"], out["cpl_p75"], out["conv_p75"] = p25, p50, p75, c75
    out["health_bucket"] = pd.Series(bucket, index=out.index, dtype=object)
    out["recommended_action"] = pd.Series(action, index=out.index, dtype=object)
    out["reason"] = pd.Series(_reasons(numbers, rule, action, rules), index=out.index, dtype=object)
    return out


def _reasons(
    numbers: pd.DataFrame, rule: np.ndarray, action: np.ndarray, rules: HealthRules
) -> np.ndarray:
    """Plain-English reason per campaign: its own numbers, the thresholds met or missed, the action.

    Each rule's text is built once, with Series string operations, for the campaigns that rule
    decided: a loop over six rules, never over campaigns.
    """
    reason = np.full(len(rule), "", dtype=object)
    for key, build in _REASON_OF_RULE.items():
        rows = rule == key
        if rows.any():
            reason[rows] = (build(numbers[rows], rules) + " -> " + action[rows]).to_numpy(
                dtype=object
            )
    return reason


def _too_little_reason(n: pd.DataFrame, rules: HealthRules) -> pd.Series:
    """Every shortfall, each with its threshold ("6 leads (< 10 needed)")."""
    with np.errstate(invalid="ignore"):
        pieces = [
            (
                _fmt_count(n["leads"]) + f" leads (< {rules.min_leads} needed); ",
                ~(n["leads"] >= rules.min_leads),
            ),
            (
                "spend "
                + _fmt_amount(n["spend"])
                + f" (must be > {_fmt_scalar(_fmt_amount, rules.min_spend)}); ",
                ~(n["spend"] > rules.min_spend),
            ),
            (
                _fmt_count(n["days"]) + f" active days (< {rules.min_days_active} needed); ",
                ~(n["days"] >= rules.min_days_active),
            ),
        ]
    text = pd.Series("", index=n.index, dtype=object)
    for piece, short in pieces:
        text = text + piece.where(short, "")
    return text.str[:-2]


def _bad_reason(n: pd.DataFrame, rules: HealthRules) -> pd.Series:
    relation = pd.Series(
        np.where(n["cpl"] > n["p75"], " above the ", " at the "), index=n.index, dtype=object
    )
    cpl, p75 = _apart("amount", n["cpl"], n["p75"])
    return (
        _fmt_count(n["leads"])
        + " leads, "
        + _fmt_count(n["converted"])
        + " converted, CPL "
        + cpl
        + relation
        + _level_name(rules.bad_cpl_quantile)
        + " of "
        + p75
    )


def _top_converter_reason(
    n: pd.DataFrame, rules: HealthRules, cpl_column: str, cpl_level: float
) -> tuple[pd.Series, pd.Series]:
    """HERO/GOOD text and a note: a campaign that converted nothing says why it cleared the bar."""
    top = _level_name(rules.top_conversion_quantile)
    note = pd.Series(
        np.where(
            n["conv"] <= 0,
            f" (no conversions: it clears the {top} only because that is 0%, the seed's rule)",
            "",
        ),
        index=n.index,
        dtype=object,
    )
    conv, c75 = _apart("percent", n["conv"], n["c75"])
    cpl, limit = _apart("amount", n["cpl"], n[cpl_column])
    return (
        "conversion rate "
        + conv
        + " >= "
        + top
        + " of "
        + c75
        + " and CPL "
        + cpl
        + " <= "
        + _level_name(cpl_level)
        + " of "
        + limit,
        note,
    )


def _hero_reason(n: pd.DataFrame, rules: HealthRules) -> pd.Series:
    text, note = _top_converter_reason(n, rules, "p25", rules.hero_cpl_quantile)
    return text + note


def _good_reason(n: pd.DataFrame, rules: HealthRules) -> pd.Series:
    text, note = _top_converter_reason(n, rules, "p50", rules.median_cpl_quantile)
    return (
        text
        + " (above the "
        + _level_name(rules.hero_cpl_quantile)
        + " of "
        + _apart("amount", n["cpl"], n["p25"])[1]
        + ")"
        + note
    )


def _mixed_reason(n: pd.DataFrame, rules: HealthRules) -> pd.Series:
    cpl, p50 = _apart("amount", n["cpl"], n["p50"])
    return (
        "converting ("
        + _fmt_count(n["converted"])
        + " of "
        + _fmt_count(n["leads"])
        + " leads, "
        + _fmt_percent(n["conv"])
        + ") but CPL "
        + cpl
        + " above the "
        + _level_name(rules.median_cpl_quantile)
        + " of "
        + p50
    )


def _no_rule_reason(n: pd.DataFrame, rules: HealthRules) -> pd.Series:
    """Judged but no rule fired: the first condition each of BAD, HERO/GOOD and MIXED missed."""
    leads, conv, cpl, p50, p75, c75 = (
        n[c].to_numpy() for c in ("leads", "conv", "cpl", "p50", "p75", "c75")
    )
    unknown = "CPL, conversion rate or benchmark unknown"
    cpl_s, p75_s, p50_s = _apart("amount", n["cpl"], n["p75"], n["p50"])
    conv_s, c75_s = _apart("percent", n["conv"], n["c75"])
    with np.errstate(invalid="ignore"):
        missing = np.isnan(cpl) | np.isnan(conv) | np.isnan(p50)
        not_bad = _first(
            n.index,
            [
                (leads < rules.bad_min_leads, f"needs >= {rules.bad_min_leads} leads"),
                (missing | np.isnan(p75), unknown),
                (
                    ~(conv <= rules.bad_max_conversion_rate),
                    "converting"
                    if rules.bad_max_conversion_rate == 0
                    else "conversion rate above "
                    f"{_fmt_scalar(_fmt_percent, rules.bad_max_conversion_rate)}",
                ),
                (
                    ~(cpl >= p75),
                    "CPL below the " + _level_name(rules.bad_cpl_quantile) + " of " + p75_s,
                ),
            ],
        )
        not_top = _first(
            n.index,
            [
                (missing | np.isnan(c75), unknown),
                (
                    ~(conv >= c75),
                    "conversion rate below the "
                    + _level_name(rules.top_conversion_quantile)
                    + " of "
                    + c75_s,
                ),
                (
                    ~(cpl <= p50),
                    "CPL above the " + _level_name(rules.median_cpl_quantile) + " of " + p50_s,
                ),
            ],
        )
        not_mixed = _first(
            n.index,
            [
                (missing, unknown),
                (
                    ~(conv > rules.mixed_min_conversion_rate),
                    "no conversions"
                    if rules.mixed_min_conversion_rate == 0
                    else "conversion rate not above "
                    f"{_fmt_scalar(_fmt_percent, rules.mixed_min_conversion_rate)}",
                ),
                (
                    ~(cpl > p50),
                    "CPL at or below the "
                    + _level_name(rules.median_cpl_quantile)
                    + " of "
                    + p50_s,
                ),
            ],
        )
    return (
        _fmt_count(n["leads"])
        + " leads, "
        + _fmt_count(n["converted"])
        + " converted ("
        + conv_s
        + "), CPL "
        + cpl_s
        + ": not BAD ("
        + not_bad
        + "), not HERO/GOOD ("
        + not_top
        + "), not MIXED ("
        + not_mixed
        + ")"
    )


def _first(index: pd.Index, cases: list[tuple[np.ndarray, str | pd.Series]]) -> pd.Series:
    """The text of the first true condition per row ("" when none): np.select over text."""
    choices = [np.broadcast_to(np.asarray(text, dtype=object), (len(index),)) for _, text in cases]
    return pd.Series(
        np.select([np.asarray(c, dtype=bool) for c, _ in cases], choices, default=""),
        index=index,
        dtype=object,
    )


_REASON_OF_RULE = {
    "too_little": _too_little_reason,
    "bad": _bad_reason,
    "hero": _hero_reason,
    "good": _good_reason,
    "mixed": _mixed_reason,
    "no_rule": _no_rule_reason,
}


# --- week over week and portfolio -------------------------------------------------------------


def health_transitions(current: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """from_bucket -> to_bucket for every campaign judged this week.

    A campaign absent last week is new: from_bucket None, is_new True and changed False (it has
    no earlier bucket to change from). Campaigns judged last week but not this one are left out:
    they have nothing to act on this week.
    """
    for name, frame in (("current", current), ("previous", previous)):
        if frame is not None and frame["campaign_id"].duplicated().any():
            raise ValueError(f"{name} has more than one row for a campaign")
    prev = (
        previous[["campaign_id", "health_bucket"]].rename(columns={"health_bucket": "from_bucket"})
        if previous is not None
        else pd.DataFrame(
            {"campaign_id": pd.Series(dtype=object), "from_bucket": pd.Series(dtype=object)}
        )
    )
    out = (
        current[["campaign_id", "health_bucket"]]
        .rename(columns={"health_bucket": "to_bucket"})
        .merge(prev, on="campaign_id", how="left")
    )
    is_new = out["from_bucket"].isna()
    out["from_bucket"] = out["from_bucket"].astype(object).where(~is_new, None)
    out["is_new"] = is_new.to_numpy()
    out["changed"] = (~is_new & out["from_bucket"].ne(out["to_bucket"])).to_numpy()
    return out[["campaign_id", "from_bucket", "to_bucket", "changed", "is_new"]]


def weekly_transitions(current: pd.DataFrame, judged: pd.DataFrame) -> pd.DataFrame:
    """`health_transitions` of every campaign-week of ``current`` (weeks told apart by
    ``week_start``) against the campaign's bucket in the calendar week before, looked up in
    ``judged`` (which holds those weeks): all weeks of a run at once, with ``week_start``."""
    keys = ["week_start", "campaign_id"]
    for name, frame in (("current", current), ("judged", judged)):
        if frame.duplicated(keys).any():
            raise ValueError(f"{name} has more than one row for a campaign and week")
    previous = judged[[*keys, "health_bucket"]].rename(columns={"health_bucket": "from_bucket"})
    previous = previous.assign(week_start=previous["week_start"] + pd.Timedelta(days=7))
    out = (
        current[[*keys, "health_bucket"]]
        .rename(columns={"health_bucket": "to_bucket"})
        .merge(previous, on=keys, how="left")
    )
    is_new = out["from_bucket"].isna()
    out["from_bucket"] = out["from_bucket"].astype(object).where(~is_new, None)
    out["is_new"] = is_new.to_numpy()
    out["changed"] = (~is_new & out["from_bucket"].ne(out["to_bucket"])).to_numpy()
    return out[[*keys, "from_bucket", "to_bucket", "changed", "is_new"]]


def newly_bad_or_hero(transitions: pd.DataFrame) -> pd.DataFrame:
    """Campaigns that became BAD or HERO this week: changed into it, or new and already in it."""
    became = transitions["to_bucket"].isin(["BAD", "HERO"]) & transitions["from_bucket"].ne(
        transitions["to_bucket"]
    )
    return transitions[became].reset_index(drop=True)


def action_summary(health: pd.DataFrame) -> pd.DataFrame:
    """The seed's action summary: campaigns, spend and leads per recommended action.

    All five actions in the contract's order, zeros where no campaign got one. total_spend is
    the reported spend (unknown spend adds nothing; n_spend_unknown says how many campaigns had
    none), null when none of the action's campaigns reported any, as a period's sum is null when
    nothing was reported (not 0, which would read as campaigns that spent nothing);
    share_of_spend is null there too, and everywhere when the whole portfolio reported no spend.
    """
    frame = health.assign(
        _spend=health["total_spend"].astype("float64"),
        _unknown=health["total_spend"].isna(),
    )
    grouped = frame.groupby("recommended_action").agg(
        n_campaigns=("campaign_id", "size"),
        total_spend=("_spend", "sum"),
        n_spend_unknown=("_unknown", "sum"),
        total_leads=("total_leads", "sum"),
        converted_leads=("converted_leads", "sum"),
    )
    unexpected = set(grouped.index) - set(RECOMMENDED_ACTIONS)
    if unexpected:
        raise ValueError(f"unknown recommended actions {sorted(unexpected)}")
    grouped = grouped.reindex(list(RECOMMENDED_ACTIONS), fill_value=0)
    grouped.index.name = "recommended_action"
    nothing_reported = (grouped["n_campaigns"] > 0) & (
        grouped["n_spend_unknown"] == grouped["n_campaigns"]
    )
    grouped["total_spend"] = grouped["total_spend"].mask(nothing_reported)
    total = grouped["total_spend"].sum()
    grouped["share_of_spend"] = grouped["total_spend"] / total if total > 0 else np.nan
    grouped = grouped.reset_index()
    grouped["health_bucket"] = grouped["recommended_action"].map(BUCKET_OF_ACTION)
    grouped = grouped.astype(
        {
            "n_campaigns": "int64",
            "n_spend_unknown": "int64",
            "total_spend": "float64",
            "total_leads": "int64",
            "converted_leads": "int64",
            "share_of_spend": "float64",
        }
    )
    return grouped[
        [
            "recommended_action",
            "health_bucket",
            "n_campaigns",
            "total_spend",
            "share_of_spend",
            "n_spend_unknown",
            "total_leads",
            "converted_leads",
        ]
    ]


assert set(ACTION_OF_BUCKET) == set(HEALTH_BUCKETS) and set(ACTION_OF_BUCKET.values()) == set(
    RECOMMENDED_ACTIONS
)
