# shellcheck shell=bash
# lib.sh — sourced by the benchmark scripts that run the release gateway on a
# private PostgreSQL of their own: bench/events.sh, bench/local.sh and
# bench/gpu-check.sh. Callers set `dir` (their build folder) and `gw` (the
# binary) first; everything started here is stopped on exit.

: "${dir:?set dir before sourcing bench/lib.sh}" "${gw:?set gw before sourcing bench/lib.sh}"

gw_pid=""
bench_cleanup() {
  bench_stop_gateway
  scripts/pg.sh stop "$dir/pg" >/dev/null 2>&1 || true
}
trap bench_cleanup EXIT

# bench_database NAME: starts "$dir/pg" (fsync on), makes NAME afresh there
# and exports DATABASE_URL for it.
bench_database() {
  MLGW_PG_FAST=0 scripts/pg.sh start "$dir/pg"
  local admin
  admin=$(cat "$dir/pg/url")
  psql "$admin" -X -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
  export DATABASE_URL=${admin%/mlgw}/$1
}

# bench_start_gateway: applies the migrations, starts "$gw" on a free
# loopback port (log: $dir/$gw_log.log, gw_log "gateway" unless set) and
# waits until it is ready; sets `port` and `gw_pid`.
bench_start_gateway() {
  local log=$dir/${gw_log:-gateway}.log
  "$gw" migrate 2>"$dir/migrate.log"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  MLGW_LISTEN=127.0.0.1:$port "$gw" 2>"$log" &
  gw_pid=$!
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && return 0
    sleep 0.1
  done
  echo "bench: the gateway did not become ready (see $log)" >&2
  return 1
}

# bench_stop_gateway: stops the gateway bench_start_gateway started, if any.
bench_stop_gateway() {
  [[ -n "$gw_pid" ]] || return 0
  kill "$gw_pid" 2>/dev/null || true
  wait "$gw_pid" 2>/dev/null || true
  gw_pid=""
}
