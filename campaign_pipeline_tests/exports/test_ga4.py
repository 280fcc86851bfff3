"""GA4: the protocol's rules before sending, requests cut to its limits, and one request's
delivery against a fake GA4 server on 127.0.0.1."""

import random
import time
from dataclasses import replace

import pytest

from campaign_pipeline.exports import ga4
from campaign_pipeline.exports.events import CampaignEvent, Outgoing, encode_json
from campaign_pipeline.exports.transport import RetryPolicy
from campaign_pipeline.resources.ga4 import GA4MeasurementProtocol
from campaign_pipeline_tests.exports.support import (
    GA4_MEASUREMENT_ID,
    GA4_SECRET,
    WEEK,
    events_for,
    week_tables,
)

FAST = RetryPolicy(max_tries=3, backoff_base_seconds=0.01, backoff_max_seconds=0.02)


def resource(fake, **overrides) -> GA4MeasurementProtocol:
    settings = {
        "measurement_id": GA4_MEASUREMENT_ID,
        "api_secret": GA4_SECRET,
        "endpoint": fake.url,
    }
    return GA4MeasurementProtocol(**(settings | overrides))


def test_every_event_of_a_week_keeps_the_protocols_rules():
    ready, refused = ga4.prepare(events_for(week_tables(flags_per_campaign=4)))
    assert refused == [] and ready
    for event in ready:
        payload = event.payload
        assert ga4.event_problems(payload) == []
        assert payload["name"] not in ga4.RESERVED_EVENT_NAMES
        params = payload["params"]
        assert len(params) <= 25
        assert all(len(name) <= 40 for name in params)
        assert all(len(v) <= 100 for v in params.values() if isinstance(v, str))
        assert isinstance(params["session_id"], int) and params["engagement_time_msec"] == 100
        assert "timestamp_micros" not in payload  # never back-dated (the 72-hour rule)
        assert "explanation" not in params and "reason" not in params
    long_action = next(e for e in ready if e.name == "campaign_anomaly")
    assert long_action.payload["params"]["suggested_action"].endswith("…")
    # one synthetic client id per campaign, stable, in gtag's number.number form
    assert ga4.client_id("CMP0001") == ga4.client_id("CMP0001") != ga4.client_id("CMP0002")
    assert all(part.isdigit() for part in ga4.client_id("CMP0001").split("."))


def test_an_event_breaking_a_rule_is_refused_with_the_rule_not_sent():
    event = events_for(week_tables(n_campaigns=1))[0]
    long_id = replace(
        event,
        campaign_id="C" * 120,
        properties={**event.properties, "campaign_id": "C" * 120},
    )
    bad = replace(event, kind="session_start")
    ready, refused = ga4.prepare([event, long_id, bad])
    assert [e.key for e in ready] == [event.key("ga4")]
    reasons = {r.key: r.reason for r in refused}
    assert "param 'campaign_id' is 120 characters (at most 100)" in reasons[long_id.key("ga4")]
    assert "event name 'session_start' is reserved" in reasons[bad.key("ga4")]
    assert "'_x' is reserved" in "; ".join(ga4.event_problems({"name": "a", "params": {"_x": 1}}))
    problems = ga4.event_problems({"name": "9lives", "params": {f"p{i}": i for i in range(26)}})
    assert any("must start with a letter" in p for p in problems)
    assert any("26 params" in p for p in problems)


def _outgoing(client: str, i: int, size: int = 10) -> Outgoing:
    payload = {"name": "campaign_week_summary", "params": {"note": "x" * size, "i": i}}
    return Outgoing(f"k{client}{i}", WEEK, client, payload["name"], client, payload)


def test_requests_hold_one_client_at_most_25_events_and_stay_under_130_kb():
    events = [_outgoing("c1", i) for i in range(60)] + [_outgoing("c2", i) for i in range(3)]
    requests, too_large = ga4.plan_requests(events)
    assert too_large == []
    assert [len(r) for r in requests] == [25, 25, 10, 3]
    assert all(len({e.group for e in r}) == 1 for r in requests)
    assert [e.key for r in requests for e in r] == [e.key for e in events]  # order kept
    # a byte limit cuts before the count does; measured on the encoded body
    big = [_outgoing("c1", i, size=90) for i in range(25)]
    requests, _ = ga4.plan_requests(big, max_bytes=1_000)
    for request in requests:
        body = encode_json(ga4.request_body("c1", [e.payload for e in request]))
        assert len(body) < 1_000
    assert sum(len(r) for r in requests) == 25 and len(requests) > 2
    huge = _outgoing("c3", 0, size=140_000)
    assert ga4.plan_requests([huge])[1] == [huge]
    with pytest.raises(ValueError):
        ga4.plan_requests(events, max_events=26)


def test_collect_is_retried_after_503_and_reported_unverified(fake_ga4):
    ready, _ = ga4.prepare(events_for(week_tables(n_campaigns=1)))
    fake_ga4.inject(503)
    outcome = ga4.send_request(ready, resource(fake_ga4).post, FAST, rng=random.Random(1))
    assert {r.status for r in outcome.results} == {"sent"}
    assert all(r.requests == 2 and r.response_code == 204 for r in outcome.results)
    assert outcome.results[0].detail.startswith("unverified")
    assert len(fake_ga4.events) == len(ready) and fake_ga4.over_limit == 0
    query = fake_ga4.requests[-1]["query"]
    assert query == {"measurement_id": GA4_MEASUREMENT_ID, "api_secret": GA4_SECRET}


def test_a_4xx_is_not_retried_and_a_dead_server_fails_without_leaking_the_secret(fake_ga4):
    ready, _ = ga4.prepare(events_for(week_tables(n_campaigns=1)))
    fake_ga4.inject(400)
    outcome = ga4.send_request(ready, resource(fake_ga4).post, FAST)
    assert {(r.status, r.response_code, r.requests) for r in outcome.results} == {
        ("failed", 400, 1)
    }
    dead = resource(fake_ga4, endpoint="http://127.0.0.1:9")  # nothing listens on port 9
    outcome = ga4.send_request(ready, dead.post, FAST)
    result = outcome.results[0]
    assert result.status == "failed" and result.requests == FAST.max_tries
    assert "connection failed (http://127.0.0.1:9)" in result.detail
    assert GA4_SECRET not in repr(outcome) and GA4_SECRET not in repr(dead)


def test_an_answer_that_repeats_the_secret_reaches_no_result(fake_ga4):
    """A proxy's error page may quote the request line, query string and all."""
    ready, _ = ga4.prepare(events_for(week_tables(n_campaigns=1)))
    echo = f"bad request: POST /mp/collect?measurement_id=G-X&api_secret={GA4_SECRET}"
    fake_ga4.inject(400, {"error": echo, GA4_SECRET: [GA4_SECRET]})
    outcome = ga4.send_request(ready, resource(fake_ga4).post, FAST)
    assert {(r.status, r.response_code) for r in outcome.results} == {("failed", 400)}
    assert GA4_SECRET not in repr(outcome)
    assert "api_secret=<GA4_API_SECRET>" in outcome.results[0].detail


def test_a_request_whose_answer_never_comes_is_not_sent_again(fake_ga4):
    ready, _ = ga4.prepare(events_for(week_tables(n_campaigns=1)))
    fake_ga4.latency = 0.5
    outcome = ga4.send_request(ready, resource(fake_ga4, timeout_seconds=0.1).post, FAST)
    time.sleep(0.6)  # the fake records the request once its latency has passed
    assert len(fake_ga4.requests) == 1  # GA4 has no idempotency key: no blind resend
    result = outcome.results[0]
    assert result.status == "failed" and "GA4 may have received it" in result.detail


def test_validation_mode_posts_to_debug_and_refuses_what_it_flags(fake_ga4):
    ready, _ = ga4.prepare(events_for(week_tables(n_campaigns=1)))
    broken = replace(ready[0], key="broken", payload={**ready[0].payload, "name": "_bad_name"})
    batch = [broken, *ready[1:]]
    only = ga4.send_request(batch, resource(fake_ga4).post, FAST, validate="only")
    assert only.results == [] and fake_ga4.events == []
    assert any(
        "[_bad_name]" in m and m.startswith("NAME_INVALID") for m in only.validation_messages
    )
    first = ga4.send_request(batch, resource(fake_ga4).post, FAST, validate="before_send")
    statuses = {r.key: r.status for r in first.results}
    assert statuses.pop("broken") == "refused"
    assert set(statuses.values()) == {"sent"}
    assert len(fake_ga4.events) == len(ready) - 1 and fake_ga4.over_limit == 0
    assert fake_ga4.debug_requests == 2
    assert {r["path"] for r in fake_ga4.requests} == {"/debug/mp/collect", "/mp/collect"}


def test_the_fake_drops_what_ga4_drops(fake_ga4):
    """The fake enforces the limits: the exporter's tests rely on it to see a violation."""
    post = resource(fake_ga4).post
    too_many = {"client_id": "1.2", "events": [{"name": "e", "params": {}}] * 26}
    assert post(ga4.COLLECT_PATH, encode_json(too_many)).status == 204
    too_big = {"client_id": "1.2", "events": [{"name": "e", "params": {"p": "x" * 130_000}}]}
    assert post(ga4.COLLECT_PATH, encode_json(too_big)).status == 204
    assert dict(fake_ga4.dropped_requests) == {
        "more than 25 events": 1,
        "body of 130 kB or more": 1,
    }
    odd_events = [{"name": "first_visit"}, {"name": "ok", "params": {"ga_x": 1, "v": "y" * 101}}]
    odd = {"client_id": "1.2", "events": odd_events}
    post(ga4.COLLECT_PATH, encode_json(odd))
    assert fake_ga4.dropped_events["reserved name"] == 1 and fake_ga4.truncated_values == 1
    assert fake_ga4.dropped_params["invalid or reserved name"] == 1
    assert fake_ga4.events[-1]["params"] == {"v": "y" * 100}


def test_a_campaign_event_is_named_by_its_kind():
    event = CampaignEvent("campaign_anomaly", WEEK, "C1", "d", 0, {"campaign_id": "C1"})
    assert ga4.ga4_payload(event)["name"] == "campaign_anomaly"
