"""A fake Salesforce org on 127.0.0.1 for the tests: a real HTTP server that answers the REST
query resource the way Salesforce documents it (../shared/external_apis.md C2, C4, C5, C7):

* ``GET /services/data/v{ver}/query?q=SOQL`` with a small SOQL subset: ``SELECT f, ... FROM
  Object [WHERE f = lit AND f != null AND f IN (...)] [ORDER BY f, ...] [LIMIT n]``. A field the
  object does not have (or the user cannot see) is 400 INVALID_FIELD with Salesforce's message
  text; anything it cannot parse is 400 MALFORMED_QUERY; an unknown object 400 INVALID_TYPE; a
  version above the org's newest 404 NOT_FOUND.
* Pages of ``Sforce-Query-Options: batchSize`` rows, clamped to 200-2,000 (default 2,000), every
  ``short_page_every``-th page smaller than asked; ``totalSize``, ``done`` and
  ``nextRecordsUrl`` (``/services/data/v{ver}/query/{locator}-{offset}``). Only a locator URL
  the server issued is served: a client building its own gets 400 INVALID_QUERY_LOCATOR.
* ``Authorization: Bearer`` checked on every request: 401 INVALID_SESSION_ID when it is not the
  org's token or the token has expired (now, or after a number of requests).
* A usage counter in ``Sforce-Limit-Info: api-usage=used/limit`` on every answer, and 403
  REQUEST_LIMIT_EXCEEDED past the limit. Failures on demand (503 and other statuses).
* Every request is recorded (path, query, headers) so tests can check what a client sent.
"""

from __future__ import annotations

import csv
import json
import re
import secrets
import shutil
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

NEWEST_VERSION = 66.0
MIN_BATCH, MAX_BATCH = 200, 2000

_SELECT = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>[\w\s,]+?))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_COMPARISON = re.compile(r"^(?P<field>\w+)\s*(?P<op>=|!=)\s*(?P<value>.+)$", re.DOTALL)
_IN = re.compile(r"^(?P<field>\w+)\s+IN\s*\((?P<values>.*)\)$", re.IGNORECASE | re.DOTALL)
_STRING = re.compile(r"'((?:[^'\\]|\\.)*)'")
_QUERY_PATH = re.compile(r"^/services/data/v(?P<version>\d+\.\d)/query(?:/(?P<locator>[^/]+))?$")


class SoqlError(Exception):
    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


def _literal(text: str):
    text = text.strip()
    found = _STRING.fullmatch(text)
    if found:
        return re.sub(r"\\(.)", r"\1", found.group(1))
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    try:
        return float(text)
    except ValueError:
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text[:40]}'") from None


def _no_such_column(soql: str, name: str, sobject: str) -> SoqlError:
    column = soql.find(name) + 1
    return SoqlError(
        "INVALID_FIELD",
        f"\n{soql}\n{' ' * max(0, column - 1)}^\nERROR at Row:1:Column:{column}\n"
        f"No such column '{name}' on entity '{sobject}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names.",
    )


@dataclass
class FakeOrg:
    """The org's records (every field, by object) and which fields the API user can see."""

    records: dict[str, list[dict]]
    fields: dict[str, set[str]]

    def run(self, soql: str) -> tuple[str, list[str], list[dict]]:
        """(object, selected fields, matching records) of a query, or a ``SoqlError``."""
        match = _SELECT.match(soql)
        if not match:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{soql.split()[0][:40]}'")
        sobject = match.group("object")
        if sobject not in self.fields:
            raise SoqlError(
                "INVALID_TYPE",
                f"\n{soql}\nERROR at Row:1\nsObject type '{sobject}' is not supported.",
            )
        visible = self.fields[sobject]
        selected = [name.strip() for name in match.group("fields").split(",")]
        for name in selected:
            if not _NAME.match(name):
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{name[:40]}'")
            if name not in visible:
                raise _no_such_column(soql, name, sobject)
        rows = list(self.records.get(sobject, []))
        if match.group("where"):
            for condition in re.split(r"\s+AND\s+", match.group("where"), flags=re.IGNORECASE):
                rows = self._filter(rows, condition.strip(), soql, sobject, visible)
        if match.group("order"):
            keys = [k.strip() for k in match.group("order").split(",")]
            for key in reversed(keys):
                name = key.split()[0]
                if name not in visible:
                    raise _no_such_column(soql, name, sobject)
                rows.sort(key=lambda r, n=name: (r.get(n) is not None, r.get(n) or ""))
        if match.group("limit"):
            rows = rows[: int(match.group("limit"))]
        return sobject, selected, rows

    def _filter(self, rows, condition, soql, sobject, visible):
        found_in = _IN.match(condition)
        found = _COMPARISON.match(condition)
        if found_in:
            name = found_in.group("field")
            values = {_literal(v) for v in found_in.group("values").split(",") if v.strip()}
            test = lambda value: value in values  # noqa: E731
        elif found:
            name, op = found.group("field"), found.group("op")
            expected = _literal(found.group("value"))
            if op == "=":
                test = lambda value: value == expected  # noqa: E731
            else:
                test = lambda value: value != expected  # noqa: E731
        else:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{condition[:40]}'")
        if name not in visible:
            raise _no_such_column(soql, name, sobject)
        return [r for r in rows if test(r.get(name))]


@dataclass
class _Cursor:
    sobject: str
    version: str
    fields: list[str]
    rows: list[dict]
    batch: int
    issued: set[int] = field(default_factory=set)
    pages_served: int = 0


@dataclass
class RecordedRequest:
    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]
    status: int = 0


class FakeSalesforce:
    """Start with ``with FakeSalesforce(org) as sf:``; ``sf.url`` is the instance URL."""

    def __init__(
        self,
        org: FakeOrg,
        *,
        token: str | None = None,
        api_limit: int = 100_000,
        api_used: int = 0,
        short_page_every: int = 3,
    ):
        self.org = org
        self.token = token or f"00Dfake!{secrets.token_urlsafe(24)}"
        self.api_limit = api_limit
        self.api_used = api_used
        self.short_page_every = short_page_every
        self.requests: list[RecordedRequest] = []
        self.lose_a_row = False  # a page silently misses a row (a broken proxy or server)
        self._failures: list[tuple[int, str]] = []
        self._expire_after: int | None = None
        self._expired = False
        self._cursors: dict[str, _Cursor] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeSalesforce:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- controls -----------------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 503, code: str = "SERVER_UNAVAILABLE") -> None:
        """The next ``count`` requests get ``status`` before anything else is looked at."""
        with self._lock:
            self._failures.extend([(status, code)] * count)

    def expire_token(self, after_requests: int = 0) -> None:
        """The token stops working now, or after ``after_requests`` more authorised requests."""
        with self._lock:
            if after_requests <= 0:
                self._expired = True
            else:
                self._expire_after = after_requests

    @property
    def query_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.status == 200]

    # --- the HTTP side ------------------------------------------------------------------------

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet test output
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                parts = urlsplit(self.path)
                record = RecordedRequest(
                    path=parts.path, params=parse_qs(parts.query), headers=dict(self.headers)
                )
                with fake._lock:
                    fake.requests.append(record)
                    status, body, headers = fake._answer(parts.path, record)
                record.status = status
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    def _error(self, status: int, code: str, message: str, headers=None):
        return status, [{"message": message, "errorCode": code}], headers or {}

    def _answer(self, path: str, record: RecordedRequest):
        if self._failures:
            status, code = self._failures.pop(0)
            return self._error(status, code, "Server temporarily unavailable")
        found = _QUERY_PATH.match(path)
        if not found or not 20.0 <= float(found.group("version")) <= NEWEST_VERSION:
            return self._error(404, "NOT_FOUND", "The requested resource does not exist")
        if record.headers.get("Authorization") != f"Bearer {self.token}" or self._expired:
            return self._error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if self._expire_after is not None:
            self._expire_after -= 1
            if self._expire_after <= 0:
                self._expired, self._expire_after = True, None
        self.api_used += 1
        usage = {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.api_limit}"}
        if self.api_used > self.api_limit:
            return self._error(
                403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", usage
            )
        if found.group("locator"):
            return self._next_page(found.group("locator"), usage)
        soql = (record.params.get("q") or [""])[0]
        try:
            sobject, selected, rows = self.org.run(soql)
        except SoqlError as error:
            return self._error(400, error.code, str(error), usage)
        options = record.headers.get("Sforce-Query-Options", "")
        asked = re.search(r"batchSize=(\d+)", options)
        batch = min(MAX_BATCH, max(MIN_BATCH, int(asked.group(1)))) if asked else MAX_BATCH
        locator = "01g" + secrets.token_hex(8)
        cursor = _Cursor(sobject, found.group("version"), selected, rows, batch)
        self._cursors[locator] = cursor
        return 200, self._page(locator, cursor, 0), usage

    def _next_page(self, locator_offset: str, usage: dict):
        locator, _, offset = locator_offset.rpartition("-")
        cursor = self._cursors.get(locator)
        if cursor is None or not offset.isdigit() or int(offset) not in cursor.issued:
            return self._error(
                400, "INVALID_QUERY_LOCATOR", "invalid query locator", usage
            )  # a URL the server never issued
        return 200, self._page(locator, cursor, int(offset)), usage

    def _page(self, locator: str, cursor: _Cursor, offset: int) -> dict:
        size = cursor.batch
        cursor.pages_served += 1
        if self.short_page_every and cursor.pages_served % self.short_page_every == 0:
            size = max(1, size // 3)  # Salesforce may send fewer rows than asked
        rows = cursor.rows[offset : offset + size]
        end = offset + len(rows)
        if self.lose_a_row and rows:
            rows = rows[1:]
        body = {
            "totalSize": len(cursor.rows),
            "done": end >= len(cursor.rows),
            "records": [
                {
                    "attributes": {
                        "type": cursor.sobject,
                        "url": f"/services/data/v{cursor.version}/sobjects/{cursor.sobject}/"
                        f"{row.get('Id')}",
                    },
                    **{name: row.get(name) for name in cursor.fields},
                }
                for row in rows
            ],
        }
        if not body["done"]:
            cursor.issued.add(end)
            body["nextRecordsUrl"] = f"/services/data/v{cursor.version}/query/{locator}-{end}"
        return body


# --- an org holding the same leads as a set of Leadsmart exports ------------------------------

# The fields the API user can see on each object: standard ones, the lead's personal data
# (which the source must never select), and the custom campaign key of the tests.
ORG_FIELDS: dict[str, set[str]] = {
    "Lead": {
        "Id",
        "FirstName",
        "LastName",
        "Company",
        "Email",
        "Phone",
        "Status",
        "LeadSource",
        "CreatedDate",
        "IsConverted",
        "ConvertedDate",
        "ConvertedOpportunityId",
        "Ad_Campaign_Id__c",
    },
    "Campaign": {"Id", "Name", "Type", "Status", "Ad_Campaign_Id__c"},
    "CampaignMember": {"Id", "CampaignId", "LeadId", "ContactId", "Status", "CreatedDate"},
    "Opportunity": {"Id", "Name", "Amount", "IsWon", "IsClosed", "StageName", "CloseDate"},
    "LeadHistory": {"Id", "LeadId", "Field", "OldValue", "NewValue", "CreatedDate", "IsDeleted"},
}

# Salesforce's default statuses for the Leadsmart statuses they stand for (the source's default
# status_map turns them back); other statuses are stored as the export spells them.
SALESFORCE_STATUS = {
    "NEW": "Open - Not Contacted",
    "CONTACTED": "Working - Contacted",
    "QUALIFIED": "Closed - Converted",
    "NOT_INTERESTED": "Closed - Not Converted",
}


def sf_id(prefix: str, number: int) -> str:
    """An 18-character id with the object's key prefix (00Q Lead, 701 Campaign, ...)."""
    return f"{prefix}{number:015d}"


def _iso(text: str) -> str:
    """A Leadsmart timestamp (the contract's three formats) as Salesforce writes a datetime."""
    import datetime as dt

    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%m/%d/%Y"):
        try:
            moment = dt.datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
        return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    raise ValueError(f"not a contract timestamp: {text!r}")


@dataclass
class OrgFromExports:
    """A fake org and the CSV rows (the contract's layout, Salesforce ids) it must map to."""

    org: FakeOrg
    expected_leads: list[dict]
    expected_changes: list[dict]


def org_from_exports(leads: list[dict], changes: list[dict]) -> OrgFromExports:
    """Salesforce records holding the same leads as ``leads`` / ``changes`` (rows of
    campaign_leads.csv and lead_status_changes.csv, as text), plus what a real org has on the
    side and the source must leave out or resolve:

    * a campaign without the ad campaign key (a webinar), leads that are only in it and leads
      that joined it before their ad campaign; leads in no campaign at all; leads that joined a
      second ad campaign later (they stay with the first);
    * a lost opportunity on some leads (never revenue), two leads converted into one won
      opportunity (its amount counts once, on the first converted);
    * LeadHistory rows of other fields, and status changes of leads in no campaign.

    Written row by row on purpose: it is the tests' independent statement of the mapping.
    """
    campaign_ids = sorted({row["campaign_id"] for row in leads})
    campaign_sf = {cid: sf_id("701", n) for n, cid in enumerate(campaign_ids)}
    records: dict[str, list[dict]] = {name: [] for name in ORG_FIELDS}
    records["Campaign"] = [
        {"Id": sfid, "Name": f"Ads {cid}", "Type": "Advertisement", "Ad_Campaign_Id__c": cid}
        for cid, sfid in campaign_sf.items()
    ]
    webinar = sf_id("701", 999_999)
    records["Campaign"].append({"Id": webinar, "Name": "Webinar", "Type": "Webinar"})
    lead_sf: dict[str, str] = {}
    expected_leads: list[dict] = []
    member_n = 0

    def member(lead_id: str, campaign: str, created: str) -> None:
        nonlocal member_n
        member_n += 1
        records["CampaignMember"].append(
            {"Id": sf_id("00v", member_n), "LeadId": lead_id, "CampaignId": campaign,
             "Status": "Responded", "CreatedDate": created}
        )  # fmt: skip

    shared_opportunity, shared = None, False
    for n, row in enumerate(leads):
        lead_id = sf_id("00Q", n)
        lead_sf[row["id"]] = lead_id
        created = _iso(row["added_date"])
        status = row["lead_status"]
        record = {
            "Id": lead_id,
            "FirstName": "Ann",
            "LastName": f"Person{n}",
            "Company": "Acme",
            "Email": f"person{n}@example.com",
            "Phone": f"+1 555 {n:07d}",
            "Status": SALESFORCE_STATUS.get(status.strip().upper(), status),
            "LeadSource": "Advertisement",
            "CreatedDate": created,
            "IsConverted": False,
            "ConvertedDate": None,
            "ConvertedOpportunityId": None,
        }
        deal_value = row.get("deal_value") or ""
        if deal_value:
            opportunity = sf_id("006", n)
            record.update(
                IsConverted=True, ConvertedDate=created[:10], ConvertedOpportunityId=opportunity
            )
            records["Opportunity"].append(
                {"Id": opportunity, "Name": f"Deal {n}", "Amount": float(deal_value),
                 "IsWon": True, "IsClosed": True, "StageName": "Closed Won"}
            )  # fmt: skip
            if shared_opportunity is None:
                shared_opportunity = (opportunity, created)
            elif not shared and created > shared_opportunity[1]:
                # converted later into the first won opportunity: that amount counts once
                record.update(ConvertedOpportunityId=shared_opportunity[0])
                records["Opportunity"].pop()
                deal_value, shared = "", True
        elif n % 5 == 0:
            opportunity = sf_id("006", n)
            record.update(
                IsConverted=True, ConvertedDate=created[:10], ConvertedOpportunityId=opportunity
            )
            records["Opportunity"].append(
                {"Id": opportunity, "Name": f"Lost {n}", "Amount": 777.0, "IsWon": False,
                 "IsClosed": True, "StageName": "Closed Lost"}
            )  # fmt: skip
        records["Lead"].append(record)
        if n % 40 == 3:  # in the webinar first: the ad campaign still brought the lead
            member(lead_id, webinar, created[:10] + "T00:00:00.000+0000")
        member(lead_id, campaign_sf[row["campaign_id"]], created)
        if n % 50 == 7 and len(campaign_ids) > 1:  # a second ad campaign later
            other = campaign_ids[(campaign_ids.index(row["campaign_id"]) + 1) % len(campaign_ids)]
            member(lead_id, campaign_sf[other], created[:10] + "T23:59:59.000+0000")
        expected_leads.append(
            {"id": lead_id, "campaign_id": row["campaign_id"], "name": "", "email": "",
             "phone": "", "lead_status": status, "added_date": row["added_date"],
             "deal_value": deal_value}
        )  # fmt: skip

    # Leads that are no campaign's: only in the webinar, or in no campaign at all.
    outsiders = []
    for k in range(30):
        lead_id = sf_id("00Q", 900_000 + k)
        outsiders.append(lead_id)
        records["Lead"].append(
            {"Id": lead_id, "LastName": f"Walk-in {k}", "Company": "Acme",
             "Email": f"walkin{k}@example.com", "Status": "Open - Not Contacted",
             "CreatedDate": "2025-01-08T10:00:00.000+0000", "IsConverted": False}
        )  # fmt: skip
        if k % 2:
            member(lead_id, webinar, "2025-01-08T10:00:00.000+0000")

    expected_changes: list[dict] = []
    history_n = 0

    def history(lead_id: str, field_name: str, old, new, created: str) -> str:
        nonlocal history_n
        history_n += 1
        change_id = sf_id("017", history_n)
        records["LeadHistory"].append(
            {"Id": change_id, "LeadId": lead_id, "Field": field_name, "OldValue": old,
             "NewValue": new, "CreatedDate": created, "IsDeleted": False}
        )  # fmt: skip
        return change_id

    for row in changes:
        lead_id = lead_sf[row["lead_id"]]
        old, new = row["old_status"], row["new_status"]
        change_id = history(
            lead_id,
            "Status",
            SALESFORCE_STATUS.get(old.strip().upper(), old) if old else None,
            SALESFORCE_STATUS.get(new.strip().upper(), new),
            _iso(row["created_at"]),
        )
        expected_changes.append(
            {"id": change_id, "lead_id": lead_id, "old_status": old, "new_status": new,
             "created_at": row["created_at"]}
        )  # fmt: skip
        history(lead_id, "Rating", "Warm", "Hot", _iso(row["created_at"]))
    for lead_id in outsiders[:10]:
        history(lead_id, "Status", "Open - Not Contacted", "Working - Contacted",
                "2025-01-09T10:00:00.000+0000")  # fmt: skip

    return OrgFromExports(
        FakeOrg(records=records, fields={k: set(v) for k, v in ORG_FIELDS.items()}),
        expected_leads,
        expected_changes,
    )


LEAD_FILE_COLUMNS = ["id", "campaign_id", "name", "email", "phone", "lead_status", "added_date",
                     "deal_value"]  # fmt: skip
CHANGE_FILE_COLUMNS = ["id", "lead_id", "old_status", "new_status", "created_at"]


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def read_csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


@dataclass
class SalesforceExports:
    """A fake org's contents and two data dirs over the same leads: ``csv_dir`` holds the four
    files (the lead files written from the org's expected rows), ``salesforce_dir`` only
    campaigns.csv and insights.csv (the leads come from the org)."""

    built: OrgFromExports
    csv_dir: Path
    salesforce_dir: Path


def salesforce_exports(sample_raw: Path, root: Path) -> SalesforceExports:
    built = org_from_exports(
        read_csv_rows(sample_raw / "campaign_leads.csv"),
        read_csv_rows(sample_raw / "lead_status_changes.csv"),
    )
    csv_dir, salesforce_dir = root / "csv", root / "salesforce"
    for folder in (csv_dir, salesforce_dir):
        (folder / "raw").mkdir(parents=True)
        for name in ("campaigns.csv", "insights.csv"):
            shutil.copy(sample_raw / name, folder / "raw" / name)
    write_csv(csv_dir / "raw" / "campaign_leads.csv", built.expected_leads, LEAD_FILE_COLUMNS)
    write_csv(
        csv_dir / "raw" / "lead_status_changes.csv", built.expected_changes, CHANGE_FILE_COLUMNS
    )
    return SalesforceExports(built, csv_dir, salesforce_dir)
