"""A JSON POST with ``requests`` whose failures never carry a secret.

``requests`` puts the whole URL, query string included, into its exception messages (GA4's
``api_secret`` travels in the query string), so a failure here is turned into a short text
built from the host and the kind of failure only, and the original exception is dropped.
An answer's body can hold the secret too: Amplitude answers a bad key with
``{"error": "Invalid API key: <the key>"}``, and a proxy's error page may repeat the request
line. Every text of the body has the request's secrets replaced by their placeholders before
it leaves here, so nothing downstream (the ledger, a log line, an exception) can hold one.
A secret is replaced in every form an answer can repeat it in: as written, percent-encoded as
in a query string (``requests`` sends ``a/b+c`` as ``a%2Fb%2Bc``), and HTML-escaped as in
an error page; replacing only the written form would let a secret with ``/``, ``+``, ``=`` or
``&`` through whenever the server quotes the request line.
"""

from __future__ import annotations

import html
import json
from urllib.parse import quote, quote_plus, urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from campaign_pipeline.exports.transport import Answer


def public_base(url: str) -> str:
    """scheme://host[:port] of a URL, without user info, path or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def endpoint_problem(variable: str, endpoint: str | None) -> str | None:
    """What is wrong with an endpoint override, before a request goes to it: it must be an
    http(s) URL with a host (``notaurl`` would fail every request as a broken connection)."""
    if endpoint is None:
        return None
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{variable} {endpoint!r} is not an http(s) URL with a host (e.g. http://127.0.0.1:8080)"
    return None


def base_url(endpoint: str | None, default: str) -> str:
    """The scheme, host and port to use: ``endpoint`` (an override for tests and proxies)
    replaces the vendor's, and the API paths are appended as documented."""
    return (endpoint or default).rstrip("/")


def _never_arrived(error: BaseException) -> bool:
    """True when the connection was never made, so the request surely did not arrive."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    seen, stack = set(), [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError | ConnectTimeoutError | ConnectionRefusedError):
            return True
        stack += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        for linked in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(linked, BaseException):
                stack.append(linked)
    return False


def post_json(
    session: requests.Session,
    url: str,
    body: bytes,
    *,
    params: dict[str, str] | None = None,
    timeout: float,
    secrets: dict[str, str] | None = None,
) -> Answer:
    """``secrets``: placeholder -> value of each secret the request carries."""
    where = public_base(url)
    try:
        response = session.post(
            url,
            params=params,
            data=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            timeout=timeout,
        )
    except requests.exceptions.RequestException as error:
        never = _never_arrived(error)
        if isinstance(error, requests.exceptions.Timeout):
            kind = "connect timeout" if never else f"no answer within {timeout:g} s"
        else:
            kind = "connection failed" if never else "connection broken before the answer"
        return Answer(None, None, f"{kind} ({where})", reached_server=not never)
    parsed = None
    if response.content:
        try:
            parsed = json.loads(response.content)
        except ValueError:
            parsed = {"error": _scrubbed(response.text, secrets)[:200]}
    parsed = _scrubbed(parsed, secrets)
    return Answer(response.status_code, parsed if isinstance(parsed, dict) else None)


def _secret_forms(secret: str) -> set[str]:
    """The texts an answer may repeat ``secret`` as: a query string's encodings (``quote`` with
    and without ``/`` kept, ``quote_plus`` as ``requests`` sends params) and an HTML page's
    escapes (with and without quotes escaped)."""
    return {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        html.escape(secret),
        html.escape(secret, quote=False),
    }


def _scrubbed(value, secrets: dict[str, str] | None):
    """``value`` (parsed JSON) with every form of every secret in its texts and keys replaced.

    Longest form first, so that a form holding a shorter one (of another secret, say) is
    replaced whole rather than cut by the shorter one's replacement, leaving its rest behind.
    """
    forms = [
        (form, placeholder)
        for placeholder, secret in (secrets or {}).items()
        if secret
        for form in _secret_forms(secret)
    ]
    if not forms:
        return value
    return _replaced(value, sorted(forms, key=lambda pair: len(pair[0]), reverse=True))


def _replaced(value, forms: list[tuple[str, str]]):
    if isinstance(value, str):
        for form, placeholder in forms:
            value = value.replace(form, placeholder)
        return value
    if isinstance(value, dict):
        return {_replaced(k, forms): _replaced(v, forms) for k, v in value.items()}
    if isinstance(value, list):
        return [_replaced(v, forms) for v in value]
    return value
