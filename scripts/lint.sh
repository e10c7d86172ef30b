#!/usr/bin/env bash
# lint.sh BUILD_DIR — clang-format (no diffs), clang-tidy (warnings are errors)
# and cppcheck over the C sources, using BUILD_DIR/compile_commands.json; the
# shell scripts through shellcheck and the Dockerfiles through hadolint.
set -euo pipefail
build=${1:-build/asan}
cd "$(dirname "$0")/.."
mapfile -t sources < <(git ls-files '*.c' | grep -E '^(common|aws|db|jobs|routes|server|tests|bench)/')
mapfile -t headers < <(git ls-files '*.h' | grep -E '^(common|aws|db|jobs|routes|server|tests|bench)/')

echo "lint: floors" >&2
scripts/check-floors.sh .

echo "lint: function length" >&2
# No function over 80 lines; one that must be longer says why in a comment
# carrying "#lizard forgives" (read by lizard).
scripts/venv.sh build/lint-venv scripts/lint-requirements.txt
build/lint-venv/bin/lizard --length 80 --CCN 1000 --arguments 100 --warnings_only \
  common aws db jobs routes server

echo "lint: clang-format" >&2
clang-format --dry-run -Werror "${sources[@]}" "${headers[@]}"

echo "lint: clang-tidy" >&2
mapfile -t product < <(printf '%s\n' "${sources[@]}" | grep -E '^(common|aws|db|jobs|routes|server)/')
tidy=$(printf '%s\n' "${product[@]}" | xargs -P "$(nproc)" -n 1 clang-tidy -p "$build" --quiet 2>/dev/null || true)
if grep -qE 'warning:|error:' <<<"$tidy"; then
  grep -E -A3 'warning:|error:' <<<"$tidy" >&2
  echo "lint: clang-tidy found problems" >&2
  exit 1
fi

echo "lint: cppcheck" >&2
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
  --inline-suppr --suppress=missingIncludeSystem -I . "${product[@]}"

echo "lint: shellcheck" >&2
mapfile -t scripts < <(git ls-files '*.sh' .ci/run)
shellcheck -S warning "${scripts[@]}"

echo "lint: hadolint" >&2
# Every Dockerfile (images/); the rules and the few ignored ones are in .hadolint.yaml.
mapfile -t dockerfiles < <(git ls-files '*Dockerfile')
build/lint-venv/bin/hadolint --config .hadolint.yaml "${dockerfiles[@]}"

echo "lint: ok" >&2
