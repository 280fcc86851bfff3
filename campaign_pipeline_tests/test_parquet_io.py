"""read_parquet: a column read as an Arrow dictionary gives the frame a plain read gives."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from campaign_pipeline.locations import Location
from campaign_pipeline.parquet_io import read_parquet


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path) -> Location:
    if request.param == "local":
        return Location(tmp_path / "root")
    return Location(request.getfixturevalue("s3_prefix"))


def _events(rows: int = 5_000) -> pd.DataFrame:
    """Rows sorted by campaign, as the staging tables are: every row group holds every day."""
    rng = np.random.default_rng(3)
    campaign = np.sort(rng.integers(0, 40, rows))
    return pd.DataFrame(
        {
            "lead_id": [f"lead-{i:06d}" for i in range(rows)],
            "campaign_id": [f"cmp-{c:03d}" if c else None for c in campaign],
            "added_date": pd.Timestamp("2025-01-06")
            + pd.to_timedelta(rng.integers(0, 90, rows), "D"),
            "revenue": np.where(rng.random(rows) < 0.1, np.nan, rng.random(rows) * 100),
            "platform": pd.Categorical(rng.choice(["meta", "google"], rows)),
        }
    )


def _write(root: Location, frame: pd.DataFrame, large: bool) -> Location:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if large:  # how pyarrow's CSV path stores text: large_string
        index = table.schema.get_field_index("campaign_id")
        table = table.set_column(index, "campaign_id", table["campaign_id"].cast(pa.large_string()))
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=1_000)
    path = root / "staging" / f"events_{'large' if large else 'plain'}.parquet"
    path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("arrow_strings", [False, True])
def test_a_dictionary_read_gives_the_plain_reads_frame(root, large, arrow_strings):
    path = _write(root, _events(), large)
    week = [
        ("added_date", ">=", pd.Timestamp("2025-02-03")),
        ("added_date", "<=", pd.Timestamp("2025-02-09")),
    ]
    for filters in (week, None):
        for columns in (None, ["campaign_id", "added_date", "revenue"], ["revenue"]):
            plain = read_parquet(
                path, columns=columns, filters=filters, arrow_strings=arrow_strings
            )
            # the categorical, a number column and a column the file lacks are named as well:
            # the categorical stays one, the others are read as they are
            read = read_parquet(
                path,
                columns=columns,
                filters=filters,
                arrow_strings=arrow_strings,
                dictionary=["campaign_id", "platform", "revenue", "absent"],
            )
            pd.testing.assert_frame_equal(read, plain)
            if columns is None:
                assert isinstance(read["platform"].dtype, pd.CategoricalDtype)
                assert not isinstance(read["campaign_id"].dtype, pd.CategoricalDtype)
    assert 0 < len(read_parquet(path, filters=week, dictionary=["campaign_id"])) < 5_000
