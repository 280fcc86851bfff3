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

Writes go to a temporary file that is renamed into place, so a reader (another run, a
sensor, a person) never sees half a file.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from pydantic import Field

DATA_DIR_ENV = "CAMPAIGN_PIPELINE_DATA_DIR"
OUT_DIR_ENV = "CAMPAIGN_PIPELINE_OUT_DIR"
REPO_DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def default_data_dir() -> str:
    return os.environ.get(DATA_DIR_ENV) or str(REPO_DATA_DIR)


def default_out_dir() -> str | None:
    return os.environ.get(OUT_DIR_ENV) or None


def _atomic_write(path: Path, write):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        result = write(tmp)
        os.replace(tmp, path)
        return result
    finally:
        if tmp.exists():
            tmp.unlink()


class PipelineStorage(dg.ConfigurableResource):
    """Paths of the data dir and Parquet read/write for staging and published tables."""

    data_dir: str = Field(
        default_factory=default_data_dir, description=f"the data dir (env {DATA_DIR_ENV})"
    )
    out_dir: str | None = Field(
        default_factory=default_out_dir,
        description=f"published tables (env {OUT_DIR_ENV}); default <data_dir>/out",
    )

    @property
    def raw_dir(self) -> Path:
        return Path(self.data_dir) / "raw"

    @property
    def staging_dir(self) -> Path:
        return Path(self.data_dir) / "staging"

    @property
    def published_dir(self) -> Path:
        return Path(self.out_dir) if self.out_dir else Path(self.data_dir) / "out"

    # --- staging (validated layer) -----------------------------------------------------

    def staging_path(self, name: str) -> Path:
        return self.staging_dir / f"{name}.parquet"

    def write_staging(self, name: str, frame: pd.DataFrame | pa.Table) -> Path:
        path = self.staging_path(name)
        if isinstance(frame, pa.Table):
            _atomic_write(path, lambda tmp: pq.write_table(frame, tmp))
        else:
            _atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
        return path

    def _existing(self, path: Path, name: str) -> Path:
        if not path.exists():
            raise dg.Failure(
                description=f"{path} does not exist: materialize the asset `{name}` first",
            )
        return path

    def read_staging(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        return pd.read_parquet(self._existing(self.staging_path(name), name), columns=columns)

    def read_staging_table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """A staging table as Arrow (text stays in Arrow buffers)."""
        return pq.read_table(self._existing(self.staging_path(name), name), columns=columns)

    # --- raw snapshots (Arrow IPC: written once while streaming, read memory-mapped) ---

    def snapshot_path(self, name: str) -> Path:
        return self.staging_dir / f"{name}.arrow"

    def write_snapshot(self, name: str, write):
        """Call ``write(path)`` to write the Arrow IPC file ``name`` (atomically, like every
        staging write); returns what ``write`` returns."""
        return _atomic_write(self.snapshot_path(name), write)

    def read_snapshot(self, name: str) -> pa.Table:
        """The snapshot memory-mapped: columns are paged in only when used."""
        path = self._existing(self.snapshot_path(name), name)
        return ipc.open_file(pa.memory_map(str(path), "r")).read_all()

    def write_staging_json(self, name: str, payload: dict) -> Path:
        path = self.staging_dir / f"{name}.json"
        _atomic_write(
            path,
            lambda tmp: tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str)),
        )
        return path

    def read_staging_json(self, name: str) -> dict:
        return json.loads((self.staging_dir / f"{name}.json").read_text())

    # --- published tables ---------------------------------------------------------------

    def table_path(self, table: str, week_start: str | None = None) -> Path:
        if week_start is None:
            return self.published_dir / f"{table}.parquet"
        return self.published_dir / table / f"{week_start}.parquet"

    def write_table(self, table: str, frame: pd.DataFrame, week_start: str | None = None) -> Path:
        path = self.table_path(table, week_start)
        _atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
        return path

    def read_table(self, table: str, week_starts: list[str] | None = None) -> pd.DataFrame:
        """One table; for a weekly table, the given weeks (missing weeks are skipped) or all."""
        single = self.table_path(table)
        if single.exists():
            return pd.read_parquet(single)
        folder = self.published_dir / table
        if week_starts is None:
            paths = sorted(folder.glob("*.parquet"))
        else:
            paths = [p for p in (self.table_path(table, w) for w in week_starts) if p.exists()]
        frames = [pd.read_parquet(p) for p in paths]
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.read_parquet(paths[0]) if paths else pd.DataFrame()
        return pd.concat(frames, ignore_index=True)

    def table_weeks(self, table: str) -> list[str]:
        return sorted(p.stem for p in (self.published_dir / table).glob("*.parquet"))
