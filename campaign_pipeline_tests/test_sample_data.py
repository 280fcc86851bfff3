"""The generator is deterministic and has the shape the pipeline and the benchmarks rely on."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from campaign_pipeline.constants import CONVERTED_STATUSES
from campaign_pipeline.ingestion import ingest_raw_dir
from campaign_pipeline.sample_data import ANOMALY_KINDS, DEFECT_KINDS, generate_sample, main

FILES = ("campaigns.csv", "insights.csv", "campaign_leads.csv", "lead_status_changes.csv")
START = pd.Timestamp("2025-01-06")
N_DAYS = 84


def digests(folder) -> dict[str, str]:
    return {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in FILES}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    manifest = generate_sample(
        out, seed=3, n_campaigns=120, n_days=N_DAYS, anomalies=True, defects=True
    )
    return out, manifest, ingest_raw_dir(out)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    kwargs = dict(n_campaigns=20, n_days=30, anomalies=True, defects=True)
    a = generate_sample(tmp_path / "a", seed=11, **kwargs)
    b = generate_sample(tmp_path / "b", seed=11, **kwargs)
    c = generate_sample(tmp_path / "c", seed=12, **kwargs)
    assert digests(a.out_dir) == digests(b.out_dir)
    assert (tmp_path / "a" / "defects.csv").read_bytes() == (
        tmp_path / "b" / "defects.csv"
    ).read_bytes()
    other = digests(c.out_dir)
    assert all(other[f] != digests(a.out_dir)[f] for f in FILES)


def test_manifest_counts_match_the_files(sample):
    out, manifest, _ = sample
    for key, path in manifest.paths.items():
        assert path.parent == out
        # the BOM and the stray header spaces do not change the row count
        assert len(pd.read_csv(path, dtype=str, encoding="utf-8-sig")) == manifest.rows[key], key


def test_platforms_weekends_heavy_tail_and_parts(sample):
    _, _, result = sample
    insights = result.insights.merge(
        result.campaigns[["campaign_id", "platform"]], on="campaign_id"
    )
    # heavy tail: the biggest spender spends many times the median campaign
    per_campaign = insights.groupby("campaign_id")["spend"].sum()
    assert per_campaign.max() / per_campaign.median() > 8
    # platforms differ: LinkedIn CPM and CPL far above TikTok's (ratios of sums)
    totals = insights.groupby("platform")[["spend", "impressions"]].sum()
    leads = (
        result.leads.merge(result.campaigns[["campaign_id", "platform"]], on="campaign_id")
        .groupby("platform")
        .size()
    )
    cpm = 1000 * totals["spend"] / totals["impressions"]
    cpl = totals["spend"] / leads
    assert cpm["LinkedIn"] > 2 * cpm["TikTok"]
    assert cpl["LinkedIn"] > 1.5 * cpl["Facebook"]
    # weekends differ from weekdays: LinkedIn (business audience) drops at the weekend
    linked = insights[insights["platform"] == "LinkedIn"]
    weekend = linked["date"].dt.weekday >= 5
    assert linked.loc[weekend, "spend"].mean() < 0.8 * linked.loc[~weekend, "spend"].mean()
    # ad-set parts exist and were summed
    assert (result.insights["n_parts"] > 1).mean() > 0.1
    # short campaigns exist, and campaigns start/end inside the range
    days = result.insights.groupby("campaign_id")["date"].agg(["nunique", "min", "max"])
    assert (days["nunique"] <= 10).sum() >= 5
    assert (days["min"] > START).sum() >= 10 and (
        days["max"] < START + pd.Timedelta(days=N_DAYS - 1)
    ).sum() >= 10


def test_leads_conversions_and_histories(sample):
    _, _, result = sample
    leads, changes = result.leads, result.lead_status_changes
    converted = leads["lead_status"].isin(CONVERTED_STATUSES)
    # the seed data's median campaign conversion rate was 0: most campaigns never convert a lead
    rate = converted.groupby(leads["campaign_id"]).mean()
    assert rate.median() == 0 and (rate > 0).sum() >= 10
    # spend without leads, and leads without spend rows, both occur
    spenders, with_leads = set(result.insights["campaign_id"]), set(leads["campaign_id"])
    assert len(spenders - with_leads) >= 2 and len(with_leads - spenders) >= 1
    # revenue only on won leads
    valued = leads.loc[leads["deal_value"].notna(), "lead_status"]
    assert valued.isin(["DONE_DEAL", "ALREADY_BOUGHT", "RESALE_REQUEST"]).all()
    assert valued.isin(["DONE_DEAL", "ALREADY_BOUGHT"]).mean() > 0.8
    # histories: most leads have one, and no change precedes its lead or follows the export day
    assert leads["lead_id"].isin(changes["lead_id"]).mean() > 0.5
    joined = changes.merge(leads[["lead_id", "added_date"]], on="lead_id")
    assert (joined["date"] >= joined["added_date"]).all()
    assert changes["date"].max() <= START + pd.Timedelta(days=N_DAYS - 1)
    # a lead's current status is its last change's status
    last = changes.sort_values("changed_at").groupby("lead_id")["new_status"].last()
    current = leads.set_index("lead_id")["lead_status"].reindex(last.index)
    assert (current == last).all()
    # conversions come days to weeks after the lead, often in a later week
    first_conversion = (
        joined[joined["new_status"].isin(CONVERTED_STATUSES)]
        .groupby("lead_id")[["date", "added_date"]]
        .min()
    )
    lag = (first_conversion["date"] - first_conversion["added_date"]).dt.days
    assert lag.median() >= 2 and lag.max() >= 14
    assert (
        first_conversion["date"].dt.to_period("W")
        != first_conversion["added_date"].dt.to_period("W")
    ).mean() > 0.3
    # some won deals passed through QUALIFIED / MEETING_DONE first (conversion date != deal date)
    path = joined.sort_values("changed_at").groupby("lead_id")["new_status"].agg(tuple)
    assert path.map(
        lambda p: len(p) == 3 and p[1] in ("QUALIFIED", "MEETING_DONE") and p[2] == "DONE_DEAL"
    ).any()


def test_three_timestamp_formats_and_casual_statuses(sample):
    out, _, _ = sample
    for name, column in (
        ("insights.csv", "created_at"),
        ("campaign_leads.csv", "added_date"),
        ("lead_status_changes.csv", "created_at"),
    ):
        stamps = pd.read_csv(out / name, dtype=str, keep_default_na=False)[column]
        assert stamps.str.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$").mean() > 0.3, name
        assert stamps.str.match(r"^\d{4}-\d{2}-\d{2}$").mean() > 0.1, name
        assert stamps.str.match(r"^\d{2}/\d{2}/\d{4}$").mean() > 0.05, name
    raw = pd.read_csv(out / "campaign_leads.csv", dtype=str, keep_default_na=False)
    statuses = raw["lead_status"]
    assert (statuses != statuses.str.strip()).any() and (
        statuses.str.strip() != statuses.str.strip().str.upper()
    ).any()
    assert raw["email"].str.endswith("@example.com").all() and raw["name"].str.contains(" ").all()


def _daily(result, campaign_id):
    days = (
        result.insights[result.insights["campaign_id"] == campaign_id]
        .set_index("date")
        .sort_index()
    )
    return days.assign(ctr=days["clicks"] / days["impressions"], cpc=days["spend"] / days["clicks"])


def test_every_anomaly_kind_is_labelled_after_its_baseline(sample):
    out, manifest, result = sample
    labels = pd.read_csv(out / "anomaly_labels.csv", parse_dates=["start_date", "end_date"])
    assert labels.equals(
        manifest.labels.astype({"start_date": "datetime64[ns]", "end_date": "datetime64[ns]"})
    )
    assert set(labels["kind"]) == set(ANOMALY_KINDS)
    assert labels["campaign_id"].is_unique  # one anomaly per injected campaign
    live = result.insights.groupby("campaign_id")["date"].agg(["min", "max"])
    window = live.reindex(labels["campaign_id"]).reset_index(drop=True)
    assert (labels["start_date"] >= window["min"] + pd.Timedelta(days=21)).all()
    assert (labels["end_date"] >= labels["start_date"]).all() and (
        labels["end_date"] <= window["max"]
    ).all()


def test_injected_anomalies_are_visible(sample):
    """A careful analyst comparing the window with the campaign's previous 21 days sees each one."""
    out, _, result = sample
    labels = pd.read_csv(out / "anomaly_labels.csv", parse_dates=["start_date", "end_date"])
    for label in labels.itertuples():
        daily = _daily(result, label.campaign_id)
        before = daily.loc[
            label.start_date - pd.Timedelta(days=21) : label.start_date - pd.Timedelta(days=1)
        ]
        during = daily.loc[label.start_date : label.end_date]
        ratio = lambda col, f=np.sum, during=during, before=before: (  # noqa: E731
            f(during[col]) / len(during) / (f(before[col]) / len(before))
        )
        if label.kind == "spend_spike":
            assert during["spend"].iloc[0] > 2.5 * before["spend"].median(), label
        elif label.kind == "delivery_outage":
            assert (during[["spend", "impressions", "clicks"]].fillna(0) == 0).all().all(), label
        elif label.kind == "cpc_spike":
            assert (
                during["spend"].sum() / during["clicks"].sum()
                > 1.8 * before["spend"].sum() / before["clicks"].sum()
            ), label
        elif label.kind == "ctr_drift":
            end = daily.loc[label.end_date - pd.Timedelta(days=2) : label.end_date]
            assert (
                end["clicks"].sum() / end["impressions"].sum()
                < 0.75 * before["clicks"].sum() / before["impressions"].sum()
            ), label
        elif label.kind == "tracking_break":
            assert (
                during["conversions"].sum() == 0
                and during["clicks"].sum() > 0.5 * len(during) * before["clicks"].mean()
            ), label
        elif label.kind == "conversion_inflation":
            assert ratio("conversions") > 2.5, label
        elif label.kind == "lead_flood":
            flood = result.leads[
                (result.leads["campaign_id"] == label.campaign_id)
                & result.leads["added_date"].between(label.start_date, label.end_date)
            ]
            assert (flood["lead_status"] == "JUNK").sum() >= 20, label
        elif label.kind == "level_shift":
            assert abs(np.log(ratio("spend"))) > np.log(1.8), label


def test_anomaly_count_can_be_given(tmp_path):
    manifest = generate_sample(tmp_path, seed=2, n_campaigns=80, n_days=70, anomalies=8)
    assert sorted(manifest.labels["kind"]) == sorted(ANOMALY_KINDS)


def test_every_defect_is_findable_and_quarantined_or_kept_as_labelled(sample):
    out, _, result = sample
    defects = pd.read_csv(out / "defects.csv")
    assert set(defects["kind"]) == set(DEFECT_KINDS)
    assert (out / "campaigns.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert not (out / "insights.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert " spend " in (out / "insights.csv").read_text().splitlines()[0].split(",")
    q = result.quarantine
    row_level = {
        "unparseable_date",
        "negative_spend",
        "clicks_gt_impressions",
        "unknown_campaign",
        "missing_key",
    }
    for row in defects.itertuples():
        if row.kind in row_level:
            hit = q[(q["source_file"] == row.file) & (q["row_key"] == row.row_key)]
            assert hit["reason_code"].tolist() == [row.kind], row
        elif row.kind == "conversions_gt_clicks":  # view-through conversions: valid data
            assert row.row_key not in set(q["row_key"]), row
        elif row.kind == "conflicting_duplicate_campaign":
            assert q["row_key"].str.startswith(f"{row.row_key} (line").sum() == 2
            assert row.row_key not in set(result.campaigns["campaign_id"])
        elif row.kind == "blank_numeric":
            assert row.row_key not in set(q["row_key"])  # blank is not a defect
    # the missing key's line really has a blank id
    line = int(defects.loc[defects["kind"] == "missing_key", "row_key"].iloc[0].split()[1])
    leads = pd.read_csv(out / "campaign_leads.csv", dtype=str, keep_default_na=False)
    assert leads["id"].iloc[line - 2] == ""
    # blank cells stay null (unknown), not zero
    blank_ids = defects.loc[defects["kind"] == "blank_numeric", "row_key"]
    raw = pd.read_csv(out / "insights.csv", dtype=str, keep_default_na=False, skipinitialspace=True)
    raw.columns = raw.columns.str.strip()
    blanks = raw[raw["id"].isin(blank_ids)]
    assert (
        len(blanks) == len(blank_ids)
        and ((blanks["impressions"] == "") | (blanks["clicks"] == "")).all()
    )
    day = blanks.iloc[0]
    merged = result.insights[result.insights["campaign_id"] == day["campaign_id"]]
    assert merged[["impressions", "clicks"]].isna().any(axis=1).any()
    assert (
        result.files["insights"].duplicates_removed
        == (defects["kind"] == "exact_duplicate").sum()
        == 1
    )
    # no defect touches a campaign carrying an anomaly label
    labels = pd.read_csv(out / "anomaly_labels.csv")
    touched = raw.loc[raw["id"].isin(defects["row_key"]), "campaign_id"]
    assert not touched.isin(labels["campaign_id"]).any()


def test_scale_multiplies_campaigns(tmp_path):
    small = generate_sample(tmp_path / "s", seed=1, n_campaigns=10, n_days=20)
    big = generate_sample(tmp_path / "b", seed=1, n_campaigns=10, n_days=20, scale=3)
    assert small.rows["campaigns"] == 10 and big.rows["campaigns"] == 30
    assert (
        not (tmp_path / "s" / "anomaly_labels.csv").exists()
        and not (tmp_path / "s" / "defects.csv").exists()
    )


def test_command_line_writes_and_reports(tmp_path, capsys):
    assert (
        main(
            ["--out", str(tmp_path), "--campaigns", "6", "--days", "14", "--seed", "4", "--defects"]
        )
        == 0
    )
    printed = capsys.readouterr().out
    for name in (*FILES, "defects.csv"):
        assert (tmp_path / name).is_file() and name in printed
    assert "campaigns 7," in printed  # six campaigns plus the conflicting duplicate row


def test_noise_spread_makes_campaigns_differ_in_noise_and_leaves_other_draws_alone(tmp_path):
    """`noise_spread` (the benchmark's `mixed` setting) draws per-campaign noise multipliers from
    a stream of its own: the campaigns are the same ones, their day-to-day spend swings differ
    more from one campaign to the next."""
    from campaign_pipeline.sample_data import GeneratorSettings

    def log_spend_sd(out):
        ins = ingest_raw_dir(out).insights
        day = ins.groupby(["campaign_id", "date"])["spend"].sum()
        day = np.log(day[day > 0])
        sd = day.groupby(level=0).std()
        return sd[day.groupby(level=0).size() >= 20]

    kwargs = dict(seed=3, n_campaigns=60, n_days=60)
    even = generate_sample(tmp_path / "even", settings=GeneratorSettings(noise=1.5), **kwargs)
    mixed = generate_sample(
        tmp_path / "mixed", settings=GeneratorSettings(noise=1.5, noise_spread=0.5), **kwargs
    )
    assert (even.out_dir / "campaigns.csv").read_bytes() == (
        mixed.out_dir / "campaigns.csv"
    ).read_bytes()
    a, b = log_spend_sd(even.out_dir), log_spend_sd(mixed.out_dir)
    assert b.quantile(0.9) / b.quantile(0.1) > 1.2 * a.quantile(0.9) / a.quantile(
        0.1
    )  # 2.6 against 1.9
