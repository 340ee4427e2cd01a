"""The capacity benchmark's search, server config file and report."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from benchmarks import capacity
from clients.latency import LatencySummary
from clients.loadtest import LoadReport


class Limit:
    """A server that holds up to `limit` streams; records what was probed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.probed: list[int] = []

    def __call__(self, streams: int) -> bool:
        self.probed.append(streams)
        return streams <= self.limit


@pytest.mark.parametrize("limit", [0, 1, 2, 3, 5, 8, 37, 63, 64, 100, 255, 256, 1000])
def test_find_capacity_ramps_then_bisects(limit: int) -> None:
    passes = Limit(limit)
    assert capacity.find_capacity(passes, max_streams=256) == min(limit, 256)
    assert len(passes.probed) == len(set(passes.probed))  # no count probed twice
    assert len(passes.probed) <= 2 * 9  # log2(256) + 1 ramp steps, as many bisection steps at most


def test_find_capacity_from_a_higher_start() -> None:
    passes = Limit(3)
    assert capacity.find_capacity(passes, max_streams=64, start=16) == 3
    assert passes.probed[0] == 16


def test_server_config_is_what_the_server_reads() -> None:
    text = capacity.server_config_toml(max_sessions=400, scheduler={"max_batch": 1, "max_wait_ms": 10},
                                       recognition={"final_pass": "greedy"})
    data = tomllib.loads(text)
    assert data == {"server": {"max_sessions": 400}, "scheduler": {"max_batch": 1, "max_wait_ms": 10},
                    "customization": {"min_acoustic_minutes": 0.0}, "recognition": {"final_pass": "greedy"}}
    from server.config import parse_config

    assert parse_config(data).recognition.final_pass == "greedy"  # the server accepts it


def _report(streams: int, p95: float | None, errors: int = 0) -> LoadReport:
    summary = LatencySummary(p95 and p95 / 2, p95, p95, streams - errors)
    return LoadReport(streams=streams, completed=streams - errors, errors=errors,
                      error_kinds={"http 503": errors} if errors else {}, error_examples={},
                      first_partial_ms=summary, final_ms=summary, connect_ms=summary, send_lag_ms=summary,
                      rtf=1.01, duration_s=8.0, wall_s=9.5)


def test_target() -> None:
    assert capacity.meets_target(_report(4, 499.0), 500.0)
    assert not capacity.meets_target(_report(4, 501.0), 500.0)
    assert not capacity.meets_target(_report(4, 100.0, errors=1), 500.0)
    assert not capacity.meets_target(_report(4, None), 500.0)


def test_report_files(tmp_path: Path) -> None:
    probes = [capacity.Probe(n, _report(n, p95, errors), ok) for n, p95, errors, ok in
              [(1, 40.0, 0, True), (2, 80.0, 0, True), (4, 900.0, 0, False), (3, 300.0, 1, False)]]
    configs = {name: {**capacity.CONFIGS[name], "capacity": 2, "capped": False,
                      "server_exit_status": 0, "probes": [p.to_json() for p in probes]} for name in capacity.CONFIGS}
    report = {"threshold_ms": 500.0, "duration_s": 8.0, "audio": "a.wav", "sample_rate_hz": 16000, "max_streams": 8,
              "stagger_s": 1.0, "revision": "abc", "machine": capacity.machine(), "configs": configs}
    capacity.write_report(report, tmp_path, command="python -m benchmarks.capacity")
    text = (tmp_path / "capacity.md").read_text()
    assert "| batched-whisper | max_batch = 64, max_wait_ms = 10 | whisper | 2 |" in text
    assert "| unbatched-greedy | max_batch = 1, max_wait_ms = 10 | greedy | 2 |" in text
    assert "1 (http 503 ×1)" in text
    assert (tmp_path / "capacity.png").read_bytes()[:4] == b"\x89PNG"
    json.dumps(report)  # the JSON file holds the same object


ALLISON = Path(__file__).resolve().parents[1] / "fixtures" / "allison"


def test_joined_audio_puts_the_gap_between_files() -> None:
    one, rate = capacity.joined_audio([ALLISON / "conf-muted.wav"], 1.0)
    two, _ = capacity.joined_audio([ALLISON / "vm-tooshort.wav"], 1.0)
    both, both_rate = capacity.joined_audio([ALLISON / "conf-muted.wav", ALLISON / "vm-tooshort.wav"], 0.5)
    assert rate == both_rate == 8000
    assert both == one + bytes(2 * 4000) + two


def test_joined_audio_refuses_mixed_rates_and_negative_gaps() -> None:
    wideband = Path(__file__).resolve().parents[1] / "fixtures" / "hello.wav"
    with pytest.raises(ValueError, match="one sample rate: conf-muted.wav 8000 Hz, hello.wav 16000 Hz"):
        capacity.joined_audio([ALLISON / "conf-muted.wav", wideband], 1.0)
    with pytest.raises(ValueError, match="must not be negative"):
        capacity.joined_audio([wideband], -1.0)
