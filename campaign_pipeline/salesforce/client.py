"""A small client for the Salesforce REST query resource (``GET /services/data/vXX.X/query``).

Why it is built this way:

* It follows ``nextRecordsUrl`` exactly as the server returned it until ``done``. The locator's
  format is Salesforce's business; a URL built by hand reads the wrong rows or a dead cursor.
* Pages may hold fewer rows than ``Sforce-Query-Options: batchSize`` asks (Salesforce shrinks
  pages of wide rows), so nothing assumes a page size. The rows received must add up to the
  ``totalSize`` the first page announced, or the pull is refused: a short count means rows were
  lost on the way, and a partial table would pass for a quiet week.
* GETs are idempotent: a 5xx answer, a timeout or a dropped connection is retried with
  exponential backoff and jitter, a bounded number of times. A 4xx is not retried: an expired
  token, an exhausted API allowance or an unknown field does not fix itself.
* Redirects are not followed: the bearer token must only ever travel to the configured
  instance, and a redirect (http to https, a login page) means the instance URL is wrong.
* Salesforce REST sends no ``Retry-After`` and no 429 for its daily API allowance; instead every
  answer carries ``Sforce-Limit-Info: api-usage=used/limit``. A pull stops itself at a share
  of that allowance (``stop_at_api_usage``) so the integrations that run the business keep theirs.
* Every failure is a ``SalesforceError`` whose text is one line saying what happened and what to
  do. The access token goes in the ``Authorization`` header only: never in a URL, a log line,
  an error, a repr, and it is blanked out of any server text an error quotes.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

# the two variables that turn the source on; both set, or neither
INSTANCE_URL_ENV = "SALESFORCE_INSTANCE_URL"
ACCESS_TOKEN_ENV = "SALESFORCE_ACCESS_TOKEN"

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MIN_BATCH_SIZE, MAX_BATCH_SIZE = 200, 2000  # Salesforce clamps batchSize to this range

AUTH_MESSAGE = (
    "Salesforce: the access token is expired or revoked (401 INVALID_SESSION_ID); "
    f"set a fresh {ACCESS_TOKEN_ENV}"
)

_API_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
_NO_SUCH_COLUMN = re.compile(r"No such column '([^']+)' on entity '([^']+)'")
_FROM = re.compile(r"\bFROM\s+(\w+)", re.IGNORECASE)
_VERSION = re.compile(r"^\d{2,3}\.\d$")


class SalesforceError(Exception):
    """A Salesforce pull that cannot go on. ``str()`` is one line, free of the token."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        field: str | None = None,
    ):
        self.status = status
        self.error_code = error_code
        self.field = field
        super().__init__(" ".join(message.split()))  # one line, whatever the server wrote

    def with_note(self, note: str) -> SalesforceError:
        """The same error (same class and attributes) with ``note`` appended."""
        return type(self)(
            f"{self} {note}", status=self.status, error_code=self.error_code, field=self.field
        )


class SalesforceConfigError(SalesforceError):
    """The settings cannot work (instance URL, API version, batch size): fix them."""


def source_configured(instance_url: str | None, access_token: str | None) -> bool:
    """True when both the URL and the token are set, False when neither is; one without the
    other is an error naming the missing variable, never a silent fall back to stale files."""
    url, token = bool((instance_url or "").strip()), bool((access_token or "").strip())
    if url != token:
        have, missing = (
            (INSTANCE_URL_ENV, ACCESS_TOKEN_ENV) if url else (ACCESS_TOKEN_ENV, INSTANCE_URL_ENV)
        )
        raise SalesforceConfigError(
            f"{have} is set but {missing} is not: set both to read leads from Salesforce, "
            "or neither to read the CSV files"
        )
    return url


class SalesforceAuthError(SalesforceError):
    """401: the token is expired or revoked. Only a new token helps (no credentials here to get
    one, so it is not retried)."""


class SalesforceRefusedError(SalesforceError):
    """403: the API allowance is used up, or the user may not read the object."""


class SalesforceQueryError(SalesforceError):
    """400: the org refused the SOQL (an unknown or hidden field, a malformed query)."""


class SalesforceUnavailableError(SalesforceError):
    """5xx answers or no connection, every attempt."""


@dataclass(frozen=True)
class ClientSettings:
    """How the client talks to the org. The defaults and their reasons:"""

    api_version: str = "65.0"
    """A version current orgs serve (recent reference examples use v65.0/v66.0); v56.0 and later
    keep query cursors for 2 days, so a slow pull never loses its cursor."""
    batch_size: int = MAX_BATCH_SIZE
    """Rows asked per page: Salesforce's maximum, so a pull costs the fewest API requests."""
    max_attempts: int = 4
    """Tries per request when the server answers 5xx or the connection fails (1 + 3 retries)."""
    backoff_seconds: float = 1.0
    """The first pause before a retry; it doubles each time (with jitter): 1, 2, 4 s."""
    max_backoff_seconds: float = 30.0
    """No single pause is longer: a busy org recovers in seconds, a down one not in minutes."""
    timeout_seconds: float = 120.0
    """Longest wait for one answer: SOQL over large objects can take a minute to start."""
    stop_at_api_usage: float = 0.95
    """The pull stops once the org has used this share of its daily API allowance, leaving the
    last 5 % to the integrations that run the business (1.0: go on until Salesforce refuses)."""

    def __post_init__(self) -> None:
        if not _VERSION.match(self.api_version.removeprefix("v")):
            raise SalesforceConfigError(
                f"Salesforce api_version '{self.api_version}' is not a version like 65.0"
            )
        if not MIN_BATCH_SIZE <= self.batch_size <= MAX_BATCH_SIZE:
            raise SalesforceConfigError(
                f"Salesforce batch_size {self.batch_size} is outside {MIN_BATCH_SIZE}-"
                f"{MAX_BATCH_SIZE} (the page sizes Salesforce serves)"
            )
        if self.max_attempts < 1:
            raise SalesforceConfigError("Salesforce max_attempts must be at least 1")
        if not 0 < self.stop_at_api_usage <= 1:
            raise SalesforceConfigError(
                f"Salesforce stop_at_api_usage {self.stop_at_api_usage} must be above 0 and at "
                "most 1"
            )

    @property
    def version_path(self) -> str:
        return f"/services/data/v{self.api_version.removeprefix('v')}"


@dataclass(frozen=True)
class QueryResult:
    """Every record of one SOQL query, and how many pages it took."""

    sobject: str
    records: list[dict]
    total_size: int
    pages: int


@dataclass
class PullStats:
    """What a client did, for asset metadata (counts only: no URL, no header, no token)."""

    requests: int = 0
    pages: int = 0
    rows: int = 0
    retries: int = 0
    api_used: int | None = None
    api_limit: int | None = None
    queries: dict[str, int] = field(default_factory=dict)  # object -> rows

    @property
    def api_usage(self) -> str | None:
        if self.api_used is None:
            return None
        return f"{self.api_used}/{self.api_limit}"


def normalise_instance_url(url: str) -> str:
    """The org's base URL without a trailing slash; refuses what cannot be right.

    Plain http is refused except on the loopback (a test server, a local proxy): the bearer
    token would cross the network in clear text.
    """
    text = (url or "").strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SalesforceConfigError(
            "SALESFORCE_INSTANCE_URL must be the org's base URL, like "
            "https://yourorg.my.salesforce.com"
        )
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise SalesforceConfigError(
            "SALESFORCE_INSTANCE_URL must use https:// (plain http only for a local test server): "
            "the access token would travel in clear text"
        )
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise SalesforceConfigError(
            "SALESFORCE_INSTANCE_URL must be the org's base URL with no path, query or user "
            "(like https://yourorg.my.salesforce.com)"
        )
    return text


def sobject_of(soql: str) -> str:
    """The object a SOQL query reads (``FROM x``), for error messages."""
    match = _FROM.search(soql)
    return match.group(1) if match else "the"


def _short_reason(error: requests.RequestException, timeout: float) -> str:
    """The kind of network failure, without the exception's text (it repeats the whole URL)."""
    if isinstance(error, requests.ConnectTimeout):
        return "timed out connecting"
    if isinstance(error, requests.ReadTimeout):
        return f"no answer within {timeout:g} s"
    if isinstance(error, requests.exceptions.SSLError):
        return "TLS handshake failed"
    if isinstance(error, requests.ConnectionError):
        return "connection refused or dropped"
    return type(error).__name__


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"all {count} attempts"


def _server_message(response: requests.Response) -> tuple[str | None, str, list[str]]:
    """(errorCode, message, fields) of an error answer: a JSON array of
    ``{"message", "errorCode", "fields"}``, an OAuth-style object, or anything else."""
    try:
        body = response.json()
    except ValueError:
        return None, (response.text or "").strip()[:200], []
    if isinstance(body, list) and body and isinstance(body[0], dict):
        first = body[0]
        return first.get("errorCode"), str(first.get("message") or ""), first.get("fields") or []
    if isinstance(body, dict):
        code = body.get("errorCode") or body.get("error")
        message = body.get("message") or body.get("error_description") or ""
        return code, str(message), body.get("fields") or []
    return None, str(body)[:200], []


def _meaningful_line(message: str) -> str:
    """Salesforce repeats the query and a caret before the error; keep the error's own line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in reversed(lines):
        if not line.startswith("^") and not line.upper().startswith("ERROR AT ROW"):
            return line.split(". If you are attempting")[0].rstrip(".")
    return ""


class SalesforceClient:
    """GETs against one org with one access token. Not thread-safe; one per pull."""

    def __init__(
        self,
        instance_url: str,
        access_token: str,
        settings: ClientSettings = ClientSettings(),
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        progress: Callable[[str], None] | None = None,
    ):
        self.instance_url = normalise_instance_url(instance_url)
        if not (access_token or "").strip():
            raise SalesforceConfigError("SALESFORCE_ACCESS_TOKEN is empty")
        self._token = access_token.strip()
        self.settings = settings
        self.stats = PullStats()
        self._session = session or requests.Session()
        self._sleep = sleep
        self._progress = progress

    def __repr__(self) -> str:  # never the token
        return f"SalesforceClient({self.instance_url!r}, api_version={self.settings.api_version!r})"

    # --- the one public call ----------------------------------------------------------------

    def query(self, soql: str) -> QueryResult:
        """Every record of ``soql``, page after page, checked against ``totalSize``."""
        sobject = sobject_of(soql)
        url = f"{self.instance_url}{self.settings.version_path}/query"
        page = self._get(url, {"q": soql}, sobject)
        total = page["totalSize"]
        records = list(page["records"])
        pages = 1
        while not page["done"]:
            next_path = page.get("nextRecordsUrl")
            if not isinstance(next_path, str) or not next_path.startswith("/services/data/"):
                raise SalesforceError(
                    f"Salesforce: the {sobject} query's page {pages} is not the last but gives no "
                    "usable nextRecordsUrl; the pull stops rather than read a partial table"
                )
            page = self._get(f"{self.instance_url}{next_path}", None, sobject)
            records.extend(page["records"])
            pages += 1
            self._say(f"{sobject}: {len(records):,} / {total:,} rows ({pages} pages)")
        if len(records) != total:
            raise SalesforceError(
                f"Salesforce: the {sobject} query announced {total:,} rows (totalSize) but its "
                f"{pages} pages held {len(records):,}; rows changed or were lost during the pull, "
                "run it again"
            )
        self.stats.pages += pages
        self.stats.rows += len(records)
        self.stats.queries[sobject] = self.stats.queries.get(sobject, 0) + len(records)
        return QueryResult(sobject=sobject, records=records, total_size=total, pages=pages)

    # --- HTTP ---------------------------------------------------------------------------------

    def _get(self, url: str, params: dict | None, sobject: str) -> dict:
        self._check_allowance(sobject)
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            "Sforce-Query-Options": f"batchSize={self.settings.batch_size}",
        }
        attempts = self.settings.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                response = self._session.get(
                    url,
                    params=params,
                    headers=headers,
                    timeout=self.settings.timeout_seconds,
                    allow_redirects=False,
                )
            except requests.RequestException as error:
                if attempt == attempts:
                    raise SalesforceUnavailableError(
                        f"Salesforce: cannot reach {self.instance_url} "
                        f"({_short_reason(error, self.settings.timeout_seconds)}) after "
                        f"{_attempts(attempt)}; check SALESFORCE_INSTANCE_URL and the network"
                    ) from None
                self._pause(attempt)
                continue
            self.stats.requests += 1
            self._note_usage(response)
            if response.status_code >= 500:
                if attempt == attempts:
                    code, message, _ = _server_message(response)
                    raise SalesforceUnavailableError(
                        self._redact(
                            f"Salesforce: the server answered {response.status_code}"
                            f"{' ' + code if code else ''} to {_attempts(attempt)} of the "
                            f"{sobject} query; try again later"
                        ),
                        status=response.status_code,
                        error_code=code,
                    )
                self._pause(attempt)
                continue
            if response.status_code != 200:
                raise self._error(response, sobject)
            return self._page(response, sobject)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _page(self, response: requests.Response, sobject: str) -> dict:
        try:
            page = response.json()
        except ValueError:
            page = None
        if (
            not isinstance(page, dict)
            or not isinstance(page.get("records"), list)
            or not isinstance(page.get("totalSize"), int)
            or not isinstance(page.get("done"), bool)
        ):
            raise SalesforceError(
                f"Salesforce: the answer to the {sobject} query is not a query result (no "
                "totalSize, done and records); check SALESFORCE_INSTANCE_URL"
            )
        return page

    def _error(self, response: requests.Response, sobject: str) -> SalesforceError:
        status = response.status_code
        code, message, fields = _server_message(response)
        detail = self._redact(_meaningful_line(message))
        label = f"{status} {code}" if code else str(status)
        if status == 401:
            return SalesforceAuthError(AUTH_MESSAGE, status=status, error_code=code)
        if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
            usage = f", api-usage {self.stats.api_usage}" if self.stats.api_usage else ""
            return SalesforceRefusedError(
                f"Salesforce refused the {sobject} query: the org's API request limit is "
                f"exceeded ({label}{usage}); wait until its rolling 24-hour allowance frees up, "
                "or ask the Salesforce admin for a higher limit",
                status=status,
                error_code=code,
            )
        if status == 403:
            return SalesforceRefusedError(
                f"Salesforce refused the {sobject} query ({label}{': ' + detail if detail else ''})"
                f"; the user behind SALESFORCE_ACCESS_TOKEN needs API access and read access to "
                f"{sobject}",
                status=status,
                error_code=code,
            )
        if status == 400 and code == "INVALID_FIELD":
            found = _NO_SUCH_COLUMN.search(message)
            name = (found.group(1) if found else None) or (fields[0] if fields else None)
            entity = found.group(2) if found else sobject
            what = f"no field '{name}' on {entity}" if name else detail
            return SalesforceQueryError(
                f"Salesforce refused the {sobject} query ({label}): {what}, or the user cannot "
                "see it (field-level security)",
                status=status,
                error_code=code,
                field=name,
            )
        if status == 400:
            return SalesforceQueryError(
                f"Salesforce refused the {sobject} query ({label}"
                f"{': ' + detail if detail else ''})",
                status=status,
                error_code=code,
            )
        if status == 404:
            return SalesforceConfigError(
                f"Salesforce: {urlsplit(response.url).path} not found ({label}); check "
                f"SALESFORCE_INSTANCE_URL and api_version {self.settings.api_version}",
                status=status,
                error_code=code,
            )
        if 300 <= status < 400:
            return SalesforceConfigError(
                f"Salesforce: {self.instance_url} redirected the query elsewhere ({status}); set "
                "SALESFORCE_INSTANCE_URL to the org's instance_url (the token is not sent on)",
                status=status,
            )
        return SalesforceError(
            f"Salesforce refused the {sobject} query ({label}{': ' + detail if detail else ''})",
            status=status,
            error_code=code,
        )

    # --- allowance, backoff, redaction --------------------------------------------------------

    def _note_usage(self, response: requests.Response) -> None:
        found = _API_USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        if found:
            self.stats.api_used, self.stats.api_limit = int(found.group(1)), int(found.group(2))

    def _check_allowance(self, sobject: str) -> None:
        used, limit = self.stats.api_used, self.stats.api_limit
        if used is None or not limit:
            return
        share = self.settings.stop_at_api_usage
        if used / limit >= share and share < 1:
            raise SalesforceRefusedError(
                f"Salesforce: the org has used {used:,} of its {limit:,} daily API requests; the "
                f"{sobject} pull stops at {share:.0%} (setting stop_at_api_usage) so other "
                "integrations keep theirs"
            )

    def _pause(self, attempt: int) -> None:
        base = self.settings.backoff_seconds * 2 ** (attempt - 1)
        delay = min(self.settings.max_backoff_seconds, base) * (0.5 + random.random() / 2)
        self.stats.retries += 1
        self._sleep(delay)

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "[token]") if self._token else text

    def _say(self, line: str) -> None:
        if self._progress is not None:
            self._progress(line)
