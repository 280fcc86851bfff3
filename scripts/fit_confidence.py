#!/usr/bin/env python
"""Fit the flags' confidence on labelled synthetic runs and show how far it can be trusted.

A flag's confidence (`explain.confidence`) is a logistic model on a few facts about the flag
(`explain.CONFIDENCE_FEATURES`: -log10 of its q-value when a test with one fired, how many
other metrics of the campaign were flagged the same day, how many other methods agreed,
whether a rule or only CUSUM raised it). This script fits its coefficients where the truth is
known: flags of the campaign benchmark (`benchmark_detection.py`'s pipeline generator, both
noise settings; a flag is real when its day or week overlaps a labelled window of its
campaign, the persistent kinds' windows running to the end, as that benchmark's precision
counts) and of the series benchmark (`benchmark_series.py`, its five default settings, not
the opt-in `counts`, and both spacings; a flagged point is real inside a labelled window). Fitting:
maximum likelihood with a small ridge penalty on
the slopes (`--ridge`), scipy's BFGS.

Then, on other seeds, it prints for the coefficients now in `DetectionSettings` and for the
fitted ones: the flags, the share of them that are real, the ranking AUC (the chance a real
flag has a higher confidence than a false one), the Brier score next to that of a constant
at the share real, and a reliability table (share real per confidence band). The week grain
of the campaign benchmark uses the same coefficients and is shown on its own.

Usage:
  python scripts/fit_confidence.py [--part campaign series] [--fit-seeds 4 ... 15]
        [--eval-seeds 148 ... 159] [--series-fit-seeds 1 2 3] [--series-eval-seeds 142 143 144]
        [--ridge 0.01]
About 4 minutes on 2 cores with the defaults.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.stats import rankdata

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from campaign_pipeline.detection import detect_campaign_anomalies  # noqa: E402
from campaign_pipeline.detection.explain import CONFIDENCE_FEATURES, confidence, confidence_features  # noqa: E402
from campaign_pipeline.detection.series import detect_series  # noqa: E402
from campaign_pipeline.detection.settings import DetectionSettings  # noqa: E402

BANDS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0)


def campaign_flags(seeds: list[int], workdir: Path) -> pd.DataFrame:
    """Day and week flags of the campaign benchmark with `real` (inside a labelled window)."""
    import benchmark_detection as bench  # a neighbour in scripts/

    out = []
    for setting in ("default", "noisy"):
        for seed in seeds:
            daily, campaigns, labels = bench.pipeline_generate(seed, 120, 112, setting, workdir)
            daily["date"] = pd.to_datetime(daily["date"])
            flags = detect_campaign_anomalies(
                daily,
                campaigns=campaigns,
                judge_start=daily["date"].min(),
                judge_end=daily["date"].max(),
                settings=DetectionSettings(),
            )
            lab = bench._labels_for_scoring(labels, daily["date"].max(), bench.PERSISTENT_KINDS)
            flags = flags.assign(
                campaign_id=flags["campaign_id"].astype(str),
                start=pd.to_datetime(flags["period_start"]),
                end=pd.to_datetime(flags["period_end"]),
            )
            # a flag is real when its period overlaps a labelled window of its campaign
            pairs = flags.reset_index().merge(lab, on="campaign_id", how="inner")
            hit = (pairs["start"] <= pairs["end_date"]) & (pairs["end"] >= pairs["start_date"])
            flags["real"] = flags.index.isin(pairs.loc[hit, "index"])
            # runs share campaign ids and dates: keep each run's flags apart for the features
            out.append(
                flags.assign(
                    setting=setting,
                    seed=seed,
                    campaign_id=f"{setting}/{seed}/" + flags["campaign_id"],
                )
            )
            print(
                f"  campaign {setting} seed {seed}: {len(flags)} flags, "
                f"{flags['real'].mean():.3f} real",
                flush=True,
            )
    return pd.concat(out, ignore_index=True)


def series_flags(seeds: list[int]) -> pd.DataFrame:
    """Flagged points of the series benchmark with `real` (inside a labelled window)."""
    import benchmark_series as bench

    out = []
    for spacing in bench.SPACINGS:
        for setting in bench.DEFAULT_SETTINGS:
            for seed in seeds:
                syn = bench.generate(seed, spacing=spacing, setting=setting)
                pred = detect_series(syn.frame, DetectionSettings())
                flags = pred[pred["is_anomaly"]].reset_index(drop=True)
                pairs = flags.reset_index().merge(syn.labels, on="series", how="inner")
                hit = pairs["timestamp"].between(pairs["start"], pairs["end"])
                flags = flags.assign(
                    real=flags.index.isin(pairs.loc[hit, "index"]),
                    campaign_id=f"{spacing}/{setting}/{seed}/" + flags["series"],
                    grain="point",
                    period_start=flags["timestamp"],
                )
                out.append(flags.assign(setting=f"{spacing} {setting}", seed=seed))
            print(f"  series {spacing}: done", flush=True)
    return pd.concat(out, ignore_index=True)


def fit(flags: pd.DataFrame, ridge: float) -> np.ndarray:
    """Logistic regression of `real` on the confidence features (ridge on the slopes only)."""
    x = confidence_features(flags)
    y = flags["real"].to_numpy(float)

    def loss(b):
        z = x @ b
        return np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * ridge * np.sum(b[1:] ** 2)

    def grad(b):
        p = 1.0 / (1.0 + np.exp(-(x @ b)))
        return x.T @ (p - y) + ridge * np.concatenate([[0.0], b[1:]])

    return minimize(loss, np.zeros(x.shape[1]), jac=grad, method="BFGS").x


def auc(score: np.ndarray, real: np.ndarray) -> float:
    """Mann-Whitney AUC (ties count half)."""
    n1, n0 = real.sum(), (~real).sum()
    if not n1 or not n0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[real].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def report(name: str, flags: pd.DataFrame, coefficients: dict[str, tuple[float, ...]]) -> None:
    real = flags["real"].to_numpy(bool)
    base = real.mean() if len(real) else float("nan")
    print(
        f"\n### {name}: {len(flags)} flags, {base:.3f} real (Brier of a constant at that share "
        f"{np.mean((base - real) ** 2):.4f})\n"
    )
    rows, bands = [], []
    for label, coef in coefficients.items():
        p = confidence(flags, coef)
        rows.append(dict(coefficients=label, auc=auc(p, real), brier=np.mean((p - real) ** 2)))
        band = pd.cut(p, BANDS, include_lowest=True)
        tab = (
            pd.DataFrame({"band": band, "real": real, "p": p})
            .groupby("band", observed=True)
            .agg(flags=("real", "size"), share_real=("real", "mean"), mean_confidence=("p", "mean"))
        )
        bands.append(tab.assign(coefficients=label).reset_index())
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"))
    print()
    print(
        pd.concat(bands)[
            ["coefficients", "band", "flags", "share_real", "mean_confidence"]
        ].to_markdown(index=False, floatfmt=".3f")
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--part", nargs="+", default=["campaign", "series"], choices=["campaign", "series"]
    )
    ap.add_argument("--fit-seeds", type=int, nargs="+", default=list(range(4, 16)))
    ap.add_argument("--eval-seeds", type=int, nargs="+", default=list(range(148, 160)))
    ap.add_argument("--series-fit-seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--series-eval-seeds", type=int, nargs="+", default=[142, 143, 144])
    ap.add_argument("--ridge", type=float, default=0.01)
    args = ap.parse_args(argv)
    now = DetectionSettings()
    print("features:", ", ".join(CONFIDENCE_FEATURES))
    if "campaign" in args.part:
        with tempfile.TemporaryDirectory() as tmp:
            train = campaign_flags(args.fit_seeds, Path(tmp))
            test = campaign_flags(args.eval_seeds, Path(tmp))
        coef = fit(train[train["grain"] == "day"], args.ridge)
        print(
            f"\nconfidence_coefficients = ({', '.join(f'{c:.2f}' for c in coef)})  "
            f"# fitted on seeds {args.fit_seeds[0]}-{args.fit_seeds[-1]}, day grain"
        )
        both = {"DetectionSettings": now.confidence_coefficients, "fitted": tuple(coef)}
        report(
            f"campaign day grain, seeds {args.eval_seeds[0]}-{args.eval_seeds[-1]}",
            test[test["grain"] == "day"],
            both,
        )
        report(
            f"campaign week grain, seeds {args.eval_seeds[0]}-{args.eval_seeds[-1]}",
            test[test["grain"] == "week"],
            both,
        )
    if "series" in args.part:
        train, test = series_flags(args.series_fit_seeds), series_flags(args.series_eval_seeds)
        coef = fit(train, args.ridge)
        print(
            f"\nseries_confidence_coefficients = ({', '.join(f'{c:.2f}' for c in coef)})  "
            f"# fitted on series seeds {args.series_fit_seeds}"
        )
        both = {"DetectionSettings": now.series_confidence_coefficients, "fitted": tuple(coef)}
        report(f"series benchmark, seeds {args.series_eval_seeds}", test, both)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
