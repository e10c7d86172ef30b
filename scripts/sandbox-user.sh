#!/usr/bin/env bash
# sandbox-user.sh [ROOT] — the job sandbox's user (README, "Job sandbox"):
# when run as root, creates MLGW_LOCAL_SANDBOX_USER (default mlgw-job) if it
# is missing, as a system user without a home or a login shell, and, given a
# local root, makes its input/ readable and its cache/ and output/ usable by
# that user. Run unprivileged it does nothing: the gateway's sandbox then
# maps jobs to a uid of their own in a user namespace.
set -euo pipefail
user=${MLGW_LOCAL_SANDBOX_USER:-mlgw-job}
root=${1:-}
[[ $(id -u) -eq 0 ]] || exit 0
if ! id -u "$user" >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin "$user" 2>/dev/null ||
    id -u "$user" >/dev/null 2>&1 # another process made it meanwhile
  echo "sandbox-user: created the system user $user for local jobs" >&2
fi
if [[ -n "$root" ]]; then
  mkdir -p "$root/input" "$root/output/jobs" "$root/cache"
  # Scripts and inputs: readable by the jobs' group (read-only in the sandbox).
  group=$(id -gn "$user")
  chgrp -R "$group" "$root/input"
  chmod -R g+rX "$root/input"
  # The model cache is the jobs' to fill and empty; each job's output
  # directory is given to the user by the gateway when the job runs (and
  # read by later jobs through output/, which they may cross, not list).
  chown -R "$user:" "$root/cache"
  chmod 0711 "$root/output" "$root/output/jobs"
fi
