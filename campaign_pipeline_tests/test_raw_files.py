"""Which weeks a new, replaced, touched or broken raw file touches."""

import json
import os

import pytest

from campaign_pipeline import raw_files
from campaign_pipeline_tests._orchestration_support import (
    CAMPAIGNS,
    INSIGHTS,
    LEADS,
    RAW_EXPORTS,
    STATUS_CHANGES,
    replace_file,
    write_raw,
)

ALL_WEEKS = ["2024-01-08", "2024-01-15", "2024-01-22"]


@pytest.fixture
def raw_dir(tmp_path):
    return write_raw(tmp_path / "raw")


def _scan_again(raw_dir, scan):
    """A new scan against the state a sensor cursor would hold after ``scan``."""
    return raw_files.scan_raw_dir(raw_dir, raw_files.load_state(raw_files.dump_state(scan)))


def test_new_folder_touches_exactly_the_weeks_with_rows(raw_dir):
    scan = raw_files.scan_raw_dir(raw_dir, {})
    assert sorted(c.name for c in scan.changes) == sorted(
        ["campaigns.csv", "insights.csv", "campaign_leads.csv", "lead_status_changes.csv"]
    )
    assert {c.kind for c in scan.changes} == {"new"}
    assert list(scan.touched_weeks) == ALL_WEEKS
    by_name = {c.name: c.weeks for c in scan.changes}
    assert by_name["insights.csv"] == ("2024-01-08", "2024-01-15")
    # the status change is dated 01-23; its lead was added in the week of 01-08
    assert by_name["lead_status_changes.csv"] == ("2024-01-08", "2024-01-22")
    # campaigns matter to the weeks they are active in, not to their creation week (01-01)
    assert by_name["campaigns.csv"] == ("2024-01-08", "2024-01-15")


def test_unchanged_folder_is_not_read_again(raw_dir, monkeypatch):
    first = raw_files.scan_raw_dir(raw_dir, {})

    def must_not_read(*args, **kwargs):
        raise AssertionError("an unchanged folder must not be parsed")

    monkeypatch.setattr(raw_files, "compute_week_digests", must_not_read)
    monkeypatch.setattr(raw_files, "sha256_of_file", must_not_read)
    again = _scan_again(raw_dir, first)
    assert again.changes == ()
    assert again.state_json() == first.state_json()


def test_touched_file_with_same_content_triggers_nothing_but_updates_mtime(raw_dir):
    first = raw_files.scan_raw_dir(raw_dir, {})
    path = raw_dir / "insights.csv"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    again = _scan_again(raw_dir, first)
    assert again.changes == ()
    assert again.files["insights.csv"].mtime_ns == st.st_mtime_ns + 5_000_000_000
    assert again.files["insights.csv"].week_digests == first.files["insights.csv"].week_digests


def test_replaced_file_changing_one_row_touches_only_its_week(raw_dir):
    first = raw_files.scan_raw_dir(raw_dir, {})
    replace_file(raw_dir / "insights.csv", INSIGHTS.replace("01/16/2024,9,", "01/16/2024,19,"))
    again = _scan_again(raw_dir, first)
    assert [(c.name, c.kind) for c in again.changes] == [("insights.csv", "replaced")]
    assert list(again.touched_weeks) == ["2024-01-15"]


def test_larger_re_export_touches_only_the_added_week(raw_dir):
    first = raw_files.scan_raw_dir(raw_dir, {})
    replace_file(raw_dir / "insights.csv", INSIGHTS + "5,c2,2024-01-30,7,700,7,0\n")
    again = _scan_again(raw_dir, first)
    # c2 becomes active in a new week too, but campaigns.csv did not change: one file, one week
    assert [c.name for c in again.changes] == ["insights.csv"]
    assert list(again.touched_weeks) == ["2024-01-29"]


def test_reordered_re_export_touches_nothing(raw_dir):
    first = raw_files.scan_raw_dir(raw_dir, {})
    header, *rows = INSIGHTS.strip().splitlines()
    replace_file(raw_dir / "insights.csv", "\n".join([header, *reversed(rows)]) + "\n")
    again = _scan_again(raw_dir, first)
    assert [(c.name, c.weeks) for c in again.changes] == [("insights.csv", ())]
    assert again.touched_weeks == {}


def test_campaign_change_touches_the_weeks_the_campaign_is_active(raw_dir):
    first = raw_files.scan_raw_dir(raw_dir, {})
    replace_file(raw_dir / "campaigns.csv", CAMPAIGNS.replace("c2,u1,Alpha,50,", "c2,u1,Alpha,80,"))
    again = _scan_again(raw_dir, first)
    assert list(again.touched_weeks) == ["2024-01-15"]  # c2 has rows only in that week


def test_status_change_touches_its_own_week_and_its_leads_week(raw_dir):
    first = raw_files.scan_raw_dir(raw_dir, {})
    replace_file(
        raw_dir / "lead_status_changes.csv",
        STATUS_CHANGES + "s2,l2,DONE_DEAL,LOST,2024-02-06 09:00:00\n",
    )
    again = _scan_again(raw_dir, first)
    assert list(again.touched_weeks) == ["2024-01-15", "2024-02-05"]  # l2 added 01-17, change 02-06


def test_undated_row_is_reported_but_touches_no_week(raw_dir):
    first = raw_files.scan_raw_dir(raw_dir, {})
    replace_file(raw_dir / "insights.csv", INSIGHTS + "6,c1,not a date,1,1,1,0\n")
    again = _scan_again(raw_dir, first)
    (change,) = again.changes
    assert change.undated_changed and change.weeks == ()
    assert again.touched_weeks == {}


def test_removed_file_is_reported_and_touches_no_week(raw_dir):
    first = raw_files.scan_raw_dir(raw_dir, {})
    (raw_dir / "lead_status_changes.csv").unlink()
    again = _scan_again(raw_dir, first)
    assert [(c.name, c.kind) for c in again.changes] == [("lead_status_changes.csv", "removed")]
    assert again.touched_weeks == {}
    assert again.files["lead_status_changes.csv"].removed  # kept, to compare if it comes back


def test_a_file_removed_then_copied_back_touches_only_the_weeks_it_changed(raw_dir):
    """A replacement done as delete, then a copy that outlasts a tick: the file is reported
    removed once, and coming back it is compared with what it held, not run as new."""
    first = raw_files.scan_raw_dir(raw_dir, {})
    path = raw_dir / "insights.csv"
    original = path.read_text()
    path.unlink()
    gone = _scan_again(raw_dir, first)
    assert [(c.name, c.kind) for c in gone.changes] == [("insights.csv", "removed")]
    assert raw_files.scanned_contents_digest(gone) == raw_files.current_contents_digest(raw_dir)
    still_gone = _scan_again(raw_dir, gone)
    assert still_gone.changes == ()  # reported once
    # the same file back: nothing to run
    path.write_text(original)
    restored = _scan_again(raw_dir, still_gone)
    assert restored.changes == () and restored.touched_weeks == {}
    assert raw_files.scanned_contents_digest(restored) == raw_files.scanned_contents_digest(first)
    # removed again, and back with one row changed: that row's week only, as a replacement
    path.unlink()
    gone = _scan_again(raw_dir, restored)
    path.write_text(INSIGHTS.replace("01/16/2024,9,", "01/16/2024,19,"))
    back = _scan_again(raw_dir, gone)
    assert [(c.name, c.kind) for c in back.changes] == [("insights.csv", "replaced")]
    assert list(back.touched_weeks) == ["2024-01-15"]


def test_file_breaking_the_layout_is_reported_with_no_weeks(raw_dir):
    first = raw_files.scan_raw_dir(raw_dir, {})
    replace_file(raw_dir / "insights.csv", INSIGHTS.replace("spend", "cost"))
    again = _scan_again(raw_dir, first)
    (change,) = again.changes
    assert change.error and "spend" in change.error
    assert change.weeks == (
        "2024-01-08",
        "2024-01-15",
    )  # its weeks disappeared: all of them changed


def test_other_files_in_the_folder_are_ignored(raw_dir):
    (raw_dir / "notes.txt").write_text("hello")
    scan = raw_files.scan_raw_dir(raw_dir, {})
    assert "notes.txt" not in scan.files


def test_contents_digest_is_the_same_from_a_scan_and_from_the_files_until_one_changes(raw_dir):
    """The sensor tags its runs with the digest of what it scanned; the schedule hashes the
    folder and compares: equal exactly when every contract file is byte for byte the same."""
    scan = raw_files.scan_raw_dir(raw_dir, {})
    digest = raw_files.scanned_contents_digest(scan)
    assert raw_files.current_contents_digest(raw_dir) == digest
    (raw_dir / "notes.txt").write_text("not an export")  # not a contract file: no change
    os.utime(raw_dir / "insights.csv", ns=(1, 1))  # a new time alone: no change
    assert raw_files.current_contents_digest(raw_dir) == digest
    replace_file(raw_dir / "insights.csv", INSIGHTS.replace("1100", "1101"))
    changed = raw_files.current_contents_digest(raw_dir)
    assert changed != digest
    assert raw_files.scanned_contents_digest(_scan_again(raw_dir, scan)) == changed
    (raw_dir / "campaigns.csv").unlink()  # a file gone changes the contents too
    assert raw_files.current_contents_digest(raw_dir) not in (digest, changed)


def test_cursor_holds_no_cell_values(raw_dir):
    state = raw_files.dump_state(raw_files.scan_raw_dir(raw_dir, {}))
    # values that cannot occur by chance in a hash, a size or an mtime
    for secret in ("ann@example.com", "Ann", "202-555-0143", "Spring"):
        assert secret not in state
    assert json.loads(state)["version"] == raw_files.STATE_VERSION


def test_foreign_or_empty_cursor_means_nothing_seen():
    assert raw_files.load_state(None) == {}
    assert raw_files.load_state(json.dumps({"version": 999, "files": {"x": {}}})) == {}


def test_run_key_names_the_transition(raw_dir):
    first = raw_files.scan_raw_dir(raw_dir, {})
    original = (raw_dir / "insights.csv").read_text()
    replace_file(raw_dir / "insights.csv", INSIGHTS.replace("01/16/2024,9,", "01/16/2024,19,"))
    second = _scan_again(raw_dir, first)
    replace_file(raw_dir / "insights.csv", original)
    third = _scan_again(raw_dir, second)  # restored: a new transition, so it runs again

    week = ("2024-01-15",)
    key_first = raw_files.run_key_for_weeks(week, first.touched_weeks[week[0]])
    key_second = raw_files.run_key_for_weeks(week, second.touched_weeks[week[0]])
    key_third = raw_files.run_key_for_weeks(week, third.touched_weeks[week[0]])
    assert len({key_first, key_second, key_third}) == 3
    # the same transition seen again (a reset cursor) gives the same key, so Dagster skips it
    again = raw_files.scan_raw_dir(raw_dir, {}).touched_weeks[week[0]]
    assert raw_files.run_key_for_weeks(week, again) == key_first
    assert key_first.startswith("raw:2024-01-15:")
    # a range's key names both ends; the files behind several of its weeks count once
    weeks = ("2024-01-08", "2024-01-15")
    changes = [c for w in weeks for c in first.touched_weeks[w]]
    assert raw_files.run_key_for_weeks(weeks, changes) == raw_files.run_key_for_weeks(
        weeks, list(dict.fromkeys(changes))
    )
    assert raw_files.run_key_for_weeks(weeks, changes).startswith("raw:2024-01-08..2024-01-15:")


def test_consecutive_weeks_are_grouped_and_gaps_are_not_filled():
    assert raw_files.consecutive_weeks(
        ["2024-01-22", "2024-01-08", "2024-01-15", "2024-02-12", "2024-01-15", "2024-03-04"]
    ) == [("2024-01-08", "2024-01-15", "2024-01-22"), ("2024-02-12",), ("2024-03-04",)]
    assert raw_files.consecutive_weeks([]) == []


def test_leads_file_with_bom_and_crlf_gives_the_same_weeks(tmp_path):
    plain = write_raw(tmp_path / "a")
    bom = write_raw(tmp_path / "b")
    (bom / "campaign_leads.csv").write_bytes(("\ufeff" + LEADS.replace("\n", "\r\n")).encode())
    a = raw_files.scan_raw_dir(plain, {}).files["campaign_leads.csv"].week_digests
    b = raw_files.scan_raw_dir(bom, {}).files["campaign_leads.csv"].week_digests
    assert a == b


def test_a_raw_folder_on_s3_is_scanned_the_same_way(s3_prefix, monkeypatch):
    """On an object store: the same weeks; an idle folder costs listings only; a replacement of
    the same size (an mtime that may not move within the second) is seen by its ETag."""
    from campaign_pipeline.locations import Location

    raw = Location(f"{s3_prefix}/raw")
    for name, text in RAW_EXPORTS.items():
        (raw / name).write_text(text)
    first = raw_files.scan_raw_dir(raw, {})
    assert list(first.touched_weeks) == ALL_WEEKS
    assert all(s.etag for s in first.files.values())

    with monkeypatch.context() as patched:

        def must_not_read(*args, **kwargs):
            raise AssertionError("an unchanged folder must not be read")

        patched.setattr(raw_files, "compute_week_digests", must_not_read)
        patched.setattr(raw_files, "sha256_of_file", must_not_read)
        assert _scan_again(raw, first).changes == ()

    changed = INSIGHTS.replace("01/16/2024,9,", "01/16/2024,8,")  # same size
    assert len(changed) == len(INSIGHTS)
    (raw / "insights.csv").write_text(changed)
    again = _scan_again(raw, first)
    assert [(c.name, c.kind) for c in again.changes] == [("insights.csv", "replaced")]
    assert list(again.touched_weeks) == ["2024-01-15"]


def test_files_modified_within_the_settle_window_are_named_with_their_age(raw_dir):
    import os
    import time

    now = time.time()
    for path in raw_dir.iterdir():
        os.utime(path, (now - 300, now - 300))
    assert raw_files.unsettled_files(raw_files.watched_stats(raw_dir), 60, now) == []
    os.utime(raw_dir / "insights.csv", (now - 5, now - 5))  # still being copied in, maybe
    [(name, age)] = raw_files.unsettled_files(raw_files.watched_stats(raw_dir), 60, now)
    assert name == "insights.csv" and 4.9 < age < 5.1
    # no window: nothing waits
    assert raw_files.unsettled_files(raw_files.watched_stats(raw_dir), 0, now) == []
    # an hour ahead of this clock: another machine's clock, not a copy; it waits no hour
    os.utime(raw_dir / "insights.csv", (now + 3600, now + 3600))
    assert raw_files.unsettled_files(raw_files.watched_stats(raw_dir), 60, now) == []
