"""Screenshot of a weekly report page for the README (docs/images/weekly_report.png).

The top of the page as a laptop shows it (header, overview, the first anomaly charts), taken
in headless Chromium and stored as a 256-colour PNG so the picture stays small in the repo.

    .venv/bin/campaign-pipeline run --out /tmp/sample_out
    .venv/bin/python scripts/screenshot_report.py /tmp/sample_out/weekly_report/2025-05-05.html

Needs Chromium (Debian's package: apt-get install chromium) and the dev extra (Playwright).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="a weekly report page (.html)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "weekly_report.png")
    parser.add_argument("--width", type=int, default=1200, help="viewport width in px")
    parser.add_argument("--height", type=int, default=1700, help="height of the shot in px")
    args = parser.parse_args()
    if not args.page.is_file():
        print(f"error: {args.page}: no such page", file=sys.stderr)
        return 2
    chromium = next(
        (shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None
    )
    if chromium is None:
        print("error: chromium not found on PATH (apt-get install chromium)", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(args.page.resolve().as_uri(), wait_until="load")
        page.screenshot(path=str(args.out))
        browser.close()
    Image.open(args.out).convert("RGB").quantize(256).save(args.out, optimize=True)
    print(f"{args.out}: {args.out.stat().st_size / 1024:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
