#!/usr/bin/env bash
# test_check_floors.sh SOURCE_DIR — scripts/check-floors.sh accepts the tree
# as it is, and rejects, naming the file and line, an include from a floor
# above (db/ -> server/, common/ -> jobs/), between side floors (aws/ -> db/)
# and by a path outside every floor.
set -euo pipefail
src=$1
check=$src/scripts/check-floors.sh
fail=0

"$check" "$src" || { echo "FAIL: the tree itself breaks the floors"; exit 1; }
echo "ok: the tree keeps to the floors"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
expect_refused() { # floor file include what
  local dir=$tmp/$1
  rm -rf "${tmp:?}"/*
  mkdir -p "$dir"
  printf '#include <stdio.h>\n#include "%s"\n' "$3" >"$dir/$2"
  local out
  if out=$("$check" "$tmp" 2>&1); then
    echo "FAIL: $4 was accepted"
    fail=1
  elif ! grep -q "^$1/$2:2: " <<<"$out"; then
    echo "FAIL: $4 was refused without naming $1/$2:2: $out"
    fail=1
  else
    echo "ok: $4 refused: $(head -n 1 <<<"$out")"
  fi
}
expect_refused db pool.c server/http.h "db/ including server/"
expect_refused common log.h jobs/app.h "common/ including jobs/"
expect_refused aws batch.c db/pool.h "aws/ including db/ (side floors)"
expect_refused routes jobs.c ../server/http.h "a relative path out of the floors"

rm -rf "${tmp:?}"/*
mkdir -p "$tmp/jobs"
printf '#include "common/err.h"\n#include "db/pool.h"\n#include "aws/batch.h"\n#include "jobs/app.h"\n#include "local.h"\n' >"$tmp/jobs/x.c"
if "$check" "$tmp"; then echo "ok: jobs/ may include common/, aws/, db/ and itself"; else
  echo "FAIL: a downward include was refused"
  fail=1
fi
exit "$fail"
