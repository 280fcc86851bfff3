"""The ledger on SQLite and on the real PostgreSQL: claims are exclusive (also between runs
claiming at the same moment), answers are marked, failed and stale claims go again."""

import sqlite3
import threading
import time
from dataclasses import replace

import sqlalchemy as sa

from campaign_pipeline.exports.events import Outgoing, Refusal
from campaign_pipeline.exports.ledger import ExportLedgerTable, Ledger
from campaign_pipeline.exports.transport import Result


def outgoing(n: int, week: str = "2025-03-03", prefix: str = "k") -> list[Outgoing]:
    return [
        Outgoing(f"{prefix}{i:05d}", week, f"CMP{i % 7}", "campaign_anomaly", "g", {"i": i})
        for i in range(n)
    ]


def test_an_event_is_claimed_once_marked_and_only_failures_go_again(make_ledger):
    ledger = make_ledger()
    assert not ledger.exists() and ledger.statuses("ga4", ["k00000"]) == {}
    assert not ledger.exists()  # reading created nothing
    events = outgoing(5)
    first = ledger.claim("ga4", events)
    assert first.owned == [e.key for e in events] and first.others == {}
    second = ledger.claim("ga4", events)  # a live claim is another run's: skipped
    assert second.owned == [] and set(second.others.values()) == {"claimed"}
    assert ledger.claim("amplitude", events).owned == [e.key for e in events]  # per destination
    marked = ledger.mark(
        "ga4",
        first.token,
        [
            Result("k00000", "sent", 204, 1),
            Result("k00001", "refused", 400, 1, "invalid field time"),
            Result("k00002", "failed", 503, 5, "HTTP 503 after 5 tries"),
            Result("k00003", "failed", None, 2, "connection failed"),
        ],
    )
    assert marked == 4
    again = ledger.claim("ga4", events)
    assert again.owned == ["k00002", "k00003"]  # the failed ones, nothing else
    assert again.others == {"k00000": "sent", "k00001": "refused", "k00004": "claimed"}
    ledger.mark("ga4", again.token, [Result("k00002", "sent", 204, 1)])
    rows = ledger.rows().set_index(["destination", "event_key"])
    sent = rows.loc[("ga4", "k00002")]
    assert sent["status"] == "sent" and sent["attempts"] == 6 and sent["response_code"] == 204
    assert sent["sent_at"] is not None and rows.loc[("ga4", "k00000"), "attempts"] == 1
    assert rows.loc[("ga4", "k00001"), "detail"] == "invalid field time"
    ExportLedgerTable.validate(ledger.rows())
    assert ledger.statuses("ga4", ["k00000", "k00003", "nope"]) == {
        "k00000": "sent",
        "k00003": "claimed",
    }


def test_a_stale_claim_is_taken_over_and_its_first_owner_can_no_longer_mark_it(make_ledger):
    ledger = make_ledger(lease_minutes=0.002)  # 120 ms
    events = outgoing(3)
    dead_run = ledger.claim("amplitude", events)
    assert ledger.claim("amplitude", events).owned == []
    time.sleep(0.2)
    assert ledger.statuses("amplitude", [events[0].key]) == {events[0].key: "stale"}
    rerun = ledger.claim("amplitude", events)
    assert rerun.owned == [e.key for e in events]
    assert ledger.mark("amplitude", dead_run.token, [Result(events[0].key, "sent", 200, 1)]) == 0
    assert ledger.mark("amplitude", rerun.token, [Result(events[0].key, "sent", 200, 1)]) == 1


def test_a_failed_event_sent_again_with_other_figures_records_the_payload_sent(make_ledger):
    ledger = make_ledger()
    events = outgoing(2)
    first = ledger.claim("ga4", events)
    ledger.mark("ga4", first.token, [Result(e.key, "failed", 503, 5) for e in events])
    corrected = [events[0], replace(events[1], payload={"i": 1, "spend": 461.37})]
    assert corrected[1].payload_sha256 != events[1].payload_sha256
    assert ledger.claim("ga4", corrected).owned == [e.key for e in events]
    stored = ledger.rows().set_index("event_key")["payload_sha256"]
    assert stored.to_dict() == {e.key: e.payload_sha256 for e in corrected}


def test_refusals_are_recorded_once_with_their_reason(make_ledger):
    ledger = make_ledger()
    refusal = Refusal("r1", "2025-03-03", "CMP1", "campaign_anomaly", "param too long")
    ledger.record_refusals("ga4", [refusal])
    ledger.record_refusals("ga4", [refusal])
    rows = ledger.rows()
    assert len(rows) == 1 and rows.loc[0, "status"] == "refused"
    again = Outgoing("r1", "2025-03-03", "CMP1", "campaign_anomaly", "g", {})
    claim = ledger.claim("ga4", [again])  # a refused event is not sent again
    assert claim.owned == [] and claim.others == {"r1": "refused"}
    assert ledger.rows(["2025-03-10"]).empty and len(ledger.rows(["2025-03-03"])) == 1


def test_two_runs_claiming_the_same_events_at_once_split_them_without_overlap(make_ledger):
    ledgers = [make_ledger(), make_ledger()]  # two engines, as two processes would have
    ledgers[0].ensure()
    for round_ in range(3):
        batch = outgoing(600, prefix=f"r{round_}-")
        barrier = threading.Barrier(2)
        owned: list[list[str]] = [[], []]

        def run(index: int, batch=batch, barrier=barrier, owned=owned) -> None:
            barrier.wait()
            for start in range(0, len(batch), 50):
                claim = ledgers[index].claim("ga4", batch[start : start + 50])
                owned[index] += claim.owned

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not set(owned[0]) & set(owned[1])
        assert set(owned[0]) | set(owned[1]) == {e.key for e in batch}
    assert len(ledgers[0].rows()) == 1800


def test_a_new_sqlite_ledger_waits_while_another_run_holds_its_write_lock(tmp_path):
    """Two runs opening a new SQLite ledger together: while one holds the write lock of the file,
    still in rollback mode, SQLite refuses the other's switch to WAL at once ("database is
    locked"), without its busy timeout. The second run waits for the first instead of failing."""
    path = tmp_path / "ledger.sqlite"
    first = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    first.execute("CREATE TABLE other_run (a)")
    first.execute("BEGIN IMMEDIATE")  # the write lock, as the other run creating the table
    release = threading.Timer(0.5, lambda: first.execute("COMMIT"))
    release.start()
    second = Ledger.sqlite(path)
    try:
        started = time.monotonic()
        second.ensure()
        assert time.monotonic() - started >= 0.4  # it waited for the lock, and then got it
        assert second.exists() and second.rows().empty
        journal = sa.text("PRAGMA journal_mode")
        with second.engine.connect() as connection:
            assert connection.execute(journal).scalar() == "wal"
    finally:
        release.join()
        second.dispose()
        first.close()
