"""Amplitude HTTP V2: an event's format, the API's rules checked before sending, batches
under its limits, and the delivery loop that answers each response as the docs say.

* 200: accepted.
* 413 (payload too large): the batch is split in half and each half sent again; a single event
  still too large is refused.
* 429 (throttled): the users and devices the answer names are held for the pause and their
  events sent again after it; every other event of the batch is sent again at once. Events of a
  user or device over its daily quota fail (not retryable soon).
* 400: the events the index maps name are refused with their fields; the rest of the batch is
  sent again at once (Amplitude ingests nothing from a request it answers 400). ``Invalid API
  key`` or a request-level ``missing_field`` stops the export: no later request could succeed.
* 500, 502, 503, 504, 408 and no answer: sent again after exponential backoff with jitter, a
  bounded number of tries. After a 500/502/504 Amplitude may have ingested the events; the
  deterministic ``insert_id`` makes the retry a duplicate it drops (within 7 days).
* 403 (blocked by Amplitude's firewall) and anything else: failed, not retried.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from campaign_pipeline.exports.events import (
    ANOMALY,
    FREE_TEXT,
    HEALTH_CHANGE,
    SUMMARY,
    CampaignEvent,
    Outgoing,
    Refusal,
    encode_json,
)
from campaign_pipeline.exports.transport import (
    RETRYABLE_STATUSES,
    Answer,
    FatalExportError,
    Result,
    RetryPolicy,
)

DESTINATION = "amplitude"
PATH = "/2/httpapi"
MAX_EVENTS_PER_REQUEST = 1_999  # "< 2,000 events"
MAX_BODY_BYTES = 999_999  # "< 1 MB" with MB read as 1,000,000 bytes: the stricter reading
MAX_STRING_LENGTH = 1_024
MIN_ID_LENGTH = 5
ID_DENYLIST = frozenset(
    {"anonymous", "nil", "none", "null", "n/a", "na", "undefined", "unknown", "", "{}", "lmy47d"}
    | {"0", "-1", "00000000-0000-0000-0000-000000000000"}
)
RESERVED_EVENT_TYPES = frozenset(
    {
        "[Amplitude] Start Session",
        "[Amplitude] End Session",
        "[Amplitude] Revenue",
        "[Amplitude] Revenue (Verified)",
        "[Amplitude] Revenue (Unverified)",
        "[Amplitude] Merged User",
        "$identify",
        "$groupidentify",
    }
)
EVENT_TYPES = {
    SUMMARY: "Campaign Week Summary",
    ANOMALY: "Campaign Anomaly",
    HEALTH_CHANGE: "Campaign Health Change",
}
EARLIEST_TIME_MS = int(pd.Timestamp("2000-01-01", tz="UTC").timestamp() * 1000)
MAX_FUTURE_MS = 24 * 3600 * 1000  # a time more than a day ahead is a unit or clock bug


def amplitude_id(campaign_id: str) -> str:
    """The synthetic, stable user and device id of a campaign: Amplitude counts each campaign
    as one user, and the (device_id, insert_id) pair it deduplicates on never changes."""
    return f"campaign:{campaign_id}"


def amplitude_payload(event: CampaignEvent, key: str) -> dict:
    properties = dict(event.properties)
    for name in FREE_TEXT.intersection(properties):  # only prose is ever cut
        value = properties[name]
        if isinstance(value, str) and len(value) > MAX_STRING_LENGTH:
            properties[name] = value[:MAX_STRING_LENGTH]
    ident = amplitude_id(event.campaign_id)
    return {
        "user_id": ident,
        "device_id": ident,
        "event_type": EVENT_TYPES[event.kind],
        "time": event.time_ms,
        "insert_id": key,
        "event_properties": properties,
    }


def _id_problem(field: str, value) -> str | None:
    if not isinstance(value, str):
        return f"{field} is not text"
    if value.strip().lower() in ID_DENYLIST:
        return f"{field} {value!r} is on Amplitude's denylist"
    if len(value) < MIN_ID_LENGTH:
        return f"{field} is {len(value)} characters (at least {MIN_ID_LENGTH})"
    if len(value) > MAX_STRING_LENGTH:
        return f"{field} is {len(value)} characters (at most {MAX_STRING_LENGTH})"
    return None


@functools.lru_cache(maxsize=65_536)  # a campaign's id, checked on each of its events
def _text_id_problem(field: str, value: str) -> str | None:
    return _id_problem(field, value)


def event_problems(payload: dict, now_ms: int) -> list[str]:
    problems = []
    for name in ("user_id", "device_id"):
        value = payload.get(name)
        problem = _text_id_problem(name, value) if type(value) is str else _id_problem(name, value)
        if problem:
            problems.append(problem)
    event_type = payload.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        problems.append("event_type missing")
    elif event_type in RESERVED_EVENT_TYPES:
        problems.append(f"event_type {event_type!r} is reserved")
    when = payload.get("time")
    if not isinstance(when, int) or isinstance(when, bool):
        problems.append("time is not whole milliseconds")
    elif not EARLIEST_TIME_MS <= when <= now_ms + MAX_FUTURE_MS:
        problems.append(f"time {when} ms is before 2000 or more than a day ahead")
    for name, value in payload.get("event_properties", {}).items():
        if len(name) > MAX_STRING_LENGTH:
            problems.append(f"property name {name[:40]!r}... over {MAX_STRING_LENGTH} characters")
        if isinstance(value, str) and len(value) > MAX_STRING_LENGTH:
            problems.append(f"property {name!r} is {len(value)} characters")
    if len(payload.get("insert_id", "")) > MAX_STRING_LENGTH:
        problems.append("insert_id too long")
    return problems


def prepare(
    events: list[CampaignEvent], now_ms: int | None = None
) -> tuple[list[Outgoing], list[Refusal]]:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    ready, refused = [], []
    for event in events:
        key = event.key(DESTINATION)
        payload = amplitude_payload(event, key)
        problems = event_problems(payload, now_ms)
        name = payload["event_type"]
        if problems:
            refused.append(
                Refusal(key, event.week_start, event.campaign_id, name, "; ".join(problems))
            )
        else:
            ready.append(
                Outgoing(
                    key, event.week_start, event.campaign_id, name, payload["user_id"], payload
                )
            )
    return ready, refused


def request_body(api_key: str, payloads: list[dict]) -> dict:
    return {"api_key": api_key, "events": payloads}


def plan_batches(
    events: list[Outgoing],
    overhead_bytes: int,
    max_events: int = MAX_EVENTS_PER_REQUEST,
    max_bytes: int = MAX_BODY_BYTES,
) -> tuple[list[list[Outgoing]], list[Outgoing]]:
    """Batches in order, each at most ``max_events`` and at most ``max_bytes`` once encoded
    (``overhead_bytes``: the body without events). Returns the batches and the events too
    large to go even alone."""
    if max_events > MAX_EVENTS_PER_REQUEST or max_bytes > MAX_BODY_BYTES:
        raise ValueError("Amplitude batches cannot be larger than the API's limits")
    batches, too_large, current, size = [], [], [], overhead_bytes
    for event in events:
        event_bytes = len(encode_json(event.payload))
        if overhead_bytes + event_bytes > max_bytes:
            too_large.append(event)
            continue
        added = event_bytes + (1 if current else 0)
        if current and (len(current) >= max_events or size + added > max_bytes):
            batches.append(current)
            current, size, added = [], overhead_bytes, event_bytes
        current.append(event)
        size += added
    if current:
        batches.append(current)
    return batches, too_large


# --- delivery ----------------------------------------------------------------------------------


@dataclass
class _State:
    event: Outgoing
    requests: int = 0
    tries: int = 0
    throttled: int = 0
    not_before: float = 0.0
    result: Result | None = None

    def finish(self, status: str, code: int | None, detail: str = "", outage=False) -> Result:
        self.result = Result(self.event.key, status, code, self.requests, detail, outage)
        return self.result


def _ids(payload: dict) -> list[str]:
    """The throttling identities of an event: its user and its device."""
    return [
        f"{prefix}:{payload[field]}"
        for prefix, field in (("u", "user_id"), ("d", "device_id"))
        if payload.get(field)
    ]


_INDEX_MAPS = {
    "events_with_invalid_fields": "invalid field",
    "events_with_missing_fields": "missing field",
    "events_with_invalid_id_lengths": "invalid id length",
}


class Delivery:
    """Delivers events until each one is sent, refused or failed, reporting every answer as it
    comes (so a ledger can mark it before the next request leaves)."""

    def __init__(
        self,
        post: Callable[[list[dict]], Answer],
        overhead_bytes: int,
        policy: RetryPolicy,
        report: Callable[[list[Result]], None],
        *,
        max_events: int = MAX_EVENTS_PER_REQUEST,
        max_bytes: int = MAX_BODY_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ):
        self.post, self.overhead, self.policy, self.report = post, overhead_bytes, policy, report
        self.max_events, self.max_bytes = max_events, max_bytes
        self.sleep, self.clock, self.rng = sleep, clock, rng or random.Random()
        self.held: dict[str, float] = {}  # user or device id -> when it may send again
        self.caps: dict[str, int] = {}  # a throttled id's events per request from then on
        self.requests = 0
        self.statuses: dict[int | None, int] = {}

    def _free_at(self, state: _State) -> float:
        return max([state.not_before] + [self.held.get(i, 0.0) for i in _ids(state.event.payload)])

    def run(self, events: list[Outgoing]) -> None:
        pending = [_State(event) for event in events]
        while pending:
            now = self.clock()
            ready = [s for s in pending if self._free_at(s) <= now]
            if not ready:
                self.sleep(max(0.0, min(self._free_at(s) for s in pending) - now))
                continue
            ready = self._within_caps(ready)
            by_key = {s.event.key: s for s in ready}
            batches, too_large = plan_batches(
                [s.event for s in ready], self.overhead, self.max_events, self.max_bytes
            )
            if too_large:
                self.report(
                    [
                        by_key[e.key].finish("refused", None, "larger than a request may be")
                        for e in too_large
                    ]
                )
            if batches:
                try:
                    self._send([by_key[e.key] for e in batches[0]])
                except FatalExportError as fatal:
                    rest = [s for s in pending if s.result is None]
                    self.report([s.finish("failed", None, f"not sent: {fatal}") for s in rest])
                    raise
            pending = [s for s in pending if s.result is None]

    def _within_caps(self, ready: list[_State]) -> list[_State]:
        """After a 429, a throttled user's or device's events go at most ``eps_threshold`` a
        request: resending all of them at once would only be throttled again."""
        if not self.caps:
            return ready
        taken: dict[str, int] = {}
        kept = []
        for state in ready:
            ids = _ids(state.event.payload)
            if any(taken.get(i, 0) >= self.caps[i] for i in ids if i in self.caps):
                continue
            for ident in ids:
                taken[ident] = taken.get(ident, 0) + 1
            kept.append(state)
        return kept

    def _send(self, states: list[_State]) -> None:
        answer = self.post([s.event.payload for s in states])
        self.requests += 1
        self.statuses[answer.status] = self.statuses.get(answer.status, 0) + 1
        for state in states:
            state.requests += 1
        code, body = answer.status, answer.body if isinstance(answer.body, dict) else {}
        if code is not None and 200 <= code < 300:
            self.report([s.finish("sent", code) for s in states])
        elif code == 413:
            if len(states) == 1:
                self.report([states[0].finish("refused", 413, "event too large for Amplitude")])
            else:
                half = len(states) // 2
                self._send(states[:half])
                self._send(states[half:])
        elif code == 429:
            self._throttled(states, body)
        elif code == 400:
            self._bad_request(states, body)
        elif code is None or code in RETRYABLE_STATUSES:
            self._retry_later(states, answer)
        elif code == 403:
            detail = "blocked by Amplitude's firewall (403), not retried"
            self.report([s.finish("failed", 403, detail) for s in states])
        else:
            self.report([s.finish("failed", code, answer.describe()) for s in states])

    def _retry_later(self, states: list[_State], answer: Answer) -> None:
        """The whole batch waits one backoff (its events stay one request), sized by the
        events' failed tries so far."""
        done = []
        tries = 1 + max(state.tries for state in states)
        resume = self.clock() + self.policy.backoff(tries, self.rng)
        for state in states:
            state.tries += 1
            if state.tries >= self.policy.max_tries:
                detail = f"{answer.describe()} after {state.tries} tries"
                done.append(state.finish("failed", answer.status, detail, outage=True))
            else:
                state.not_before = resume
        if done:
            self.report(done)

    def _throttled(self, states: list[_State], body: dict) -> None:
        now = self.clock()
        until = now + self.policy.throttle_pause_seconds
        try:
            cap = max(1, int(body.get("eps_threshold") or 30))
        except (TypeError, ValueError):
            cap = 30
        for prefix, field in (("u", "throttled_users"), ("d", "throttled_devices")):
            for ident in body.get(field) or {}:
                self.held[f"{prefix}:{ident}"] = until
                self.caps[f"{prefix}:{ident}"] = cap
        over_quota = {f"u:{i}" for i in body.get("exceeded_daily_quota_users") or {}} | {
            f"d:{i}" for i in body.get("exceeded_daily_quota_devices") or {}
        }
        indexes = {i for i in body.get("throttled_events") or [] if 0 <= i < len(states)}
        throttled = [states[i] for i in sorted(indexes)] if indexes else states
        done = []
        for state in throttled:
            if set(_ids(state.event.payload)) & over_quota:
                done.append(state.finish("failed", 429, "daily quota of its user/device exceeded"))
                continue
            state.throttled += 1
            if state.throttled > self.policy.max_throttle_rounds:
                detail = f"still throttled after {self.policy.max_throttle_rounds} pauses"
                done.append(state.finish("failed", 429, detail))
            else:
                state.not_before = until
        if done:
            self.report(done)
        # the events not throttled go again at once (their not_before is already past)

    def _bad_request(self, states: list[_State], body: dict) -> None:
        error = str(body.get("error") or "")
        if error.startswith("Invalid API key") or body.get("missing_field"):
            reason = (
                f"Amplitude answered 400 '{error or 'missing field'}'"
                + (f" (missing_field {body['missing_field']})" if body.get("missing_field") else "")
                + (": check AMPLITUDE_API_KEY and the region" if "API key" in error else "")
            )
            self.report([s.finish("failed", 400, reason) for s in states])
            raise FatalExportError(reason)
        reasons: dict[int, list[str]] = {}
        for name, label in _INDEX_MAPS.items():
            for field_name, indexes in (body.get(name) or {}).items():
                for index in indexes or []:
                    if isinstance(index, int) and 0 <= index < len(states):
                        reasons.setdefault(index, []).append(f"{label} {field_name}")
        silenced = {
            i
            for i in body.get("silenced_events") or []
            if isinstance(i, int) and 0 <= i < len(states)
        }
        done = []
        for index in sorted(reasons):
            detail = "Amplitude refused: " + ", ".join(reasons[index])
            done.append(states[index].finish("refused", 400, detail))
        for index in sorted(silenced - set(reasons)):
            done.append(states[index].finish("failed", 400, "device silenced by Amplitude"))
        if not done:  # nothing named: the whole request was refused
            detail = f"Amplitude refused the request: {error or 'HTTP 400'}"
            done = [s.finish("refused", 400, detail) for s in states]
        self.report(done)
        # every event not named goes again at once: Amplitude ingested none of them
