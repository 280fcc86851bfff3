"""Campaign metrics from the validated tables: pure pandas, no Dagster.

Rules every function here follows, and why:

* **Rates are ratios of sums** over the period (never means of daily rates): a mean of daily
  rates weighs a day with 10 impressions like a day with 10,000.
* **Undefined is null**: a rate whose denominator is 0 or unknown is NaN, never 0 (that would
  read as "performed badly") and never inf.
* **Blank is not zero.** In the daily table a campaign-day without an insights row has
  spend/impressions/clicks/conversions NaN (nothing was reported), while lead counts are 0
  (we hold every lead, so "no lead that day" is known). Over a period, a sum is the sum of the
  reported values and NaN only when nothing was reported (``sum(min_count=1)``).
* **A rate only uses units where both of its terms are fully known** ("paired" sums). Ingestion
  leaves a campaign-day's impressions/clicks/conversions null when any ad-set part was blank.
  Summing clicks over 7 days but impressions over the 5 days that reported them would inflate
  CTR (and could push it above 1), so CTR, CPC, CPM, CPA and conversion_rate sum numerator and
  denominator over the same days. Spend is always known on a delivery day, so CPL, ROAS and
  lead_conversion_rate are plain ratios of the period's sums. ``<col>_complete`` tells whether
  every delivery day of the period reported ``<col>``.
* **Revenue is known only where deal values are reported.** A leads file without a deal_value
  column says nothing about revenue, so every revenue (and ROAS) is NaN, as impressions are for
  an insights file without that column; with the column, a lead that is not won adds 0. Either
  way a period's revenue is known on all its days or on none, so ROAS needs no pairing.
* **Lead events count on their own day**: a lead counts on its added_date, a conversion on the
  day of the lead's first change into a converted status, revenue on that same day. So a
  week's converted_leads can come from leads added in earlier weeks, and
  ``lead_conversion_rate`` (= converted_leads / leads of the same period) is a flow ratio that
  can exceed 1 (it is not a cohort probability).

Everything is vectorized (group-bys and merges); nothing loops over campaigns.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from campaign_pipeline.constants import CONVERTED_STATUSES
from campaign_pipeline.raw_parsing import text_codes

# ---------------------------------------------------------------------------------------
# Column groups and rate definitions
# ---------------------------------------------------------------------------------------

DELIVERY_COLUMNS: tuple[str, ...] = ("spend", "impressions", "clicks", "conversions")
"""From insights.csv; NaN on a day without an insights row."""

MAYBE_UNKNOWN_COLUMNS: tuple[str, ...] = ("impressions", "clicks", "conversions")
"""Delivery columns that may be blank even on a delivery day (spend is required by the contract)."""

LEAD_COUNT_COLUMNS: tuple[str, ...] = ("leads", "converted_leads", "won_leads")
"""Counts of lead events; always known (0 when none), int64."""

SUM_COLUMNS: tuple[str, ...] = DELIVERY_COLUMNS + LEAD_COUNT_COLUMNS + ("revenue",)

COUNT_COLUMNS: tuple[str, ...] = MAYBE_UNKNOWN_COLUMNS + LEAD_COUNT_COLUMNS
"""The sums that are counts: published as integers (``Int64``, null where unknown, for the
delivery counts; ``int64`` for the lead counts, always known)."""

CAMPAIGN_METADATA: tuple[str, ...] = ("user_id", "project_name", "platform")

CPM_SCALE = 1000.0
"""CPM is the cost of a thousand impressions (industry definition)."""


@dataclass(frozen=True)
class Rate:
    """A rate ``scale * numerator / denominator`` computed from a period's sums."""

    name: str
    numerator: str
    denominator: str
    scale: float = 1.0
    paired: bool = False
    """Sum numerator and denominator only over units where both are fully known (see module doc)."""


RATES: tuple[Rate, ...] = (
    Rate("ctr", "clicks", "impressions", paired=True),
    Rate("cpc", "spend", "clicks", paired=True),
    Rate("cpm", "spend", "impressions", scale=CPM_SCALE, paired=True),
    Rate("cpa", "spend", "conversions", paired=True),
    Rate("cpl", "spend", "leads"),
    Rate("conversion_rate", "conversions", "clicks", paired=True),
    Rate("lead_conversion_rate", "converted_leads", "leads"),
    Rate("roas", "revenue", "spend"),
)
RATE_NAMES: tuple[str, ...] = tuple(r.name for r in RATES)

WOW_METRICS: tuple[str, ...] = (
    "spend",
    "impressions",
    "clicks",
    "conversions",
    "leads",
    "converted_leads",
    "revenue",
    "ctr",
    "cpc",
    "cpm",
    "cpa",
    "cpl",
    "conversion_rate",
    "roas",
)
"""Metrics week_over_week compares with the previous calendar week."""

EVENT_SUMS: tuple[str, ...] = ("leads", "converted_leads", "won_leads")
"""Sums that are 0 (not unknown) for a period without rows: we hold every lead. Revenue is 0
for such a period only when the leads report deal values (see `lead_events`)."""

DEAL_VALUE = "deal_value"
"""The optional leads column revenue comes from; without it revenue is unknown."""

DAILY_COLUMNS: list[str] = [
    "campaign_id",
    "date",
    *CAMPAIGN_METADATA,
    "has_delivery",
    *SUM_COLUMNS,
    *RATE_NAMES,
]
LEAD_EVENT_COLUMNS: list[str] = [
    "lead_id",
    "campaign_id",
    "added_date",
    "lead_status",
    "is_converted",
    "converted_date",
    "conversion_source",
    "is_won",
    "revenue",
    "revenue_date",
]

# What daily_campaign_metrics reads of the lead events.
DAILY_EVENT_COLUMNS: list[str] = [
    "campaign_id",
    "added_date",
    "is_converted",
    "converted_date",
    "is_won",
    "revenue",
    "revenue_date",
]


def safe_ratio(numerator: pd.Series, denominator: pd.Series, scale: float = 1.0) -> pd.Series:
    """``scale * numerator / denominator``, NaN where the denominator is 0 or NaN (never inf).

    A zero denominator means the rate is undefined (no clicks -> no cost per click), which
    must not read as 0 (a perfect CPC) nor as inf (which breaks every downstream mean).
    """
    num = pd.to_numeric(numerator, errors="coerce").astype("float64")
    den = pd.to_numeric(denominator, errors="coerce").astype("float64")
    return scale * num / den.where(den > 0)


def whole_counts(values, column: str = "count") -> pd.Series | np.ndarray:
    """``values`` (floats, NaN where unknown) as pandas' nullable ``Int64``: a count that may be
    unknown is published as an integer, null where unknown. A value that is not a whole number
    raises rather than being rounded away (ingestion quarantines fractional counts, so one here
    is a bug)."""
    floats = np.asarray(values, dtype="float64")
    known = ~np.isnan(floats)
    if not np.array_equal(floats[known], np.round(floats[known])):
        raise ValueError(f"{column} holds a value that is not a whole number")
    array = pd.array(floats, dtype="Int64")
    return pd.Series(array, index=values.index) if isinstance(values, pd.Series) else array


def week_start_of(dates: pd.Series) -> pd.Series:
    """The Monday (ISO week start, midnight) of each date."""
    dates = pd.to_datetime(dates)
    return (dates - pd.to_timedelta(dates.dt.weekday, unit="D")).dt.normalize()


def _as_day(value) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value).normalize()


def _in_window(dates: pd.Series, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pd.Series:
    mask = pd.Series(True, index=dates.index)
    if start is not None:
        mask &= dates >= start
    if end is not None:
        mask &= dates <= end
    return mask


# ---------------------------------------------------------------------------------------
# 1. Lead events
# ---------------------------------------------------------------------------------------


def _normalize_status(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().str.upper()


def _status_in(values: pd.Series, statuses: set[str]) -> np.ndarray:
    """Whether each (trimmed, upper-cased) status is in ``statuses``; null is not.

    Normalizes the few distinct values instead of every row (a change log has millions of
    rows but a handful of statuses).
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if len(uniques) == 0:
        return np.zeros(len(values), dtype=bool)
    unique_in = np.append(
        _normalize_status(pd.Series(uniques)).isin(statuses).fillna(False).to_numpy(bool), False
    )
    return unique_in[codes]  # code -1 (null) picks the trailing False


def _first_entry_into(changes: pd.DataFrame, statuses: set[str]) -> pd.Series:
    """Per lead_id, the day of the earliest change into ``statuses``.

    A change is an entry when its new_status is in the set and the lead was not in the set just
    before, judged by BOTH witnesses of the prior state: the row's own old_status and the
    new_status of the lead's previous change (by changed_at; equal timestamps keep file order).
    Either one saying "not in the set" makes it an entry: exports drop changes, so a chain such
    as NEW->CONTACTED then QUALIFIED->DONE_DEAL (the CONTACTED->QUALIFIED change is missing)
    shows the lead outside the set after its first change; its first *observed* converted state
    is the DONE_DEAL change, a better estimate than added_date. A null old_status on the first
    change means "no status before" (not in the set).
    """
    lead_codes, lead_ids = pd.factorize(changes["lead_id"])
    first = _first_entry_by_code(changes, statuses, lead_codes)
    return pd.Series(first.to_numpy(), index=lead_ids[first.index], name="first_entry")


def _first_entry_by_code(
    changes: pd.DataFrame, statuses: set[str], lead_codes: np.ndarray
) -> pd.Series:
    """`_first_entry_into` keyed by each lead's integer code (-1: null lead_id)."""
    at = pd.to_datetime(changes["changed_at"]).to_numpy()
    order = np.lexsort((at, lead_codes))  # stable: by lead, then time, ties in file order
    lead_sorted, at_sorted = lead_codes[order], at[order]
    new_in = _status_in(changes["new_status"], statuses)[order]
    old_in = _status_in(changes["old_status"], statuses)[order]

    same_lead_as_previous = np.r_[False, lead_sorted[1:] == lead_sorted[:-1]]
    previous_new_in = np.r_[False, new_in[:-1]]
    previous_says_outside = same_lead_as_previous & ~previous_new_in
    is_entry = new_in & (~old_in | previous_says_outside) & (lead_sorted >= 0)  # -1: null lead_id

    first = pd.Series(at_sorted[is_entry]).groupby(lead_sorted[is_entry]).min()
    return first.dt.normalize()


def _lead_codes(lead_ids: pd.Series, change_ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """One integer code per lead id across both tables, for each lead and each change (a
    change's code is its lead's; -1: null id).

    Found by sorting (`raw_parsing.text_codes`): factorizing both columns with a hash table
    took 0.8 GB for the 8.7M ids of a year of 16,000 campaigns.
    """
    both = _arrow_ids(change_ids, lead_ids)
    if both is None:  # ids of two types (no id of one equals an id of the other)
        codes, _ = pd.factorize(pd.concat([change_ids, lead_ids], ignore_index=True))
    else:
        codes = text_codes(both)
    return codes[len(change_ids) :], codes[: len(change_ids)]


def _arrow_ids(*columns: pd.Series) -> pa.ChunkedArray | None:
    """The columns one after the other as Arrow, without copying Arrow-backed text; None when
    they hold values of two different types (a number never equals a text)."""
    arrays = [pa.array(column, from_pandas=True) for column in columns]  # Arrow text: no copy
    known = [a.type for a in arrays if not pa.types.is_null(a.type)]
    target = known[0] if known else pa.string()
    text = (pa.types.is_string, pa.types.is_large_string)
    chunks = []
    for array in arrays:
        if array.type != target:
            same_kind = any(is_text(array.type) for is_text in text) and any(
                is_text(target) for is_text in text
            )
            if not (same_kind or pa.types.is_null(array.type)):
                return None
            array = array.cast(target)
        chunks.extend(array.chunks if isinstance(array, pa.ChunkedArray) else [array])
    return pa.chunked_array(chunks, type=target)


def lead_events(
    leads: pd.DataFrame,
    lead_status_changes: pd.DataFrame,
    converted_statuses: Iterable[str] = CONVERTED_STATUSES,
) -> pd.DataFrame:
    """One row per lead with the days its events count on.

    Rules (the contract: "a lead converts on the first status change into a converted status;
    without history, on its added_date"):

    * ``is_converted``: the lead's *current* status is converted. A lead whose history once
      reached a converted status but whose current status is not converted (e.g. QUALIFIED ->
      LOST) is not converted: the current status is the CRM's latest word.
    * ``converted_date`` (converted leads only): the day of the earliest change (by
      ``changed_at``, so unsorted or re-delivered history does not matter) whose new_status is
      converted and whose prior status is not (see ``_first_entry_into`` for how a broken
      history is read). Later re-entries after a drop-out do not move it.
      Fallback to ``added_date`` (``conversion_source == "added_date"``) when the history holds
      no such entry: no history at all, or a history that starts already converted (e.g. only
      QUALIFIED -> DONE_DEAL), whose entry happened before the export began, on or after
      added_date; added_date is the contract's rule and the earliest possible day.
      A change dated before added_date is clamped to added_date: a lead cannot convert before it
      exists, and counting it earlier would put a conversion in a week without its lead.
    * ``is_won``: converted AND deal_value present (a recorded 0 is a won deal worth 0). A
      deal_value on a non-converted lead is not revenue (the deal was not closed as won).
    * ``revenue``: deal_value of won leads, 0.0 otherwise (a lead that is not won adds
      nothing); ``revenue_date`` = converted_date for won leads, NaT otherwise.
    * ``leads`` without a ``deal_value`` column (the file has none): revenue is NaN for every
      lead and no lead is won. Revenue is then unknown, and 0 would publish a ROAS of 0 for
      campaigns whose deals were never reported.
    """
    if isinstance(converted_statuses, str):  # one status, not its characters
        converted_statuses = (converted_statuses,)
    converted = set(_normalize_status(pd.Series(list(converted_statuses), dtype="string")).dropna())
    is_converted = _status_in(leads["lead_status"], converted)
    lead_codes, change_codes = _lead_codes(leads["lead_id"], lead_status_changes["lead_id"])
    first_entry = _first_entry_by_code(lead_status_changes, converted, change_codes)
    size = int(max(lead_codes.max(initial=-1), change_codes.max(initial=-1))) + 2
    entry_by_code = np.full(size, np.datetime64("NaT"), dtype="datetime64[ns]")
    entry_by_code[first_entry.index.to_numpy()] = first_entry.to_numpy()  # last slot: code -1

    added = pd.to_datetime(leads["added_date"]).dt.normalize()
    entry_day = pd.Series(entry_by_code[lead_codes], index=leads.index)
    has_entry = entry_day.notna().to_numpy()
    converted_day = entry_day.where(~has_entry | (entry_day >= added), added)  # clamp to added_date
    converted_day = converted_day.where(has_entry, added).where(is_converted)

    source = np.where(is_converted, np.where(has_entry, "status_change", "added_date"), None)
    reported = DEAL_VALUE in leads.columns
    deal_value = (
        pd.to_numeric(leads[DEAL_VALUE], errors="coerce").astype("float64")
        if reported
        else pd.Series(np.nan, index=leads.index)
    )
    is_won = is_converted & deal_value.notna().to_numpy()

    columns = {
        "lead_id": leads["lead_id"].array,
        "campaign_id": leads["campaign_id"].array,
        "added_date": added.to_numpy(),
        "lead_status": leads["lead_status"].array,
        "is_converted": is_converted,
        "converted_date": pd.to_datetime(converted_day).to_numpy(),
        "conversion_source": source,
        "is_won": is_won,
        "revenue": np.where(is_won, deal_value.fillna(0.0).to_numpy(), 0.0 if reported else np.nan),
        "revenue_date": pd.to_datetime(converted_day.where(is_won)).to_numpy(),
    }
    # the columns as they are (a 4.8M-lead table built with copies peaked 0.7 GB higher)
    return pd.DataFrame({name: columns[name] for name in LEAD_EVENT_COLUMNS}, copy=False)


# ---------------------------------------------------------------------------------------
# 2. Daily metrics
# ---------------------------------------------------------------------------------------


def _campaign_metadata(campaigns: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    columns = list(columns)
    meta = campaigns.reindex(columns=["campaign_id", *columns])
    return meta.drop_duplicates("campaign_id")


def _sorted_codes(*columns: pd.Series) -> tuple[list[np.ndarray], np.ndarray]:
    """Integer codes of the values of several columns in one code space, numbered in sorted
    order of the values (object array of them returned too). A categorical column is coded
    from its categories, without touching its rows' strings; null gets -1."""
    parts = []
    for column in columns:
        if isinstance(column.dtype, pd.CategoricalDtype):
            parts.append((column.cat.codes.to_numpy(), column.cat.categories.to_numpy(object)))
        else:
            codes, values = pd.factorize(column.to_numpy(dtype=object))
            parts.append((codes, np.asarray(values, dtype=object)))
    uniques = pd.unique(np.concatenate([values for _, values in parts]))
    uniques = np.asarray(sorted(uniques), dtype=object)
    out = []
    for codes, values in parts:
        recode = np.append(pd.Index(uniques).get_indexer(values), -1)  # code -1 stays -1
        out.append(recode[codes].astype(np.int64))
    return out, uniques


def _unique_sorted(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted (a sort and a comparison of neighbours)."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def _day_numbers(dates: pd.Series) -> np.ndarray:
    """Days since 1970-01-01 (int64; NaT gives the minimum int64, outside any window)."""
    return pd.to_datetime(dates).to_numpy("datetime64[D]").astype(np.int64)


def daily_campaign_metrics(
    insights: pd.DataFrame,
    leads_events: pd.DataFrame,
    campaigns: pd.DataFrame,
    start=None,
    end=None,
    revenue_reported: bool = True,
) -> pd.DataFrame:
    """One row per (campaign_id, date) with any delivery or lead event, rates of that day.

    An OUTER join of delivery and lead events: a campaign-day with leads but no insights row
    keeps its leads with spend/impressions/clicks/conversions NaN (``has_delivery`` False);
    a delivery day without leads has leads 0, so cpl is NaN (undefined), not 0.
    ``start``/``end`` (inclusive days, None = open) restrict the rows; every row depends only
    on its own day, so a restricted run equals the same rows of an unrestricted one.
    ``revenue_reported``: whether the leads file has a deal_value column. It is passed rather
    than read from ``leads_events`` because a block of days may hold no lead event at all;
    without it every revenue (and ROAS) is NaN, never 0.

    The join runs on integer keys (campaign code x day) rather than on string indexes: every
    campaign-day is a number, each part is placed by a sorted search, and revenue is summed
    by one group-by over those numbers, in the events' order.
    """
    window = (_as_day(start), _as_day(end))
    ins = insights[_in_window(pd.to_datetime(insights["date"]), *window)]
    ev = leads_events
    added = ev["added_date"].notna() & _in_window(ev["added_date"], *window)
    converted = ev["is_converted"].astype(bool) & ev["converted_date"].notna()
    converted &= _in_window(ev["converted_date"], *window)
    won = ev["is_won"].astype(bool) & ev["revenue_date"].notna()
    won &= _in_window(ev["revenue_date"], *window)

    # campaign codes in sorted order of the ids, so that sorted keys are sorted rows
    (ins_code, ev_code), uniques = _sorted_codes(ins["campaign_id"], ev["campaign_id"])
    days = {
        "delivery": _day_numbers(ins["date"]),
        "leads": _day_numbers(ev["added_date"]),
        "converted_leads": _day_numbers(ev["converted_date"]),
        "won_leads": _day_numbers(ev["revenue_date"]),
    }
    known_campaign = ev_code >= 0  # an event without a campaign is in no group (as group-by)
    masks = {
        "leads": added.to_numpy() & known_campaign,
        "converted_leads": converted.to_numpy() & known_campaign,
        "won_leads": won.to_numpy() & known_campaign,
    }
    known = [days["delivery"]] + [days[name][masks[name]] for name in masks]
    first = min((d.min() for d in known if len(d)), default=0)
    span = max((d.max() for d in known if len(d)), default=0) - first + 1

    def keys(code: np.ndarray, day: np.ndarray) -> np.ndarray:
        return code.astype(np.int64) * span + (day - first)

    part_keys = {"delivery": keys(ins_code, days["delivery"])}
    for name, mask in masks.items():
        part_keys[name] = keys(ev_code[mask], days[name][mask])
    all_keys = _unique_sorted(np.concatenate(list(part_keys.values())))
    n = len(all_keys)
    row_code = all_keys // span

    columns: dict[str, np.ndarray] = {
        "campaign_id": uniques[row_code],
        "date": (first + all_keys % span).astype("datetime64[D]").astype("datetime64[ns]"),
    }
    at = np.searchsorted(all_keys, part_keys["delivery"])
    has_delivery = np.zeros(n, bool)
    has_delivery[at] = True
    for column in DELIVERY_COLUMNS:
        values = np.full(n, np.nan)
        values[at] = ins[column].to_numpy(dtype="float64")
        columns[column] = values
    for name in LEAD_COUNT_COLUMNS:
        columns[name] = np.bincount(np.searchsorted(all_keys, part_keys[name]), minlength=n).astype(
            np.int64
        )
    revenue = (
        pd.Series(ev["revenue"].to_numpy(dtype="float64")[masks["won_leads"]])
        .groupby(part_keys["won_leads"])
        .sum()
    )
    columns["revenue"] = np.zeros(n) if revenue_reported else np.full(n, np.nan)
    columns["revenue"][np.searchsorted(all_keys, revenue.index.to_numpy())] = revenue.to_numpy()
    columns["has_delivery"] = has_delivery
    for rate in RATES:  # safe_ratio's arithmetic on the arrays
        numerator = columns[rate.numerator].astype("float64")
        denominator = columns[rate.denominator].astype("float64")
        with np.errstate(invalid="ignore", divide="ignore"):
            columns[rate.name] = (
                rate.scale * numerator / np.where(denominator > 0, denominator, np.nan)
            )
    for column in MAYBE_UNKNOWN_COLUMNS:  # counts, null where the day did not report them
        columns[column] = whole_counts(columns[column], column)
    meta = _campaign_metadata(campaigns, CAMPAIGN_METADATA).set_index("campaign_id")
    at = meta.index.get_indexer(pd.Index(uniques))
    for column in CAMPAIGN_METADATA:
        values = np.append(meta[column].to_numpy(dtype=object), np.nan)  # -1: no metadata
        columns[column] = values[at][row_code]
    return pd.DataFrame({column: columns[column] for column in DAILY_COLUMNS})


# ---------------------------------------------------------------------------------------
# Aggregation shared by the weekly, period and totals tables
# ---------------------------------------------------------------------------------------


def _aggregate(
    units: pd.DataFrame,
    keys: list[str],
    known: dict[str, pd.Series],
    incomplete: dict[str, pd.Series],
    active_days: pd.Series,
) -> pd.DataFrame:
    """Sum ``units`` (days or campaign-weeks) per ``keys`` and compute every rate.

    ``known[col]``: the unit's value of col is fully known (usable in a paired rate).
    ``incomplete[col]``: the unit had delivery but did not fully report col.
    """
    work = units[keys].copy()
    for column in SUM_COLUMNS:
        work[column] = units[column].astype("float64")
    work["days_active"] = active_days.astype("int64")
    for column in MAYBE_UNKNOWN_COLUMNS:
        work[f"_incomplete_{column}"] = incomplete[column].astype("int64")
    for rate in RATES:
        if rate.paired:
            both = known[rate.numerator] & known[rate.denominator]
            work[f"_num_{rate.name}"] = units[rate.numerator].astype("float64").where(both)
            work[f"_den_{rate.name}"] = units[rate.denominator].astype("float64").where(both)

    grouped = work.groupby(keys, sort=True, dropna=False)
    sums = grouped.sum(min_count=1)
    out = sums[list(SUM_COLUMNS)].copy()
    for column in EVENT_SUMS:
        out[column] = out[column].fillna(0.0)
    for column in LEAD_COUNT_COLUMNS:
        out[column] = out[column].astype("int64")
    out["days_active"] = sums["days_active"].fillna(0).astype("int64")
    for column in MAYBE_UNKNOWN_COLUMNS:
        out[f"{column}_complete"] = sums[f"_incomplete_{column}"].fillna(0).eq(0)
    for rate in RATES:
        if rate.paired:
            out[rate.name] = safe_ratio(
                sums[f"_num_{rate.name}"], sums[f"_den_{rate.name}"], rate.scale
            )
        else:
            out[rate.name] = safe_ratio(out[rate.numerator], out[rate.denominator], rate.scale)
    for column in MAYBE_UNKNOWN_COLUMNS:  # counts, null where nothing was reported
        out[column] = whole_counts(out[column], column)
    return out.reset_index()


def _aggregate_days(daily: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    has_delivery = daily["has_delivery"].astype(bool)
    known = {c: daily[c].notna() for c in DELIVERY_COLUMNS + LEAD_COUNT_COLUMNS + ("revenue",)}
    incomplete = {c: has_delivery & daily[c].isna() for c in MAYBE_UNKNOWN_COLUMNS}
    return _aggregate(daily, keys, known, incomplete, has_delivery)


COMPLETE_FLAGS: tuple[str, ...] = tuple(f"{c}_complete" for c in MAYBE_UNKNOWN_COLUMNS)


# ---------------------------------------------------------------------------------------
# 3. Weekly metrics
# ---------------------------------------------------------------------------------------

WEEKLY_COLUMNS: list[str] = [
    "week_start",
    "campaign_id",
    *CAMPAIGN_METADATA,
    "days_active",
    *SUM_COLUMNS,
    *RATE_NAMES,
    *COMPLETE_FLAGS,
]


def weekly_campaign_metrics(daily: pd.DataFrame, campaigns: pd.DataFrame) -> pd.DataFrame:
    """One row per (week_start, campaign_id) with any daily row that week (Monday weeks).

    Sums of the week's days (reported values only; NaN when no day reported), rates as ratios
    of the week's sums (paired where a term can be blank, see module doc), ``days_active`` =
    days with an insights row, and ``<col>_complete`` flags.
    """
    frame = daily.assign(week_start=week_start_of(daily["date"]))
    weekly = _aggregate_days(frame, ["week_start", "campaign_id"])
    weekly = weekly.merge(
        _campaign_metadata(campaigns, CAMPAIGN_METADATA), on="campaign_id", how="left"
    )
    weekly["week_start"] = pd.to_datetime(weekly["week_start"])
    return weekly[WEEKLY_COLUMNS].sort_values(["week_start", "campaign_id"], ignore_index=True)


# ---------------------------------------------------------------------------------------
# 4. Week over week
# ---------------------------------------------------------------------------------------


def week_over_week(
    weekly: pd.DataFrame, known_weeks: Collection[str] | None = None
) -> pd.DataFrame:
    """``weekly`` plus ``<m>_prev``, ``<m>_wow_abs`` and ``<m>_wow_pct`` for each WOW_METRICS.

    The comparison is with the campaign's previous *calendar* week, not its previous row.
    ``prev_week_status`` says what that week was:

    * ``present``: the campaign has a row that week.
    * ``no_activity``: the week is known (below) but the campaign has no row: nothing was
      delivered and no lead event happened. Its values are what an empty week aggregates to:
      lead counts 0, revenue 0 where deal values are reported (NaN where they are not),
      delivery sums NaN (nothing reported, as for any week without insights rows), rates NaN.
    * ``unknown``: the week is not known: all prev NaN.

    ``known_weeks``: the week_starts (``YYYY-MM-DD``) whose rows ``weekly`` holds in full,
    an empty week included: the weeks a caller read from stored daily partitions inside the
    accepted data's range. Without it, the weeks from the first week_start in ``weekly`` on
    are known. A caller reading a block of weeks passes them: otherwise a week in which no
    campaign had a row, at the start of what it read, would read as not loaded, and the same
    week would compare differently in runs that split the weeks differently.

    ``<m>_wow_abs`` = current - prev; ``<m>_wow_pct`` = (current - prev) / prev as a fraction
    (0.25 = +25%), NaN when prev is 0 or NaN (growth from nothing has no percentage).
    A campaign with a row last week but none this week gets no row (it is not in ``weekly``).
    """
    metrics = [m for m in WOW_METRICS if m in weekly.columns]
    keys = ["campaign_id", "week_start"]
    previous = weekly[keys + metrics].copy()
    previous["week_start"] = pd.to_datetime(previous["week_start"]) + pd.Timedelta(days=7)
    previous = previous.rename(columns={m: f"{m}_prev" for m in metrics})

    out = weekly.copy()
    out["week_start"] = pd.to_datetime(out["week_start"])
    out = out.merge(previous, on=keys, how="left", indicator="_match", validate="one_to_one")
    present = out["_match"].eq("both")
    previous_week = out["week_start"] - pd.Timedelta(days=7)
    if known_weeks is not None:
        covered = previous_week.dt.strftime("%Y-%m-%d").isin(list(known_weeks))
    else:
        covered = previous_week >= out["week_start"].min() if len(out) else present
    out["prev_week_status"] = np.select([present, covered], ["present", "no_activity"], "unknown")
    no_activity = ~present & covered
    for metric in metrics:
        if metric in EVENT_SUMS:
            out.loc[no_activity, f"{metric}_prev"] = 0.0
        elif metric == "revenue":  # 0 where revenue is reported (known this week), else unknown
            out.loc[no_activity & out[metric].notna(), f"{metric}_prev"] = 0.0
        prev = out[f"{metric}_prev"].astype("float64")
        change = out[metric].astype("float64") - prev
        out[f"{metric}_prev"] = prev
        out[f"{metric}_wow_abs"] = change
        out[f"{metric}_wow_pct"] = change / prev.where(prev != 0)
        if metric in COUNT_COLUMNS:  # a count and a change of counts are integers
            out[f"{metric}_prev"] = whole_counts(prev, f"{metric}_prev")
            out[f"{metric}_wow_abs"] = whole_counts(change, f"{metric}_wow_abs")
    return out.drop(columns="_match")


# ---------------------------------------------------------------------------------------
# 5. Weekly totals
# ---------------------------------------------------------------------------------------


WEEKLY_TOTALS_INPUTS: tuple[str, ...] = (
    "week_start",
    "campaign_id",
    "platform",
    "days_active",
    *SUM_COLUMNS,
    *(f"{c}_complete" for c in MAYBE_UNKNOWN_COLUMNS),
)
"""The weekly campaign columns `weekly_totals` reads (by portfolio or by platform): rates are
recomputed from the sums, so a year of weekly rows is read without its 40 other columns."""


def weekly_totals(weekly: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Totals per week across all campaigns (``by=None``) or per value of ``by`` (e.g. "platform").

    Sums of the campaign-weeks; rates as ratios of those sums. A paired rate (CTR, CPC, CPM,
    CPA, conversion_rate) uses only campaign-weeks where both terms are complete for the whole
    week: a partly reported week cannot be paired day by day any more at this level, and mixing
    its partial sums would bias the rate (and could push CTR above 1). The ``<col>_complete``
    flags say whether every campaign-week reported it fully.
    ``n_campaigns``: campaigns with any row that week; ``n_campaigns_delivering``: with delivery;
    ``campaign_days_active``: delivery days summed over campaigns.
    """
    keys = ["week_start"] + ([by] if by is not None else [])
    units = weekly  # read only: every derived column is a new Series or frame
    complete = {c: units[f"{c}_complete"].astype(bool) for c in MAYBE_UNKNOWN_COLUMNS}
    known = {c: units[c].notna() & complete.get(c, True) for c in SUM_COLUMNS}
    incomplete = {c: ~complete[c] for c in MAYBE_UNKNOWN_COLUMNS}
    totals = _aggregate(units, keys, known, incomplete, units["days_active"])
    totals = totals.rename(columns={"days_active": "campaign_days_active"})

    grouped = units.assign(_delivering=units["days_active"] > 0).groupby(
        keys, sort=True, dropna=False
    )
    counts = pd.DataFrame(
        {
            "n_campaigns": grouped["campaign_id"].nunique(),
            "n_campaigns_delivering": grouped["_delivering"].sum(),
        }
    ).reset_index()
    totals = totals.merge(counts, on=keys, how="left")
    for column in ("n_campaigns", "n_campaigns_delivering"):
        totals[column] = totals[column].astype("int64")
    totals["week_start"] = pd.to_datetime(totals["week_start"])
    columns = [
        *keys,
        "n_campaigns",
        "n_campaigns_delivering",
        "campaign_days_active",
        *SUM_COLUMNS,
        *RATE_NAMES,
        *COMPLETE_FLAGS,
    ]
    return totals[columns].sort_values(keys, ignore_index=True)


# The dated column of each file's rows in the quarantine's raw_values (campaigns.csv rows are
# campaigns, not activity of a week, so they have none here).
QUARANTINE_DATE_FIELDS = {
    "insights.csv": "created_at",
    "campaign_leads.csv": "added_date",
    "lead_status_changes.csv": "created_at",
}
QUARANTINE_WEEK_COLUMNS = ["week_start", "quarantined_rows", "quarantined_spend"]


def _raw_field(raw_values: pd.Series, field: str) -> pd.Series:
    """One text field of the quarantine's raw_values JSON (sorted keys, string values)."""
    pattern = rf'"{field}": "((?:[^"\\]|\\.)*)"'
    return raw_values.astype(str).str.extract(pattern, expand=False)


def quarantine_by_week(quarantine: pd.DataFrame, *, excluded_spend_reasons=()) -> pd.DataFrame:
    """Quarantined rows and spend per week, from the published ``quarantine`` table.

    A row counts in the week of its own date (insights created_at, leads added_date, status
    changes created_at) when that date can be read; rows without a readable date cannot be
    placed in a week and stay visible in the quarantine table only. ``quarantined_spend`` adds
    the spend of quarantined insights rows whose spend cell is a finite number, except the
    reasons in ``excluded_spend_reasons`` (an amount quarantined because it is implausible is
    not money anyone spent), so that for each week the raw file's spend is the published spend
    plus this (plus exact duplicates removed).
    """
    from campaign_pipeline.ingestion import parse_numbers, parse_timestamps

    if quarantine is None or len(quarantine) == 0:
        return pd.DataFrame(
            {
                "week_start": pd.Series(dtype="datetime64[ns]"),
                "quarantined_rows": pd.Series(dtype="int64"),
                "quarantined_spend": pd.Series(dtype="float64"),
            }
        )
    field = quarantine["source_file"].map(QUARANTINE_DATE_FIELDS)
    text = pd.Series(pd.NA, index=quarantine.index, dtype="string")
    for name in set(QUARANTINE_DATE_FIELDS.values()):
        rows = field == name
        text[rows] = _raw_field(quarantine.loc[rows, "raw_values"], name)
    day = parse_timestamps(text.fillna("")).dt.normalize()
    insights = quarantine["source_file"].eq("insights.csv") & ~quarantine["reason_code"].isin(
        list(excluded_spend_reasons)
    )
    spend, _ = parse_numbers(_raw_field(quarantine["raw_values"], "spend").fillna(""))
    spend = spend.where(insights & np.isfinite(spend), 0.0).fillna(0.0)
    dated = day.notna()
    week = (day - pd.to_timedelta(day.dt.weekday, unit="D"))[dated]
    out = (
        pd.DataFrame({"week_start": week, "spend": spend[dated]})
        .groupby("week_start", sort=True)
        .agg(quarantined_rows=("spend", "size"), quarantined_spend=("spend", "sum"))
        .reset_index()
    )
    return out.astype({"quarantined_rows": "int64", "quarantined_spend": "float64"})[
        QUARANTINE_WEEK_COLUMNS
    ]


def with_quarantine(totals: pd.DataFrame, by_week: pd.DataFrame) -> pd.DataFrame:
    """Weekly totals with the week's quarantined rows and spend on the portfolio rows
    (``scope == "all"``; 0 for a week without any). Per-platform rows get null: a rejected row
    may have no known campaign, hence no platform."""
    out = totals.merge(by_week, on="week_start", how="left")
    portfolio = out["scope"].eq("all")
    rows = out["quarantined_rows"].where(~portfolio, out["quarantined_rows"].fillna(0))
    spend = out["quarantined_spend"].where(~portfolio, out["quarantined_spend"].fillna(0.0))
    return out.assign(
        quarantined_rows=rows.where(portfolio).astype("Int64"),
        quarantined_spend=spend.where(portfolio).astype("float64"),
    )


DATA_RANGE_COLUMNS = ("data_first_day", "data_last_day")


def with_data_range(
    totals: pd.DataFrame, day_range: tuple[pd.Timestamp, pd.Timestamp] | None
) -> pd.DataFrame:
    """Weekly totals with the first and last day of each row's week that the accepted data's
    range covers (``PipelineStorage.accepted_day_range``: the days a published figure can fall
    on; null when no accepted row has a date or the range misses the week). Those are the days
    the week's figures cover (`covered_days`), which is what tells a partial week from one with
    a day nobody delivered on: a day of an outage is inside the range. Clipped to the week, a
    whole week's row reads its Monday and Sunday, and stays so when later data arrive."""
    first, last = (pd.NaT, pd.NaT) if day_range is None else day_range
    starts = pd.to_datetime(totals["week_start"]).dt.normalize()
    if pd.isna(first) or pd.isna(last):
        first_day = last_day = pd.Series(pd.NaT, index=totals.index)
    else:
        first_day = starts.clip(lower=pd.Timestamp(first).normalize())
        last_day = (starts + pd.Timedelta(days=6)).clip(upper=pd.Timestamp(last).normalize())
        missed = last_day < first_day
        first_day, last_day = first_day.mask(missed), last_day.mask(missed)
    return totals.assign(data_first_day=first_day, data_last_day=last_day).astype(
        {c: "datetime64[ns]" for c in DATA_RANGE_COLUMNS}
    )


def covered_days(week_start, first_day, last_day) -> tuple[pd.Timestamp, pd.Timestamp, int] | None:
    """(first, last, count) of the week's days inside the accepted data's range ``first_day`` to
    ``last_day`` (inclusive); None when the week and the range do not meet."""
    start = pd.Timestamp(week_start).normalize()
    first = max(start, pd.Timestamp(first_day).normalize())
    last = min(start + pd.Timedelta(days=6), pd.Timestamp(last_day).normalize())
    if last < first:
        return None
    return first, last, (last - first).days + 1


# ---------------------------------------------------------------------------------------
# 6. Campaign period summary (the seed's campaign_perf_4)
# ---------------------------------------------------------------------------------------

SUMMARY_METADATA: tuple[str, ...] = (
    "user_id",
    "project_name",
    "platform",
    "daily_budget",
    "campaign_name",
)
SUMMARY_COLUMNS: list[str] = [
    "campaign_id",
    "total_spend",
    "days_active",
    "total_leads",
    "converted_leads",
    "conversion_rate",
    "cpl",
    "leads_per_day",
    "spend_per_day",
    "revenue",
    "roas",
    *SUMMARY_METADATA,
    "won_leads",
    "total_impressions",
    "total_clicks",
    "total_conversions",
    "ctr",
    "cpc",
    "cpm",
    "cpa",
    "click_conversion_rate",
    *COMPLETE_FLAGS,
]


def campaign_period_summary(
    daily: pd.DataFrame, campaigns: pd.DataFrame, start=None, end=None
) -> pd.DataFrame:
    """One row per campaign with any daily row (delivery or lead event) in [start, end].

    ``start``/``end`` are inclusive days; None leaves that side open (both None = lifetime).
    Names follow the seed: ``conversion_rate`` here is converted_leads / total_leads (leads
    converting in the window over leads added in it; over a short window it can exceed 1 when
    older leads convert), and the click-based rate is ``click_conversion_rate``.
    ``total_spend`` is NaN for a campaign with leads but no insights row in the window (no spend
    was reported), so its cpl and spend_per_day are NaN; ``leads_per_day`` and
    ``spend_per_day`` divide by days_active and are NaN without delivery days.
    """
    if start is None and end is None:  # the lifetime: every row, without a copy of them all
        return _period_summary(daily, campaigns)
    window = (_as_day(start), _as_day(end))
    in_window = daily[_in_window(pd.to_datetime(daily["date"]), *window)]
    return _period_summary(in_window, campaigns)


def _period_summary(
    in_window: pd.DataFrame, campaigns: pd.DataFrame, by: list[str] | None = None
) -> pd.DataFrame:
    """The summary of the days given, per campaign (and per ``by`` first)."""
    by = by or []
    summary = _aggregate_days(in_window, [*by, "campaign_id"])
    summary = summary.rename(
        columns={
            "spend": "total_spend",
            "leads": "total_leads",
            "impressions": "total_impressions",
            "clicks": "total_clicks",
            "conversions": "total_conversions",
            "conversion_rate": "click_conversion_rate",
        }
    )
    summary["conversion_rate"] = summary.pop("lead_conversion_rate")
    summary["leads_per_day"] = safe_ratio(summary["total_leads"], summary["days_active"])
    summary["spend_per_day"] = safe_ratio(summary["total_spend"], summary["days_active"])
    summary = summary.merge(
        _campaign_metadata(campaigns, SUMMARY_METADATA), on="campaign_id", how="left"
    )
    return summary[[*by, *SUMMARY_COLUMNS]].sort_values([*by, "campaign_id"], ignore_index=True)


# Daily rows summarized at once by `trailing_period_summaries` (each counted once per window
# holding it): bounds the memory of a year of weeks to a few hundred MB.
SUMMARY_CHUNK_ROWS = 2_000_000
SUMMARY_INPUTS: tuple[str, ...] = ("campaign_id", "date", "has_delivery", *SUM_COLUMNS)
"""The daily columns weekly sums and period summaries read: rates are recomputed from sums."""


def trailing_period_summaries(
    daily: pd.DataFrame,
    campaigns: pd.DataFrame,
    week_starts: Iterable,
    window_days: int,
    chunk_rows: int = SUMMARY_CHUNK_ROWS,
) -> pd.DataFrame:
    """``campaign_period_summary`` of many weeks' trailing windows at once, with ``week_start``.

    Week w's window is the ``window_days`` days ending on its Sunday. Every daily row is
    repeated once per window that holds it, in the order of ``daily``, and one group-by over
    (week, campaign) sums them: each (week, campaign) adds exactly the rows, in exactly the
    order, of a ``campaign_period_summary(daily, campaigns, start, end)`` call for that week,
    so the numbers are that call's (not merely close: the same sums of the same floats).
    Rows are ordered by week, then campaign. ``chunk_rows`` bounds the repeated rows summed at
    once (the result does not depend on it).
    """
    weeks = pd.DatetimeIndex(sorted({pd.Timestamp(w).normalize() for w in week_starts}))
    if not len(weeks) or not len(daily):
        empty = campaign_period_summary(daily.iloc[0:0], campaigns)
        return empty.assign(week_start=pd.Series(dtype="datetime64[ns]"))
    frame = daily[[c for c in SUMMARY_INPUTS if c in daily.columns]]
    day = pd.to_datetime(frame["date"]).to_numpy("datetime64[D]")
    ends = weeks.to_numpy("datetime64[D]") + np.timedelta64(6, "D")
    starts = ends - np.timedelta64(window_days - 1, "D")
    ordered = np.sort(day)
    in_window = np.searchsorted(ordered, ends, "right") - np.searchsorted(ordered, starts)
    per_week = int(np.ceil(window_days / 7)) + 1  # the most windows one day can fall in
    offsets = (np.arange(per_week) * 7).astype("timedelta64[D]")
    parts, first = [], 0
    while first < len(weeks):
        # consecutive weeks whose windows hold about `chunk_rows` rows in all
        last = first + max(1, int(np.searchsorted(np.cumsum(in_window[first:]), chunk_rows)))
        chunk = weeks[first:last].to_numpy("datetime64[D]")
        inside = (day >= starts[first]) & (day <= ends[last - 1])
        days = day[inside]
        # the weeks whose window holds each day: its week and the next few
        candidate = (days - ((days.astype("int64") - 4) % 7))[:, None] + offsets[None, :]
        sunday = candidate + np.timedelta64(6, "D")
        holds = (sunday >= days[:, None]) & (sunday - (window_days - 1) <= days[:, None])
        holds &= np.isin(candidate, chunk)
        row, which = np.nonzero(holds)
        repeated = frame[inside].iloc[row]
        repeated = repeated.assign(
            week_start=pd.DatetimeIndex(candidate[row, which].astype("datetime64[ns]"))
        )
        # a (week, campaign) group holds its days in the order of `daily`, as a call per week
        parts.append(_period_summary(repeated, campaigns, ["week_start"]))
        first = last
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["week_start", "campaign_id"], ignore_index=True)
