"""Amplitude: the API's rules before sending, batches under its limits, and the delivery
loop's answers to 413, 429, 400 and 5xx, against a fake Amplitude server on 127.0.0.1."""

import random
from dataclasses import replace

import pytest

from campaign_pipeline.exports import amplitude
from campaign_pipeline.exports.events import Outgoing, encode_json
from campaign_pipeline.exports.transport import FatalExportError, RetryPolicy
from campaign_pipeline.resources.amplitude import AmplitudeHTTP
from campaign_pipeline_tests.exports.fake_servers import FakeAmplitude
from campaign_pipeline_tests.exports.support import (
    AMPLITUDE_KEY,
    events_for,
    week_tables,
)

FAST = RetryPolicy(
    max_tries=4,
    backoff_base_seconds=0.01,
    backoff_max_seconds=0.05,
    throttle_pause_seconds=0.35,
    max_throttle_rounds=12,
)


def client(fake, **overrides) -> AmplitudeHTTP:
    return AmplitudeHTTP(**({"api_key": AMPLITUDE_KEY, "endpoint": fake.url} | overrides))


def deliver(fake, events, policy=FAST, **overrides):
    http = client(fake, **overrides)
    results = {}

    def record(batch):
        for result in batch:
            assert result.key not in results, "an event was answered twice"
            results[result.key] = result

    delivery = amplitude.Delivery(
        http.post_events, http.overhead_bytes, policy, record, rng=random.Random(7)
    )
    delivery.run(events)
    return results, delivery


def ready_events(**kwargs) -> list[Outgoing]:
    ready, refused = amplitude.prepare(events_for(week_tables(**kwargs)))
    assert refused == []
    return ready


def test_every_event_keeps_the_apis_rules_with_a_deterministic_insert_id():
    ready = ready_events(flags_per_campaign=4)
    again = ready_events(flags_per_campaign=4)
    assert [e.payload for e in ready] == [e.payload for e in again]
    for event in ready:
        payload = event.payload
        assert payload["insert_id"] == event.key and len(payload["user_id"]) >= 5
        assert payload["device_id"] == payload["user_id"] == f"campaign:{event.campaign_id}"
        assert isinstance(payload["time"], int)
        assert all(
            len(v) <= 1024 for v in payload["event_properties"].values() if isinstance(v, str)
        )
    problems = amplitude.event_problems(
        {"user_id": "null", "device_id": "abc", "event_type": "$identify", "time": 1.5}, 0
    )
    assert "user_id 'null' is on Amplitude's denylist" in problems
    assert "device_id is 3 characters (at least 5)" in problems
    assert "event_type '$identify' is reserved" in problems
    assert "time is not whole milliseconds" in problems
    future = amplitude.event_problems(
        {"user_id": "campaign:1", "event_type": "e", "time": 10**13}, 0
    )
    assert any("more than a day ahead" in p for p in future)


def test_batches_stay_under_2000_events_and_1_mb():
    one = ready_events(n_campaigns=1)[0]
    many = [
        replace(one, key=f"k{i}", payload={**one.payload, "insert_id": f"k{i}"})
        for i in range(4100)
    ]
    overhead = len(encode_json(amplitude.request_body(AMPLITUDE_KEY, [])))
    batches, too_large = amplitude.plan_batches(many, overhead)
    assert too_large == [] and sum(len(b) for b in batches) == 4100
    for batch in batches:
        assert len(batch) < 2000
        assert (
            len(encode_json(amplitude.request_body(AMPLITUDE_KEY, [e.payload for e in batch])))
            < 1_000_000
        )
    big = [
        replace(
            one, key=f"b{i}", payload={**one.payload, "event_properties": {"t": "x" * 1000, "i": i}}
        )
        for i in range(1500)
    ]
    batches, _ = amplitude.plan_batches(big, overhead)
    assert len(batches) == 2  # cut by bytes long before the count
    with pytest.raises(ValueError):
        amplitude.plan_batches(many, overhead, max_events=2000)


def test_a_storm_of_429_and_503_ends_with_every_event_accepted_exactly_once():
    events = ready_events(n_campaigns=30, flags_per_campaign=4)
    # one campaign with more events than its device may send in the EPS window
    hot = events[0]
    events += [
        replace(hot, key=f"hot{i}", payload={**hot.payload, "insert_id": f"hot{i}"})
        for i in range(45)
    ]
    with FakeAmplitude(api_key=AMPLITUDE_KEY, eps=30, window_seconds=1.0) as fake:
        fake.inject(503, times=2)
        fake.inject(
            429,
            {
                "code": 429,
                "throttled_events": [0, 1, 2],
                "throttled_users": {"campaign:CMP0001": 31},
            },
        )
        fake.inject(502, after_ingest=True)  # ingested, then an error: the resend is a duplicate
        fake.inject(503)
        fake.inject(504, after_ingest=True)
        # five 5xx answers in a row: within six tries, every event gets through
        results, delivery = deliver(fake, events, replace(FAST, max_tries=6))
        assert {r.status for r in results.values()} == {"sent"}
        assert len(results) == len(events)
        ingested = fake.ingested_ids()
        assert set(ingested) == {e.key for e in events}
        assert set(ingested.values()) == {1}  # exactly once
        assert fake.duplicates >= 1  # the resends after "ingested, then 502/504" were dropped
        assert fake.answers[429] >= 2 and fake.answers[503] == 3
        assert fake.over_limit == {}  # nothing over a size or count limit was sent
        assert delivery.statuses[200] >= 2


def test_413_splits_the_batch_and_a_single_event_still_too_large_is_refused():
    events = ready_events(n_campaigns=12)
    giant = replace(
        events[0],
        key="giant",
        payload={
            **events[0].payload,
            "insert_id": "giant",
            "event_properties": {"t": ["x" * 900] * 8},
        },
    )
    with FakeAmplitude(api_key=AMPLITUDE_KEY, max_body=3_000) as fake:
        results, _ = deliver(fake, [*events, giant])
        assert results.pop("giant").status == "refused"
        assert {r.status for r in results.values()} == {"sent"}
        assert fake.answers[413] >= 3 and set(fake.ingested_ids().values()) == {1}
        assert all(r["bytes"] < 3_000 for r in fake.requests if r["status"] == 200)


def test_a_400_names_the_bad_events_which_are_refused_and_the_rest_go_again(fake_amplitude):
    events = ready_events(n_campaigns=6)
    bad = replace(events[2], payload={**events[2].payload, "time": 1.5})
    results, _ = deliver(fake_amplitude, [*events[:2], bad, *events[3:]])
    assert results[bad.key].status == "refused"
    assert results[bad.key].detail == "Amplitude refused: invalid field time"
    assert results[bad.key].response_code == 400
    others = [r for k, r in results.items() if k != bad.key]
    assert {r.status for r in others} == {"sent"} and all(r.requests == 2 for r in others)
    assert fake_amplitude.answers == {400: 1, 200: 1}
    assert bad.key not in fake_amplitude.ingested_ids()
    assert len(fake_amplitude.ingested) == len(events) - 1


def test_an_invalid_api_key_stops_the_export_without_retrying_or_repeating_the_key(
    fake_amplitude,
):
    events = ready_events(n_campaigns=4)
    with pytest.raises(FatalExportError, match="Invalid API key.*check AMPLITUDE_API_KEY") as e:
        deliver(fake_amplitude, events, api_key="wrong-key-123")
    assert fake_amplitude.answers == {400: 1} and fake_amplitude.ingested == []
    # Amplitude's answer names the whole key it got; the message keeps the placeholder only
    assert "wrong-key-123" not in str(e.value) and "<AMPLITUDE_API_KEY>" in str(e.value)


def test_5xx_and_dead_servers_are_retried_a_bounded_number_of_times(fake_amplitude):
    events = ready_events(n_campaigns=2)
    fake_amplitude.inject(500, times=10)
    results, _ = deliver(fake_amplitude, events)
    assert {(r.status, r.requests) for r in results.values()} == {("failed", 4)}
    assert next(iter(results.values())).detail == "HTTP 500 after 4 tries"
    results, _ = deliver(fake_amplitude, events, endpoint="http://127.0.0.1:9")
    detail = next(iter(results.values())).detail
    assert detail == "connection failed (http://127.0.0.1:9) after 4 tries"
    assert AMPLITUDE_KEY not in detail


def test_the_fake_refuses_what_amplitude_refuses(fake_amplitude):
    http = client(fake_amplitude)
    events = [
        {"user_id": "campaign:x", "event_type": "e", "insert_id": str(i)} for i in range(2000)
    ]
    assert http.post_events(events).status == 413
    answer = http.post_events([{"user_id": "nil", "event_type": "e"}, {"device_id": "abc"}])
    assert answer.status == 400
    assert answer.body["events_with_invalid_fields"] == {"user_id": [0]}
    assert answer.body["events_with_missing_fields"] == {"event_type": [1]}
    assert answer.body["events_with_invalid_id_lengths"] == {"device_id": [1]}
    assert fake_amplitude.ingested == []
    first = http.post_events([{"user_id": "campaign:x", "event_type": "e", "insert_id": "a"}])
    again = http.post_events([{"user_id": "campaign:x", "event_type": "e", "insert_id": "a"}])
    assert (first.body["events_ingested"], again.body["events_ingested"]) == (1, 0)
