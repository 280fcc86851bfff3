"""Deterministic synthetic Leadsmart exports, with optional labelled anomalies and defects.

Why synthetic: the pipeline must run from a fresh clone, and the detector must be measured
against anomalies whose location is known. The shape follows what real lead-gen accounts look
like: platforms with their own CPM/CTR/conversion levels, per-campaign log-normal levels
(heavy tails: a few campaigns spend most of the money), weekday/weekend effects, counts drawn
as counts (Poisson impressions, binomial clicks and conversions), short campaigns, ad-set
parts, and most campaigns never converting a lead (the seed data's median conversion rate
was 0).

Everything is drawn from one ``numpy.random.Generator`` in a fixed order, so the same
arguments give byte-identical files. Campaign-days are generated as flat arrays (no loop per
campaign or per row); only the handful of injected anomalies and defects are applied one by
one.

    python -m campaign_pipeline.sample_data --out DIR [--seed 7] [--campaigns 200] [--days 120]
        [--anomalies] [--defects] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from campaign_pipeline.constants import CONVERTED_STATUSES

ANOMALY_KINDS = (
    "spend_spike", "delivery_outage", "cpc_spike", "ctr_drift",
    "tracking_break", "conversion_inflation", "lead_flood", "level_shift",
)
DEFECT_KINDS = (
    "unparseable_date", "negative_spend", "clicks_gt_impressions", "conversions_gt_clicks",
    "unknown_campaign", "missing_key", "conflicting_duplicate_campaign", "blank_numeric",
    "exact_duplicate", "bom_header", "header_whitespace",
)

# platform: (share of campaigns, CPM, CTR, click->conversion, leads per click, weekend factor)
PLATFORMS = {
    "Facebook": (0.38, 9.0, 0.012, 0.05, 0.08, 1.10),
    "Google Ads": (0.27, 24.0, 0.035, 0.06, 0.10, 0.80),
    "LinkedIn": (0.14, 34.0, 0.006, 0.04, 0.12, 0.55),
    "TikTok": (0.15, 6.0, 0.008, 0.02, 0.05, 1.20),
    "Snapchat": (0.06, 5.0, 0.007, 0.015, 0.04, 1.15),
}
OPEN_STATUSES = ("NEW", "CONTACTED", "NO_ANSWER", "NOT_INTERESTED", "JUNK")
FIRST = ("Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gus", "Hana", "Ivan", "Jin", "Kofi", "Lena", "Mo", "Nia", "Omar", "Pia")
LAST = ("Silva", "Okafor", "Novak", "Kim", "Haddad", "Berg", "Rossi", "Tanaka", "Diaz", "Wolf", "Sato", "Ali")


@dataclass(frozen=True)
class GeneratorSettings:
    """Shape knobs. Defaults give the committed sample; `noise` scales day-to-day variation."""

    noise: float = 1.0  # multiplies the log-sd of daily spend and rate noise
    zero_conversion_share: float = 0.55  # campaigns whose leads never convert (seed: median 0)
    no_lead_share: float = 0.08  # campaigns that spend but collect no leads
    leads_without_spend_share: float = 0.03  # campaigns with leads but no insights rows
    short_campaign_share: float = 0.2  # campaigns that run 2-10 days
    parts_share: float = 0.3  # campaigns whose days come in 2-3 ad-set parts
    anomaly_share: float = 0.12  # share of eligible campaigns given one anomaly
    anomaly_magnitude: float = 1.0  # scales every injected effect (1 = realistic, clearly visible)


@dataclass
class SampleManifest:
    out_dir: Path
    rows: dict[str, int]
    labels: pd.DataFrame = field(repr=False)
    defects: pd.DataFrame = field(repr=False)

    def __str__(self) -> str:
        counts = ", ".join(f"{k} {v:,}" for k, v in self.rows.items())
        return f"{counts}; {len(self.labels)} labelled anomalies, {len(self.defects)} defects"


def _format_timestamps(days: np.ndarray, start: pd.Timestamp, rng: np.random.Generator, seconds: np.ndarray | None = None) -> np.ndarray:
    """The contract's three formats, mixed (60 % datetime, 25 % date, 15 % US date)."""
    moments = start + pd.to_timedelta(days, unit="D")
    if seconds is None:
        seconds = rng.integers(6 * 3600, 22 * 3600, len(days))
    moments = moments + pd.to_timedelta(seconds, unit="s")
    pick = rng.random(len(days))
    full = moments.strftime("%Y-%m-%d %H:%M:%S").to_numpy()
    iso = moments.strftime("%Y-%m-%d").to_numpy()
    us = moments.strftime("%m/%d/%Y").to_numpy()
    return np.where(pick < 0.6, full, np.where(pick < 0.85, iso, us))


def _casual_case(statuses: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exports are typed by people: some statuses come lower-case, title-case or padded."""
    pick = rng.random(len(statuses))
    lower = np.char.lower(statuses.astype(str))
    title = np.char.title(statuses.astype(str))
    padded = np.char.add(np.char.add(" ", lower), " ")
    return np.where(pick < 0.15, lower, np.where(pick < 0.22, title, np.where(pick < 0.28, padded, statuses)))


def generate_sample(
    out_dir: Path | str,
    *,
    seed: int = 7,
    n_campaigns: int = 200,
    n_days: int = 120,
    start_date: str = "2025-01-06",
    anomalies: bool | int = False,
    defects: bool = False,
    scale: float = 1.0,
    settings: GeneratorSettings | None = None,
) -> SampleManifest:
    """Write campaigns.csv, insights.csv, campaign_leads.csv, lead_status_changes.csv
    (plus anomaly_labels.csv / defects.csv when asked) into ``out_dir``."""
    s = settings or GeneratorSettings()
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = pd.Timestamp(start_date)
    n = max(1, int(round(n_campaigns * scale)))

    # --- campaigns ---------------------------------------------------------------------
    names = list(PLATFORMS)
    shares = np.array([PLATFORMS[p][0] for p in names])
    platform_idx = rng.choice(len(names), n, p=shares / shares.sum())
    params = np.array([PLATFORMS[p][1:] for p in names])[platform_idx]  # cpm, ctr, conv, lpc, weekend
    cpm = params[:, 0] * rng.lognormal(0, 0.35, n)
    ctr = np.clip(params[:, 1] * rng.lognormal(0, 0.4, n), 0.001, 0.2)
    conv = np.clip(params[:, 2] * rng.lognormal(0, 0.5, n), 0.002, 0.5)
    # lead forms completed per click: about half the platform-reported conversion rate
    leads_per_click = params[:, 3] / params[:, 3].mean() * conv * 0.4 * rng.lognormal(0, 0.4, n) * (rng.random(n) >= s.no_lead_share)
    lead_convert_p = np.where(rng.random(n) < s.zero_conversion_share, 0.0, rng.beta(2, 12, n))
    budget = np.round(rng.lognormal(np.log(80), 0.9, n), -0)  # heavy tail
    budget = np.maximum(budget, 5.0)
    first_day = np.where(rng.random(n) < 0.35, 0, rng.integers(0, max(1, int(n_days * 0.6)), n))
    short = rng.random(n) < s.short_campaign_share
    length = np.where(short, rng.integers(2, 11, n), rng.integers(min(30, n_days), n_days + 1, n))
    last_day = np.minimum(first_day + length - 1, n_days - 1)
    campaign_ids = np.array([f"CMP{100000 + i}" for i in range(n)])
    users = rng.integers(1, max(2, n // 15) + 1, n)
    created = _format_timestamps(np.maximum(first_day - rng.integers(0, 10, n), -30), start, rng)
    campaigns = pd.DataFrame(
        {
            "id": campaign_ids,
            "user_id": [f"U{u:04d}" for u in users],
            "project_name": [f"Project {chr(65 + u % 26)}{u // 26}" for u in users],
            "daily_budget": budget.astype(int).astype(str),
            "platform": np.array(names)[platform_idx],
            "name": [f"{names[p]} campaign {i}" for i, p in enumerate(platform_idx)],
            "created_at": created,
        }
    )

    # --- campaign-days as flat arrays ----------------------------------------------------
    days_live = last_day - first_day + 1
    c = np.repeat(np.arange(n), days_live)
    d = first_day[c] + (np.arange(len(c)) - np.repeat(np.cumsum(days_live) - days_live, days_live))
    weekday = (start.weekday() + d) % 7
    weekend = weekday >= 5
    day_factor = np.where(weekend, params[c, 4], 1.0)
    spend_mult = np.ones(len(c))
    ctr_mult = np.ones(len(c))
    conv_mult = np.ones(len(c))
    outage = np.zeros(len(c), bool)
    extra_junk = np.zeros(len(c), int)

    labels = []
    if anomalies:
        labels = _inject_anomalies(rng, s, anomalies, n, c, d, first_day, last_day, budget, ctr, conv, cpm,
                                   leads_per_click, spend_mult, ctr_mult, conv_mult, outage, extra_junk, campaign_ids, start)

    noise = s.noise
    spend = budget[c] * rng.uniform(0.7, 1.0, len(c)) * day_factor * rng.lognormal(0, 0.12 * noise, len(c)) * spend_mult
    spend = np.where(outage, 0.0, np.round(spend, 2))
    impressions = rng.poisson(spend / cpm[c] * 1000 * rng.lognormal(0, 0.08 * noise, len(c)))
    day_ctr = np.clip(ctr[c] * ctr_mult * rng.lognormal(0, 0.1 * noise, len(c)), 0, 1)
    clicks = rng.binomial(impressions, day_ctr)
    conversions = rng.binomial(clicks, np.clip(conv[c] * conv_mult, 0, 1))
    n_leads = rng.poisson(clicks * leads_per_click[c])

    # leads but no spend: these campaigns' delivery is not exported
    hidden = rng.random(n) < s.leads_without_spend_share
    exported = ~hidden[c]

    # --- insights (with ad-set parts) ------------------------------------------------------
    has_parts = rng.random(n) < s.parts_share
    n_parts = np.where(has_parts[c], rng.integers(2, 4, len(c)), 1)[exported]
    rows = np.repeat(np.arange(exported.sum()), n_parts)
    share = rng.dirichlet([2.0, 2.0, 2.0], len(rows))[:, 0]
    first_of = np.r_[True, rows[1:] != rows[:-1]]
    last_of = np.r_[rows[1:] != rows[:-1], True]
    # split counts part by part: binomial of what is left, the last part takes the rest
    remaining = {k: v[exported].astype(np.int64).copy() for k, v in (("impressions", impressions), ("clicks", clicks), ("conversions", conversions))}
    parts = {k: np.zeros(len(rows), np.int64) for k in remaining}
    part_spend = np.zeros(len(rows))
    spend_left = spend[exported].copy()
    order = np.argsort(rows, kind="stable")
    position = np.arange(len(rows)) - np.repeat(np.flatnonzero(first_of), n_parts)
    for k in range(3):  # at most three parts: a loop over part index, not over rows
        at = position == k
        r = rows[at]
        take = np.where(last_of[at], 1.0, share[at])
        # clicks/conversions in a part must not exceed that part's impressions/clicks
        imp = np.where(last_of[at], remaining["impressions"][r], rng.binomial(remaining["impressions"][r], take))
        clk = np.where(last_of[at], remaining["clicks"][r], rng.hypergeometric(np.maximum(remaining["clicks"][r], 0), np.maximum(remaining["impressions"][r] - remaining["clicks"][r], 0), imp) if at.any() else 0)
        cnv = np.where(last_of[at], remaining["conversions"][r], rng.hypergeometric(np.maximum(remaining["conversions"][r], 0), np.maximum(remaining["clicks"][r] - remaining["conversions"][r], 0), clk) if at.any() else 0)
        sp = np.where(last_of[at], np.round(spend_left[r], 2), np.round(spend_left[r] * take, 2))
        parts["impressions"][at], parts["clicks"][at], parts["conversions"][at], part_spend[at] = imp, clk, cnv, sp
        remaining["impressions"][r] -= imp
        remaining["clicks"][r] -= clk
        remaining["conversions"][r] -= cnv
        spend_left[r] -= sp
    del order
    day_of_row = d[exported][rows]
    camp_of_row = c[exported][rows]
    insights = pd.DataFrame(
        {
            "id": [f"INS{700000 + i}" for i in range(len(rows))],
            "campaign_id": campaign_ids[camp_of_row],
            "created_at": _format_timestamps(day_of_row, start, rng),
            "spend": np.char.mod("%.2f", np.maximum(part_spend, 0.0)),
            "impressions": parts["impressions"].astype(str),
            "clicks": parts["clicks"].astype(str),
            "conversions": parts["conversions"].astype(str),
        }
    )

    # --- leads -------------------------------------------------------------------------------
    n_leads = n_leads + extra_junk
    lead_c = np.repeat(c, n_leads)
    lead_d = np.repeat(d, n_leads)
    junk_flag = np.repeat(extra_junk > 0, n_leads) & (rng.random(len(lead_c)) < np.repeat(np.where(n_leads > 0, extra_junk / np.maximum(n_leads, 1), 0), n_leads))
    converts = (rng.random(len(lead_c)) < lead_convert_p[lead_c]) & ~junk_flag
    converted_status = rng.choice(np.array(CONVERTED_STATUSES), len(lead_c), p=[0.3, 0.1, 0.05, 0.2, 0.15, 0.2])
    open_status = rng.choice(np.array(OPEN_STATUSES), len(lead_c), p=[0.3, 0.25, 0.2, 0.15, 0.1])
    status = np.where(converts, converted_status, np.where(junk_flag, "JUNK", open_status))
    won = np.isin(status, ["DONE_DEAL", "ALREADY_BOUGHT"])
    deal = np.where(won, np.round(rng.lognormal(np.log(800), 0.7, len(lead_c)), 2), np.nan)
    lead_ids = np.array([f"LD{3000000 + i}" for i in range(len(lead_c))])
    first = np.array(FIRST)[rng.integers(0, len(FIRST), len(lead_c))]
    last = np.array(LAST)[rng.integers(0, len(LAST), len(lead_c))]
    leads = pd.DataFrame(
        {
            "id": lead_ids,
            "campaign_id": campaign_ids[lead_c],
            "name": np.char.add(np.char.add(first, " "), last),
            "email": [f"{f.lower()}.{l.lower()}{i % 997}@example.com" for i, (f, l) in enumerate(zip(first, last))],
            "phone": [f"+1 555 {i % 10000:04d}" for i in range(len(lead_c))],
            "lead_status": _casual_case(status, rng),
            "added_date": _format_timestamps(lead_d, start, rng),
            "deal_value": np.where(np.isnan(deal), "", np.char.mod("%.2f", np.nan_to_num(deal))),
        }
    )

    # --- status history ------------------------------------------------------------------------
    has_history = rng.random(len(lead_c)) < np.where(converts, 0.85, 0.7)
    contacted_after = rng.integers(0, 3, len(lead_c))
    converted_after = contacted_after + rng.geometric(0.15, len(lead_c))  # often days, sometimes weeks
    first_change = has_history & (status != "NEW")
    second_change = has_history & converts
    change_lead = np.r_[np.flatnonzero(first_change), np.flatnonzero(second_change)]
    change_old = np.r_[np.full(first_change.sum(), "NEW"), np.full(second_change.sum(), "CONTACTED")]
    change_new = np.r_[np.where(converts[first_change], "CONTACTED", status[first_change]), status[second_change]]
    change_day = np.r_[lead_d[first_change] + contacted_after[first_change], lead_d[second_change] + converted_after[second_change]]
    # the export is taken on the last day: no change can be dated after it
    change_day = np.minimum(change_day, n_days - 1)
    order = np.lexsort((change_day, change_lead))
    change_lead, change_old, change_new, change_day = change_lead[order], change_old[order], change_new[order], change_day[order]
    changes = pd.DataFrame(
        {
            "id": [f"CHG{9000000 + i}" for i in range(len(change_lead))],
            "lead_id": lead_ids[change_lead],
            "old_status": change_old,
            "new_status": change_new,
            "created_at": _format_timestamps(change_day, start, rng),
        }
    )

    defect_rows = []
    bom, header_spaces = False, False
    if defects:
        campaigns, insights, leads, changes, defect_rows, bom, header_spaces = _inject_defects(
            rng, campaigns, insights, leads, changes, short, campaign_ids)

    insights_csv = insights.to_csv(index=False, lineterminator="\n")
    if header_spaces:
        header, rest = insights_csv.split("\n", 1)
        insights_csv = ",".join(f" {h} " if h in ("spend", "clicks") else h for h in header.split(",")) + "\n" + rest
    (out_dir / "campaigns.csv").write_text(campaigns.to_csv(index=False, lineterminator="\n"), encoding="utf-8-sig" if bom else "utf-8")
    (out_dir / "insights.csv").write_text(insights_csv, encoding="utf-8")
    (out_dir / "campaign_leads.csv").write_text(leads.to_csv(index=False, lineterminator="\n"), encoding="utf-8")
    (out_dir / "lead_status_changes.csv").write_text(changes.to_csv(index=False, lineterminator="\n"), encoding="utf-8")

    label_frame = pd.DataFrame(labels, columns=["campaign_id", "kind", "start_date", "end_date", "metric", "description"])
    defect_frame = pd.DataFrame(defect_rows, columns=["file", "row_key", "kind"])
    if anomalies:
        label_frame.to_csv(out_dir / "anomaly_labels.csv", index=False, lineterminator="\n")
    if defects:
        defect_frame.to_csv(out_dir / "defects.csv", index=False, lineterminator="\n")
    rows = {"campaigns": len(campaigns), "insights": len(insights), "campaign_leads": len(leads), "lead_status_changes": len(changes)}
    return SampleManifest(out_dir=out_dir, rows=rows, labels=label_frame, defects=defect_frame)


def _inject_anomalies(rng, s, anomalies, n, c, d, first_day, last_day, budget, ctr, conv, cpm,
                      leads_per_click, spend_mult, ctr_mult, conv_mult, outage, extra_junk, campaign_ids, start):
    """Give some long-running campaigns one anomaly each, after >= 21 days of normal history."""
    m = s.anomaly_magnitude
    expected_clicks = budget * 0.85 / cpm * 1000 * ctr
    expected_conversions = expected_clicks * conv
    expected_leads = expected_clicks * leads_per_click
    live = last_day - first_day + 1
    eligible = np.flatnonzero(live >= 35)
    wanted = int(anomalies) if anomalies is not True else max(len(ANOMALY_KINDS), int(round(s.anomaly_share * len(eligible))))
    picked = rng.permutation(eligible)
    requirements = {  # a kind is only injected where a careful analyst could see it
        "spend_spike": lambda i: True,
        "delivery_outage": lambda i: expected_clicks[i] >= 5,
        "cpc_spike": lambda i: expected_clicks[i] >= 30,
        "ctr_drift": lambda i: expected_clicks[i] >= 50,
        "tracking_break": lambda i: expected_conversions[i] >= 3,
        "conversion_inflation": lambda i: expected_conversions[i] >= 2,
        "lead_flood": lambda i: expected_leads[i] >= 0.5,
        "level_shift": lambda i: True,
    }
    labels, used = [], set()
    for slot in range(wanted):  # kinds in turn, each on the next campaign that can show it
        kind = ANOMALY_KINDS[slot % len(ANOMALY_KINDS)]
        candidates = [j for j in picked if j not in used and requirements[kind](j)]
        if not candidates:
            continue
        i = candidates[0]
        t0 = int(rng.integers(first_day[i] + 21, last_day[i] - 6))
        mask_c = c == i
        def days(a, b):
            return mask_c & (d >= a) & (d <= b)
        if kind == "spend_spike":
            t1 = t0
            spend_mult[days(t0, t1)] *= 1 + 3.0 * m
            metric, desc = "spend", f"spend x{1 + 3.0 * m:.1f} for one day"
        elif kind == "delivery_outage":
            t1 = t0 + int(rng.integers(0, 3))
            outage[days(t0, t1)] = True
            metric, desc = "impressions", "no delivery (spend, impressions, clicks 0)"
        elif kind == "cpc_spike":
            t1 = t0 + int(rng.integers(0, 3))
            ctr_mult[days(t0, t1)] *= 1 / (1 + 2.0 * m)
            metric, desc = "cpc", f"clicks / {1 + 2.0 * m:.1f} at the same spend (CPC x{1 + 2.0 * m:.1f})"
        elif kind == "ctr_drift":
            length = int(rng.integers(7, 15))
            t1 = min(t0 + length - 1, last_day[i])
            ramp = days(t0, t1)
            floor = max(0.1, 1 - 0.6 * m)
            ctr_mult[ramp] *= 1 - (1 - floor) * (d[ramp] - t0 + 1) / length
            ctr_mult[days(t1 + 1, last_day[i])] *= floor
            metric, desc = "ctr", f"CTR declines linearly to x{floor:.2f} over {length} days"
        elif kind == "tracking_break":
            t1 = t0 + int(rng.integers(3, 6))
            conv_mult[days(t0, t1)] = 0.0
            metric, desc = "conversions", "conversions 0 while clicks are normal"
        elif kind == "conversion_inflation":
            t1 = t0 + int(rng.integers(1, 3))
            conv_mult[days(t0, t1)] *= 1 + 4.0 * m
            metric, desc = "conversions", f"conversions x{1 + 4.0 * m:.1f}"
        elif kind == "lead_flood":
            t1 = t0 + int(rng.integers(0, 2))
            extra_junk[days(t0, t1)] += int(max(25, 10 * expected_leads[i]) * m)
            metric, desc = "leads", "junk leads flood in"
        else:  # level_shift
            t1 = int(last_day[i])
            factor = 1 + 1.5 * m if rng.random() < 0.5 else 1 / (1 + 1.5 * m)
            spend_mult[days(t0, t1)] *= factor
            metric, desc = "spend", f"spend and delivery x{factor:.2f} from this day on"
        labels.append((campaign_ids[i], kind, (start + pd.Timedelta(days=t0)).date().isoformat(),
                       (start + pd.Timedelta(days=t1)).date().isoformat(), metric, desc))
        used.add(i)
    return labels


def _inject_defects(rng, campaigns, insights, leads, changes, short, campaign_ids):
    """A few rows of each contract defect, labelled by file, row key and kind."""
    rows = []
    ins = insights.copy()
    pick = rng.choice(len(ins), 14, replace=False)
    def mark(kind, i, **cells):
        for column, value in cells.items():
            ins.iat[i, ins.columns.get_loc(column)] = value
        rows.append(("insights.csv", ins.iat[i, 0], kind))
    mark("unparseable_date", pick[0], created_at="2025-02-30")
    mark("unparseable_date", pick[1], created_at="31/12/2025")
    mark("negative_spend", pick[2], spend="-12.50")
    mark("clicks_gt_impressions", pick[3], clicks=str(int(ins.iat[pick[3], 4]) + 7))
    mark("conversions_gt_clicks", pick[4], conversions=str(int(ins.iat[pick[4], 5]) + 3))
    mark("unknown_campaign", pick[5], campaign_id="CMP999999")
    for i in pick[6:9]:
        mark("blank_numeric", i, impressions="")
    duplicate = ins.iloc[[pick[9]]]
    rows.append(("insights.csv", duplicate.iat[0, 0], "exact_duplicate"))
    ins = pd.concat([ins, duplicate], ignore_index=True)
    ld = leads.copy()
    missing = int(rng.integers(0, len(ld)))
    rows.append(("campaign_leads.csv", f"line {missing + 2}", "missing_key"))
    ld.iat[missing, 0] = ""
    camp = campaigns.copy()
    victim = int(np.flatnonzero(short)[0]) if short.any() else 0
    twin = camp.iloc[[victim]].copy()
    twin["daily_budget"] = str(int(twin["daily_budget"].iloc[0]) + 50)
    camp = pd.concat([camp, twin], ignore_index=True)
    rows.append(("campaigns.csv", campaign_ids[victim], "conflicting_duplicate_campaign"))
    rows.append(("campaigns.csv", "header", "bom_header"))
    rows.append(("insights.csv", "header", "header_whitespace"))
    return camp, ins, ld, changes, rows, True, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write deterministic synthetic Leadsmart exports.")
    parser.add_argument("--out", required=True, help="folder to write the CSVs into")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--campaigns", type=int, default=200)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--start-date", default="2025-01-06")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--anomalies", action="store_true")
    parser.add_argument("--defects", action="store_true")
    args = parser.parse_args(argv)
    manifest = generate_sample(args.out, seed=args.seed, n_campaigns=args.campaigns, n_days=args.days,
                               start_date=args.start_date, anomalies=args.anomalies, defects=args.defects, scale=args.scale)
    print(f"wrote {args.out}: {manifest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
