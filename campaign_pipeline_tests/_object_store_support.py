"""Real servers on 127.0.0.1 for the object-storage and Celery tests: an S3 endpoint (moto's
standalone server, the ``moto[server]`` dev dependency) and a Redis server (Debian's
redis-server; skipped locally when missing, a failure in CI, like the other outside programs).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from campaign_pipeline_tests._orchestration_support import REPO_ROOT, require

# Throw-away credentials of the test server: the secret is also what the leak checks look for.
S3_ACCESS_KEY = "campaign-test-key"
S3_SECRET_KEY = "s3-secret-" + uuid.uuid4().hex
REDIS_PASSWORD = "redis-secret-" + uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class S3Server:
    """moto's S3-compatible HTTP server in its own process; ``env`` is what a process needs to
    reach it (the standard AWS variables, as a user would set them for MinIO)."""

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=log_path.parent,
        )
        _wait_for_port(self.port, self.process, "moto S3 server")

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def new_bucket(self) -> str:
        """A fresh, empty bucket (its name)."""
        import boto3

        name = f"campaign-{uuid.uuid4().hex[:12]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=name)
        return name

    def upload_dir(self, local: Path, url: str) -> None:
        """Copy the files of a local folder to ``url`` (``s3://bucket/prefix``)."""
        from campaign_pipeline.locations import Location

        with _environ(self.env):
            target = Location(url)
            for path in sorted(p for p in local.iterdir() if p.is_file()):
                (target / path.name).write_bytes(path.read_bytes())

    def stop(self) -> None:
        _stop(self.process)
        self._log.close()


class _environ:
    """Set environment variables for a block (restored after)."""

    def __init__(self, values: dict[str, str]):
        self.values, self.saved = values, {}

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.values}
        os.environ.update(self.values)

    def __exit__(self, *exc):
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def require_redis_server() -> str:
    found = shutil.which("redis-server")
    require(found is not None, "redis-server is not installed (apt-get install redis-server)")
    return found


class RedisServer:
    """A password-protected redis-server on an ephemeral port, nothing persisted."""

    def __init__(self, binary: str, folder: Path):
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self._log = open(folder / "redis.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [
                binary,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--requirepass", REDIS_PASSWORD,
                "--save", "",
                "--appendonly", "no",
                "--dir", str(folder),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        _wait_for_port(self.port, self.process, "redis-server")

    def url(self, db: int) -> str:
        return f"redis://:{REDIS_PASSWORD}@127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        _stop(self.process)
        self._log.close()


def start_celery_worker(name: str, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """One worker as the docs start it (``--pool solo``: steps run in this very process)."""
    log = open(log_path, "wb")  # noqa: SIM115 (the child keeps the descriptor)
    try:
        return subprocess.Popen(
            [
                str(REPO_ROOT / ".venv" / "bin" / "celery"),
                "-A", "campaign_pipeline.celery_worker",
                "worker",
                "--pool", "solo",
                "--queues", "dagster",
                "--loglevel", "INFO",
                "-n", f"{name}@%h",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    finally:
        log.close()


def stop_process(process: subprocess.Popen) -> None:
    _stop(process)
