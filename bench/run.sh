#!/usr/bin/env bash
# run.sh — `make bench`: one run measuring, against the release gateway and a
# private PostgreSQL cluster (fsync on) under build/bench/:
#   POST /jobs and GET /jobs/{id} throughput, p50 and p99 (wrk), POST /jobs
#   against two gateways on the same database: group commit on (the default)
#   and MLGW_GROUP_COMMIT=off (each request its own transaction);
#   one connection's POST /jobs latency on each (an idle gateway);
#   a bare libmicrohttpd handler with the gateway's daemon flags (the ceiling
#   for GET /jobs/{id});
#   pgbench running the very INSERT statement of POST /jobs, taken from
#   db/jobs.c at bench time;
#   the gateways' peak RSS.
# Results: printed, and written to bench/results/latest.md and
# bench/results/<UTC timestamp>.md. See bench/README.md.
#
# Settings (environment): BENCH_DURATION (seconds per measured run, 10),
# BENCH_WARMUP (seconds of each warm-up, 2), BENCH_CONNECTIONS (wrk
# connections and pgbench clients, 16), BENCH_WRK_THREADS (2),
# BENCH_PGBENCH_JOBS (pgbench threads, 2), BENCH_ROUNDS (1; more: medians
# of that many rounds of POST on, POST off, GET, bare, pgbench), BENCH_IDLE_DURATION
# (seconds of each one-connection POST run, 5), MLGW_THREADS (gateways' and bare
# handler's thread pool; default: the gateway's own rule), MLGW_DB_POOL_SIZE,
# MLGW_DB_WRITERS and MLGW_GROUP_COMMIT_MAX (passed to both gateways).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${BENCH_DURATION:-10}
warmup=${BENCH_WARMUP:-2}
conns=${BENCH_CONNECTIONS:-16}
wrk_threads=${BENCH_WRK_THREADS:-2}
pg_jobs=${BENCH_PGBENCH_JOBS:-2}
rounds=${BENCH_ROUNDS:-1}
idle_duration=${BENCH_IDLE_DURATION:-5}
gw=${BENCH_GATEWAY:-build/ml-gateway}
dir=build/bench
pgdir=$dir/pg
results=bench/results

die() {
  echo "bench: $*" >&2
  exit 1
}
log() {
  echo "bench: $*" >&2
}

for v in duration warmup conns wrk_threads pg_jobs rounds idle_duration; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
((wrk_threads <= conns)) || die "BENCH_WRK_THREADS ($wrk_threads) must not exceed BENCH_CONNECTIONS ($conns)"
((pg_jobs <= conns)) || die "BENCH_PGBENCH_JOBS ($pg_jobs) must not exceed BENCH_CONNECTIONS ($conns)"
for tool in wrk pgbench psql cc pkg-config curl python3; do
  command -v "$tool" >/dev/null || die "$tool is missing: run 'make bench' (it installs wrk and postgresql-contrib)"
done
[[ -x "$gw" ]] || die "$gw is missing: run 'make' first (or 'make bench')"

# The gateway's own default (server/config.c: 2 x cores, at least 4, at most
# 64), set explicitly so that the gateway and the bare handler get the same.
ncpu=$(getconf _NPROCESSORS_ONLN)
threads=${MLGW_THREADS:-$((2 * ncpu < 4 ? 4 : (2 * ncpu > 64 ? 64 : 2 * ncpu)))}
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "MLGW_THREADS must be a positive integer (got '$threads')"
pool=${MLGW_DB_POOL_SIZE:-10}

mkdir -p "$dir" "$results"
# Other work on the machine skews every figure: note how busy it was.
cpu_sample() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat; }
read -r busy0 idle0 < <(cpu_sample)
sleep 1
read -r busy1 idle1 < <(cpu_sample)
busy_start=$((100 * (busy1 - busy0) / (busy1 - busy0 + idle1 - idle0 + 1)))
busy_note=""
if ((busy_start >= 20)); then
  busy_note="Warning: the CPUs were $busy_start% busy with other work just before the run; the figures are skewed by it (rerun on a quiet machine)."
  log "$busy_note"
fi
python3 bench/bench.py check-binary db/jobs.c "$gw"
gc_note=""
if ! grep -qaF MLGW_GROUP_COMMIT "$gw"; then
  gc_note="Warning: $gw does not read MLGW_GROUP_COMMIT (no group commit in this build): the gateways \"on\" and \"off\" ran the same code."
  log "$gc_note"
fi

gw_pid=""
off_pid=""
bare_pid=""
pg_started=0

stop_pid() { # PID NAME: SIGTERM, then SIGKILL after 15 s
  local pid=$1
  [[ -n "$pid" ]] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$2 (pid $pid) ignored SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$bare_pid" "bare handler"
  stop_pid "$gw_pid" "gateway"
  stop_pid "$off_pid" "gateway (group commit off)"
  if [[ $pg_started -eq 1 ]]; then
    scripts/pg.sh stop "$pgdir" || log "could not stop PostgreSQL in $pgdir"
  fi
  [[ $rc -eq 0 ]] || log "FAILED (exit $rc); logs in $dir/"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # URL PID NAME: until URL answers 200 (30 s)
  for _ in $(seq 300); do
    kill -0 "$2" 2>/dev/null || die "$3 exited during start-up (see $dir/$3.log)"
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$1" || true) == 200 ]] && return 0
    sleep 0.1
  done
  die "$3 did not answer 200 on $1 within 30 s (see $dir/$3.log)"
}

peak_rss_kib() {
  awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"
}

# The body of every POST /jobs: a small CPU job, as a client would send it.
body='{"script_key":"jobs/bench.py","compute_type":"cpu","metadata":{"user":"bench"}}'

run_wrk() { # NAME BODY|"" URL SECONDS [CONNS DELAY_MS]: prints "rps p50_ms p99_ms requests"
  local out="$dir/wrk-$1.txt" c=${5:-$conns} t=$wrk_threads
  ((t <= c)) || t=$c
  log "wrk $1: -t$t -c$c -d${4}s $3${6:+ (each connection pausing ${6} ms between requests)}"
  BENCH_API_KEY=$key BENCH_BODY=$2 BENCH_DELAY_MS=${6:-} wrk -t"$t" -c"$c" -d"${4}s" --latency \
    -s bench/wrk.lua "$3" >"$out" 2>&1 || die "wrk $1 failed: $(cat "$out")"
  python3 bench/bench.py wrk "$out"
}

# Half load: about half of max_rps offered by connections that each pause
# 2 ms between requests (closed loop, so the rate reached is printed beside).
half_delay_ms=2
run_half() { # NAME BODY|"" URL MAX_RPS P50_MS: prints "rps p50_ms p99_ms requests conns"
  local c
  c=$(awk -v r="$4" -v l="$5" -v d="$half_delay_ms" 'BEGIN { c = int(r / 2 * (d + l) / 1000 + 0.5); print (c < 1 ? 1 : c) }')
  echo "$(run_wrk "$1" "$2" "$3" "$duration" "$c" "$half_delay_ms") $c"
}

# --- build the bare handler, start PostgreSQL, prepare the database --------
# shellcheck disable=SC2046 # pkg-config output is meant to be split into words
cc -O2 -Wall -Wextra -o "$dir/bare_mhd" bench/bare_mhd.c $(pkg-config --cflags --libs libmicrohttpd)

log "starting PostgreSQL in $pgdir (fsync on)"
pg_started=1
MLGW_PG_FAST=0 scripts/pg.sh start "$pgdir"
# Every run starts from a fresh database (this cluster is the benchmark's own),
# migrated by the binary under test.
admin_url=$(cat "$pgdir/url")
psql "$admin_url" -X -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
url=${admin_url%/mlgw}/bench
psql_q() {
  psql "$url" -X -q -t -A -v ON_ERROR_STOP=1 -c "$1"
}

export DATABASE_URL=$url MLGW_LOG_LEVEL=warn MLGW_THREADS=$threads
export MLGW_LOCAL_ROOT=$dir/local
# The jobs posted are stored, not run: the executor and the dispatchers stay off, so that the
# request path alone is measured (running thousands of jobs would take the CPUs from it).
export MLGW_DISPATCH_WORKERS=0 MLGW_NOTIFY_WORKERS=0
"$gw" migrate 2>"$dir/migrate.log" || die "migrations failed: $(cat "$dir/migrate.log")"
key=$("$gw" keys create --name bench --scopes jobs:read,jobs:write --rate 1000000 --burst 1000000 2>"$dir/keys.log") \
  || die "cannot create the API key: $(cat "$dir/keys.log")"
[[ "$key" == mlgw_* ]] || die "unexpected output from 'keys create'"

# --- the gateways: group commit on (measured throughout) and off -----------
# Both on the same database with the same settings but MLGW_GROUP_COMMIT; the
# second one is idle but for its own POST runs.
gw_port=$(free_port)
gw_url=http://127.0.0.1:$gw_port
MLGW_GROUP_COMMIT=on MLGW_LISTEN=127.0.0.1:$gw_port "$gw" 2>"$dir/gateway.log" &
gw_pid=$!
wait_http "$gw_url/readyz" "$gw_pid" gateway
off_port=$(free_port)
off_url=http://127.0.0.1:$off_port
MLGW_GROUP_COMMIT=off MLGW_LISTEN=127.0.0.1:$off_port "$gw" 2>"$dir/gateway-off.log" &
off_pid=$!
wait_http "$off_url/readyz" "$off_pid" gateway-off

# The job GET reads, made with the benchmark's own POST body.
code=$(curl -s -o "$dir/seed.json" -w '%{http_code}' -X POST "$gw_url/jobs" \
  -H "Authorization: Bearer $key" -H 'Content-Type: application/json' --data-binary "$body")
[[ "$code" == 202 ]] || die "POST /jobs answered $code: $(cat "$dir/seed.json")"
job_bytes=$(wc -c <"$dir/seed.json")
job_id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$dir/seed.json")

# pgbench's script: the INSERT of db/jobs.c with this job's parameter values.
psql_q "SELECT to_jsonb(j) FROM jobs j WHERE id = '$job_id'" >"$dir/seed-row.json"
python3 bench/bench.py pgbench-script db/jobs.c "$dir/seed-row.json" "$dir/insert.sql" "$dir/insert.defs"
pg_defs=()
while IFS= read -r d; do pg_defs+=(-D "$d"); done <"$dir/insert.defs"
pgbench -n -M prepared -c 1 -t 1 -f "$dir/insert.sql" "${pg_defs[@]}" "$url" >"$dir/pgbench-check.txt" 2>&1 \
  || die "the pgbench script does not run: $(cat "$dir/pgbench-check.txt")"

# --- the bare handler: idle until its run --------------------------------------
bare_port=$(free_port)
bare_url=http://127.0.0.1:$bare_port
"$dir/bare_mhd" "$bare_port" "$threads" 2>"$dir/bare.log" &
bare_pid=$!
wait_http "$bare_url/" "$bare_pid" bare
bare_bytes=$(curl -s "$bare_url/" | wc -c)

# POST /jobs runs go through this: CHECKPOINT (so that no run pays for the
# previous one's dirty pages), then the run, then the check that the jobs table
# gained at least as many rows as wrk counted created jobs.
jobs_made=0
post_run() { # NAME URL SECONDS [CONNS]: sets post_result to "rps p50_ms p99_ms requests"
  local before made
  psql_q CHECKPOINT
  before=$(psql_q "SELECT count(*) FROM jobs")
  post_result=$(run_wrk "$1" "$body" "$2/jobs" "$3" "${4:-}")
  made=$(($(psql_q "SELECT count(*) FROM jobs") - before))
  ((made >= ${post_result##* })) || die "wrk $1 counted ${post_result##* } created jobs but the table gained only $made"
  jobs_made=$((jobs_made + made))
}
alive() {
  kill -0 "$gw_pid" 2>/dev/null || die "the gateway died during the runs (see $dir/gateway.log)"
  kill -0 "$off_pid" 2>/dev/null || die "the gateway with group commit off died during the runs (see $dir/gateway-off.log)"
}

# --- warm-up, then each round: POST on, POST off, GET, bare, pgbench ---------
run_wrk warmup-post "$body" "$gw_url/jobs" "$warmup" >/dev/null
run_wrk warmup-post-off "$body" "$off_url/jobs" "$warmup" >/dev/null
run_wrk warmup-get "" "$gw_url/jobs/$job_id" "$warmup" >/dev/null

pg_cmd=(pgbench -n -M prepared -c "$conns" -j "$pg_jobs" -T "$duration" -f "$dir/insert.sql")
: >"$dir/rounds.txt"
for ((round = 1; round <= rounds; round++)); do
  tag=""
  ((rounds == 1)) || { tag="-r$round"; log "round $round of $rounds"; }

  post_run "post$tag" "$gw_url" "$duration"
  post=$post_result
  post_run "post-off$tag" "$off_url" "$duration"
  post_off=$post_result

  get=$(run_wrk "get$tag" "" "$gw_url/jobs/$job_id" "$duration")
  alive
  bare=$(run_wrk "bare$tag" "" "$bare_url/jobs/$job_id" "$duration")

  psql_q CHECKPOINT
  rm -f "$dir/pgbench_log$tag".*
  log "${pg_cmd[*]}"
  "${pg_cmd[@]}" "${pg_defs[@]}" -l --log-prefix="$dir/pgbench_log$tag" "$url" >"$dir/pgbench$tag.txt" 2>&1 \
    || die "pgbench failed: $(cat "$dir/pgbench$tag.txt")"
  pg=$(python3 bench/bench.py pgbench "$dir/pgbench$tag.txt" "$dir/pgbench_log$tag")

  echo "$post $pg $get $bare $post_off" >>"$dir/rounds.txt"
done

# Idle: one connection, each request sent when the previous one was answered,
# POST /jobs against each gateway: what group commit costs a lone request.
post_run idle-post "$gw_url" "$idle_duration" 1
read -r idle_rps idle_p50 idle_p99 idle_n <<<"$post_result"
post_run idle-post-off "$off_url" "$idle_duration" 1
read -r idle_off_rps idle_off_p50 idle_off_p99 idle_off_n <<<"$post_result"
alive

# Half of the maximum just measured (the medians), POST and GET, once, against
# the gateway with group commit on.
r=$(python3 bench/bench.py medians "$dir/rounds.txt")
read -r m_post_rps m_post_p50 _ _ _ _ _ _ m_get_rps m_get_p50 _ <<<"$r"
post_half=$(run_half post-half "$body" "$gw_url/jobs" "$m_post_rps" "$m_post_p50")
get_half=$(run_half get-half "" "$gw_url/jobs/$job_id" "$m_get_rps" "$m_get_p50")
read -r ph_rps ph_p50 ph_p99 _ ph_conns <<<"$post_half"
read -r gh_rps gh_p50 gh_p99 _ gh_conns <<<"$get_half"
cache_stats=$(curl -s -H "Authorization: Bearer $key" "$gw_url/metrics" | awk '/^mlgw_job_cache_(events_total|live)/ { sub(/mlgw_job_cache_/, ""); printf "%s%s", sep, $0; sep = ", " }')

alive
gw_rss=$(peak_rss_kib "$gw_pid")
off_rss=$(peak_rss_kib "$off_pid")
bare_rss=$(peak_rss_kib "$bare_pid")
stop_pid "$gw_pid" gateway
gw_pid=""
stop_pid "$off_pid" "gateway (group commit off)"
off_pid=""
stop_pid "$bare_pid" "bare handler"
bare_pid=""

# Medians over the rounds (the value itself for one round); each ratio is the
# median of the per-round ratios, each taken from runs made seconds apart.
r=$(python3 bench/bench.py medians "$dir/rounds.txt")
read -r post_rps post_p50 post_p99 post_n pg_tps pg_p50 pg_p99 pg_n \
  get_rps get_p50 get_p99 get_n bare_rps bare_p50 bare_p99 bare_n \
  off_rps off_p50 off_p99 off_n post_ratio get_ratio onoff_ratio off_pg_ratio <<<"$r"

pg_version=$(psql_q "SHOW server_version")
pg_settings=$(psql_q "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name)
  FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers',
  'wal_level', 'max_wal_size', 'checkpoint_timeout')")
scripts/pg.sh stop "$pgdir"
pg_started=0

# --- the report --------------------------------------------------------------
# A verdict is "met", or "**missed**" (bold, so that it stands out).
atleast() { awk -v v="$1" -v goal="$2" 'BEGIN { print (v >= goal ? "met" : "**missed**") }'; }
atmost() { awk -v v="$1" -v goal="$2" 'BEGIN { print (v <= goal ? "met" : "**missed**") }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
idle_ratio=$(awk -v a="$idle_p50" -v b="$idle_off_p50" 'BEGIN { printf "%.2f", a / b }')

stamp=$(date -u +%Y%m%dT%H%M%SZ)
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] || commit="$commit (with uncommitted changes)"
out=$results/latest.md.tmp
{
  echo "# ml-gateway benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo
  echo "| Setup | |"
  echo "|---|---|"
  echo "| Host | \`$(uname -srm)\`, $(nproc) CPUs, ${cpu:-unknown CPU}; ${busy_start}% CPU busy with other work just before the run (1 s sample) |"
  echo "| Gateways | \`$gw\` (release) at $commit, two processes on the same database: **on** with MLGW_GROUP_COMMIT=on (MLGW_DB_WRITERS=${MLGW_DB_WRITERS:-default}, MLGW_GROUP_COMMIT_MAX=${MLGW_GROUP_COMMIT_MAX:-default}), **off** with MLGW_GROUP_COMMIT=off; both MLGW_THREADS=$threads, MLGW_DB_POOL_SIZE=$pool, MLGW_LOG_LEVEL=warn (no access log lines) |"
  echo "| PostgreSQL | $pg_version, private cluster in \`$pgdir\`: $pg_settings |"
  echo "| wrk | \`wrk -t$wrk_threads -c$conns -d${duration}s --latency\` after a ${warmup} s warm-up of POST (each gateway) and of GET; $rounds round(s); idle runs \`wrk -t1 -c1 -d${idle_duration}s --latency\` |"
  echo "| pgbench | \`${pg_cmd[*]}\` (same cluster and settings) |"
  echo "| Bare handler | \`bench/bare_mhd.c\`: libmicrohttpd $(pkg-config --modversion libmicrohttpd), the gateway's daemon flags, $threads threads, a fixed $bare_bytes-byte JSON body to every GET (GET /jobs/{id} returns $job_bytes bytes) |"
  [[ -z "$gc_note" ]] || printf '\n**%s**\n' "$gc_note"
  echo
  if ((rounds > 1)); then
    echo "Figures are medians over $rounds rounds of POST on, POST off, GET, bare, pgbench; each"
    echo "ratio is the median of the rounds' ratios."
    echo
  fi
  echo "| Run | Throughput (/s) | p50 (ms) | p99 (ms) | Completed |"
  echo "|---|---:|---:|---:|---:|"
  echo "| POST /jobs, group commit on | $post_rps | $post_p50 | $post_p99 | $post_n |"
  echo "| POST /jobs, group commit off | $off_rps | $off_p50 | $off_p99 | $off_n |"
  echo "| pgbench: the same INSERT | $pg_tps | $pg_p50 | $pg_p99 | $pg_n |"
  echo "| GET /jobs/{id} (gateway, on) | $get_rps | $get_p50 | $get_p99 | $get_n |"
  echo "| GET, bare libmicrohttpd handler | $bare_rps | $bare_p50 | $bare_p99 | $bare_n |"
  echo
  echo "Idle gateway: POST /jobs from one connection, each request sent when the previous one was answered (one run each, after the rounds):"
  echo
  echo "| Gateway | Throughput (/s) | p50 (ms) | p99 (ms) | Completed |"
  echo "|---|---:|---:|---:|---:|"
  echo "| group commit on | $idle_rps | $idle_p50 | $idle_p99 | $idle_n |"
  echo "| group commit off | $idle_off_rps | $idle_off_p50 | $idle_off_p99 | $idle_off_n |"
  echo
  echo "Half load against the gateway with group commit on (about half the maximum above, offered by connections pausing $half_delay_ms ms between requests; one run each):"
  echo
  echo "| Run | Throughput (/s) | Share of the maximum | Connections | p50 (ms) | p99 (ms) | p99 goal | |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|"
  echo "| POST /jobs | $ph_rps | $(pct "$ph_rps" "$m_post_rps") % | $ph_conns | $ph_p50 | $ph_p99 | ≤ 10 | $(atmost "$ph_p99" 10) |"
  echo "| GET /jobs/{id} | $gh_rps | $(pct "$gh_rps" "$m_get_rps") % | $gh_conns | $gh_p50 | $gh_p99 | ≤ 2 | $(atmost "$gh_p99" 2) |"
  echo
  echo "Job cache (MLGW_JOB_CACHE_BYTES=${MLGW_JOB_CACHE_BYTES:-default}) of the gateway with group commit on, at the end: ${cache_stats:-not running}."
  echo
  echo "| Peak RSS (VmHWM) | MiB |"
  echo "|---|---:|"
  echo "| gateway, group commit on, after all runs | $(mib "$gw_rss") |"
  echo "| gateway, group commit off, after all runs | $(mib "$off_rss") |"
  echo "| bare handler | $(mib "$bare_rss") |"
  echo
  echo "| Goal | Measured | Goal | |"
  echo "|---|---:|---:|---|"
  echo "| POST /jobs (group commit on) ÷ pgbench tps | $post_ratio | ≥ 2 | $(atleast "$post_ratio" 2) |"
  echo "| GET /jobs/{id} ÷ bare handler | $get_ratio | ≥ 0.6 | $(atleast "$get_ratio" 0.6) |"
  echo "| Idle POST /jobs p50, group commit on ÷ off | $idle_ratio | ≤ 1.10 | $(atmost "$idle_ratio" 1.10) |"
  echo "| Half-load POST /jobs p99 (ms) | $ph_p99 | ≤ 10 | $(atmost "$ph_p99" 10) |"
  echo "| Half-load GET /jobs/{id} p99 (ms) | $gh_p99 | ≤ 2 | $(atmost "$gh_p99" 2) |"
  echo "| POST /jobs, group commit on ÷ off | $onoff_ratio | no goal | |"
  echo "| POST /jobs, group commit off ÷ pgbench tps | $off_pg_ratio | no goal | |"
  if ((rounds > 1)); then
    echo
    echo "| Round | POST on (/s) | POST off (/s) | pgbench (tps) | on ÷ pgbench | on ÷ off | GET /jobs/{id} (/s) | bare (/s) | GET ÷ bare |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk '{ printf "| %d | %s | %s | %s | %.2f | %.2f | %s | %s | %.2f |\n", NR, $1, $17, $5, $1 / $5, $1 / $17, $9, $13, $9 / $13 }' "$dir/rounds.txt"
  fi
  echo
  echo "Notes: throughput is wrk's Requests/sec and pgbench's tps (without initial connection"
  echo "time); latency percentiles are wrk's and, for pgbench, from its per-transaction log."
  echo "All responses were 2xx and no transaction failed (the run stops otherwise). The POST runs"
  echo "of the rounds and the idle runs created $jobs_made jobs. Each gateway can have at most $threads requests in"
  echo "progress (MLGW_THREADS) and $pool database connections, for $conns client connections."
  [[ -z "$busy_note" ]] || printf '\n**%s**\n' "$busy_note"
  echo
  echo "The pgbench script, generated from \`JOB_INSERT_CTE\` in \`db/jobs.c\` at bench time"
  echo "(the job id becomes \`gen_random_uuid()\`, NULL parameters literal NULLs):"
  echo
  echo '```sql'
  cat "$dir/insert.sql"
  echo '```'
  echo
  echo "with \`-D\`: $(paste -sd' ' "$dir/insert.defs" | sed 's/|/\\|/g')"
} >"$out"
cp "$out" "$results/$stamp.md"
mv "$out" "$results/latest.md"
echo
cat "$results/latest.md"
echo
log "written to $results/latest.md and $results/$stamp.md"
