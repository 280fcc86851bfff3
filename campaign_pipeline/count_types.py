"""The pandera types of the counts in the published tables: a count is an integer.

Leads, clicks, impressions, conversions, days active, campaigns: a reader of a published table
gets them as integers, ``12`` and never ``12.0``. `Count` is a count that is always known
(``int64``); `NullableCount` one that may be unknown (pandas' nullable ``Int64``: an
insights export can leave impressions blank, and blank is not zero).

The published models coerce their columns (``coerce=True``), and pandera's own integer types
would coerce a float column too (``12.0`` becomes ``12``, and ``12.5`` becomes ``12`` without a
word), so the table as written is never what the check saw. These two types coerce only from
an integer type (any width: a Parquet round trip may narrow one) and refuse a float column,
even one holding whole numbers, so a count published as float fails the table's schema check
(and the validation before it is written).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandera import dtypes
from pandera.engines import pandas_engine


def _require_integer_type(data: pd.Series | pd.DataFrame, kind: str) -> None:
    """Raise unless ``data`` holds an integer type (an empty object column, as a frame built
    from column names alone has, holds no value to be wrong)."""
    for dtype in data.dtypes if isinstance(data, pd.DataFrame) else [data.dtype]:
        if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            continue
        if pd.api.types.is_object_dtype(dtype) and len(data) == 0:
            continue
        raise TypeError(f"a count is an integer ({kind}), not {dtype}")


def _is_integer_value(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


@pandas_engine.Engine.register_dtype
@dtypes.immutable
class Count(pandas_engine.DataType, dtypes.Int):
    """A count that is always known: ``int64``; any integer type coerces to it, a float does
    not."""

    type = np.dtype("int64")
    bit_width: int = 64

    def coerce(self, data_container):
        _require_integer_type(data_container, "int64")
        return data_container.astype(self.type)

    def coerce_value(self, value):
        # pandera's list of failure cases: every float is one, even a whole one
        if not _is_integer_value(value):
            raise TypeError(f"{value!r} is not an integer")
        return self.type.type(value)


@pandas_engine.Engine.register_dtype
@dtypes.immutable
class NullableCount(pandas_engine.DataType, dtypes.Int):
    """A count that may be unknown: pandas' nullable ``Int64`` (null, not NaN, where it is
    unknown); any integer type coerces to it, a float does not."""

    type = pd.Int64Dtype()
    bit_width: int = 64

    def coerce(self, data_container):
        _require_integer_type(data_container, "Int64")
        return data_container.astype(self.type)

    def coerce_value(self, value):
        if value is pd.NA:
            return value
        if not _is_integer_value(value):
            raise TypeError(f"{value!r} is not an integer")
        return int(value)
