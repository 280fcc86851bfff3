"""Multiple-testing control over the tests of one family (vectorized, NaN = not tested).

A run judges thousands of campaign x metric x day points; at a 1 % per-test level that is
dozens of false alerts per run. Benjamini-Hochberg bounds the expected share of false
alerts among alerts (FDR); Bonferroni (seed 002) bounds the chance of any false alert and
costs recall as the family grows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def adjust_pvalues(
    p: np.ndarray, groups: np.ndarray | None = None, method: str = "bh"
) -> np.ndarray:
    """Adjusted p-values (BH q-values, Bonferroni, or unchanged) within each group.

    NaN p-values are points that were not tested: they get NaN and do not count in the
    family size m.
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    tested = ~np.isnan(p)
    if method == "none" or not tested.any():
        return np.where(tested, p, np.nan)
    g = np.zeros(p.shape, dtype=np.int64) if groups is None else pd.factorize(np.asarray(groups))[0]
    frame = pd.DataFrame({"p": p[tested], "g": g[tested], "pos": np.flatnonzero(tested)})
    m = frame.groupby("g")["p"].transform("size").to_numpy()
    if method == "bonferroni":
        out[frame["pos"].to_numpy()] = np.minimum(1.0, frame["p"].to_numpy() * m)
        return out
    if method != "bh":
        raise ValueError(f"unknown method {method!r}")
    frame["m"] = m
    frame = frame.sort_values(["g", "p"], kind="mergesort")
    rank = frame.groupby("g").cumcount().to_numpy() + 1
    frame["raw"] = frame["p"].to_numpy() * frame["m"].to_numpy() / rank
    # step-up: q_(i) = min over j >= i of p_(j) m / j, taken from the largest p downwards
    frame["q"] = frame.iloc[::-1].groupby("g")["raw"].cummin().iloc[::-1]
    out[frame["pos"].to_numpy()] = np.minimum(1.0, frame["q"].to_numpy())
    return out


def split_level(q: np.ndarray, steps: int) -> np.ndarray:
    """Adjusted p-values of one time step of a family that spends its level evenly over
    ``steps`` steps: q x steps (at most 1), so q <= level means the step's own correction
    rejects at level / steps. Each step then reads only its own tests, and the family's share
    of false alerts stays within the level: a step's false alerts over all the family's
    alerts are at most its false alerts over its own, whose expectation is level / steps."""
    if steps == 1:
        return q
    return np.minimum(1.0, q * steps)
