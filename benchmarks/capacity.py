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
for interim results. Several ``--audio`` files are joined with ``--gap`` seconds of silence
between them (a caller's distinct sentences and pauses: one prompt looped without a pause long
enough to end an utterance is one long utterance of a repeated sentence, which Whisper's loop
guard takes for a repetition loop and decodes again with a beam). Writes ``capacity.md``, ``capacity.json`` and ``capacity.png``
into ``--out``.

The load generator runs on the same machine as the server, so on a small
machine it competes for the CPU; the report gives its send lag (how late the
client sent its chunks) so that a reader can tell a slow server from a slow client.

Usage::

    python -m benchmarks.capacity --audio tests/fixtures/hello.wav --duration 8 --max-streams 256
    python -m benchmarks.capacity --audio tests/fixtures/allison/{vm-reenterpassword,feature-not-avail-line,conf-muted,vm-tooshort,vm-advopts}.wav \
        --gap 1 --duration 16.5 --max-streams 64
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
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

from clients import transport  # noqa: E402
from clients.audio import BadInput, read_audio  # noqa: E402
from clients.loadtest import LoadReport, LoadTestConfig, run_load  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_AUDIO = REPO / "tests" / "fixtures" / "hello.wav"
FIXTURES = REPO / "tests" / "fixtures"
ALLISON = FIXTURES / "allison"


def rate_model(rate_hz: int) -> str:
    """The model a Watson stream of this sample rate gets by default (what its custom models must be of)."""
    return "en-US_NarrowbandModel" if rate_hz < 16000 else "en-US_BroadbandModel"
#: Server settings per configuration: batched steps (the default) and one stream per model step,
#: with each final pass (``whisper``: Whisper's decoder over each utterance, the Whisper-based
#: versions' own; ``whisper-fast``: the same without the padding, through the version's adapter; ``ctc``: the word-LM beam search; ``greedy``: the interim hypothesis).
CONFIGS = {
    "batched-whisper": {"scheduler": {"max_batch": 64, "max_wait_ms": 10}, "recognition": {"final_pass": "whisper"}},
    "unbatched-whisper": {"scheduler": {"max_batch": 1, "max_wait_ms": 10}, "recognition": {"final_pass": "whisper"}},
    "batched-whisper-fast": {"scheduler": {"max_batch": 64, "max_wait_ms": 10},
                             "recognition": {"final_pass": "whisper-fast"}},
    "batched-ctc": {"scheduler": {"max_batch": 64, "max_wait_ms": 10}, "recognition": {"final_pass": "ctc"}},
    "batched-greedy": {"scheduler": {"max_batch": 64, "max_wait_ms": 10}, "recognition": {"final_pass": "greedy"}},
    "unbatched-greedy": {"scheduler": {"max_batch": 1, "max_wait_ms": 10}, "recognition": {"final_pass": "greedy"}},
}
MAX_SESSIONS = 400


def server_config_toml(*, max_sessions: int, scheduler: dict, recognition: dict | None = None) -> str:
    """The ``voxgate serve --config`` file of one configuration (custom acoustic models train on any
    amount of audio: the benchmark's are small)."""
    text = (f"[server]\nmax_sessions = {max_sessions}\n\n"
            f"[scheduler]\nmax_batch = {scheduler['max_batch']}\nmax_wait_ms = {scheduler['max_wait_ms']}\n"
            "\n[customization]\nmin_acoustic_minutes = 0.0\n")
    if recognition:
        text += "\n[recognition]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in recognition.items())
    return text


def _api(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method,
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        raise RuntimeError(f"{method} {path}: HTTP {err.code}: {err.read().decode(errors='replace')}") from None


def _wait(read: Callable[[], dict], done: Callable[[dict], bool], what: str, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while not done(value := read()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not finish within {timeout_s:g} s: {value}")
        time.sleep(0.5)  # the server's own training job; polling its status is the Watson API's way
    return value


def training_audio(model: str) -> list[tuple[Path, str]]:
    """Committed fixtures with their transcripts that a custom acoustic model of ``model`` trains on:
    the Allison prompts (8 kHz, TRAIN split) for narrowband, the 16 kHz fixtures for broadband."""
    folder, allowed = (ALLISON, (".wav",)) if "Narrowband" in model else (FIXTURES, (".wav", ".flac"))
    out = []
    for line in (folder / "transcripts.tsv").read_text().splitlines():
        name, _, text = line.partition("\t")
        path = folder / name
        if path.suffix in allowed and (folder is ALLISON or path.stem == "hello"):
            out.append((path, text))
    return out


def train_custom_acoustic_models(port: int, count: int, model: str, timeout_s: float = 900.0) -> list[str]:
    """Create and train ``count`` custom acoustic models of ``model`` on the server (Watson's API: one audio
    resource per fixture of :func:`training_audio`, with its ``Transcript``), one after the other; return
    their customization ids."""
    files = training_audio(model)
    ids = []
    for i in range(count):
        created = _api(port, "POST", "/v1/acoustic_customizations",
                       json.dumps({"name": f"capacity-{i}", "base_model_name": model}).encode(),
                       {"Content-Type": "application/json"})
        cid = created["customization_id"]
        for path, text in files:
            kind = "audio/flac" if path.suffix == ".flac" else "audio/wav"
            _api(port, "POST", f"/v1/acoustic_customizations/{cid}/audio/{path.stem}{path.suffix.replace('.', '-')}",
                 path.read_bytes(), {"Content-Type": kind, "Transcript": urllib.parse.quote(text)})
        listing = _wait(lambda: _api(port, "GET", f"/v1/acoustic_customizations/{cid}/audio"),
                        lambda v: all(a["status"] != "being_processed" for a in v["audio"]), "the audio", timeout_s)
        refused = [a for a in listing["audio"] if a["status"] != "ok"]
        if refused:
            raise RuntimeError(f"the server refused fixtures as audio for {model}: {refused}")
        _api(port, "POST", f"/v1/acoustic_customizations/{cid}/train")
        status = _wait(lambda: _api(port, "GET", f"/v1/acoustic_customizations/{cid}"),
                       lambda v: v.get("status") in ("available", "failed"), "the training", timeout_s)
        if status["status"] != "available":
            raise RuntimeError(f"custom acoustic model {cid} did not train: {status}")
        print(f"custom acoustic model {i + 1}/{count}: {cid} trained", file=sys.stderr, flush=True)
        ids.append(cid)
    return ids


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
        data_dir: passed as ``--data-dir`` when given (the catalog and custom models).
    """

    def __init__(self, config_path: Path, port: int, log_path: Path, models_dir: Path | None = None,
                 data_dir: Path | None = None) -> None:
        self.port = port
        self.log_path = log_path
        voxgate = Path(sys.executable).with_name("voxgate")
        self.command = [str(voxgate), "serve", "--port", str(port), "--config", str(config_path)]
        if models_dir is not None:
            self.command += ["--models-dir", str(models_dir)]
        if data_dir is not None:
            self.command += ["--data-dir", str(data_dir)]
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


def joined_audio(paths: list[Path], gap_s: float) -> tuple[bytes, int]:
    """The 16-bit PCM of ``paths`` one after the other, ``gap_s`` seconds of silence between two, and its rate.

    Raises:
        BadInput: a file that is not 16-bit mono PCM.
        ValueError: files of different sample rates, or a negative gap.
    """
    if gap_s < 0:
        raise ValueError(f"the gap must not be negative, got {gap_s}")
    parts = [(path, *read_audio(path).require_pcm("the capacity benchmark")) for path in paths]
    rates = {rate for _, _, rate in parts}
    if len(rates) > 1:
        raise ValueError("the audio files must share one sample rate: "
                         + ", ".join(f"{path.name} {rate} Hz" for path, _, rate in parts))
    rate = rates.pop()
    silence = bytes(2 * round(gap_s * rate))
    return silence.join(pcm for _, pcm, _ in parts), rate


def probe(url: str, streams: int, pcm: bytes, rate: int, *, duration_s: float, stagger_s: float,
          acoustic_customization_ids: tuple[str | None, ...] = ()) -> LoadReport:
    """One load test of `streams` real-time Watson streams with interim results (stream ``i`` with
    custom acoustic model ``acoustic_customization_ids[i % len]``, None: the base)."""
    config = LoadTestConfig(url=url, streams=streams, duration_s=duration_s, stagger_s=stagger_s,
                            response_timeout_s=30.0, acoustic_customization_ids=acoustic_customization_ids,
                            model=rate_model(rate))  # 8 kHz audio needs the narrowband model (not the default)
    return transport.run_event_loop(run_load(config, pcm, rate))


def measure(name: str, settings: dict, pcm: bytes, rate: int, args: argparse.Namespace, tmp: Path) -> dict:
    """Start a server with `settings`, find its capacity, stop it; return the configuration's results."""
    config_path = tmp / f"{name}.toml"
    config_path.write_text(server_config_toml(max_sessions=max(MAX_SESSIONS, args.max_streams), **settings))
    scheduler = settings["scheduler"]
    probes: list[Probe] = []
    server = ServerProcess(config_path, args.port or free_port(), tmp / f"{name}.log", args.models_dir,
                          data_dir=tmp / f"{name}-data")
    ids: tuple[str | None, ...] = ()
    with server:
        server.start(args.ready_timeout)
        if args.custom_ams:
            trained = train_custom_acoustic_models(server.port, args.custom_ams, rate_model(rate))
            ids = tuple(x for cid in trained for x in (cid, None))  # every second stream, each AM in turn
            for cid in trained:  # each loaded before the probes, as a server in use has them
                probe(server.url, 1, pcm, rate, duration_s=2.0, stagger_s=0.0, acoustic_customization_ids=(cid,))
        probe(server.url, 1, pcm, rate, duration_s=2.0, stagger_s=0.0)  # warm-up, not recorded

        def passes(streams: int) -> bool:
            server.wait_idle()
            report = probe(server.url, streams, pcm, rate, duration_s=args.duration, stagger_s=args.stagger,
                           acoustic_customization_ids=ids)
            probes.append(Probe(streams, report, meets_target(report, args.threshold_ms)))
            p95 = report.final_ms.p95
            print(f"{name}: {streams} streams: final p95 {'n/a' if p95 is None else f'{p95:.0f}'} ms, "
                  f"{report.errors} errors -> {'ok' if probes[-1].ok else 'over'}", file=sys.stderr, flush=True)
            return probes[-1].ok

        capacity = find_capacity(passes, max_streams=args.max_streams, start=args.start_streams)
        status = server.stop()
    return {"scheduler": scheduler, "recognition": settings.get("recognition", {}), "custom_ams": args.custom_ams,
            "capacity": capacity, "capped": capacity >= args.max_streams,
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
    p.add_argument("--audio", type=Path, nargs="+", default=[DEFAULT_AUDIO],
                   help="16-bit mono PCM WAVs of one rate, joined (looped per stream)")
    p.add_argument("--gap", type=float, default=1.0, help="seconds of silence between two --audio files")
    p.add_argument("--duration", type=float, default=8.0, help="seconds of audio per stream and probe")
    p.add_argument("--max-streams", type=int, default=256)
    p.add_argument("--start-streams", type=int, default=1, help="first count of the ramp")
    p.add_argument("--threshold-ms", type=float, default=500.0, help="p95 final latency target")
    p.add_argument("--stagger", type=float, default=1.0, help="seconds over which a probe's streams start")
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {', '.join(CONFIGS)}")
    p.add_argument("--models-dir", type=Path, help="passed to voxgate serve")
    p.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    p.add_argument("--ready-timeout", type=float, default=300.0, help="seconds allowed for the server to load")
    p.add_argument("--custom-ams", type=int, default=0, metavar="K",
                   help="train K custom acoustic models on each server first; every second stream then uses one "
                        "of them, in turn (the others the base)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "reports")
    args = p.parse_args(argv)
    if args.custom_ams < 0:
        p.error("--custom-ams must not be negative")
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        p.error(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    try:
        pcm, rate = joined_audio(args.audio, args.gap)
    except (BadInput, ValueError) as exc:
        p.error(str(exc))
    measured = revision()  # before the runs: the code the servers start from
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            results[name] = measure(name, CONFIGS[name], pcm, rate, args, Path(tmp))
            print(f"{name}: capacity {results[name]['capacity']} streams", file=sys.stderr, flush=True)
    report = {"threshold_ms": args.threshold_ms, "duration_s": args.duration, "audio": ", ".join(map(str, args.audio)),
              "gap_s": args.gap if len(args.audio) > 1 else None,
              "sample_rate_hz": rate, "max_streams": args.max_streams, "stagger_s": args.stagger,
              "revision": measured, "machine": machine(), "custom_ams": args.custom_ams, "configs": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "capacity.json").write_text(json.dumps(report, indent=1) + "\n")
    write_report(report, args.out, command=" ".join(["python -m benchmarks.capacity", *(argv or sys.argv[1:])]))


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def write_report(report: dict, out: Path, *, command: str) -> None:
    """``capacity.md`` (capacities, then every probe) and ``capacity.png`` (p95 final latency vs streams)."""
    threshold = report["threshold_ms"]
    m = report["machine"]
    joined = f"; joined with {report['gap_s']:g} s of silence" if report.get("gap_s") is not None else ""
    lines = ["# Capacity: concurrent real-time Watson streams per server", "",
             f"Command: `{command}`. Each probe: N streams of {report['duration_s']:g} s of `{report['audio']}` "
             f"({report['sample_rate_hz']} Hz{joined}, looped) sent in real time over `/v1/recognize` with interim results, "
             f"starts staggered over {report['stagger_s']:g} s. Target: p95 final latency (end of audio to the last "
             f"final) ≤ {threshold:g} ms and no errors. Revision {report['revision']}. Machine: {m['cpus']} CPUs, "
             f"{m['platform']}, GPU: {m['gpu'] or 'none'}; the load generator shares it with the server (its send "
             "lag is in the table)." + (f" Every second stream uses one of {report['custom_ams']} custom acoustic "
                                        "models, in turn (trained on the server before the probes; the others use "
                                        "the base)." if report.get("custom_ams") else ""), "",
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
