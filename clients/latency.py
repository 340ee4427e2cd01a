"""Latency summaries: percentiles of a sample, as a load test reports them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0-100) of `values`, linear between closest ranks (numpy's default method).

    Raises:
        ValueError: `values` is empty or `q` is outside 0-100.
    """
    if not values:
        raise ValueError("percentile of an empty sample")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be 0-100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class LatencySummary:
    """p50, p95 and p99 of a sample (None each when the sample is empty).

    Attributes:
        count: how many values the sample had.
    """

    p50: float | None
    p95: float | None
    p99: float | None
    count: int = 0

    @classmethod
    def of(cls, values: Iterable[float]) -> LatencySummary:
        """The summary of `values` (None entries are skipped)."""
        sample = [v for v in values if v is not None]
        if not sample:
            return cls(None, None, None, 0)
        return cls(percentile(sample, 50), percentile(sample, 95), percentile(sample, 99), len(sample))

    def to_json(self, digits: int = 1) -> dict[str, float | None]:
        """``{"p50", "p95", "p99"}``, rounded to `digits` decimals."""
        return {name: None if value is None else round(value, digits)
                for name, value in (("p50", self.p50), ("p95", self.p95), ("p99", self.p99))}

    def describe(self, unit: str = "ms") -> str:
        """``p50 12.3 ms  p95 45.6 ms  p99 78.9 ms``, or ``no samples``."""
        if self.p50 is None:
            return "no samples"
        return "  ".join(f"{name} {value:.1f} {unit}" for name, value in
                         (("p50", self.p50), ("p95", self.p95), ("p99", self.p99)))
