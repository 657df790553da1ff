"""The documented thresholds of every quality measure (``kraken run --qc``; README "Quality control").

Each threshold was chosen from data: the held-out (test and validation) subjects of the
conformance cohort P, scored by ``tests/benchmarks/qc_eval.py``, and the 30 HCP example subjects.
A threshold sits beyond the largest in-distribution value seen there, with a margin, so that a
flag means "unlike any training-like subject", not "in the tail".

A checkpoint written by kraken's trainer also stores each measure's 1-99 % range over its own
held-out subjects; a threshold is then widened, never narrowed, to that range plus half its width
(:meth:`Threshold.widened`), so a model trained on data unlike HCP does not flag its own kind of data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Threshold:
    """One measure's flag rule: flagged when the value is above ``upper`` or below ``lower``."""

    measure: str
    label: str
    lower: float | None = None
    upper: float | None = None
    meaning: str = ""

    def widened(self, lo: float, hi: float) -> Threshold:
        """This rule loosened to leave ``[lo - w/2, hi + w/2]`` unflagged (``w = hi - lo``), e.g. a held-out range."""
        if not (lo == lo and hi == hi):  # NaN: no stored range
            return self
        w = max(hi - lo, 0.0)
        lower = None if self.lower is None else min(self.lower, lo - w / 2)
        upper = None if self.upper is None else max(self.upper, hi + w / 2)
        return Threshold(self.measure, self.label, lower, upper, self.meaning)

    def flags(self, value: float) -> bool:
        """True when ``value`` breaks the rule (NaN, i.e. not measured, never flags)."""
        if value != value:  # NaN
            return False
        return bool((self.lower is not None and value < self.lower) or (self.upper is not None and value > self.upper))

    def rule(self) -> str:
        """``> 3`` or ``< 0.005``: the rule as a short text."""
        parts = []
        if self.lower is not None:
            parts.append(f"< {self.lower:.3g}")
        if self.upper is not None:
            parts.append(f"> {self.upper:.3g}")
        return " or ".join(parts)


#: FC edges outside [-1, 1] (fraction of edges; correlations cannot be there).
FC_OUT_OF_RANGE = Threshold("fc_out_of_range", "FC edges outside [-1, 1]", upper=0.0,
                            meaning="a correlation lies in [-1, 1]; Fisher-z or SC data do not")
#: FC with (almost) no negative edges looks like SC.
FC_NEGATIVE = Threshold("fc_negative", "FC negative edges", lower=0.005,
                        meaning="every FC flavor of the training data has negative edges; SC has none")
#: SC with negative edges looks like FC.
SC_NEGATIVE = Threshold("sc_negative", "SC negative edges", upper=0.001,
                        meaning="streamline counts and densities are never negative")
#: SC with almost no connections.
SC_DENSITY = Threshold("sc_density", "SC density", lower=0.02,
                       meaning="fraction of non-zero edges; tractography connects far more region pairs")
#: Scale against the training mean: slope of ``x ~ a * training_mean + b``.
SCALE = Threshold("scale", "scale vs training mean", lower=0.6, upper=1 / 0.6,
                  meaning="slope of the subject's edges on the training mean: 1 on the training scale; HCP subjects "
                          "range about 0.75-1.25")
#: Pattern against the training mean: correlation of the edges with it.
PATTERN = Threshold("pattern", "correlation with training mean", lower=0.2,
                    meaning="edges in another order, another atlas' regions or another flavor's data lose the "
                            "group pattern (held-out subjects: 0.3-0.99)")
#: PCA reconstruction error relative to the training subjects' typical error.
RESIDUAL = Threshold("residual", "PCA residual vs training", upper=3.0,
                     meaning="norm of what the transform's components cannot represent, over the typical "
                             "training subject's")
#: Norm of the PCA scores (working-space vector) relative to the training subjects' typical norm.
SCORE = Threshold("score", "score norm vs training", upper=3.0,
                  meaning="distance from the training mean inside the transform's space, over the typical "
                          "training subject's")
#: Latent distance to the training latents relative to the training subjects' typical distance.
LATENT = Threshold("latent", "latent distance vs training", upper=2.0,
                   meaning="standardised distance of the latent from the training latents' mean, over the typical "
                           "training subject's")
#: Cross-flavor agreement: robust z-score, over the run's subjects, of the disagreement ratio.
AGREEMENT = Threshold("agreement", "cross-flavor disagreement (robust z)", upper=4.0,
                      meaning="a flavor's latent distance to the subject's other flavors, over its median distance to "
                              "other subjects'; robust z-score (median, MAD) of its log over the run's subjects "
                              "(8 or more)")
#: Adaptation fit quality (per input flavor): R^2 of the fitted mean against the training mean.
ADAPT_R2 = Threshold("adapt_r2", "adaptation fit R²", lower=0.5,
                     meaning="how well the input mean maps onto the training mean (--adapt)")

#: Per-subject measures, in table order.
SUBJECT_THRESHOLDS: tuple[Threshold, ...] = (FC_OUT_OF_RANGE, FC_NEGATIVE, SC_NEGATIVE, SC_DENSITY, SCALE, PATTERN,
                                             RESIDUAL, SCORE, LATENT, AGREEMENT)
ALL_THRESHOLDS: tuple[Threshold, ...] = (*SUBJECT_THRESHOLDS, ADAPT_R2)
BY_NAME = {t.measure: t for t in ALL_THRESHOLDS}
