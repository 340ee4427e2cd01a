"""Prometheus metrics of one server (``GET /metrics``), in a registry of its own.

The scheduler reports every step (batch size, queue wait, step time); the
routes report sessions, audio seconds and errors.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from engine.scheduler import StepStats

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The server's metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sessions_active = Gauge("voxgate_sessions_active", "Recognition sessions open now", ["route"], registry=r)
        self.sessions = Counter("voxgate_sessions", "Recognition sessions started", ["route"], registry=r)
        self.sessions_refused = Counter("voxgate_sessions_refused", "Sessions refused for capacity", ["route"],
                                        registry=r)
        self.audio_seconds = Counter("voxgate_audio_seconds", "Seconds of audio recognised", ["model"], registry=r)
        self.errors = Counter("voxgate_errors", "Errors reported to clients", ["route", "type"], registry=r)
        self.batch_size = Histogram("voxgate_batch_size", "Streams per model step", ["model"], registry=r,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.queue_wait = Histogram("voxgate_queue_wait_seconds", "Wait from a stream's request to its step",
                                    ["model"], registry=r,
                                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))
        self.step_time = Histogram("voxgate_step_seconds", "Time of one batched model step", ["model"], registry=r,
                                   buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))
        self.step_failures = Counter("voxgate_step_failures", "Model steps that raised", ["model"], registry=r)

    def step_observer(self, model: str):
        """A callback for :class:`engine.scheduler.BatchScheduler` that records its steps under ``model``."""

        def observe(stats: StepStats) -> None:
            self.batch_size.labels(model).observe(stats.batch_size)
            for wait in stats.queue_wait_s:
                self.queue_wait.labels(model).observe(wait)
            self.step_time.labels(model).observe(stats.step_s)
            if stats.failed:
                self.step_failures.labels(model).inc()

        return observe

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
