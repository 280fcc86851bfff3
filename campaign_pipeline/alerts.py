"""Slack-compatible alert messages for anomaly flags and failed runs, and posting them.

Pure except for ``post_json`` (one HTTP POST with ``requests``). The sensors in
``sensors.py`` decide *when* to post and remember *what* was posted; this module decides
*what a message says*.

Why it is built this way:

* Slack incoming-webhook JSON (``text`` as the notification fallback plus ``blocks``) is
  accepted by Slack and by most chat tools' Slack-compatible webhooks (Mattermost,
  Rocket.Chat, Teams workflows, Discord's ``/slack`` endpoint).
* A flag's identity is the data contract's key (campaign_id, grain, period_start, metric).
  Its digest, not the flag, is what the sensor keeps to post each flag once.
* A webhook URL is a secret (the token is in its path). It never appears in a log line or
  an exception: errors name only the scheme and host.
* A failed run whose alert was not accepted waits in a ``FailureQueue`` (the failure
  sensor's cursor) and is tried again on later ticks, up to ``FAILURE_ALERT_MAX_AGE_SECONDS``
  after it failed; a webhook down for a minute loses no failure alert.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import pandas as pd
import requests

from campaign_pipeline import personal_data
from campaign_pipeline.constants import SEVERITIES, SEVERITY_RANK

WEBHOOK_ENV = "ALERT_WEBHOOK_URL"
FLAG_KEY_COLUMNS = ("campaign_id", "grain", "period_start", "metric")
# A failed run whose alert the webhook did not accept is tried again on every tick for this
# long after the run failed, then given up with a warning in the sensor's log (the run stays
# on the UI's Runs page). Three days carry a chat outage, or a revoked webhook URL, over a
# weekend: a run that failed on Friday evening still reaches on-call when the URL is fixed on
# Monday. Past that the news is stale (the next Monday run has come or is due), and a webhook
# that stays broken must not grow the queue, which lives in the sensor's cursor, without end.
FAILURE_ALERT_MAX_AGE_SECONDS = 3 * 24 * 3600.0


@dataclass(frozen=True)
class AlertSettings:
    """How alerts are selected and sent. Defaults suit a Slack incoming webhook."""

    # Only flags at or above this severity are pushed; low and medium stay in the table
    # because a channel that pings for everything is soon muted.
    min_severity: str = "high"
    # Slack allows 50 blocks per message; 20 flags (one block each, plus a header and
    # context) keep a message readable and well under that limit.
    max_flags_per_message: int = 20
    # Seconds to wait for the webhook: long enough for a slow proxy, short enough that a
    # dead endpoint does not hold a sensor tick (Dagster's tick limit is 60 s).
    timeout_seconds: float = 10.0
    # Extra attempts after a 429 or 5xx answer or a connection error: chat services shed
    # load this way, and the sensor retries the rest on its next tick anyway.
    retries: int = 2
    # Upper bound on waiting between attempts (Retry-After is honoured up to this).
    max_backoff_seconds: float = 5.0
    # Slack truncates long section text (3000 chars); explanations are cut well before.
    max_explanation_chars: int = 600

    def worst_case_seconds(self) -> float:
        """The longest one post can take: every attempt timing out, with the pauses between."""
        pauses = sum(min(self.max_backoff_seconds, 2**k) for k in range(self.retries))
        return (self.retries + 1) * self.timeout_seconds + pauses

    def __post_init__(self) -> None:
        if self.min_severity not in SEVERITY_RANK:
            raise ValueError(f"min_severity must be one of {SEVERITIES}, not {self.min_severity!r}")
        if self.max_flags_per_message < 1:
            raise ValueError("max_flags_per_message must be at least 1")


def _listed(names: list[str], limit: int) -> str:
    """Names joined by commas within about ``limit`` characters, cut between names, never in
    one ("c1, c2, and 7 more")."""
    shown: list[str] = []
    for name in names:
        if len(", ".join([*shown, name])) > limit:
            return ", ".join(shown) + f", and {len(names) - len(shown)} more"
        shown.append(name)
    return ", ".join(shown)


class AlertPostError(RuntimeError):
    """A webhook post failed; the message names the host only, never the full URL."""


class AlertUnconfirmed(AlertPostError):
    """The webhook took the request but gave no answer in time: the message may have arrived,
    so it is not sent again (a webhook slower than the timeout would get every message once
    per attempt, tick after tick)."""


def webhook_url_from_env(env: Mapping[str, str] | None = None) -> str | None:
    value = (os.environ if env is None else env).get(WEBHOOK_ENV, "").strip()
    return value or None


def redact_url(url: str) -> str:
    """``scheme://host/…``: enough to tell which service failed, without the token."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or '?'}://{host}{port}/…"


def flag_keys(flags: pd.DataFrame) -> pd.Series:
    """A stable 16-hex-digit digest of each flag's contract key (period_start as a date)."""
    start = pd.to_datetime(flags["period_start"]).dt.strftime("%Y-%m-%d")
    text = (
        flags["campaign_id"].astype(str)
        + "\x1f"
        + flags["grain"].astype(str)
        + "\x1f"
        + start
        + "\x1f"
        + flags["metric"].astype(str)
    )
    return text.map(lambda t: hashlib.sha256(t.encode()).hexdigest()[:16]).rename("flag_key")


def alertable_flags(flags: pd.DataFrame, min_severity: str = "high") -> pd.DataFrame:
    """Flags at or above ``min_severity``, one row per contract key, most severe first."""
    if flags.empty:
        return flags.assign(flag_key=pd.Series(dtype=object))
    flags = flags.reset_index(drop=True)
    rank = flags["severity"].astype(str).str.lower().map(SEVERITY_RANK)
    chosen = flags.loc[rank >= SEVERITY_RANK[min_severity]].copy()
    chosen["flag_key"] = flag_keys(chosen) if len(chosen) else pd.Series(dtype=object)
    chosen["_rank"] = rank.loc[chosen.index]
    chosen = chosen.sort_values(
        ["_rank", "period_start", "campaign_id", "metric"],
        ascending=[False, True, True, True],
        kind="stable",
    )
    return chosen.drop_duplicates("flag_key").drop(columns="_rank").reset_index(drop=True)


def _escape(text: object) -> str:
    """Slack mrkdwn needs &, < and > escaped; everything else is shown as written."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _number(value: object) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if pd.isna(number):
        return "n/a"
    return f"{number:,.4g}" if abs(number) < 1000 else f"{number:,.0f}"


def _day(value: object) -> str:
    stamp = pd.to_datetime(value, errors="coerce")
    return "?" if pd.isna(stamp) else stamp.strftime("%Y-%m-%d")


def flag_block(flag: Mapping, settings: AlertSettings = AlertSettings()) -> dict:
    severity = str(flag.get("severity", "")).upper()
    period = _day(flag.get("period_start"))
    if flag.get("period_end") is not None and _day(flag.get("period_end")) != period:
        period = f"{period} to {_day(flag.get('period_end'))}"
    explanation = str(flag.get("explanation") or "")
    if len(explanation) > settings.max_explanation_chars:
        explanation = explanation[: settings.max_explanation_chars - 1] + "…"
    lines = [
        f"*{_escape(severity)}* · campaign `{_escape(flag['campaign_id'])}` · "
        f"*{_escape(flag['metric'])}* "
        f"({_escape(flag['grain'])} {period})",
        f"value {_number(flag.get('value'))} vs expected {_number(flag.get('expected'))}"
        f" · score {_number(flag.get('score'))} · confidence {_number(flag.get('confidence'))}"
        f" · {_escape(flag.get('anomaly_type', ''))}",
    ]
    if explanation:
        lines.append(_escape(explanation))
    if flag.get("suggested_action"):
        lines.append(f"_Suggested:_ {_escape(flag['suggested_action'])}")
    return {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}


def build_flag_messages(
    flags: pd.DataFrame, settings: AlertSettings = AlertSettings(), *, context: str = ""
) -> list[tuple[list[str], dict]]:
    """Slack messages for already selected flags: ``[(flag_keys_in_message, payload), ...]``.

    The keys travel with each payload so the caller can mark exactly the flags of a
    message as posted once that message went through.
    """
    if flags.empty:
        return []
    keys = flags["flag_key"] if "flag_key" in flags.columns else flag_keys(flags)
    records = flags.assign(flag_key=keys.to_numpy()).to_dict("records")
    size = settings.max_flags_per_message
    messages = []
    for start in range(0, len(records), size):
        chunk = records[start : start + size]
        counts = pd.Series([str(r.get("severity", "")).lower() for r in chunk]).value_counts()
        summary = ", ".join(f"{int(counts[s])} {s}" for s in reversed(SEVERITIES) if s in counts)
        title = f"Campaign anomalies: {summary}"
        blocks: list[dict] = [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}}
        ]
        if context:
            blocks.append(
                {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(context)}]}
            )
        blocks.extend(flag_block(record, settings) for record in chunk)
        fallback = f"{title} ({_listed(sorted({str(r['campaign_id']) for r in chunk}), 200)})"
        messages.append(([str(r["flag_key"]) for r in chunk], {"text": fallback, "blocks": blocks}))
    return messages


@dataclass(frozen=True)
class FailedCheck:
    """A blocking asset check that failed in a run, as its evaluation recorded it."""

    asset: str  # the asset's key as the UI writes it ("quarantine")
    name: str  # "every_file_has_accepted_rows"
    description: str | None = None  # the evaluation's own line: which file, what to do


# A failed run's alert lists this many failed checks, then "and N more": one run can fail
# several blocking checks (a schema check on each validated table), and three lines of at most
# ``max_error_chars`` each (500) keep the message well under Slack's 3000 characters of section
# text and readable on a phone; the rest are on the run's page.
MAX_FAILED_CHECKS_SHOWN = 3


def _first_line(text: str | None, limit: int) -> str | None:
    """The first line of ``text``, cut to ``limit`` characters (None when there is none)."""
    text = (text or "").strip()
    if not text:
        return None
    line = text.splitlines()[0]
    return line[: limit - 1] + "…" if len(line) > limit else line


def failed_check_line(check: FailedCheck, max_chars: int = 500) -> str:
    """``failed check `asset:name`: <the evaluation's first line, bounded>`` (mrkdwn).

    The line is the check's own words (`run_summary.none_accepted_line` names the file, its
    counts and what to do). A line that quotes a value shaped like personal data (an email, a
    quoted phone: `personal_data.quotes_personal`) is withheld: the alert leaves the validated
    layer for a chat channel."""
    name = f"`{_escape(check.asset)}:{_escape(check.name)}`"
    line = _first_line(check.description, max_chars)
    if line is None:
        return f"failed check {name}"
    if personal_data.quotes_personal(line):
        return (
            f"failed check {name}: its line quotes a value shaped like personal data; see the run"
        )
    return f"failed check {name}: {_escape(line)}"


def build_run_failure_message(
    job_name: str,
    run_id: str,
    error_message: str | None,
    *,
    partition: str | None = None,
    step_keys: Sequence[str] = (),
    failed_checks: Sequence[FailedCheck] = (),
    ui_base_url: str | None = None,
    max_error_chars: int = 500,
    max_failed_checks: int = MAX_FAILED_CHECKS_SHOWN,
) -> dict:
    """A message for a failed run: which job and week, which steps, then what failed.

    ``partition`` is the run's week, or "FIRST to LAST" for a run of a range of weeks.

    ``failed_checks``: the blocking checks that failed and so stopped the run; each gets a line
    with its name and its own first line (``failed_check_line``), at most
    ``max_failed_checks`` of them. ``error_message``: the error of a step that failed otherwise
    (None when the checks are the whole story); without failed checks its first line is sent
    as ``error: ...``, and "no error message" when there is none.

    Only first lines are sent (each bounded by ``max_error_chars``): stack traces and cell
    values stay in the run's logs, which are behind the UI's access control.
    """
    first_line = _first_line(error_message, max_error_chars)
    where = f" for {'weeks' if ' to ' in partition else 'week'} {partition}" if partition else ""
    title = f"Run failed: {job_name}{where}"
    lines = [f"*{_escape(title)}*", f"run `{_escape(run_id)}`"]
    if step_keys:
        lines.append("failed steps: " + ", ".join(f"`{_escape(s)}`" for s in step_keys))
    shown = list(failed_checks)[:max_failed_checks]
    lines.extend(failed_check_line(check, max_error_chars) for check in shown)
    if len(failed_checks) > len(shown):
        lines.append(f"and {len(failed_checks) - len(shown)} more failed check(s)")
    if first_line is not None or not failed_checks:
        lines.append(f"error: {_escape(first_line or 'no error message')}")
    if ui_base_url:
        lines.append(f"<{ui_base_url.rstrip('/')}/runs/{run_id}|open the run>")
    # the notification's own text (a phone's preview) names the first failed check too
    text = f"{title}: check {failed_checks[0].asset}:{failed_checks[0].name}" if shown else title
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}],
    }


def post_json(
    url: str,
    payload: dict,
    settings: AlertSettings = AlertSettings(),
    *,
    session: requests.Session | None = None,
    sleep=time.sleep,
) -> int:
    """POST ``payload`` as JSON; return the status code of the accepted answer (2xx).

    Retries 429, 5xx and connection errors ``settings.retries`` times; anything else, or
    the last failure, raises ``AlertPostError`` naming the host only. A request sent whose
    answer did not come within the timeout raises ``AlertUnconfirmed`` at once.
    """
    http = session or requests.Session()
    where = redact_url(url)
    attempts = settings.retries + 1
    for attempt in range(1, attempts + 1):
        try:
            response = http.post(url, json=payload, timeout=settings.timeout_seconds)
        except requests.exceptions.ReadTimeout:
            raise AlertUnconfirmed(
                f"no answer from {where} within {settings.timeout_seconds:g} s; the message may "
                "have arrived, so it is not sent again"
            ) from None
        except requests.RequestException as error:  # its text contains the URL: do not pass it on
            reason = f"{type(error).__name__} posting to {where}"
            if attempt == attempts:
                raise AlertPostError(reason) from None
            sleep(min(settings.max_backoff_seconds, 2 ** (attempt - 1)))
            continue
        if 200 <= response.status_code < 300:
            return response.status_code
        retryable = response.status_code == 429 or response.status_code >= 500
        if not retryable or attempt == attempts:
            raise AlertPostError(f"{where} answered HTTP {response.status_code}")
        retry_after = response.headers.get("Retry-After", "")
        delay = (
            float(retry_after) if retry_after.replace(".", "", 1).isdigit() else 2 ** (attempt - 1)
        )
        sleep(min(settings.max_backoff_seconds, delay))
    raise AssertionError("unreachable")  # pragma: no cover


# --- failed runs waiting to be posted ------------------------------------------------------


@dataclass(frozen=True)
class PendingFailure:
    """A failed run whose alert the webhook has not accepted yet."""

    run_id: str
    failed_at: float  # the run's failure event, seconds since the epoch
    tries: int = 0  # ticks whose post of it failed


@dataclass(frozen=True)
class FailureQueue:
    """The failure sensor's cursor: the last failure event read, and the runs still to post.

    ``after_storage_id`` moves past a failure event once its run is in ``pending``, so each
    failure is read once; a run leaves ``pending`` only when its message was accepted (or may
    have arrived, ``AlertUnconfirmed``) or when it is given up. A run is thus posted at most
    once, and a failed post is not lost but tried again on the next tick.
    """

    after_storage_id: int | None = None
    pending: tuple[PendingFailure, ...] = ()

    def to_cursor(self) -> str:
        return json.dumps(
            {
                "after_storage_id": self.after_storage_id,
                "pending": [
                    {"run_id": p.run_id, "failed_at": p.failed_at, "tries": p.tries}
                    for p in self.pending
                ],
            }
        )

    @classmethod
    def from_cursor(cls, cursor: str | None) -> FailureQueue:
        """The queue a cursor holds. Dagster's own run-status sensor cursor (``record_id``, the
        last failure event it handled: the state of a ``run_failure_sensor`` of the same name)
        resumes after that event, so no failure it handled is posted again. Anything else that
        is not this queue's cursor starts empty, as a sensor's first tick does."""
        try:
            state = json.loads(cursor) if cursor else {}
        except ValueError:
            return cls()
        if not isinstance(state, dict):
            return cls()
        if "pending" not in state and isinstance(state.get("record_id"), int):
            return cls(after_storage_id=state["record_id"])
        try:
            pending = tuple(
                PendingFailure(str(p["run_id"]), float(p["failed_at"]), int(p.get("tries", 0)))
                for p in state.get("pending", [])
            )
            after = state.get("after_storage_id")
            return cls(after_storage_id=int(after) if after is not None else None, pending=pending)
        except (KeyError, TypeError, ValueError):
            return cls()

    def with_failures(
        self, failures: Iterable[PendingFailure], last_storage_id: int | None
    ) -> FailureQueue:
        """New failures queued (a run already waiting is not queued twice), and the place moved
        to ``last_storage_id``, the last failure event read (None: no event read)."""
        waiting = {p.run_id for p in self.pending}
        added = []
        for failure in failures:
            if failure.run_id not in waiting:
                waiting.add(failure.run_id)
                added.append(failure)
        after = self.after_storage_id if last_storage_id is None else last_storage_id
        return FailureQueue(after, self.pending + tuple(added))

    def expire(
        self, now: float, max_age_seconds: float
    ) -> tuple[FailureQueue, list[PendingFailure]]:
        """(the queue without the runs that failed more than ``max_age_seconds`` ago, those)."""
        old = [p for p in self.pending if now - p.failed_at > max_age_seconds]
        kept = tuple(p for p in self.pending if now - p.failed_at <= max_age_seconds)
        return FailureQueue(self.after_storage_id, kept), old

    def in_posting_order(self) -> list[PendingFailure]:
        """Fewest failed tries first, then oldest: a message the webhook keeps refusing (a
        payload it rejects) does not hold back the runs queued after it."""
        return sorted(self.pending, key=lambda p: (p.tries, p.failed_at))

    def posted(self, run_id: str) -> FailureQueue:
        return FailureQueue(
            self.after_storage_id, tuple(p for p in self.pending if p.run_id != run_id)
        )

    def failed(self, run_id: str) -> FailureQueue:
        return FailureQueue(
            self.after_storage_id,
            tuple(replace(p, tries=p.tries + 1) if p.run_id == run_id else p for p in self.pending),
        )


def _utc(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def failure_given_up_line(failure: PendingFailure, max_age_seconds: float) -> str:
    """The warning logged when a failed run's alert is dropped unposted."""
    return (
        f"gave up posting the failure of run {failure.run_id} (failed {_utc(failure.failed_at)}): "
        f"not accepted by the webhook within {_duration(max_age_seconds)} of the failure, "
        f"{failure.tries} failed tick(s); see the run in the UI's Runs page"
    )


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    return f"{seconds:g} s"
