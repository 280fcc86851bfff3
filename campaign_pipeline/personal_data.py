"""Recognising personal data by its shape, so it cannot leave the validated layer by accident.

The lead file's personal columns (name, email, phone; ``constants.PII_COLUMNS``) are dropped by
name. A row whose cells shifted (an unquoted comma inside a name, with a cell missing further
on, so the field count still matches the header) carries the email or the phone in another
column: in ``lead_status``, in ``added_date``. Such a row is quarantined, and the quarantine is
published, so its shown cells and its reason are checked by shape too (``ingestion`` withholds
what this module recognises).

Pure functions, no pandas: they run on the few rejected rows only (and, in the
``quarantine`` asset's check ``no_personal_data``, on the published leads rows). The one
exception, `shaped_like_personal`, checks a whole column (every lead's ``lead_status``) in
Arrow, so a shifted row whose cells all parse is quarantined rather than accepted with a
phone for a status.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EMAIL = "an e-mail address"
PHONE = "a phone number"

# Anything@anything.tld, anywhere in the cell: a shifted cell is a whole email, but a cell
# that quotes one ("ann@example.com (old)") carries it as well.
_EMAIL = re.compile(r"[^\s@'\"]+@[^\s@'\"]+\.[^\s@'\"]+")
# A phone is digits with the separators people write (spaces, dashes, dots, brackets, slashes)
# and an optional leading +. Dates and numbers share the alphabet, so they are told apart below.
_PHONE_CHARACTERS = re.compile(r"^\+?[0-9 ().\-/]+$")
# The contract's date shapes (a cell of one is a date, possible or not, never a phone).
_DATE = re.compile(r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}$|^[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}$")
# A number as a numeric column holds it: digits with at most one decimal point, or negative.
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_PLAIN_DIGITS = re.compile(r"^\+?[0-9]+$")

PHONE_DIGITS = (7, 15)
"""A phone number written with separators or a leading + has 7 (a local number) to 15 digits
(the longest international number, ITU-T E.164)."""
BARE_PHONE_DIGITS = 10
"""Digits alone read as a phone from 10 digits (a national number with its area code, as the
sample's exports write none shorter); shorter runs are ids and counts."""


def personal_kind(value: object) -> str | None:
    """``EMAIL`` or ``PHONE`` when a cell's text has the shape of one, else None.

    Deliberately wide: withholding a deal value of 12 digits costs an analyst a look at the raw
    file (the quarantine keeps the line number); publishing a phone cannot be undone.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _EMAIL.search(text):
        return EMAIL
    if not _PHONE_CHARACTERS.match(text) or _DATE.match(text):
        return None
    digits = sum(ch.isdigit() for ch in text)
    if _PLAIN_DIGITS.match(text) and not text.startswith("+"):
        return PHONE if BARE_PHONE_DIGITS <= digits <= PHONE_DIGITS[1] else None
    if _NUMBER.match(text):
        return None
    return PHONE if PHONE_DIGITS[0] <= digits <= PHONE_DIGITS[1] else None


# Every cell `personal_kind` can call personal holds an "@" or a digit: the rest of a column
# (a status is a word) is ruled out in Arrow, and the few distinct candidates are judged here.
_CANDIDATE = r"[@0-9]"


def shaped_like_personal(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Which cells of a text column `personal_kind` calls personal (null is not), without a
    Python call per row: one per distinct cell holding an "@" or a digit."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    candidate = pc.fill_null(pc.match_substring_regex(values, _CANDIDATE), False)
    if not pc.any(candidate).as_py():
        return np.zeros(len(values), dtype=bool)
    distinct = pc.unique(pc.filter(values, candidate)).to_pylist()
    personal = pa.array([v for v in distinct if personal_kind(v)], pa.string())
    found = pc.is_in(values, value_set=personal)
    return pc.fill_null(found, False).to_numpy(zero_copy_only=False)


def withheld_text(kind: str) -> str:
    """What a withheld cell shows in its place."""
    return f"<withheld: looks like {kind}>"


_QUOTED = re.compile(r"'([^']*)'")


def shaped_fields(raw_values: str) -> list[str]:
    """The fields of a quarantine row's ``raw_values`` (JSON of text cells) whose value looks
    like personal data."""
    try:
        record = json.loads(raw_values)
    except (TypeError, ValueError):
        return []
    if not isinstance(record, dict):
        return []
    return sorted(key for key, value in record.items() if personal_kind(value))


def quotes_personal(reason: str) -> bool:
    """Whether a reason holds an email address, or quotes a cell ('...') shaped like a phone."""
    if not isinstance(reason, str):
        return False
    if _EMAIL.search(reason):
        return True
    return any(personal_kind(quoted) for quoted in _QUOTED.findall(reason))
