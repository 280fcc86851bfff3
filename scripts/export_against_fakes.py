"""`campaign-pipeline run` with live exports against the test suite's fake GA4 and Amplitude
servers on 127.0.0.1: what the export lines, the timings and the fakes' counts look like on a
data dir (default: the shipped sample), without real credentials.

    .venv/bin/python scripts/export_against_fakes.py --out /tmp/exports_live [--runs 2]
        [--fail-amplitude] [--data-dir DIR]

The first run sends, a second run (``--runs 2``) shows that nothing is sent again;
``--fail-amplitude`` makes Amplitude answer 503 to everything (the failure line and exit 1).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from campaign_pipeline_tests.exports.fake_servers import FakeAmplitude, FakeGA4  # noqa: E402

MEASUREMENT_ID, SECRET, KEY = "G-FAKE00001", "fake-ga4-secret", "fake-amplitude-key"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--fail-amplitude", action="store_true")
    args = parser.parse_args()
    with FakeGA4(MEASUREMENT_ID, SECRET) as ga4, FakeAmplitude(KEY) as amplitude:
        if args.fail_amplitude:
            amplitude.inject(503, times=10_000)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DAGSTER_PG_", "EXPORT_LEDGER", "DAGSTER_HOME"))
        }
        env.update(
            GA4_MEASUREMENT_ID=MEASUREMENT_ID,
            GA4_API_SECRET=SECRET,
            GA4_ENDPOINT=ga4.url,
            AMPLITUDE_API_KEY=KEY,
            AMPLITUDE_ENDPOINT=amplitude.url,
        )
        command = [str(REPO / ".venv" / "bin" / "campaign-pipeline"), "run", "--out", args.out]
        if args.data_dir:
            command += ["--data-dir", args.data_dir]
        code = 0
        for run in range(1, args.runs + 1):
            started = time.perf_counter()
            proc = subprocess.run(command, env=env, capture_output=True, text=True)
            code = proc.returncode
            print(f"run {run}: exit {code} in {time.perf_counter() - started:.1f}s")
            wanted = (
                r"^  (ga4_export|amplitude_export|export_ledger) |^exports |^  (ga4|amplitude) "
            )
            for line in proc.stdout.splitlines():
                if re.match(wanted, line):
                    print(line)
            for line in proc.stderr.splitlines():
                print(line)
            print(
                f"  fakes so far: GA4 kept {len(ga4.events):,} events, dropped or cut "
                f"{ga4.over_limit}; Amplitude ingested {len(amplitude.ingested):,}, duplicates "
                f"{amplitude.duplicates}, answers {dict(amplitude.answers)}"
            )
    return code


if __name__ == "__main__":
    sys.exit(main())
