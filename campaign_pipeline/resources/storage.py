"""Where the pipeline reads and writes, as one Dagster resource.

Assets write their own Parquet (instead of returning DataFrames to an IO manager) because a
weekly asset then owns exactly the files of its partition window: re-running a week replaces
that week only, and a single-run backfill can write many weeks in one run, which Dagster's
default IO managers refuse to do for multi-partition outputs.

Layout under ``data_dir`` (the contract's "data dir"):

* ``raw/``        the exports users drop (read only)
* ``staging/``    raw snapshots (``raw_*.arrow``, the exports as text) and validated tables
                  (the validated layer; personal data stops here)
* ``out/``        published tables: ``<table>.parquet`` or ``<table>/<week_start>.parquet``

Both dirs may be local folders or object-store URLs (``s3://bucket/prefix``; see
``campaign_pipeline.locations`` for what each store needs and why a reader never sees half a
file). A step on another machine finds the tables of the steps before it when the dirs are on
a store both machines reach.

The defaults are resolved when a run uses the resource, in the process that runs the step, not
when the code location is imported: ``data_dir`` empty means ``$CAMPAIGN_PIPELINE_DATA_DIR``,
else the repo's ``data/``; ``out_dir`` empty means ``$CAMPAIGN_PIPELINE_OUT_DIR``, else
``<data dir>/out``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from pydantic import Field

from campaign_pipeline.locations import Location
from campaign_pipeline.parquet_io import column_range, parquet_source, read_parquet

DATA_DIR_ENV = "CAMPAIGN_PIPELINE_DATA_DIR"
OUT_DIR_ENV = "CAMPAIGN_PIPELINE_OUT_DIR"
REPO_DATA_DIR = Path(__file__).resolve().parents[2] / "data"
T = TypeVar("T")


def resolve_data_dir(configured: str | None = None) -> Location:
    """The data dir: ``configured``, else ``$CAMPAIGN_PIPELINE_DATA_DIR``, else the repo's
    ``data/`` (a local path is made absolute, a URL kept as it is)."""
    return Location(configured or os.environ.get(DATA_DIR_ENV) or REPO_DATA_DIR).resolved()


def resolve_out_dir(configured: str | None, data_dir: Location) -> Location:
    """The out dir: ``configured``, else ``$CAMPAIGN_PIPELINE_OUT_DIR``, else
    ``<data dir>/out``."""
    chosen = configured or os.environ.get(OUT_DIR_ENV)
    return Location(chosen).resolved() if chosen else data_dir / "out"


# The days a published figure can fall on: a delivery day, a lead's added day, a conversion
# day (`lead_events`: a lead's first change into a converted status, never before the lead was
# added; revenue falls on it too). A status change itself dates nothing: one that converts
# nothing, or one dated before its lead was added, must not open weeks that hold no figure.
DATED_TABLES = {
    "validated_insights": ("date",),
    "lead_events": ("added_date", "converted_date"),
}


def _parquet_writer(frame: pd.DataFrame):
    """Writes ``frame`` with a text column typed as text even when it holds no value.

    Arrow types an object column with no value (a week without flags, the first week's
    previous_bucket) as null. The folder of a weekly table would then hold files whose schemas
    disagree, and pandas and pyarrow refuse to read the folder as one table ("Unsupported cast
    from string to null"). The object columns of these tables hold text, so such a column is
    written as string.
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type):  # all null: the same nulls, typed
            column = pa.nulls(table.num_rows, pa.string())
            table = table.set_column(i, field.with_type(pa.string()), column)
    return lambda target: pq.write_table(table, target)


class PipelineStorage(dg.ConfigurableResource):
    """Locations of the data dir and out dir, and Parquet read/write for staging and published
    tables."""

    data_dir: str = Field(
        default="",
        description=(
            "The data dir (raw/, staging/): a local folder or an object-store URL "
            f"(s3://bucket/prefix). Default empty: ${DATA_DIR_ENV} when the run starts, else the "
            "repo's data/, so the shipped sample runs with no setting."
        ),
    )
    out_dir: str | None = Field(
        default="",
        description=(
            "Where the published tables go: a local folder or an object-store URL. Default "
            f"empty: ${OUT_DIR_ENV} when the run starts, else <data dir>/out, next to the data "
            "they come from."
        ),
    )

    @property
    def data_location(self) -> Location:
        return resolve_data_dir(self.data_dir)

    @property
    def raw_dir(self) -> Location:
        return self.data_location / "raw"

    @property
    def staging_dir(self) -> Location:
        return self.data_location / "staging"

    @property
    def published_dir(self) -> Location:
        return resolve_out_dir(self.out_dir, self.data_location)

    def raw_path(self, filename: str) -> Location:
        return self.raw_dir / filename

    # --- staging (validated layer) -----------------------------------------------------

    def staging_path(self, name: str) -> Location:
        return self.staging_dir / f"{name}.parquet"

    def write_staging(self, name: str, frame: pd.DataFrame | pa.Table) -> Location:
        path = self.staging_path(name)
        if isinstance(frame, pa.Table):
            path.write_atomically(lambda target: pq.write_table(frame, target))
        else:
            path.write_atomically(_parquet_writer(frame))
        return path

    @staticmethod
    def _not_materialized(path: Location, name: str) -> dg.Failure:
        return dg.Failure(
            description=f"{path} does not exist: materialize the asset `{name}` first"
        )

    def _existing(self, path: Location, name: str) -> Location:
        if not path.exists():
            raise self._not_materialized(path, name)
        return path

    def read_staging(
        self,
        name: str,
        columns: list[str] | None = None,
        filters: list | None = None,
        arrow_strings: bool = False,
        asset: str | None = None,
        dictionary: list[str] | None = None,
    ) -> pd.DataFrame:
        """A staging table (`read_parquet` says what the options do); ``asset``: the asset that
        writes it, when the table is not named after one (a file's quarantine)."""
        path = self.staging_path(name)
        try:
            return read_parquet(
                path,
                columns=columns,
                filters=filters,
                arrow_strings=arrow_strings,
                dictionary=dictionary,
            )
        except FileNotFoundError:
            raise self._not_materialized(path, asset or name) from None

    def accepted_day_range(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """The first and last day a published figure can fall on (`DATED_TABLES`), from the
        Parquet statistics of the tables' date columns (their footers, not millions of dates)."""
        days = []
        for table, columns in DATED_TABLES.items():
            for column in columns:
                found = column_range(self._existing(self.staging_path(table), table), column)
                if found is not None:
                    days += [pd.Timestamp(day) for day in found]
        if not days:
            return None
        return min(days).normalize(), max(days).normalize()

    def read_staging_table(
        self, name: str, columns: list[str] | None = None, filters: list | None = None
    ) -> pa.Table:
        """A staging table as Arrow (text stays in Arrow buffers); ``filters`` as in
        `read_parquet`."""
        path = self._existing(self.staging_path(name), name)
        return pq.read_table(parquet_source(path), columns=columns, filters=filters)

    def staging_rows(self, name: str) -> int:
        """The rows of a staging table, from its Parquet footer (no column is read)."""
        path = self._existing(self.staging_path(name), name)
        return pq.ParquetFile(parquet_source(path)).metadata.num_rows

    # --- raw snapshots (Arrow IPC: written once while streaming, read memory-mapped) ---

    def snapshot_path(self, name: str) -> Location:
        return self.staging_dir / f"{name}.arrow"

    def write_snapshot(self, name: str, write: Callable[[str], T]) -> T:
        """Call ``write(path)`` to write the Arrow IPC file ``name`` at a local path, published
        atomically like every staging write (on an object store: written to a local temporary
        file, then uploaded in one request); returns what ``write`` returns."""
        target = self.snapshot_path(name)
        if target.is_local:
            result: list[T] = []
            target.write_atomically(lambda tmp: result.append(write(tmp)))
            return result[0]
        with tempfile.TemporaryDirectory(prefix="snapshot-") as folder:
            local = os.path.join(folder, target.name)
            written = write(local)
            with open(local, "rb") as handle:
                target.write_atomically(lambda buffer: shutil.copyfileobj(handle, buffer))
        return written

    def snapshot_columns(self, name: str) -> list[str]:
        """A snapshot's column names, from its schema alone: an object-store snapshot is not
        downloaded whole to learn whether an optional column was exported."""
        path = self._existing(self.snapshot_path(name), name)
        with path.open_stream() as handle:
            return ipc.open_file(handle).schema.names

    def read_snapshot(self, name: str) -> pa.Table:
        """The snapshot, memory-mapped when local (columns are paged in only when used)."""
        path = self._existing(self.snapshot_path(name), name)
        if path.is_local:
            return ipc.open_file(pa.memory_map(str(path.local_path), "r")).read_all()
        return ipc.open_file(pa.BufferReader(path.read_bytes())).read_all()

    def write_staging_json(self, name: str, payload: dict) -> Location:
        path = self.staging_dir / f"{name}.json"
        path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
        return path

    def read_staging_json(self, name: str) -> dict:
        return json.loads((self.staging_dir / f"{name}.json").read_text())

    def record_export_time(self, key: str, when: dt.datetime) -> None:
        """When the raw export ``key`` was written (its file's modification time, or the time
        of a live pull), as the run that snapshots it sees it: `export_times`."""
        self.write_staging_json(
            f"exported_{key}", {"exported_at": when.astimezone(dt.UTC).isoformat()}
        )

    def export_times(self, keys) -> dict[str, dt.datetime]:
        """The recorded `record_export_time` of each of ``keys`` that has one (UTC)."""
        times = {}
        for key in keys:
            if (self.staging_dir / f"exported_{key}.json").exists():
                stored = self.read_staging_json(f"exported_{key}")["exported_at"]
                times[key] = dt.datetime.fromisoformat(stored)
        return times

    # --- weeks an export held back (`delivery.weeks_to_hold_back`) ----------------------

    def _held_dir(self, destination: str) -> Location:
        return self.staging_dir / "export_held" / destination

    def held_export_weeks(self, destination: str) -> list[str]:
        """The weeks whose events ``destination``'s live export held back and has not sent
        since: a file per week, so two runs at once never overwrite each other's."""
        return [path.stem for path in self._held_dir(destination).files(".json")]

    def mark_export_held(self, destination: str, week: str, why: str) -> None:
        (self._held_dir(destination) / f"{week}.json").write_text(json.dumps({"why": why}))

    def clear_export_held(self, destination: str, week: str) -> None:
        (self._held_dir(destination) / f"{week}.json").unlink()

    # --- published tables ---------------------------------------------------------------

    def table_path(self, table: str, week_start: str | None = None) -> Location:
        if week_start is None:
            return self.published_dir / f"{table}.parquet"
        return self.published_dir / table / f"{week_start}.parquet"

    def write_table(
        self, table: str, frame: pd.DataFrame, week_start: str | None = None
    ) -> Location:
        path = self.table_path(table, week_start)
        path.write_atomically(_parquet_writer(frame))
        return path

    def read_table(
        self,
        table: str,
        week_starts: list[str] | None = None,
        columns: list[str] | None = None,
        arrow_strings: bool = False,
    ) -> pd.DataFrame:
        """One table; for a weekly table, the given weeks (missing weeks are skipped) or all;
        ``columns``: only those; ``arrow_strings`` as in `read_parquet`."""
        single = self.table_path(table)
        if single.is_file():
            return read_parquet(single, columns=columns, arrow_strings=arrow_strings)
        stored = self.published_dir / table
        paths = stored.files(".parquet")
        if week_starts is not None:
            wanted = set(week_starts)
            paths = [p for p in paths if p.stem in wanted]
        frames = [read_parquet(p, columns=columns, arrow_strings=arrow_strings) for p in paths]
        frames = [f for f in frames if len(f)]
        if not frames:
            if not paths:
                return pd.DataFrame()
            return read_parquet(paths[0], columns=columns, arrow_strings=arrow_strings)
        return pd.concat(frames, ignore_index=True)

    def table_weeks(self, table: str) -> list[str]:
        return [p.stem for p in (self.published_dir / table).files(".parquet")]

    def published_tables(self, weeks: Iterable[str] | None = None) -> dict[str, int | None]:
        """Every table in the out dir: its number of weekly files (those of ``weeks`` only,
        when given), or None for a single file."""
        wanted = None if weeks is None else set(weeks)
        tables: dict[str, int | None] = {}
        for entry in self.published_dir.iterdir():
            if entry.name.endswith(".parquet"):
                tables[entry.stem] = None
            elif entry.is_dir():
                # weekly tables are Parquet; the weekly report's pages are HTML
                files = [*entry.files(".parquet"), *entry.files(".html")]
                tables[entry.name] = sum(wanted is None or f.stem in wanted for f in files)
        return tables
