"""Asset metadata helpers: what a person sees for a materialization in the Dagster UI."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd

from campaign_pipeline.constants import PII_COLUMNS, SEVERITY_RANK


def most_severe_first(flags: pd.DataFrame) -> pd.DataFrame:
    """Flags in the order a reader should meet them: critical to low, surest first within a
    severity (a plain sort on the names puts low before medium)."""
    rank = flags["severity"].map(SEVERITY_RANK).fillna(-1).to_numpy()
    confidence = flags["confidence"].fillna(-1).to_numpy()
    return flags.iloc[np.lexsort((-confidence, -rank))]  # positions: an index may repeat


PREVIEW_ROWS = 10
"""Rows a Markdown preview shows."""


def markdown_preview(frame: pd.DataFrame, rows: int = PREVIEW_ROWS, max_width: int = 60) -> str:
    """The first rows as a Markdown table (personal-data columns never shown)."""
    if frame is None or frame.empty:
        return "_no rows_"
    shown = frame.drop(columns=[c for c in PII_COLUMNS if c in frame.columns]).head(rows).copy()
    for column in shown.columns:
        if shown[column].dtype == object:
            shown[column] = shown[column].astype(str).str.slice(0, max_width)
        elif pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].round(4)
    return shown.to_markdown(index=False)


def table_schema(frame: pd.DataFrame, model=None) -> dg.TableSchema:
    """The columns as stored, for the UI's Columns tab: a text column is ``string`` (pandas
    holds it as ``object``; the Parquet files store strings), and each column has the
    description of the pandera ``model`` the table is validated with, when given."""
    described = {}
    if model is not None:
        described = {name: column.description for name, column in model.to_schema().columns.items()}

    def kind(column: str, dtype) -> str:
        if pd.api.types.is_object_dtype(dtype) and (
            pd.api.types.infer_dtype(frame[column], skipna=True) == "string"
        ):
            return "string"
        return str(dtype)

    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=str(c), type=kind(c, t), description=described.get(c))
            for c, t in frame.dtypes.items()
        ]
    )
