#!/usr/bin/env bash
# check-floors.sh [ROOT] — every C file of the gateway includes headers only
# from its own floor or the floors below it:
#
#   common/  ->  aws/, db/  ->  jobs/  ->  routes/  ->  server/
#
# aws/ and db/ stand side by side and do not include each other. Prints one
# line per offending #include ("file:line: floor X may not include Y") and
# exits 1; exits 0 when every include keeps to the rule. Run by the build
# (every library depends on it), by `make lint` and as a CTest test.
set -euo pipefail
root=${1:-$(dirname "$0")/..}
cd "$root"

# The floors each floor may include (itself included).
declare -A allowed=(
  [common]="common"
  [aws]="common aws"
  [db]="common db"
  [jobs]="common aws db jobs"
  [routes]="common aws db jobs routes"
  [server]="common aws db jobs routes server"
)

bad=0
for floor in common aws db jobs routes server; do
  [ -d "$floor" ] || continue
  for f in "$floor"/*.c "$floor"/*.h; do
    [ -e "$f" ] || continue
    while IFS=: read -r line target; do
      target=${target#*\"}
      target=${target%%\"*}
      case "$target" in
        */*) dest=${target%%/*} ;;
        *) dest=$floor ;; # a same-folder include
      esac
      case "$dest" in
        common | aws | db | jobs | routes | server) ;;
        *)
          echo "$f:$line: includes \"$target\", which is in no floor (use a path from the repository root)"
          bad=1
          continue
          ;;
      esac
      if [[ " ${allowed[$floor]} " != *" $dest "* ]]; then
        echo "$f:$line: floor $floor/ may not include $target ($dest/ is not below it)"
        bad=1
      fi
    done < <(grep -n -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | cut -d: -f1,2)
  done
done
if [ "$bad" -ne 0 ]; then
  echo "check-floors: see the layering rule in CONTRIBUTING.md" >&2
  exit 1
fi
