"""The plumbing every weekly asset shares: which weeks a run covers, how much history it
reads, how it writes its weeks and what it reports.

A weekly asset writes its own Parquet per week (not through an IO manager) so that a run
owns exactly the files of its partition window: re-running one week replaces that week
only, and a single-run backfill writes a whole range in one run.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import dagster as dg
import pandas as pd
import pyarrow.compute as pc

from campaign_pipeline.constants import PROGRESS_PREFIX
from campaign_pipeline.metadata import markdown_preview, table_schema
from campaign_pipeline.metrics import DEAL_VALUE
from campaign_pipeline.partitions import describe_weeks, history_missing_weeks
from campaign_pipeline.resources.storage import DATED_TABLES, PipelineStorage, read_parquet
from campaign_pipeline.run_summary import none_accepted_stop
from campaign_pipeline.schemas import validate_frame


def history_weeks(days: int) -> int:
    """Whole weeks of stored history that cover ``days`` days before a judged week."""
    return math.ceil(days / 7)


# A weekly asset reads history of its upstream tables (anomaly_flags 8 weeks of daily metrics,
# campaign_health 4, the report last week's buckets and totals), but declares a dependency on
# the same week only. A history window declared as a partition mapping (start_offset=-8) makes
# Dagster's asset backfill of weeks A..B also target every later week that reads them as
# history: a range picked in the UI grew by 8 weeks, split into several runs, and failed on, or
# would silently recompute and export, weeks nobody picked. The readers handle history weeks
# that were never materialized themselves (fewer judgements, and a warning naming them).


# How often a long step says how far it is: often enough that a run of minutes is not silent,
# seldom enough that a year's run logs a few dozen lines, not one per week.
PROGRESS_EVERY_SECONDS = 30.0


def progress_logger(context: dg.AssetExecutionContext, what: str) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback for a long step: it logs
    ``progress: 12 of 53 weeks judged (95 s)`` at most every `PROGRESS_EVERY_SECONDS`, and
    never for the last piece (the step's end says that)."""
    every = PROGRESS_EVERY_SECONDS
    started = last = time.monotonic()

    def report(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done < total and now - last >= every:
            last = now
            context.log.info(
                f"{PROGRESS_PREFIX}{done:,} of {total:,} {what} ({now - started:.0f} s)"
            )

    return report


def require_run_weeks(storage: PipelineStorage, weeks: RunWeeks, *tables: str) -> None:
    """Fail, naming them, when a table an asset reads for its own weeks was never materialized
    for some of them (one asset picked alone in the UI).

    History weeks may be missing (the readers judge on less and warn); a run's own week may
    not: the asset would publish that week from nothing, as if it had been judged (no flags,
    no buckets, nothing to send), or fail on a table without columns.
    """
    for table in tables:
        stored = set(storage.table_weeks(table))
        missing = [week for week in weeks.keys if week not in stored]
        if missing:
            raise dg.Failure(
                description=f"{table} has never been materialized for {describe_weeks(missing)} "
                "of this run: materialize it for the run's weeks first (this asset with its "
                "upstream assets)"
            )


def refuse_files_with_none_accepted(storage: PipelineStorage) -> None:
    """Fail with `run_summary.none_accepted_stop`'s line when the validated layer holds a raw
    file with rows and none accepted. In a run with the ingestion assets the blocking check
    ``quarantine:every_file_has_accepted_rows`` has stopped the run already; this stops a run
    of the weekly or lifetime assets alone (a backfill picked in the UI, `weekly_assets_job`)
    on such a layer, which would publish and export weeks without the file's figures."""
    stop = none_accepted_stop(storage)
    if stop is not None:
        raise dg.Failure(description=stop)


def data_weeks(
    storage: PipelineStorage, first_week: str | None = None, last_week: str | None = None
) -> set[str]:
    """The weeks (Monday keys) with accepted delivery or a lead event (`DATED_TABLES`, the
    days the run's weeks come from): those whose daily metrics hold rows; with ``first_week``
    and ``last_week``, only those of that stretch. Only the date columns are read (the rows of
    the stretch's days, when given), and reduced to their distinct days before any is
    converted, so millions of rows cost one column scan each."""
    days = []
    for name, columns in DATED_TABLES.items():
        for column in columns:  # one at a time: a year's leads are millions of dates a column
            filters = None
            if first_week is not None and last_week is not None:
                end = pd.Timestamp(shift_week(last_week, 1))  # the Monday after the stretch
                filters = [(column, ">=", pd.Timestamp(first_week)), (column, "<", end)]
            dates = storage.read_staging_table(name, columns=[column], filters=filters).column(0)
            days.append(pd.to_datetime(pd.Series(pc.unique(dates.drop_null()).to_pandas())))
    found = pd.concat(days, ignore_index=True) if days else pd.Series([], dtype="datetime64[ns]")
    mondays = (found - pd.to_timedelta(found.dt.weekday, unit="D")).dt.normalize()
    return set(mondays.dt.strftime("%Y-%m-%d"))


def history_never_materialized(
    context: dg.AssetExecutionContext,
    storage: PipelineStorage,
    table: str,
    first_week: str,
    last_week: str,
    consequence: str,
) -> list[str]:
    """The weeks first_week..last_week of ``table`` that a run reads as history, that hold
    accepted data, but were never materialized, said in a warning ending with
    ``consequence`` (what the run publishes without them, and how to get what the Monday runs
    give). A reader skips such weeks: one week picked alone in the UI on a fresh instance
    would otherwise publish numbers judged on less history with nothing to say so."""
    missing = history_missing_weeks(
        storage.table_weeks(table),
        first_week,
        last_week,
        lambda first, last: data_weeks(storage, first, last),
    )
    if missing:
        context.log.warning(
            f"{table} has never been materialized for {describe_weeks(missing)}, though they "
            f"hold accepted delivery or lead events: {consequence}"
        )
    return missing


def week_bounds(week_start: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(week_start)
    return start, start + pd.Timedelta(days=6)


def shift_week(week_start: str, weeks: int) -> str:
    return (dt.date.fromisoformat(week_start) + dt.timedelta(weeks=weeks)).isoformat()


@dataclass(frozen=True)
class RunWeeks:
    """The week keys a run materializes: one for a normal run, many in a single-run backfill."""

    keys: tuple[str, ...]

    @classmethod
    def of(cls, context: dg.AssetExecutionContext) -> RunWeeks:
        return cls(tuple(context.partition_keys))

    @property
    def first(self) -> str:
        return self.keys[0]

    @property
    def last(self) -> str:
        return self.keys[-1]

    @property
    def start(self) -> pd.Timestamp:
        """The first Monday of the run."""
        return week_bounds(self.first)[0]

    @property
    def end(self) -> pd.Timestamp:
        """The last Sunday of the run."""
        return week_bounds(self.last)[1]

    def history_start(self, weeks_before: int) -> str:
        """The first week to read for ``weeks_before`` weeks of history before the run."""
        return shift_week(self.first, -weeks_before)

    def blocks(self, size: int) -> Iterator[RunWeeks]:
        """The run's weeks in consecutive blocks of at most ``size`` weeks, in order."""
        for first in range(0, len(self.keys), max(1, size)):
            yield RunWeeks(self.keys[first : first + max(1, size)])


def read_weeks(
    storage: PipelineStorage,
    table: str,
    first_week: str,
    last_week: str,
    columns: list[str] | None = None,
    arrow_strings: bool = False,
) -> pd.DataFrame:
    """The stored weekly partitions of ``table`` from first_week to last_week (missing ones
    skipped), all columns or ``columns`` (``arrow_strings``: text stays in Arrow buffers)."""
    weeks, week = [], first_week
    while week <= last_week:
        weeks.append(week)
        week = shift_week(week, 1)
    return storage.read_table(table, weeks, columns, arrow_strings=arrow_strings)


def split_by_week(frame: pd.DataFrame, date_column: str) -> dict[str, pd.DataFrame]:
    return dict(_weekly_parts(frame, date_column))


def _weekly_parts(frame: pd.DataFrame, date_column: str):
    """(week, rows of that week) for each week with rows, one part at a time."""
    monday = frame[date_column] - pd.to_timedelta(frame[date_column].dt.weekday, unit="D")
    for ts, part in frame.groupby(monday.dt.normalize()):
        yield ts.date().isoformat(), part


def write_run_weeks(
    storage: PipelineStorage,
    table: str,
    frame: pd.DataFrame,
    weeks: RunWeeks,
    date_column: str,
) -> dict[str, int]:
    """One file per week of the run, an empty one for a week without rows (so the week is
    done and a reader can tell "no rows" from "never ran"). Returns the rows per week.

    Each week's rows are written as they are split off, so a range of a year is not held
    twice."""
    counts = dict.fromkeys(weeks.keys, 0)
    if len(frame):
        for week, part in _weekly_parts(frame, date_column):
            if week in counts:
                storage.write_table(table, part.reset_index(drop=True), week)
                counts[week] = len(part)
    for week, count in counts.items():
        if not count:
            storage.write_table(table, frame.iloc[0:0], week)
    return counts


@dataclass
class StoredWeeks:
    """What a run's weeks hold once written, as `check_stored_weeks` read them back."""

    schema: dg.AssetCheckResult  # the pandera model on every stored week
    rows: int
    totals: dict[str, float]  # column -> sum over the stored rows (of `totals_of`)


# Rows re-validated per pandera call when a run's stored weeks are checked: validating costs a
# fixed overhead per call (tens of ms) on top of its work per row, so a year of small weeks is
# checked in a few batches, while a batch of a large account stays a fraction of its year.
CHECK_BATCH_ROWS = 500_000


def check_stored_weeks(
    storage: PipelineStorage,
    table: str,
    weeks: RunWeeks,
    model,
    total_columns: Sequence[str] = (),
    totals_of=None,
) -> StoredWeeks:
    """Re-validate the run's stored weeks and sum ``total_columns`` over them (over the rows
    ``totals_of(frame)`` keeps, when given), reading the weeks' files in batches of about
    `CHECK_BATCH_ROWS` rows: the checks read what was written, not what was meant to be,
    without holding a year's table a second time."""
    totals = dict.fromkeys(total_columns, 0.0)
    rows, failure, batch, batch_rows = 0, None, [], 0

    def check(frames: list[pd.DataFrame]) -> None:
        nonlocal failure
        frames = [frame for frame in frames if len(frame)] or frames[:1]
        stored = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        counted = totals_of(stored) if totals_of is not None and len(stored) else stored
        for column in total_columns:
            totals[column] += column_total(counted, column)
        if failure is None:  # the first failing batch's errors are the check's description
            failure = _schema_failure(model, stored)

    for week in weeks.keys:
        # every week of the run has its file (write_run_weeks): read it by name, no listing
        stored = read_parquet(storage.table_path(table, week))
        rows += len(stored)
        batch.append(stored)
        batch_rows += len(stored)
        if batch_rows >= CHECK_BATCH_ROWS:
            check(batch)
            batch, batch_rows = [], 0
    if batch:
        check(batch)
    return StoredWeeks(schema=_schema_result("schema", failure, rows), rows=rows, totals=totals)


def weekly_result(
    storage: PipelineStorage,
    table: str,
    frame: pd.DataFrame,
    counts: Mapping[str, int],
    *,
    check_results: Sequence[dg.AssetCheckResult] = (),
    preview: pd.DataFrame | None = None,
    metadata: Mapping[str, object] | None = None,
    model=None,
) -> dg.MaterializeResult:
    """What every weekly asset reports: rows in total and per week, where the files are, a
    Markdown preview (``preview``, else the first rows of ``frame``) and the column schema
    (described by the pandera ``model`` the table is validated with)."""
    return dg.MaterializeResult(
        check_results=list(check_results),
        metadata={
            "dagster/row_count": int(sum(counts.values())),
            "rows_per_week": dg.MetadataValue.json(dict(counts)),
            "path": dg.MetadataValue.path(str(storage.published_dir / table)),
            "preview": dg.MetadataValue.md(markdown_preview(frame if preview is None else preview)),
            "dagster/column_schema": table_schema(frame, model),
            **(metadata or {}),
        },
    )


def table_checks(
    asset: str, reconcile_with: str | None = None, weekly: bool = True
) -> list[dg.AssetCheckSpec]:
    """The checks of a published table: its pandera model, and totals that reconcile with the
    layer below when it has one; ``weekly``: the table is stored per week (the checks judge
    the run's weeks), else it is one file of the whole history."""
    stored = "the stored weeks pass" if weekly else "the stored table passes"
    scope = "for the same weeks" if weekly else "over the whole history"
    specs = [
        dg.AssetCheckSpec("schema", asset=asset, description=f"{stored} the table's pandera model")
    ]
    if reconcile_with:
        specs.append(
            dg.AssetCheckSpec(
                f"reconciles_with_{reconcile_with}",
                asset=asset,
                description=(
                    f"totals equal those of {reconcile_with} {scope} (nothing lost or doubled)"
                ),
            )
        )
    return specs


def _schema_failure(model, frame: pd.DataFrame) -> str | None:
    """What the pandera model (or schema) finds wrong (lazy: every failure counted), as its
    error texts joined, or None when the frame passes."""
    try:
        if isinstance(model, type):
            validate_frame(model, frame, lazy=True)
        else:
            model.validate(frame, lazy=True)
    except Exception as error:  # pandera SchemaErrors / SchemaError
        # a lazy run's report is a JSON-like tree; its "error" texts are what a reader needs
        message = getattr(error, "message", None)
        errors = [
            item.get("error", "")
            for by_kind in (message.values() if isinstance(message, dict) else ())
            for items in by_kind.values()
            for item in items
        ]
        return ("; ".join(e for e in errors if e) or str(error).strip())[:500]
    return None


def schema_check(model, stored: pd.DataFrame, check_name: str = "schema") -> dg.AssetCheckResult:
    """Re-validate what was written against its pandera model (lazy: every failure counted)."""
    return _schema_result(check_name, _schema_failure(model, stored), len(stored))


def _schema_result(check_name: str, failure: str | None, rows: int) -> dg.AssetCheckResult:
    if failure is None:
        return dg.AssetCheckResult(
            check_name=check_name,
            passed=True,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"rows": rows},
        )
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=failure,
    )


def reconcile_check(
    check_name: str, totals: dict[str, tuple[float, float]], tolerance: float = 1e-6
) -> dg.AssetCheckResult:
    """Pass when each (published, source) pair of totals agrees: nothing lost or doubled."""
    differences = {name: float(published - source) for name, (published, source) in totals.items()}
    passed = all(
        abs(diff) <= tolerance * max(1.0, abs(totals[name][1]))
        for name, diff in differences.items()
    )
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={f"{name}_published": float(p) for name, (p, _) in totals.items()}
        | {f"{name}_source": float(s) for name, (_, s) in totals.items()}
        | {f"{name}_difference": d for name, d in differences.items()},
    )


def revenue_reported(storage: PipelineStorage) -> bool:
    """Whether the staged leads (the file's header, or the Salesforce pull) have a deal_value
    column. The validated table has one either way, blank when the file has none, and a blank
    there means "not won"; only the snapshot tells that revenue was never reported at all."""
    return DEAL_VALUE in storage.snapshot_columns("raw_campaign_leads")


def column_total(frame: pd.DataFrame, column: str) -> float:
    """The sum of a column, 0 for an empty frame (which may lack the column)."""
    return float(frame[column].sum()) if len(frame) else 0.0
