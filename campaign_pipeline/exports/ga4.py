"""GA4 Measurement Protocol: an event's format, the protocol's limits checked before
sending, and requests cut to those limits.

GA4 answers 2xx even for events it drops (bad names, reserved names, too many params, a wrong
secret), so every rule of the reference's "Limitations" and "Reserved names" sections is
checked here, before a request leaves: an event that breaks one is refused with the rule,
never sent to be dropped silently.

The 72-hour rule: GA4 moves a timestamp older than 72 hours to 72 hours ago (or rejects it
with ENFORCE_RECOMMENDATIONS). A week's facts are known only after the week ends, and a
backfill sends weeks long past, so events carry no ``timestamp_micros`` at all: GA4 stamps
them on arrival, and the week they describe travels as the ``week_start`` / ``period_*``
params. Nothing is back-dated, so nothing is moved or dropped.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from campaign_pipeline.exports.events import (
    FREE_TEXT,
    CampaignEvent,
    Outgoing,
    Refusal,
    encode_json,
)
from campaign_pipeline.exports.transport import RETRYABLE_STATUSES, Answer, Result, RetryPolicy

DESTINATION = "ga4"
MAX_EVENTS_PER_REQUEST = 25
MAX_BODY_BYTES = 130_000  # "< 130 kB" with kB read as 1,000 bytes: the stricter reading
MAX_PARAMS_PER_EVENT = 25
MAX_NAME_LENGTH = 40
MAX_VALUE_LENGTH = 100  # standard properties (500 on GA4 360): the stricter
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
RESERVED_EVENT_NAMES = frozenset(
    """ad_activeview ad_click ad_exposure ad_query ad_reward adunit_exposure app_clear_data
    app_exception app_install app_remove app_store_refund app_update app_upgrade
    dynamic_link_app_open dynamic_link_app_update dynamic_link_first_open error
    firebase_campaign firebase_in_app_message_action firebase_in_app_message_dismiss
    firebase_in_app_message_impression first_open first_visit notification_dismiss
    notification_foreground notification_open notification_receive notification_send os_update
    session_start user_engagement ad_impression in_app_purchase screen_view""".split()
)
RESERVED_PARAM_NAMES = frozenset({"firebase_conversion"})
RESERVED_PARAM_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag.")

# Long prose goes to Amplitude only: cut to 100 characters it would say less than nothing.
NOT_SENT = frozenset({"explanation", "reason"})

ENGAGEMENT_TIME_MSEC = 100
"""Reports show an MP event only with ``engagement_time_msec`` (A9); 100 ms is the value of
Google's own examples, so each event adds a tenth of a second of engagement to its synthetic
user, which no report of real visitors includes."""


@functools.lru_cache(maxsize=65_536)  # a campaign's events of every week of a range share it
def client_id(campaign_id: str) -> str:
    """A synthetic, stable client id per campaign in gtag's "number.number" form.

    It identifies no browser: each campaign appears in GA4 as one "user" with no session
    attribution (no source/medium from a real visit), so these events belong in custom
    reports and explorations on their own params, not in user or acquisition reports.
    """
    digest = hashlib.sha256(f"campaign_pipeline|ga4|{campaign_id}".encode()).hexdigest()
    return f"{int(digest[:8], 16)}.{int(digest[8:16], 16)}"


@functools.lru_cache(maxsize=256)  # a week's events share it: parsed once, not per event
def session_id(week_start: str) -> int:
    """One session per campaign and week: the week's Monday in Unix seconds (a numeric
    timestamp, as gtag's session ids are), the same on every run."""
    return int(pd.Timestamp(week_start).tz_localize("UTC").timestamp())


@functools.lru_cache(maxsize=1024)  # the same few dozen names, checked on every event
def name_problem(name: str, what: str) -> str | None:
    if len(name) > MAX_NAME_LENGTH:
        return f"{what} {name!r} is {len(name)} characters (at most {MAX_NAME_LENGTH})"
    if not NAME_PATTERN.match(name):
        return f"{what} {name!r} must start with a letter and hold only letters, digits and _"
    return None


@functools.lru_cache(maxsize=1024)  # the same few dozen names, checked on every event
def _param_name_problems(param: str) -> tuple[str, ...]:
    problem = name_problem(param, "param name")
    reserved = param in RESERVED_PARAM_NAMES or param.startswith(RESERVED_PARAM_PREFIXES)
    return (*([problem] if problem else []), *([f"param name {param!r} is reserved"] * reserved))


def event_problems(payload: dict) -> list[str]:
    """Every rule of the protocol's limits and reserved names this event breaks."""
    problems = []
    name = payload.get("name", "")
    problem = name_problem(name, "event name")
    if problem:
        problems.append(problem)
    if name in RESERVED_EVENT_NAMES:
        problems.append(f"event name {name!r} is reserved")
    params = payload.get("params", {})
    if len(params) > MAX_PARAMS_PER_EVENT:
        problems.append(f"{len(params)} params (at most {MAX_PARAMS_PER_EVENT})")
    for param, value in params.items():
        problems += _param_name_problems(param)
        kind = type(value)
        if kind is int or kind is float:  # the common case, decided without isinstance
            continue
        if isinstance(value, str) and len(value) > MAX_VALUE_LENGTH:
            problems.append(
                f"param {param!r} is {len(value)} characters (at most {MAX_VALUE_LENGTH})"
            )
        if kind is not str and (
            not isinstance(value, str | int | float) or isinstance(value, bool)
        ):
            problems.append(f"param {param!r} is a {type(value).__name__}, not text or a number")
    return problems


def shorten(text: str, limit: int) -> str:
    """Cut prose at a word boundary to ``limit`` characters, marked with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "…"


def ga4_payload(event: CampaignEvent) -> dict:
    params: dict[str, str | int | float] = {
        name: shorten(value, MAX_VALUE_LENGTH)
        if name in FREE_TEXT and isinstance(value, str)
        else value
        for name, value in event.properties.items()
        if name not in NOT_SENT
    }
    params["session_id"] = session_id(event.week_start)
    params["engagement_time_msec"] = ENGAGEMENT_TIME_MSEC
    return {"name": event.kind, "params": params}


def prepare(events: list[CampaignEvent]) -> tuple[list[Outgoing], list[Refusal]]:
    """Each event in GA4's format, or refused with every rule it breaks."""
    ready, refused = [], []
    for event in events:
        key = event.key(DESTINATION)
        payload = ga4_payload(event)
        problems = event_problems(payload)
        if problems:
            refused.append(
                Refusal(key, event.week_start, event.campaign_id, event.kind, "; ".join(problems))
            )
            continue
        client = client_id(event.campaign_id)
        ready.append(
            Outgoing(key, event.week_start, event.campaign_id, event.kind, client, payload)
        )
    return ready, refused


def request_body(client: str, payloads: list[dict], validation_behavior: str | None = None) -> dict:
    body: dict = {"client_id": client, "events": payloads}
    if validation_behavior:
        body["validation_behavior"] = validation_behavior
    return body


_BODY_BYTES = len(encode_json(request_body("", []))) - len(encode_json(""))


def plan_requests(
    events: list[Outgoing],
    max_events: int = MAX_EVENTS_PER_REQUEST,
    max_bytes: int = MAX_BODY_BYTES,
) -> tuple[list[list[Outgoing]], list[Outgoing]]:
    """Requests of one client id each, at most ``max_events`` events and under ``max_bytes``
    once encoded (measured on the exact bytes sent), in the events' order. Returns the
    requests and the events too large to fit any request alone."""
    if max_events > MAX_EVENTS_PER_REQUEST or max_bytes > MAX_BODY_BYTES:
        raise ValueError("GA4 requests cannot be larger than the protocol's limits")
    groups: dict[str, list[Outgoing]] = {}
    for event in events:
        groups.setdefault(event.group, []).append(event)
    requests, too_large = [], []
    for client, members in groups.items():
        # len(encode_json(request_body(client, []))), without encoding a dict per client
        overhead = _BODY_BYTES + len(encode_json(client))
        current: list[Outgoing] = []
        size = overhead
        for event in members:
            event_bytes = len(encode_json(event.payload))
            if overhead + event_bytes >= max_bytes:
                too_large.append(event)
                continue
            added = event_bytes + (1 if current else 0)
            if current and (len(current) >= max_events or size + added >= max_bytes):
                requests.append(current)
                current, size, added = [], overhead, event_bytes
            current.append(event)
            size += added
        if current:
            requests.append(current)
    return requests, too_large


_INDEX = re.compile(r"index:?\s*\[?(\d+)\]?", re.IGNORECASE)


def validation_by_event(messages: list[dict], n_events: int) -> tuple[dict[int, list[str]], list]:
    """The validation server's messages by event index (its descriptions name the index,
    e.g. "Event at index: [0] has invalid name"), and those that name no event."""
    by_event: dict[int, list[str]] = {}
    general = []
    for message in messages:
        text = str(message.get("description", "")) or str(message)
        code = message.get("validationCode")
        entry = f"{code}: {text}" if code else text
        found = _INDEX.search(text)
        if found and int(found.group(1)) < n_events:
            by_event.setdefault(int(found.group(1)), []).append(entry)
        else:
            general.append(entry)
    return by_event, general


# --- delivery ----------------------------------------------------------------------------------

COLLECT_PATH = "/mp/collect"
DEBUG_PATH = "/debug/mp/collect"
VALIDATE_MODES = ("off", "before_send", "only")
UNVERIFIED = "unverified: GA4 answers 2xx even for events it drops"


@dataclass
class RequestOutcome:
    results: list[Result] = field(default_factory=list)
    validation_messages: list[str] = field(default_factory=list)
    requests: int = 0
    statuses: dict = field(default_factory=dict)


def _count(outcome: RequestOutcome, answer: Answer) -> None:
    outcome.requests += 1
    outcome.statuses[answer.status] = outcome.statuses.get(answer.status, 0) + 1


def send_request(
    batch: list[Outgoing],
    post: Callable[[str, bytes], Answer],
    policy: RetryPolicy,
    *,
    validate: str = "off",
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> RequestOutcome:
    """One request of one client id: validated first when asked, then sent with bounded
    retries where a retry is safe.

    Retried: no connection (the request never left), 429 and 5xx (Google's advice is not to
    repeat a request it answered with an error, but a 5xx is the server's, and the number of
    tries is bounded). Not retried: a request sent whose answer never came (a timeout), since
    GA4 has no idempotency key and may already have counted it; any other status.
    ``validate``: ``before_send`` posts the request to the validation server first (with
    ENFORCE_RECOMMENDATIONS) and refuses the events its messages name; ``only`` validates and
    sends nothing (the results are empty).
    """
    if validate not in VALIDATE_MODES:
        raise ValueError(f"validate must be one of {', '.join(VALIDATE_MODES)}, not {validate!r}")
    rng = rng or random.Random()
    outcome = RequestOutcome()
    client = batch[0].group
    events = list(batch)
    if validate != "off":
        body = request_body(client, [e.payload for e in events], "ENFORCE_RECOMMENDATIONS")
        answer = post(DEBUG_PATH, encode_json(body))
        _count(outcome, answer)
        if answer.status != 200 or not isinstance(answer.body, dict):
            message = f"validation server: {answer.describe()}"
            outcome.validation_messages.append(message)
            if validate == "before_send":
                outcome.results = [
                    Result(e.key, "failed", answer.status, 0, message) for e in events
                ]
            return outcome
        by_event, general = validation_by_event(
            list(answer.body.get("validationMessages") or []), len(events)
        )
        outcome.validation_messages += [m for msgs in by_event.values() for m in msgs] + general
        if validate == "only":
            return outcome
        named = set(by_event) if not general else set(range(len(events)))
        for index in sorted(named):
            reason = "; ".join(by_event.get(index, []) + general)
            outcome.results.append(Result(events[index].key, "refused", 200, 1, reason))
        events = [e for i, e in enumerate(events) if i not in named]
        if not events:
            return outcome
    body = encode_json(request_body(client, [e.payload for e in events]))
    validated = 1 if validate != "off" else 0  # the validation request carried them too
    tries = 0
    while True:
        answer = post(COLLECT_PATH, body)
        _count(outcome, answer)
        tries += 1
        code = answer.status
        outage = code is None or code in RETRYABLE_STATUSES
        if code is not None and 200 <= code < 300:
            status, detail = "sent", UNVERIFIED
        elif code is None and answer.reached_server:
            status, detail = "failed", f"{answer.describe()}: GA4 may have received it"
        elif outage and tries < policy.max_tries:
            sleep(policy.backoff(tries, rng))
            continue
        else:
            status = "failed"
            detail = answer.describe() + (f" after {tries} tries" if tries > 1 else "")
        outcome.results += [
            Result(e.key, status, code, tries + validated, detail, outage and status == "failed")
            for e in events
        ]
        return outcome
