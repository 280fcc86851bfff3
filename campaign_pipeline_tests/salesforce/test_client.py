"""The query client against a fake org on 127.0.0.1 that enforces Salesforce's documented rules:
pagination by server-issued locators, short pages, totalSize, 401/403/400/404/5xx, the usage
header, and what travels where (the token only in the Authorization header)."""

import socket

import pytest

from campaign_pipeline.salesforce.client import (
    AUTH_MESSAGE,
    ClientSettings,
    SalesforceAuthError,
    SalesforceClient,
    SalesforceConfigError,
    SalesforceError,
    SalesforceQueryError,
    SalesforceRefusedError,
    SalesforceUnavailableError,
    normalise_instance_url,
)
from campaign_pipeline_tests.fake_salesforce import ORG_FIELDS, FakeOrg, FakeSalesforce, sf_id

N_LEADS = 2_500
LEADS_SOQL = "SELECT Id, Status, CreatedDate FROM Lead"


@pytest.fixture(scope="module")
def org() -> FakeOrg:
    leads = [
        {
            "Id": sf_id("00Q", n),
            "Status": "Open - Not Contacted",
            "CreatedDate": f"2025-01-{1 + n % 28:02d}T10:00:00.000+0000",
            "Email": f"p{n}@example.com",
        }
        for n in range(N_LEADS)
    ]
    return FakeOrg(records={"Lead": leads}, fields={"Lead": set(ORG_FIELDS["Lead"])})


def client_for(sf: FakeSalesforce, sleeps: list | None = None, **settings) -> SalesforceClient:
    pauses = sleeps if sleeps is not None else []
    return SalesforceClient(sf.url, sf.token, ClientSettings(**settings), sleep=pauses.append)


def one_line(error: Exception) -> str:
    text = str(error)
    assert "\n" not in text and text.strip() == text and text
    return text


def test_a_multi_page_pull_returns_exactly_the_records_served_following_issued_urls(org):
    with FakeSalesforce(org, short_page_every=3) as sf:
        client = client_for(sf, batch_size=500)
        result = client.query(LEADS_SOQL)
    assert [r["Id"] for r in result.records] == [r["Id"] for r in org.records["Lead"]]
    assert result.total_size == N_LEADS
    # pages of 500, 500, then a short one (166), ...: more pages than 2,500 / 500
    assert result.pages == len(sf.requests) > N_LEADS // 500
    assert all(r.headers["Sforce-Query-Options"] == "batchSize=500" for r in sf.requests)
    # the first request is the query, every later one a locator the server issued (the fake
    # answers 400 INVALID_QUERY_LOCATOR to any other URL, and every answer was a 200)
    assert sf.requests[0].path.endswith("/query") and sf.requests[0].params["q"] == [LEADS_SOQL]
    assert all("/query/01g" in r.path and not r.params for r in sf.requests[1:])
    assert all(r.status == 200 for r in sf.requests)
    assert client.stats.pages == result.pages and client.stats.rows == N_LEADS
    # the fields asked for and the record attributes only: no personal data the query did not ask
    assert set(result.records[0]) == {"attributes", "Id", "Status", "CreatedDate"}


def test_the_server_clamps_the_page_size_and_the_client_refuses_a_size_it_would_not_serve(org):
    with pytest.raises(SalesforceConfigError, match="batch_size 100"):
        ClientSettings(batch_size=100)
    with FakeSalesforce(org, short_page_every=0) as sf:
        result = client_for(sf, batch_size=200).query(LEADS_SOQL)
    assert result.pages == N_LEADS // 200 + 1  # 12 pages of 200 and one of 100


def test_a_page_missing_rows_fails_the_pull_against_total_size(org):
    with FakeSalesforce(org) as sf:
        sf.lose_a_row = True
        with pytest.raises(SalesforceError, match="totalSize") as caught:
            client_for(sf, batch_size=1000).query(LEADS_SOQL)
    assert "2,500" in one_line(caught.value)


def test_503s_are_retried_with_bounded_backoff_then_the_pull_completes(org):
    sleeps: list[float] = []
    with FakeSalesforce(org) as sf:
        sf.fail_next(2, status=503)
        fail_once = iter([True])

        def on_page(_line: str) -> None:  # a 503 in the middle of the pagination as well
            if next(fail_once, False):
                sf.fail_next(1, status=503)

        client = SalesforceClient(
            sf.url,
            sf.token,
            ClientSettings(batch_size=500, backoff_seconds=0.5, max_backoff_seconds=1.0),
            sleep=sleeps.append,
            progress=on_page,
        )
        result = client.query(LEADS_SOQL)
    assert [r["Id"] for r in result.records] == [r["Id"] for r in org.records["Lead"]]
    assert client.stats.retries == 3 and len(sleeps) == 3
    assert [r.status for r in sf.requests].count(503) == 3
    # jittered exponential backoff: 0.25-0.5 s, then 0.5-1 s, never above the cap
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0 and max(sleeps) <= 1.0


def test_5xx_on_every_attempt_ends_in_one_line_after_the_bounded_tries(org):
    sleeps: list[float] = []
    with FakeSalesforce(org) as sf:
        sf.fail_next(10, status=503)
        with pytest.raises(SalesforceUnavailableError) as caught:
            client_for(sf, sleeps, max_attempts=3).query(LEADS_SOQL)
    assert len(sf.requests) == 3 and len(sleeps) == 2
    assert "answered 503" in one_line(caught.value) and "3 attempts" in str(caught.value)


def test_an_expired_token_is_one_clear_line_without_the_token_and_not_retried(org):
    with FakeSalesforce(org) as sf:
        sf.expire_token()
        client = client_for(sf)
        with pytest.raises(SalesforceAuthError) as caught:
            client.query(LEADS_SOQL)
    assert one_line(caught.value) == AUTH_MESSAGE
    assert len(sf.requests) == 1
    for text in (str(caught.value), repr(caught.value), repr(client), str(vars(caught.value))):
        assert sf.token not in text


def test_a_token_expiring_mid_pull_stops_it_with_the_same_line(org):
    with FakeSalesforce(org) as sf:
        sf.expire_token(after_requests=2)
        with pytest.raises(SalesforceAuthError, match="INVALID_SESSION_ID"):
            client_for(sf, batch_size=500).query(LEADS_SOQL)
    assert [r.status for r in sf.requests] == [200, 200, 401]


def test_the_org_api_limit_refusal_says_so_with_the_usage(org):
    with FakeSalesforce(org, api_limit=2) as sf:
        with pytest.raises(SalesforceRefusedError) as caught:
            client_for(sf, batch_size=500, stop_at_api_usage=1.0).query(LEADS_SOQL)
    text = one_line(caught.value)
    assert "403 REQUEST_LIMIT_EXCEEDED" in text and "api-usage 3/2" in text
    assert [r.status for r in sf.requests] == [200, 200, 403]


def test_the_pull_stops_itself_at_its_share_of_the_daily_allowance(org):
    with FakeSalesforce(org, api_limit=100, api_used=94) as sf:
        with pytest.raises(SalesforceRefusedError, match="stop_at_api_usage") as caught:
            client_for(sf, batch_size=500).query(LEADS_SOQL)
    assert "95 of its 100" in one_line(caught.value)
    assert len(sf.requests) == 1  # it did not spend the org's last requests


def test_an_unknown_or_hidden_field_is_one_line_naming_field_and_object(org):
    with FakeSalesforce(org) as sf:
        with pytest.raises(SalesforceQueryError) as caught:
            client_for(sf).query("SELECT Id, Campaign__c FROM Lead")
    text = one_line(caught.value)
    assert caught.value.field == "Campaign__c" and caught.value.error_code == "INVALID_FIELD"
    assert "no field 'Campaign__c' on Lead" in text and "field-level security" in text
    assert len(sf.requests) == 1  # a refused query is not retried


def test_a_malformed_query_and_an_unknown_object_are_refused_in_one_line(org):
    with FakeSalesforce(org) as sf:
        with pytest.raises(SalesforceQueryError, match="400 MALFORMED_QUERY") as caught:
            client_for(sf).query("SELEC Id FROM Lead")
        one_line(caught.value)
        with pytest.raises(SalesforceQueryError, match="400 INVALID_TYPE.*'Leads'"):
            client_for(sf).query("SELECT Id FROM Leads")


def test_an_api_version_the_org_does_not_serve_names_the_setting(org):
    with FakeSalesforce(org) as sf:
        with pytest.raises(SalesforceConfigError, match="api_version 99.0") as caught:
            client_for(sf, api_version="99.0").query(LEADS_SOQL)
    assert "404 NOT_FOUND" in one_line(caught.value)
    with pytest.raises(SalesforceConfigError, match="not a version"):
        ClientSettings(api_version="latest")


def test_a_redirect_is_not_followed(org):
    with FakeSalesforce(org) as sf:
        sf.fail_next(1, status=302, code="FOUND")
        with pytest.raises(SalesforceConfigError, match="redirected"):
            client_for(sf).query(LEADS_SOQL)
    assert len(sf.requests) == 1


def test_an_unreachable_instance_is_one_line_after_bounded_retries():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []
    client = SalesforceClient(
        f"http://127.0.0.1:{port}", "tok", ClientSettings(max_attempts=3), sleep=sleeps.append
    )
    with pytest.raises(SalesforceUnavailableError) as caught:
        client.query(LEADS_SOQL)
    assert one_line(caught.value) == (
        f"Salesforce: cannot reach http://127.0.0.1:{port} (connection refused or dropped) after "
        "all 3 attempts; check SALESFORCE_INSTANCE_URL and the network"
    )
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("http://yourorg.my.salesforce.com", "must use https://"),
        ("https://yourorg.my.salesforce.com/services/data", "no path"),
        ("yourorg.my.salesforce.com", "base URL"),
        ("", "base URL"),
    ],
)
def test_an_instance_url_that_cannot_be_right_is_refused(url, fragment):
    with pytest.raises(SalesforceConfigError, match=fragment):
        normalise_instance_url(url)


def test_instance_urls_that_are_fine():
    assert normalise_instance_url(" https://x.my.salesforce.com/ ") == "https://x.my.salesforce.com"
    assert normalise_instance_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"


def test_the_token_travels_only_in_the_authorization_header(org):
    with FakeSalesforce(org) as sf:
        client_for(sf, batch_size=500).query(LEADS_SOQL)
    assert len(sf.requests) > 1
    for request in sf.requests:
        assert request.headers["Authorization"] == f"Bearer {sf.token}"
        elsewhere = [v for k, v in request.headers.items() if k != "Authorization"]
        assert sf.token not in request.path + str(request.params) + str(elsewhere)
