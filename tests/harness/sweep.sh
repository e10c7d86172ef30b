#!/usr/bin/env bash
# sweep.sh — after the integration tests: stop and remove the private
# PostgreSQL clusters tests made (/tmp/mlgw-pg-*) that a failed test left
# behind. Only this prefix is touched.
set -u
here=$(cd "$(dirname "$0")" && pwd)
for d in /tmp/mlgw-pg-*; do
  [[ -d "$d" ]] || continue
  "$here/../../scripts/pg.sh" destroy "$d" >/dev/null 2>&1 || true
done
exit 0
