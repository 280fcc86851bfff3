"""Location: the same behaviour on a local folder and on an S3 server (moto on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import pandas as pd
import pytest

from campaign_pipeline.locations import Location, StorageUnavailable
from campaign_pipeline.resources.storage import read_parquet


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path) -> Location:
    """An empty folder: a temporary directory, or a prefix of a fresh bucket."""
    if request.param == "local":
        return Location(tmp_path / "root")
    return Location(request.getfixturevalue("s3_prefix"))


def test_write_read_stat_and_absence(root):
    file = root / "raw" / "insights.csv"
    assert not file.exists() and file.stat() is None and not (root / "raw").is_dir()
    with pytest.raises(FileNotFoundError):
        file.read_bytes()
    file.write_text("id,spend\n1,2.5\n")
    assert file.is_file() and (root / "raw").is_dir() and not file.is_dir()
    assert file.read_text() == "id,spend\n1,2.5\n"
    with file.open() as handle:
        assert pd.read_csv(handle)["spend"].tolist() == [2.5]
    stat = file.stat()
    assert stat.size == len("id,spend\n1,2.5\n") and stat.mtime_ns > 0
    assert file.sha256() == hashlib.sha256(b"id,spend\n1,2.5\n").hexdigest()


def test_unlink_removes_a_file_and_is_a_no_op_on_none(root):
    kept, gone = root / "held" / "2025-01-06.json", root / "held" / "2025-01-13.json"
    kept.write_text("{}")
    gone.write_text("{}")
    gone.unlink()
    gone.unlink()  # no file: nothing to do
    assert not gone.exists() and [p.name for p in (root / "held").files(".json")] == [kept.name]


def test_a_replacement_of_the_same_size_changes_the_stat(root):
    """What the raw-file sensor's cheap pass relies on: a re-export moves (size, mtime, etag)."""
    file = root / "insights.csv"
    file.write_text("a,b\n1,2\n")
    before = file.stat()
    file.write_text("a,b\n3,4\n")  # same size, maybe within the same second
    after = file.stat()
    if root.is_local:  # no entity tag; size and mtime (which a re-export moves) are the stat
        assert before.etag is None and after.etag is None
    else:  # an object's ETag is its content's MD5: same size, same second, still a change
        md5 = hashlib.md5(b"a,b\n3,4\n").hexdigest()
        assert after.etag == f'"{md5}"' != before.etag
    assert file.read_text() == "a,b\n3,4\n"


def test_listing_is_sorted_skips_hidden_entries_and_sees_other_writers(root):
    for name in ("b.parquet", "a.parquet", ".a.parquet.tmp", "notes.txt"):
        (root / "table" / name).write_bytes(b"x")
    (root / "table" / "sub" / "c.parquet").write_bytes(b"x")
    assert [e.name for e in (root / "table").iterdir()] == [
        "a.parquet",
        "b.parquet",
        "notes.txt",
        "sub",
    ]
    assert [e.stem for e in (root / "table").files(".parquet")] == ["a", "b"]
    # a file written by someone else (a new Location: no shared cache) is listed at once
    (Location(str(root)) / "table" / "d.parquet").write_bytes(b"x")
    assert [e.stem for e in (root / "table").files(".parquet")] == ["a", "b", "d"]
    assert (root / "nothing").iterdir() == []


def test_a_failed_write_leaves_the_previous_version_and_nothing_else(root):
    file = root / "out" / "table.parquet"
    file.write_bytes(b"version 1")

    def half_then_crash(target):
        if isinstance(target, str):
            with open(target, "wb") as handle:
                handle.write(b"version 2, half")
        else:
            target.write(b"version 2, half")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError, match="writer died"):
        file.write_atomically(half_then_crash)
    assert file.read_bytes() == b"version 1"
    assert [e.name for e in (root / "out").iterdir()] == ["table.parquet"]
    if root.is_local:  # no temporary file left behind either, hidden or not
        assert [p.name for p in file.local_path.parent.iterdir()] == ["table.parquet"]


def test_a_reader_never_sees_half_a_table_while_it_is_replaced(root):
    """One thread replaces a Parquet file again and again with one of two versions; another
    reads it as fast as it can. Every read is a whole version, never a mix or a torn file."""
    rng = np.random.default_rng(0)
    versions = [
        pd.DataFrame({"campaign_id": np.arange(60_000), "spend": rng.random(60_000) + k})
        for k in range(2)
    ]
    sums = {round(float(v["spend"].sum()), 6) for v in versions}
    file = root / "out" / "weekly.parquet"
    file.write_atomically(lambda t: versions[0].to_parquet(t, index=False))
    done, seen, errors = threading.Event(), [], []

    def writer():
        try:
            for i in range(12):
                frame = versions[(i + 1) % 2]
                file.write_atomically(lambda t, f=frame: f.to_parquet(t, index=False))
        finally:
            done.set()

    def reader():
        while not done.is_set() or len(seen) < 3:
            try:
                frame = read_parquet(file)
            except Exception as error:  # a torn read would land here
                errors.append(repr(error))
                return
            seen.append((len(frame), round(float(frame["spend"].sum()), 6)))

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(seen) >= 3
    assert {n for n, _ in seen} == {60_000} and {s for _, s in seen} <= sums


def test_credentials_in_a_url_are_refused_without_being_echoed():
    with pytest.raises(StorageUnavailable) as raised:
        Location("s3://AKIAEXAMPLE:topsecret@bucket/prefix")
    message = str(raised.value)
    assert "topsecret" not in message and "AKIAEXAMPLE" not in message
    assert "AWS_ACCESS_KEY_ID" in message and "\n" not in message


def test_a_store_whose_package_is_missing_says_what_to_install():
    with pytest.raises(StorageUnavailable) as raised:
        Location("gs://bucket/prefix").require_backend()
    assert str(raised.value) == (
        "gs://bucket/prefix: gs:// needs gcsfs, which is not installed (pip install gcsfs)"
    )
    with pytest.raises(StorageUnavailable, match="not a protocol fsspec knows"):
        Location("nosuchstore://bucket").require_backend()


def test_local_paths_behave_as_paths(tmp_path):
    local = Location(tmp_path / "data")
    assert local.is_local and str(local) == str(tmp_path / "data")
    assert (local / "raw").local_path == tmp_path / "data" / "raw"
    assert Location("file://" + str(tmp_path)).local_path == tmp_path
    remote = Location("s3://bucket/a/b/")
    assert str(remote / "c.parquet") == "s3://bucket/a/b/c.parquet"
    assert remote.parent == Location("s3://bucket/a") and (remote / "x.csv").stem == "x"
    with pytest.raises(TypeError):
        remote.local_path  # noqa: B018
