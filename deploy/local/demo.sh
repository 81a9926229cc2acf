#!/usr/bin/env bash
# The README's main job: a fresh machine to a local cluster with Tandem on it, and a CronJob whose
# haproxy sidecar would otherwise keep every pod running forever. Leaves it all running.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"
ROOT=$PWD
PY=$ROOT/.venv/bin/python

bash deploy/local/host-setup.sh
(cd deploy/local && "$PY" -m localcluster up)

STATE=${TANDEM_CLUSTER_STATE:-/var/lib/tandem-cluster}
KUBECTL=$(cd deploy/local && "$PY" -c 'from localcluster import Layout; print(Layout().kubectl)')
k() { "$KUBECTL" --kubeconfig "$STATE/admin.kubeconfig" "$@"; }

echo "== Tandem's CRD and RBAC (deploy/base), bound to the operator's own user"
k apply -f crds/sidecarpolicies.tandem.dev.yaml
k wait --for=condition=Established crd/sidecarpolicies.tandem.dev --timeout=60s
k apply -f deploy/base/rbac.yaml
k create clusterrolebinding tandem-operator-user --clusterrole=tandem --user=tandem-operator \
  --dry-run=client -o yaml | k apply -f -

echo "== Tandem, as a process on the host with the operator's least-privilege identity"
if [[ -f "$STATE/pids/tandem.pid" ]] && kill -0 "$(cat "$STATE/pids/tandem.pid")" 2>/dev/null; then
  echo "already running (pid $(cat "$STATE/pids/tandem.pid"))"
else
  PYTHONPATH="$ROOT/operator" nohup "$PY" -m tandem run --kubeconfig "$STATE/operator.kubeconfig" \
    --liveness-port 8080 --metrics-port 9090 >"$STATE/logs/tandem.log" 2>&1 &
  echo $! >"$STATE/pids/tandem.pid"
  for _ in $(seq 60); do curl -fs http://127.0.0.1:8080/healthz >/dev/null && break; sleep 0.5; done
fi

echo "== A CronJob with an haproxy sidecar (deploy/examples/cronjob-haproxy.yaml)"
k apply -f deploy/examples/cronjob-haproxy.yaml
for run in 1 2 3; do
  k -n demo create job "manual-$run-$(date +%s)" --from=cronjob/nightly-report >/dev/null
done
echo "waiting for the Jobs to complete..."
k -n demo wait --for=condition=Complete job --all --timeout=120s
k -n demo get jobs,pods
echo
echo "== What Tandem did (Events)"
k -n demo get events --field-selector reportingComponent=tandem \
  --sort-by=.metadata.creationTimestamp \
  -o custom-columns=OBJECT:.involvedObject.name,REASON:.reason,MESSAGE:.message | head -20
cat <<MSG

The cluster keeps running, and the CronJob adds a Job every minute; each completes.
  export KUBECONFIG=$STATE/admin.kubeconfig; alias kubectl=$KUBECTL
  kubectl -n demo get jobs -w                   # run after run, Complete
  tail -f $STATE/logs/tandem.log                # the operator
  curl -s http://127.0.0.1:9090/metrics | grep ^tandem_
Stop everything: kill \$(cat $STATE/pids/tandem.pid); (cd deploy/local && $PY -m localcluster down)
MSG
