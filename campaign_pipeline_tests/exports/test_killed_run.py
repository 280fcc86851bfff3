"""The ledger survives a run killed mid-export (SIGKILL, in a process of its own, while a
request has arrived and its answer is still pending): the re-run completes the week, and
Amplitude has every event exactly once. GA4, which has no idempotency key, gets at most the
in-flight request twice: the documented limit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from campaign_pipeline.exports.ledger import Ledger
from campaign_pipeline_tests._orchestration_support import REPO_ROOT
from campaign_pipeline_tests.exports.fake_servers import FakeAmplitude, FakeGA4
from campaign_pipeline_tests.exports.kill_target import run_export, week_events
from campaign_pipeline_tests.exports.support import (
    AMPLITUDE_KEY,
    GA4_MEASUREMENT_ID,
    GA4_SECRET,
    WEEK,
)


def _start(destination: str, fake, url: sa.URL, table: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        EXPORT_LEDGER_URL=url.render_as_string(hide_password=False),
        EXPORT_LEDGER_TABLE=table,
        AMPLITUDE_API_KEY=AMPLITUDE_KEY,
        GA4_API_SECRET=GA4_SECRET,
        PYTHONPATH=str(REPO_ROOT),
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "campaign_pipeline_tests.exports.kill_target",
            destination,
            fake.url,
        ],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _kill_mid_request(process: subprocess.Popen, fake, answered_before: int) -> None:
    """SIGKILL once at least ``answered_before`` requests arrived and one has been ingested
    but not yet answered."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the export ended before it was killed: {process.stderr.read()[-2000:]}")
        with fake.lock:
            started = len(fake.requests)
            holding = fake.holding
        if started >= answered_before and holding:
            break
        time.sleep(0.005)
    else:
        pytest.fail("the export never reached the point to kill it")
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL


def _rerun(destination, fake, url, table):
    time.sleep(0.25)  # past the lease (0.1 s here) of the dead run's claim
    ledger = Ledger(url, table_name=table, lease_minutes=0.1 / 60)
    try:
        report = run_export(destination, fake.url, ledger)
        return report, ledger.rows()
    finally:
        ledger.dispose()


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    monkeypatch.setenv("AMPLITUDE_API_KEY", AMPLITUDE_KEY)
    monkeypatch.setenv("GA4_API_SECRET", GA4_SECRET)


def test_amplitude_gets_every_event_exactly_once_after_a_killed_run(ledger_target):
    url, table = ledger_target
    keys = {e.key("amplitude") for e in week_events()[WEEK]}
    with FakeAmplitude(api_key=AMPLITUDE_KEY, hold_after_ingest=0.3) as fake:
        process = _start("amplitude", fake, url, table)
        _kill_mid_request(process, fake, answered_before=4)
        # the dead run left its in-flight batch claimed, unanswered; what it marked, it sent
        before = Ledger(url, table_name=table).rows()
        assert set(before["status"]) == {"sent", "claimed"}
        assert (before["status"] == "claimed").sum() == 5  # the batch of 5 in flight
        assert set(before.loc[before["status"] == "sent", "event_key"]) <= set(fake.ingested_ids())
        fake.hold_after_ingest = 0.0
        report, rows = _rerun("amplitude", fake, url, table)
    assert report.failed_total == 0
    assert report.skipped["already sent"] == (before["status"] == "sent").sum()
    ingested = fake.ingested_ids()
    assert set(ingested) == keys and set(ingested.values()) == {1}  # exactly once
    assert fake.duplicates == 5  # the in-flight batch went again and Amplitude dropped it
    assert len(rows) == len(keys) and set(rows["status"]) == {"sent"}


def test_ga4_gets_every_event_after_a_killed_run_and_at_most_the_inflight_request_twice(
    tmp_path,
):
    url = sa.URL.create("sqlite", database=str(tmp_path / "ledger.sqlite"))
    events = week_events()[WEEK]
    with FakeGA4(
        measurement_id=GA4_MEASUREMENT_ID, api_secret=GA4_SECRET, hold_after_ingest=0.3
    ) as fake:
        process = _start("ga4", fake, url, "export_ledger")
        _kill_mid_request(process, fake, answered_before=4)
        before = Ledger(url).rows()
        in_flight = int((before["status"] == "claimed").sum())
        assert 1 <= in_flight <= 25
        fake.hold_after_ingest = 0.0
        report, rows = _rerun("ga4", fake, url, "export_ledger")
    assert report.failed_total == 0 and set(rows["status"]) == {"sent"}
    arrivals = Counter(
        (e["client_id"], e["name"], str(sorted(e["params"].items()))) for e in fake.events
    )
    assert len(arrivals) == len(events)  # every event arrived
    assert sum(n - 1 for n in arrivals.values()) == in_flight  # only the in-flight one twice
