"""A file or folder named by a local path or by an object-store URL, behind one small API.

The data dir and the out dir may be a local folder or an object-store URL
(``s3://bucket/prefix``, ``gs://bucket/prefix``, any protocol fsspec knows), so that steps
running on several machines find each other's tables. Everything that reads or writes a file
under those dirs goes through ``Location`` (the one exception, the export ledger's default
SQLite file, is a database that only a local out dir can hold).

Local paths use the operating system directly (``os.stat``, ``os.replace``): a
single-machine install needs nothing more. URLs go through fsspec: ``s3://`` needs the ``s3``
extra (``pip install 'campaign_pipeline[s3]'``, i.e. s3fs) and reads its endpoint and
credentials the way every AWS tool does (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an IAM role, ...), which is also how MinIO and other
S3-compatible stores are reached; ``gs://`` needs gcsfs and Google's usual credentials. The
credentials never pass through Dagster (config, run config, metadata, logs).

Why writes cannot be seen half done, on each kind of store:

* Local folder: the content is written to a hidden temporary file in the same folder and
  renamed over the target (``os.replace``, atomic on one file system).
* Object store: the content is serialized completely in memory first and then uploaded in one
  request. S3 (and S3-compatible stores) and GCS make an object visible only when its upload
  has completed (a single PUT, or a multipart upload at its completion), and an upload over an
  existing key replaces the object whole, with read-after-write consistency. No temporary key
  is used: a copy to the final key would cost a second request and add no guarantee. Readers
  take an object in one GET, so a replacement landing between two ranged reads cannot hand
  them a mix of two versions.

Listings are never cached: another machine may have written since the last look.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

# What to install for each protocol that does not come with the base install.
_EXTRAS = {
    "s3": ("s3fs", "pip install 'campaign_pipeline[s3]'"),
    "s3a": ("s3fs", "pip install 'campaign_pipeline[s3]'"),
    "gs": ("gcsfs", "pip install gcsfs"),
    "gcs": ("gcsfs", "pip install gcsfs"),
}
# Environment variables that change which store or which credentials a filesystem object
# uses: a filesystem is built again when one of them changes.
_ENV_PREFIXES = ("AWS_", "GOOGLE_", "GCSFS_", "FSSPEC_")
_CHUNK = 1 << 20


class StorageUnavailable(RuntimeError):
    """An object-store URL whose filesystem package is not installed, or an unknown protocol.

    ``str()`` is one line naming the URL and what to install.
    """


@dataclass(frozen=True)
class FileStat:
    """What changes when a file is replaced: size, modification time and, on an object
    store, the object's entity tag (a replacement with the same size within the same second
    still changes it)."""

    size: int
    mtime_ns: int
    etag: str | None = None


def _split(where: str) -> tuple[str, str]:
    """(protocol, path) of a URL; ("file", path) for a local path or a file:// URL."""
    if "://" not in where:
        return "file", where
    protocol, _, rest = where.partition("://")
    protocol = protocol.lower()
    if protocol in {"file", "local"}:
        return "file", rest
    return protocol, rest.strip("/")


@functools.lru_cache(maxsize=16)
def _filesystem(protocol: str, pid: int, env: tuple[tuple[str, str], ...]) -> Any:
    """A filesystem for ``protocol``, one per process and environment (an object made before a
    fork, or before the credentials changed, is never reused)."""
    import fsspec

    try:
        cls = fsspec.get_filesystem_class(protocol)
    except ImportError:
        package, hint = _EXTRAS.get(protocol, (f"the fsspec backend for {protocol}://", ""))
        raise StorageUnavailable(
            f"{protocol}:// needs {package}, which is not installed"
            + (f" ({hint})" if hint else "")
        ) from None
    except ValueError:
        raise StorageUnavailable(f"{protocol}:// is not a protocol fsspec knows") from None
    return cls(use_listings_cache=False, skip_instance_cache=True)


def _mtime_ns(info: dict) -> int:
    """Modification time of an object from its listing entry (S3 ``LastModified``, GCS
    ``updated``, others ``mtime``), in nanoseconds; 0 when the store reports none."""
    import datetime as dt

    value = info.get("LastModified") or info.get("updated") or info.get("mtime")
    if value is None:
        return 0
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1_000_000_000)
    return int(float(value) * 1_000_000_000)


class Location:
    """A file or folder: a local path, or a URL on an object store.

    Joins with ``/`` like ``pathlib.Path``; a local one also works wherever a path does
    (``os.fspath``). ``str()`` is the path or URL as a user would type it.
    """

    __slots__ = ("protocol", "_path")

    def __init__(self, where: str | os.PathLike | Location):
        if isinstance(where, Location):
            self.protocol, self._path = where.protocol, where._path
            return
        self.protocol, self._path = _split(os.fspath(where))
        if self.protocol == "file":
            self._path = str(Path(self._path).expanduser())
        elif "@" in self._path.split("/", 1)[0]:
            # never echo the URL: it is printed, logged and stored in run config
            raise StorageUnavailable(
                f"an object-store URL ({self.protocol}://) with credentials in it: give the "
                "store's credentials in environment variables (AWS_ACCESS_KEY_ID, "
                "AWS_SECRET_ACCESS_KEY, ...)"
            )

    # --- naming ------------------------------------------------------------------------

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    @property
    def url(self) -> str:
        return self._path if self.is_local else f"{self.protocol}://{self._path}"

    @property
    def local_path(self) -> Path:
        if not self.is_local:
            raise TypeError(f"{self.url} is on an object store, not a local path")
        return Path(self._path)

    def __truediv__(self, name: str) -> Location:
        name = str(name).strip("/")
        if self.is_local:
            return Location(Path(self._path) / name)
        return Location(f"{self.url}/{name}")

    @property
    def name(self) -> str:
        return (
            self._path.rstrip("/").rsplit("/", 1)[-1]
            if not self.is_local
            else Path(self._path).name
        )

    @property
    def stem(self) -> str:
        name = self.name
        return name[: name.rfind(".")] if "." in name.lstrip(".") else name

    @property
    def parent(self) -> Location:
        if self.is_local:
            return Location(Path(self._path).parent)
        return Location(f"{self.protocol}://{self._path.rsplit('/', 1)[0]}")

    def resolved(self) -> Location:
        """An absolute local path (a URL is already absolute)."""
        return Location(Path(self._path).resolve()) if self.is_local else self

    def __fspath__(self) -> str:
        return str(self.local_path)

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"Location({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Location) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    # --- the filesystem ----------------------------------------------------------------

    @property
    def fs(self) -> Any:
        """The fsspec filesystem of a URL (raises ``StorageUnavailable`` when its package is
        missing)."""
        env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)))
        try:
            return _filesystem(self.protocol, os.getpid(), env)
        except StorageUnavailable as error:
            raise StorageUnavailable(f"{self.url}: {error}") from None

    def require_backend(self) -> None:
        """Fail now, with one line, when this URL's filesystem package is not installed."""
        if not self.is_local:
            self.fs  # noqa: B018 (built for its error)

    # --- reading -------------------------------------------------------------------------

    def exists(self) -> bool:
        return Path(self._path).exists() if self.is_local else bool(self.fs.exists(self._path))

    def is_file(self) -> bool:
        return Path(self._path).is_file() if self.is_local else bool(self.fs.isfile(self._path))

    def is_dir(self) -> bool:
        """A folder; on an object store, a prefix holding at least one object (or a bucket)."""
        return Path(self._path).is_dir() if self.is_local else bool(self.fs.isdir(self._path))

    def stat(self) -> FileStat | None:
        """Size, modification time (and entity tag) of a file; None when there is none."""
        if self.is_local:
            try:
                st = os.stat(self._path)
            except FileNotFoundError:
                return None
            return FileStat(st.st_size, st.st_mtime_ns)
        try:
            info = self.fs.info(self._path)
        except FileNotFoundError:
            return None
        if info.get("type") != "file":
            return None
        etag = info.get("ETag") or info.get("etag") or info.get("generation")
        return FileStat(int(info.get("size") or 0), _mtime_ns(info), str(etag) if etag else None)

    def open(self) -> IO[bytes]:
        """The whole file for reading: the local file, or the object fetched in one GET (one
        version of it, whatever is uploaded meanwhile). ``FileNotFoundError`` when absent."""
        if self.is_local:
            return open(self._path, "rb")
        return io.BytesIO(self.read_bytes())

    def open_stream(self) -> IO[bytes]:
        """Sequential reading in bounded requests, for reading a little of a large object (a
        header line) or hashing it without holding it in memory."""
        if self.is_local:
            return open(self._path, "rb")
        return self.fs.open(self._path, "rb", block_size=_CHUNK, cache_type="readahead")

    def read_bytes(self) -> bytes:
        if self.is_local:
            return Path(self._path).read_bytes()
        return self.fs.cat_file(self._path)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with self.open_stream() as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def iterdir(self) -> list[Location]:
        """The entries directly in this folder, sorted by name; none when it does not exist.
        Hidden entries (a name starting with a dot, such as a write in progress) are left out."""
        if self.is_local:
            folder = Path(self._path)
            names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        else:
            try:
                entries = self.fs.ls(self._path, detail=False)
            except FileNotFoundError:
                entries = []
            names = sorted({str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries})
            names = [n for n in names if n and f"{self._path}/{n}" != self._path]
        return [self / n for n in names if not n.startswith(".")]

    def files(self, suffix: str) -> list[Location]:
        """The files directly in this folder whose name ends with ``suffix``, sorted."""
        return [entry for entry in self.iterdir() if entry.name.endswith(suffix)]

    # --- writing -------------------------------------------------------------------------

    def write_atomically(self, write: Callable[[Any], None]) -> None:
        """Replace this file with what ``write`` produces, never visible half written.

        ``write`` receives a target to write to: a temporary path (local) or an in-memory
        buffer (object store); the result is published only after ``write`` returned.
        """
        if self.is_local:
            path = Path(self._path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            try:
                write(str(tmp))
                os.replace(tmp, path)
            finally:
                if tmp.exists():
                    tmp.unlink()
            return
        buffer = io.BytesIO()
        write(buffer)
        self.fs.pipe_file(self._path, buffer.getvalue())

    def write_bytes(self, data: bytes) -> None:
        def write(target: Any) -> None:
            if isinstance(target, str):
                Path(target).write_bytes(data)
            else:
                target.write(data)

        self.write_atomically(write)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(text.encode(encoding))

    def unlink(self) -> None:
        """Remove this file; nothing when there is none."""
        if self.is_local:
            Path(self._path).unlink(missing_ok=True)
        elif self.fs.exists(self._path):
            self.fs.rm_file(self._path)
