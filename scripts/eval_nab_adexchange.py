#!/usr/bin/env python
"""The detection core and the seeds' method on NAB realAdExchange (real CPC/CPM, expert labels).

Reads <root>/data/*.csv (timestamp,value; hourly), runs `detect_series` with the DEFAULT
settings (chosen on the synthetic benchmark, never on these labels) and the seeds'
whole-series Z/IQR rule, writes both prediction CSVs and scores them with the project's
window scorer `../shared/tools/eval_nab.py` (imported; it is not copied into the repo).

Usage:
  python scripts/eval_nab_adexchange.py [--root ../shared/data/nab_adexchange]
        [--scorer ../shared/tools/eval_nab.py] [--out-dir DIR (default: <tmp>/nab_predictions)]
        [--sensitivity medium]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from campaign_pipeline.detection import detect_series, seeds_series_flags  # noqa: E402
from campaign_pipeline.detection.settings import settings_from_overrides  # noqa: E402

SHARED = REPO.parent / "shared"


def load_series(root: Path) -> pd.DataFrame:
    frames = []
    for path in sorted((root / "data").glob("*.csv")):
        df = pd.read_csv(path)
        frames.append(df.assign(series=path.stem))
    return pd.concat(frames, ignore_index=True)[["series", "timestamp", "value"]]


def load_scorer(path: Path):
    spec = importlib.util.spec_from_file_location("eval_nab", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--root", default=str(SHARED / "data" / "nab_adexchange"))
    ap.add_argument("--scorer", default=str(SHARED / "tools" / "eval_nab.py"))
    ap.add_argument("--out-dir", default=str(Path(tempfile.gettempdir()) / "nab_predictions"))
    ap.add_argument("--sensitivity", default="medium", choices=["low", "medium", "high"])
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help=(
            "override DetectionSettings fields "
            "(to measure an ablation, not to tune on these labels)"
        ),
    )
    args = ap.parse_args(argv)
    root, out_dir = Path(args.root), Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scorer = load_scorer(Path(args.scorer))
    frame = load_series(root)

    t0 = time.perf_counter()
    ours = detect_series(
        frame, settings=settings_from_overrides(args.set, sensitivity=args.sensitivity)
    )
    t_ours = time.perf_counter() - t0
    seeds = seeds_series_flags(frame, whole_series=True)
    preds = {"ensemble": ours, "seeds": seeds}
    rows = []
    for name, pred in preds.items():
        path = out_dir / f"nab_{name}.csv"
        pred[["series", "timestamp", "is_anomaly"]].assign(
            is_anomaly=pred["is_anomaly"].astype(int)
        ).to_csv(path, index=False)
        per, overall = scorer.score(pd.read_csv(path), root)
        print(f"\n== {name} ({path}) ==")
        with pd.option_context("display.width", 200, "display.float_format", "{:.3f}".format):
            print(per.to_string(index=False))
        rows.append(dict(method=name, **overall))
    res = pd.DataFrame(rows).set_index("method")
    print(f"\nensemble run time {t_ours:.2f} s on {len(frame):,} points")
    print(
        res[
            [
                "windows",
                "tp",
                "fp_events",
                "flagged_points",
                "precision",
                "recall",
                "f1",
                "point_fpr",
            ]
        ].to_markdown(floatfmt=".3f")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
