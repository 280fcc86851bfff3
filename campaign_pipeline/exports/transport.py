"""What an exporter needs from HTTP, and the retry schedule both destinations share.

The resources implement ``Transport`` with ``requests``; the delivery code only sees
``Answer``s, whose text never holds a URL, a header or a body (so no secret can travel from a
failed request into a log line, an exception or the ledger).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange: ``status`` None when no answer came (connection refused or reset,
    timeout), with ``error`` a short description free of secrets."""

    status: int | None
    body: dict | None = None
    error: str = ""
    reached_server: bool = True  # False only when the request surely never arrived

    def describe(self) -> str:
        if self.status is None:
            return self.error or "no answer"
        text = ""
        if isinstance(self.body, dict):
            text = str(self.body.get("error") or "")
        return f"HTTP {self.status}" + (f" {text}" if text else "")


@dataclass
class Result:
    """The answer for one event: ``sent``, ``refused`` (the API or this side will never accept
    it as it is) or ``failed`` (may succeed on a later run)."""

    key: str
    status: str
    response_code: int | None
    requests: int
    detail: str = ""
    outage: bool = False  # failed every try for want of an answer or with 5xx: the service is down


class FatalExportError(Exception):
    """No later request of this export can succeed (a bad API key, a request-level field)."""


class Transport(Protocol):
    def post(self, path: str, body: bytes) -> Answer: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter, and Amplitude's throttle pause."""

    max_tries: int = 5
    """Five tries with backoff from 1 s span about 15 s of outage: a blip passes, a real outage
    fails the asset within a minute instead of holding the run."""
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 30.0
    throttle_pause_seconds: float = 30.0
    """Amplitude's HTTP V2 doc: pause a throttled user or device for 30 s (its Batch doc says
    about 15 s)."""
    max_throttle_rounds: int = 10
    """An event still throttled after ten pauses (5 minutes at 30 s) fails instead of holding
    the run; the next run sends it."""

    def __post_init__(self):
        if self.max_tries < 1 or self.max_throttle_rounds < 1:
            raise ValueError("max_tries and max_throttle_rounds must be at least 1")
        if min(self.backoff_base_seconds, self.backoff_max_seconds) < 0:
            raise ValueError("backoff seconds cannot be negative")
        if self.throttle_pause_seconds < 0:
            raise ValueError("throttle_pause_seconds cannot be negative")

    def backoff(self, failed_tries: int, rng: random.Random) -> float:
        """Delay before try ``failed_tries + 1``: half the exponential step plus a random
        half ("equal jitter"), so runs that failed together do not retry together."""
        step = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** (failed_tries - 1))
        return step / 2 + rng.uniform(0, step / 2)

    def worst_case_seconds(self) -> float:
        """The longest one batch can keep its events claimed before every one is answered."""
        backoff = sum(
            min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** (n - 1))
            for n in range(1, self.max_tries)
        )
        return backoff + self.max_throttle_rounds * self.throttle_pause_seconds


# What each RetryPolicy field does, its default and why: the launchpad's text of the same fields
# of the `ga4` and `amplitude` resources.
RETRY_DESCRIPTIONS = {
    "max_tries": (
        "Tries per request on a refused connection, 429 or 5xx. Default "
        f"{RetryPolicy.max_tries}: with backoff from 1 s they span about 15 s of outage, so a "
        "blip passes and a real outage fails the asset within a minute."
    ),
    "backoff_base_seconds": (
        "The first pause before a retry; each pause doubles (with jitter, so runs that failed "
        f"together do not retry together). Default {RetryPolicy.backoff_base_seconds:g} s."
    ),
    "backoff_max_seconds": (
        "No single pause before a retry is longer. Default "
        f"{RetryPolicy.backoff_max_seconds:g} s: a busy endpoint recovers in seconds, and a "
        "run should not wait minutes for a down one."
    ),
    "throttle_pause_seconds": (
        "How long a throttled user or device is held after a 429. Default "
        f"{RetryPolicy.throttle_pause_seconds:g} s: Amplitude's HTTP V2 doc (its Batch doc "
        "says about 15 s)."
    ),
    "max_throttle_rounds": (
        "An event still throttled after this many pauses fails instead of holding the run; "
        f"the next run sends it. Default {RetryPolicy.max_throttle_rounds}: 5 minutes at 30 s."
    ),
}


class Ga4Client(Protocol):
    """GA4 as the delivery code sees it: the resource adds the measurement id and the secret
    to the query string, out of sight."""

    def post(self, path: str, body: bytes) -> Answer: ...

    def display_url(self, path: str) -> str:
        """The request's URL with the secret replaced by a placeholder."""
        ...


class AmplitudeClient(Protocol):
    """Amplitude as the delivery code sees it: the resource puts the API key in the body."""

    overhead_bytes: int  # the encoded body without events, the API key included

    def post_events(self, payloads: list[dict]) -> Answer: ...

    def display_body(self, payloads: list[dict]) -> dict:
        """The request body with the API key replaced by a placeholder."""
        ...

    def display_url(self) -> str: ...
