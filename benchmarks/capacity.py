"""Capacity: how many concurrent real-time Watson streams one server holds, with batching and without.

Starts the real server as a subprocess (``voxgate serve --port P --config CFG.toml``)
once per scheduler configuration — ``batched`` (``max_batch = 64``, ``max_wait_ms = 10``)
and ``unbatched`` (``max_batch = 1``) — and for each finds the largest number of
concurrent real-time streams whose p95 final latency (end of audio to the last
final result) is at most ``--threshold-ms`` with zero errors. The search ramps
1, 2, 4, ... until a probe fails or ``--max-streams`` is reached, then bisects
between the last passing and the first failing count. Each probe is one load
test through :mod:`clients.loadtest`: every stream sends ``--duration`` seconds
of ``--audio`` (looped) in real time, starts staggered over one second, and asks
for interim results. Writes ``capacity.md``, ``capacity.json`` and ``capacity.png``
into ``--out``.

The load generator runs on the same machine as the server, so on a small
machine it competes for the CPU; the report gives its send lag (how late the
client sent its chunks) so that a reader can tell a slow server from a slow client.

Usage::

    python -m benchmarks.capacity --audio tests/fixtures/hello.wav --duration 8 --max-streams 256
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

from clients import transport  # noqa: E402
from clients.audio import read_audio  # noqa: E402
from clients.loadtest import LoadReport, LoadTestConfig, run_load  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_AUDIO = REPO / "tests" / "fixtures" / "hello.wav"
#: Server settings per configuration: batched steps (the default) and one stream per model step,
#: with each final pass (``whisper``: Whisper's decoder over each utterance, the Whisper-based
#: versions' own; ``ctc``: the word-LM beam search; ``greedy``: the interim hypothesis).
CONFIGS = {
    "batched-whisper": {"scheduler": {"max_batch": 64, "max_wait_ms": 10}, "recognition": {"final_pass": "whisper"}},
    "unbatched-whisper": {"scheduler": {"max_batch": 1, "max_wait_ms": 10}, "recognition": {"final_pass": "whisper"}},
    "batched-ctc": {"scheduler": {"max_batch": 64, "max_wait_ms": 10}, "recognition": {"final_pass": "ctc"}},
    "batched-greedy": {"scheduler": {"max_batch": 64, "max_wait_ms": 10}, "recognition": {"final_pass": "greedy"}},
    "unbatched-greedy": {"scheduler": {"max_batch": 1, "max_wait_ms": 10}, "recognition": {"final_pass": "greedy"}},
}
MAX_SESSIONS = 400


def server_config_toml(*, max_sessions: int, scheduler: dict, recognition: dict | None = None) -> str:
    """The ``voxgate serve --config`` file of one configuration."""
    text = (f"[server]\nmax_sessions = {max_sessions}\n\n"
            f"[scheduler]\nmax_batch = {scheduler['max_batch']}\nmax_wait_ms = {scheduler['max_wait_ms']}\n")
    if recognition:
        text += "\n[recognition]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in recognition.items())
    return text


def free_port() -> int:
    """A loopback port that was free a moment ago (the server binds it right after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``voxgate serve`` as a subprocess, its output in a log file; a context manager that stops it.

    Args:
        config_path: the TOML file.
        port: the loopback port to serve on.
        log_path: where the server's stdout and stderr go.
        models_dir: passed as ``--models-dir`` when given.
    """

    def __init__(self, config_path: Path, port: int, log_path: Path, models_dir: Path | None = None) -> None:
        self.port = port
        self.log_path = log_path
        voxgate = Path(sys.executable).with_name("voxgate")
        self.command = [str(voxgate), "serve", "--port", str(port), "--config", str(config_path)]
        if models_dir is not None:
            self.command += ["--models-dir", str(models_dir)]
        self._process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        """The server's process id (once started)."""
        assert self._process is not None, "start the server first"
        return self._process.pid

    @property
    def url(self) -> str:
        """The WebSocket base URL."""
        return f"ws://127.0.0.1:{self.port}"

    def start(self, ready_timeout_s: float) -> None:
        """Start the server and wait until ``GET /healthz`` answers 200.

        Raises:
            RuntimeError: the server exited, or was not ready within `ready_timeout_s` (with its log's tail).
        """
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + ready_timeout_s
        while self.health() is None:
            if self._process.poll() is not None:
                raise RuntimeError(f"the server exited with {self._process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server was not ready within {ready_timeout_s:g} s:\n{self.log_tail()}")
            # A subprocess gives no readiness event to wait on; polling its port is the honest signal.
            time.sleep(0.25)

    def health(self) -> dict | None:
        """The ``/healthz`` body, or None while the server does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as resp:
                return json.loads(resp.read()) if resp.status == 200 else None
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def wait_idle(self, timeout_s: float = 30.0) -> None:
        """Wait until the server reports no open session (so that one probe's tail never loads the next)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            health = self.health() or {}
            if health.get("sessions", 0) == 0:
                return
            time.sleep(0.25)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the server logged."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> int | None:
        """SIGINT (a graceful shutdown), then SIGTERM, then SIGKILL; return the exit status."""
        process = self._process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        for sig, wait_s in ((signal.SIGINT, 30), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            process.send_signal(sig)
            try:
                return process.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                continue
        return process.poll()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Probe:
    """One load test at a stream count, and whether it met the target."""

    streams: int
    report: LoadReport
    ok: bool

    def to_json(self) -> dict:
        """The probe's figures."""
        return {"streams": self.streams, "ok": self.ok, **self.report.to_json()}


def meets_target(report: LoadReport, threshold_ms: float) -> bool:
    """Zero errors and a p95 final latency within `threshold_ms`."""
    p95 = report.final_ms.p95
    return report.errors == 0 and report.completed == report.streams and p95 is not None and p95 <= threshold_ms


def find_capacity(passes: Callable[[int], bool], *, max_streams: int, start: int = 1) -> int:
    """The largest stream count that passes: ramp ×2 from `start` to `max_streams`, then bisect.

    Assumes that passing is monotonic in the stream count (noise near the
    limit can make the answer off by a little; each count is probed once).

    Args:
        passes: probes one stream count.
        max_streams: the highest count to try.
        start: the first count.

    Returns:
        The capacity: 0 when `start` fails, `max_streams` when even that passes.
    """
    good, bad, n = 0, None, max(1, start)
    while bad is None:
        n = min(n, max_streams)
        if not passes(n):
            bad = n
        elif n >= max_streams:
            return n
        else:
            good, n = n, n * 2
    return _bisect(passes, good, bad)


def _bisect(passes: Callable[[int], bool], good: int, bad: int) -> int:
    while bad - good > 1:
        mid = (good + bad) // 2
        if passes(mid):
            good = mid
        else:
            bad = mid
    return good


def probe(url: str, streams: int, pcm: bytes, rate: int, *, duration_s: float, stagger_s: float) -> LoadReport:
    """One load test of `streams` real-time Watson streams with interim results."""
    config = LoadTestConfig(url=url, streams=streams, duration_s=duration_s, stagger_s=stagger_s,
                            response_timeout_s=30.0)
    return transport.run_event_loop(run_load(config, pcm, rate))


def measure(name: str, settings: dict, pcm: bytes, rate: int, args: argparse.Namespace, tmp: Path) -> dict:
    """Start a server with `settings`, find its capacity, stop it; return the configuration's results."""
    config_path = tmp / f"{name}.toml"
    config_path.write_text(server_config_toml(max_sessions=max(MAX_SESSIONS, args.max_streams), **settings))
    scheduler = settings["scheduler"]
    probes: list[Probe] = []
    server = ServerProcess(config_path, args.port or free_port(), tmp / f"{name}.log", args.models_dir)
    with server:
        server.start(args.ready_timeout)
        probe(server.url, 1, pcm, rate, duration_s=2.0, stagger_s=0.0)  # warm-up, not recorded

        def passes(streams: int) -> bool:
            server.wait_idle()
            report = probe(server.url, streams, pcm, rate, duration_s=args.duration, stagger_s=args.stagger)
            probes.append(Probe(streams, report, meets_target(report, args.threshold_ms)))
            p95 = report.final_ms.p95
            print(f"{name}: {streams} streams: final p95 {'n/a' if p95 is None else f'{p95:.0f}'} ms, "
                  f"{report.errors} errors -> {'ok' if probes[-1].ok else 'over'}", file=sys.stderr, flush=True)
            return probes[-1].ok

        capacity = find_capacity(passes, max_streams=args.max_streams, start=args.start_streams)
        status = server.stop()
    return {"scheduler": scheduler, "recognition": settings.get("recognition", {}), "capacity": capacity, "capped": capacity >= args.max_streams,
            "server_exit_status": status, "probes": [p.to_json() for p in sorted(probes, key=lambda p: p.streams)]}


def revision() -> str:
    """The commit measured, with ``+dirty`` when the working tree had changes."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=False).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                           text=True, check=False).stdout.strip()
    return head + ("+dirty" if dirty else "")


def machine() -> dict:
    """What the numbers were measured on."""
    gpu = None
    if shutil.which("nvidia-smi"):
        proc = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                              text=True, check=False)
        gpu = proc.stdout.strip().splitlines()[0] if proc.returncode == 0 and proc.stdout.strip() else None
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(), "gpu": gpu}


def main(argv: list[str] | None = None) -> None:
    """Measure every configuration and write the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--audio", type=Path, default=DEFAULT_AUDIO, help="16-bit mono PCM WAV (looped per stream)")
    p.add_argument("--duration", type=float, default=8.0, help="seconds of audio per stream and probe")
    p.add_argument("--max-streams", type=int, default=256)
    p.add_argument("--start-streams", type=int, default=1, help="first count of the ramp")
    p.add_argument("--threshold-ms", type=float, default=500.0, help="p95 final latency target")
    p.add_argument("--stagger", type=float, default=1.0, help="seconds over which a probe's streams start")
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {', '.join(CONFIGS)}")
    p.add_argument("--models-dir", type=Path, help="passed to voxgate serve")
    p.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    p.add_argument("--ready-timeout", type=float, default=300.0, help="seconds allowed for the server to load")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "reports")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        p.error(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    pcm, rate = read_audio(args.audio).require_pcm("the capacity benchmark")
    measured = revision()  # before the runs: the code the servers start from
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            results[name] = measure(name, CONFIGS[name], pcm, rate, args, Path(tmp))
            print(f"{name}: capacity {results[name]['capacity']} streams", file=sys.stderr, flush=True)
    report = {"threshold_ms": args.threshold_ms, "duration_s": args.duration, "audio": str(args.audio),
              "sample_rate_hz": rate, "max_streams": args.max_streams, "stagger_s": args.stagger,
              "revision": measured, "machine": machine(), "configs": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "capacity.json").write_text(json.dumps(report, indent=1) + "\n")
    write_report(report, args.out, command=" ".join(["python -m benchmarks.capacity", *(argv or sys.argv[1:])]))


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def write_report(report: dict, out: Path, *, command: str) -> None:
    """``capacity.md`` (capacities, then every probe) and ``capacity.png`` (p95 final latency vs streams)."""
    threshold = report["threshold_ms"]
    m = report["machine"]
    lines = ["# Capacity: concurrent real-time Watson streams per server", "",
             f"Command: `{command}`. Each probe: N streams of {report['duration_s']:g} s of `{report['audio']}` "
             f"({report['sample_rate_hz']} Hz, looped) sent in real time over `/v1/recognize` with interim results, "
             f"starts staggered over {report['stagger_s']:g} s. Target: p95 final latency (end of audio to the last "
             f"final) ≤ {threshold:g} ms and no errors. Revision {report['revision']}. Machine: {m['cpus']} CPUs, "
             f"{m['platform']}, GPU: {m['gpu'] or 'none'}; the load generator shares it with the server (its send "
             "lag is in the table).", "",
             "| configuration | scheduler | finals | capacity (streams) |", "|---|---|---|---|"]
    for name, r in report["configs"].items():
        s = r["scheduler"]
        capacity = f"≥ {r['capacity']} (limit of the search)" if r["capped"] else str(r["capacity"])
        finals = r.get("recognition", {}).get("final_pass", "auto")
        lines.append(f"| {name} | max_batch = {s['max_batch']}, max_wait_ms = {s['max_wait_ms']} | {finals} | "
                     f"{capacity} |")
    for name, r in report["configs"].items():
        lines += ["", f"## {name}", "",
                  "| streams | completed | errors | first partial p50 / p95 (ms) | final p50 / p95 / p99 (ms) | RTF "
                  "| client send lag p95 (ms) | target |", "|---|---|---|---|---|---|---|---|"]
        for pr in r["probes"]:
            fp, fin, lag = pr["first_partial_ms"], pr["final_ms"], pr["send_lag_ms"]
            kinds = ", ".join(f"{k} ×{v}" for k, v in pr["error_kinds"].items())
            lines.append(f"| {pr['streams']} | {pr['completed']} | {pr['errors']}{f' ({kinds})' if kinds else ''} | "
                         f"{_ms(fp['p50'])} / {_ms(fp['p95'])} | {_ms(fin['p50'])} / {_ms(fin['p95'])} / "
                         f"{_ms(fin['p99'])} | {pr['rtf'] if pr['rtf'] is not None else '–'} | {_ms(lag['p95'])} | "
                         f"{'ok' if pr['ok'] else 'over'} |")
    (out / "capacity.md").write_text("\n".join(lines) + "\n")

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, r in report["configs"].items():
        points = [(pr["streams"], pr["final_ms"]["p95"]) for pr in r["probes"] if pr["final_ms"]["p95"] is not None]
        failed = [pr["streams"] for pr in r["probes"] if pr["errors"]]
        if points:
            capacity = f"≥ {r['capacity']}" if r["capped"] else str(r["capacity"])
            line, = ax.plot(*zip(*points), marker="o", label=f"{name} (capacity {capacity})")
            if failed:
                ys = [next((y for x, y in points if x == f), threshold) for f in failed]
                ax.scatter(failed, ys, marker="x", s=80, color=line.get_color(), zorder=3)
    ax.axhline(threshold, color="red", linestyle="--", label=f"target p95 ≤ {threshold:g} ms")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.set_xlabel("concurrent real-time streams")
    ax.set_ylabel("p95 final latency (ms)")
    ax.set_title("Final latency vs concurrent streams (× = probe with errors)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "capacity.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
