"""`campaign-pipeline`: the whole pipeline through Dagster, or the detection core on any series.

Errors a user can fix (a missing file, an unreadable file, a missing column) end the command
with one line naming the file and column and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from campaign_pipeline.constants import MAX_GAP_WEEKS

EXIT_USAGE = 2
EXIT_FAILED = 1


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


def _print(message: str = "") -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------------------


def _require_writable(role: str, folder) -> None:
    """A local folder the run writes to can be created and written, checked before the run
    rather than found by the first step that writes there (an object store is left to its
    first write: a probe would cost a request and need delete rights)."""
    import tempfile

    if not folder.is_local:  # a prefix needs no making; a bucket does
        if bucket := _missing_bucket(folder):
            raise UserError(f"{folder}: the {role} folder's {bucket}")
        return
    path = folder.local_path
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        reason = _os_reason(error, path)
        raise UserError(f"{path}: the {role} folder cannot be written ({reason})") from None


def _preflight(storage, skip: tuple[str, ...] = ()) -> None:
    """Before Dagster starts: the dirs' stores are reachable with what is installed, and each
    raw file exists and has its required columns (header only; the rows are parsed once, by the
    ingestion assets). ``skip``: files another source gives."""
    from campaign_pipeline.ingestion import FILE_SPECS, RawFileError, check_raw_file
    from campaign_pipeline.locations import StorageUnavailable

    try:
        storage.data_location.require_backend()
        storage.published_dir.require_backend()
    except StorageUnavailable as error:
        raise UserError(str(error)) from None
    raw_dir = storage.raw_dir
    with _reading_store(storage.data_location):
        if not raw_dir.is_dir():
            raise UserError(_no_raw_folder(storage))
    for role, folder in (("out", storage.published_dir), ("staging", storage.staging_dir)):
        _require_writable(role, folder)
    for key, spec in FILE_SPECS.items():
        if key in skip:
            continue
        try:
            with _reading_store(storage.data_location):
                check_raw_file(storage.raw_path(spec.filename), spec)
        except RawFileError as error:
            raise UserError(str(error)) from error


def _no_raw_folder(storage) -> str:
    from campaign_pipeline.ingestion import FILE_SPECS

    raw_dir, data = storage.raw_dir, storage.data_location
    hint = ""
    if (data / FILE_SPECS["campaigns"].filename).is_file():
        # the common slip: the raw folder itself given as the data dir
        hint = f"; {data} holds the exports itself: pass its parent folder"
    elif not data.is_local and (bucket := _missing_bucket(data)):
        hint = f"; the {bucket}"
    return f"{raw_dir}: raw folder not found (expected the four export files there){hint}"


def _missing_bucket(location) -> str | None:
    """ "bucket 'name' does not exist ..." when the bucket of an object-store URL is not there
    (one request), else None."""
    bucket = str(location).split("://", 1)[1].split("/", 1)[0]
    with _reading_store(location):
        if location.fs.exists(bucket):
            return None
    return f"bucket {bucket!r} does not exist (or these credentials cannot see it)"


@contextmanager
def _reading_store(location):
    """An object store that cannot be reached or refuses the credentials ends the command with
    one line, not the client library's traceback (a local folder's errors are this code's to
    show)."""
    try:
        yield
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as error:
        if location.is_local:
            raise
        text = str(error).strip().splitlines()
        raise UserError(
            f"{location}: the object store cannot be read ({type(error).__name__}: "
            f"{text[0] if text else 'no detail'}); check AWS_ENDPOINT_URL and the credentials"
        ) from None


def _salesforce_preflight(settings_file: str | None) -> tuple[dict | None, str | None]:
    """The run config of the Salesforce source and a line describing it when
    SALESFORCE_INSTANCE_URL and SALESFORCE_ACCESS_TOKEN are set (after checking, in a few
    LIMIT 1 queries, that the token, the version and every configured field work); else
    (None, None): the lead files are read."""
    from campaign_pipeline.salesforce.client import (
        ACCESS_TOKEN_ENV,
        INSTANCE_URL_ENV,
        SalesforceError,
        source_configured,
    )

    instance_url, access_token = os.environ.get(INSTANCE_URL_ENV), os.environ.get(ACCESS_TOKEN_ENV)
    try:
        configured = source_configured(instance_url, access_token)
    except SalesforceError as error:
        raise UserError(str(error)) from None
    if not configured:
        if settings_file:
            raise UserError(
                f"--salesforce-settings given but {INSTANCE_URL_ENV} and {ACCESS_TOKEN_ENV} "
                "are not set"
            )
        return None, None
    # the source is on: its resource checks the token, the version and the fields
    from campaign_pipeline.resources import salesforce as sf
    from campaign_pipeline.salesforce.leads import check_queries

    settings = {}
    if settings_file:
        try:
            settings = sf.load_settings_file(Path(settings_file))
        except ValueError as error:
            raise UserError(str(error)) from None
    source = sf.SalesforceSource(instance_url=instance_url, access_token=access_token, **settings)
    try:
        client = source.client()
        checked = check_queries(client, source.mapping())
    except SalesforceError as error:
        raise UserError(str(error)) from None
    described = (
        f"leads: Salesforce {client.instance_url} (API v{client.settings.api_version}; "
        f"{', '.join(dict.fromkeys(checked))} readable)"
    )
    return sf.salesforce_run_config(settings), described


def _postgres_preflight() -> None:
    """The server DAGSTER_PG_* name answers, before Dagster starts. It holds the instance
    (under DAGSTER_HOME) and the export ledger (unless EXPORT_LEDGER_URL names another); down,
    Dagster's storage retries for about 15 s and ends in a page of traceback."""
    from campaign_pipeline.instance import InstanceChoiceError, postgres_settings

    try:
        settings = postgres_settings()
    except InstanceChoiceError as error:
        raise UserError(str(error)) from None
    if settings is None or (
        not os.environ.get("DAGSTER_HOME") and os.environ.get("EXPORT_LEDGER_URL", "").strip()
    ):
        return
    import psycopg2
    from dagster_postgres.utils import get_conn_string

    try:  # the URL the instance's storage opens (campaign_pipeline.instance), so the same server
        psycopg2.connect(get_conn_string(**settings), connect_timeout=5).close()
    except psycopg2.Error as error:  # its text names host, port, user or database, not secrets
        reason = _first_line(error)
        raise UserError(
            f"PostgreSQL {settings['username']}@{settings['hostname']}:{settings['port']}/"
            f"{settings['db_name']} (DAGSTER_PG_*) cannot be reached: {reason}; start it, or "
            "unset DAGSTER_PG_* for embedded SQLite"
        ) from None


def _first_line(error: BaseException) -> str:
    """A driver error's first line (its server's answer), or its class when it has no text."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _export_ledger_preflight() -> None:
    """EXPORT_LEDGER_URL can open the ledger, before the run whose export steps open it last;
    a PostgreSQL server it names must answer (a 5 s connection attempt, as for DAGSTER_PG_*).
    A SQLite file is left to the export, which makes it."""
    from campaign_pipeline.resources.exports import LEDGER_URL_VARIABLE, ledger_url_problem

    text = os.environ.get(LEDGER_URL_VARIABLE, "")
    if not text.strip():  # blank is unset, as the code location reads it
        return
    if problem := ledger_url_problem(text):
        raise UserError(problem)
    import sqlalchemy as sa

    url = sa.make_url(text)
    if url.get_backend_name() != "postgresql" or url.get_driver_name() != "psycopg2":
        return
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as error:  # psycopg2's text names host, port, user, database
        reason = _first_line(getattr(error, "orig", None) or error)
        raise UserError(
            f"{LEDGER_URL_VARIABLE} ({url.render_as_string(hide_password=True)}) cannot be "
            f"reached: {reason}; start the server, or unset {LEDGER_URL_VARIABLE} for the "
            "default ledger"
        ) from None
    finally:
        engine.dispose()


@contextmanager
def _one_run_per_data_dir(data_dir):
    """Holds an exclusive lock on a local data dir for the run: two runs on one data dir would
    rewrite its validated layer under each other (each file is replaced whole, but a run could
    compute its weeks from the other's exports). The lock is the folder's own (flock), so
    nothing is left behind and a killed run releases it. Runs the Dagster daemon launches are
    held apart from each other by the run queue (docs/orchestration.md), not from this lock; an
    object store has no lock.
    """
    if not data_dir.is_local:
        yield
        return
    folder = os.open(data_dir.local_path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"{data_dir}: another `campaign-pipeline run` is using this data dir; wait for "
                "it to end, or give this run a copy of the exports in another data dir"
            ) from None
        yield
    finally:
        os.close(folder)  # closing the last descriptor releases the lock


def cmd_run(args: argparse.Namespace) -> int:
    from campaign_pipeline.constants import partition_timezone

    try:  # read when the definitions load; a bad value is one line here, not a traceback
        partition_timezone()
    except ValueError as error:
        raise UserError(str(error)) from None
    from campaign_pipeline import runner
    from campaign_pipeline.locations import StorageUnavailable
    from campaign_pipeline.salesforce.leads import SALESFORCE_KEYS

    try:
        storage = runner.resolve_storage(args.data_dir, args.out)
    except StorageUnavailable as error:
        raise UserError(str(error)) from None
    salesforce_config, leads_from = _salesforce_preflight(args.salesforce_settings)
    _preflight(storage, skip=SALESFORCE_KEYS if salesforce_config else ())
    from campaign_pipeline.resources.exports import live_config_problems

    if problems := live_config_problems(args.export):
        raise UserError("; ".join(problems))
    if problem := runner.dagster_home_problem(os.environ.get("DAGSTER_HOME")):
        raise UserError(problem)
    _postgres_preflight()
    _export_ledger_preflight()
    with _one_run_per_data_dir(storage.data_location):
        return _run_and_summarize(args, storage, salesforce_config, leads_from)


def _run_and_summarize(
    args, storage, salesforce_config: dict | None, leads_from: str | None
) -> int:
    """The run through Dagster and its summary, once the checks have passed."""
    from campaign_pipeline import runner

    data_dir, out_dir = storage.data_location, storage.published_dir
    logging.getLogger("dagster").setLevel(logging.WARNING)
    _print(f"campaign-pipeline: data {data_dir} -> {out_dir}")
    _print(f"instance: {runner.instance_description()}")
    if leads_from:
        _print(leads_from)
    from campaign_pipeline.resources.exports import export_run_config

    _print(
        f"exports: {args.export}"
        + (f", GA4 validation {args.ga4_validate}" if args.ga4_validate else "")
    )
    extra_run_config = runner.merge_run_config(
        export_run_config(args.export, args.ga4_validate), salesforce_config or {}
    )
    try:
        run = runner.run_pipeline(
            str(data_dir),
            str(out_dir),
            say=_print,
            extra_run_config=extra_run_config,
            max_gap_weeks=args.max_gap_weeks,
        )
    except runner.RunFailed as failed:
        for line in failed.lines:
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USAGE if failed.user_error else EXIT_FAILED
    from campaign_pipeline.run_summary import summarize

    _print("")
    _print(summarize(storage, run.weeks, run.seconds, run.exports, args.export, run.not_built))
    for line in run.export_failures:
        print(f"error: {line}", file=sys.stderr)
    return EXIT_FAILED if run.export_failures else 0


# ---------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    """Rebuild one week's page from the published tables (nothing is recomputed)."""
    from campaign_pipeline.report.files import (
        MissingTablesError,
        check_week,
        load_report_tables,
        write_report_page,
    )

    try:  # before the storage and the page builder are imported: a typo is answered at once
        week = check_week(args.week)
    except ValueError as error:
        raise UserError(f"report: {error}") from None
    from campaign_pipeline import runner
    from campaign_pipeline.locations import StorageUnavailable

    out_dir = runner.resolve_storage(args.data_dir, args.out).published_dir
    try:
        out_dir.require_backend()
        with _reading_store(out_dir):
            tables = load_report_tables(out_dir, week)
    except StorageUnavailable as error:
        raise UserError(f"report: {error}") from None
    except MissingTablesError as error:
        hint = "run `campaign-pipeline run` for that week first, or pass the right --out"
        raise UserError(f"report: {error.with_hint(hint)}") from None
    except ValueError as error:
        raise UserError(f"report: {error}") from None
    from campaign_pipeline.report.build import build_weekly_report

    report = build_weekly_report(tables)
    path = write_report_page(out_dir, tables.week, report.html)
    _print(
        f"report: week {tables.week} -> {path} ({path.stat().size / 1024:,.0f} kB; "
        f"{report.facts['campaigns']} campaigns, {report.facts['flags']} flags)"
    )
    return 0


# ---------------------------------------------------------------------------------------
# detect
# ---------------------------------------------------------------------------------------


def _detect_progress(t0: float, every: float = 1.0):
    """Progress of `detect_series` over its chunks of series: a line at most every `every`
    seconds, nothing for an input scored in one chunk, and the last chunk once lines began."""
    last, shown = float("-inf"), False

    def report(done: int, total: int) -> None:
        nonlocal last, shown
        now = time.perf_counter()
        if (done < total and now - last >= every) or (done == total and shown):
            _print(f"detect: scored {done:,} / {total:,} series ({now - t0:.1f}s)")
            if done == total:  # the multiple-testing control and the flags' sentences follow
                _print("detect: deciding the flags across series and explaining them ...")
            last, shown = now, True

    return report


def _header_name(cell) -> str:
    return str(cell).replace("\ufeff", "").strip().lower()


def _detect_values(path: Path, frame: pd.DataFrame) -> pd.Series:
    """The value column as numbers, saying what the detector will do with cells it cannot take
    as they are instead of doing it silently: a value that is not a finite number (text, inf)
    is a missing reading (never judged, never a baseline point), and readings that share a
    (series, timestamp) are averaged into one."""
    raw = frame["value"]
    numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
    text = raw.astype("string").str.strip()
    infinite = numbers.abs() == float("inf")  # no reading: a window holding it has no median
    not_number = infinite | (
        numbers.isna() & raw.notna() & (text != "") & (text.str.lower() != "nan")
    )
    numbers = numbers.mask(infinite)
    if not_number.any():
        first = int(not_number.to_numpy().argmax())
        _print(
            f"detect: note: {path}, column 'value': {int(not_number.sum()):,} value(s) are not "
            "finite numbers "
            f"(the first in data row {first + 1}: {str(raw.iloc[first])!r}); treated as missing"
        )
    repeated = frame.duplicated(["series", "timestamp"], keep=False)
    if repeated.any():
        pairs = len(frame.loc[repeated, ["series", "timestamp"]].drop_duplicates())
        _print(
            f"detect: note: {path}: {pairs:,} (series, timestamp) pair(s) appear more than once "
            f"({int(repeated.sum()) - pairs:,} extra row(s)); their values are averaged into one "
            "reading"
        )
    return numbers


def _os_reason(error: OSError, path: Path) -> str:
    """The system's reason, naming the path it concerns when that is not ``path`` itself (a
    parent folder that is a file)."""
    reason = error.strerror or type(error).__name__
    if error.filename and Path(error.filename) != path:
        reason += f": {error.filename}"
    return reason


def cmd_detect(args: argparse.Namespace) -> int:
    from campaign_pipeline.detection.settings import settings_from_overrides

    try:  # before reading the file: a typo in a setting should not wait for a large input
        settings = settings_from_overrides(args.set or [], sensitivity=args.sensitivity)
    except ValueError as error:  # an unknown setting, a value of the wrong type or out of range
        raise UserError(f"detect: {error}") from None
    path = Path(args.input)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    out = Path(args.out)  # a folder, or a parent that cannot be made: said before reading
    if out.is_dir():
        raise UserError(f"{out}: cannot write the flags there (it is a folder)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{out}: cannot write the flags there ({_os_reason(error, out)})") from None
    try:
        # series names are text: read as numbers, "01" and "1" would be one series
        header = pd.read_csv(path, nrows=0).columns
        names = [c for c in header if _header_name(c) == "series"]
        frame = pd.read_csv(path, dtype=dict.fromkeys(names, str))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise UserError(
            f"{path}: not a readable CSV "
            f"({str(error).splitlines()[0] if str(error) else type(error).__name__})"
        ) from error
    frame.columns = [_header_name(c) for c in frame.columns]
    for column in ("series", "timestamp", "value"):
        if column not in frame.columns:
            from campaign_pipeline.raw_parsing import foreign_separator

            separator = foreign_separator(list(header))
            raise UserError(
                f"{path}, column '{column}': required column missing (need series, timestamp, "
                "value"
                + (
                    f"; the header is one cell: the file looks {separator!r}-separated, and it "
                    "must be comma-separated"
                    if separator
                    else ""
                )
                + ")"
            )
    # a timestamp with a UTC offset (+02:00, Z) is an instant: all are then read as UTC
    offset = (
        frame["timestamp"]
        .astype("string")
        .str.strip()
        .str.contains(r"(?:[+-]\d{2}:?\d{2}|Z)$", na=False)
    )
    written = frame["timestamp"]
    utc = bool(offset.any())
    frame["timestamp"] = pd.to_datetime(written, errors="coerce", utc=utc)
    unread = frame["timestamp"].isna() & written.notna()
    if unread.any():
        # pandas takes the format of the first value: ISO 8601 dates and date-times mixed in
        # one file (2025-01-01 and 2025-01-02 10:00) are read each as written
        frame["timestamp"] = frame["timestamp"].fillna(
            pd.to_datetime(written.where(unread), errors="coerce", utc=utc, format="ISO8601")
        )
    if offset.any():
        _print(
            f"detect: note: {path}, column 'timestamp': {int(offset.sum()):,} timestamp(s) carry "
            "a UTC offset; "
            "all are read as UTC (those without one as UTC already), so the hour-of-day and "
            "weekday "
            "cycles are UTC's and the output's timestamps are in UTC"
        )
    if frame["timestamp"].isna().any():
        bad = frame["timestamp"].isna().to_numpy()
        first = int(bad.argmax())
        shown = "blank" if pd.isna(written.iloc[first]) else repr(str(written.iloc[first]))
        raise UserError(
            f"{path}, column 'timestamp': {int(bad.sum()):,} value(s) are not timestamps (the "
            f"first in data row {first + 1}: {shown}); write them as "
            "YYYY-MM-DD, YYYY-MM-DD HH:MM:SS or any one format pandas reads"
        )
    blank = frame["series"].isna().to_numpy() | (
        frame["series"].astype("string").str.strip() == ""
    ).to_numpy(dtype=bool, na_value=True)
    if blank.any():
        raise UserError(
            f"{path}, column 'series': {int(blank.sum()):,} value(s) are blank (the first in data "
            f"row {int(blank.argmax()) + 1}); every reading needs the name of its series"
        )
    frame["value"] = _detect_values(path, frame)
    from campaign_pipeline.detection import detect_series

    t0 = time.perf_counter()
    flags = detect_series(
        frame[["series", "timestamp", "value"]],
        settings=settings,
        progress=_detect_progress(t0),
        note=lambda text: _print(f"detect: note: {path}: {text}"),
    )
    try:
        flags.to_csv(out, index=False)
    except OSError as error:
        raise UserError(f"{out}: cannot write the flags there ({_os_reason(error, out)})") from None
    n_series = frame["series"].nunique()
    _print(
        f"detect: {len(flags):,} points in {n_series} series -> "  # repeated readings are one
        f"{int(flags['is_anomaly'].sum()):,} anomalies "
        f"written to {out} ({time.perf_counter() - t0:.1f}s)"
    )
    return 0


# ---------------------------------------------------------------------------------------
# sample
# ---------------------------------------------------------------------------------------


def cmd_sample(args: argparse.Namespace) -> int:
    from campaign_pipeline.constants import RAW_FILES

    raw = Path(args.out) / "raw"
    present = [name for name in RAW_FILES.values() if (raw / name).exists()]
    if present and not args.force:  # a data dir's real exports are not overwritten by a typo
        raise UserError(
            f"sample: {raw} already holds {', '.join(present)}; the sample would replace "
            f"{'it' if len(present) == 1 else 'them'}: choose another --out, or pass --force"
        )
    from campaign_pipeline.sample_data import generate_sample

    if raw.exists() and not raw.is_dir():
        raise UserError(f"sample: {raw} is a file, not a folder: choose another --out")
    # a replaced set takes its labels with it: another set's labels would score this one
    for name, wanted in (("anomaly_labels.csv", args.anomalies), ("defects.csv", args.defects)):
        if not wanted and (raw / name).is_file() and present:
            (raw / name).unlink()
    try:
        manifest = generate_sample(
            raw,
            seed=args.seed,
            n_campaigns=args.campaigns,
            n_days=args.days,
            anomalies=args.anomalies,
            defects=args.defects,
            scale=args.scale,
        )
    except OSError as error:
        raise UserError(f"sample: cannot write to {raw} ({_os_reason(error, raw)})") from None
    _print(f"sample data written to {raw}: {manifest}")
    return 0


def _whole_number(low: int):
    """An argparse type: a whole number of at least ``low`` (a count of campaigns or days,
    which the generator would otherwise round up to 1; a seed, which numpy refuses below 0)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below {low}")
        return value

    return parse


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number above 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="campaign-pipeline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="materialize every asset for every week in DATA_DIR/raw, through Dagster"
    )
    run.add_argument(
        "--data-dir",
        help="folder holding raw/ (default: $CAMPAIGN_PIPELINE_DATA_DIR or the shipped data/)",
    )
    run.add_argument(
        "--out",
        help="where published tables go (default: $CAMPAIGN_PIPELINE_OUT_DIR, else DATA_DIR/out)",
    )
    run.add_argument(
        "--export",
        choices=["auto", "dry-run", "off"],
        default="auto",
        help="auto: live where credentials are set, else dry-run (default); dry-run: write the "
        "payloads to OUT/exports/; off: skip",
    )
    run.add_argument(
        "--ga4-validate",
        choices=["before_send", "only"],
        help="post each GA4 request to /debug/mp/collect first and refuse what it flags "
        "(before_send), or validate and send nothing (only)",
    )
    run.add_argument(
        "--max-gap-weeks",
        type=_whole_number(0),
        default=MAX_GAP_WEEKS,
        metavar="N",
        help="a gap of at most N weeks without data between weeks with data is built with them "
        f"(default {MAX_GAP_WEEKS}); of a longer one only its last week, the week the next "
        "report compares with",
    )
    run.add_argument(
        "--salesforce-settings",
        metavar="FILE",
        help="YAML/JSON of the Salesforce source's settings (field names, status map, ...); "
        "the source is on when SALESFORCE_INSTANCE_URL and SALESFORCE_ACCESS_TOKEN are set",
    )
    run.set_defaults(func=cmd_run)

    report = sub.add_parser(
        "report", help="rebuild one week's HTML report from the published tables"
    )
    report.add_argument("--week", required=True, help="the week's Monday, YYYY-MM-DD")
    report.add_argument(
        "--out",
        help="the published tables, where the page goes too (default: "
        "$CAMPAIGN_PIPELINE_OUT_DIR, else DATA_DIR/out)",
    )
    report.add_argument(
        "--data-dir", help="default: $CAMPAIGN_PIPELINE_DATA_DIR or the shipped data/"
    )
    report.set_defaults(func=cmd_report)

    detect = sub.add_parser("detect", help="run the detection core on a long-format series CSV")
    detect.add_argument("input", help="CSV with columns series, timestamp, value (regular spacing)")
    detect.add_argument("--out", required=True, help="where to write the flags CSV")
    detect.add_argument("--sensitivity", choices=["low", "medium", "high"], default="medium")
    detect.add_argument(
        "--set",
        nargs="+",
        action="extend",
        metavar="NAME=VALUE",
        help="override any DetectionSettings field, e.g. --set fdr=0.1 use_cusum=false "
        "(docs/anomaly_detection.md lists them with their defaults and reasons)",
    )
    detect.set_defaults(func=cmd_detect)

    sample = sub.add_parser("sample", help="write deterministic synthetic Leadsmart exports")
    sample.add_argument("--out", required=True, help="data dir to create (files go to OUT/raw)")
    sample.add_argument(
        "--seed",
        type=_whole_number(0),
        default=7,
        help="the same seed, the same files (7; at least 0)",
    )
    sample.add_argument(
        "--campaigns", type=_whole_number(1), default=200, help="campaigns (200; at least 1)"
    )
    sample.add_argument(
        "--days", type=_whole_number(1), default=120, help="days of exports (120; at least 1)"
    )
    sample.add_argument(
        "--scale", type=_positive_number, default=1.0, help="multiplies --campaigns (1.0)"
    )
    sample.add_argument("--anomalies", action="store_true", help="inject labelled anomalies")
    sample.add_argument("--defects", action="store_true", help="inject labelled contract defects")
    sample.add_argument(
        "--force", action="store_true", help="replace export files already in OUT/raw"
    )
    sample.set_defaults(func=cmd_sample)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            "interrupted: what finished is kept; run the same command again to finish",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
