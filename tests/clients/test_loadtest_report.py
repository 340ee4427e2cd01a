"""Load-test figures from stream outcomes: percentiles over completed streams, errors by kind."""

import pytest

from clients.errors import BadInput
from clients.loadtest import Dialect, LoadReport, LoadTestConfig, StreamOutcome
from clients.recognition import RequestTimings


def _done(index: int, first_partial_s: float, final_s: float) -> StreamOutcome:
    timings = RequestTimings(audio_s=10.0, first_audio_at=0.0, first_partial_at=first_partial_s, end_of_audio_at=10.0,
                             last_final_at=10.0 + final_s, finished_at=10.0 + final_s + 0.01, send_lags_s=[0.001])
    return StreamOutcome(index, timings, connect_ms=5.0)


def _report() -> LoadReport:
    outcomes = [_done(i, 0.1 * (i + 1), 0.05 * (i + 1)) for i in range(4)] + [
        StreamOutcome(4, error_kind="http 503", error_message="the server refused the WebSocket upgrade: HTTP 503"),
        StreamOutcome(5, error_kind="http 503", error_message="the server refused the WebSocket upgrade: HTTP 503"),
        StreamOutcome(6, error_kind="close 1011", error_message="the server closed the connection with code 1011")]
    return LoadReport.from_outcomes(outcomes, duration_s=10.0, wall_s=12.0)


def test_json_object() -> None:
    report = _report().to_json()
    assert {"streams", "completed", "errors", "first_partial_ms", "final_ms", "rtf"} <= set(report)
    assert (report["streams"], report["completed"], report["errors"]) == (7, 4, 3)
    assert report["first_partial_ms"] == {"p50": 250.0, "p95": 385.0, "p99": 397.0}
    assert report["final_ms"] == {"p50": 125.0, "p95": 192.5, "p99": 198.5}
    assert report["rtf"] == pytest.approx(1.0135, abs=1e-3)  # rounded to 3 decimals
    assert report["error_kinds"] == {"http 503": 2, "close 1011": 1}


def test_human_report_breaks_errors_down() -> None:
    text = _report().render()
    assert "4 completed, 3 failed" in text
    assert "http 503" in text and "close 1011" in text and "HTTP 503" in text
    assert "p95 192.5 ms" in text


def test_all_failed() -> None:
    report = LoadReport.from_outcomes([StreamOutcome(0, error_kind="connect failed", error_message="refused")],
                                      duration_s=1.0, wall_s=0.1)
    assert report.to_json()["final_ms"] == {"p50": None, "p95": None, "p99": None}
    assert report.rtf is None and "no samples" in report.render()


@pytest.mark.parametrize("kwargs,match", [({"streams": 0}, "at least 1"), ({"duration_s": 0}, "positive"),
                                          ({"chunk_s": 2.0}, "chunk"), ({"stagger_s": -1}, "stagger"),
                                          ({"dialect": Dialect.TRANSCRIBE, "acoustic_customization_ids": ("x",)},
                                           "Watson parameter")])
def test_config_validation(kwargs: dict, match: str) -> None:
    base = {"url": "ws://h:1", "streams": 1, "duration_s": 1.0}
    with pytest.raises(BadInput, match=match):
        LoadTestConfig(**{**base, **kwargs})
