"""The documented thresholds of every quality measure (``kraken run --qc``; README "Quality control").

Each threshold was chosen from data: the held-out (test and validation) subjects of the
conformance cohort P, scored by ``tests/benchmarks/qc_eval.py``, and the 30 HCP example subjects.
A threshold sits beyond the largest in-distribution value seen there, with a margin, so that a
flag means "unlike any training-like subject", not "in the tail".

A checkpoint written by kraken's trainer also stores each measure's 1-99 % range over its own
held-out subjects; a threshold is then widened, never narrowed, to that range plus half its width
(:meth:`Threshold.widened`), so a model trained on data unlike HCP does not flag its own kind of data.

The thresholds themselves are data: ``kraken_cli/engine/resources/qc_thresholds.json`` holds each measure's
label, bounds and meaning (what the report and ``--json`` show), one entry per measure in table order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources


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


def _load() -> tuple[tuple[Threshold, ...], tuple[Threshold, ...]]:
    """The per-subject and the per-input-flavor thresholds of ``resources/qc_thresholds.json``, in table order."""
    data = json.loads(resources.files("kraken_cli.engine.resources").joinpath("qc_thresholds.json")
                      .read_text(encoding="utf-8"))

    def rows(key: str) -> tuple[Threshold, ...]:
        return tuple(Threshold(e["measure"], e["label"], e.get("lower"), e.get("upper"), e["meaning"])
                     for e in data[key])

    return rows("per_subject"), rows("per_input_flavor")


#: Per-subject measures, in table order, and the measures of each input flavor (the --adapt fit).
SUBJECT_THRESHOLDS, INPUT_FLAVOR_THRESHOLDS = _load()
ALL_THRESHOLDS: tuple[Threshold, ...] = (*SUBJECT_THRESHOLDS, *INPUT_FLAVOR_THRESHOLDS)
BY_NAME = {t.measure: t for t in ALL_THRESHOLDS}
#: The rules other modules name.
SCALE, RESIDUAL, ADAPT_R2 = BY_NAME["scale"], BY_NAME["residual"], BY_NAME["adapt_r2"]
