"""Reading one Parquet file from a local folder or an object store.

Kept apart from the storage resource so that a worker process reading published tables (a
weekly report page) imports pandas and pyarrow, not Dagster.
"""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from campaign_pipeline.locations import Location

_ARROW_STRINGS = {
    pa.string(): pd.StringDtype("pyarrow"),
    pa.large_string(): pd.StringDtype("pyarrow"),
}


def parquet_source(location: Location):
    """What pandas and pyarrow read a Parquet file from: its path, or its bytes fetched in one
    request from an object store."""
    return location.local_path if location.is_local else io.BytesIO(location.read_bytes())


def read_parquet(
    location: Location,
    columns: list[str] | None = None,
    filters: list | None = None,
    arrow_strings: bool = False,
) -> pd.DataFrame:
    """One Parquet file, local or on an object store. ``filters`` (pyarrow's row filters)
    keep the matching rows, in the file's order, before they become a DataFrame.
    ``arrow_strings``: text columns stay in Arrow buffers (``string[pyarrow]``) instead of
    becoming a Python object per cell, which is most of the cost of reading millions of ids."""
    if not arrow_strings:
        return pd.read_parquet(parquet_source(location), columns=columns, filters=filters)
    table = pq.read_table(parquet_source(location), columns=columns, filters=filters)
    return table.to_pandas(types_mapper=_ARROW_STRINGS.get)


def column_range(location: Location, column: str) -> tuple[object, object] | None:
    """The smallest and largest non-null value of ``column`` (None when it has none), from the
    statistics in the file's footer: a few kB read, not millions of values. A row group
    written without statistics has its column read instead."""
    with location.open_stream() as handle:
        parquet = pq.ParquetFile(handle)
        index = parquet.schema_arrow.get_field_index(column)
        lows, highs = [], []
        for group in range(parquet.metadata.num_row_groups):
            chunk = parquet.metadata.row_group(group).column(index)
            stats = chunk.statistics
            if stats is not None and stats.has_min_max:
                lows.append(stats.min)
                highs.append(stats.max)
            elif stats is None or stats.null_count != chunk.num_values:
                values = parquet.read_row_group(group, columns=[column]).column(0).drop_null()
                if len(values):
                    lows.append(pc.min(values).as_py())
                    highs.append(pc.max(values).as_py())
    if not lows:
        return None
    return min(lows), max(highs)
