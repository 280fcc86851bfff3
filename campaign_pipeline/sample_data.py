"""Deterministic synthetic Leadsmart exports, with optional labelled anomalies and defects.

Why synthetic: the pipeline must run from a fresh clone, and the detector must be measured
against anomalies whose location is known. The shape follows what real lead-gen accounts look
like: platforms with their own CPM/CTR/conversion/CPL levels, per-campaign log-normal levels
(heavy tails: a few campaigns spend most of the money), weekday/weekend effects, counts drawn
as counts (Poisson impressions, binomial clicks and conversions with day-level rate noise, so
clicks are over-dispersed like a negative binomial), short campaigns, ad-set parts, and most
campaigns never converting a lead (the seed data's median conversion rate was 0).

Everything is drawn from one ``numpy.random.Generator`` in a fixed order, so the same
arguments give byte-identical files. Campaign-days, leads and status changes are flat arrays
(no loop per campaign or per row); only the handful of injected anomalies and defects are
applied one by one.

    python -m campaign_pipeline.sample_data --out DIR [--seed 7] [--campaigns 200] [--days 120]
        [--anomalies] [--defects] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from campaign_pipeline.constants import CONVERTED_STATUSES, RAW_FILES

ANOMALY_KINDS: tuple[str, ...] = (
    "spend_spike",
    "delivery_outage",
    "cpc_spike",
    "ctr_drift",
    "tracking_break",
    "conversion_inflation",
    "lead_flood",
    "level_shift",
)
DEFECT_KINDS: tuple[str, ...] = (
    "unparseable_date",
    "negative_spend",
    "clicks_gt_impressions",
    "conversions_gt_clicks",
    "unknown_campaign",
    "missing_key",
    "conflicting_duplicate_campaign",
    "blank_numeric",
    "exact_duplicate",
    "bom_header",
    "header_whitespace",
)
LABEL_COLUMNS = ["campaign_id", "kind", "start_date", "end_date", "metric", "description"]
DEFECT_COLUMNS = ["file", "row_key", "kind"]


@dataclass(frozen=True)
class PlatformProfile:
    """Typical account levels; a campaign's own level is drawn log-normally around them."""

    share: float  # share of campaigns on this platform
    cpm: float  # cost per 1,000 impressions
    ctr: float  # clicks per impression
    conversion_rate: float  # platform-reported conversions per click
    lead_rate: float  # lead forms per click; CPL = CPM / 1000 / CTR / lead_rate
    weekend_factor: float  # weekend delivery vs weekdays (B2B audiences go quiet at weekends)


# Base CPLs: Facebook ~$44, Google ~$57, LinkedIn ~$160, TikTok ~$68 (public lead-gen benchmarks).
PLATFORMS: dict[str, PlatformProfile] = {
    "Facebook": PlatformProfile(0.36, 9.0, 0.012, 0.05, 0.017, 1.10),
    "Google Ads": PlatformProfile(0.25, 24.0, 0.035, 0.06, 0.012, 0.80),
    "LinkedIn": PlatformProfile(0.13, 34.0, 0.006, 0.04, 0.035, 0.55),
    "TikTok": PlatformProfile(0.14, 6.0, 0.008, 0.02, 0.011, 1.20),
    "Snapchat": PlatformProfile(0.05, 5.0, 0.007, 0.015, 0.009, 1.15),
    "Pinterest": PlatformProfile(0.04, 4.0, 0.005, 0.02, 0.010, 1.15),
    "Microsoft Ads": PlatformProfile(0.03, 15.0, 0.030, 0.05, 0.008, 0.85),
}
OPEN_STATUSES: tuple[str, ...] = ("NEW", "CONTACTED", "NO_ANSWER", "NOT_INTERESTED", "JUNK")
WON_STATUSES: tuple[str, ...] = ("DONE_DEAL", "ALREADY_BOUGHT")  # the statuses that carry revenue
# statuses a sales team records before the deal is won; a won lead may pass through one first
INTERMEDIATE_CONVERTED: tuple[str, ...] = ("QUALIFIED", "MEETING_DONE")
FIRST_NAMES = (
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Elif",
    "Femi",
    "Gus",
    "Hana",
    "Ivan",
    "Jin",
    "Kofi",
    "Lena",
    "Mo",
    "Nia",
    "Omar",
    "Pia",
    "Quinn",
    "Rosa",
    "Sam",
    "Tomas",
    "Uma",
    "Vera",
    "Wen",
    "Yusuf",
)
LAST_NAMES = (
    "Silva",
    "Okafor",
    "Novak",
    "Kim",
    "Haddad",
    "Berg",
    "Rossi",
    "Tanaka",
    "Diaz",
    "Wolf",
    "Sato",
    "Ali",
    "Moreau",
    "Kowalski",
    "Nguyen",
    "Schmidt",
    "Costa",
    "Larsen",
)


@dataclass(frozen=True)
class GeneratorSettings:
    """Shape knobs. The defaults give the committed sample."""

    noise: float = 1.0  # multiplies the log-sd of day-to-day spend, delivery and CTR noise
    # Log-sd of a per-campaign multiplier of that noise (0 = every campaign equally noisy):
    # real campaigns differ in how much they swing, and a detector that pools noise estimates
    # across campaigns must be measured where they do. Drawn from its own stream, so 0 leaves
    # every other draw (and the committed sample) unchanged. The multiplier is clipped to
    # [0.5, 2]: a campaign five times as noisy as the rest would spend 3x its daily budget on
    # ordinary days, which the platforms do not allow (Google caps a day at 2x).
    noise_spread: float = 0.0
    zero_conversion_share: float = (
        0.55  # campaigns whose leads never convert (seed data: median rate 0)
    )
    no_lead_share: float = (
        0.08  # campaigns that spend but collect no leads (broken or no lead form)
    )
    leads_without_spend_share: float = (
        0.03  # campaigns with leads but no insights rows (delivery not exported)
    )
    short_campaign_share: float = 0.2  # campaigns that run 2-10 days (tests, aborted launches)
    parts_share: float = 0.3  # campaigns whose days come as 2-3 ad-set parts to be summed
    blank_platform_share: float = (
        0.02  # campaigns.csv rows with an empty platform cell (ingestion: "Unknown")
    )
    history_share: float = (
        0.85  # contacted leads whose status changes were exported (the rest have none)
    )
    anomaly_share: float = 0.12  # share of eligible campaigns given one anomaly when anomalies=True
    anomaly_min_history: int = (
        21  # days of normal delivery before an anomaly (a detector needs a baseline)
    )
    anomaly_magnitude: float = 1.0  # scales every injected effect (1 = clearly visible, not absurd)
    spend_spike_factor: float = 4.0  # one-day spend multiple at magnitude 1
    cpc_spike_factor: float = (
        3.0  # clicks divided by this at the same spend (CPC x3) at magnitude 1
    )
    ctr_drift_floor: float = 0.4  # CTR multiple reached at the end of a drift at magnitude 1
    conversion_inflation_factor: float = 5.0  # conversion multiple at magnitude 1
    level_shift_factor: float = 2.5  # permanent spend multiple (or its inverse) at magnitude 1
    lead_flood_min: int = 25  # junk leads per flood day, at least (or 10x the usual daily leads)


@dataclass
class SampleManifest:
    """What ``generate_sample`` wrote: paths, row counts per file, and the label frames."""

    out_dir: Path
    paths: dict[str, Path]
    rows: dict[str, int]
    labels: pd.DataFrame = field(repr=False)
    defects: pd.DataFrame = field(repr=False)

    def __str__(self) -> str:
        counts = ", ".join(f"{k} {v:,}" for k, v in self.rows.items())
        return f"{counts} rows; {len(self.labels)} labelled anomalies, {len(self.defects)} defects"


# ---------------------------------------------------------------------------------------
# Vectorized text helpers (lookup tables instead of per-row formatting)
# ---------------------------------------------------------------------------------------


@functools.cache
def _padded(width: int) -> np.ndarray:
    """'0000'..'9999' style strings, built once: formatting by lookup is vectorized."""
    return np.array([f"{i:0{width}d}" for i in range(10**width)], dtype=object)


@functools.lru_cache(maxsize=1)
def _clock_strings() -> np.ndarray:
    """' HH:MM:SS' for every second of a day."""
    s = np.arange(86400)
    two = _padded(2)
    return " " + two[s // 3600] + ":" + two[s // 60 % 60] + ":" + two[s % 60]


def _ids(prefix: str, first: int, n: int) -> np.ndarray:
    return prefix + np.arange(first, first + n).astype(str).astype(object)


def _format_timestamps(
    days: np.ndarray,
    start: pd.Timestamp,
    rng: np.random.Generator,
    seconds: np.ndarray | None = None,
) -> np.ndarray:
    """The contract's three formats, mixed (60 % datetime, 25 % date, 15 % US date)."""
    days = np.asarray(days, dtype=np.int64)
    if seconds is None:
        seconds = rng.integers(6 * 3600, 22 * 3600, len(days))
    pick = rng.random(len(days))
    if len(days) == 0:
        return np.array([], dtype=object)
    lo = int(days.min())
    calendar = pd.date_range(
        start + pd.Timedelta(days=lo), periods=int(days.max()) - lo + 1, freq="D"
    )
    iso = calendar.strftime("%Y-%m-%d").to_numpy(dtype=object)
    us = calendar.strftime("%m/%d/%Y").to_numpy(dtype=object)
    k = days - lo
    out = us[k]
    as_iso = pick < 0.85
    out[as_iso] = iso[k[as_iso]]
    full = pick < 0.6
    out[full] = iso[k[full]] + _clock_strings()[np.clip(seconds[full], 0, 86399)]
    return out


def _casual_case(statuses: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exports are typed by people: some statuses come lower-case, title-case or padded."""
    pick = rng.random(len(statuses))
    if len(statuses) == 0:
        return np.array([], dtype=object)
    values, inverse = np.unique(statuses.astype(str), return_inverse=True)
    variants = np.array([[v, v.lower(), v.title(), f" {v.lower()} "] for v in values], dtype=object)
    which = np.select([pick < 0.15, pick < 0.22, pick < 0.28], [1, 2, 3], 0)
    return variants[inverse, which]


def _money(values: np.ndarray) -> np.ndarray:
    """Two-decimal amounts as floats: to_csv writes the shortest repr ('12.5', '80.25')."""
    return np.round(values, 2) + 0.0  # + 0.0 turns -0.0 into 0.0


# ---------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------


def generate_sample(
    out_dir: Path | str,
    *,
    seed: int = 7,
    n_campaigns: int = 200,
    n_days: int = 120,
    start_date: str = "2025-01-06",
    anomalies: bool | int | float = False,
    defects: bool = False,
    scale: float = 1.0,
    settings: GeneratorSettings | None = None,
) -> SampleManifest:
    """Write campaigns.csv, insights.csv, campaign_leads.csv, lead_status_changes.csv
    (plus anomaly_labels.csv / defects.csv when asked) into ``out_dir``.

    ``anomalies``: True for ``settings.anomaly_share`` of the eligible campaigns, an int for
    that many anomalies, a float in (0, 1) for that share. ``scale`` multiplies
    ``n_campaigns`` (benchmarks). The export is taken on the last day: nothing is dated after it.
    """
    s = settings or GeneratorSettings()
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = pd.Timestamp(start_date)
    n = max(1, int(round(n_campaigns * scale)))
    n_days = max(1, int(n_days))
    export_day = n_days - 1

    # --- campaigns ---------------------------------------------------------------------
    platform_names = np.array(list(PLATFORMS), dtype=object)
    profiles = list(PLATFORMS.values())
    shares = np.array([p.share for p in profiles])
    platform_idx = rng.choice(len(profiles), n, p=shares / shares.sum())
    base = np.array(
        [[p.cpm, p.ctr, p.conversion_rate, p.lead_rate, p.weekend_factor] for p in profiles]
    )[platform_idx]
    cpm = base[:, 0] * rng.lognormal(0, 0.35, n)
    ctr = np.clip(base[:, 1] * rng.lognormal(0, 0.4, n), 0.001, 0.2)
    conv = np.clip(base[:, 2] * rng.lognormal(0, 0.5, n), 0.002, 0.5)
    # a campaign that converts well on the platform also fills more lead forms (partly)
    leads_per_click = base[:, 3] * np.sqrt(conv / base[:, 2]) * rng.lognormal(0, 0.4, n)
    leads_per_click = np.where(
        rng.random(n) < s.no_lead_share, 0.0, np.clip(leads_per_click, 0, 0.5)
    )
    lead_convert_p = np.where(rng.random(n) < s.zero_conversion_share, 0.0, rng.beta(2, 12, n))
    budget = np.maximum(np.round(rng.lognormal(np.log(80), 0.9, n)), 5.0)  # heavy tail
    first_day = np.where(rng.random(n) < 0.35, 0, rng.integers(0, max(1, int(n_days * 0.6)), n))
    short = rng.random(n) < s.short_campaign_share
    length = np.where(short, rng.integers(2, 11, n), rng.integers(min(30, n_days), n_days + 1, n))
    last_day = np.minimum(first_day + length - 1, export_day)
    hidden = rng.random(n) < s.leads_without_spend_share  # delivery of these is not exported
    campaign_ids = _ids("CMP", 100000, n)
    users = rng.integers(1, max(2, n // 15) + 1, n)
    created = _format_timestamps(np.maximum(first_day - rng.integers(0, 10, n), -30), start, rng)
    letters = np.array([chr(65 + i) for i in range(26)], dtype=object)
    platform_cell = np.where(
        rng.random(n) < s.blank_platform_share, "", platform_names[platform_idx]
    )
    campaigns = pd.DataFrame(
        {
            "id": campaign_ids,
            "user_id": "U" + _padded(4)[users % 10000],
            "project_name": "Project "
            + letters[users % 26]
            + (users // 26).astype(str).astype(object),
            "daily_budget": budget.astype(np.int64),
            "platform": platform_cell,
            "name": platform_names[platform_idx]
            + " campaign "
            + np.arange(n).astype(str).astype(object),
            "created_at": created,
        }
    )

    # --- campaign-days as flat arrays ----------------------------------------------------
    days_live = last_day - first_day + 1
    c = np.repeat(np.arange(n), days_live)
    d = first_day[c] + (np.arange(len(c)) - np.repeat(np.cumsum(days_live) - days_live, days_live))
    weekend = (start.weekday() + d) % 7 >= 5
    day_factor = np.where(weekend, base[c, 4], 1.0)
    effects = _Effects(len(c))

    labels: list[tuple] = []
    inject_anomalies = anomalies is not None and anomalies is not False and anomalies != 0
    if inject_anomalies:
        labels = _inject_anomalies(
            rng,
            s,
            anomalies,
            c,
            d,
            first_day,
            last_day,
            hidden,
            budget,
            ctr,
            conv,
            cpm,
            leads_per_click,
            effects,
            campaign_ids,
            start,
        )

    noise = s.noise
    if s.noise_spread > 0:
        noise = (
            noise
            * np.clip(np.random.default_rng([seed, 1]).lognormal(0, s.noise_spread, n), 0.5, 2.0)[c]
        )
    spend = (
        budget[c]
        * rng.uniform(0.7, 1.0, len(c))
        * day_factor
        * rng.lognormal(0, 0.12 * noise, len(c))
        * effects.spend
    )
    spend = np.where(effects.outage, 0.0, _money(spend))
    impressions = rng.poisson(spend / cpm[c] * 1000 * rng.lognormal(0, 0.08 * noise, len(c)))
    day_ctr = np.clip(ctr[c] * effects.ctr * rng.lognormal(0, 0.1 * noise, len(c)), 0, 1)
    clicks = rng.binomial(impressions, day_ctr)
    conversions = rng.binomial(clicks, np.clip(conv[c] * effects.conversion, 0, 1))
    n_leads = rng.poisson(clicks * leads_per_click[c]) + effects.junk_leads

    insights = _insight_parts(
        rng, s, c, d, hidden, spend, impressions, clicks, conversions, campaign_ids, start
    )
    leads, changes = _leads_and_history(
        rng, s, c, d, n_leads, effects.junk_leads, lead_convert_p, campaign_ids, start, export_day
    )

    defect_rows: list[tuple] = []
    bom = header_spaces = False
    if defects:
        spared = np.isin(campaign_ids, [label[0] for label in labels])  # anomaly days stay intact
        campaigns, insights, leads, defect_rows = _inject_defects(
            rng, campaigns, insights, leads, short & ~spared, campaign_ids[spared]
        )
        bom = header_spaces = True

    paths = {key: out_dir / name for key, name in RAW_FILES.items()}
    insights_csv = insights.to_csv(index=False, lineterminator="\n")
    if header_spaces:  # the insights header arrives as " spend " / " clicks "
        header, rest = insights_csv.split("\n", 1)
        header = ",".join(f" {h} " if h in ("spend", "clicks") else h for h in header.split(","))
        insights_csv = header + "\n" + rest
    paths["campaigns"].write_text(
        campaigns.to_csv(index=False, lineterminator="\n"), encoding="utf-8-sig" if bom else "utf-8"
    )
    paths["insights"].write_text(insights_csv, encoding="utf-8")
    paths["campaign_leads"].write_text(
        leads.to_csv(index=False, lineterminator="\n"), encoding="utf-8"
    )
    paths["lead_status_changes"].write_text(
        changes.to_csv(index=False, lineterminator="\n"), encoding="utf-8"
    )
    rows = {
        "campaigns": len(campaigns),
        "insights": len(insights),
        "campaign_leads": len(leads),
        "lead_status_changes": len(changes),
    }

    label_frame = pd.DataFrame(labels, columns=LABEL_COLUMNS)
    defect_frame = pd.DataFrame(defect_rows, columns=DEFECT_COLUMNS)
    if inject_anomalies:
        paths["anomaly_labels"] = out_dir / "anomaly_labels.csv"
        label_frame.to_csv(paths["anomaly_labels"], index=False, lineterminator="\n")
        rows["anomaly_labels"] = len(label_frame)
    if defects:
        paths["defects"] = out_dir / "defects.csv"
        defect_frame.to_csv(paths["defects"], index=False, lineterminator="\n")
        rows["defects"] = len(defect_frame)
    return SampleManifest(
        out_dir=out_dir, paths=paths, rows=rows, labels=label_frame, defects=defect_frame
    )


class _Effects:
    """Per campaign-day multipliers the anomaly injector writes into (1 / False / 0 = normal)."""

    def __init__(self, size: int):
        self.spend = np.ones(size)
        self.ctr = np.ones(size)
        self.conversion = np.ones(size)
        self.outage = np.zeros(size, bool)
        self.junk_leads = np.zeros(size, np.int64)


def _insight_parts(
    rng, s, c, d, hidden, spend, impressions, clicks, conversions, campaign_ids, start
) -> pd.DataFrame:
    """Split each exported campaign-day into 1-3 ad-set parts whose sums are the day's totals.

    Counts are split as counts: impressions binomially, then a part's clicks hypergeometrically
    from the day's clicks given its impressions (so no part has clicks > impressions), and the
    same for conversions within clicks. The last part takes what is left.
    """
    exported = ~hidden[c]
    has_parts = rng.random(len(hidden)) < s.parts_share
    n_parts = np.where(has_parts[c], rng.integers(2, 4, len(c)), 1)[exported]
    rows = np.repeat(np.arange(exported.sum()), n_parts)
    share = rng.dirichlet([2.0, 2.0, 2.0], len(rows))[:, 0]
    starts = np.cumsum(n_parts) - n_parts
    position = np.arange(len(rows)) - np.repeat(starts, n_parts)
    is_last = position == np.repeat(n_parts, n_parts) - 1
    left_imp = impressions[exported].astype(np.int64)
    left_clk = clicks[exported].astype(np.int64)
    left_cnv = conversions[exported].astype(np.int64)
    left_spend = spend[exported].astype(float)
    part_imp = np.zeros(len(rows), np.int64)
    part_clk = np.zeros(len(rows), np.int64)
    part_cnv = np.zeros(len(rows), np.int64)
    part_spend = np.zeros(len(rows))
    for k in range(3):  # a loop over the part index (at most three), not over rows
        at = position == k
        if not at.any():
            continue
        r, last, take = rows[at], is_last[at], share[at]
        imp = np.where(last, left_imp[r], rng.binomial(left_imp[r], take))
        clk = np.where(
            last, left_clk[r], rng.hypergeometric(left_clk[r], left_imp[r] - left_clk[r], imp)
        )
        cnv = np.where(
            last, left_cnv[r], rng.hypergeometric(left_cnv[r], left_clk[r] - left_cnv[r], clk)
        )
        spd = np.where(last, left_spend[r], _money(left_spend[r] * take))
        part_imp[at], part_clk[at], part_cnv[at], part_spend[at] = imp, clk, cnv, spd
        left_imp[r] -= imp
        left_clk[r] -= clk
        left_cnv[r] -= cnv
        left_spend[r] -= spd
    return pd.DataFrame(
        {
            "id": _ids("INS", 700000, len(rows)),
            "campaign_id": campaign_ids[c[exported][rows]],
            "created_at": _format_timestamps(d[exported][rows], start, rng),
            "spend": np.maximum(_money(part_spend), 0.0),
            "impressions": part_imp,
            "clicks": part_clk,
            "conversions": part_cnv,
        }
    )


def _leads_and_history(
    rng, s, c, d, n_leads, junk_leads, lead_convert_p, campaign_ids, start, export_day
):
    """Leads per campaign-day, their current status, and the status changes that led there.

    Each lead gets a planned path of up to three changes: NEW -> CONTACTED (0-2 days after it
    came in) -> outcome (days or weeks later) -> for some won deals, the deal after a
    QUALIFIED / MEETING_DONE step (so the conversion date is the first converted status, not
    the deal). Steps dated after the export day have not happened yet and are dropped; the
    exported status is the last step that did happen.
    """
    n_total = int(n_leads.sum())
    lead_c = np.repeat(c, n_leads)
    lead_d = np.repeat(d, n_leads)
    junk_share = np.where(n_leads > 0, junk_leads / np.maximum(n_leads, 1), 0.0)
    flood_junk = rng.random(n_total) < np.repeat(junk_share, n_leads)
    converts = (rng.random(n_total) < lead_convert_p[lead_c]) & ~flood_junk
    converted_pick = rng.choice(
        np.array(CONVERTED_STATUSES), n_total, p=[0.3, 0.1, 0.05, 0.2, 0.15, 0.2]
    )
    open_pick = rng.choice(np.array(OPEN_STATUSES), n_total, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    final = np.where(converts, converted_pick, np.where(flood_junk, "JUNK", open_pick)).astype(
        object
    )
    won = np.isin(final, WON_STATUSES)
    via = won & (rng.random(n_total) < 0.4)
    via_status = rng.choice(np.array(INTERMEDIATE_CONVERTED), n_total)
    has_history = (rng.random(n_total) < s.history_share) & (final != "NEW")

    # planned steps: (new status, day offset from added_date); "" = no such step
    goes_via_contacted = converts | np.isin(final, ["CONTACTED", "NOT_INTERESTED"])
    step1 = np.where(goes_via_contacted, "CONTACTED", final).astype(object)
    step2 = np.where(
        ~goes_via_contacted | (final == "CONTACTED"), "", np.where(via, via_status, final)
    ).astype(object)
    step3 = np.where(via, final, "").astype(object)
    day1 = lead_d + rng.integers(0, 3, n_total)
    day2 = day1 + np.where(
        converts, rng.geometric(0.15, n_total), rng.geometric(0.35, n_total)
    )  # days to weeks
    day3 = day2 + rng.geometric(0.2, n_total)
    steps = np.stack([step1, step2, step3], axis=1)
    step_days = np.stack([day1, day2, day3], axis=1)
    happened = has_history[:, None] & (steps != "") & (step_days <= export_day)
    n_happened = happened.sum(axis=1)
    # exported status: the last step that happened; the planned final one for leads without history
    current = np.where(has_history, "NEW", final).astype(object)
    done = n_happened > 0
    current[done] = steps[done, n_happened[done] - 1]

    deal_known = rng.random(n_total) < 0.92  # sales teams sometimes leave the value blank
    resale_with_value = (current == "RESALE_REQUEST") & (rng.random(n_total) < 0.2)
    deal = np.round(rng.lognormal(np.log(800), 0.7, n_total), 2)
    deal = np.where((np.isin(current, WON_STATUSES) & deal_known) | resale_with_value, deal, np.nan)

    added_seconds = rng.integers(6 * 3600, 20 * 3600, n_total)
    lead_ids = _ids("LD", 3000000, n_total)
    first = rng.integers(0, len(FIRST_NAMES), n_total)
    last = rng.integers(0, len(LAST_NAMES), n_total)
    first_names = np.array(FIRST_NAMES, dtype=object)
    last_names = np.array(LAST_NAMES, dtype=object)
    email_sep = np.array([".", "_", ""], dtype=object)[rng.integers(0, 3, n_total)]
    leads = pd.DataFrame(
        {
            "id": lead_ids,
            "campaign_id": campaign_ids[lead_c],
            "name": first_names[first] + " " + last_names[last],
            "email": (
                np.char.lower(np.array(FIRST_NAMES)).astype(object)[first]
                + email_sep
                + np.char.lower(np.array(LAST_NAMES)).astype(object)[last]
                + _padded(3)[rng.integers(0, 1000, n_total)]
                + "@example.com"
            ),
            "phone": "+1 555 "
            + _padded(3)[rng.integers(0, 1000, n_total)]
            + " "
            + _padded(4)[rng.integers(0, 10000, n_total)],
            "lead_status": _casual_case(current.astype(str), rng),
            "added_date": _format_timestamps(lead_d, start, rng, added_seconds),
            "deal_value": deal,
        }
    )

    lead_of, step_of = np.nonzero(happened)  # row-major: by lead, then step order
    new_status = steps[lead_of, step_of]
    old_status = np.where(step_of == 0, "NEW", steps[lead_of, np.maximum(step_of - 1, 0)]).astype(
        object
    )
    change_day = step_days[lead_of, step_of]
    # a change on the day the lead came in happens after it came in
    same_day = change_day == lead_d[lead_of]
    lower = np.where(same_day, added_seconds[lead_of] + 60, 7 * 3600)
    change_seconds = lower + (rng.random(len(lead_of)) * (22 * 3600 - lower)).astype(np.int64)
    changes = pd.DataFrame(
        {
            "id": _ids("CHG", 9000000, len(lead_of)),
            "lead_id": lead_ids[lead_of],
            "old_status": old_status,
            "new_status": new_status,
            "created_at": _format_timestamps(change_day, start, rng, change_seconds),
        }
    )
    return leads, changes


def _anomaly_count(anomalies: bool | int | float, share: float, n_eligible: int) -> int:
    if anomalies is True:
        return max(len(ANOMALY_KINDS), int(round(share * n_eligible)))
    if isinstance(anomalies, float) and 0 < anomalies < 1:
        return int(round(anomalies * n_eligible))
    return int(anomalies)


def _inject_anomalies(
    rng,
    s,
    anomalies,
    c,
    d,
    first_day,
    last_day,
    hidden,
    budget,
    ctr,
    conv,
    cpm,
    leads_per_click,
    effects,
    campaign_ids,
    start,
) -> list[tuple]:
    """Give some long-running campaigns one anomaly each, after a baseline of normal days.

    Kinds are assigned in turn, each to the next (randomly ordered) campaign whose usual
    volume makes that kind visible: a tracking break on a campaign with 0.2 conversions a
    day could not be told from noise by anyone, so it would only blur the benchmark.
    """
    m = s.anomaly_magnitude
    expected_clicks = budget * 0.85 / cpm * 1000 * ctr
    expected_conversions = expected_clicks * conv
    expected_leads = expected_clicks * leads_per_click
    live = last_day - first_day + 1
    eligible = np.flatnonzero((live >= s.anomaly_min_history + 14) & ~hidden)
    wanted = _anomaly_count(anomalies, s.anomaly_share, len(eligible))
    order = rng.permutation(eligible)
    visible = {
        "spend_spike": np.ones(len(order), bool),
        "delivery_outage": expected_clicks[order] >= 5,
        "cpc_spike": expected_clicks[order] >= 30,
        "ctr_drift": expected_clicks[order] >= 50,
        "tracking_break": expected_conversions[order] >= 3,
        "conversion_inflation": expected_conversions[order] >= 2,
        "lead_flood": expected_leads[order] >= 0.5,
        "level_shift": np.ones(len(order), bool),
    }
    free = np.ones(len(order), bool)
    labels = []
    for slot in range(wanted):
        kind = ANOMALY_KINDS[slot % len(ANOMALY_KINDS)]
        candidates = np.flatnonzero(free & visible[kind])
        if not len(candidates):
            continue
        free[candidates[0]] = False
        i = int(order[candidates[0]])
        t0 = int(rng.integers(first_day[i] + s.anomaly_min_history, last_day[i] - 6))
        rows = np.flatnonzero(c == i)

        def window(a: int, b: int, rows: np.ndarray = rows) -> np.ndarray:
            return rows[(d[rows] >= a) & (d[rows] <= b)]

        if kind == "spend_spike":
            t1 = t0
            factor = 1 + (s.spend_spike_factor - 1) * m
            effects.spend[window(t0, t1)] *= factor
            metric, desc = "spend", f"spend x{factor:.1f} for one day"
        elif kind == "delivery_outage":
            t1 = t0 + int(rng.integers(0, 3))
            effects.outage[window(t0, t1)] = True
            metric, desc = "impressions", "no delivery (spend, impressions, clicks 0) while live"
        elif kind == "cpc_spike":
            t1 = t0 + int(rng.integers(0, 3))
            factor = 1 + (s.cpc_spike_factor - 1) * m
            effects.ctr[window(t0, t1)] /= factor
            metric, desc = "cpc", f"clicks / {factor:.1f} at the same spend (CPC x{factor:.1f})"
        elif kind == "ctr_drift":
            length = int(rng.integers(7, 15))
            t1 = min(t0 + length - 1, int(last_day[i]))
            floor = max(0.1, 1 - (1 - s.ctr_drift_floor) * m)
            ramp = window(t0, t1)
            effects.ctr[ramp] *= 1 - (1 - floor) * (d[ramp] - t0 + 1) / length
            effects.ctr[window(t1 + 1, last_day[i])] *= floor  # the creative stays worn out
            metric, desc = "ctr", f"CTR declines linearly to x{floor:.2f} over {length} days"
        elif kind == "tracking_break":
            t1 = t0 + int(rng.integers(3, 6))
            effects.conversion[window(t0, t1)] = 0.0
            metric, desc = "conversions", "conversions 0 while clicks are normal"
        elif kind == "conversion_inflation":
            t1 = t0 + int(rng.integers(1, 3))
            factor = 1 + (s.conversion_inflation_factor - 1) * m
            effects.conversion[window(t0, t1)] *= factor
            metric, desc = "conversions", f"conversions x{factor:.1f}"
        elif kind == "lead_flood":
            t1 = t0 + int(rng.integers(0, 2))
            per_day = int(max(s.lead_flood_min, 10 * expected_leads[i]) * m)
            effects.junk_leads[window(t0, t1)] += per_day
            metric, desc = "leads", f"{per_day} junk leads a day flood in"
        else:  # level_shift
            t1 = int(last_day[i])
            up = 1 + (s.level_shift_factor - 1) * m
            factor = up if rng.random() < 0.5 else 1 / up
            effects.spend[window(t0, t1)] *= factor
            metric, desc = "spend", f"spend and delivery x{factor:.2f} from this day on"
        labels.append(
            (
                campaign_ids[i],
                kind,
                (start + pd.Timedelta(days=t0)).date().isoformat(),
                (start + pd.Timedelta(days=t1)).date().isoformat(),
                metric,
                desc,
            )
        )
    return labels


def _inject_defects(rng, campaigns, insights, leads, duplicable, spared_ids):
    """A few rows of each contract defect, labelled by file, row key and kind.

    Rows of campaigns carrying an anomaly label are left alone so that a defect never hides
    an anomaly day.
    """
    rows = []
    text_columns = ["created_at", "spend", "impressions", "clicks", "conversions"]
    ins = insights.astype({col: object for col in text_columns})
    candidates = np.flatnonzero(~ins["campaign_id"].isin(spared_ids).to_numpy())
    pick = rng.choice(candidates, 14, replace=False)
    col = {name: ins.columns.get_loc(name) for name in ins.columns}

    def mark(kind, i, **cells):
        for column, value in cells.items():
            ins.iat[i, col[column]] = value
        rows.append(("insights.csv", ins.iat[i, col["id"]], kind))

    mark("unparseable_date", pick[0], created_at="2025-02-30")
    mark("unparseable_date", pick[1], created_at="31/12/2025")
    mark("negative_spend", pick[2], spend="-12.50")
    mark("clicks_gt_impressions", pick[3], clicks=int(ins.iat[pick[3], col["impressions"]]) + 7)
    mark("conversions_gt_clicks", pick[4], conversions=int(ins.iat[pick[4], col["clicks"]]) + 3)
    mark("unknown_campaign", pick[5], campaign_id="CMP999999")
    for i in pick[6:9]:
        mark("blank_numeric", i, impressions="")
    mark("blank_numeric", pick[9], clicks="")
    duplicate = ins.iloc[[pick[10]]]
    rows.append(("insights.csv", duplicate.iat[0, col["id"]], "exact_duplicate"))
    ins = pd.concat([ins, duplicate], ignore_index=True)

    ld = leads.copy()
    lead_candidates = np.flatnonzero(~ld["campaign_id"].isin(spared_ids).to_numpy())
    if len(lead_candidates):
        missing = int(rng.choice(lead_candidates))
        rows.append(
            ("campaign_leads.csv", f"line {missing + 2}", "missing_key")
        )  # header is line 1
        ld.iat[missing, 0] = ""

    victims = np.flatnonzero(duplicable)
    victim = int(victims[0]) if len(victims) else 0
    twin = campaigns.iloc[[victim]].copy()
    twin["daily_budget"] = twin["daily_budget"] + 50
    camp = pd.concat([campaigns, twin], ignore_index=True)
    rows.append(("campaigns.csv", campaigns.iat[victim, 0], "conflicting_duplicate_campaign"))
    rows.append(("campaigns.csv", "header", "bom_header"))
    rows.append(("insights.csv", "header", "header_whitespace"))
    return camp, ins, ld, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write deterministic synthetic Leadsmart exports.")
    parser.add_argument("--out", required=True, help="folder to write the CSVs into")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--campaigns", type=int, default=200)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument(
        "--start-date", default="2025-01-06", help="first day (2025-01-06 is a Monday)"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiplies --campaigns (benchmarks)"
    )
    parser.add_argument(
        "--anomalies", action="store_true", help="inject labelled anomalies (anomaly_labels.csv)"
    )
    parser.add_argument(
        "--defects", action="store_true", help="inject contract defects (defects.csv)"
    )
    args = parser.parse_args(argv)
    manifest = generate_sample(
        args.out,
        seed=args.seed,
        n_campaigns=args.campaigns,
        n_days=args.days,
        start_date=args.start_date,
        anomalies=args.anomalies,
        defects=args.defects,
        scale=args.scale,
    )
    print(f"wrote {manifest.out_dir}: {manifest}")
    for key, path in manifest.paths.items():
        print(f"  {path} ({manifest.rows[key]:,} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
