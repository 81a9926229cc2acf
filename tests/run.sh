#!/usr/bin/env bash
# The test command of the README, and what CI runs: from a fresh machine to every tier green.
#   static checks (ruff, mypy strict, import-linter layers); the cluster tiers (cluster,
#   adapters, e2e, chaos, incluster) and unit on a real local cluster that this run starts and
#   stops, with the CPU-bound tiers that need no cluster running beside them; then the core e2e
#   scenarios again with Tandem deployed in the cluster from deploy/overlays/local (deploy/base,
#   plus exec opted into per namespace and the helper).
# Extra arguments go to pytest (for example: tests/unit, or -k haproxy), and skip that second pass.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

bash deploy/local/host-setup.sh
PY=.venv/bin

# The static checks run while the local cluster is built (cached by version), and must pass
# before any test runs. If the build fails first, they are stopped and what they found is shown.
static_out=$(mktemp)
(
  $PY/ruff check operator deploy/local tests &&
    $PY/ruff format --check operator deploy/local tests &&
    $PY/mypy &&
    $PY/lint-imports
) >"$static_out" 2>&1 &
static_pid=$!
stop_static() {
  pkill -P "$static_pid" 2>/dev/null || true
  kill "$static_pid" 2>/dev/null || true
  cat "$static_out"
  rm -f "$static_out"
}
trap stop_static EXIT

echo "== build the local cluster (cached by version)"
(cd deploy/local && ../../$PY/python -m localcluster build)

echo "== static checks"
static=0
wait "$static_pid" || static=$?
trap - EXIT
cat "$static_out"
rm -f "$static_out"
((static == 0)) || exit "$static"

echo "== tests"
status=0
full=$(($# == 0))
was_up=0
(cd deploy/local && ../../$PY/python -m localcluster status >/dev/null) && was_up=1
# In the full run, what needs no cluster and keeps a core busy (the property suites, the chart's
# renders, kwok's stage check) runs beside the cluster tiers, which mostly wait on the cluster:
# niced, so that the cluster's own processes come first. Its output follows theirs.
beside=(tests/deploy tests/host tests/unit/test_decide_properties.py
  tests/unit/test_hostile_input.py tests/unit/test_argv_sandbox.py)
if ((full)); then
  # Its passes share the cluster: started first, stopped at the end (if it was not up before).
  ((was_up)) || (cd deploy/local && ../../$PY/python -m localcluster up)
  # The demo's Tandem, if it runs, is paused once for all the passes (each would pause it and
  # deploy it again otherwise), and deployed again at the end.
  demo=$(PYTHONPATH=deploy/local $PY/python -m tests.deployment pause)
  echo "$demo"
  beside_out=$(mktemp -d)
  nice -n 10 $PY/pytest -p no:cacheprovider --basetemp "$beside_out/tmp" --durations=5 \
    "${beside[@]}" >"$beside_out/log" 2>&1 &
  beside_pid=$!
  rest=("tests" "${beside[@]/#/--ignore=}")
  # First, alone, the tests marked `serial` (they restart a part of the cluster, deploy Tandem in
  # it, or read a count that every operator writes); then the rest in three workers with one
  # operator between them (a test file stays on one worker, with the operators of its own).
  echo "== the tests marked serial, alone"
  $PY/pytest -m serial --durations=15 "${rest[@]}" || status=$?
  # The CPU-bound tiers end before the workers start: the serial pass mostly waits (on
  # restarts, on deploys), while the workers' tests time the kubelet, whose PLEG relists slow down
  # when two cores are also busy generating examples (CI read sidecar ends seconds late so).
  echo "== beside the serial pass: ${beside[*]}"
  wait "$beside_pid" || status=$?
  cat "$beside_out/log"
  rm -rf "$beside_out"
  # Three workers on two cores: their tests mostly wait on the kubelet (the cores were 73 % busy).
  echo "== the cluster tiers and unit, in three workers"
  $PY/pytest -n 3 --dist loadfile -m "not serial" --durations=15 "${rest[@]}" || status=$?
  echo "== core e2e scenarios, Tandem deployed from deploy/overlays/local under its ServiceAccount"
  TANDEM_E2E_OPERATOR=incluster $PY/pytest -n 3 --dist load --durations=5 \
    tests/e2e/test_outcomes.py tests/e2e/test_scenarios.py || status=$?
  if [[ ${demo##*$'\n'} == paused ]]; then
    PYTHONPATH=deploy/local $PY/python -m tests.deployment resume || status=$?
  fi
  if ((!was_up)) && [[ -z ${TANDEM_KEEP_CLUSTER:-} ]]; then
    (cd deploy/local && ../../$PY/python -m localcluster down --keep-logs)
  fi
else
  $PY/pytest --durations=15 "$@" || status=$?
fi
logs=/var/lib/tandem-cluster-logs  # kept by the session's teardown
[[ -d /var/lib/tandem-cluster/logs ]] && logs=/var/lib/tandem-cluster/logs
if ((status != 0)) && [[ -d $logs ]]; then
  for log in "$logs"/*.log; do
    echo "--- tail of $log"; tail -n 15 "$log"
  done
fi
exit "$status"
