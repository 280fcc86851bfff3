"""Fingerprints of the raw export folder, and which weeks a new or replaced file touches.

Pure Python/pandas, no Dagster: the raw-file sensor (``sensors.py``) keeps the returned
state in its cursor and turns the touched weeks into partition run requests.

Why it is built this way:

* A cheap check first: a file whose size and modification time (and, on an object store,
  entity tag) are unchanged is not read at all, so a sensor tick on an idle folder costs one
  ``stat`` per file. Only when they
  moved is the content hashed (SHA-256); a file that was merely touched (same hash) is
  recorded and triggers nothing.
* Replaced exports are usually larger re-exports of mostly the same rows, so re-running
  every week would waste hours. Instead the state keeps, per file, one digest per week of
  the rows that matter to that week; a replaced file touches exactly the weeks whose
  digest changed (or appeared, or disappeared). Row order and line numbers do not enter
  the digest, so a re-export in another order touches nothing.
* The week of a row follows the data contract: insights by ``created_at``, leads by
  ``added_date``, status changes by their ``created_at`` and also by their lead's
  ``added_date`` week (a conversion can be counted in either). A campaign row has no
  activity date of its own, so it matters to every week in which that campaign has
  insights or leads (its budget, platform or owner appear in those weeks' tables); a
  campaign with neither matters to no week.
* Because those last two depend on other files, whenever any file changed the digests of
  every file are recomputed together; weeks that only moved because another file changed
  are already touched by that other file, so nothing is missed and nothing extra runs.
* Digests are SHA-256 prefixes over sorted 64-bit row hashes: the state holds no cell
  value, so personal data (lead names, emails, phones) never reaches the cursor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from campaign_pipeline import ingestion
from campaign_pipeline.constants import RAW_FILES
from campaign_pipeline.ingestion import FILE_SPECS, RawFileError
from campaign_pipeline.locations import FileStat, Location

# Rows whose date cannot be parsed belong to no week: they end in the quarantine table,
# which every partition run rebuilds, so a change there alone requests no partition.
UNDATED = "undated"

STATE_VERSION = 1

# How much of a SHA-256 to keep per week: 16 hex digits (64 bits) keep accidental
# collisions out of reach for any realistic number of weeks while the cursor stays small.
DIGEST_HEX_CHARS = 16

_WATCHED = frozenset(RAW_FILES.values())  # the contract's file names; nothing else counts


@dataclass(frozen=True)
class FileState:
    """What the sensor remembers of one raw file between ticks."""

    name: str
    size: int
    mtime_ns: int
    sha256: str
    week_digests: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None  # the file could not be read as its contract says
    etag: str | None = None  # an object store's entity tag (local files have none)
    # gone from the folder since it was reported removed; kept so that the file coming back
    # (a replacement copied in after a delete) is compared with what it was, week by week
    removed: bool = False

    def to_json(self) -> dict:
        payload = {
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "sha256": self.sha256,
            "weeks": dict(self.week_digests),
            "error": self.error,
        }
        return (
            payload
            | ({"etag": self.etag} if self.etag else {})
            | ({"removed": True} if self.removed else {})
        )

    @classmethod
    def from_json(cls, name: str, payload: Mapping) -> FileState:
        return cls(
            name=name,
            size=int(payload["size"]),
            mtime_ns=int(payload["mtime_ns"]),
            sha256=str(payload["sha256"]),
            week_digests=dict(payload.get("weeks", {})),
            error=payload.get("error"),
            etag=payload.get("etag"),
            removed=bool(payload.get("removed", False)),
        )


@dataclass(frozen=True)
class FileChange:
    """One file that is new, replaced with different content, or gone since the last scan."""

    name: str
    kind: str  # "new", "replaced" or "removed"
    old_sha256: str | None
    new_sha256: str | None
    weeks: tuple[str, ...]  # week starts (YYYY-MM-DD) whose rows changed, sorted
    undated_changed: bool = False  # rows without a parseable date changed
    error: str | None = None


@dataclass(frozen=True)
class RawDirScan:
    """The new state of the folder and what changed against the previous state."""

    files: Mapping[str, FileState]
    changes: tuple[FileChange, ...]

    @property
    def touched_weeks(self) -> dict[str, tuple[FileChange, ...]]:
        """Each touched week with the changes that touched it (removed files touch none)."""
        weeks: dict[str, list[FileChange]] = {}
        for change in self.changes:
            if change.kind == "removed":
                continue
            for week in change.weeks:
                weeks.setdefault(week, []).append(change)
        return {week: tuple(weeks[week]) for week in sorted(weeks)}

    def state_json(self) -> dict:
        return {
            "version": STATE_VERSION,
            "files": {n: s.to_json() for n, s in sorted(self.files.items())},
        }


def load_state(cursor: str | None) -> dict[str, FileState]:
    """The file states kept in a sensor cursor; an empty or foreign cursor means none seen."""
    if not cursor:
        return {}
    payload = json.loads(cursor)
    if payload.get("version") != STATE_VERSION:
        return {}
    return {
        name: FileState.from_json(name, item) for name, item in payload.get("files", {}).items()
    }


def dump_state(scan: RawDirScan) -> str:
    return json.dumps(scan.state_json(), sort_keys=True, separators=(",", ":"))


def sha256_of_file(path: Path | str | Location) -> str:
    return Location(path).sha256()


def contents_digest(sha256_by_name: Mapping[str, str]) -> str:
    """One digest of the folder's contents: which contract files are there and what each holds.
    Two scans give the same digest exactly when every raw file is byte for byte the same."""
    pairs = sorted((name, sha) for name, sha in sha256_by_name.items() if name in _WATCHED)
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:DIGEST_HEX_CHARS]


def scanned_contents_digest(scan: RawDirScan) -> str:
    """`contents_digest` of the files as a sensor scan found them (no file is read again)."""
    return contents_digest(
        {name: state.sha256 for name, state in scan.files.items() if not state.removed}
    )


def current_contents_digest(raw_dir: Path | str | Location) -> str:
    """`contents_digest` of the folder as it is now: every contract file present is read and
    hashed, once a week for the schedule's tick (a stat is not enough: a copy can keep the
    source's modification time)."""
    raw_dir = Location(raw_dir)
    return contents_digest(
        {
            name: sha256_of_file(raw_dir / name)
            for name in _WATCHED
            if (raw_dir / name).stat() is not None
        }
    )


def week_start(dates: pd.Series) -> pd.Series:
    """The Monday (ISO week start) of each timestamp as ``YYYY-MM-DD``; NaT stays missing."""
    days = dates.dt.normalize()
    mondays = days - pd.to_timedelta(days.dt.weekday, unit="D")
    return mondays.dt.strftime("%Y-%m-%d").where(dates.notna())


def _row_hashes(frame: pd.DataFrame) -> pd.Series:
    """A 64-bit hash per row over every cell (columns in name order, line number excluded)."""
    columns = sorted(c for c in frame.columns if c != ingestion.LINE_COLUMN)
    return pd.util.hash_pandas_object(frame[columns], index=False).astype("uint64")


def _digests_by_week(pairs: pd.DataFrame, columns: Iterable[str]) -> dict[str, str]:
    """Order-independent digest of the row hashes of each week (``week``, ``row_hash``)."""
    header = ",".join(sorted(c for c in columns if c != ingestion.LINE_COLUMN)).encode()
    pairs = pairs.dropna(subset=["week"]).drop_duplicates().sort_values(["week", "row_hash"])
    if pairs.empty:
        return {}
    weeks = pairs["week"].to_numpy()
    hashes = pairs["row_hash"].to_numpy(dtype=np.uint64)
    boundaries = np.flatnonzero(weeks[1:] != weeks[:-1]) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(weeks)]])
    # One hashlib call per week (tens of weeks), not per row or per campaign.
    return {
        str(weeks[s]): hashlib.sha256(header + hashes[s:e].tobytes()).hexdigest()[:DIGEST_HEX_CHARS]
        for s, e in zip(starts, ends, strict=True)
    }


def _pairs(row_hash: pd.Series, week: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"row_hash": row_hash.to_numpy(), "week": week.fillna(UNDATED).to_numpy()})


def compute_week_digests(
    raw_dir: Path | str | Location,
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Per raw file, ``{week_start: digest}``; and per unreadable file, the reason.

    A file that is absent has no entry; a file that breaks the contract's file layout
    (missing column, not CSV) gets an error and no weeks: its runs would fail anyway, and
    the sensor reports it instead.
    """
    raw_dir = Location(raw_dir)
    frames: dict[str, pd.DataFrame] = {}
    errors: dict[str, str] = {}
    for key, spec in FILE_SPECS.items():
        path = raw_dir / spec.filename
        if not path.is_file():
            continue
        try:
            frames[key] = ingestion.read_raw_file(path, spec)
        except RawFileError as error:
            errors[spec.filename] = str(
                error.message if not error.column else f"{error.message}: {error.column}"
            )

    # Weeks in which each campaign is active, and the week each lead was added.
    activity = []
    lead_weeks = pd.DataFrame(
        {"lead_id": pd.Series(dtype=object), "lead_week": pd.Series(dtype=object)}
    )
    if "insights" in frames:
        ins = frames["insights"]
        activity.append(
            pd.DataFrame(
                {
                    "campaign_id": ins["campaign_id"],
                    "week": week_start(ingestion.parse_timestamps(ins["created_at"])),
                }
            )
        )
    if "campaign_leads" in frames:
        leads = frames["campaign_leads"]
        added = week_start(ingestion.parse_timestamps(leads["added_date"]))
        activity.append(pd.DataFrame({"campaign_id": leads["campaign_id"], "week": added}))
        lead_weeks = (
            pd.DataFrame({"lead_id": leads["id"], "lead_week": added}).dropna().drop_duplicates()
        )
    active = (
        pd.concat(activity, ignore_index=True).dropna().drop_duplicates()
        if activity
        else pd.DataFrame({"campaign_id": pd.Series(dtype=object), "week": pd.Series(dtype=object)})
    )

    digests: dict[str, dict[str, str]] = {}
    for key, frame in frames.items():
        filename = FILE_SPECS[key].filename
        hashes = _row_hashes(frame)
        if key == "insights":
            pairs = _pairs(hashes, week_start(ingestion.parse_timestamps(frame["created_at"])))
        elif key == "campaign_leads":
            pairs = _pairs(hashes, week_start(ingestion.parse_timestamps(frame["added_date"])))
        elif key == "lead_status_changes":
            own = _pairs(hashes, week_start(ingestion.parse_timestamps(frame["created_at"])))
            of_lead = pd.DataFrame(
                {"row_hash": hashes.to_numpy(), "lead_id": frame["lead_id"].to_numpy()}
            )
            of_lead = of_lead.merge(lead_weeks, on="lead_id", how="inner").rename(
                columns={"lead_week": "week"}
            )
            pairs = pd.concat([own, of_lead[["row_hash", "week"]]], ignore_index=True)
        else:  # campaigns: every week in which the campaign has insights or leads
            by_id = pd.DataFrame(
                {"row_hash": hashes.to_numpy(), "campaign_id": frame["id"].to_numpy()}
            )
            in_use = by_id.merge(active, on="campaign_id", how="inner")[["row_hash", "week"]]
            unused = by_id.loc[
                ~by_id["campaign_id"].isin(active["campaign_id"]), ["row_hash"]
            ].assign(week=UNDATED)
            pairs = pd.concat([in_use, unused], ignore_index=True)
        digests[filename] = _digests_by_week(pairs, frame.columns)
    return digests, errors


def _changed_weeks(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[tuple[str, ...], bool]:
    weeks = {w for w in set(old) | set(new) if old.get(w) != new.get(w)}
    undated = UNDATED in weeks
    return tuple(sorted(weeks - {UNDATED})), undated


def _moved(old: FileState, st: FileStat) -> bool:
    return old.size != st.size or old.mtime_ns != st.mtime_ns or old.etag != st.etag


def watched_stats(raw_dir: Path | str | Location) -> dict[str, FileStat | None]:
    """Size and modification time of each watched file (None when absent): one stat each,
    which a sensor tick reads once for its settle check and its scan."""
    raw_dir = Location(raw_dir)
    return {name: (raw_dir / name).stat() for name in RAW_FILES.values()}


def unsettled_files(
    stats: Mapping[str, FileStat | None], settle_seconds: float, now: float
) -> list[tuple[str, float]]:
    """The files (of `watched_stats`) modified less than ``settle_seconds`` before ``now``
    (epoch seconds), with their age: a file still being copied in would be read half-written.
    A modification time further in the future than that is a clock set apart (a file
    server's), not a copy in progress, and does not hold the file back."""
    young = []
    for name, st in stats.items():
        if st is not None and abs(age := now - st.mtime_ns / 1e9) < settle_seconds:
            young.append((name, max(0.0, age)))
    return young


def scan_raw_dir(
    raw_dir: Path | str | Location,
    previous: Mapping[str, FileState],
    stats: Mapping[str, FileStat | None] | None = None,
) -> RawDirScan:
    """Compare the folder (local or on an object store) with ``previous`` (from the cursor)
    and say what changed.

    Only the contract's four file names are watched; anything else in the folder is
    ignored. The returned state is what the cursor should hold after this tick. ``stats``:
    the files' `watched_stats` if already read this tick. A removed file is reported once and
    its state kept (marked removed): when it comes back, only the weeks whose rows differ from
    what it held are touched, and the same file restored touches none.
    """
    raw_dir = Location(raw_dir)
    stats = watched_stats(raw_dir) if stats is None else stats
    present = {name: st for name, st in stats.items() if st is not None}

    # Cheap pass: size and mtime. Unchanged files keep their state without being read.
    moved = {
        name
        for name, st in present.items()
        if name not in previous or previous[name].removed or _moved(previous[name], st)
    }
    gone = {
        name: replace(state, removed=True)
        for name, state in previous.items()
        if name not in present
    }
    removed = sorted(name for name in gone if not previous[name].removed)
    hashes = {name: sha256_of_file(raw_dir / name) for name in moved}
    content_changed = {
        name for name in moved if name not in previous or previous[name].sha256 != hashes[name]
    }

    if not content_changed and not removed:
        files = gone | {
            name: (
                FileState(
                    name,
                    st.size,
                    st.mtime_ns,
                    hashes[name],
                    previous[name].week_digests,
                    previous[name].error,
                    st.etag,
                )
                if name in moved
                else previous[name]
            )
            for name, st in present.items()
        }
        return RawDirScan(files=files, changes=())

    digests, errors = compute_week_digests(raw_dir)
    files: dict[str, FileState] = dict(gone)
    changes: list[FileChange] = []
    for name, st in sorted(present.items()):
        sha = hashes.get(name) or previous[name].sha256
        state = FileState(
            name, st.size, st.mtime_ns, sha, digests.get(name, {}), errors.get(name), st.etag
        )
        files[name] = state
        if name in content_changed:
            old = previous.get(name)
            weeks, undated = _changed_weeks(old.week_digests if old else {}, state.week_digests)
            changes.append(
                FileChange(
                    name=name,
                    kind="replaced" if old else "new",
                    old_sha256=old.sha256 if old else None,
                    new_sha256=sha,
                    weeks=weeks,
                    undated_changed=undated,
                    error=state.error,
                )
            )
    for name in removed:
        changes.append(
            FileChange(
                name=name,
                kind="removed",
                old_sha256=previous[name].sha256,
                new_sha256=None,
                weeks=tuple(sorted(set(previous[name].week_digests) - {UNDATED})),
            )
        )
    return RawDirScan(files=files, changes=tuple(changes))


def consecutive_weeks(weeks: Iterable[str]) -> list[tuple[str, ...]]:
    """The weeks (Monday starts, YYYY-MM-DD) in runs of consecutive Mondays, in order.

    Each run becomes one Dagster run of its range: the whole pipeline job reads and validates
    every raw file before any week, so one run per week would repeat that once per week (a
    first tick touches every stored week). A week that did not change is never added to fill a
    gap: its run would repeat detection for nothing.
    """
    runs: list[list[str]] = []
    previous = None
    for week in sorted(set(weeks)):
        monday = pd.Timestamp(week)
        if previous is not None and monday - previous == pd.Timedelta(days=7):
            runs[-1].append(week)
        else:
            runs.append([week])
        previous = monday
    return [tuple(run) for run in runs]


def run_key_for_weeks(weeks: tuple[str, ...], changes: Iterable[FileChange]) -> str:
    """A run key naming the weeks (one, or the first and last of a range) and the file
    transitions (old -> new content) behind them.

    The same transition seen again (a reset cursor re-reading the same files) gives the
    same key, so Dagster skips the run; a file restored to an earlier content is a new
    transition and does run.
    """
    transitions = sorted({(c.name, c.old_sha256 or "", c.new_sha256 or "") for c in changes})
    digest = hashlib.sha256(json.dumps(transitions).encode()).hexdigest()[:DIGEST_HEX_CHARS]
    span = weeks[0] if len(weeks) == 1 else f"{weeks[0]}..{weeks[-1]}"
    return f"raw:{span}:{digest}"
