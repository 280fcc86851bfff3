"""Configuration of the anomaly detector: every threshold has a default and a reason.

Thresholds were chosen on the synthetic benchmarks (``scripts/benchmark_detection.py``,
``scripts/benchmark_series.py``), never on the NAB labels; docs/anomaly_detection.md says which
choices a NAB result prompted. ``sensitivity`` scales the decision thresholds together so a user
can trade alerts for recall with one knob instead of ten.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields, replace

SENSITIVITIES = ("low", "medium", "high")
MULTIPLE_TESTING = ("bh", "bonferroni", "none")
CORRECTION_FAMILIES = ("call", "week", "day")

# Metrics whose daily value is a count of events: tested with Poisson / negative binomial.
COUNT_METRICS = ("impressions", "clicks", "conversions", "leads")
# Rates tested on their counts (Poisson with lognormal day noise): metric -> (numerator,
# denominator).
RATE_METRICS = {
    "ctr": ("clicks", "impressions"),
    "conversion_rate": ("conversions", "clicks"),
    "lead_conversion_rate": ("converted_leads", "leads"),
}
# Cost per event -> (money, event count): a cost spike is the count of events falling short
# of what the day's spend should have bought, so it is also tested as a count (Poisson).
COST_METRICS = {
    "cpc": ("spend", "clicks"),
    "cpm": ("spend", "impressions"),
    "cpa": ("spend", "conversions"),
    "cpl": ("spend", "leads"),
}
# Money and money-per-event: continuous, tested with a robust z on the log scale because
# they are positive and right-skewed (a doubling and a halving are equally surprising).
CONTINUOUS_METRICS = ("spend", "cpc", "cpm", "cpa", "cpl")


@dataclass(frozen=True)
class DetectionSettings:
    """Switches and thresholds of the detection ensemble (see docs/anomaly_detection.md)."""

    # --- which points are judged -------------------------------------------------------
    # Two weeks: fewer points make the median/MAD and the weekday profile unreliable.
    min_history_days: int = 14
    # Four weeks of trailing baseline: long enough for a robust median that survives a
    # one-week outage, short enough to follow real budget changes within a month.
    baseline_days: int = 28
    # Metrics judged at day grain (the seeds checked these ten plus the two count rates).
    # lead_conversion_rate is not judged by default: converted_leads of a day are not a subset
    # of that day's leads (leads convert days or weeks after they arrive), so the ratio is a
    # flow that can exceed 1 and no binomial model fits it. Add it back explicitly if wanted.
    metrics: tuple[str, ...] = (
        "spend",
        "impressions",
        "clicks",
        "conversions",
        "leads",
        "ctr",
        "conversion_rate",
        "cpc",
        "cpm",
        "cpa",
        "cpl",
    )

    # --- the single knob -----------------------------------------------------------------
    # low = fewer, surer alerts; high = more recall. Scales fdr, effect size and z (below).
    sensitivity: str = "medium"

    # --- detector switches -----------------------------------------------------------------
    use_seeds_zscore: bool = False  # seeds' Z>3 on the trailing window: comparison only
    use_seeds_iqr: bool = False  # seeds' 1.5 IQR rule on the trailing window: comparison only
    use_robust: bool = True  # median / winsorized-SD robust z: the backbone of every test
    use_seasonality: bool = True  # weekday profile from trailing same-weekday medians
    # Sub-daily series (`campaign-pipeline detect` on hourly data) have two cycles: the
    # hour-of-day profile, learned from the last few days, and the working week, which those
    # days cannot show, so a 4-day hourly baseline met every weekend as a level shift. The
    # day-of-week factor comes from the medians of the calendar days of the last
    # `weekday_seasonal_weeks` weeks, weighted by how clearly the weekly pattern stands out of
    # the day-to-day wander (`baselines.weekday_factors`; calendar days, so a Saturday's small
    # hours take Saturday's level, not mostly Friday's as a 24-hour window centred on them
    # did). Daily series have it already (`use_seasonality`).
    # Series benchmark, hourly F1 0.787 -> 0.812 (its `weekly` setting 0.732 -> 0.837).
    use_weekday_seasonality: bool = True
    # Four weeks, as the daily weekday profile's four same weekdays.
    weekday_seasonal_weeks: int = 4
    # A sub-daily step is judged only once this many earlier whole days of its own weekday are
    # known (at most `weekday_seasonal_weeks`; `detectors.profile_unknown`): the weekday
    # factor's James-Stein weight needs two of each weekday to tell a working week from wander;
    # judged after two days of history (0), a new hourly series meets its first weekends as
    # drops of 40-50 % (null hourly Poisson series: the only flagged weeks, 0.111 of weeks ->
    # 0). Two, as a daily series waits `min_history_days` (two of each weekday) for its profile.
    # Series benchmark hourly F1 0.799 -> 0.783: the events of series' first two weeks are
    # missed (36 windows of 915), and 23 false events there are gone; daily unchanged.
    weekday_min_weeks: int = 2
    # A phase of a James-Stein profile (a daily series' weekday, a sub-daily series' weekday, a
    # sub-daily count series' hour of day) known from two values that differ by more than this
    # many within-phase standard deviations is torn: one of the two is an outlier, which two
    # values cannot single out, so the phase is unknown (factor 1, its steps not judged) until
    # a third value's median outvotes it (`baselines.shrunk_phase_profile`). Two values are
    # what a phase has when judging starts, and a series' first, unjudged days are checked by
    # nothing else: a 10x Saturday in them turns the next normal Saturday and Sunday into
    # "drops" (the weight's spread within phases is winsorized for the same reason). Series
    # benchmark F1 hourly 0.799 either way, daily 0.715 -> 0.719; campaign sample 124 -> 125 flags.
    # Five: in the week a daily series' phases rest on two values each, 0.14 % of the steps of
    # normal noise (sd 15 %) and 0.45 % of t(5) noise are torn (4: 0.37 % and 0.85 %; 4,000
    # series, one run), while a 10x day tears its phase up to a noise sd of 33 %. 0 = off.
    profile_torn_z: float = 5.0
    # Noise by phase (`baselines.phase_scale_factors`): a ratio read every hour is noisier in
    # the quiet hours, where fewer clicks stand behind it, so one scale for all hours flags
    # the night's ordinary wobbles and hides a spike at the busiest hour. Fitted from the last
    # `phase_scale_cycles` cycles of standardized residuals by `phase_scale_harmonics` Fourier
    # harmonics, shrunk by James-Stein against the spread between cycles, and used only where
    # an F test of the profile rejects "no profile" at `phase_scale_alpha`: an estimated
    # profile where there is none narrows some hours' bands, and alarms grow faster there
    # than they shrink where it widens them (JS alone cost the constant-noise settings up to
    # 0.018 hourly F1). The point test and the window shift use it. Fourteen cycles: two of
    # each weekday, 336 hourly points for 5 coefficients. Series path only: sub-daily series
    # (hour of day) with `use_phase_scale`, daily ones (weekday) with `use_phase_scale_daily`.
    # Series benchmark seeds 1-3, F1 hourly 0.797 -> 0.825 (its `hetero` setting 0.738 ->
    # 0.862, the other four within -0.005 / +0.008), daily 0.708 -> 0.721 (hetero 0.699 ->
    # 0.756); docs/anomaly_detection.md has the rule, stated before the runs, and the
    # versions that failed it. `phase_scale_widen_only` lets a profile widen an hour's band but
    # never narrow it (measured, not kept).
    use_phase_scale: bool = True
    use_phase_scale_daily: bool = True
    phase_scale_cycles: int = 14
    phase_scale_harmonics: int = 2
    phase_scale_widen_only: bool = False
    # 1 %: a profile is a property of the series, tested at each step, so a loose level would
    # hand many constant-noise series a chance profile. At 1 %, 0.06 % of the steps of
    # constant iid noise and 1.4 % of AR(1) 0.8 noise got one (a one-off run on 20 series of
    # 30 hourly days; `test_baselines.py` checks the iid case stays under 1 %).
    phase_scale_alpha: float = 0.01
    # The weekday profile of a daily series (the campaign pipeline's) is shrunk towards 1 by
    # the same James-Stein weight (`baselines.seasonal_factors_js`) instead of k / (k + 2):
    # a clear weekend dip is kept whole, wander is not turned into a profile. Campaign
    # benchmark seeds 4-15, off -> on: F1 noisy 0.853 -> 0.868, default 0.961 either way.
    # Sub-daily series
    # keep k / (k + 2) for their hour-of-day profile: the weight there cost hourly F1 (0.812
    # -> 0.806 on the series benchmark).
    weekday_james_stein: bool = True
    # The hour-of-day profile of a sub-daily count series (`campaign-pipeline detect` on hourly
    # clicks or orders) is shrunk by that James-Stein weight too. A count test knows its noise
    # (Poisson, or negative binomial from the window), so a profile pulled towards 1 is an
    # expectation that is wrong by a fixed share at every quiet hour: k / (k + 2) from four
    # days left the night at 1.25x its level (an hourly profile from 0.3 to 1.7), and the
    # hours after midnight of each weekend read as drops (null hourly Poisson series, seeds
    # 1-3: a flag in 22 % of weeks, 11 % with it). Series that are not counts keep k / (k + 2)
    # (`seasonal_shrinkage`): the weight cost their hourly F1 (0.812 -> 0.806). It costs the
    # series benchmark's `counts` setting some recall (hourly F1 0.372 -> 0.333: 42 -> 37
    # windows found, 1 -> 2 false events).
    count_hour_james_stein: bool = True
    use_count_tests: bool = True  # Poisson/NB for counts, Poisson-lognormal for rates
    # The day noise of a rate (CTR, conversion rate) from moments of its counts (winsorized
    # (n - m)^2 - m, `detectors.rate_day_noise`) instead of the log-rate spread minus its
    # Poisson part, which overstates it where counts are small (docs/anomaly_detection.md).
    rate_noise_moments: bool = True
    # Empirical Bayes for that day noise (`detectors.moderate_day_noise`, limma's moderated
    # variance): each day, the estimates of all campaigns' CTR day noise (and, apart, their
    # conversion rate's) give a prior; each campaign's estimate is pulled toward it by how
    # little its own window tells, and its t tail gains the prior's degrees of freedom. How
    # much is pooled is measured from the spread of the estimates: campaigns whose noise
    # differs keep their own. Campaign benchmark seeds 4-15 noisy: F1 0.887 -> 0.899,
    # ctr_drift recall 0.67 -> 0.81; out of sample (seeds 16-75, with the df below) ctr_drift
    # 0.75 -> 0.84, cpc_spike 0.81 -> 0.84 (docs/anomaly_detection.md).
    rate_noise_pooling: bool = True
    # The prior needs this many campaigns with an informative estimate on the day: moments of
    # the log variances from fewer are too noisy to say how alike the campaigns are.
    noise_pool_min_series: int = 10
    # Estimates worth fewer degrees of freedom (a few conversions a day: Poisson noise hides
    # the day noise) are pulled toward the prior but do not shape it: they sit on the scale
    # floor often, and a floored log variance is no log chi2.
    noise_prior_min_df: float = 5.0
    # The t tail of a rate's log-rate z takes the degrees of freedom of its whole variance,
    # day noise (estimated) plus the Poisson part 1 / expected count (known): Satterthwaite,
    # df x (total / day noise)^2. Where Poisson noise dominates, the estimate's error hardly
    # moves the z, and a t with the day noise's own df is too wide there.
    # Campaign benchmark seeds 4-15 `mixed` (pooling on): cpc_spike 0.83 -> 0.86, noisy unchanged.
    rate_z_satterthwaite: bool = True
    use_cusum: bool = True  # sustained drift and level shifts
    use_rules: bool = True  # impossible combinations and budget overspend
    use_weekly: bool = True  # week-grain flags against the trailing weeks
    # recent days vs a lagged reference: slow drifts the trailing median would absorb
    use_window_shift: bool = True

    # --- statistics --------------------------------------------------------------------------
    # BH keeps the share of false alerts among alerts near `fdr`; Bonferroni (seed 002) keeps
    # the chance of any false alert near `alpha` and loses recall on large runs.
    multiple_testing: str = "bh"
    # 5 % of the family's test alerts false at most, before the effect-size gate and the
    # corroboration that cut it further; with calibrated p-values the campaign benchmark keeps
    # precision above 0.9 at this level. The family counts every judged point's window-shift
    # test, p = 1 where it did not apply: leaving those out would shrink the family to about
    # half and run BH at about twice this level. 0.1 buys recall with precision
    # (docs/anomaly_detection.md).
    fdr: float = 0.05
    alpha: float = 0.05  # family-wise error for Bonferroni
    # Family of the correction: its tests' share of false alerts is held at `fdr`. "week" (an
    # ISO week: every campaign and metric, Monday to Sunday) keeps the guarantee about the
    # week a person reads; "day" is one day's tests; "call" the whole call (for experiments).
    correction_family: str = "week"
    # Decide each time step of a week or day family on its own, at the family's level split
    # evenly over its steps (fdr / 7 for a day of a week; fdr / 168 for an hour of an hourly
    # week), so a verdict reads nothing after its point and is final once its point is in, as
    # the contract asks. The family's share of false alerts stays <= fdr (a step's false
    # alerts over the family's alerts is at most its own share, and the steps' levels sum to
    # fdr). False: BH over the family at once, which weighs a Monday by its Sunday (a week the
    # data end inside can gain or lose flags when its other days arrive); it keeps more
    # recall when a week's alerts bunch on a few days. "call" ignores it.
    causal_correction: bool = True
    # Minimum relative change |value/expected - 1| for an alert: with thousands of
    # impressions a 3 % dip is "significant" but nobody should act on it.
    min_relative_effect: float = 0.30
    # Robust z the point must also reach (agreement of the count test with the robust view):
    # the conventional three sigma (3.5 with fdr 0.01 lost recall on both synthetic benchmarks,
    # docs/anomaly_detection.md).
    min_robust_z: float = 3.0
    # A day-grain alert from the statistical tests needs a second metric of the same
    # campaign-day to fire too (a real spike moves spend and CPC, an outage spend, impressions
    # and clicks), unless it is strong on its own: z and effect `strong_single_factor` times
    # the thresholds. Noise rarely moves two metrics at once beyond their bands.
    require_corroboration: bool = True
    strong_single_factor: float = 1.5
    # `campaign-pipeline detect` judges positive series on the log scale, where halving and
    # doubling are the same size; a percent gate is not (+45 % is log 0.37, -45 % is log
    # 0.60), so a lone series' drop of 40 % could never be strong alone. When on, the
    # strong-alone effect of a positive series is the ratio max(v/e, e/v) - 1 (a drop to 0.69x
    # counts as +45 %). Series path only: on the campaign benchmark the same gate cost
    # precision (0.919 -> 0.909) with no recall gained, as metrics there corroborate each
    # other; on the series benchmark it raised F1 0.798 -> 0.807 hourly, 0.654 -> 0.688 daily.
    lone_series_ratio_effect: bool = True
    # Scale floor as a share of the level: a series that never moved (zero MAD) must not
    # turn a 1 % wiggle into an infinite z.
    relative_scale_floor: float = 0.05
    # Seasonal-profile shrinkage (the hour-of-day profile of series that are not counts, and
    # of counts with `count_hour_james_stein` off; the daily weekday profile with
    # `weekday_james_stein` off): a factor from k same-phase points is pulled to 1 by
    # k / (k + shrink) so four noisy Mondays do not invent a pattern.
    seasonal_shrinkage: float = 2.0
    # Residuals are clipped at this robust z inside CUSUM so one spike cannot pose as a drift.
    cusum_clip: float = 4.0
    # CUSUM reference k and decision h (in robust-z units): k=1 ignores shifts below one
    # scale, h=8 gives an in-control run length of many years per series.
    cusum_k: float = 1.0
    cusum_h: float = 8.0
    # Window shift: the mean of the last `shift_recent_days` days (the judged day included)
    # against the baseline that ended just before them. Five days average the day-to-day
    # noise down by sqrt(5) ~ 2.2x, yet a drift is reported within a working week; the
    # lagged reference keeps a slow decline from being absorbed by the median it is compared
    # with (the trailing 28-day median follows a 10-day ramp half-way).
    shift_recent_days: int = 5
    # A second, short window tested next to it (0 = none): a 2-3 day jump, such as conversions
    # inflated by a duplicate tag over a weekend, is diluted in a 5-day mean, and its single
    # days may fall short of the daily bar when the counts are small and swing. A point's
    # shift p-value is the smaller of the two windows', times two (Bonferroni), so testing
    # both cannot make a point look more surprising than it is. Three days rather than two:
    # the shortest window whose median day is a real day, so one loud day cannot carry it
    # (measured on the campaign benchmark: 2 days cost precision, 0.920 against 0.938;
    # docs/anomaly_detection.md).
    shift_short_days: int = 3
    # The judged day and the median recent day must each be this many robust sd off on the
    # side of the shift: a spike inside the recent window moves its mean, not its median.
    shift_min_day_z: float = 1.0
    # The last this many days must each be off on that side too: a 3-day outage inside the
    # window keeps its median off for two more days, the days after it are back to normal.
    shift_confirm_days: int = 2
    # Residuals of neighbouring steps are correlated where the level wanders (hourly readings
    # above all): the window-shift z divides by the variance of a mean of AR(1) residuals
    # instead of assuming independent steps. The lag-1 autocorrelation is measured in the
    # trailing baseline (winsorized), lowered by `autocorrelation_margin` standard errors
    # (1/sqrt(n - 1), n known steps) so sampling noise is not taken for persistence, and
    # the median of these estimates over the last `autocorrelation_baselines` baselines is
    # used, so an event inside one baseline does not silence the next shift. Measured on the
    # synthetic series benchmark with its `persistent` setting (docs/anomaly_detection.md):
    # hourly F1 0.773 -> 0.798, daily 0.656 -> 0.654, campaign benchmark F1 0.937 -> 0.935;
    # the raw one-baseline estimate (margin 0, no median) gave 0.754 / 0.644: it halved
    # drift recall.
    # Capped so a baseline that is one long trend cannot make every window unremarkable.
    use_autocorrelation: bool = True
    max_autocorrelation: float = 0.9
    autocorrelation_margin: float = 1.0
    autocorrelation_baselines: int = 2
    # Share of the recent days that must be known (missing days are unknown, not zero).
    shift_min_known_share: float = 0.6
    # Report a window shift on the first step it is seen only (not when it fired within the
    # previous `shift_recent_days` steps): while the new level lasts the shift test keeps
    # firing until the lagged reference catches up, and a manager needs one alert for one
    # change, not one a day for a month.
    shift_onset_only: bool = True
    # ... nor a shift the same way while the lagged reference still holds steps from before
    # the change: the reference median adopts a new level only once half its window lies
    # after it, and until then every shift test re-measures the same change (28-day baseline:
    # not again the same way for 5 + 14 days). 0 = only the recent window is quiet.
    shift_quiet_share: float = 0.5
    # ... and, for the same reason, no point-test or CUSUM alert the same way during that quiet
    # period unless the step is a further `min_relative_effect` beyond the level the reported
    # shift measured: the trailing median still holds the old level, so every day of a
    # permanent drop would otherwise be a new "drop" alert for two weeks. Measured: series
    # benchmark daily F1 0.688 -> 0.697; campaign benchmark 14 % fewer flagged days, all on a
    # changed level (FPR unchanged, precision 0.919 -> 0.913 as that scoring counts them hits).
    shift_absorbs_points: bool = True
    # The converse: a window shift whose window holds a point alert already reported for the
    # same campaign (any metric) on an earlier step, on a step that itself looks more like the
    # old level than the shifted one, only re-measures that event: the day after a two-day
    # outage, back near normal, the 3-day mean is still two-thirds outage ("drifting: the last
    # 3 days average 10 clicks"). Such a shift is not reported; the second day of a lasting
    # shift still is. Measured (campaign benchmark, F1 / FPR): seeds 1-3 unchanged (0.932 /
    # 0.078 %), seeds 4-9 0.901 / 0.115 % -> 0.907 / 0.105 %; series benchmark unchanged
    # within 2 false events (docs/anomaly_detection.md).
    points_absorb_shifts: bool = True
    # Degrees of freedom of the t tail of a robust z, as a share of the baseline points: the
    # baseline scale is a winsorized SD (`baselines.robust_level_scale`) with about 93 % of
    # the efficiency of a plain SD under normal noise, so 28 baseline days estimate it about
    # as well as an SD from 25. (A MAD has about 37 %: 0.37 treats the scale as a MAD; 1.0 as a
    # plain SD.)
    scale_df_share: float = 0.9
    # Heavy tails learned per series: each point's p-value is also computed under a student t
    # whose degrees of freedom match how often the series' earlier residuals went beyond 3
    # robust sd, and the larger p is used (`detectors.tail_calibrated_pvalues`). Ad costs jump
    # more often than a normal allows, and a point test that assumes normal tails calls every
    # such jump a one-in-a-million event.
    use_tail_calibration: bool = True
    # Pseudo-points at the normal share of such residuals: a series must show a few hundred
    # points before its own tails outweigh the normal (a daily campaign barely moves in a
    # quarter; an hourly series learns its tails in about a week and a half).
    tail_prior_points: float = 200.0
    # The tails those pseudo-points stand for: normal (inf), or a student t with this df. A
    # heavier prior did not pay on the synthetic data: df 10 raised campaign
    # benchmark precision (seeds 4-15: 0.939 -> 0.958, F1 0.931 -> 0.938) but cost CPC spikes
    # (0.89 -> 0.85), the kind nearest its 0.8 target; df 5 cost them 0.89 -> 0.68; series
    # benchmark hourly / daily F1 0.815 / 0.710 -> 0.824 / 0.704 (df 10), within its noise.
    tail_prior_df: float = float("inf")
    # Smallest expected count for a count test: below it a day with 0 vs 1 is not news.
    min_expected_count: float = 3.0

    # --- rules -----------------------------------------------------------------------------------
    # Platforms may overspend a daily budget (Google allows up to 2x); above 2.5x is an error.
    budget_overspend_ratio: float = 2.5
    # A tracking break: conversions == 0 for at least `tracking_break_days` days in a row while
    # clicks are normal, and the zero run as improbable as zero conversions where a Poisson
    # baseline expected `tracking_break_min_expected` (P = e^-10 ~ 5e-5 at 10: about half a
    # false alarm per 10,000 campaign-days; the rule runs outside the FDR family, so its own
    # level must be that small). Each day adds its -log P(0) under the count test's negative
    # binomial, which is its expected count for Poisson counts and less for over-dispersed
    # ones (a campaign with slow days has zero days more often). At 6 expected the
    # overdispersed sample data gave a false alarm per 1,000 campaign-days. A busy campaign
    # is called after two days, a quiet or erratic one waits longer.
    tracking_break_days: int = 2
    tracking_break_min_expected: float = 10.0
    # A lead flood (bots, a leaked form, a list upload) is a day with at least this many leads
    # and at least `lead_flood_ratio` times the trailing expectation: leads are small, zero-heavy
    # counts whose robust z rarely clears a week-wide FDR, yet 5x a normal day is never normal.
    lead_flood_min_leads: int = 20
    lead_flood_ratio: float = 5.0

    # --- weekly grain ------------------------------------------------------------------------
    weekly_baseline_weeks: int = 8  # two months of weeks
    weekly_min_history_weeks: int = 4  # a week judged against at least a month
    # Empirical Bayes for the baseline scales of spend, counts and costs, as for a rate's day
    # noise (`detectors.moderate_scales`): each campaign's scale is pulled toward the other
    # campaigns' (per metric) by how little its own baseline tells, and its t tail gains the
    # prior's degrees of freedom. A week's scale comes from 4-8 trailing weeks, a t tail of
    # 3-6 df, so a week whose impressions fell to 0.43x (z -9.6) stayed above the week's BH bar.
    # Week grain of the campaign benchmark, seeds 4-15 (with the corroboration below):
    # recall 0.267 -> 0.361 (level_shift 0.49 -> 0.78), precision 0.932 -> 0.934; fresh seeds
    # 100-111: recall 0.221 -> 0.332, precision 0.882 -> 0.905 (docs/anomaly_detection.md).
    pool_scales_weekly: bool = True
    # The same for the day grain, whose 28 days give 24 df already: seeds 4-15 F1 0.931 ->
    # 0.933, `mixed` 0.909 -> 0.908 (ctr_drift 0.69 -> 0.67). Off: no gain worth a change.
    pool_scales_daily: bool = False
    # A week flag, like a day flag, needs a second metric of the campaign or a strong-alone
    # size (`require_corroboration`). With the pooled scales alone, week precision fell to
    # 0.832 on seeds 4-15 (FPR 0.41 %): lone clicks or leads weeks at z 4-6.
    weekly_corroboration: bool = True

    # --- severity ---------------------------------------------------------------------------------
    # Relative effects at which severity steps up (medium, high, critical).
    severity_effects: tuple[float, float, float] = (0.5, 1.0, 3.0)

    # --- confidence -------------------------------------------------------------------------------
    # Logistic coefficients of a flag's confidence on `explain.CONFIDENCE_FEATURES` (intercept,
    # evidence = -log10 q, more metrics, more methods, rule, CUSUM only): how often flags like it
    # were real. Fitted by `scripts/fit_confidence.py` on the campaign benchmark's development
    # seeds 4-15 (both settings, day-grain flags; 2,808 flags, 97 % real) and checked on fresh
    # seeds 148-159: ranking AUC 0.916 and Brier 0.011 (a constant at the share real: 0.0116).
    # A simpler heuristic, (1 - q) x agreement, read a CUSUM flag by the day's point q-value and
    # gave flags that were 97 % real a confidence of 0.3. The series path (`campaign-pipeline
    # detect`, one metric per series, no rules) has its own, fitted on the series benchmark's
    # seeds 1-3: fresh seeds 142-144 AUC 0.756 and Brier 0.079 (constant 0.085). Calibrated to
    # those benchmarks' share of real events; docs/anomaly_detection.md has the reliability
    # tables.
    confidence_coefficients: tuple[float, ...] = (0.19, 1.00, 1.12, 2.39, 3.20, 2.60)
    series_confidence_coefficients: tuple[float, ...] = (0.39, 0.69, 0.00, 1.77, 0.00, 1.79)

    def __post_init__(self) -> None:
        if self.sensitivity not in SENSITIVITIES:
            raise ValueError(
                f"sensitivity must be one of {SENSITIVITIES}, got {self.sensitivity!r}"
            )
        if self.multiple_testing not in MULTIPLE_TESTING:
            raise ValueError(f"multiple_testing must be one of {MULTIPLE_TESTING}")
        if self.correction_family not in CORRECTION_FAMILIES:
            raise ValueError(f"correction_family must be one of {CORRECTION_FAMILIES}")
        if self.min_history_days < 3 or self.baseline_days < self.min_history_days:
            raise ValueError("need 3 <= min_history_days <= baseline_days")
        if not 0 < self.fdr < 1 or not 0 < self.alpha < 1:
            raise ValueError("fdr and alpha must be in (0, 1)")
        if not self.tail_prior_df >= 2:
            raise ValueError(
                "need tail_prior_df >= 2 (the tail grid's heaviest) or inf for normal tails"
            )
        if self.noise_pool_min_series < 2 or self.noise_prior_min_df <= 0:
            raise ValueError("need noise_pool_min_series >= 2 and noise_prior_min_df > 0")
        if self.weekday_seasonal_weeks < 1 or self.weekday_min_weeks < 0:
            raise ValueError("need weekday_seasonal_weeks >= 1 and weekday_min_weeks >= 0")
        if self.profile_torn_z < 0:
            raise ValueError(f"need profile_torn_z >= 0, got {self.profile_torn_z:g}")
        if (
            self.phase_scale_cycles < 3
            or self.phase_scale_harmonics < 1
            or not 0 <= self.phase_scale_alpha < 1
        ):
            raise ValueError(
                "need phase_scale_cycles >= 3, phase_scale_harmonics >= 1 and 0 <= "
                "phase_scale_alpha < 1"
            )
        if len(self.confidence_coefficients) != 6 or len(self.series_confidence_coefficients) != 6:
            raise ValueError(
                "confidence coefficients need 6 values (see explain.CONFIDENCE_FEATURES)"
            )
        if self.shift_recent_days < 2 or self.shift_short_days < 0:
            raise ValueError("need shift_recent_days >= 2 and shift_short_days >= 0")
        if not (
            0 <= self.max_autocorrelation < 1
            and self.autocorrelation_margin >= 0
            and self.autocorrelation_baselines >= 0
        ):
            raise ValueError(
                "need 0 <= max_autocorrelation < 1, autocorrelation_margin >= 0 and "
                "autocorrelation_baselines >= 0"
            )
        # bounds outside which a threshold means nothing or turns the rule around (a negative
        # effect or z passes every point; severity_effects out of order inverts the ladder)
        for name, low, strict in (
            ("min_relative_effect", 0.0, False),
            ("min_robust_z", 0.0, False),
            ("strong_single_factor", 1.0, False),
            ("cusum_k", 0.0, False),
            ("cusum_h", 0.0, True),
            ("min_expected_count", 0.0, False),
            ("budget_overspend_ratio", 0.0, True),
            ("lead_flood_ratio", 1.0, True),
            ("tracking_break_days", 1, False),
            ("weekly_min_history_weeks", 1, False),
        ):
            value = getattr(self, name)
            if value < low or (strict and value == low):
                raise ValueError(f"need {name} {'>' if strict else '>='} {low:g}, got {value:g}")
        if self.weekly_baseline_weeks < self.weekly_min_history_weeks:
            raise ValueError("need weekly_baseline_weeks >= weekly_min_history_weeks")
        effects = tuple(self.severity_effects)
        if len(effects) != 3 or not 0 < effects[0] < effects[1] < effects[2]:
            raise ValueError(
                f"severity_effects must be three increasing positive effects, got {effects}"
            )

    @property
    def shift_windows(self) -> tuple[int, ...]:
        """Window lengths of the window-shift test, shortest first."""
        return tuple(sorted({d for d in (self.shift_short_days, self.shift_recent_days) if d > 0}))

    # Multipliers applied by `sensitivity`: (fdr, relative effect, robust z, cusum h).
    _SCALE = {
        "low": (0.2, 1.5, 1.3, 1.4),
        "medium": (1.0, 1.0, 1.0, 1.0),
        "high": (5.0, 0.6, 0.75, 0.7),
    }

    @property
    def effective(self) -> DetectionSettings:
        """Settings with `sensitivity` applied (medium is the identity)."""
        f, e, z, h = self._SCALE[self.sensitivity]
        return replace(
            self,
            fdr=min(self.fdr * f, 0.5),
            alpha=min(self.alpha * f, 0.5),
            min_relative_effect=self.min_relative_effect * e,
            min_robust_z=self.min_robust_z * z,
            cusum_h=self.cusum_h * h,
            sensitivity="medium",
        )


def settings_from_overrides(pairs: list[str], **base) -> DetectionSettings:
    """DetectionSettings from ``NAME=VALUE`` strings (the benchmark scripts' ``--set``).

    Values are converted to the type of the field's default; an unknown name or a value of the
    wrong type is an error (`ValueError` naming the setting), so a typo cannot silently leave a
    default in place or turn a switch off.
    """
    defaults = DetectionSettings()
    names = {
        f.name for f in fields(DetectionSettings)
    }  # not the derived properties (`effective`, ...)
    overrides: dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or name not in names:
            close = difflib.get_close_matches(name.strip(), sorted(names), n=1)
            raise ValueError(
                f"--set expects NAME=VALUE with a DetectionSettings field, got {pair!r}"
                + (f" (did you mean {close[0]}?)" if close else "")
            )
        default = getattr(defaults, name)
        try:
            if isinstance(default, bool):
                word = text.strip().lower()
                if word not in _TRUE + _FALSE:
                    raise ValueError
                overrides[name] = word in _TRUE
            elif isinstance(default, tuple):
                overrides[name] = tuple(type(default[0])(v) for v in text.split(","))
            else:
                overrides[name] = type(default)(text)
        except ValueError:
            if isinstance(default, bool):
                kind = "true or false"
            elif isinstance(default, tuple):
                kind = f"{type(default[0]).__name__} values separated by commas"
            else:
                kind = type(default).__name__
            raise ValueError(
                f"--set {name}: expected {kind} (default {default!r}), got {text!r}"
            ) from None
    return DetectionSettings(**{**base, **overrides})


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
