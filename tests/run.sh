#!/usr/bin/env bash
# The test command of the README, and what CI runs: from a fresh machine to every tier green.
#   static checks (ruff, mypy strict, import-linter layers), unit, then the cluster tiers
#   (cluster, adapters, e2e) on a real local cluster that this run starts and stops.
# Extra arguments go to pytest (for example: tests/unit, or -k haproxy).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

bash deploy/local/host-setup.sh
PY=.venv/bin

echo "== static checks"
$PY/ruff check operator deploy/local tests
$PY/mypy
$PY/lint-imports

echo "== build the local cluster (cached by version)"
(cd deploy/local && ../../$PY/python -m localcluster build)

echo "== tests"
status=0
$PY/pytest "${@:-tests}" || status=$?
logs=/var/lib/tandem-cluster-logs  # kept by the session's teardown
[[ -d /var/lib/tandem-cluster/logs ]] && logs=/var/lib/tandem-cluster/logs
if ((status != 0)) && [[ -d $logs ]]; then
  for log in "$logs"/*.log; do
    echo "--- tail of $log"; tail -n 15 "$log"
  done
fi
exit "$status"
