"""How the report writes numbers: one place, so a table cell, a card and the Markdown summary
print the same value the same way.

Every number shown is also kept unrounded in a ``data-v`` attribute next to its text (sorting,
tests), so the text can round for reading without losing anything.
"""

from __future__ import annotations

import math

from campaign_pipeline.health import distinct_texts

MISSING = "–"  # a null (zero denominator, nothing reported): never shown as 0

# How each metric of the published tables reads: money, a count, a rate shown in %, a ratio.
METRIC_KIND: dict[str, str] = {
    "spend": "amount",
    "revenue": "amount",
    "cpc": "amount",
    "cpm": "amount",
    "cpa": "amount",
    "cpl": "amount",
    "impressions": "count",
    "clicks": "count",
    "conversions": "count",
    "leads": "count",
    "converted_leads": "count",
    "won_leads": "count",
    "ctr": "percent",
    "conversion_rate": "percent",
    "lead_conversion_rate": "percent",
    "roas": "ratio",
}

METRIC_LABEL: dict[str, str] = {
    "spend": "Spend",
    "revenue": "Revenue",
    "cpc": "CPC",
    "cpm": "CPM",
    "cpa": "CPA",
    "cpl": "CPL",
    "impressions": "Impressions",
    "clicks": "Clicks",
    "conversions": "Conversions",
    "leads": "Leads",
    "converted_leads": "Converted leads",
    "won_leads": "Won leads",
    "ctr": "CTR",
    "conversion_rate": "Conversion rate",
    "lead_conversion_rate": "Lead conversion rate",
    "roas": "ROAS",
}


def is_missing(value) -> bool:
    if value is None:
        return True
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def amount(value) -> str:
    """Money with two decimals and thousands separators ("4,406.03")."""
    return MISSING if is_missing(value) else f"{float(value):,.2f}"


def count(value) -> str:
    return MISSING if is_missing(value) else f"{float(value):,.0f}"


def percent(value) -> str:
    """A rate as a percentage with one decimal ("4.7%"), two below 1% ("0.48%"): a CTR of
    0.48% against an expected 0.87% is a halving, which "0.5%" against "0.9%" hides."""
    if is_missing(value):
        return MISSING
    points = float(value) * 100
    return f"{points:,.2f}%" if abs(points) < 1 else f"{points:,.1f}%"


def ratio(value) -> str:
    return MISSING if is_missing(value) else f"{float(value):,.2f}×"


def apart(kind: str, value, *thresholds) -> list[str]:
    """``value`` and the thresholds it is compared with ("percent" or "amount"), each in its
    usual format, told apart where they would read alike (`health.distinct_texts`)."""
    numbers = [math.nan if is_missing(x) else float(x) for x in (value, *thresholds)]
    return distinct_texts(kind, numbers, [of_kind(kind, x) for x in (value, *thresholds)])


def relative_change(value) -> str:
    """A published week-over-week change held as a fraction ("+12.5%")."""
    return MISSING if is_missing(value) else f"{_signed(float(value) * 100)}%"


FORMAT_OF_KIND = {
    "amount": amount,
    "count": count,
    "percent": percent,
    "ratio": ratio,
    "change": relative_change,
}


def of_kind(kind: str, value) -> str:
    return FORMAT_OF_KIND[kind](value)


def metric(name: str, value) -> str:
    """A value of a published metric column, in that metric's own format."""
    return of_kind(METRIC_KIND.get(name, "amount"), value)


def expected(name: str, value) -> str:
    """A model's expected value: a count keeps one decimal below 100 (an expected 0.14
    conversions is not "0")."""
    if METRIC_KIND.get(name) == "count" and not is_missing(value) and abs(float(value)) < 100:
        return f"{float(value):,.1f}"
    return metric(name, value)


def metric_label(name: str) -> str:
    return METRIC_LABEL.get(name, name.replace("_", " ").capitalize())


def change(current, previous, kind: str) -> tuple[float | None, str]:
    """Week-over-week change as (value, text): relative for amounts, counts and ratios
    ("+12.5%"), percentage points for rates ("-1.2 pp"). None when either side is unknown
    or a relative change has a zero base (no number is honest there)."""
    if is_missing(current) or is_missing(previous):
        return None, MISSING
    current, previous = float(current), float(previous)
    if kind == "percent":
        points = (current - previous) * 100
        return points, f"{_signed(points)} pp"
    if previous == 0:
        return None, MISSING
    relative = current / previous - 1
    return relative, f"{_signed(relative * 100)}%"


def _signed(value: float) -> str:
    """One decimal with its sign; a change that rounds to nothing reads "0.0", not "-0.0"."""
    text = f"{value:+,.1f}"
    return "0.0" if text in ("+0.0", "-0.0") else text


def signed_count(value: int) -> str:
    return f"{int(value):+d}" if value else "0"


def raw(value) -> str:
    """The unrounded value for a ``data-v`` attribute ("" for a null)."""
    if is_missing(value):
        return ""
    number = float(value)
    return repr(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)
