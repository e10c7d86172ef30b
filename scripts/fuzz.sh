#!/usr/bin/env bash
# fuzz.sh BUILD_DIR SECONDS — runs every libFuzzer target of BUILD_DIR (built
# by `make fuzz` with MLGW_FUZZ=ON) for SECONDS each, one after the other, in
# one process each (no -jobs/-workers).
#
# Each target starts from its committed seeds (tests/fuzz/corpus/<name>/),
# copied into a scratch corpus BUILD_DIR/work/<name>/ where libFuzzer adds
# what it finds; the scratch corpus is kept between runs, the committed one
# never changes. A crash, leak, timeout or failed FUZZ_CHECK leaves its input
# in BUILD_DIR/artifacts/ and the log in BUILD_DIR/logs/<target>.log; copy
# the input into tests/fuzz/corpus/<name>/ once fixed, so that `make test`
# replays it from then on.
#
# Prints one line per target (executions, executions per second, corpus size
# before and after, result) and a total; exits 1 when any target found
# something.
set -euo pipefail
build=${1:-build/fuzz}
secs=${2:-60}
cd "$(dirname "$0")/.."

[[ $secs =~ ^[0-9]+$ && $secs -gt 0 ]] || { echo "fuzz: SECONDS must be a positive integer" >&2; exit 2; }
shopt -s nullglob
targets=()
for exe in "$build"/fuzz_*; do
  [[ -f $exe && -x $exe ]] && targets+=("$exe")
done
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "fuzz: no fuzz_* executables in $build (configure it with -DMLGW_FUZZ=ON)" >&2
  exit 2
fi
mkdir -p "$build/work" "$build/artifacts" "$build/logs"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

found=0
total=0
start=$(date +%s)
printf '%-18s %12s %9s %15s  %s\n' target executions exec/s corpus result
for exe in "${targets[@]}"; do
  t=$(basename "$exe")
  name=${t#fuzz_}
  seeds=tests/fuzz/corpus/$name
  work=$build/work/$name
  log=$build/logs/$t.log
  mkdir -p "$work"
  if [[ -d $seeds ]]; then
    cp -- "$seeds"/* "$work"/ 2>/dev/null || true
  fi
  before=$(find "$work" -type f | wc -l)
  rc=0
  "$exe" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$build/artifacts/$t-" "$work" >"$log" 2>&1 || rc=$?
  after=$(find "$work" -type f | wc -l)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  execs=${execs:-0}
  total=$((total + execs))
  if [[ $rc -eq 0 ]]; then
    result=ok
  else
    found=1
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    summary=$(grep -m 1 -E '^SUMMARY:|fuzz check failed|ERROR: libFuzzer' "$log" || true)
    result="FOUND (exit $rc): ${summary:-see $log}; input: ${artifact:-none}; log: $log"
  fi
  printf '%-18s %12s %9s %6s -> %-6s  %s\n' "$t" "$execs" "${rate:-?}" "$before" "$after" "$result"
done
printf 'total: %s executions in %ss, %s targets, %s\n' "$total" "$(($(date +%s) - start))" \
  "${#targets[@]}" "$([[ $found -eq 0 ]] && echo 'no findings' || echo 'FINDINGS above')"
exit "$found"
