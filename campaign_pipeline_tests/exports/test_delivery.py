"""A destination's export of a week through the ledger, against the fake servers, on SQLite
and on the real PostgreSQL: a re-run sends nothing, a partial failure resends only what
failed, two runs at once send each event once, a dry run sends nothing and writes the exact
requests."""

import json
import threading
from collections import Counter

from campaign_pipeline.exports import delivery
from campaign_pipeline.exports.events import encode_json
from campaign_pipeline.exports.transport import RetryPolicy
from campaign_pipeline.resources.amplitude import AmplitudeHTTP
from campaign_pipeline.resources.ga4 import GA4MeasurementProtocol
from campaign_pipeline_tests.exports.support import (
    AMPLITUDE_KEY,
    GA4_MEASUREMENT_ID,
    GA4_SECRET,
    WEEK,
    events_for,
    leaks,
    week_tables,
)

FAST = RetryPolicy(max_tries=2, backoff_base_seconds=0.01, backoff_max_seconds=0.02)


def ga4_client(fake) -> GA4MeasurementProtocol:
    return GA4MeasurementProtocol(
        measurement_id=GA4_MEASUREMENT_ID, api_secret=GA4_SECRET, endpoint=fake.url
    )


def amp_client(fake) -> AmplitudeHTTP:
    return AmplitudeHTTP(api_key=AMPLITUDE_KEY, endpoint=fake.url)


def week(n_campaigns=10) -> dict:
    return {WEEK: events_for(week_tables(n_campaigns=n_campaigns, flags_per_campaign=3))}


def run_ga4(fake, ledger, weeks, tmp_path, live=True):
    return delivery.export_ga4(
        weeks, live=live, why="test", client=ga4_client(fake), ledger=ledger,
        out_dir=tmp_path, policy=FAST,
    )  # fmt: skip


def run_amplitude(fake, ledger, weeks, tmp_path, live=True, max_events=1999):
    return delivery.export_amplitude(
        weeks, live=live, why="test", client=amp_client(fake), ledger=ledger,
        out_dir=tmp_path, policy=FAST, max_events=max_events,
    )  # fmt: skip


def ga4_arrivals(fake) -> Counter:
    return Counter(
        (e["client_id"], e["name"], json.dumps(e["params"], sort_keys=True)) for e in fake.events
    )


def test_a_rerun_sends_nothing(fake_ga4, fake_amplitude, make_ledger, tmp_path):
    weeks = week()
    n = len(weeks[WEEK])
    ledger = make_ledger()
    first = run_ga4(fake_ga4, ledger, weeks, tmp_path)
    assert (first.sent, first.failed_total, sum(first.refused.values())) == (n, 0, 0)
    amp = run_amplitude(fake_amplitude, ledger, weeks, tmp_path)
    assert amp.sent == n
    requests = (len(fake_ga4.requests), len(fake_amplitude.requests))
    again_ga4 = run_ga4(fake_ga4, make_ledger(), weeks, tmp_path)
    again_amp = run_amplitude(fake_amplitude, make_ledger(), weeks, tmp_path)
    assert (again_ga4.sent, again_amp.sent) == (0, 0)
    assert again_ga4.skipped == {"already sent": n} == again_amp.skipped
    assert (len(fake_ga4.requests), len(fake_amplitude.requests)) == requests  # not one request
    assert sum(ga4_arrivals(fake_ga4).values()) == n and set(ga4_arrivals(fake_ga4).values()) == {1}
    assert fake_ga4.over_limit == 0 and fake_amplitude.over_limit == {}
    rows = ledger.rows()
    assert len(rows) == 2 * n and set(rows["status"]) == {"sent"}


def test_after_a_partial_failure_only_the_failed_events_go_again(
    fake_ga4, fake_amplitude, make_ledger, tmp_path
):
    weeks = week(n_campaigns=8)
    n = len(weeks[WEEK])
    ledger = make_ledger()
    # two batches of 10 accepted, then the service fails: the third batch fails every try
    # and the export stops (the rest not attempted)
    fake_amplitude.inject(200, after_ingest=True, times=2)
    fake_amplitude.inject(503, times=2)
    first = run_amplitude(fake_amplitude, ledger, weeks, tmp_path, max_events=10)
    assert (first.sent, first.failed_total) == (20, n - 20)
    assert first.failed["HTTP 503 after 2 tries"] == min(10, n - 20)
    assert first.failure_message().startswith(f"amplitude: {n - 20} of {n} events failed: ")
    assert first.failure_message().endswith("20 sent. The next run sends the failed ones again.")
    second = run_amplitude(fake_amplitude, ledger, weeks, tmp_path, max_events=10)
    assert (second.sent, second.skipped["already sent"]) == (n - 20, 20)
    assert set(fake_amplitude.ingested_ids().values()) == {1} and len(fake_amplitude.ingested) == n

    fake_ga4.inject(204, after_ingest=True, times=2)  # two campaigns' requests arrive
    fake_ga4.inject(500, times=2)  # then a request fails both tries
    first = run_ga4(fake_ga4, ledger, weeks, tmp_path)
    assert first.sent >= 2 and first.failed_total == n - first.sent
    second = run_ga4(fake_ga4, ledger, weeks, tmp_path)
    assert (second.sent, second.skipped["already sent"]) == (n - first.sent, first.sent)
    assert sum(ga4_arrivals(fake_ga4).values()) == n and set(ga4_arrivals(fake_ga4).values()) == {1}
    rows = ledger.rows()
    assert set(rows["status"]) == {"sent"} and rows["attempts"].max() == 3


def test_two_runs_of_one_week_started_together_send_each_event_once(
    fake_ga4, fake_amplitude, make_ledger, tmp_path
):
    weeks = week(n_campaigns=30)
    n = len(weeks[WEEK])
    fake_ga4.latency = fake_amplitude.latency = 0.01
    reports = {}
    barrier = threading.Barrier(2)

    def run(name: str) -> None:
        ledger = make_ledger()  # each run its own connection, as two processes
        barrier.wait()
        reports[name] = (
            run_ga4(fake_ga4, ledger, weeks, tmp_path),
            run_amplitude(fake_amplitude, ledger, weeks, tmp_path, max_events=7),
        )

    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index in (0, 1):
        a, b = reports["a"][index], reports["b"][index]
        assert a.sent + b.sent == n, (a.to_metadata(), b.to_metadata())
        assert sum(a.skipped.values()) + sum(b.skipped.values()) == n
        assert a.failed_total == b.failed_total == 0
    arrivals = ga4_arrivals(fake_ga4)
    assert sum(arrivals.values()) == n and set(arrivals.values()) == {1}
    assert fake_amplitude.duplicates == 0 and len(fake_amplitude.ingested) == n


def test_a_dry_run_writes_the_exact_requests_and_sends_nothing(make_ledger, tmp_path):
    weeks = week(n_campaigns=3)
    ledger = make_ledger()
    unset_ga4 = GA4MeasurementProtocol()
    unset_amp = AmplitudeHTTP()
    ga4_report = delivery.export_ga4(
        weeks, live=False, why="GA4_API_SECRET not set", client=unset_ga4, ledger=ledger,
        out_dir=tmp_path,
    )  # fmt: skip
    amp_report = delivery.export_amplitude(
        weeks, live=False, why="x", client=unset_amp, ledger=ledger, out_dir=tmp_path
    )
    assert not ledger.exists()  # a dry run claims nothing
    n = len(weeks[WEEK])
    for report, folder in ((ga4_report, "ga4"), (amp_report, "amplitude")):
        path = tmp_path / "exports" / folder / f"{WEEK}.json"
        assert report.files == [str(path)] and report.sent == 0
        written = json.loads(path.read_text())
        assert written["events"] == n and written["week_start"] == WEEK
        # a request (or a refusal) per line, so a reader can find one
        items = [line.strip().rstrip(",") for line in path.read_text().splitlines()]
        items = [json.loads(line) for line in items if line.startswith("{") and line != "{"]
        assert items == written["requests"] + written["refused"]
        assert sum(len(r["events"]) for r in written["requests"]) == n
        for body in written["requests"]:
            assert len(encode_json(body)) < (130_000 if folder == "ga4" else 1_000_000)
    ga4_file = json.loads((tmp_path / "exports" / "ga4" / f"{WEEK}.json").read_text())
    assert ga4_file["url"].endswith("/mp/collect?measurement_id=<GA4_MEASUREMENT_ID>"
                                    "&api_secret=<GA4_API_SECRET>")  # fmt: skip
    amp_file = json.loads((tmp_path / "exports" / "amplitude" / f"{WEEK}.json").read_text())
    assert {r["api_key"] for r in amp_file["requests"]} == {"<AMPLITUDE_API_KEY>"}
    lines = delivery.summary_lines({"ga4": ga4_report.to_metadata()})
    assert lines[0].startswith(f"  ga4        dry-run (GA4_API_SECRET not set): would send {n} of")
    # the requests in the file are the ones a live run sends (same bodies, same order)
    from campaign_pipeline.exports import ga4 as ga4_module

    ready, _ = ga4_module.prepare(weeks[WEEK])
    planned, _ = ga4_module.plan_requests(ready)
    assert ga4_file["requests"] == [
        ga4_module.request_body(r[0].group, [e.payload for e in r]) for r in planned
    ]
    assert leaks(path.read_text()) == []


def test_an_outage_stops_the_export_after_one_request_and_the_next_run_sends_everything(
    fake_ga4, fake_amplitude, make_ledger, tmp_path
):
    weeks = {
        **week(n_campaigns=6),
        "2025-03-10": events_for(week_tables(n_campaigns=6, week="2025-03-10"), "2025-03-10"),
    }
    n = sum(len(events) for events in weeks.values())
    ledger = make_ledger()
    fake_amplitude.inject(503, times=100)
    report = run_amplitude(fake_amplitude, ledger, weeks, tmp_path, max_events=5)
    assert len(fake_amplitude.requests) == FAST.max_tries  # one batch tried, then it stopped
    assert report.stopped == "amplitude unavailable: HTTP 503 after 2 tries"
    assert report.failed_total == n and report.sent == 0
    assert report.failed["HTTP 503 after 2 tries"] == 5
    assert len(ledger.rows()) == 5  # the others were never claimed
    fake_amplitude.injected.clear()
    again = run_amplitude(fake_amplitude, ledger, weeks, tmp_path, max_events=5)
    assert again.sent == n and not again.stopped and len(fake_amplitude.ingested) == n

    fake_ga4.inject(503, times=100)
    report = run_ga4(fake_ga4, ledger, weeks, tmp_path)
    assert len(fake_ga4.requests) == FAST.max_tries and report.failed_total == n
    assert report.stopped.startswith("ga4 unavailable: HTTP 503")


def test_validate_only_posts_every_request_to_the_validation_server_and_claims_nothing(
    fake_ga4, make_ledger, tmp_path
):
    weeks = week(n_campaigns=4)
    ledger = make_ledger()
    report = delivery.export_ga4(
        weeks, live=True, why="test", client=ga4_client(fake_ga4), ledger=ledger,
        out_dir=tmp_path, policy=FAST, validate="only",
    )  # fmt: skip
    assert report.mode == "validate-only" and report.sent == 0
    assert report.validation_messages == [] and fake_ga4.debug_requests == report.requests == 4
    assert fake_ga4.events == [] and not ledger.exists()
    line = delivery.summary_lines({"ga4": report.to_metadata()})[0]
    assert line.endswith("validated 4 requests: 0 validation messages")


def test_the_weeks_held_back_are_those_not_ended_when_the_newest_export_was_written():
    import datetime as dt

    weeks = ["2025-03-03", "2025-03-10", "2025-03-17"]
    week_over = dt.datetime(2025, 3, 17, 0, 0, tzinfo=dt.UTC)
    assert delivery.weeks_to_hold_back(weeks[:2], week_over) == {}
    sunday_night = dt.datetime(2025, 3, 16, 23, 59, tzinfo=dt.UTC)
    assert list(delivery.weeks_to_hold_back(weeks[:2], sunday_night)) == ["2025-03-10"]
    held = delivery.weeks_to_hold_back(weeks, dt.datetime(2025, 3, 12, 8, 5, tzinfo=dt.UTC))
    why = (
        "held back: the newest raw export was written 2025-03-12 08:05 UTC, before the week "
        "ended; the first run on an export written after it sends them"
    )
    assert held == {"2025-03-10": why, "2025-03-17": why}
    # the week ends at midnight where the partitions are: Monday 03:00 UTC is Sunday 23:00 in
    # New York (summer time)
    monday_utc = dt.datetime(2025, 3, 17, 3, 0, tzinfo=dt.UTC)
    assert delivery.weeks_to_hold_back(weeks[:2], monday_utc) == {}
    in_new_york = delivery.weeks_to_hold_back(weeks[:2], monday_utc, "America/New_York")
    assert (
        list(in_new_york) == ["2025-03-10"]
        and "2025-03-16 23:00 America/New_York" in (in_new_york["2025-03-10"])
    )
    assert delivery.weeks_to_hold_back(weeks, None) == {}  # no export time recorded


def test_a_held_week_is_neither_sent_nor_written_nor_claimed(
    fake_ga4, fake_amplitude, make_ledger, tmp_path
):
    weeks = week(n_campaigns=3)
    n = len(weeks[WEEK])
    why = "held back: the data ends on ..."
    ledger = make_ledger()
    ga4_report = delivery.export_ga4(
        weeks, live=True, why="test", client=ga4_client(fake_ga4), ledger=ledger,
        out_dir=tmp_path, policy=FAST, held={WEEK: why},
    )  # fmt: skip
    amp_report = delivery.export_amplitude(
        weeks, live=False, why="test", client=amp_client(fake_amplitude), ledger=ledger,
        out_dir=tmp_path, policy=FAST, held={WEEK: why},
    )  # fmt: skip
    for report in (ga4_report, amp_report):
        assert (report.events, report.sent, report.requests, report.files) == (n, 0, 0, [])
        assert report.skipped == {why: n} and report.weeks[WEEK]["skipped"] == n
    assert fake_ga4.requests == [] and fake_amplitude.requests == []
    assert not (tmp_path / "exports").exists()
    assert len(ledger.rows()) == 0  # unclaimed: the run that covers the week sends them
    line = delivery.summary_lines({"amplitude": amp_report.to_metadata()})[0]
    assert f"would send 0 of {n} events" in line and f"skipped {n} ({n} {why})" in line
    sent = run_ga4(fake_ga4, ledger, weeks, tmp_path)
    assert sent.sent == n == len(fake_ga4.events)
