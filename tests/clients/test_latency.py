"""Percentiles and latency summaries."""

import numpy as np
import pytest

from clients.latency import LatencySummary, percentile


@pytest.mark.parametrize("values", [[5.0], [3.0, 1.0], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], list(range(101)),
                                    [0.5, 120.0, 33.3, 33.3, 7.0, 980.1, 12.0]])
@pytest.mark.parametrize("q", [0, 50, 95, 99, 100])
def test_percentile_matches_numpy_linear(values, q) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match="0-100"):
        percentile([1.0], 101)


def test_summary_skips_missing_values_and_rounds() -> None:
    summary = LatencySummary.of([10.0, None, 20.0, 30.0])
    assert summary.count == 3
    assert summary.to_json() == {"p50": 20.0, "p95": 29.0, "p99": 29.8}
    assert summary.describe() == "p50 20.0 ms  p95 29.0 ms  p99 29.8 ms"


def test_empty_summary() -> None:
    summary = LatencySummary.of([])
    assert summary.to_json() == {"p50": None, "p95": None, "p99": None}
    assert summary.describe() == "no samples"
