"""Every contract defect lands in quarantine with its reason, and no row is lost."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaign_pipeline import ingestion, raw_parsing
from campaign_pipeline.ingestion import (
    IngestionRules,
    RawFileError,
    ingest_raw_dir,
    parse_timestamps,
)
from campaign_pipeline_tests.builders import (
    CAMPAIGNS,
    CHANGES,
    LEADS,
    write_exports,
)


def quarantined(result, source_file: str) -> pd.DataFrame:
    q = result.quarantine
    return q[q["source_file"] == source_file].set_index("row_key")


def assert_balanced(result):
    for validation in result.files.values():
        acc = validation.accounting
        assert (
            acc["rows_read"]
            == acc["rows_accepted"] + acc["rows_quarantined"] + acc["duplicates_removed"]
        ), acc


@pytest.mark.parametrize(
    ("row", "code", "text"),
    [
        ("I1,C1,2025-13-45,5,500,5,0", "unparseable_date", "'2025-13-45'"),
        ("I1,C1,yesterday,5,500,5,0", "unparseable_date", "'yesterday'"),
        ("I1,C1,2025-01-07,-1.5,500,5,0", "negative_spend", "-1.5"),
        ("I1,C1,2025-01-07,1,5,10,0", "clicks_gt_impressions", "10 > 5"),
        ("I1,C1,1900-01-01,1,50,10,1", "date_out_of_range", "1900-01-01 is before 2000-01-01"),
        ("I1,C1,2125-02-04,1,50,10,1", "date_out_of_range", "2125-02-04 is after"),
        ("I1,C1,2025-01-07,1e308,50,10,1", "implausible_value", "x the daily budget"),
        ("I1,C1,2025-01-07,1,2e12,10,1", "implausible_value", "impressions 2e+12 is above 1e+12"),
        ("I1,C9,2025-01-07,1,50,10,1", "unknown_campaign", "'C9'"),
        ("I1,,2025-01-07,1,50,10,1", "missing_key", "campaign_id is blank"),
        ("I1,C1,2025-01-07,abc,50,10,1", "not_a_number_spend", "'abc'"),
        ('I1,C1,2025-01-07,"12,50",50,10,1', "not_a_number_spend", "'12,50' (a comma is read"),
        ("I1,C1,2025-01-07,,50,10,1", "missing_spend", "spend is blank"),
        ("I1,C1,2025-01-07,3,50.5,10,1", "fractional_count", "50.5"),
    ],
)
def test_insight_defects_are_quarantined_with_reason(tmp_path, row, code, text):
    raw = write_exports(tmp_path, insights=f"I0,C1,2025-01-06,10,1000,10,1\n{row}\n")
    result = ingest_raw_dir(raw)
    q = quarantined(result, "insights.csv")
    assert list(q.index) == ["I1"]
    assert q.loc["I1", "reason_code"] == code
    assert text in q.loc["I1", "reason"]
    assert q.loc["I1", "line_number"] == 3
    assert list(result.insights["campaign_id"]) == ["C1"]  # the good row survives
    assert_balanced(result)


def test_row_breaking_several_rules_lists_every_reason(tmp_path):
    raw = write_exports(tmp_path, insights="I1,C1,bad-date,-4,5,10,11\n")
    q = quarantined(ingest_raw_dir(raw), "insights.csv")
    reason = q.loc["I1", "reason"]
    assert q.loc["I1", "reason_code"] == "unparseable_date"  # most fundamental first
    for piece in ("negative spend", "clicks > impressions"):
        assert piece in reason
    assert "conversions" not in reason  # 11 conversions on 10 clicks is data, not a defect


def test_conversions_above_clicks_are_accepted_as_they_are(tmp_path):
    raw = write_exports(tmp_path, insights="I1,C1,2025-01-07,5,500,10,14\n")
    result = ingest_raw_dir(raw)
    assert result.quarantine.empty
    day = result.insights.set_index("campaign_id").loc["C1"]
    assert (day["clicks"], day["conversions"]) == (10, 14)


def test_implausible_spend_is_judged_against_the_campaigns_daily_budget(tmp_path):
    # C1's budget is 100: 100,000 is 1,000x (the bound, accepted), 100,001 is above it
    insights = "I1,C1,2025-01-07,100000,500,10,1\nI2,C1,2025-01-08,100001,500,10,1\n"
    result = ingest_raw_dir(write_exports(tmp_path, insights=insights))
    q = quarantined(result, "insights.csv")
    assert list(q.index) == ["I2"] and q.loc["I2", "reason_code"] == "implausible_value"
    assert "100,001 is above 100,000" in q.loc["I2", "reason"]
    tighter = IngestionRules(max_spend_budget_multiple=10)
    q = quarantined(
        ingest_raw_dir(write_exports(tmp_path, insights=insights), rules=tighter), "insights.csv"
    )
    assert sorted(q.index) == ["I1", "I2"]


def test_dates_are_judged_against_the_run_date_and_the_configured_earliest_date(tmp_path):
    insights = "I1,C1,2025-01-07,1,50,10,1\nI2,C1,2025-03-03,1,50,10,1\n"
    leads = (
        "id,campaign_id,name,email,phone,lead_status,added_date,deal_value\n"
        "L1,C1,A,a@example.com,1,NEW,2025-03-04,\n"
    )
    changes = "id,lead_id,old_status,new_status,created_at\nS1,L1,NEW,QUALIFIED,2025-03-05\n"
    raw = write_exports(tmp_path, insights=insights, leads=leads, changes=changes)
    result = ingest_raw_dir(raw, now=pd.Timestamp("2025-03-03 08:00"))
    q = result.quarantine.set_index("row_key")
    assert "I2" not in q.index  # the run's own date is not the future
    assert q.loc["L1", "reason_code"] == "date_out_of_range"
    assert q.loc["S1", "reason_code"] == "date_out_of_range"  # its lead is rejected too
    later = ingest_raw_dir(raw, rules=IngestionRules(earliest_date="2025-02-01"))
    assert quarantined(later, "insights.csv").loc["I1", "reason_code"] == "date_out_of_range"


def test_missing_key_uses_line_number_as_row_key(tmp_path):
    leads = LEADS + ",C1,Eve,eve@example.com,1,NEW,2025-01-07,\n"
    result = ingest_raw_dir(write_exports(tmp_path, leads=leads))
    q = quarantined(result, "campaign_leads.csv")
    assert q.loc["line 4", "reason_code"] == "missing_key"
    assert "eve@example.com" not in q.loc["line 4", "raw_values"]


def test_conflicting_duplicate_campaign_ids_quarantine_both_and_their_rows(tmp_path):
    campaigns = (
        CAMPAIGNS + "C3,U2,P2,50,TikTok,Camp 3,2025-01-01\nC3,U2,P2,60,TikTok,Camp 3b,2025-01-01\n"
    )
    result = ingest_raw_dir(
        write_exports(tmp_path, campaigns=campaigns, insights="I1,C3,2025-01-07,1,50,10,1\n")
    )
    q = quarantined(result, "campaigns.csv")
    assert sorted(q.index) == ["C3 (line 4)", "C3 (line 5)"]
    assert set(q["reason_code"]) == {"conflicting_duplicate"}
    assert set(q["reason"]) == {  # the columns they differ in, no value (a name may be personal)
        "conflicting duplicate: several rows share id 'C3' with different daily_budget, name "
        "(none kept)"
    }
    assert "C3" not in set(result.campaigns["campaign_id"])
    qi = quarantined(result, "insights.csv")
    assert qi.loc["I1", "reason_code"] == "rejected_campaign"
    assert_balanced(result)


def test_exact_redelivered_row_is_kept_once(tmp_path):
    insights = (
        "I1,C1,2025-01-06,10,1000,10,1\nI1,C1,2025-01-06,10,1000,10,1\nI2,C1,2025-01-06,5,500,5,0\n"
    )
    result = ingest_raw_dir(write_exports(tmp_path, insights=insights))
    assert result.files["insights"].duplicates_removed == 1
    day = result.insights.set_index("campaign_id").loc["C1"]
    assert day["spend"] == 15 and day["impressions"] == 1500 and day["n_parts"] == 2
    assert result.quarantine.empty
    assert_balanced(result)


def test_conflicting_duplicate_insight_id_is_quarantined_not_summed(tmp_path):
    insights = "I1,C1,2025-01-06,10,1000,10,1\nI1,C1,2025-01-06,12,1000,10,1\n"
    result = ingest_raw_dir(write_exports(tmp_path, insights=insights))
    assert result.insights.empty
    assert set(quarantined(result, "insights.csv")["reason_code"]) == {"conflicting_duplicate"}
    assert set(quarantined(result, "insights.csv")["reason"]) == {
        "conflicting duplicate: several rows share id 'I1' with different spend (none kept)"
    }


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("I1,C1,2025-01-09,5.00,100,1,0", "I1,C1,2025-01-09,5.0,100,1,0"),
        ("I1,C1,2025-03-03,5,100,1,0", "I1,C1,03/03/2025,5,100,1,0"),
        ("I1,C1,2025-03-04,5,100,1,0", "I1,C1,2025-03-04 00:00:00,5,100,1,0"),
        ("I1,C1,2025-01-09,5,1000,1,0", 'I1,C1,2025-01-09,5,"1,000",1,0'),
        ("I1,C1,2025-01-09,n/a,100,1,0", "I1,C1,2025-01-09, n/a ,100,1,0"),  # text: trimmed
    ],
)
def test_redelivered_row_written_differently_is_kept_once(tmp_path, first, second):
    insights = f"{first}\n{second}\nI2,C1,2025-01-09,1,10,1,0\n"
    result = ingest_raw_dir(write_exports(tmp_path, insights=insights))
    v = result.files["insights"]
    assert v.duplicates_removed == 1
    assert "conflicting_duplicate" not in set(result.quarantine["reason_code"])
    assert v.rows_accepted + v.rows_quarantined == 2  # I1 once (accepted or not) and I2
    assert_balanced(result)


def test_redelivered_lead_and_campaign_written_differently_are_kept_once(tmp_path):
    campaigns = (
        CAMPAIGNS
        + "C3,U2,P2,50,TikTok,Camp 3,2025-01-01\nC3,U2,P2,50.00,TikTok,Camp 3,01/01/2025\n"
    )
    leads = LEADS + (
        'L3,C1,Cy,cy@example.com,1,NEW,2025-01-07,"1,250.50"\n'
        "L3,C1,Cy,cy@example.com,1,NEW,01/07/2025 ,1250.5\n"
    )
    result = ingest_raw_dir(write_exports(tmp_path, campaigns=campaigns, leads=leads))
    assert result.quarantine.empty
    assert result.files["campaigns"].duplicates_removed == 1
    assert result.files["campaign_leads"].duplicates_removed == 1
    lead = result.leads.set_index("lead_id").loc["L3"]
    assert lead["deal_value"] == 1250.5 and lead["added_date"] == pd.Timestamp("2025-01-07")
    assert_balanced(result)


def test_same_day_at_other_times_or_another_parsed_value_is_still_a_conflict(tmp_path):
    # one id at 09:00 and 17:00 of one day: the export disagrees with itself, so neither is kept
    insights = (
        "I1,C1,2025-03-04 09:00:00,5,100,1,0\nI1,C1,2025-03-04 17:00:00,5,100,1,0\n"
        "I2,C1,2025-03-04,5.00,100,1,0\nI2,C1,2025-03-04,5.0,100,2,0\n"
    )
    result = ingest_raw_dir(write_exports(tmp_path, insights=insights))
    q = quarantined(result, "insights.csv")
    assert set(q["reason_code"]) == {"conflicting_duplicate"} and len(q) == 4
    assert set(q["reason"]) == {  # each names only what differs once parsed
        "conflicting duplicate: several rows share id 'I1' with different created_at (none kept)",
        "conflicting duplicate: several rows share id 'I2' with different clicks (none kept)",
    }
    assert result.files["insights"].duplicates_removed == 0
    assert_balanced(result)


def test_blank_numeric_cells_stay_null_and_make_the_day_total_unknown(tmp_path):
    insights = "I1,C1,2025-01-06,10,,10,\nI2,C1,2025-01-06,5,500,5,0\nI3,C2,2025-01-06,5,,,\n"
    result = ingest_raw_dir(write_exports(tmp_path, insights=insights))
    assert result.quarantine.empty  # blank is not a defect
    days = result.insights.set_index("campaign_id")
    assert np.isnan(days.loc["C1", "impressions"])  # one unknown part -> unknown total, not 500
    assert days.loc["C1", "clicks"] == 15
    assert np.isnan(days.loc["C1", "conversions"])
    assert np.isnan(days.loc["C2", "clicks"]) and days.loc["C2", "spend"] == 5


def test_blank_daily_budget_is_null_not_zero(tmp_path):
    campaigns = CAMPAIGNS + "C3,U2,P2,,LinkedIn,Camp 3,\n"
    result = ingest_raw_dir(write_exports(tmp_path, campaigns=campaigns))
    c3 = result.campaigns.set_index("campaign_id").loc["C3"]
    assert np.isnan(c3["daily_budget"]) and pd.isna(c3["created_at"])


def test_bom_and_header_whitespace(tmp_path):
    campaigns = CAMPAIGNS.replace("id,user_id", " Id , user_id ")
    raw = write_exports(
        tmp_path, campaigns=campaigns, insights="I1,C1,2025-01-06,10,1000,10,1\n", bom=True
    )
    assert (raw / "campaigns.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    result = ingest_raw_dir(raw)
    assert sorted(result.campaigns["campaign_id"]) == ["C1", "C2"]
    assert len(result.insights) == 1


def test_statuses_trimmed_upper_cased_and_personal_data_dropped(tmp_path):
    result = ingest_raw_dir(write_exports(tmp_path))
    assert list(result.leads["lead_status"]) == ["DONE_DEAL", "NEW"]
    for table in (
        result.leads,
        result.lead_status_changes,
        result.campaigns,
        result.insights,
        result.quarantine,
    ):
        assert not {"name", "email", "phone"} & set(table.columns)


def test_status_change_of_unknown_or_rejected_lead(tmp_path):
    leads = LEADS + "L3,C9,X,x@example.com,1,NEW,2025-01-06,\n"
    changes = CHANGES + "S2,L3,NEW,QUALIFIED,2025-01-10\nS3,L7,NEW,QUALIFIED,2025-01-10\n"
    result = ingest_raw_dir(write_exports(tmp_path, leads=leads, changes=changes))
    q = quarantined(result, "lead_status_changes.csv")
    assert q.loc["S2", "reason_code"] == "rejected_lead"
    assert q.loc["S3", "reason_code"] == "unknown_lead"
    assert quarantined(result, "campaign_leads.csv").loc["L3", "reason_code"] == "unknown_campaign"


@pytest.mark.parametrize(
    ("cell", "text"),
    [
        (
            "2025-02-30",
            "'2025-02-30' has the right format, but the day does not exist: "
            "February 2025 has 28 days",
        ),
        (
            "2025-13-01",
            "'2025-13-01' has the right format, but the day does not exist: there is no month 13",
        ),
        ("13/01/2025", "is the file day-first (DD/MM/YYYY)?"),
        ("2025-01-07 24:00:00", "has the right format, but the time does not exist"),
        ("2025-01-07 23:59:61", "has the right format, but the time does not exist"),
        ("2025/01/07", "'2025/01/07' is not YYYY-MM-DD[ HH:MM:SS] or MM/DD/YYYY"),
    ],
)
def test_a_date_that_does_not_exist_is_not_called_a_format_error(tmp_path, cell, text):
    raw = write_exports(
        tmp_path, insights=f"I0,C1,2025-01-06,10,1000,10,1\nI1,C1,{cell},5,50,5,0\n"
    )
    q = quarantined(ingest_raw_dir(raw), "insights.csv")
    assert q.loc["I1", "reason_code"] == "unparseable_date"
    assert text in q.loc["I1", "reason"]
    if "right format" in text:
        assert "is not YYYY-MM-DD" not in q.loc["I1", "reason"]


def test_a_status_change_at_a_leap_second_counts_on_its_own_day(tmp_path):
    """2025-01-12 is a Sunday: read as pandas reads it, the change at 23:59:60 moved to Monday
    2025-01-13 and its conversion into the next week."""
    from campaign_pipeline import metrics

    changes = CHANGES + "S2,L2,NEW,QUALIFIED,2025-01-12 23:59:60\n"
    leads = LEADS.replace(",new,", ",qualified,")
    result = ingest_raw_dir(write_exports(tmp_path, leads=leads, changes=changes))
    assert result.quarantine.empty
    change = result.lead_status_changes.set_index("change_id").loc["S2"]
    assert change["date"] == pd.Timestamp("2025-01-12")
    assert change["changed_at"] == pd.Timestamp("2025-01-12 23:59:59.999999999")
    events = metrics.lead_events(result.leads, result.lead_status_changes).set_index("lead_id")
    assert events.loc["L2", "converted_date"] == pd.Timestamp("2025-01-12")


def test_three_timestamp_formats_give_the_calendar_date():
    parsed = parse_timestamps(
        pd.Series(["2025-03-04 23:59:59", "2025-03-04", "03/04/2025", "04.03.2025", ""])
    )
    assert list(parsed.dt.date.astype(str)[:3]) == ["2025-03-04"] * 3
    assert parsed[3:].isna().all()


# --- file-level errors: one line naming the file and the column -------------------------


def test_missing_file(tmp_path):
    raw = write_exports(tmp_path)
    (raw / "insights.csv").unlink()
    with pytest.raises(RawFileError, match=r"insights\.csv: file not found"):
        ingest_raw_dir(raw)


def test_missing_required_column_names_file_and_column(tmp_path):
    raw = write_exports(tmp_path, campaigns=CAMPAIGNS.replace("daily_budget", "budget"))
    with pytest.raises(RawFileError) as info:
        ingest_raw_dir(raw)
    assert info.value.column == "daily_budget"
    assert "campaigns.csv, column 'daily_budget': required column missing" in str(info.value)
    assert "\n" not in str(info.value)


def test_unreadable_file(tmp_path):
    raw = write_exports(tmp_path)
    (raw / "campaign_leads.csv").write_bytes(b"\xff\xfe\x00\x01garbage\x00\xff")
    with pytest.raises(RawFileError, match=r"campaign_leads\.csv: UTF-16 text .*save it as UTF-8"):
        ingest_raw_dir(raw)
    (raw / "campaign_leads.csv").write_bytes(b"id,campaign_id\n\x00\x01garbage\x00\xff")
    with pytest.raises(RawFileError, match=r"campaign_leads\.csv: not UTF-8 text \(.* line 2,"):
        ingest_raw_dir(raw)


def test_empty_file(tmp_path):
    raw = write_exports(tmp_path)
    (raw / "lead_status_changes.csv").write_text("")
    with pytest.raises(RawFileError, match="empty"):
        ingest_raw_dir(raw)


# --- property: the accounting identity holds on randomly corrupted files ----------------

_CORRUPTIONS = [
    "blank",
    "text",
    "negative",
    "duplicate_exact",
    "duplicate_conflict",
    "huge",
    "date",
    "drop_key",
]


def _clean_insights(n: int, rng: np.random.Generator) -> pd.DataFrame:
    impressions = rng.integers(0, 5000, n)
    clicks = rng.binomial(impressions, 0.02)
    conversions = rng.binomial(clicks, 0.1)
    return pd.DataFrame(
        {
            "id": [f"I{i}" for i in range(n)],
            "campaign_id": rng.choice(["C1", "C2"], n),
            "created_at": [f"2025-01-{d:02d}" for d in rng.integers(1, 28, n)],
            "spend": np.round(rng.gamma(2, 10, n), 2).astype(str),
            "impressions": impressions.astype(str),
            "clicks": clicks.astype(str),
            "conversions": conversions.astype(str),
        }
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(min_value=0, max_value=40),
    seed=st.integers(min_value=0, max_value=2**31 - 1),
    corruptions=st.lists(
        st.tuples(st.sampled_from(_CORRUPTIONS), st.integers(0, 10_000), st.integers(0, 6)),
        max_size=25,
    ),
)
def test_accounting_identity_holds_on_random_corruption(tmp_path_factory, n, seed, corruptions):
    rng = np.random.default_rng(seed)
    frame = _clean_insights(n, rng)
    columns = list(frame.columns)
    for kind, row_pick, col_pick in corruptions:
        if frame.empty:
            break
        i = row_pick % len(frame)
        col = columns[col_pick % len(columns)]
        if kind == "blank":
            frame.iat[i, columns.index(col)] = ""
        elif kind == "text":
            frame.iat[i, columns.index(col)] = "n/a??"
        elif kind == "negative":
            frame.iat[i, columns.index(col)] = "-3"
        elif kind == "huge":
            frame.iat[i, columns.index(col)] = "1e12"
        elif kind == "date":
            frame.iat[i, columns.index("created_at")] = "31/31/2025"
        elif kind == "drop_key":
            frame.iat[i, columns.index("campaign_id")] = rng.choice(["", "C404"])
        elif kind == "duplicate_exact":
            frame = pd.concat([frame, frame.iloc[[i]]], ignore_index=True)
        elif kind == "duplicate_conflict":
            twin = frame.iloc[[i]].copy()
            twin["spend"] = "999.5"
            frame = pd.concat([frame, twin], ignore_index=True)
    folder = tmp_path_factory.mktemp("prop")
    raw = write_exports(folder, insights=frame.to_csv(index=False, header=False))
    result = ingest_raw_dir(raw)
    v = result.files["insights"]
    assert v.rows_read == len(frame)
    assert v.rows_read == v.rows_accepted + v.rows_quarantined + v.duplicates_removed
    # what was accepted is exactly what the summed table holds, and rejects are unique by key
    assert int(result.insights["n_parts"].sum()) == v.rows_accepted
    q = result.quarantine[result.quarantine["source_file"] == "insights.csv"]
    assert not q.duplicated(["source_file", "row_key"]).any()
    assert set(q["line_number"]).isdisjoint(set())  # line numbers are present
    assert all(json.loads(r) for r in q["raw_values"])


_RUN_TIME = pd.Timestamp("2026-06-30 12:00")
_DATES = st.one_of(
    st.dates(
        min_value=pd.Timestamp("1800-01-01").date(), max_value=pd.Timestamp("2300-12-31").date()
    ).flatmap(
        lambda d: st.sampled_from(
            [d.strftime("%Y-%m-%d"), d.strftime("%Y-%m-%d 13:45:00"), d.strftime("%m/%d/%Y")]
        )
    ),
    st.sampled_from(["", "1900-01-01", "2125-02-04", "0000-00-00", "31/12/2025", "soon"]),
)
_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**15), max_value=10**15).map(str),
    st.sampled_from(["", "1e308", "-1e308", "1e12", "1,000", "abc", "inf", "NaN"]),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["C1", "C2", "C9", ""]), _DATES, _NUMBERS, _NUMBERS, _NUMBERS),
        min_size=1,
        max_size=30,
    )
)
def test_arbitrary_dates_and_numbers_keep_accounting_finite_sums_and_bounded_weeks(
    tmp_path_factory, rows
):
    """Whatever a row holds, it is accepted or quarantined (never lost), every sum of what is
    accepted is finite, and the weeks the accepted rows span lie between the earliest accepted
    date and the run's date, so one wrong cell cannot open thousands of weeks."""
    cells = [
        [f"I{i}", campaign, day, spend, impressions, clicks, impressions]
        for i, (campaign, day, spend, impressions, clicks) in enumerate(rows)
    ]
    csv_text = pd.DataFrame(cells).to_csv(index=False, header=False)
    raw = write_exports(tmp_path_factory.mktemp("arbitrary"), insights=csv_text)
    rules = IngestionRules()
    result = ingest_raw_dir(raw, rules=rules, now=_RUN_TIME)
    assert_balanced(result)
    v = result.files["insights"]
    assert v.rows_read == len(rows)
    accepted = result.insights
    sums = accepted[["spend", "impressions", "clicks", "conversions"]].sum()
    assert np.isfinite(sums.to_numpy(float)).all(), sums
    if len(accepted):
        assert accepted["date"].min() >= pd.Timestamp(rules.earliest_date)
        assert accepted["date"].max() <= _RUN_TIME.normalize()
        weeks = pd.date_range(accepted["date"].min(), accepted["date"].max(), freq="D")
        assert weeks.to_period("W-SUN").nunique() <= (
            (_RUN_TIME - pd.Timestamp(rules.earliest_date)).days // 7 + 2
        )


def test_a_pandas_text_frame_validates_like_the_same_file(tmp_path):
    """Sources other than files (Salesforce) hand the validators pandas text frames."""
    path = tmp_path / "campaigns.csv"
    path.write_text("id,user_id,project_name,daily_budget\nC1,u,p,10\nC2,u,,x\n")
    spec = ingestion.FILE_SPECS["campaigns"]
    frame = ingestion.read_raw_file(path, spec)
    from_frame = ingestion.validate_campaigns(frame)
    from_table = ingestion.validate_campaigns(ingestion.read_raw_table(path, spec))
    pd.testing.assert_frame_equal(from_frame.quarantine, from_table.quarantine)
    assert from_frame.accepted_table.equals(from_table.accepted_table)
    with pytest.raises(ValueError, match="_line"):
        ingestion.text_table(frame.assign(_line=[5, 9]))


def test_a_rows_reasons_are_joined_in_order_and_its_first_code_kept():
    """The quarantine's reason lists every failure of a row; built by columns, it must match
    the plain per-row join on any mix of rows with one, two or three failures."""
    from campaign_pipeline.ingestion import _joined_reasons

    rng = np.random.default_rng(3)
    rows = rng.permutation(np.repeat(np.arange(500), rng.integers(1, 4, 500)))
    failures = pd.DataFrame(
        {"index": rows, "code": [f"c{i % 7}" for i in range(len(rows))]}
    ).assign(text=lambda f: f["code"] + " of row " + f["index"].astype(str))
    failures = failures.sort_values("index", kind="stable")
    expected = failures.groupby("index").agg(
        reason_code=("code", "first"), reason=("text", "; ".join)
    )
    got = _joined_reasons(failures)
    assert got["reason"].tolist() == expected["reason"].tolist()
    assert got["reason_code"].tolist() == expected["reason_code"].tolist()
    assert got.index.tolist() == expected.index.tolist()
    assert got["reason"].str.count("; ").max() == 2


# --- personal data in a quarantined row ---------------------------------------------------

SHIPPED_RAW = Path(__file__).resolve().parents[1] / "data" / "raw"


def _shifted(fields: list[str], commas: int) -> str:
    """A lead row written with ``commas`` unquoted commas in its name and as many cells
    missing at its end: the field count is the header's, so the row is read, shifted."""
    first, *rest = fields[2].split(" ")
    name = ", ".join([first, *rest, *(["Jr"] * (commas - len(rest)))])
    return ",".join([*fields[:2], name, *fields[3 : len(fields) - commas]])


def test_a_shifted_leads_row_keeps_its_email_and_phone_out_of_the_quarantine(tmp_path):
    """The shipped sample's first leads, one row with a comma in its name (the phone lands in
    lead_status), one with two (the email in lead_status, the phone in added_date, which the
    reason quotes), and one row of an unknown campaign, whose values are no personal data."""
    lines = (SHIPPED_RAW / "campaign_leads.csv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], [line.split(",") for line in lines[1:21]]
    one, two = rows[0], rows[4]  # LD3000000 (added 2025-02-26 15:40:08), LD3000004
    unknown = [*rows[7][:1], "CMP999999", *rows[7][2:]]
    body = [_shifted(one, 1), *map(",".join, rows[1:4]), _shifted(two, 2)]
    body += [*map(",".join, rows[5:7]), ",".join(unknown), *map(",".join, rows[8:])]
    leads = "\n".join([header, *body]) + "\n"
    campaigns = (SHIPPED_RAW / "campaigns.csv").read_text(encoding="utf-8-sig")
    changes = "id,lead_id,old_status,new_status,created_at\n"
    raw = write_exports(tmp_path, campaigns=campaigns, leads=leads, changes=changes)
    result = ingest_raw_dir(raw)
    q = quarantined(result, "campaign_leads.csv")
    assert sorted(q.index) == [one[0], two[0], unknown[0]]
    assert len(result.leads) == 17
    assert_balanced(result)

    for fields, line in ((one, 2), (two, 6)):
        row = q.loc[fields[0]]
        assert row["line_number"] == line and row["source_id"] == fields[0]
        published = " ".join(str(v) for v in row.reset_index().to_numpy().ravel())
        for personal in (fields[3], fields[4], *fields[2].split(" ")):  # email, phone, name
            assert personal not in published, personal
        assert f"see line {line} of campaign_leads.csv" in row["reason"]
    values = json.loads(q.loc[one[0], "raw_values"])
    assert values["lead_status"] == "<withheld: looks like a phone number>"
    assert values["added_date"] == one[5]  # the status, shifted: no personal data, shown
    assert (
        "withheld from this quarantine row: lead_status (phone number)" in (q.loc[one[0], "reason"])
    )
    values = json.loads(q.loc[two[0], "raw_values"])
    assert values["lead_status"] == "<withheld: looks like an e-mail address>"
    assert values["added_date"] == "<withheld: looks like a phone number>"
    reason = q.loc[two[0], "reason"]
    assert reason.startswith("unparseable date: '<withheld: looks like a phone number>'")
    assert "lead_status (e-mail address), added_date (phone number)" in reason
    # a rejected row without personal values is shown whole
    values = json.loads(q.loc[unknown[0], "raw_values"])
    assert values == dict(
        zip(
            ["added_date", "campaign_id", "deal_value", "id", "lead_status"],
            [unknown[6], "CMP999999", unknown[7], unknown[0], unknown[5]],
        )
    )
    assert "withheld" not in q.loc[unknown[0], "reason"]
    assert ingestion.personal_data_in_quarantine(result.quarantine) == ([], [])


LEADS_HEADER = "id,campaign_id,name,email,phone,lead_status,added_date,deal_value"
GOOD_LEAD = "L2,C1,Bob Jones,bob@example.com,+1 555 0101,NEW,2025-01-06,"


def test_a_shifted_leads_row_whose_cells_all_parse_is_quarantined_not_accepted(tmp_path):
    """An unquoted comma in the name and the status cell missing: the field count is the
    header's and every cell parses, so the row was accepted with the phone for its status (and
    an e-mail for the next one). A status shaped like personal data is quarantined instead,
    and its reason does not repeat the value."""
    phone = "L1,C1,Ann, Smith,ann@example.com,+1 555 0100,2025-01-06,500"
    # two commas in the name, no phone and no status exported: the e-mail is the status
    email = "L3,C1,Cy, Berg, Jr,cy@example.com,2025-01-07,"
    leads = "\n".join([LEADS_HEADER, phone, GOOD_LEAD, email]) + "\n"
    raw = write_exports(
        tmp_path, leads=leads, changes="id,lead_id,old_status,new_status,created_at\n"
    )
    result = ingest_raw_dir(raw)
    assert result.leads["lead_id"].tolist() == ["L2"]
    q = quarantined(result, "campaign_leads.csv")
    assert sorted(q.index) == ["L1", "L3"]
    assert set(q["reason_code"]) == {"personal_data_in_lead_status"}
    for key, value, kind in (
        ("L1", "+1 555 0100", "phone number"),
        ("L3", "cy@example.com", "e-mail address"),
    ):
        row = q.loc[key]
        assert row["reason"].startswith("lead_status is shaped like personal data, not a status")
        assert f"lead_status ({kind})" in row["reason"]
        assert value not in row["reason"] and value.upper() not in row["reason"]
        assert value not in row["raw_values"] and value.upper() not in row["raw_values"]
    assert ingestion.personal_data_in_quarantine(result.quarantine) == ([], [])
    assert_balanced(result)


@pytest.mark.parametrize("status", ["NEW", "new", " Qualified ", "CALL_BACK_2", "1-2-3"])
def test_a_status_not_shaped_like_personal_data_is_accepted(tmp_path, status):
    leads = f"{LEADS_HEADER}\nL2,C1,Bob Jones,bob@example.com,+1 555 0101,{status},2025-01-06,\n"
    raw = write_exports(
        tmp_path, leads=leads, changes="id,lead_id,old_status,new_status,created_at\n"
    )
    result = ingest_raw_dir(raw)
    assert result.leads["lead_status"].tolist() == [status.strip().upper()]


def test_a_row_whose_field_count_is_not_the_headers_is_quarantined_by_its_line(tmp_path):
    """An unquoted comma in a name (one field too many) and a line cut off (too few) stopped
    the whole run; each is quarantined instead, no cell of it read or shown, and every other
    row of the file is validated as usual."""
    comma = "L1,C1,Smith, Ann,ann@example.com,+1 555 0100,NEW,2025-01-06,500"
    cut = "L3,C1,Cy Berg,cy@example.com,+1 555"
    bad = "L4,C9,Di Ng,di@example.com,+1 555 0104,NEW,2025-01-06,"  # unknown campaign
    leads = "\n".join([LEADS_HEADER, comma, GOOD_LEAD, bad, cut])
    changes = "id,lead_id,old_status,new_status,created_at\nS1,L2,NEW,DONE_DEAL,2025-01-10\n"
    raw = write_exports(tmp_path, leads=leads, changes=changes)
    result = ingest_raw_dir(raw)
    assert result.leads["lead_id"].tolist() == ["L2"]
    assert result.lead_status_changes["lead_id"].tolist() == ["L2"]
    q = quarantined(result, "campaign_leads.csv")
    assert sorted(q.index) == ["L4", "line 2", "line 5"]
    assert q.loc["L4", "reason_code"] == "unknown_campaign"
    for key, fields, why in (
        ("line 2", 9, "an unquoted comma in a value"),
        ("line 5", 5, "a cell missing, or the line cut off"),
    ):
        row = q.loc[key]
        assert row["reason_code"] == "wrong_field_count"
        assert row["reason"].startswith(
            f"wrong field count: {key} of campaign_leads.csv has {fields} fields where the header"
            f" has 8: {why}"
        )
        assert row["raw_values"] == "{}" and row["source_id"] == ""
        assert row["line_number"] == int(key.split()[1])
    assert ingestion.personal_data_in_quarantine(result.quarantine) == ([], [])
    acc = result.files["campaign_leads"].accounting
    assert (acc["rows_read"], acc["rows_accepted"], acc["rows_quarantined"]) == (4, 1, 3)
    assert_balanced(result)


def test_a_snapshot_with_a_misaligned_row_validates_like_the_file(tmp_path):
    """The streamed snapshot (what the assets validate) gets the field-count column written
    after its rows; its columns as reported leave it out."""
    comma = "L1,C1,Smith, Ann,ann@example.com,+1 555 0100,NEW,2025-01-06,500"
    path = tmp_path / "campaign_leads.csv"
    path.write_text("\n".join([LEADS_HEADER, GOOD_LEAD, comma, GOOD_LEAD.replace("L2", "L5")]))
    spec = ingestion.FILE_SPECS["campaign_leads"]
    snapshot = tmp_path / "raw.arrow"
    rows, columns = ingestion.write_raw_snapshot(path, spec, snapshot)
    assert rows == 3 and columns == LEADS_HEADER.split(",")
    table = ipc.open_file(pa.memory_map(str(snapshot), "r")).read_all()
    assert table.column_names[-1] == raw_parsing.FIELD_COUNT_COLUMN
    (tmp_path / "campaigns.csv").write_text(CAMPAIGNS)
    campaign_spec = ingestion.FILE_SPECS["campaigns"]
    campaigns = ingestion.validate_campaigns(
        ingestion.read_raw_table(tmp_path / "campaigns.csv", campaign_spec)
    )
    from_snapshot = ingestion.validate_leads(table, campaigns)
    from_file = ingestion.validate_leads(ingestion.read_raw_table(path, spec), campaigns)
    assert from_snapshot.quarantine.equals(from_file.quarantine)
    assert from_snapshot.quarantine["row_key"].tolist() == ["line 3"]
    assert from_snapshot.accepted_table.equals(from_file.accepted_table)
    assert from_snapshot.rows_read == 3


def test_the_quarantine_check_finds_a_personal_value_in_a_leads_row():
    row = {
        "source_file": "campaign_leads.csv",
        "row_key": "L1",
        "source_id": "L1",
        "line_number": 2,
        "reason_code": "unparseable_date",
        "reason": "unparseable date: 'NEW' is not YYYY-MM-DD[ HH:MM:SS] or MM/DD/YYYY",
        "raw_values": json.dumps({"id": "L1", "lead_status": "+1 555 021 1797"}),
    }
    quoting = {**row, "line_number": 3, "raw_values": "{}"}
    quoting["reason"] = "unparseable date: '+1 555 021 1797' is not YYYY-MM-DD"
    insights = {**row, "source_file": "insights.csv"}  # no personal columns there
    table = pd.DataFrame([row, quoting, insights])
    assert ingestion.personal_data_in_quarantine(table) == (
        [],
        ["campaign_leads.csv line 2", "campaign_leads.csv line 3"],
    )
    clean = pd.DataFrame([{**row, "raw_values": json.dumps({"lead_status": "NEW"})}])
    assert ingestion.personal_data_in_quarantine(clean) == ([], [])
