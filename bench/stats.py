"""One result row: samples of a subject and of its baseline from the same run, medians, spread, ratio, target."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def percentile(xs: list[float], q: float) -> float:
    """The q-th percentile (0–100) of xs, nearest-rank."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


@dataclass
class Row:
    scenario: str  # "S1"
    name: str  # what was measured, e.g. "JS API step"
    metric: str  # unit of the samples, e.g. "req/s"
    samples: list[float] = field(default_factory=list)
    baseline: str = ""  # what the subject is compared to ("" for none)
    baseline_samples: list[float] = field(default_factory=list)
    higher_is_better: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # secondary figures (medians), e.g. {"p99 ms": 2.1}
    target: str = ""  # the target in words, "" for none
    met: bool | None = None
    note: str = ""

    @property
    def median(self) -> float | None:
        return median(self.samples)

    @property
    def base_median(self) -> float | None:
        return median(self.baseline_samples)

    @property
    def ratio(self) -> float | None:
        """Subject median / baseline median (both from this run)."""
        m, b = self.median, self.base_median
        return m / b if m is not None and b else None

    def check(self, target: str, test: Callable[[float, float, dict[str, Any]], bool]) -> Row:
        """Record a target and whether this row meets it: test(median, ratio, extra), with NaN for a missing
        median or ratio (so every comparison with it is False: nothing measured meets no target)."""
        nan = float("nan")
        median, ratio = self.median, self.ratio
        self.target = target
        self.met = bool(test(nan if median is None else median, nan if ratio is None else ratio, self.extra))
        return self

    def as_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "name": self.name, "metric": self.metric, "median": self.median,
                "min": min(self.samples) if self.samples else None,
                "max": max(self.samples) if self.samples else None, "samples": self.samples,
                "baseline": self.baseline or None, "baseline_median": self.base_median,
                "baseline_samples": self.baseline_samples, "ratio": self.ratio,
                "higher_is_better": self.higher_is_better, "extra": self.extra, "target": self.target or None,
                "met": self.met, "note": self.note or None}


def med_extra(values: dict[str, list[float]]) -> dict[str, float | None]:
    """Medians of secondary figures collected run by run."""
    return {k: median(v) for k, v in values.items()}
