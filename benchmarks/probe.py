"""The hostile probes of issue 13 (defects 1-5), as a repeatable check against a real ``voxgate serve``.

Starts the server as a subprocess on loopback (shipped models, a throwaway data directory,
``max_sessions = 3``, ``session_timeout_s = 3``), and while each probe runs, pings ``/healthz`` every
50 ms from another task: the largest gap says whether the event loop stalled. Probes, each bounded:

1. ``odd-rate``: a WebSocket stream of ``audio/l16;rate=16001`` (2 s): results, healthz, RSS growth.
2. ``zip-bomb``: a ~1 MB zip of ``--bomb-mb`` MB of zeros as a custom acoustic audio resource: the
   resource's status and error, the data written, the peak RSS.
3. ``big-custom-lm``: a corpus of ``--oov-words`` distinct out-of-vocabulary words: time of
   ``GET /v1/customizations/{id}``, of the list, and of the first words page, with healthz.
4. ``slow-loris``: three chunked ``POST /v1/recognize`` bodies that stop after the headers hold every
   session slot; how long until a fourth client is served.
5. ``kill-9``: SIGKILL the server; which of its child processes (search workers, resource tracker)
   are still alive 5 s later.

Writes ``probe.md`` and ``probe.json`` into ``--out``.

Usage: ``python -m benchmarks.probe --out benchmarks/reports``
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import signal
import socket
import string
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import aiohttp

from benchmarks.capacity import REPO, ServerProcess, free_port
from benchmarks.memory import _tree, rss_mb

L16 = "audio/l16;rate=16000;endianness=little-endian"
PROBES = ("odd-rate", "zip-bomb", "big-custom-lm", "slow-loris", "kill-9")


class HealthWatch:
    """Pings ``/healthz`` every 50 ms until stopped; records the largest gap between answers."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base
        self.worst_s = 0.0
        self.failures = 0
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            try:
                async with self.http.get(f"{self.base}/healthz", timeout=aiohttp.ClientTimeout(total=30)) as r:
                    await r.read()
            except (aiohttp.ClientError, TimeoutError):
                self.failures += 1
            now = time.monotonic()
            self.worst_s = max(self.worst_s, now - last)
            last = now
            await asyncio.sleep(0.05)

    def __enter__(self) -> HealthWatch:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()

    def to_json(self) -> dict:
        return {"healthz_worst_gap_s": round(self.worst_s, 3), "healthz_failures": self.failures}


def _noise_l16(seconds: float, rate: int) -> bytes:
    rng = random.Random(7)
    return b"".join(int(rng.gauss(0, 3000)).to_bytes(2, "little", signed=True) for _ in range(int(seconds * rate)))


async def odd_rate(http: aiohttp.ClientSession, base: str, ws_base: str, pid: int) -> dict:
    before = rss_mb(pid)["server_mb"]
    audio = _noise_l16(2.0, 16001)
    with HealthWatch(http, base) as watch:
        t0 = time.monotonic()
        async with http.ws_connect(f"{ws_base}/v1/recognize") as ws:
            await ws.send_json({"action": "start", "content-type": "audio/l16;rate=16001;endianness=little-endian"})
            messages = [json.loads((await ws.receive()).data)]
            for i in range(0, len(audio), 3200):
                await ws.send_bytes(audio[i:i + 3200])
            await ws.send_json({"action": "stop"})
            while "state" not in messages[-1] or len(messages) == 1:
                msg = await ws.receive(timeout=60)
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                messages.append(json.loads(msg.data))
        seconds = time.monotonic() - t0
    return {"session_s": round(seconds, 2), "errors": [m["error"] for m in messages if "error" in m],
            "rss_growth_mb": rss_mb(pid)["server_mb"] - before, **watch.to_json()}


def _bomb(megabytes: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zf.open("zeros.raw", "w", force_zip64=True) as member:
        block = b"\0" * (1 << 20)
        for _ in range(megabytes):
            member.write(block)
    return out.getvalue()


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


async def zip_bomb(http: aiohttp.ClientSession, base: str, pid: int, data_dir: Path, megabytes: int) -> dict:
    bomb = await asyncio.to_thread(_bomb, megabytes)
    async with http.post(f"{base}/v1/acoustic_customizations",
                         json={"name": "bomb", "base_model_name": "en-US_NarrowbandModel"}) as r:
        custom_id = (await r.json())["customization_id"]
    peak = before = rss_mb(pid)["tree_mb"]
    with HealthWatch(http, base) as watch:
        async with http.post(f"{base}/v1/acoustic_customizations/{custom_id}/audio/calls", data=bomb,
                             headers={"Content-Type": "application/zip",
                                      "Contained-Content-Type": "audio/l16;rate=8000"}) as r:
            accepted = r.status
        deadline = time.monotonic() + 120
        resource: dict = {}
        while time.monotonic() < deadline:
            peak = max(peak, rss_mb(pid)["tree_mb"])
            async with http.get(f"{base}/v1/acoustic_customizations/{custom_id}/audio/calls") as r:
                resource = await r.json()
            if resource.get("status") != "being_processed":
                break
            await asyncio.sleep(0.2)
    return {"zip_bytes": len(bomb), "uncompressed_mb": megabytes, "post_status": accepted,
            "resource_status": resource.get("status"), "resource_error": resource.get("error"),
            "duration_s": resource.get("duration"), "tree_rss_before_mb": before, "peak_tree_rss_mb": peak,
            "bytes_left_in_data_dir": _folder_bytes(data_dir / "customizations" / custom_id), **watch.to_json()}


async def big_custom_lm(http: aiohttp.ClientSession, base: str, words: int) -> dict:
    rng = random.Random(13)
    vocabulary = sorted({"".join(rng.choices(string.ascii_lowercase, k=9)) for _ in range(words)})
    corpus = "\n".join(" ".join(vocabulary[i:i + 12]) for i in range(0, len(vocabulary), 12)).encode()
    async with http.post(f"{base}/v1/customizations", json={"name": "big", "base_model_name":
                                                            "en-US_BroadbandModel"}) as r:
        custom_id = (await r.json())["customization_id"]
    one = f"{base}/v1/customizations/{custom_id}"
    with HealthWatch(http, base) as during_analysis:
        async with http.post(f"{one}/corpora/big", data=corpus, headers={"Content-Type": "text/plain"}) as r:
            assert r.status == 201, await r.text()
        t0 = time.monotonic()
        while True:
            async with http.get(f"{one}/corpora/big") as r:
                corpus_status = await r.json()
            if corpus_status["status"] != "being_processed" or time.monotonic() - t0 > 300:
                break
            await asyncio.sleep(0.5)
        analysed_s = time.monotonic() - t0
    timings = {}
    with HealthWatch(http, base) as watch:
        for name, url in (("get_model_s", one), ("list_models_s", f"{base}/v1/customizations"),
                          ("words_page_s", f"{one}/words?limit=100"), ("all_words_s", f"{one}/words")):
            t = time.monotonic()
            async with http.get(url) as r:
                await r.read()
            timings[name] = round(time.monotonic() - t, 3)
    return {"oov_words": corpus_status.get("out_of_vocabulary_words"), "corpus_bytes": len(corpus),
            "analysis_s": round(analysed_s, 1), "healthz_worst_gap_during_analysis_s": round(during_analysis.worst_s, 3),
            **timings, **watch.to_json()}


def _stalled_body(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /v1/recognize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + L16.encode() +
                 b"\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n" + b"\0" * 16 + b"\r\n")
    return sock


async def slow_loris(http: aiohttp.ClientSession, base: str, port: int) -> dict:
    stalled = [_stalled_body(port) for _ in range(3)]
    await asyncio.sleep(0.5)
    audio = _noise_l16(1.0, 16000)
    t0 = time.monotonic()
    status = None
    while time.monotonic() - t0 < 60:
        async with http.post(f"{base}/v1/recognize", data=audio, headers={"Content-Type": L16}) as r:
            status = r.status
        if status == 200:
            break
        await asyncio.sleep(0.25)
    waited = time.monotonic() - t0
    answers = []
    for sock in stalled:
        sock.settimeout(5)
        try:
            answers.append(sock.recv(200).split(b"\r\n", 1)[0].decode(errors="replace"))
        except OSError as exc:
            answers.append(type(exc).__name__)
        sock.close()
    return {"fourth_client_status": status, "fourth_client_waited_s": round(waited, 2), "stalled_got": answers}


def kill_9(pid: int) -> dict:
    children = [p for p in _tree(pid) if p != pid]
    os.kill(pid, signal.SIGKILL)
    time.sleep(5)
    alive = [p for p in children if Path(f"/proc/{p}").exists()
             and "State:\tZ" not in Path(f"/proc/{p}/status").read_text()]
    for p in alive:
        os.kill(p, signal.SIGKILL)
    return {"children": len(children), "alive_5s_after": len(alive)}


def report(results: dict) -> str:
    """The markdown table of the probes that ran."""
    r = results
    rows = []
    if o := r.get("odd-rate"):
        rows.append(f"| odd rate 16001 Hz | session {o['session_s']} s, errors {o['errors'] or 'none'}, RSS "
                    f"+{o['rss_growth_mb']} MB | {o['healthz_worst_gap_s']} s |")
    if z := r.get("zip-bomb"):
        rows.append(f"| zip bomb {z['zip_bytes'] / 1e6:.2f} MB → {z['uncompressed_mb']} MB | POST {z['post_status']}, "
                    f"resource `{z['resource_status']}`: {z['resource_error']}; tree RSS {z['tree_rss_before_mb']} → "
                    f"peak {z['peak_tree_rss_mb']} MB; {z['bytes_left_in_data_dir'] / 1e6:.1f} MB left on disk (the "
                    f"upload) | {z['healthz_worst_gap_s']} s |")
    if b := r.get("big-custom-lm"):
        rows.append(f"| custom LM with {b['oov_words']} OOV words | get {b['get_model_s']} s, list "
                    f"{b['list_models_s']} s, words page {b['words_page_s']} s, all words {b['all_words_s']} s; "
                    f"analysis {b['analysis_s']} s, healthz gap during it {b['healthz_worst_gap_during_analysis_s']} s |"
                    f" {b['healthz_worst_gap_s']} s |")
    if s := r.get("slow-loris"):
        rows.append(f"| slow-loris, 3 stalled bodies | a 4th client got {s['fourth_client_status']} after "
                    f"{s['fourth_client_waited_s']} s; the stalled ones got {s['stalled_got']} | – |")
    if k := r.get("kill-9"):
        rows.append(f"| kill -9 | {k['alive_5s_after']} of {k['children']} child processes alive 5 s later | – |")
    return "\n".join(["# Hostile probes (issue 13, defects 1-5) against a real server", "",
                      f"Command: `{r['command']}`; server: shipped models, `max_sessions = 3`, "
                      "`session_timeout_s = 3`; healthz pinged every 50 ms during each probe.", "",
                      "| probe | what happened | healthz worst gap |", "|---|---|---|", *rows]) + "\n"


async def _probes(server: ServerProcess, data_dir: Path, args: argparse.Namespace) -> dict:
    base = f"http://127.0.0.1:{server.port}"
    pid = server.pid
    async with aiohttp.ClientSession() as http:
        out = {}
        if "odd-rate" in args.probes:
            out["odd-rate"] = await odd_rate(http, base, server.url, pid)
        if "zip-bomb" in args.probes:
            out["zip-bomb"] = await zip_bomb(http, base, pid, data_dir, args.bomb_mb)
        if "big-custom-lm" in args.probes:
            out["big-custom-lm"] = await big_custom_lm(http, base, args.oov_words)
        if "slow-loris" in args.probes:
            out["slow-loris"] = await slow_loris(http, base, server.port)
    if "kill-9" in args.probes:
        out["kill-9"] = kill_9(pid)
    return out


def main(argv: list[str] | None = None) -> None:
    """Run the probes and write the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "reports")
    p.add_argument("--bomb-mb", type=int, default=1000)
    p.add_argument("--oov-words", type=int, default=100_000)
    p.add_argument("--probes", nargs="+", choices=PROBES, default=list(PROBES))
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "voxgate.toml"
        config.write_text("[server]\nmax_sessions = 3\nsession_timeout_s = 3\n")
        server = ServerProcess(config, free_port(), Path(tmp) / "server.log")
        server.command += ["--data-dir", str(Path(tmp) / "data")]
        with server:
            server.start(ready_timeout_s=300)
            results = asyncio.run(_probes(server, Path(tmp) / "data", args))
    results["command"] = " ".join(["python -m benchmarks.probe", *(sys.argv[1:] if argv is None else argv)])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "probe.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "probe.md").write_text(report(results))
    print(report(results))


if __name__ == "__main__":
    main()
