"""Salesforce records -> the raw leads and status-change tables, in the CSV files' layout.

The frames returned have exactly the columns of ``campaign_leads.csv`` and
``lead_status_changes.csv``, every cell as text, so the ingestion code validates, quarantines
and counts them exactly as it does the files, and nothing downstream knows the difference.

What is read, and why (every object field name is a setting of ``SalesforceMapping``):

* A lead is a ``Lead``: ``Id`` -> id, ``Status`` -> lead_status (through ``status_map``),
  ``CreatedDate`` -> added_date (in ``timezone``).
* Its campaign comes from ``CampaignMember`` (``LeadId``, ``CampaignId``): the campaign of the
  lead's first membership, because the campaign that brought a lead in is the one whose cost
  it answers for. ``campaign_key_field`` names a ``Campaign`` field holding the ad platform's
  campaign id (the ``id`` of campaigns.csv) when the Salesforce Campaign Id is not that id.
  Orgs that stamp the ad campaign on the lead itself set ``lead_campaign_field`` instead and
  no membership is read. A lead with no (keyed) campaign is not a campaign lead: it is left
  out and counted in the pull's figures, not quarantined (an org's trade-show and hand-entered
  leads would otherwise bury the real defects).
* deal_value is the ``Amount`` of the won ``Opportunity`` the lead was converted into
  (``Lead.ConvertedOpportunityId``, ``Opportunity.IsWon``); blank otherwise. When several leads
  were converted into one opportunity, the first converted carries the amount and the others
  stay blank, so revenue is counted once.
* Status changes are ``LeadHistory`` rows with ``Field = 'Status'`` (``Id``, ``LeadId``,
  ``OldValue``, ``NewValue``, ``CreatedDate``); they exist only where field history tracking is
  on for the lead status. Only changes of campaign leads are kept (the others are counted).
* Names, emails and phones are never queried: those columns stay blank, so personal data
  never enters the pipeline from Salesforce at all. A setting that would put one of Lead's
  personal fields into a query is refused, whatever column it would fill.
* A cell Salesforce sends in an unexpected form (a date that does not parse, an amount that is
  not a number) is passed on as text, so validation quarantines it with a reason instead of it
  being dropped or guessed here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from campaign_pipeline.ingestion import FILE_SPECS, LINE_COLUMN
from campaign_pipeline.salesforce.client import (
    SalesforceClient,
    SalesforceConfigError,
    SalesforceQueryError,
    sobject_of,
)

# The raw files (FILE_SPECS keys) the source replaces when it is on.
SALESFORCE_KEYS = ("campaign_leads", "lead_status_changes")

LEAD_COLUMNS = (
    "id",
    "campaign_id",
    "name",
    "email",
    "phone",
    "lead_status",
    "added_date",
    "deal_value",
)
CHANGE_COLUMNS = ("id", "lead_id", "old_status", "new_status", "created_at")
_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

# Salesforce's default lead statuses, as the pipeline's statuses. "Closed - Converted" is a
# lead that became an account, contact and (usually) an opportunity: QUALIFIED, one of the
# contract's converted statuses. Orgs customise their statuses: set ``status_map`` to match.
DEFAULT_STATUS_MAP: dict[str, str] = {
    "Open - Not Contacted": "NEW",
    "Working - Contacted": "CONTACTED",
    "Closed - Converted": "QUALIFIED",
    "Closed - Not Converted": "NOT_INTERESTED",
}


@dataclass(frozen=True)
class SalesforceMapping:
    """Which objects' fields give the raw columns. Defaults are Salesforce's standard fields."""

    lead_status_field: str = "Status"
    lead_created_field: str = "CreatedDate"
    lead_converted_opportunity_field: str = "ConvertedOpportunityId"
    lead_converted_date_field: str = "ConvertedDate"
    lead_campaign_field: str | None = None
    """A Lead field holding the ad platform's campaign id; when set, CampaignMember is not read."""
    campaign_key_field: str | None = None
    """A Campaign field holding the ad platform's campaign id; unset: the Campaign Id is it."""
    opportunity_amount_field: str = "Amount"
    opportunity_won_field: str = "IsWon"
    history_status_field: str = "Status"
    """The ``LeadHistory.Field`` value of a status change (the lead field's API name)."""
    status_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_STATUS_MAP))
    """Salesforce status -> pipeline status; a status not listed passes through as it is."""
    timezone: str = "UTC"
    """Salesforce sends instants in UTC; a lead's day is its calendar date in this zone."""
    ids_per_query: int = 300
    """Opportunity ids per ``WHERE Id IN (...)`` query: about 7.5 kB of URL, well inside the
    16,384 bytes Salesforce accepts for the URI and headers."""

    def __post_init__(self) -> None:
        # Field names go into SOQL: anything but an API name is refused, naming the setting.
        for setting in (*_SETTING_OBJECTS, "history_status_field"):
            value = getattr(self, setting)
            if value is not None and not _API_NAME.match(value):
                raise SalesforceConfigError(
                    f"Salesforce setting {setting} '{value}' is not a field API name "
                    "(letters, digits and underscores, like Status or Ad_Campaign_Id__c)"
                )
        for setting in _LEAD_FIELD_SETTINGS:
            value = getattr(self, setting)
            if value is not None and value.lower() in _PERSONAL_LEAD_FIELDS:
                default = self.__dataclass_fields__[setting].default
                raise SalesforceConfigError(
                    f"Salesforce setting {setting} '{value}' is a personal field of Lead, and "
                    "no name, email, phone, company or address is read from Salesforce; "
                    "set another field" + (f" (default {default})" if default else "")
                )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SalesforceConfigError(
                f"Salesforce setting timezone '{self.timezone}' is not a time zone name like "
                "UTC or Europe/Berlin"
            ) from None
        if not 1 <= self.ids_per_query <= 500:
            raise SalesforceConfigError("Salesforce setting ids_per_query must be 1-500")

    def setting_of(self, sobject: str, field_name: str) -> str | None:
        """The setting that put ``sobject.field_name`` into a query (for INVALID_FIELD)."""
        for setting, owner in _SETTING_OBJECTS.items():
            if owner == sobject and getattr(self, setting) == field_name:
                return setting
        return None


# The object each field-name setting names a field of.
_SETTING_OBJECTS = {
    "lead_status_field": "Lead",
    "lead_created_field": "Lead",
    "lead_converted_opportunity_field": "Lead",
    "lead_converted_date_field": "Lead",
    "lead_campaign_field": "Lead",
    "campaign_key_field": "Campaign",
    "opportunity_amount_field": "Opportunity",
    "opportunity_won_field": "Opportunity",
}


# The settings naming a Lead field (LeadHistory's Field holds a Lead field's name too).
_LEAD_FIELD_SETTINGS = (
    *(setting for setting, sobject in _SETTING_OBJECTS.items() if sobject == "Lead"),
    "history_status_field",
)
# Lead's standard fields about the person (lower case: API names are case-insensitive). A
# setting naming one would select names, emails or addresses into a raw column and on into the
# validated tables and the asset metadata, which the data contract forbids.
_PERSONAL_LEAD_FIELDS = frozenset(
    name.lower()
    for name in (
        "Name", "FirstName", "LastName", "MiddleName", "Suffix", "Salutation", "Email",
        "Phone", "MobilePhone", "Fax", "Company", "Street", "City", "PostalCode", "Address",
        "Title",
    )
)  # fmt: skip


@dataclass
class SourcePull:
    """A raw table pulled from Salesforce and the figures of the pull (no cell values)."""

    frame: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)


# --- SOQL ----------------------------------------------------------------------------------------


def _soql(fields_: Iterable[str | None], sobject: str, where: str | None = None) -> str:
    names = list(dict.fromkeys(f for f in fields_ if f))  # unique, in order
    return f"SELECT {', '.join(names)} FROM {sobject}" + (f" WHERE {where}" if where else "")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def leads_soql(m: SalesforceMapping) -> str:
    return _soql(
        [
            "Id",
            m.lead_status_field,
            m.lead_created_field,
            m.lead_converted_opportunity_field,
            m.lead_converted_date_field,
            m.lead_campaign_field,
        ],
        "Lead",
    )


def members_soql(m: SalesforceMapping) -> str:
    return _soql(["Id", "LeadId", "CampaignId", "CreatedDate"], "CampaignMember", "LeadId != null")


def campaigns_soql(m: SalesforceMapping) -> str:
    return _soql(["Id", m.campaign_key_field], "Campaign")


def opportunities_soql(m: SalesforceMapping, ids: list[str]) -> str:
    quoted = ", ".join(_quote(i) for i in ids)
    return _soql(
        ["Id", m.opportunity_amount_field],
        "Opportunity",
        f"{m.opportunity_won_field} = true AND Id IN ({quoted})",
    )


def history_soql(m: SalesforceMapping) -> str:
    return _soql(
        ["Id", "LeadId", "OldValue", "NewValue", "CreatedDate"],
        "LeadHistory",
        f"Field = {_quote(m.history_status_field)}",
    )


def campaign_leads_soql(m: SalesforceMapping) -> str:
    """The leads stamped with a campaign (``lead_campaign_field`` set): ids only."""
    return _soql(["Id", m.lead_campaign_field], "Lead", f"{m.lead_campaign_field} != null")


# --- pure mapping ------------------------------------------------------------------------------


def _frame(records: list[dict], columns: Iterable[str]) -> pd.DataFrame:
    """Records as a frame with ``columns`` (absent keys null; Salesforce ``attributes`` ignored)."""
    columns = list(dict.fromkeys(columns))
    if not records:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    frame = pd.DataFrame.from_records(records)
    for column in columns:
        if column not in frame.columns:
            frame[column] = None
    return frame[columns].astype(object)


def _text(values: pd.Series) -> pd.Series:
    """Cells as text the way a CSV export writes them: null -> '', numbers without a trailing
    '.0' on whole values (1500.0 -> '1500'), booleans as true/false."""

    def one(value) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return str(value).strip()

    return values.map(one).astype(object)


def _local_time(values: pd.Series, timezone: str) -> pd.Series:
    """ISO-8601 instants (``2024-01-31T12:34:56.000+0000``) as ``YYYY-MM-DD HH:MM:SS`` in
    ``timezone``; a date alone stays a date; anything else passes through as text."""
    text = _text(values)
    instants = pd.to_datetime(
        text.where(text.str.contains("T")), format="ISO8601", utc=True, errors="coerce"
    )
    local = instants.dt.tz_convert(timezone).dt.strftime("%Y-%m-%d %H:%M:%S")
    return local.where(instants.notna(), text).astype(object)


def _status(values: pd.Series, status_map: Mapping[str, str]) -> pd.Series:
    """Mapped statuses; matching ignores case and surrounding spaces, unmapped pass through."""
    text = _text(values)
    lookup = {str(k).strip().casefold(): v for k, v in status_map.items()}
    mapped = text.str.casefold().map(lookup)
    return mapped.where(mapped.notna(), text).astype(object)


def campaign_of_leads(
    memberships: list[dict], campaign_keys: Mapping[str, str] | None
) -> tuple[pd.Series, int]:
    """Each lead's campaign id: the campaign of its first membership (CreatedDate, then Id)
    whose campaign has a key. Returns (campaign id by lead id, leads in more than one keyed
    campaign). ``campaign_keys`` maps a Campaign Id to its key; None: the Campaign Id is it."""
    frame = _frame(memberships, ["Id", "LeadId", "CampaignId", "CreatedDate"])
    frame = frame.assign(
        LeadId=_text(frame["LeadId"]),
        key=_text(frame["CampaignId"]),
        created=pd.to_datetime(
            _text(frame["CreatedDate"]), format="ISO8601", utc=True, errors="coerce"
        ),
        member=_text(frame["Id"]),
    )
    if campaign_keys is not None:
        frame["key"] = _text(frame["key"].map(campaign_keys))
    frame = frame[(frame["key"] != "") & (frame["LeadId"] != "")]
    frame = frame.sort_values(["LeadId", "created", "member"], kind="stable", na_position="last")
    campaigns_per_lead = frame.groupby("LeadId")["key"].nunique()
    first = frame.drop_duplicates("LeadId", keep="first")
    return first.set_index("LeadId")["key"], int((campaigns_per_lead > 1).sum())


def map_leads(
    lead_records: list[dict],
    campaign_by_lead: pd.Series,
    won_amounts: Mapping[str, object],
    m: SalesforceMapping,
) -> SourcePull:
    """Lead records -> campaign_leads.csv's layout (text). ``campaign_by_lead`` maps a Lead Id
    to its campaign id; ``won_amounts`` a won Opportunity Id to its amount."""
    leads = _frame(
        lead_records,
        [
            "Id",
            m.lead_status_field,
            m.lead_created_field,
            m.lead_converted_opportunity_field,
            m.lead_converted_date_field,
        ],
    )
    lead_id = _text(leads["Id"])
    campaign = lead_id.map(campaign_by_lead)
    has_campaign = campaign.notna() & (_text(campaign) != "")
    leads, lead_id, campaign = leads[has_campaign], lead_id[has_campaign], campaign[has_campaign]

    opportunity = _text(leads[m.lead_converted_opportunity_field])
    won = opportunity.isin(list(won_amounts)) & (opportunity != "")
    # One opportunity's amount is revenue once: the first lead converted into it carries it.
    order = pd.DataFrame(
        {
            "opportunity": opportunity,
            "converted": _text(leads[m.lead_converted_date_field]),
            "created": _text(leads[m.lead_created_field]),
            "lead": lead_id,
        }
    )[won]
    carriers = order.sort_values(["converted", "created", "lead"], kind="stable")
    carrier = carriers.drop_duplicates("opportunity", keep="first").index
    deal_value = pd.Series("", index=leads.index, dtype=object)
    deal_value[carrier] = _text(opportunity[carrier].map(won_amounts)).to_numpy()

    frame = pd.DataFrame(
        {
            "id": lead_id,
            "campaign_id": _text(campaign),
            "name": "",
            "email": "",
            "phone": "",
            "lead_status": _status(leads[m.lead_status_field], m.status_map),
            "added_date": _local_time(leads[m.lead_created_field], m.timezone),
            "deal_value": deal_value,
        },
        index=leads.index,
    )
    counts = {
        "leads_read": len(lead_records),
        "leads_without_campaign": int((~has_campaign).sum()),
        "leads_with_won_opportunity": int(won.sum()),
        "won_opportunities_shared_by_leads": int(won.sum() - len(carrier)),
    }
    return SourcePull(as_raw_frame(frame, "campaign_leads"), counts)


def map_status_changes(
    history_records: list[dict], campaign_lead_ids: set[str], m: SalesforceMapping
) -> SourcePull:
    """LeadHistory status rows -> lead_status_changes.csv's layout (text), campaign leads only."""
    history = _frame(history_records, ["Id", "LeadId", "OldValue", "NewValue", "CreatedDate"])
    lead_id = _text(history["LeadId"])
    keep = lead_id.isin(campaign_lead_ids)
    history = history[keep]
    frame = pd.DataFrame(
        {
            "id": _text(history["Id"]),
            "lead_id": lead_id[keep],
            "old_status": _status(history["OldValue"], m.status_map),
            "new_status": _status(history["NewValue"], m.status_map),
            "created_at": _local_time(history["CreatedDate"], m.timezone),
        },
        index=history.index,
    )
    counts = {
        "history_rows_read": len(history_records),
        "changes_of_other_leads": int((~keep).sum()),
    }
    return SourcePull(as_raw_frame(frame, "lead_status_changes"), counts)


def as_raw_frame(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """``frame`` as ``ingestion.read_raw_file`` returns a file: the spec's columns, text,
    stripped, sorted by id, and ``_line`` as if the rows had been written to a CSV (header on
    line 1), so a quarantined row's line_number points into the staged snapshot."""
    columns = LEAD_COLUMNS if key == "campaign_leads" else CHANGE_COLUMNS
    spec = FILE_SPECS[key]
    missing = [c for c in spec.required if c not in columns]
    assert not missing, missing  # the layouts above follow the contract
    out = frame.loc[:, list(columns)].astype(object).apply(lambda s: _text(s))
    out = out.sort_values("id", kind="stable").reset_index(drop=True)
    out[LINE_COLUMN] = np.arange(2, len(out) + 2, dtype="int64")
    return out


# --- pulls (client + mapping) ---------------------------------------------------------------------


def _query(client: SalesforceClient, soql: str, m: SalesforceMapping) -> list[dict]:
    try:
        return client.query(soql).records
    except SalesforceQueryError as error:
        setting = m.setting_of(sobject_of(soql), error.field) if error.field else None
        if setting:
            raise error.with_note(f"Fix the setting {setting}.") from None
        raise


def _campaign_by_lead(
    client: SalesforceClient, m: SalesforceMapping, lead_records: list[dict] | None
) -> tuple[pd.Series, int]:
    if m.lead_campaign_field:
        records = lead_records
        if records is None:
            records = _query(client, campaign_leads_soql(m), m)
        frame = _frame(records, ["Id", m.lead_campaign_field])
        by_lead = pd.Series(
            _text(frame[m.lead_campaign_field]).to_numpy(), index=_text(frame["Id"]).to_numpy()
        )
        return by_lead[by_lead != ""], 0
    memberships = _query(client, members_soql(m), m)
    keys = None
    if m.campaign_key_field:
        campaigns = _frame(_query(client, campaigns_soql(m), m), ["Id", m.campaign_key_field])
        keys = dict(zip(_text(campaigns["Id"]), _text(campaigns[m.campaign_key_field])))
    return campaign_of_leads(memberships, keys)


def pull_campaign_leads(client: SalesforceClient, m: SalesforceMapping) -> SourcePull:
    """Leads, their campaigns and their won amounts, as campaign_leads.csv's rows."""
    lead_records = _query(client, leads_soql(m), m)
    campaign_by_lead, in_several = _campaign_by_lead(client, m, lead_records)
    opportunity_ids = sorted(
        {
            str(r.get(m.lead_converted_opportunity_field))
            for r in lead_records
            if r.get(m.lead_converted_opportunity_field)
            and str(r.get("Id")) in campaign_by_lead.index
        }
    )
    won_amounts: dict[str, object] = {}
    for start in range(0, len(opportunity_ids), m.ids_per_query):
        chunk = opportunity_ids[start : start + m.ids_per_query]
        for record in _query(client, opportunities_soql(m, chunk), m):
            won_amounts[str(record["Id"])] = record.get(m.opportunity_amount_field)
    pull = map_leads(lead_records, campaign_by_lead, won_amounts, m)
    pull.counts["leads_in_several_campaigns"] = in_several
    return pull


def check_queries(client: SalesforceClient, m: SalesforceMapping) -> list[str]:
    """Run every query a pull would run with ``LIMIT 1``: the token, the API version, the
    allowance and every configured field are checked in a few requests, before any long work.
    Returns the objects checked; raises the ``SalesforceError`` a pull would meet."""
    queries = [leads_soql(m), history_soql(m)]
    if m.lead_campaign_field is None:
        queries.append(members_soql(m))
        if m.campaign_key_field:
            queries.append(campaigns_soql(m))
    queries.append(
        _soql(
            ["Id", m.opportunity_amount_field], "Opportunity", f"{m.opportunity_won_field} = true"
        )
    )
    for soql in queries:
        _query(client, f"{soql} LIMIT 1", m)
    return [sobject_of(q) for q in queries]


def pull_lead_status_changes(client: SalesforceClient, m: SalesforceMapping) -> SourcePull:
    """Status changes of campaign leads, as lead_status_changes.csv's rows."""
    history = _query(client, history_soql(m), m)
    campaign_by_lead, _ = _campaign_by_lead(client, m, None)
    return map_status_changes(history, set(campaign_by_lead.index), m)
