"""The Dagster instance storage the repo's `dagster.yaml` uses: PostgreSQL when the
`DAGSTER_PG_*` variables are set, else embedded SQLite in a folder that survives restarts.

Why a storage class instead of two config files: the commands a Dagster user types in the repo
root (`dagster dev`, `dagster asset materialize ...`, `dagster definitions validate`) read
`./dagster.yaml` when `DAGSTER_HOME` is unset, and a YAML file cannot choose between servers.
Dagster's `storage: custom:` hook can: this class is that choice. It is made again in every
process Dagster starts (webserver, daemon, code server, run workers) from the same
environment, so they all agree; the choice is printed once, by the first process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dagster import Field, StringSource
from dagster._core.storage.base_storage import DagsterStorage
from dagster._serdes import ConfigurableClass, ConfigurableClassData

PG_VARIABLES = (
    "DAGSTER_PG_HOST",
    "DAGSTER_PG_PORT",
    "DAGSTER_PG_USER",
    "DAGSTER_PG_PASSWORD",
    "DAGSTER_PG_DB",
)
# Set by the first process that resolves the storage: the absolute SQLite folder (so run
# workers started elsewhere use the same one) and that the choice was announced.
RESOLVED_DIR_ENV = "CAMPAIGN_PIPELINE_INSTANCE_DIR"
ANNOUNCED_ENV = "CAMPAIGN_PIPELINE_INSTANCE_ANNOUNCED"
DEFAULT_SQLITE_DIR = ".dagster_home/storage"


class InstanceChoiceError(Exception):
    """Some but not all DAGSTER_PG_* variables are set: a half-configured server is a mistake,
    not a reason to fall back to SQLite silently."""


def postgres_settings(environ: os._Environ | dict = os.environ) -> dict | None:
    """The PostgreSQL connection from the environment, None when no DAGSTER_PG_* is set."""
    present = {name: environ.get(name, "") for name in PG_VARIABLES}
    if not any(present.values()):
        return None
    missing = [name for name, value in present.items() if not value]
    if missing:
        raise InstanceChoiceError(
            f"PostgreSQL instance half configured: {', '.join(missing)} unset "
            f"(set all of {', '.join(PG_VARIABLES)}, or none for embedded SQLite)"
        )
    port = present["DAGSTER_PG_PORT"].strip()
    if not port.isdigit():
        raise InstanceChoiceError(f"DAGSTER_PG_PORT {port!r} is not a port number")
    return {
        "hostname": present["DAGSTER_PG_HOST"],
        "port": int(port),
        "username": present["DAGSTER_PG_USER"],
        "password": present["DAGSTER_PG_PASSWORD"],
        "db_name": present["DAGSTER_PG_DB"],
    }


def sqlite_dir(configured: str, environ: os._Environ | dict = os.environ) -> Path:
    """The SQLite folder: the one an earlier process resolved, else ``configured`` (relative
    to the current folder, which for the repo's dagster.yaml is the repo root)."""
    return Path(environ.get(RESOLVED_DIR_ENV) or Path(configured).expanduser().resolve())


def _announce(message: str) -> None:
    if not os.environ.get(ANNOUNCED_ENV):
        os.environ[ANNOUNCED_ENV] = "1"
        print(f"campaign_pipeline: Dagster instance storage: {message}", file=sys.stderr)


class EnvironmentChosenStorage(DagsterStorage, ConfigurableClass):
    """Delegates to Dagster's PostgreSQL or SQLite storage, chosen from the environment."""

    def __init__(self, inner: DagsterStorage, inst_data: ConfigurableClassData | None = None):
        self._inner = inner
        self._inst_data = inst_data
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls):
        return {
            "sqlite_dir": Field(
                StringSource,
                is_required=False,
                default_value=DEFAULT_SQLITE_DIR,
                description="where embedded SQLite keeps runs and events when no server is set",
            )
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value):
        settings = postgres_settings()
        if settings is not None:
            from dagster_postgres import DagsterPostgresStorage
            from dagster_postgres.utils import get_conn_string

            inner = DagsterPostgresStorage(postgres_url=get_conn_string(**settings))
            _announce(
                f"PostgreSQL {settings['username']}@{settings['hostname']}:{settings['port']}"
                f"/{settings['db_name']} (from DAGSTER_PG_*)"
            )
        else:
            from dagster._core.storage.sqlite_storage import DagsterSqliteStorage

            folder = sqlite_dir(config_value.get("sqlite_dir", DEFAULT_SQLITE_DIR))
            folder.mkdir(parents=True, exist_ok=True)
            os.environ[RESOLVED_DIR_ENV] = str(folder)
            inner = DagsterSqliteStorage.from_local(str(folder))
            _announce(f"embedded SQLite in {folder} (set DAGSTER_PG_* to use PostgreSQL)")
        return cls(inner, inst_data=inst_data)

    @property
    def event_log_storage(self):
        return self._inner.event_log_storage

    @property
    def run_storage(self):
        return self._inner.run_storage

    @property
    def schedule_storage(self):
        return self._inner.schedule_storage

    def register_instance(self, instance) -> None:
        super().register_instance(instance)
        self._inner.register_instance(instance)

    def dispose(self) -> None:
        for storage in (self.run_storage, self.event_log_storage, self.schedule_storage):
            storage.dispose()
