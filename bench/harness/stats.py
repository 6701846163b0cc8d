"""Samples and their summaries: every raw sample is kept; tables show min/median/max.

Times are seconds (``time.perf_counter``) in the samples and milliseconds in reports.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Summary:
    n: int
    min: float
    median: float
    max: float

    def as_dict(self) -> dict[str, float]:
        return {"n": self.n, "min": self.min, "median": self.median, "max": self.max}


def summarize(values: list[float]) -> Summary | None:
    if not values:
        return None
    return Summary(len(values), min(values), statistics.median(values), max(values))


@dataclass
class Samples:
    """Named series of samples (seconds unless the name says otherwise), plus free-form facts."""

    series: dict[str, list[float]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, name: str, value: float) -> None:
        self.series.setdefault(name, []).append(value)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Time the body; the sample is recorded only if the body succeeds."""
        t0 = time.perf_counter()
        yield
        self.add(name, time.perf_counter() - t0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "samples": self.series,
            "summary": {k: s.as_dict() for k, v in self.series.items() if (s := summarize(v))},
            "facts": self.facts,
            "errors": self.errors,
        }
