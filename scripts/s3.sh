#!/usr/bin/env bash
# Start a throwaway S3-compatible server (moto[server], from the dev extra) for the tests; print its endpoint URL.
# It keeps everything in memory; DIR holds its pid file and log.
# Usage: url=$(bash scripts/s3.sh start DIR)   ...   bash scripts/s3.sh stop DIR
# PYTHON: the interpreter that has moto installed (default: .venv/bin/python of this checkout).
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?state folder}
python=${PYTHON:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}
if [ "$cmd" = stop ]; then
  if [ -f "$dir/moto.pid" ]; then
    pid=$(cat "$dir/moto.pid")
    kill "$pid" 2>/dev/null || true
    # Wait for it to go, so a CI step after this one never finds the port still held.
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$dir/moto.pid"
  fi
  exit 0
fi
mkdir -p "$dir"
# A free loopback port, chosen by the kernel.
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$python" -m moto.server -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
echo $! >"$dir/moto.pid"
url="http://127.0.0.1:$port"
# Ready once it answers HTTP at all (any status); give up after 60 s or if it died.
"$python" - "$url" "$(cat "$dir/moto.pid")" <<'PY' || { cat "$dir/moto.log" >&2; bash "$0" stop "$dir"; exit 1; }
import os, sys, time, urllib.error, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(f"moto server exited before it answered on {url}")
    try:
        urllib.request.urlopen(url + "/", timeout=2).close()
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(f"moto server did not answer on {url} within 60 s")
PY
echo "$url"
