"""post_json against a real server on 127.0.0.1 whose error answers repeat the request: the
secret in the query string reaches no answer, in any form the server may write it."""

from __future__ import annotations

import html
import http.server
import json
import threading
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from campaign_pipeline.exports import ga4
from campaign_pipeline.exports.transport import RetryPolicy
from campaign_pipeline.resources.ga4 import SECRET_PLACEHOLDER, GA4MeasurementProtocol
from campaign_pipeline.resources.http_client import post_json
from campaign_pipeline_tests.exports.support import events_for, week_tables

# Every form of these holds MARK, so any MARK in an answer is (part of) a leaked secret.
MARK = "SECRETMARK"
SECRETS = (f"{MARK}/ga4+key", f"{MARK}/a+b=c&d e'\"<f>%2F")


def _echoes(request_line: str, secret_as_received: str) -> dict[str, tuple[str, bytes]]:
    """What an error answer may say about the request: content type and body, per kind."""
    path = request_line.split(" ")[1]
    escaped = html.escape(secret_as_received)
    return {
        # a proxy's plain-text page: the request line as it came over the wire
        "request line": ("text/plain", f"400 Bad Request: {request_line}".encode()),
        # an HTML error page: the decoded query, HTML-escaped
        "html page": ("text/html", f"<p>Bad: <code>api_secret={escaped}</code></p>".encode()),
        # JSON naming the request line, the decoded value, and the path re-quoted (``/`` kept)
        "json": (
            "application/json",
            json.dumps(
                {
                    "error": f"bad request: {request_line}",
                    "api_secret": secret_as_received,
                    "requoted": quote(secret_as_received),
                    secret_as_received: [path],
                }
            ).encode(),
        ),
    }


class EchoServer:
    """Answers every POST with 400 and an echo of the request (``kind``)."""

    def __init__(self, kind: str):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                query = parse_qs(urlsplit(self.path).query)
                content_type, body = _echoes(self.requestline, query["api_secret"][0])[kind]
                server.bodies.append(body)
                self.send_response(400)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.bodies: list[bytes] = []
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> EchoServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("kind", ["request line", "html page", "json"])
@pytest.mark.parametrize("secret", SECRETS)
def test_an_answer_repeating_the_secret_in_any_encoding_holds_the_placeholder(kind, secret):
    with EchoServer(kind) as server, requests.Session() as session:
        answer = post_json(
            session,
            f"{server.url}/mp/collect",
            b"{}",
            params={"measurement_id": "G-X", "api_secret": secret},
            timeout=5,
            secrets={SECRET_PLACEHOLDER: secret},
        )
    assert MARK.encode() in server.bodies[0]  # the server did repeat the secret
    assert answer.status == 400
    assert MARK not in repr(answer)
    assert f"api_secret={SECRET_PLACEHOLDER}" in json.dumps(answer.body)


def test_a_failed_ga4_request_reports_no_secret_the_server_echoed_url_encoded():
    """The result's detail is what the ledger, the asset's failure and stdout show."""
    ready, _ = ga4.prepare(events_for(week_tables(n_campaigns=1)))
    with EchoServer("request line") as server:
        resource = GA4MeasurementProtocol(
            measurement_id="G-FAKE4TEST", api_secret=SECRETS[0], endpoint=server.url
        )
        outcome = ga4.send_request(ready, resource.post, RetryPolicy(max_tries=1))
    assert b"api_secret=SECRETMARK%2Fga4%2Bkey" in server.bodies[0]
    assert {(r.status, r.response_code) for r in outcome.results} == {("failed", 400)}
    assert MARK not in repr(outcome)
    assert f"api_secret={SECRET_PLACEHOLDER}" in outcome.results[0].detail
