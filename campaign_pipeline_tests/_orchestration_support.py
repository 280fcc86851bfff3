"""Helpers shared by the orchestration tests (schedule, sensors, instance, UI, executors).

Small raw exports whose weeks are known, and the rule for tests that need outside
programs: skip locally when the program is missing, fail in CI (CI=true) where .ci/run
installs it, so a broken install cannot pass as a skip.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PG_ENV = (
    "DAGSTER_PG_HOST",
    "DAGSTER_PG_PORT",
    "DAGSTER_PG_USER",
    "DAGSTER_PG_PASSWORD",
    "DAGSTER_PG_DB",
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` locally; fail in CI, where the requirement must be met."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def require_postgres() -> dict[str, str]:
    missing = [name for name in PG_ENV if not os.environ.get(name)]
    require(
        not missing,
        f"no PostgreSQL server configured ({', '.join(missing)} unset; "
        'start one with: eval "$(scripts/ci_postgres.sh start)")',
    )
    return {name: os.environ[name] for name in PG_ENV}


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


# --- tiny raw exports ------------------------------------------------------------------------

CAMPAIGNS = """id,user_id,project_name,daily_budget,platform,name,created_at
c1,u1,Alpha,100,Facebook,Spring,2024-01-01
c2,u1,Alpha,50,Google Ads,Brand,2024-01-01
"""

# Week of 2024-01-08 (Mon) and week of 2024-01-15: two weeks of insights for c1, one for c2.
INSIGHTS = """id,campaign_id,created_at,spend,impressions,clicks,conversions
1,c1,2024-01-08 10:00:00,10,1000,10,1
2,c1,2024-01-09,12,1100,12,1
3,c1,01/16/2024,9,900,8,0
4,c2,2024-01-17,5,500,5,1
"""

LEADS = """id,campaign_id,name,email,phone,lead_status,added_date,deal_value
l1,c1,Ann,ann@example.com,+1 202-555-0143,NEW,2024-01-09,
l2,c2,Bob,bob@example.com,+1 202-555-0178,DONE_DEAL,2024-01-17,120
"""

STATUS_CHANGES = """id,lead_id,old_status,new_status,created_at
s1,l1,NEW,QUALIFIED,2024-01-23 09:00:00
"""

RAW_EXPORTS = {
    "campaigns.csv": CAMPAIGNS,
    "insights.csv": INSIGHTS,
    "campaign_leads.csv": LEADS,
    "lead_status_changes.csv": STATUS_CHANGES,
}


def write_raw(raw_dir: Path, files: dict[str, str] | None = None) -> Path:
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (files or RAW_EXPORTS).items():
        (raw_dir / name).write_text(text, encoding="utf-8")
    return raw_dir


def replace_file(path: Path, text: str) -> None:
    """Write new content and move mtime on, as a re-export would (even within one clock tick)."""
    path = Path(path)  # also a local storage Location
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    after = path.stat().st_mtime_ns
    if after <= before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


# --- a real HTTP listener for webhook posts --------------------------------------------------


class WebhookListener:
    """An HTTP server on 127.0.0.1 (ephemeral port) that records JSON bodies it receives.

    ``statuses`` are answered first, in order (e.g. [503] to make the first post fail);
    after that every post gets 200. ``delay``: seconds before each answer (a slow webhook).
    """

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0):
        import http.server
        import json
        import threading
        import time

        self.bodies: list[dict] = []
        self.paths: list[str] = []
        self._statuses = list(statuses or [])
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                status = listener._statuses.pop(0) if listener._statuses else 200
                listener.bodies.append(body)
                listener.paths.append(self.path)
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"error")

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def __enter__(self) -> WebhookListener:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# --- the real code location ------------------------------------------------------------------

CODE_MODULE = "campaign_pipeline.definitions"
PIPELINE_JOB = "weekly_pipeline_job"
TEST_PARTITION = "2024-01-15"  # a week with insights, leads and campaigns in RAW_EXPORTS


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any instance or PostgreSQL choice, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "DAGSTER_HOME"
        and not k.startswith("DAGSTER_PG_")
        and not k.startswith("CAMPAIGN_PIPELINE_INSTANCE_")
    }
    env["PATH"] = f"{REPO_ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONWARNINGS"] = "ignore"
    env.update(extra)
    return env


def sqlite_home(path: Path) -> Path:
    """A DAGSTER_HOME with the repo's local (SQLite) instance config."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "deploy" / "local" / "dagster.yaml", path / "dagster.yaml")
    return path
