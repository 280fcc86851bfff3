"""Severity, confidence, plain-English explanations and suggested actions for flags.

Runs on the (few) flagged rows only, after the vectorized detection, so readable string
formatting here costs nothing on the hot path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from campaign_pipeline.detection.settings import DetectionSettings

MONEY_METRICS = {"spend", "cpc", "cpm", "cpa", "cpl"}
RATE_METRICS = {"ctr", "conversion_rate", "lead_conversion_rate"}

METRIC_LABELS = {
    "spend": "Spend",
    "impressions": "Impressions",
    "clicks": "Clicks",
    "conversions": "Conversions",
    "leads": "Leads",
    "ctr": "CTR",
    "conversion_rate": "Conversion rate",
    "lead_conversion_rate": "Lead conversion rate",
    "cpc": "CPC",
    "cpm": "CPM",
    "cpa": "CPA",
    "cpl": "CPL",
    "value": "Value",
}

# (metric, anomaly_type) -> action; falls back to (metric, direction) then to a generic line.
ACTIONS = {
    (
        "spend",
        "budget_overspend",
    ): "Check the platform's budget and bid caps; ask for a refund of spend above the cap.",
    (
        "spend",
        "spend_spike",
    ): "Check for a budget or bid change and cap daily spend until the cause is known.",
    (
        "spend",
        "delivery_outage",
    ): "Check that the campaign is active, approved and paid (billing, disapproved ads).",
    (
        "impressions",
        "delivery_outage",
    ): "Check that the campaign is active, approved and paid (billing, disapproved ads).",
    (
        "conversions",
        "tracking_error",
    ): "Check the conversion pixel / tag and the platform's conversion setup.",
    (
        "conversions",
        "conversion_inflation",
    ): "Audit conversions for duplicates or bot traffic before trusting CPA.",
    (
        "conversion_rate",
        "conversion_inflation",
    ): "Audit conversions for duplicates or bot traffic before trusting CPA.",
    (
        "conversion_rate",
        "tracking_error",
    ): (
        "Check the conversion pixel / tag and the landing page: "
        "conversions stopped, clicks did not."
    ),
    (
        "clicks",
        "delivery_outage",
    ): "Check that the campaign is active, approved and paid (billing, disapproved ads).",
    (
        "conversions",
        "delivery_outage",
    ): "Restore delivery first: conversions stopped because the ads stopped.",
    ("leads", "delivery_outage"): "Restore delivery first: leads stopped because the ads stopped.",
    (
        "leads",
        "lead_flood",
    ): "Review the new leads for junk or bots; add form validation or exclude the source.",
    (
        "ctr",
        "drift",
    ): "Refresh the creative: CTR is sliding (ad fatigue) - rotate new ads or audiences.",
    ("cpc", "cost_spike"): "Review bids and competition; lower bid caps or narrow targeting.",
    ("cpm", "cost_spike"): "Review audience size and bids; broaden targeting or lower bid caps.",
}
DIRECTION_ACTIONS = {
    "up": {
        "spend": "Check recent budget or bid changes.",
        "impressions": (
            "Check for a budget, bid or audience change; keep spend and frequency within plan."
        ),
        "clicks": (
            "Check the new clicks for bots or accidental placements before trusting the extra "
            "traffic."
        ),
        "ctr": (
            "Check for bot clicks or a placement change; if the clicks convert, give the creative "
            "more budget."
        ),
        "conversion_rate": (
            "Verify conversion tracking (duplicates, a changed event) before scaling on these "
            "numbers."
        ),
        "lead_conversion_rate": (
            "Check the lead status updates (a bulk change?) before crediting the campaign."
        ),
        "cpc": "Review bids and targeting: clicks got more expensive.",
        "cpm": "Review bids and audience: impressions got more expensive.",
        "cpa": "Check the funnel after the click: each conversion costs more.",
        "cpl": "Check lead quality and the form: each lead costs more.",
        "leads": "Check lead quality: an unusual number of leads arrived.",
        "conversions": "Verify conversion tracking before scaling on these numbers.",
    },
    "down": {
        "clicks": "Check ad delivery and creative.",
        "impressions": "Check delivery: budget, approval and audience size.",
        "conversions": "Check the landing page and conversion tracking.",
        "leads": "Check the lead form and its integration.",
        "ctr": "Refresh the creative or the targeting.",
        "conversion_rate": "Check the landing page and the conversion tracking.",
        "lead_conversion_rate": "Check lead quality and the sales follow-up.",
    },
}


def format_value(metric: str, v: float) -> str:
    """A metric's value as the explanations write it (a rate in %, money with two decimals)."""
    if v is None or not np.isfinite(v):
        return "n/a"
    if metric in RATE_METRICS:
        return f"{100 * v:.2f}%"
    if metric in MONEY_METRICS:
        return f"{v:,.2f}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3g}"


def severity(
    rel_effect: np.ndarray, anomaly_type: np.ndarray, settings: DetectionSettings
) -> np.ndarray:
    """Severity from the size of the change: what matters to a budget is magnitude."""
    # to a millionth: a blip to 150 over a level the estimator put at 100.00000001 is the
    # +50 % the explanation prints, so medium, not low by a float's last digits
    a = np.round(np.abs(np.nan_to_num(rel_effect, nan=0.0, posinf=1e9)), 6)
    m, h, c = settings.severity_effects
    sev = np.select([a >= c, a >= h, a >= m], ["critical", "high", "medium"], "low").astype(object)
    forced_high = np.isin(
        anomaly_type, ["tracking_error", "budget_overspend", "lead_flood", "conversion_inflation"]
    )
    sev = np.where(forced_high & np.isin(sev, ["low", "medium"]), "high", sev)
    sev = np.where(np.asarray(anomaly_type) == "delivery_outage", "critical", sev)
    return sev


# What a flag's confidence is read from (`confidence_features`), in the order of the
# coefficients in `DetectionSettings.confidence_coefficients`.
CONFIDENCE_FEATURES = (
    "intercept",
    "evidence",
    "more_metrics",
    "more_methods",
    "rule",
    "cusum_only",
)
_STATISTICAL = "robust_z|window_shift"  # the methods that carry a q-value (`methods` labels)


def confidence_features(flags: pd.DataFrame) -> np.ndarray:
    """The features of `CONFIDENCE_FEATURES` for each flag, from its published columns.

    evidence: -log10 of the flag's q-value (clipped at 1e-6) when a method with a q-value
    fired (the daily test or the window shift), else 0: a CUSUM alarm or a broken rule has no
    q-value of its own, and the day's point q-value says nothing about it. more_metrics: other
    metrics flagged on the same campaign and period (at most 2): a real event moves several
    metrics, noise one. more_methods: other methods that fired on the same flag (at most 2).
    rule, cusum_only: flags that no test with a q-value raised. Built from the published
    columns (campaign_id, grain, period_start, q_value, methods) so that the fit in
    `scripts/fit_confidence.py` reads exactly what a run computes.
    """
    methods = flags["methods"].astype(str)
    statistical = methods.str.contains(_STATISTICAL).to_numpy()
    rule = methods.str.contains(r"(?:^|,)rule(?:,|$)").to_numpy()
    cusum_only = methods.str.contains("cusum").to_numpy() & ~statistical & ~rule
    q = np.clip(np.nan_to_num(flags["q_value"].to_numpy(float), nan=1.0), 1e-6, 1.0)
    evidence = np.where(statistical, -np.log10(q), 0.0)
    n_metrics = flags.groupby(["campaign_id", "grain", "period_start"], sort=False)[
        "methods"
    ].transform("size")
    n_methods = methods.str.count(",").to_numpy() + 1
    return np.column_stack(
        [
            np.ones(len(flags)),
            evidence,
            np.minimum(n_metrics.to_numpy(), 3) - 1,
            np.minimum(n_methods, 3) - 1,
            rule,
            cusum_only,
        ]
    ).astype(float)


def confidence(flags: pd.DataFrame, coefficients: tuple[float, ...]) -> np.ndarray:
    """How often flags like this one were real on the synthetic benchmark, in [0, 1].

    A logistic model on `confidence_features` whose coefficients were fitted on labelled
    synthetic runs (`scripts/fit_confidence.py`, docs/anomaly_detection.md). It ranks flags by
    what made them (a tiny q-value, several metrics at once, a broken rule) and is calibrated
    to that benchmark, where about a quarter of the campaigns carry an anomaly: on data with
    fewer real events the same flag is less often real, so read it as a ranking first.
    """
    if len(flags) == 0:
        return np.zeros(0)
    x = confidence_features(flags)
    return 1.0 / (1.0 + np.exp(-(x @ np.asarray(coefficients, float))))


# Conversions that jumped while clicks stayed flat: the tag, not the campaign, changed.
CONVERSION_TAG_ACTION = (
    "Check the conversion tag: conversions jumped while clicks stayed flat (a tag firing twice, "
    "a new or broadened conversion event); fix it before trusting CPA and conversion rate."
)


def suggested_actions(metrics: pd.Series, types: pd.Series, rel: pd.Series) -> list[str]:
    out = []
    for m, t, r in zip(metrics, types, rel):
        jump = (
            t == "tracking_error"
            and m in ("conversions", "conversion_rate")
            and np.isfinite(r)
            and r > 0
        )
        act = CONVERSION_TAG_ACTION if jump else ACTIONS.get((m, t))
        if act is None:
            direction = "up" if (r > 0 if np.isfinite(r) else True) else "down"
            act = DIRECTION_ACTIONS[direction].get(
                m, "Check recent changes to this campaign and its tracking."
            )
        out.append(act)
    return out


TYPE_WORDS = {
    "spike": "spiked",
    "drop": "dropped",
    "drift": "has been drifting",
    "level_shift": "shifted to a new level",
    "spend_spike": "spiked",
    "delivery_outage": "collapsed (delivery outage)",
    "cost_spike": "spiked",
    "tracking_error": "looks like a tracking error",
    "budget_overspend": "exceeded the daily budget",
    "lead_flood": "flooded in",
    "conversion_inflation": "looks inflated",
}


# Labels that are plural nouns take plural verbs ("Clicks have been drifting").
PLURAL_METRICS = {"impressions", "clicks", "conversions", "leads"}
_PLURAL_WORDS = {
    "has been drifting": "have been drifting",
    "looks inflated": "look inflated",
    "looks like a tracking error": "look like a tracking error",
    "was unusual": "were unusual",
}


def _what_happened(metric: str, anomaly_type: str) -> str:
    words = TYPE_WORDS.get(anomaly_type, "was unusual")
    return _PLURAL_WORDS.get(words, words) if metric in PLURAL_METRICS else words


def explanations(
    rows: pd.DataFrame,
    baseline_label: str,
    *,
    time_format: str = "%Y-%m-%d",
    step_word: str = "days",
) -> list[str]:
    """One sentence per flag with the numbers: value, expected, band, change, evidence.

    time_format and step_word name a point and a run of steps of other spacings (an hourly
    series of `detect`: "2024-01-05 14:00", "the last 3 hours"); a metric without a label
    (a series name) is named as it is.
    """
    out = []
    for r in rows.itertuples(index=False):
        label = METRIC_LABELS.get(r.metric, r.metric)
        when = (
            r.period_start.strftime(time_format)
            if r.grain != "week"
            else f"the week of {r.period_start:%Y-%m-%d}"
        )
        preposition = "in" if r.grain == "week" else "on"
        head = f"{label} {_what_happened(r.metric, r.anomaly_type)} {preposition} {when}"
        window = getattr(r, "window_days", np.nan)
        if np.isfinite(window) and np.isfinite(r.rel_effect) and np.isfinite(r.expected):
            # a window-shift flag: the run of recent days against the baseline before them
            parts = [
                f"{head}: the last {window:.0f} {step_word} average "
                f"{format_value(r.metric, r.expected * (1 + r.rel_effect))} "
                f"against {format_value(r.metric, r.expected)} in the "
                f"{baseline_label.replace('trailing ', '')} before "
                f"them ({r.rel_effect:+.0%}; that {step_word.removesuffix('s')} "
                f"{format_value(r.metric, r.value)})"
            ]
        else:
            parts = [
                f"{head}: {format_value(r.metric, r.value)} against an expected "
                f"{format_value(r.metric, r.expected)}"
            ]
            if np.isfinite(r.expected_lower) and np.isfinite(r.expected_upper):
                parts.append(
                    f" (normal range {format_value(r.metric, r.expected_lower)} to "
                    f"{format_value(r.metric, r.expected_upper)})"
                )
            if np.isfinite(r.rel_effect):
                parts.append(
                    f", {r.rel_effect:+.0%} vs the "
                    f"{baseline_label if r.grain != 'week' else 'trailing weeks'}"
                )
        if np.isfinite(r.score):
            parts.append(f"; robust z {r.score:.1f}")
        if np.isfinite(r.q_value):
            parts.append(f", adjusted p {r.q_value:.2g}")
        if r.rule_note:
            parts.append(f"; {r.rule_note}")
        running = getattr(r, "weeks_running", np.nan)
        if np.isfinite(running) and running >= 2:
            parts.append(
                f"; {running:.0f} weeks in a row beyond the normal range in this direction"
            )
        parts.append(f". Detectors: {r.methods}.")
        out.append("".join(parts))
    return out
