"""Server memory: resident set size at start (newest versions loaded) and after every shipped version served once.

Starts ``voxgate serve`` (default configuration, the shipped models) as a subprocess, reads its
RSS (``/proc/PID/status`` ``VmRSS``, plus its children: the search workers) once ``/healthz``
answers, then sends one sessionless ``POST /v1/recognize`` per installed base version (older ones
load on first use) and reads it again. Writes ``memory.md`` and ``memory.json`` into ``--out``.

Usage: ``python -m benchmarks.memory --out benchmarks/reports``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

from benchmarks.capacity import REPO, ServerProcess, free_port
from engine.bundle import find_models
from engine.catalog import default_models_dir

AUDIO = {16000: REPO / "tests" / "fixtures" / "hello.wav", 8000: REPO / "tests" / "fixtures" / "phone.wav"}


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _tree(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        path = task / "children"
        if path.exists():
            children += [int(c) for c in path.read_text().split()]
    return [pid] + [p for c in children for p in _tree(c)]


def rss_mb(pid: int) -> dict:
    """RSS of the server process and of its whole process tree, in MB."""
    tree = _tree(pid)
    return {"server_mb": round(_rss_kb(pid) / 1024), "tree_mb": round(sum(_rss_kb(p) for p in tree) / 1024),
            "processes": len(tree)}


def main(argv: list[str] | None = None) -> None:
    """Measure and write the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "reports")
    args = p.parse_args(argv)
    installed = find_models(default_models_dir())
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "voxgate.toml"
        config.write_text("[server]\nmax_sessions = 8\n")
        server = ServerProcess(config, free_port(), Path(tmp) / "server.log")
        with server:
            server.start(300)
            pid = server._process.pid  # the subprocess is ours; nothing else knows its pid
            rows = [{"after": "start (newest version of each model loaded)", **rss_mb(pid),
                     "loaded": server.health().get("loaded")}]
            for m in installed:
                rate = int(m.manifest["sample_rate_hz"])
                query = urllib.parse.urlencode({"model": m.name, "base_model_version": m.version})
                request = urllib.request.Request(f"http://127.0.0.1:{server.port}/v1/recognize?{query}",
                                                 data=AUDIO[rate].read_bytes(), headers={"Content-Type": "audio/wav"})
                with urllib.request.urlopen(request, timeout=300) as resp:
                    resp.read()
                rows.append({"after": f"one request on {m.version}", **rss_mb(pid)})
                print(json.dumps(rows[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["# Server memory", "", "Command: `python -m benchmarks.memory`. RSS of `voxgate serve` (default "
             "configuration, the shipped models) and of its process tree (search workers included).", "",
             "| after | server RSS (MB) | process tree RSS (MB) | processes |", "|---|---|---|---|"]
    lines += [f"| {r['after']} | {r['server_mb']} | {r['tree_mb']} | {r['processes']} |" for r in rows]
    (args.out / "memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
