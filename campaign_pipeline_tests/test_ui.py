"""The Dagster UI: `dagster dev` from workspace.yaml answers GraphQL with every asset, check,
schedule and sensor of the code location, and headless Chromium renders the asset graph.

Needs Debian's chromium for the screenshot part: skips locally without it, fails in CI.
"""

import os
import signal
import socket
import subprocess
import time
from importlib import import_module

import pytest
import requests

from campaign_pipeline_tests._orchestration_support import (
    CODE_MODULE,
    REPO_ROOT,
    chromium_binary,
    clean_env,
    require,
    sqlite_home,
    write_raw,
)

pytestmark = pytest.mark.ui

STARTUP_SECONDS = 120  # a cold code server on 2 cores needs 10-30 s; CI machines vary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop_group(process: subprocess.Popen) -> None:
    """dagster dev ignores SIGTERM for a long time: end its whole process group (a short grace
    for a clean exit; its instance and files are the test's own, so nothing needs it)."""
    if process.poll() is not None:
        return
    pgid = os.getpgid(process.pid)
    os.killpg(pgid, signal.SIGTERM)
    try:
        process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ui")
    data = tmp / "data"
    write_raw(data / "raw")
    port = _free_port()
    log = open(tmp / "dagster_dev.log", "w")
    env = clean_env(
        DAGSTER_HOME=str(sqlite_home(tmp / "home")), CAMPAIGN_PIPELINE_DATA_DIR=str(data)
    )
    process = subprocess.Popen(
        [
            str(REPO_ROOT / ".venv" / "bin" / "dagster"),
            "dev",
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"dagster dev exited ({process.returncode}): "
                    f"{(tmp / 'dagster_dev.log').read_text()[-3000:]}"
                )
            try:
                if requests.get(f"{base}/server_info", timeout=2).ok and _location_loaded(base):
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"dagster dev did not answer in {STARTUP_SECONDS}s: "
                    f"{(tmp / 'dagster_dev.log').read_text()[-3000:]}"
                )
            time.sleep(0.25)
        yield {"base": base, "tmp": tmp}
    finally:
        _stop_group(process)
        log.close()


def _graphql(base: str, query: str) -> dict:
    response = requests.post(f"{base}/graphql", json={"query": query}, timeout=60)
    response.raise_for_status()
    payload = response.json()
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


def _location_loaded(base: str) -> bool:
    data = _graphql(
        base,
        "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
        "locationOrLoadError { __typename } } } } }",
    )
    entries = data["workspaceOrError"]["locationEntries"]
    return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)


def _expected():
    repo = import_module(CODE_MODULE).defs.get_repository_def()
    return {
        "assets": {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()},
        "checks": {
            f"{key.asset_key.to_user_string()}:{key.name}"
            for key in repo.asset_graph.asset_check_keys
        },
        "schedules": {s.name for s in repo.schedule_defs},
        "sensors": {s.name for s in repo.sensor_defs},
    }


def test_graphql_lists_every_asset_check_schedule_and_sensor(webserver):
    expected = _expected()
    data = _graphql(
        webserver["base"],
        """{
      assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } }
      repositoriesOrError { ... on RepositoryConnection { nodes {
        name location { name } schedules { name cronSchedule executionTimezone } sensors { name } }
        } }
    }""",
    )
    assets = {"/".join(node["assetKey"]["path"]) for node in data["assetNodes"]}
    checks = {
        f"{'/'.join(node['assetKey']['path'])}:{check['name']}"
        for node in data["assetNodes"]
        for check in (node["assetChecksOrError"].get("checks") or [])
    }
    (repo,) = data["repositoriesOrError"]["nodes"]
    assert repo["location"]["name"] == "campaign_pipeline"
    assert assets == expected["assets"]
    assert checks == expected["checks"]
    assert {s["name"] for s in repo["schedules"]} == expected["schedules"]
    assert {s["name"] for s in repo["sensors"]} == expected["sensors"]
    # the orchestration this repo promises is there, not only whatever the module happens to hold
    assert {"weekly_pipeline_schedule"} <= expected["schedules"]
    assert {"raw_file_sensor", "anomaly_alert_sensor", "run_failure_alert_sensor"} <= expected[
        "sensors"
    ]
    assert {"anomaly_flags", "campaign_health", "weekly_campaign_metrics"} <= expected["assets"]
    assert len(expected["checks"]) >= 4
    weekly = next(s for s in repo["schedules"] if s["name"] == "weekly_pipeline_schedule")
    assert weekly["cronSchedule"] == "0 6 * * 1"


def test_headless_chromium_renders_the_asset_graph(webserver):
    chromium = chromium_binary()
    require(chromium is not None, "Debian's chromium is not installed (apt-get install chromium)")
    shot = webserver["tmp"] / "asset_graph.png"
    profile = webserver["tmp"] / "chromium-profile"
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--screenshot={shot}",
        "--window-size=1600,1000",
        "--virtual-time-budget=20000",
        f"{webserver['base']}/asset-groups",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=120)
    finally:
        _stop_group(process)
    assert shot.exists(), output.decode(errors="replace")[-2000:]
    if os.environ.get("CAMPAIGN_PIPELINE_UI_SCREENSHOT"):
        shot.replace(os.environ["CAMPAIGN_PIPELINE_UI_SCREENSHOT"])
        shot = type(shot)(os.environ["CAMPAIGN_PIPELINE_UI_SCREENSHOT"])

    import matplotlib.image
    import numpy as np

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1000, 1600)
    assert shot.stat().st_size > 20_000, "a near-empty page compresses to a tiny PNG"
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50, "the page is (almost) one colour: nothing rendered"
    # text and graph nodes: a fair share of pixels differs from the background colour
    background = np.median(pixels.reshape(-1, 3), axis=0)
    assert (np.abs(pixels - background).sum(axis=-1) > 0.1).mean() > 0.02
