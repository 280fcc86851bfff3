"""Fake GA4 Measurement Protocol and Amplitude HTTP V2 servers on 127.0.0.1, behaving as the
vendors document (../shared/external_apis.md A12 and B8), for tests that must talk real HTTP.

They are written from the API documentation, not from the exporter's code (nothing is imported
from ``campaign_pipeline.exports``), so a rule the exporter gets wrong shows up here as a
dropped request, a dropped event or an error answer, counted.

Both record every request and what they "ingested", take injected answers (``inject``) and
latency, and serve ``GET /__fake/events`` and ``POST /__fake/fail`` for tests in another process.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

GA4_MAX_EVENTS = 25
GA4_MAX_BODY = 130_000
GA4_MAX_PARAMS = 25
GA4_MAX_NAME = 40
GA4_MAX_VALUE = 100
GA4_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
GA4_RESERVED_EVENTS = set(
    """ad_activeview ad_click ad_exposure ad_query ad_reward adunit_exposure app_clear_data
    app_exception app_install app_remove app_store_refund app_update app_upgrade
    dynamic_link_app_open dynamic_link_app_update dynamic_link_first_open error
    firebase_campaign firebase_in_app_message_action firebase_in_app_message_dismiss
    firebase_in_app_message_impression first_open first_visit notification_dismiss
    notification_foreground notification_open notification_receive notification_send os_update
    session_start user_engagement ad_impression in_app_purchase screen_view""".split()
)
GA4_RESERVED_PARAM_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag.")
SEVENTY_TWO_HOURS_US = 72 * 3600 * 1_000_000

AMP_MAX_EVENTS = 2_000  # "< 2,000 events": 2,000 or more is refused
AMP_MAX_BODY = 1_000_000  # "< 1 MB"
AMP_MAX_STRING = 1_024
AMP_DENYLIST = {
    "anonymous", "nil", "none", "null", "n/a", "na", "undefined", "unknown", "", "{}",
    "lmy47d", "0", "-1", "00000000-0000-0000-0000-000000000000",
}  # fmt: skip


@dataclass
class Injected:
    status: int
    body: dict | None = None
    after_ingest: bool = False  # process (and ingest) first, then answer with ``status``


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that gave up (a timeout in a test) is expected, not an error to print."""


class _FakeServer:
    """A ThreadingHTTPServer in a daemon thread; subclasses handle POST bodies."""

    def __init__(self, latency: float = 0.0):
        self.lock = threading.Lock()
        self.latency = latency
        self.injected: deque[Injected] = deque()
        self.requests: list[dict] = []
        self.in_flight = 0
        self.holding = 0  # requests ingested whose answer is being held back
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall per answer

            def do_GET(self):  # noqa: N802
                if urlsplit(self.path).path == "/__fake/events":
                    fake._send(self, 200, fake.snapshot())
                else:
                    fake._send(self, 405, {"error": "method not allowed"})

            def do_PUT(self):  # noqa: N802
                fake._send(self, 405, {"error": "method not allowed"})

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                parts = urlsplit(self.path)
                if parts.path == "/__fake/fail":
                    spec = json.loads(raw or b"{}")
                    for _ in range(int(spec.get("times", 1))):
                        fake.inject(int(spec["status"]), spec.get("body"))
                    fake._send(self, 200, {"ok": True})
                    return
                with fake.lock:
                    fake.in_flight += 1
                try:
                    status, body = fake.handle(parts.path, parse_qs(parts.query), self.headers, raw)
                finally:
                    with fake.lock:
                        fake.in_flight -= 1
                fake._send(self, status, body)

            def log_message(self, *args):
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @staticmethod
    def _send(handler, status: int, body: dict | None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        handler.send_response(status)
        if body is not None:
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def inject(self, status: int, body: dict | None = None, *, after_ingest=False, times=1):
        with self.lock:
            for _ in range(times):
                self.injected.append(Injected(status, body, after_ingest))

    def _hold(self, seconds: float) -> None:
        """Ingested, answer not sent yet: the moment a killed client leaves unmarked."""
        if not seconds:
            return
        with self.lock:
            self.holding += 1
        try:
            time.sleep(seconds)
        finally:
            with self.lock:
                self.holding -= 1

    def _take_injected(self) -> Injected | None:
        with self.lock:
            return self.injected.popleft() if self.injected else None

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def handle(self, path, query, headers, raw) -> tuple[int, dict | None]:
        raise NotImplementedError

    def snapshot(self) -> dict:
        raise NotImplementedError


# --- GA4 ---------------------------------------------------------------------------------------


@dataclass
class Ga4Problems:
    messages: list[dict] = field(default_factory=list)

    def add(self, code: str, path: str, text: str) -> None:
        self.messages.append({"fieldPath": path, "description": text, "validationCode": code})


class FakeGA4(_FakeServer):
    """``/mp/collect`` answers 204 with an empty body whatever it receives (as GA4 does),
    applying the documented limits to what it keeps; ``/debug/mp/collect`` answers 200 with
    ``validationMessages`` and keeps nothing."""

    def __init__(
        self, measurement_id="G-TEST123", api_secret="secret", latency=0.0, hold_after_ingest=0.0
    ):
        super().__init__(latency)
        self.hold_after_ingest = hold_after_ingest
        self.measurement_id, self.api_secret = measurement_id, api_secret
        self.events: list[dict] = []  # ingested: client_id, name, params
        self.wrong_secret: list[dict] = []
        self.dropped_requests: Counter = Counter()  # reason -> requests dropped whole
        self.dropped_events: Counter = Counter()
        self.dropped_params: Counter = Counter()
        self.truncated_values = 0
        self.clamped_timestamps = 0
        self.debug_requests = 0

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "events": list(self.events),
                "dropped_requests": dict(self.dropped_requests),
                "dropped_events": dict(self.dropped_events),
            }

    def problems(self, body: dict, size: int) -> Ga4Problems:
        """Every documented rule the request breaks, as the validation server reports them."""
        found = Ga4Problems()
        if size >= GA4_MAX_BODY:
            found.add("VALUE_OUT_OF_BOUNDS", "", f"request body is {size} bytes (< 130 kB)")
        if not body.get("client_id") and not body.get("app_instance_id"):
            found.add("VALUE_REQUIRED", "client_id", "client_id is required")
        events = body.get("events")
        if not isinstance(events, list) or not events:
            found.add("VALUE_REQUIRED", "events", "events is required")
            return found
        if len(events) > GA4_MAX_EVENTS:
            found.add("EXCEEDED_MAX_ENTITIES", "events", f"{len(events)} events (at most 25)")
        for index, event in enumerate(events):
            name = event.get("name", "") if isinstance(event, dict) else ""
            if not GA4_NAME.match(name) or len(name) > GA4_MAX_NAME:
                found.add(
                    "NAME_INVALID", "events", f"Event at index: [{index}] has invalid name [{name}]"
                )
            if name in GA4_RESERVED_EVENTS:
                found.add(
                    "NAME_RESERVED",
                    "events",
                    f"Event at index: [{index}] has reserved name [{name}]",
                )
            params = event.get("params", {}) if isinstance(event, dict) else {}
            if len(params) > GA4_MAX_PARAMS:
                found.add(
                    "EXCEEDED_MAX_ENTITIES",
                    "events.params",
                    f"Event at index: [{index}] has {len(params)} params (at most 25)",
                )
            for param, value in params.items():
                if (
                    not GA4_NAME.match(param)
                    or len(param) > GA4_MAX_NAME
                    or param.startswith(GA4_RESERVED_PARAM_PREFIXES)
                    or param == "firebase_conversion"
                ):
                    found.add(
                        "NAME_INVALID",
                        "events.params",
                        f"Event at index: [{index}] has invalid param name [{param}]",
                    )
                if isinstance(value, str) and len(value) > GA4_MAX_VALUE:
                    found.add(
                        "VALUE_OUT_OF_BOUNDS",
                        "events.params",
                        f"Event at index: [{index}] param [{param}] value over 100 characters",
                    )
        return found

    def handle(self, path, query, headers, raw):
        if self.latency:
            time.sleep(self.latency)
        if path not in ("/mp/collect", "/debug/mp/collect"):
            return 404, {"error": "not found"}
        with self.lock:
            self.requests.append(
                {
                    "path": path,
                    "query": {k: v[0] for k, v in query.items()},
                    "bytes": len(raw),
                    "body": raw,
                }
            )
        try:
            body = json.loads(raw)
            assert isinstance(body, dict)
        except (ValueError, AssertionError):
            body = None
        if path == "/debug/mp/collect":
            with self.lock:
                self.debug_requests += 1
            if body is None:
                invalid = {"fieldPath": "", "description": "invalid JSON"}
                return 200, {"validationMessages": [invalid | {"validationCode": "VALUE_INVALID"}]}
            return 200, {"validationMessages": self.problems(body, len(raw)).messages}
        injected = self._take_injected()
        if injected and not injected.after_ingest:
            return injected.status, injected.body
        self._collect(query, body, len(raw))
        self._hold(self.hold_after_ingest)
        if injected:
            return injected.status, injected.body
        return 204, None

    def _collect(self, query, body, size) -> None:
        ids = [k for k in ("measurement_id", "firebase_app_id") if k in query]
        with self.lock:
            if "api_secret" not in query or len(ids) != 1:
                self.dropped_requests["missing api_secret or stream id"] += 1
                return
            if body is None:
                self.dropped_requests["not JSON"] += 1
                return
            if size >= GA4_MAX_BODY:
                self.dropped_requests["body of 130 kB or more"] += 1
                return
            events = body.get("events")
            if not isinstance(events, list) or not events:
                self.dropped_requests["no events"] += 1
                return
            if len(events) > GA4_MAX_EVENTS:
                self.dropped_requests["more than 25 events"] += 1
                return
            client = body.get("client_id")
            now_us = int(time.time() * 1_000_000)
            request_ts = body.get("timestamp_micros")
            right = (
                query["api_secret"][0] == self.api_secret
                and query.get("measurement_id", [""])[0] == self.measurement_id
            )
            for event in events:
                name = event.get("name", "")
                if not GA4_NAME.match(name) or len(name) > GA4_MAX_NAME:
                    self.dropped_events["invalid name"] += 1
                    continue
                if name in GA4_RESERVED_EVENTS:
                    self.dropped_events["reserved name"] += 1
                    continue
                params = {}
                for param, value in list(event.get("params", {}).items()):
                    if len(params) >= GA4_MAX_PARAMS:
                        self.dropped_params["over 25 params"] += 1
                        continue
                    if (
                        not GA4_NAME.match(param)
                        or len(param) > GA4_MAX_NAME
                        or param.startswith(GA4_RESERVED_PARAM_PREFIXES)
                        or param == "firebase_conversion"
                    ):
                        self.dropped_params["invalid or reserved name"] += 1
                        continue
                    if isinstance(value, str) and len(value) > GA4_MAX_VALUE:
                        self.truncated_values += 1
                        value = value[:GA4_MAX_VALUE]
                    params[param] = value
                stamp = event.get("timestamp_micros", request_ts)
                if stamp is not None and stamp < now_us - SEVENTY_TWO_HOURS_US:
                    self.clamped_timestamps += 1  # RELAXED: moved to exactly 72 h ago
                    stamp = now_us - SEVENTY_TWO_HOURS_US
                record = {"client_id": client, "name": name, "params": params, "ts": stamp}
                (self.events if right else self.wrong_secret).append(record)

    @property
    def over_limit(self) -> int:
        """Everything GA4 would have dropped or cut from what arrived."""
        return (
            sum(self.dropped_requests.values())
            + sum(self.dropped_events.values())
            + sum(self.dropped_params.values())
            + self.truncated_values
            + self.clamped_timestamps
        )


# --- Amplitude ---------------------------------------------------------------------------------


class FakeAmplitude(_FakeServer):
    """``/2/httpapi`` with the documented precedence of errors (B8): bad JSON, missing field,
    unknown key, 413 over the limits, 400 with index maps for bad events, 429 per user/device
    over ``eps`` events a second (counted over ``window_seconds``), and deduplication of
    (device or user, insert_id). A request answered with an error ingests nothing."""

    def __init__(
        self,
        api_key="amp-key",
        eps: float = 30,
        window_seconds: float = 1.0,
        latency: float = 0.0,
        hold_after_ingest: float = 0.0,
        max_body: int = AMP_MAX_BODY,
    ):
        super().__init__(latency)
        self.api_key = api_key
        self.max_body = max_body  # smaller than the real 1 MB only to test splitting cheaply
        self.eps, self.window = eps, window_seconds
        self.hold_after_ingest = hold_after_ingest  # seconds between ingest and the answer
        self.ingested: list[dict] = []
        self.seen: set[tuple[str, str]] = set()
        self.duplicates = 0
        self.answers: Counter = Counter()
        self.over_limit: Counter = Counter()  # 413s and 400s this fake raised on its own
        self.recent: dict[str, deque] = {}  # id -> times of ingested events
        self.ingested_requests = 0

    def snapshot(self) -> dict:
        with self.lock:
            return {"events": list(self.ingested), "answers": dict(self.answers)}

    def handle(self, path, query, headers, raw):
        status, body = self._handle(path, headers, raw)
        with self.lock:
            self.answers[status] += 1
            self.requests.append({"path": path, "bytes": len(raw), "status": status, "body": raw})
        return status, body

    def _handle(self, path, headers, raw):
        if self.latency:
            time.sleep(self.latency)
        if path != "/2/httpapi":
            return 404, {"code": 404, "error": "Invalid request path"}
        if "application/json" not in (headers.get("Content-Type") or ""):
            return 400, {"code": 400, "error": "Invalid request path"}
        injected = self._take_injected()
        if injected and not injected.after_ingest:
            return injected.status, injected.body or {"code": injected.status}
        try:
            body = json.loads(raw)
            assert isinstance(body, dict)
        except (ValueError, AssertionError):
            return 400, {"code": 400, "error": "Invalid JSON request body"}
        for name in ("api_key", "events"):
            if name not in body:
                return 400, {
                    "code": 400,
                    "error": "Request missing required field",
                    "missing_field": name,
                }
        if body["api_key"] != self.api_key:
            # the whole key, as Amplitude answers (its SDKs' issues quote the answer:
            # amplitude/Amplitude-Kotlin#215, amplitude/Amplitude-Swift#260)
            return 400, {"code": 400, "error": "Invalid API key: " + str(body["api_key"])}
        events = body["events"]
        if len(raw) >= self.max_body or len(events) >= AMP_MAX_EVENTS:
            with self.lock:
                self.over_limit["413"] += 1
            return 413, {"code": 413, "error": "Payload too large"}
        min_id = int((body.get("options") or {}).get("min_id_length") or 5)
        bad = self._field_errors(events, min_id)
        if bad:
            with self.lock:
                self.over_limit["400"] += 1
            return 400, {"code": 400, "error": "Invalid field values on some events", **bad}
        throttled = self._throttled(events)
        if throttled:
            return 429, throttled
        new = self._ingest(events)
        self._hold(self.hold_after_ingest)
        if injected:  # "ingested, then an error"
            return injected.status, injected.body or {"code": injected.status}
        return 200, {
            "code": 200,
            "events_ingested": new,
            "payload_size_bytes": len(raw),
            "server_upload_time": int(time.time() * 1000),
        }

    @staticmethod
    def _field_errors(events, min_id) -> dict:
        invalid, missing, lengths = {}, {}, {}

        def add(target, name, index):
            target.setdefault(name, []).append(index)

        def too_long(value, depth=0) -> bool:
            if depth > 40:
                return True
            if isinstance(value, str):
                return len(value) > AMP_MAX_STRING
            if isinstance(value, dict):
                return any(
                    too_long(v, depth + 1) or len(k) > AMP_MAX_STRING for k, v in value.items()
                )
            if isinstance(value, list):
                return any(too_long(v, depth + 1) for v in value)
            return False

        for index, event in enumerate(events):
            if not isinstance(event, dict):
                add(invalid, "event", index)
                continue
            if not isinstance(event.get("event_type"), str) or not event["event_type"]:
                add(missing, "event_type", index)
            ids = [f for f in ("user_id", "device_id") if event.get(f) is not None]
            if not ids:
                add(missing, "user_id", index)
            for name in ids:
                value = event[name]
                if not isinstance(value, str) or value.strip().lower() in AMP_DENYLIST:
                    add(invalid, name, index)
                elif len(value) < min_id or len(value) > AMP_MAX_STRING:
                    add(lengths, name, index)
            if "time" in event and (
                not isinstance(event["time"], int) or isinstance(event["time"], bool)
            ):
                add(invalid, "time", index)
            for name in ("event_properties", "user_properties", "insert_id", "event_type"):
                if name in event and too_long(event[name]):
                    add(invalid, name, index)
        out = {}
        for key, value in (
            ("events_with_invalid_fields", invalid),
            ("events_with_missing_fields", missing),
            ("events_with_invalid_id_lengths", lengths),
        ):
            if value:
                out[key] = value
        return out

    @staticmethod
    def _ids(event) -> list[str]:
        return [f"{f}:{event[f]}" for f in ("user_id", "device_id") if event.get(f)]

    def _throttled(self, events) -> dict | None:
        now = time.monotonic()
        limit = self.eps * self.window
        with self.lock:
            wanted = Counter(i for event in events for i in self._ids(event))
            over = set()
            for ident, n in wanted.items():
                times = self.recent.setdefault(ident, deque())
                while times and times[0] < now - self.window:
                    times.popleft()
                if len(times) + n > limit:
                    over.add(ident)
            if not over:
                return None
            indexes = [i for i, e in enumerate(events) if set(self._ids(e)) & over]
            users = {i.split(":", 1)[1]: self.eps + 1 for i in over if i.startswith("user_id:")}
            devices = {i.split(":", 1)[1]: self.eps + 1 for i in over if i.startswith("device_id:")}
        return {
            "code": 429,
            "error": "Too many requests for some devices and users",
            "eps_threshold": self.eps,
            "throttled_devices": devices,
            "throttled_users": users,
            "throttled_events": indexes,
        }

    def _ingest(self, events) -> int:
        now = time.monotonic()
        new = 0
        with self.lock:
            self.ingested_requests += 1
            for event in events:
                for ident in self._ids(event):
                    self.recent.setdefault(ident, deque()).append(now)
                who = event.get("device_id") or event.get("user_id")
                key = (who, event.get("insert_id"))
                if event.get("insert_id") and key in self.seen:
                    self.duplicates += 1
                    continue
                self.seen.add(key)
                self.ingested.append(event)
                new += 1
        return new

    def ingested_ids(self) -> Counter:
        with self.lock:
            return Counter(e.get("insert_id") for e in self.ingested)
