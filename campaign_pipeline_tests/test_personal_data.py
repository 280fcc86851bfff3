"""What the quarantine withholds as personal data: emails and phones by their shape, never a
date, an amount or an id of the exports."""

import pyarrow as pa
import pytest

from campaign_pipeline.personal_data import (
    EMAIL,
    PHONE,
    personal_kind,
    quotes_personal,
    shaped_like_personal,
)


@pytest.mark.parametrize(
    "cell, kind",
    [
        ("dev_larsen243@example.com", EMAIL),
        (" Nia.Berg+news@mail.example.co.uk ", EMAIL),
        ("call ann@example.com", EMAIL),
        ("+1 555 021 1797", PHONE),  # the sample's phones
        ("+15550211797", PHONE),
        ("(555) 021-1797", PHONE),
        ("555.021.1797", PHONE),
        ("555-0211", PHONE),  # a local number with its dash
        ("5550211797", PHONE),  # ten bare digits
        ("+44 20 7946 0958", PHONE),
        ("2025-02-26", None),  # the contract's dates
        ("02/26/2025", None),
        ("2025-02-30", None),  # a date that does not exist is still no phone
        ("2025-02-26 15:40:08", None),
        ("1234567.50", None),  # amounts
        ("-1234567", None),
        ("1,234,567.50", None),
        ("3000000", None),  # ids and counts below ten bare digits
        ("LD3000000", None),
        ("CMP100000", None),
        ("NOT_INTERESTED", None),
        ("1-2-3", None),
        ("", None),
        (None, None),
        ("+1 555 0123 4567 8901 2345", None),  # more digits than any phone number
    ],
)
def test_personal_kind(cell, kind):
    assert personal_kind(cell) == kind
    # the whole-column check agrees, cell for cell, alone and among other cells
    assert shaped_like_personal(pa.array([cell], pa.string())).tolist() == [kind is not None]


def test_the_whole_column_check_agrees_with_the_cell_check():
    cells = ["NEW", "ann@x.io", None, "+1 555 021 1797", "DONE_DEAL", "ann@x.io", "2025-02-26"]
    cells += ["5550211797", "3000000", "", "+1 555 021 1797", "NEW"]
    column = pa.chunked_array([cells[:5], cells[5:]], pa.string())
    expected = [personal_kind(c) is not None for c in cells]
    assert shaped_like_personal(column).tolist() == expected
    assert sum(expected) == 5


def test_a_reason_quoting_a_phone_or_holding_an_email_is_personal():
    assert quotes_personal("unparseable date: '+1 555 021 1797' is not YYYY-MM-DD")
    assert quotes_personal("lead_status: ann@example.com")
    assert not quotes_personal("unparseable date: '2025-02-30' has the right format, but ...")
    assert not quotes_personal("date out of range: 2030-01-01 is after 2026-12-07")
