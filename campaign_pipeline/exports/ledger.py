"""The export ledger: which event went where, in a transactional store with one row per
(destination, event_key), so each event is sent once across re-runs, restarts and runs that
overlap.

An event is CLAIMED (a row inserted with this run's token) before its request leaves, and
MARKED after the answer: ``sent``, ``refused`` (never accepted as it is; not sent again) or
``failed`` (sent again by the next run). The claim is an ``INSERT ... ON CONFLICT DO NOTHING``
on the unique (destination, event_key): of two runs claiming the same event at once, the
database lets exactly one insert win, and the other skips the event.

A run that dies between its claim and the answer leaves the row ``claimed``. Such a claim is
stale once older than the lease (``lease_minutes``, default 30: far longer than one request with
every retry and throttle pause), and the next run takes it over and sends the event again. For
Amplitude that is safe: the resend has the same ``insert_id`` and Amplitude drops the duplicate
(within its 7-day window). GA4 has no idempotency key: if the dead run's request did arrive,
the event is counted twice. That is the one duplicate this design cannot rule out.

SQLite (a file, by default beside the published tables) and PostgreSQL share this code through
SQLAlchemy; the table is created on first use. Times are UTC from the exporting machine's clock
(machines sharing a PostgreSQL ledger need synchronized clocks, to well within the lease).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from campaign_pipeline.exports.events import Outgoing, Refusal
from campaign_pipeline.exports.transport import Result

STATUSES = ("claimed", "sent", "refused", "failed")
DEFAULT_TABLE = "export_ledger"
DEFAULT_LEASE_MINUTES = 30.0
CHUNK = 500  # keys per statement: far below SQLite's and PostgreSQL's parameter limits

PUBLISHED_COLUMNS = [
    "destination",
    "event_key",
    "week_start",
    "status",
    "response_code",
    "sent_at",
    "attempts",
    "campaign_id",
    "event_name",
    "claimed_at",
    "updated_at",
    "detail",
    "payload_sha256",
]


class LedgerError(Exception):
    """The ledger store cannot be reached or used (the message names the store, not secrets)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _table(name: str) -> tuple[sa.MetaData, sa.Table]:
    metadata = sa.MetaData()
    table = sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("destination", sa.String(32), nullable=False),
        sa.Column("event_key", sa.String(64), nullable=False),
        sa.Column("week_start", sa.Date, nullable=False),
        sa.Column("campaign_id", sa.String(1024)),
        sa.Column("event_name", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("response_code", sa.Integer),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("claim_token", sa.String(36)),
        sa.Column("claimed_at", sa.DateTime),
        sa.Column("sent_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("payload_sha256", sa.String(64)),
        sa.Column("detail", sa.Text),
        sa.UniqueConstraint("destination", "event_key", name=f"uq_{name}_destination_event_key"),
        sa.Index(f"ix_{name}_week_start", "week_start"),
    )
    return metadata, table


# How long a new connection keeps asking for WAL while another connection holds the write lock
# (two runs opening a new ledger together): about as long as the busy timeout.
_WAL_SWITCH_WAIT_SECONDS = 60.0


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets readers run beside the one writer; the busy timeout makes a second run wait
    for the lock instead of failing.

    The switch to WAL does not wait for the busy timeout: while another connection holds the
    write lock of a file still in rollback mode (the other run creating the table), SQLite
    refuses it at once with "database is locked". The mode is stored in the file, so the
    connection asks again until the writer is done, and fails only after the busy timeout.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=60000")
    deadline = time.monotonic() + _WAL_SWITCH_WAIT_SECONDS
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)
    cursor.close()


@dataclass
class Claim:
    """What one claim got: a token, the keys this run now owns, and the status of the others
    (``sent``, ``refused``, or ``claimed`` by another run)."""

    token: str
    owned: list[str] = field(default_factory=list)
    others: dict[str, str] = field(default_factory=dict)


class Ledger:
    def __init__(
        self,
        url: str | sa.URL,
        *,
        table_name: str = DEFAULT_TABLE,
        lease_minutes: float = DEFAULT_LEASE_MINUTES,
    ):
        if lease_minutes < 0:
            raise ValueError("the claim lease cannot be negative")
        self.url = sa.make_url(url)
        self.lease = dt.timedelta(minutes=lease_minutes)
        self.metadata, self.table = _table(table_name)
        if self.url.get_backend_name() == "sqlite":
            self.engine = sa.create_engine(self.url, connect_args={"timeout": 60})
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = sa.create_engine(self.url, pool_pre_ping=True)
        self._ready = False

    @classmethod
    def sqlite(cls, path: str | Path, **kwargs) -> Ledger:
        return cls(sa.URL.create("sqlite", database=str(path)), **kwargs)

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    def describe(self) -> str:
        """Where the ledger is, never with a password."""
        if self.backend == "sqlite":
            return f"SQLite {self.url.database}, table {self.table.name}"
        return (
            f"PostgreSQL {self.url.host}:{self.url.port or 5432}/{self.url.database}, "
            f"table {self.table.name}"
        )

    def exists(self) -> bool:
        if self.backend == "sqlite" and not Path(str(self.url.database)).exists():
            return False
        try:
            return sa.inspect(self.engine).has_table(self.table.name)
        except SQLAlchemyError as error:
            raise LedgerError(self._error("read", error)) from None

    def _error(self, doing: str, error: Exception) -> str:
        return (
            f"export ledger ({self.describe()}): cannot {doing}: {type(error).__name__}: "
            + (str(getattr(error, "orig", None) or error).splitlines()[0][:300])
        )

    def ensure(self) -> None:
        """Create the table on first use. Two runs may try at the same moment: the loser's
        error is expected, and it only has to see the winner's table."""
        if self._ready:
            return
        if self.backend == "sqlite":
            Path(str(self.url.database)).parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(6):
            try:
                self.metadata.create_all(self.engine, checkfirst=True)
                break
            except SQLAlchemyError as error:
                time.sleep(0.05 * (attempt + 1))
                if self.exists():
                    break
                if attempt == 5:
                    raise LedgerError(self._error("create its table", error)) from None
        self._ready = True

    def _insert(self):
        dialect = postgresql if self.backend == "postgresql" else sqlite
        return dialect.insert(self.table)

    def statuses(self, destination: str, keys: Sequence[str]) -> dict[str, str]:
        """The status of each key already in the ledger (nothing is created to answer)."""
        if not keys or not self.exists():
            return {}
        t, found = self.table, {}
        try:
            with self.engine.connect() as conn:
                for part in _chunks(keys):
                    query = sa.select(t.c.event_key, t.c.status, t.c.claimed_at).where(
                        t.c.destination == destination, t.c.event_key.in_(part)
                    )
                    for key, status, claimed_at in conn.execute(query):
                        found[key] = self._effective(status, claimed_at)
        except SQLAlchemyError as error:
            raise LedgerError(self._error("read", error)) from None
        return found

    def _effective(self, status: str, claimed_at: dt.datetime | None) -> str:
        """A claim older than the lease counts as abandoned: ``stale``."""
        if status == "claimed" and (claimed_at is None or claimed_at < _now() - self.lease):
            return "stale"
        return status

    def claim(self, destination: str, events: Sequence[Outgoing]) -> Claim:
        """Claim the events for this run, atomically: new rows are inserted, ``failed`` rows
        and stale claims are taken over; an event sent, refused or claimed by another live
        run stays theirs."""
        self.ensure()
        claim = Claim(token=str(uuid.uuid4()))
        if not events:
            return claim
        t, now = self.table, _now()
        try:
            with self.engine.begin() as conn:
                for part in _chunks(list(events)):
                    rows = [
                        {
                            "destination": destination,
                            "event_key": e.key,
                            "week_start": dt.date.fromisoformat(e.week_start),
                            "campaign_id": e.campaign_id,
                            "event_name": e.name,
                            "status": "claimed",
                            "attempts": 0,
                            "claim_token": claim.token,
                            "claimed_at": now,
                            "updated_at": now,
                            "payload_sha256": e.payload_sha256,
                        }
                        for e in part
                    ]
                    conn.execute(
                        self._insert()
                        .values(rows)
                        .on_conflict_do_nothing(index_elements=["destination", "event_key"])
                    )
                    keys = [e.key for e in part]
                    conn.execute(
                        sa.update(t)
                        .where(
                            t.c.destination == destination,
                            t.c.event_key.in_(keys),
                            sa.or_(
                                t.c.status == "failed",
                                sa.and_(t.c.status == "claimed", t.c.claimed_at < now - self.lease),
                            ),
                        )
                        .values(
                            status="claimed",
                            claim_token=claim.token,
                            claimed_at=now,
                            # the payload this run sends: it may differ from the failed one's
                            payload_sha256=sa.case(
                                {e.key: e.payload_sha256 for e in part},
                                value=t.c.event_key,
                                else_=t.c.payload_sha256,
                            ),
                        )
                    )
                    query = sa.select(t.c.event_key, t.c.status, t.c.claim_token).where(
                        t.c.destination == destination, t.c.event_key.in_(keys)
                    )
                    for key, status, token in conn.execute(query):
                        if status == "claimed" and token == claim.token:
                            claim.owned.append(key)
                        else:
                            claim.others[key] = status
        except SQLAlchemyError as error:
            raise LedgerError(self._error("claim events", error)) from None
        order = {e.key: i for i, e in enumerate(events)}
        claim.owned.sort(key=order.__getitem__)
        return claim

    def mark(self, destination: str, token: str, results: Iterable[Result]) -> int:
        """Record each answer on the rows this run still owns; returns the rows marked (a
        claim another run took over as stale is left to that run)."""
        results = list(results)
        if not results:
            return 0
        t, now = self.table, _now()
        params = [
            {
                "k": r.key,
                "s": r.status,
                "c": r.response_code,
                "n": r.requests,
                "sent": now if r.status == "sent" else None,
                "d": (r.detail or "")[:2000],
            }
            for r in results
        ]
        statement = (
            sa.update(t)
            .where(
                t.c.destination == destination,
                t.c.event_key == sa.bindparam("k"),
                t.c.claim_token == token,
                t.c.status == "claimed",
            )
            .values(
                status=sa.bindparam("s"),
                response_code=sa.bindparam("c"),
                attempts=t.c.attempts + sa.bindparam("n"),
                sent_at=sa.bindparam("sent"),
                detail=sa.bindparam("d"),
                updated_at=now,
            )
        )
        try:
            with self.engine.begin() as conn:
                return int(conn.execute(statement, params).rowcount or 0)
        except SQLAlchemyError as error:
            raise LedgerError(self._error("mark events", error)) from None

    def record_refusals(self, destination: str, refusals: Sequence[Refusal]) -> None:
        """Events refused before sending: recorded once, so the reason is in the table."""
        if not refusals:
            return
        self.ensure()
        now = _now()
        try:
            with self.engine.begin() as conn:
                for part in _chunks(list(refusals)):
                    rows = [
                        {
                            "destination": destination,
                            "event_key": r.key,
                            "week_start": dt.date.fromisoformat(r.week_start),
                            "campaign_id": r.campaign_id,
                            "event_name": r.name,
                            "status": "refused",
                            "attempts": 0,
                            "updated_at": now,
                            "detail": r.reason[:2000],
                        }
                        for r in part
                    ]
                    conn.execute(
                        self._insert()
                        .values(rows)
                        .on_conflict_do_nothing(index_elements=["destination", "event_key"])
                    )
        except SQLAlchemyError as error:
            raise LedgerError(self._error("record refusals", error)) from None

    def rows(self, week_starts: Sequence[str] | None = None) -> pd.DataFrame:
        """The ledger as the published table (all weeks, or the given ones)."""
        t = self.table
        frame = empty_ledger_frame()
        if not self.exists():
            return frame
        query = sa.select(*(t.c[c] for c in PUBLISHED_COLUMNS)).order_by(
            t.c.week_start, t.c.destination, t.c.event_key
        )
        if week_starts is not None:
            query = query.where(t.c.week_start.in_([dt.date.fromisoformat(w) for w in week_starts]))
        try:
            with self.engine.connect() as conn:
                records = conn.execute(query).mappings().all()
        except SQLAlchemyError as error:
            raise LedgerError(self._error("read", error)) from None
        if not records:
            return frame
        found = pd.DataFrame([dict(r) for r in records], columns=PUBLISHED_COLUMNS)
        return _published_types(found)

    def drop(self) -> None:
        """Remove the table (tests and deliberate resets only)."""
        self.table.drop(self.engine, checkfirst=True)
        self._ready = False

    def dispose(self) -> None:
        self.engine.dispose()


def _chunks(items: Sequence, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _published_types(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(
        destination=frame["destination"].astype(object),
        event_key=frame["event_key"].astype(object),
        week_start=pd.to_datetime(frame["week_start"]),
        status=frame["status"].astype(object),
        response_code=pd.array(frame["response_code"], dtype="Int64"),
        sent_at=pd.to_datetime(frame["sent_at"]),
        attempts=frame["attempts"].astype("int64"),
        campaign_id=frame["campaign_id"].astype(object),
        event_name=frame["event_name"].astype(object),
        claimed_at=pd.to_datetime(frame["claimed_at"]),
        updated_at=pd.to_datetime(frame["updated_at"]),
        detail=frame["detail"].astype(object),
        payload_sha256=frame["payload_sha256"].astype(object),
    )[PUBLISHED_COLUMNS]


def empty_ledger_frame() -> pd.DataFrame:
    return _published_types(
        pd.DataFrame({c: pd.Series([], dtype=object) for c in PUBLISHED_COLUMNS})
    )


class ExportLedgerTable(pa.DataFrameModel):
    """The published ``export_ledger``: the contract's columns, one row per (destination,
    event_key), statuses from the ledger's list."""

    destination: str = pa.Field(isin=["ga4", "amplitude"])
    event_key: str = pa.Field(str_length={"min_value": 1})
    week_start: pd.Timestamp
    status: str = pa.Field(isin=list(STATUSES))
    response_code: pd.Int64Dtype = pa.Field(nullable=True)
    sent_at: pd.Timestamp = pa.Field(nullable=True)
    attempts: int = pa.Field(ge=0)

    class Config:
        unique = ["destination", "event_key"]
