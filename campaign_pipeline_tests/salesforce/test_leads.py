"""Salesforce records -> the raw lead tables: pure mapping tests on hand-made records, then whole
pulls from a fake org whose validated tables must equal those of the same leads as CSV files."""

import copy

import pandas as pd
import pytest

from campaign_pipeline import ingestion
from campaign_pipeline.ingestion import FILE_SPECS, LINE_COLUMN
from campaign_pipeline.salesforce.client import (
    ClientSettings,
    SalesforceClient,
    SalesforceConfigError,
    SalesforceQueryError,
)
from campaign_pipeline.salesforce.leads import (
    SalesforceMapping,
    campaign_of_leads,
    campaigns_soql,
    check_queries,
    history_soql,
    leads_soql,
    map_leads,
    map_status_changes,
    members_soql,
    opportunities_soql,
    pull_campaign_leads,
    pull_lead_status_changes,
)
from campaign_pipeline_tests.fake_salesforce import FakeOrg, FakeSalesforce

NOW = pd.Timestamp("2026-01-01")
KEYED = SalesforceMapping(campaign_key_field="Ad_Campaign_Id__c")
LEAD_COLUMNS_IN_FILE_ORDER = ["id", "campaign_id", "name", "email", "phone", "lead_status",
                              "added_date", "deal_value"]  # fmt: skip


def lead(lead_id, status="Open - Not Contacted", created="2025-01-06T10:00:00.000+0000", **extra):
    return {"attributes": {"type": "Lead"}, "Id": lead_id, "Status": status,
            "CreatedDate": created, **extra}  # fmt: skip


# --- pure mapping -------------------------------------------------------------------------------


def test_leads_map_to_the_file_layout_as_text_with_statuses_days_and_no_personal_data():
    records = [
        lead("00QA", "Open - Not Contacted", "2025-01-05T23:30:00.000+0000"),
        lead(
            "00QB",
            " closed - converted ",
            "2025-01-06T08:00:00.000+0000",
            ConvertedOpportunityId="006A",
            ConvertedDate="2025-01-20",
        ),  # fmt: skip
        lead("00QC", "DONE_DEAL", "2025-01-07T09:15:00.000+0000"),  # not in the map: as it is
        lead("00QD", "Working - Contacted", "yesterday"),  # passed on for validation to judge
    ]
    by_lead = pd.Series({"00QA": "CMP1", "00QB": "CMP1", "00QC": "CMP2", "00QD": "CMP2"})
    m = SalesforceMapping(timezone="Europe/Berlin")
    pull = map_leads(records, by_lead, {"006A": 1500.0}, m)
    frame = pull.frame
    assert list(frame.columns) == [*LEAD_COLUMNS_IN_FILE_ORDER, LINE_COLUMN]
    assert frame.drop(columns=LINE_COLUMN).map(type).eq(str).all().all()
    assert frame.to_dict("list") | {LINE_COLUMN: None} == {
        "id": ["00QA", "00QB", "00QC", "00QD"],
        "campaign_id": ["CMP1", "CMP1", "CMP2", "CMP2"],
        "name": [""] * 4,
        "email": [""] * 4,
        "phone": [""] * 4,
        "lead_status": ["NEW", "QUALIFIED", "DONE_DEAL", "CONTACTED"],
        # 23:30 UTC on the 5th is past midnight in Berlin: the lead's day is the 6th
        "added_date": [
            "2025-01-06 00:30:00",
            "2025-01-06 09:00:00",
            "2025-01-07 10:15:00",
            "yesterday",
        ],  # fmt: skip
        "deal_value": ["", "1500", "", ""],
        LINE_COLUMN: None,
    }
    assert frame[LINE_COLUMN].tolist() == [2, 3, 4, 5]
    # the undated lead is quarantined by the ordinary validation, with its reason
    campaigns = ingestion.validate_campaigns(
        pd.DataFrame(
            {
                "id": ["CMP1", "CMP2"],
                "user_id": "u",
                "project_name": "p",
                "daily_budget": "10",
                "platform": "",
                "name": "",
                "created_at": "",
                LINE_COLUMN: [2, 3],
            }
        )  # fmt: skip
    )
    validated = ingestion.validate_leads(frame, campaigns, now=NOW)
    assert validated.accepted["lead_id"].tolist() == ["00QA", "00QB", "00QC"]
    assert validated.quarantine["reason_code"].tolist() == ["unparseable_date"]
    assert validated.quarantine["row_key"].tolist() == ["00QD"]


def test_deal_value_is_the_won_amount_once_per_opportunity_and_campaignless_leads_are_counted():
    records = [
        lead("00Q1", ConvertedOpportunityId="006W", ConvertedDate="2025-01-10"),
        lead("00Q2", ConvertedOpportunityId="006W", ConvertedDate="2025-01-09"),  # first converted
        lead("00Q3", ConvertedOpportunityId="006L", ConvertedDate="2025-01-09"),  # a lost deal
        lead("00Q4", ConvertedOpportunityId="006Z", ConvertedDate="2025-01-09"),  # won, amount 0
        lead("00Q5"),  # in no campaign
    ]
    by_lead = pd.Series({"00Q1": "C", "00Q2": "C", "00Q3": "C", "00Q4": "C"})
    pull = map_leads(records, by_lead, {"006W": 2500.5, "006Z": 0}, SalesforceMapping())
    assert dict(zip(pull.frame["id"], pull.frame["deal_value"])) == {
        "00Q1": "", "00Q2": "2500.5", "00Q3": "", "00Q4": "0"
    }  # fmt: skip
    assert pull.counts == {
        "leads_read": 5,
        "leads_without_campaign": 1,
        "leads_with_won_opportunity": 3,
        "won_opportunities_shared_by_leads": 1,
    }


def test_a_lead_belongs_to_its_first_membership_in_a_keyed_campaign():
    memberships = [
        {"Id": "00v3", "LeadId": "L1", "CampaignId": "701B", "CreatedDate": "2025-01-09T00:00:00Z"},
        {"Id": "00v1", "LeadId": "L1", "CampaignId": "701W", "CreatedDate": "2025-01-01T00:00:00Z"},
        {"Id": "00v2", "LeadId": "L1", "CampaignId": "701A", "CreatedDate": "2025-01-05T00:00:00Z"},
        {"Id": "00v4", "LeadId": "L2", "CampaignId": "701W", "CreatedDate": "2025-01-05T00:00:00Z"},
        {"Id": "00v5", "LeadId": "L3", "CampaignId": "701B", "CreatedDate": "2025-01-05T00:00:00Z"},
    ]
    keys = {"701A": "CMP_A", "701B": "CMP_B", "701W": ""}  # the webinar has no ad campaign
    by_lead, several = campaign_of_leads(memberships, keys)
    assert by_lead.to_dict() == {"L1": "CMP_A", "L3": "CMP_B"}
    assert several == 1
    by_lead, _ = campaign_of_leads(memberships, None)  # the Campaign Id is the key
    assert by_lead.to_dict() == {"L1": "701W", "L2": "701W", "L3": "701B"}


def test_status_changes_keep_campaign_leads_and_map_both_statuses():
    history = [
        {"Id": "017A", "LeadId": "L1", "OldValue": None, "NewValue": "Open - Not Contacted",
         "CreatedDate": "2025-01-06T10:00:00.000+0000"},
        {"Id": "017B", "LeadId": "L1", "OldValue": "Open - Not Contacted",
         "NewValue": "Closed - Converted", "CreatedDate": "2025-01-08T12:30:00.000+0000"},
        {"Id": "017C", "LeadId": "L9", "OldValue": "Open - Not Contacted",
         "NewValue": "Working - Contacted", "CreatedDate": "2025-01-08T12:30:00.000+0000"},
    ]  # fmt: skip
    pull = map_status_changes(history, {"L1"}, SalesforceMapping())
    assert pull.frame.drop(columns=LINE_COLUMN).to_dict("records") == [
        {"id": "017A", "lead_id": "L1", "old_status": "", "new_status": "NEW",
         "created_at": "2025-01-06 10:00:00"},
        {"id": "017B", "lead_id": "L1", "old_status": "NEW", "new_status": "QUALIFIED",
         "created_at": "2025-01-08 12:30:00"},
    ]  # fmt: skip
    assert pull.counts == {"history_rows_read": 3, "changes_of_other_leads": 1}


def test_no_query_ever_selects_personal_data():
    for m in (SalesforceMapping(), KEYED, SalesforceMapping(lead_campaign_field="Ad_Campaign__c")):
        for soql in (
            leads_soql(m),
            members_soql(m),
            history_soql(m),
            opportunities_soql(m, ["006A"]),
            campaigns_soql(m),
        ):
            selected = soql.split(" FROM ")[0].removeprefix("SELECT ").split(", ")
            assert not {"Name", "FirstName", "LastName", "Email", "Phone", "Company"} & set(
                selected
            ), soql


@pytest.mark.parametrize(
    "settings, fragment",
    [
        ({"lead_campaign_field": "Campaign__c FROM Lead --"}, "lead_campaign_field"),
        ({"campaign_key_field": "Key'"}, "campaign_key_field"),
        ({"history_status_field": "Status' OR Field != '"}, "history_status_field"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_settings_that_would_not_be_a_field_name_or_a_zone_are_refused(settings, fragment):
    with pytest.raises(SalesforceConfigError, match=fragment):
        SalesforceMapping(**settings)


# --- whole pulls from a fake org ------------------------------------------------------------------


def _validated(leads_raw, changes_raw, campaigns):
    leads = ingestion.validate_leads(leads_raw, campaigns, now=NOW)
    changes = ingestion.validate_lead_status_changes(changes_raw, leads, now=NOW)
    return leads, changes


def _from_files(folder):
    raw = folder / "raw"
    read = {key: ingestion.read_raw_file(raw / s.filename, s) for key, s in FILE_SPECS.items()}
    campaigns = ingestion.validate_campaigns(read["campaigns"], now=NOW)
    return campaigns, _validated(read["campaign_leads"], read["lead_status_changes"], campaigns)


def _assert_same_validated(pulled, expected):
    for got, want in zip(pulled, expected):
        assert got.accounting == want.accounting
        pd.testing.assert_frame_equal(
            got.accepted.sort_values(list(got.accepted.columns[:2])).reset_index(drop=True),
            want.accepted.sort_values(list(want.accepted.columns[:2])).reset_index(drop=True),
        )


def test_a_pull_validates_to_the_same_tables_as_the_same_leads_in_csv_files(salesforce_sample):
    campaigns, expected = _from_files(salesforce_sample.csv_dir)
    with FakeSalesforce(salesforce_sample.built.org) as sf:
        client = SalesforceClient(sf.url, sf.token, ClientSettings(batch_size=200))
        leads = pull_campaign_leads(client, KEYED)
        changes = pull_lead_status_changes(client, KEYED)
    assert client.stats.pages > 10  # Lead, CampaignMember, LeadHistory span several pages
    _assert_same_validated(_validated(leads.frame, changes.frame, campaigns), expected)
    assert expected[0].rows_accepted == len(salesforce_sample.built.expected_leads) > 500
    assert expected[1].rows_accepted == len(salesforce_sample.built.expected_changes) > 500
    assert leads.counts["leads_without_campaign"] == 30
    assert leads.counts["won_opportunities_shared_by_leads"] == 1
    assert changes.counts["changes_of_other_leads"] == 10


def test_a_lead_field_can_name_the_campaign_instead_of_memberships(salesforce_sample):
    built = salesforce_sample.built
    campaign_of = {row["id"]: row["campaign_id"] for row in built.expected_leads}
    records = copy.deepcopy(built.org.records)
    for record in records["Lead"]:
        record["Ad_Campaign_Id__c"] = campaign_of.get(record["Id"])
    del records["CampaignMember"]  # not read at all
    org = FakeOrg(records=records, fields=built.org.fields)
    campaigns, expected = _from_files(salesforce_sample.csv_dir)
    m = SalesforceMapping(lead_campaign_field="Ad_Campaign_Id__c")
    with FakeSalesforce(org) as sf:
        client = SalesforceClient(sf.url, sf.token)
        leads = pull_campaign_leads(client, m)
        changes = pull_lead_status_changes(client, m)
    assert "CampaignMember" not in client.stats.queries
    _assert_same_validated(_validated(leads.frame, changes.frame, campaigns), expected)


def test_a_field_the_org_lacks_is_refused_naming_the_setting_to_fix(salesforce_sample):
    with FakeSalesforce(salesforce_sample.built.org) as sf:
        client = SalesforceClient(sf.url, sf.token)
        with pytest.raises(SalesforceQueryError) as caught:
            pull_campaign_leads(client, SalesforceMapping(campaign_key_field="Ad_Key__c"))
    text = str(caught.value)
    assert (
        "no field 'Ad_Key__c' on Campaign" in text and "Fix the setting campaign_key_field" in text
    )


def test_check_queries_finds_a_hidden_field_in_a_few_requests(salesforce_sample):
    org = salesforce_sample.built.org
    hidden = FakeOrg(
        records=org.records,
        fields=org.fields | {"Lead": org.fields["Lead"] - {"ConvertedOpportunityId"}},
    )
    with FakeSalesforce(org) as sf:
        checked = check_queries(SalesforceClient(sf.url, sf.token), KEYED)
    assert checked == ["Lead", "LeadHistory", "CampaignMember", "Campaign", "Opportunity"]
    assert len(sf.requests) == 5 and all(r.params["q"][0].endswith(" LIMIT 1") for r in sf.requests)
    with FakeSalesforce(hidden) as sf:
        with pytest.raises(SalesforceQueryError, match="lead_converted_opportunity_field"):
            check_queries(SalesforceClient(sf.url, sf.token), KEYED)
    assert len(sf.requests) == 1


def test_a_pull_costs_one_request_per_page_of_each_object_read(salesforce_sample):
    with FakeSalesforce(salesforce_sample.built.org) as sf:
        client = SalesforceClient(sf.url, sf.token)  # pages of up to 2,000 rows
        check_queries(client, KEYED)
        pull_campaign_leads(client, KEYED)
        pull_lead_status_changes(client, KEYED)
    # 5 checks; Lead, CampaignMember, Campaign, Opportunity; LeadHistory, CampaignMember, Campaign
    assert client.stats.requests == len(sf.requests) == 12
    assert client.stats.api_usage == "12/100000"
