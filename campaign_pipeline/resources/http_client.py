"""A JSON POST with ``requests`` whose failures never carry a secret.

``requests`` puts the whole URL, query string included, into its exception messages (GA4's
``api_secret`` travels in the query string), so a failure here is turned into a short text
built from the host and the kind of failure only, and the original exception is dropped.
An answer's body can hold the secret too: Amplitude answers a bad key with
``{"error": "Invalid API key: <the key>"}``, and a proxy's error page may repeat the request
line. Every text of the body has the request's secrets replaced by their placeholders before
it leaves here, so nothing downstream (the ledger, a log line, an exception) can hold one.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

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


def _scrubbed(value, secrets: dict[str, str] | None):
    """``value`` (parsed JSON) with every secret in its texts and keys replaced."""
    secrets = {placeholder: s for placeholder, s in (secrets or {}).items() if s}
    if not secrets:
        return value
    if isinstance(value, str):
        for placeholder, secret in secrets.items():
            value = value.replace(secret, placeholder)
        return value
    if isinstance(value, dict):
        return {_scrubbed(k, secrets): _scrubbed(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, secrets) for v in value]
    return value
