#!/usr/bin/env bash
# pg.sh start|stop|url DIR — a private PostgreSQL cluster under DIR.
#
# start: initdb on first use (password auth on 127.0.0.1, a random password
# kept in DIR/password, mode 600), start it on a free loopback port (kept in
# DIR/port across restarts), create database "mlgw" and write its URL to
# DIR/url. stop: fast shutdown. PostgreSQL refuses to run as root, so as
# root the cluster belongs to the "postgres" user. MLGW_PG_FAST=1 (tests)
# turns fsync off: faster, and fine for a cluster thrown away afterwards.
set -euo pipefail
cmd=${1:?usage: pg.sh start|stop|url DIR}
dir=${2:?usage: pg.sh start|stop|url DIR}

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [[ -z "$bindir" ]]; then
  echo "pg.sh: no PostgreSQL server found under /usr/lib/postgresql (apt-get install postgresql)" >&2
  exit 1
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
data="$dir/data"

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# A random free port below the kernel's ephemeral range (32768+), so a port
# this cluster gives up while stopped is not handed to someone else's client
# socket or to a cluster that asked the kernel for "any port".
free_port() {
  python3 - <<'PY'
import random, socket
for _ in range(200):
    port = random.randint(20000, 29999)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("pg.sh: no free port found")
PY
}

port_free() {
  python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

extra=""
[[ "${MLGW_PG_FAST:-0}" == 1 ]] && extra="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"

case "$cmd" in
start)
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres "$dir"
    chmod 700 "$dir"
  fi
  if [[ ! -f "$data/PG_VERSION" ]]; then
    umask 077
    head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > "$dir/password"
    [[ $(id -u) -eq 0 ]] && chown postgres "$dir/password"
    as_owner "$bindir/initdb" -D "$data" -U mlgw --pwfile="$dir/password" \
      --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  if as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    echo "pg.sh: already running" >&2
  else
    port=$(cat "$dir/port" 2>/dev/null || true)
    if [[ -z "$port" ]] || ! port_free "$port"; then
      port=$(free_port)
    fi
    echo "$port" > "$dir/port"
    # setsid: a Ctrl-C meant for the gateway must not reach the postmaster.
    as_owner setsid -w "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 $extra" start >/dev/null \
      || { tail -n 20 "$dir/server.log" >&2; exit 1; }
  fi
  port=$(cat "$dir/port")
  pw=$(cat "$dir/password")
  if ! PGPASSWORD="$pw" psql -X -q -h 127.0.0.1 -p "$port" -U mlgw -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = 'mlgw'" | grep -q 1; then
    PGPASSWORD="$pw" psql -X -q -h 127.0.0.1 -p "$port" -U mlgw -d postgres -c 'CREATE DATABASE mlgw' >/dev/null
  fi
  echo "postgresql://mlgw:$pw@127.0.0.1:$port/mlgw" > "$dir/url"
  chmod 600 "$dir/url"
  ;;
stop)
  if [[ -f "$data/PG_VERSION" ]] && as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_owner "$bindir/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
  fi
  ;;
url)
  cat "$dir/url"
  ;;
*)
  echo "pg.sh: unknown command '$cmd'" >&2
  exit 2
  ;;
esac
