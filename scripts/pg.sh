#!/usr/bin/env bash
# pg.sh start|stop|url DIR — a private PostgreSQL cluster for DIR.
#
# start: initdb on first use (password auth on 127.0.0.1 only, a random
# password), start it on a free loopback port (kept across restarts), create
# database "mlgw" and write its URL to DIR/url (mode 600). stop: fast
# shutdown. destroy: stop and remove everything. url: print the URL.
#
# PostgreSQL refuses to run as root, so as root the cluster belongs to the
# "postgres" user. Its files live in DIR/cluster when that user can reach
# DIR, else (a checkout under a private home directory) in
# /var/tmp/mlgw-pg-<hash of DIR>, and DIR/cluster names where they are.
# MLGW_PG_FAST=1 (tests) turns fsync off: fine for a cluster thrown away.
set -euo pipefail
cmd=${1:?usage: pg.sh start|stop|url DIR}
dir=${2:?usage: pg.sh start|stop|url DIR}

bindir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
if [[ -z "$bindir" ]]; then
  echo "pg.sh: no PostgreSQL server found under /usr/lib/postgresql (apt-get install postgresql)" >&2
  exit 1
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
root=0
[[ $(id -u) -eq 0 ]] && root=1

as_owner() {
  if [[ $root -eq 1 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Where the cluster's own files go (see above).
home="$dir/cluster"
if [[ -f "$dir/cluster.location" ]]; then
  home=$(cat "$dir/cluster.location")
elif [[ $root -eq 1 ]]; then
  mkdir -p "$home"
  chown postgres "$home"
  chmod 700 "$home"
  if ! runuser -u postgres -- test -w "$home"; then
    rmdir "$home"
    home="/var/tmp/mlgw-pg-$(printf '%s' "$dir" | sha256sum | cut -c1-16)"
    mkdir -p "$home"
    chown postgres "$home"
    chmod 700 "$home"
  fi
fi
data="$home/data"

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

# Free for PostgreSQL, which binds with SO_REUSEADDR: connections of the
# previous run lingering in TIME_WAIT do not make the port busy.
port_free() {
  python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

extra=""
[[ "${MLGW_PG_FAST:-0}" == 1 ]] && extra="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"

case "$cmd" in
start)
  mkdir -p "$home"
  if [[ ! -f "$data/PG_VERSION" ]]; then
    umask 077
    head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > "$dir/password"
    # initdb reads the password as the cluster owner: hand it a copy it can read.
    cp "$dir/password" "$home/pwfile"
    [[ $root -eq 1 ]] && chown postgres "$home/pwfile"
    as_owner "$bindir/initdb" -D "$data" -U mlgw --pwfile="$home/pwfile" \
      --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { rm -f "$home/pwfile"; cat "$dir/initdb.log" >&2; exit 1; }
    rm -f "$home/pwfile"
    printf '%s\n' "$home" > "$dir/cluster.location"
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
    as_owner setsid -w "$bindir/pg_ctl" -D "$data" -l "$home/server.log" -w -t 60 \
      -o "-p $port -k $home -c listen_addresses=127.0.0.1 -c max_connections=200 $extra" start >/dev/null \
      || { as_owner tail -n 20 "$home/server.log" >&2; exit 1; }
  fi
  port=$(cat "$dir/port")
  pw=$(cat "$dir/password")
  if ! PGPASSWORD="$pw" psql -X -q -h 127.0.0.1 -p "$port" -U mlgw -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = 'mlgw'" | grep -q 1; then
    PGPASSWORD="$pw" psql -X -q -h 127.0.0.1 -p "$port" -U mlgw -d postgres -c 'CREATE DATABASE mlgw' >/dev/null
  fi
  (umask 077; echo "postgresql://mlgw:$pw@127.0.0.1:$port/mlgw" > "$dir/url")
  ;;
stop)
  if [[ -f "$data/PG_VERSION" ]] && as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_owner "$bindir/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
  fi
  ;;
destroy)
  "$0" stop "$dir"
  [[ "$home" == /var/tmp/mlgw-pg-* ]] && rm -rf "$home"
  rm -rf "$dir"
  ;;
url)
  cat "$dir/url"
  ;;
*)
  echo "pg.sh: unknown command '$cmd'" >&2
  exit 2
  ;;
esac
