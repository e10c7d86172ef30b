#!/usr/bin/env bash
# sigv4.sh — benchmarks the SigV4 signer: builds the release core library
# (`make`, into BUILD, default build/), links bench/sigv4_bench.c against
# BUILD/libmlgw_core.a and runs it: a Batch SubmitJob request (1 KB JSON
# body, six signed headers) signed in a loop, reported as ns/op and ops/s.
#
# Settings (environment): BUILD (build directory, build), SIGV4_BENCH_SECONDS
# (seconds of the main measurement, 2), CC (compiler, cc).
set -euo pipefail
cd "$(dirname "$0")/.."

build=${BUILD:-build}
seconds=${SIGV4_BENCH_SECONDS:-2}
cc=${CC:-cc}
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || {
  echo "sigv4.sh: SIGV4_BENCH_SECONDS must be a positive integer (got '$seconds')" >&2
  exit 1
}

make --no-print-directory build BUILD="$build" >&2 # its progress is not the result
# The two floors the signer needs (aws/ and the common/ below it).
floors=("$build/libmlgw_aws.a" "$build/libmlgw_common.a")
for lib in "${floors[@]}"; do
  [[ -f "$lib" ]] || {
    echo "sigv4.sh: $lib was not built" >&2
    exit 1
  }
done

mkdir -p "$build/bench"
read -r -a libs <<<"$(pkg-config --libs openssl jansson libmicrohttpd libcurl libpq)"
"$cc" -std=c17 -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I. \
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wformat=2 -Wstrict-prototypes \
  -Wmissing-prototypes -Wvla -Wcast-qual -Wundef -Wwrite-strings -Werror \
  bench/sigv4_bench.c "${floors[@]}" "${libs[@]}" -lpthread \
  -o "$build/bench/sigv4_bench"
"$build/bench/sigv4_bench" "$seconds"
