#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the catalog tests; print its async SQLAlchemy URL.
# Installs PostgreSQL with apt-get when it is missing (Debian/Ubuntu, as root).
# Usage: url=$(bash scripts/postgres.sh start DIR)   ...   bash scripts/postgres.sh stop DIR
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?data folder}
port=${PGPORT_TEST:-55432}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ "$cmd" = stop ]; then
  [ -n "$bindir" ] && [ -d "$dir/pg" ] && su postgres -s /bin/sh -c "$bindir/pg_ctl -D '$dir/pg' -m fast stop" >/dev/null 2>&1 || true
  exit 0
fi
if [ -z "$bindir" ]; then
  echo "installing PostgreSQL (apt-get)" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
mkdir -p "$dir"
chown postgres "$dir"
if [ ! -f "$dir/pg/PG_VERSION" ]; then
  su postgres -s /bin/sh -c "$bindir/initdb -D '$dir/pg' -A trust -U postgres" >/dev/null
fi
su postgres -s /bin/sh -c "$bindir/pg_ctl -D '$dir/pg' -o '-p $port -k $dir -c listen_addresses=127.0.0.1' -l '$dir/pg.log' -w start" >/dev/null
echo "postgresql+asyncpg://postgres@127.0.0.1:$port/postgres"
