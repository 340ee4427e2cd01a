"""The capacity benchmark's server subprocess: started, polled until ready, loaded, stopped with SIGINT."""

from __future__ import annotations

import asyncio
from pathlib import Path

from benchmarks import capacity
from clients.audio import read_audio
from clients.loadtest import LoadTestConfig, run_load
from tests.conftest import FIXTURES


def test_server_subprocess_starts_serves_and_stops(tmp_path: Path, tiny_bundle) -> None:
    config = tmp_path / "server.toml"
    config.write_text(capacity.server_config_toml(max_sessions=4, scheduler={"max_batch": 1, "max_wait_ms": 10}))
    pcm, rate = read_audio(FIXTURES / "hello.wav").require_pcm("the test")
    with capacity.ServerProcess(config, capacity.free_port(), tmp_path / "server.log",
                                tiny_bundle.path.parents[1]) as server:
        server.start(ready_timeout_s=120)
        report = asyncio.run(run_load(LoadTestConfig(url=server.url, streams=2, duration_s=0.6, stagger_s=0.0),
                                      pcm, rate))
        assert (report.completed, report.errors) == (2, 0), report.error_examples
        assert server.stop() == 0, server.log_tail()  # SIGINT: a graceful shutdown
    assert server.health() is None


def test_streams_with_custom_acoustic_models_trained_on_the_server(tmp_path: Path, tiny_bundle) -> None:
    config = tmp_path / "server.toml"
    config.write_text(capacity.server_config_toml(max_sessions=4, scheduler={"max_batch": 4, "max_wait_ms": 10}))
    pcm, rate = read_audio(FIXTURES / "hello.wav").require_pcm("the test")
    with capacity.ServerProcess(config, capacity.free_port(), tmp_path / "server.log", tiny_bundle.path.parents[1],
                                data_dir=tmp_path / "data") as server:
        server.start(ready_timeout_s=120)
        [custom] = capacity.train_custom_acoustic_models(server.port, 1, capacity.rate_model(rate))
        load = LoadTestConfig(url=server.url, streams=2, duration_s=0.6, stagger_s=0.0, model=capacity.rate_model(rate),
                              acoustic_customization_ids=(custom, None))
        report = asyncio.run(run_load(load, pcm, rate))
        assert (report.completed, report.errors) == (2, 0), report.error_examples
        # a stream names a custom model the server does not have: its own error, not the run's end
        load = LoadTestConfig(url=server.url, streams=2, duration_s=0.6, stagger_s=0.0,
                              acoustic_customization_ids=("no-such-model", None))
        report = asyncio.run(run_load(load, pcm, rate))
        assert (report.completed, report.errors) == (1, 1), report.error_examples
    assert (tmp_path / "data").is_dir()
