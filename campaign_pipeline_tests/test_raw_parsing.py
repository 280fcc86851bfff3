"""Arrow reading and the vectorized cell parsers give exactly pandas' reading: the fast paths
on the shapes real exports use, pandas itself on every odd cell and every odd file."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from campaign_pipeline import raw_parsing

ODD_DATES = [
    "",
    "2025-03-04 10:00:00",
    "2025-03-04",
    "03/04/2025",
    "2025-3-04",  # one-digit month: pandas reads it
    "2025-03-04 23:59:60",  # a leap second: the day's last instant (pandas: the next day)
    "2025-3-4 23:59:60",  # the same, on pandas' path
    "2025-03-04 23:59:61",  # no clock shows it: no time
    "2024-02-29",
    "2025-02-29",  # no such day
    "1677-09-22",
    "2262-04-12",  # beyond datetime64[ns]
    "9999-01-01",
    "13/01/2025",
    "2025-13-01",
    "2025-01-01 24:00:00",
    "not a date",
    "2025/01/01",
    "2025-01-01T10:00:00",
]

ODD_NUMBERS = [
    "",
    "0",
    "12",
    "1234.5",
    "1,234.5",
    "1,234,567.25",
    "12,50",
    "1,23",
    "0.1",
    "-5",
    "1e3",
    "inf",
    "-inf",
    "nan",
    "abc",
    "12.",
    ".5",
    "123456789012345678901234567890",
    "0.30000000000000004",
    "١٢",  # Arabic-Indic digits
]


def _random_dates(rng: np.random.Generator, n: int) -> list[str]:
    stamps = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 3 * 10**8, n), unit="s")
    shapes = rng.integers(0, 3, n)
    fmt = np.array(["%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%m/%d/%Y"])[shapes]
    return [s.strftime(f) for s, f in zip(stamps, fmt, strict=True)]


def _random_numbers(rng: np.random.Generator, n: int) -> list[str]:
    values = rng.random(n) * 10 ** rng.integers(0, 9, n)
    return [f"{v:.{d}f}" for v, d in zip(values, rng.integers(0, 7, n), strict=True)]


def test_strip_text_is_python_strip():
    cells = [" a ", "\tb\n", "\x1cc\x1f", "\u00a0d\u2003", "é ", "", "  ", "x y"]
    stripped = raw_parsing.strip_text(pa.array(cells))
    assert stripped.to_pylist() == [c.strip() for c in cells]


@pytest.mark.parametrize("seed", range(3))
def test_strip_text_is_python_strip_on_chunked_columns_with_and_without_edges(seed):
    """Columns with nothing to trim skip the trimming copy; either way the cells equal
    Python's strip (nulls read as blank)."""
    rng = np.random.default_rng(seed)
    alphabet = np.array(["a", "b", "é", " ", "\t", "\x1c", "\xa0", "\u2003"], dtype=object)
    for letters in (alphabet[:3], alphabet):  # nothing to trim, then every kind of edge
        cells = [
            "".join(rng.choice(letters, rng.integers(0, 5))) if rng.random() > 0.1 else None
            for _ in range(400)
        ]
        column = pa.chunked_array([pa.array(cells[:150]), pa.array(cells[150:])])
        stripped = raw_parsing.strip_text(column).to_pylist()
        assert stripped == [(cell or "").strip() for cell in cells]


@pytest.mark.parametrize("chunked", [False, True])
def test_text_codes_partition_the_cells_as_pandas_factorize(chunked):
    """Equal values share a code, different values never do, null is -1."""
    rng = np.random.default_rng(5)
    cells = [f"L{v}" if v >= 0 else None for v in rng.integers(-1, 40, 500)]
    column = (
        pa.chunked_array([pa.array(cells[:123]), pa.array(cells[123:])])
        if chunked
        else pa.array(cells)
    )
    codes = raw_parsing.text_codes(column)
    expected, _ = pd.factorize(pd.Series(cells, dtype=object))
    assert ((codes == -1) == (expected == -1)).all()
    known = expected >= 0
    pairs = set(zip(codes[known], expected[known], strict=True))
    assert len(pairs) == len(set(codes[known])) == len(set(expected[known]))


def test_upper_text_is_python_upper():
    cells = ["won", "Won", "straße", "ǆ", ""]
    assert raw_parsing.upper_text(pa.array(cells)).to_pylist() == [c.upper() for c in cells]


def test_timestamps_equal_pandas_on_random_and_odd_cells():
    cells = _random_dates(np.random.default_rng(7), 3000) + ODD_DATES
    parsed = raw_parsing.parse_timestamps_text(pa.array(cells))
    expected = raw_parsing.pandas_timestamps(pd.Series(cells, dtype=object)).to_numpy()
    np.testing.assert_array_equal(parsed, expected)
    # the odd corners really are odd: some parse, some do not
    odd = parsed[-len(ODD_DATES) :]
    assert np.isnat(odd).sum() not in (0, len(ODD_DATES))


def test_numbers_equal_pandas_on_random_and_odd_cells():
    cells = _random_numbers(np.random.default_rng(7), 3000) + ODD_NUMBERS
    values, bad = raw_parsing.parse_numbers_text(pa.array(cells))
    expected, expected_bad = raw_parsing.pandas_numbers(pd.Series(cells, dtype=object))
    np.testing.assert_array_equal(values, expected.to_numpy())
    np.testing.assert_array_equal(bad, expected_bad.to_numpy())
    assert bad[-len(ODD_NUMBERS) :].any() and not bad[:3000].any()


@pytest.mark.parametrize(
    "cell, value",
    [
        ("1,234.50", 1234.5),
        ("1,234,567", 1234567.0),
        ("-1,234", -1234.0),
        ("999,000.", 999000.0),
        ("12,50", None),  # a decimal comma: read as 1250 it would be 100 times too large
        ("1,23", None),
        ("1,2345", None),
        (",5", None),
        ("1,,234", None),
        ("1234,567", None),
    ],
)
def test_a_comma_is_only_a_thousands_separator(cell, value):
    values, bad = raw_parsing.parse_numbers_text(pa.array(["7", cell]))
    pandas_values, pandas_bad = raw_parsing.pandas_numbers(pd.Series(["7", cell], dtype=object))
    assert values[0] == 7.0 and not bad[0]
    if value is None:
        assert bad[1] and np.isnan(values[1])
    else:
        assert not bad[1] and values[1] == value
    np.testing.assert_array_equal(pandas_values.to_numpy(), values)
    np.testing.assert_array_equal(pandas_bad.to_numpy(), bad)


def _pandas_text(path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    frame.columns = [raw_parsing.normalise_header(c) for c in frame.columns]
    return frame


@pytest.mark.parametrize(
    "body",
    [
        "\ufeffId , Name\n1,a\n2, b \n",  # BOM, header spaces and case
        'id,name\n1,"multi\nline"\n2,"quoted, comma"\n',
        "\n\nid,name\n1,a\n",  # blank lines before the header
        "id,name\n1,a\n   \n2,b\n",  # whitespace-only line
    ],
)
def test_text_table_reads_as_pandas(tmp_path, body):
    path = tmp_path / "f.csv"
    path.write_text(body, encoding="utf-8")
    table = raw_parsing.read_text_table(path, ("id",))
    expected = _pandas_text(path)
    assert table.column_names == list(expected.columns)
    pd.testing.assert_frame_equal(table.to_pandas(), expected.reset_index(drop=True))


@pytest.mark.parametrize(
    ("body", "cells", "marked"),
    [
        # a spend cell dropped: read as it stands, the impressions would be the spend
        (
            "id,spend,impressions\n1,2.5,10\n2,5787\n3,1.0,4\n",
            [["1", "2.5", "10"], [], ["3", "1.0", "4"]],
            {1: 2},
        ),
        ("id,spend,impressions\n1,2.5,10\n2,1", [["1", "2.5", "10"], []], {1: 2}),  # cut off
        # one trailing comma on the first row: pandas took the ids for an index, shifting all
        ("id,spend,impressions\n1,2.5,10,\n2,1.0,4\n", [[], ["2", "1.0", "4"]], {0: 4}),
        ("id,spend,impressions\n1,2.5,10\n2,1.0,4,\n", [["1", "2.5", "10"], []], {1: 4}),
        # a quoted line break and blank lines: positions count rows, as the quarantine does
        (
            'id,spend,impressions\n1,"2\n5",10\n\n3,1.0\n4,5,6\n7,8,9,0\n',
            [["1", "2\n5", "10"], [], ["4", "5", "6"], []],
            {1: 2, 3: 4},
        ),
        # pandas' path (a whitespace-only line, blank lines before the header)
        (
            'id,spend,impressions\n1,"2\n5",10\n   \n3,1.0\n4,5,6\n',
            [["1", "2\n5", "10"], [], ["4", "5", "6"]],
            {1: 2},
        ),
        ("\nid,spend,impressions\n1,2.5,10,\n2,1.0,4\n", [[], ["2", "1.0", "4"]], {0: 4}),
    ],
)
def test_a_row_whose_cells_do_not_line_up_with_the_header_is_a_blank_row_in_its_place(
    tmp_path, body, cells, marked
):
    """No cell of such a row is read (which is extra or missing cannot be known); it keeps its
    place, and the field-count column says what is wrong, for validation to quarantine it."""
    path = tmp_path / "f.csv"
    path.write_text(body, encoding="utf-8")
    table = raw_parsing.read_text_table(path, ("id",))
    assert table.column_names == ["id", "spend", "impressions", raw_parsing.FIELD_COUNT_COLUMN]
    rows = table.drop_columns([raw_parsing.FIELD_COUNT_COLUMN]).to_pylist()
    assert [list(r.values()) for r in rows] == [c or ["", "", ""] for c in cells]
    assert table.column(raw_parsing.FIELD_COUNT_COLUMN).to_pylist() == [
        f"{marked[i]} fields where the header has 3" if i in marked else None
        for i in range(len(cells))
    ]


def test_a_file_whose_rows_line_up_has_no_field_count_column(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text('id,name\n1,"Smith, John"\n', encoding="utf-8")
    assert raw_parsing.read_text_table(path, ("id",)).column_names == ["id", "name"]


@pytest.mark.parametrize("pandas_path", [False, True])
def test_misaligned_rows_across_many_blocks_keep_their_places(tmp_path, monkeypatch, pandas_path):
    """Arrow reports a block's misaligned rows apart from its batch; put back between slices
    of the batches, every row is where the file has it, whichever reader read the file."""
    monkeypatch.setattr(raw_parsing, "_BLOCK_SIZE", 1 << 10)
    rng = np.random.default_rng(7)
    lines, expected = [], []
    for i in range(3000):
        fields = 3 + int(rng.choice([0, 0, 0, 0, 0, 0, 1, -1, 2]))
        lines.append(",".join(f"{i}.{k}" for k in range(fields)))
        expected.append(
            ([f"{i}.0", f"{i}.1", f"{i}.2"], None)
            if fields == 3
            else (["", "", ""], f"{fields} fields where the header has 3")
        )
    if pandas_path:
        lines.insert(1500, "  ")  # a whitespace-only line: Arrow refuses the file
    path = tmp_path / "f.csv"
    path.write_text("a,b,c\n" + "\n".join(lines) + "\n", encoding="utf-8")
    table = raw_parsing.read_text_table(path, ("a",))
    got = list(
        zip(
            [list(r.values()) for r in table.select(["a", "b", "c"]).to_pylist()],
            table.column(raw_parsing.FIELD_COUNT_COLUMN).to_pylist(),
            strict=True,
        )
    )
    assert got == expected


def test_a_header_may_not_use_the_field_count_columns_name(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text(f"id,{raw_parsing.FIELD_COUNT_COLUMN}\n1,2\n", encoding="utf-8")
    with pytest.raises(raw_parsing.RawFileError, match="reserved"):
        raw_parsing.read_text_table(path, ("id",))


def test_text_table_large_file_streams_in_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(raw_parsing, "_BLOCK_SIZE", 1 << 12)
    path = tmp_path / "f.csv"
    rows = [f"{i},name {i}" for i in range(5000)]
    path.write_text("id,name\n" + "\n".join(rows) + "\n")
    table = raw_parsing.read_text_table(path, ("id",))
    assert table.num_rows == 5000
    assert table.column("id").to_pylist() == [str(i) for i in range(5000)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name\n1\n", "f.csv, column 'id': required column missing"),
        ("id,ID\n1,2\n", "f.csv, column 'id': column appears twice in the header"),
        ("", "f.csv: file is empty (no header row)"),
    ],
)
def test_unusable_files_fail_in_one_line(tmp_path, body, message):
    path = tmp_path / "f.csv"
    path.write_text(body)
    with pytest.raises(raw_parsing.RawFileError) as caught:
        raw_parsing.read_text_table(path, ("id",))
    assert str(caught.value).endswith(message)
    assert "\n" not in str(caught.value)


def test_a_required_column_written_another_way_is_named_in_the_error(tmp_path):
    path = tmp_path / "f.csv"
    for header in ("Campaign ID", "campaign-id", "CampaignId"):
        path.write_text(f"id,{header}\n1,C1\n")
        with pytest.raises(raw_parsing.RawFileError) as caught:
            raw_parsing.read_text_table(path, ("id", "campaign_id"))
        assert str(caught.value) == (
            f"{path}, column 'campaign_id': required column missing (the header has "
            f"'{header.lower()}': name it campaign_id)"
        )


def test_missing_and_non_utf8_files_fail_in_one_line(tmp_path):
    with pytest.raises(raw_parsing.RawFileError, match="file not found"):
        raw_parsing.read_text_table(tmp_path / "absent.csv", ("id",))
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,name\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(raw_parsing.RawFileError) as caught:
        raw_parsing.read_text_table(path, ("id",))
    assert str(caught.value).endswith(
        "latin1.csv: not UTF-8 text (invalid continuation byte on line 2, at byte offset 13);"
        " save it as UTF-8"
    )


def test_a_byte_that_is_not_utf8_deep_in_a_file_is_named_by_its_line_and_offset(tmp_path):
    # far past the readers' buffers, whose own positions are relative to a block; and a
    # two-byte character cut by the locator's 1 MiB block boundary is still UTF-8
    header = b"id,name\n"
    row = b"1,caf\xc3\xa9\n"  # 8 bytes, the accent in UTF-8
    before = (1 << 20) - 6  # the row's accent starts 1 byte before the block boundary
    k = (before - len(header) - 3) // 6 - 1
    rows = header + b"1,abc\n" * k
    rows += b"1," + b"x" * (before - len(rows) - 3) + b"\n"
    assert len(rows) == before
    rows += row + b"1,abc\n" * 300_000
    bad_offset = len(rows) + len(b"1,caf")
    rows += b"1,caf\xe9\n" + b"1,abc\n" * 10
    path = tmp_path / "deep.csv"
    path.write_bytes(rows)
    with pytest.raises(raw_parsing.RawFileError) as caught:
        raw_parsing.read_text_table(path, ("id",))
    line = rows[:bad_offset].count(b"\n") + 1
    assert f"(invalid continuation byte on line {line:,}, at byte offset {bad_offset:,})" in str(
        caught.value
    )
    assert line > 300_000


def test_utf16_and_other_separators_are_named(tmp_path):
    path = tmp_path / "utf16.csv"
    path.write_bytes("id,name\n1,a\n".encode("utf-16"))
    with pytest.raises(raw_parsing.RawFileError, match="UTF-16 text .*; save it as UTF-8$"):
        raw_parsing.read_text_table(path, ("id",))
    for separator in (";", "\t"):
        path = tmp_path / "other.csv"
        path.write_text(f"id{separator}name\n1{separator}a\n")
        with pytest.raises(raw_parsing.RawFileError) as caught:
            raw_parsing.read_text_table(path, ("id",))
        assert str(caught.value).endswith(
            f"column 'id': required column missing (the header is one cell; the file looks "
            f"{separator!r}-separated, and the exports must be comma-separated)"
        )
    path.write_text("name\na\n")  # one column, nothing else in it: no guess
    with pytest.raises(raw_parsing.RawFileError) as caught:
        raw_parsing.read_text_table(path, ("id",))
    assert str(caught.value).endswith("column 'id': required column missing")


def test_a_short_row_that_is_not_utf8_is_named_as_not_utf8_in_one_line(tmp_path, monkeypatch):
    """A Python callback for Arrow's invalid rows got their text decoded first, and printed
    a UnicodeDecodeError traceback before the one line."""
    import sys

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    path = tmp_path / "f.csv"
    rows = b"".join(b"%d,name %d\n" % (i, i) for i in range(1000))  # past the header's bytes
    path.write_bytes(b"id,name\n" + rows + b"\xff\n")
    with pytest.raises(raw_parsing.RawFileError, match="not UTF-8 text .* on line 1,002"):
        raw_parsing.read_text_table(path, ("id",))
    assert unraisable == []  # no exception printed on the way


def test_a_leap_second_is_the_last_instant_of_its_own_day():
    """pandas reads 23:59:60 as midnight of the next day; the contract's day is the calendar
    date written, so a change at 23:59:60 on a Sunday belongs to that Sunday's week."""
    cells = [
        "2025-01-12 23:59:59",
        "2025-01-12 23:59:60",  # fast path
        "2025-1-12 23:59:60",  # pandas' path (a one-digit month)
        "2025-01-12 10:15:60",
        "2025-01-12 23:59:61",
    ]
    parsed = raw_parsing.parse_timestamps_text(pa.array(cells))
    days = parsed.astype("datetime64[D]").astype(str)
    assert list(days[:4]) == ["2025-01-12"] * 4
    assert parsed[1] == parsed[2] == np.datetime64("2025-01-12T23:59:59.999999999")
    assert parsed[0] < parsed[1]  # after the second before it, so a change's order holds
    assert parsed[3] == np.datetime64("2025-01-12T10:15:59.999999999")
    assert np.isnat(parsed[4])


@pytest.mark.parametrize(
    "cell, problem",
    [
        ("2025-02-30", "the day does not exist: February 2025 has 28 days"),
        ("2025-02-29 10:00:00", "the day does not exist: February 2025 has 28 days"),
        ("2025-04-31", "the day does not exist: April 2025 has 30 days"),
        ("2025-01-00", "the day does not exist: January 2025 has 31 days"),
        ("2025-13-01", "the day does not exist: there is no month 13"),
        ("13/01/2025", "there is no month 13; MM/DD/YYYY puts the month first"),
        ("02/30/2025", "the day does not exist: February 2025 has 28 days"),
        ("2025-01-01 24:00:00", "the time does not exist: hours run 00-23"),
        ("2025-01-01 10:60:00", "the time does not exist"),
        ("2025-01-01 23:59:61", "the time does not exist"),
        ("9999-01-01", "the year 9999 is outside what a timestamp holds"),
        ("2024-02-29", None),  # a leap day exists
        ("2025-03-04 23:59:60", None),  # a leap second exists
        ("yesterday", None),  # in no format: the format is what is wrong
        ("2025-03-04T10:00:00", None),
        ("", None),
    ],
)
def test_a_date_in_the_right_format_says_which_part_does_not_exist(cell, problem):
    found = raw_parsing.nonexistent_date(cell)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
