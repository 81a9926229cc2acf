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

echo "== Tandem's image: deploy/local/images/operator_image.py, the Dockerfile's equivalent"
"$PY" deploy/local/images/operator_image.py --import --address "$STATE/containerd/containerd.sock"

# deploy/base is the default install, without exec (--no-exec): Tandem writes each pod's phase
# once its report container ends, and the kubelet stops haproxy with TERM (the local image sets
# no STOPSIGNAL), on which haproxy's master exits 0; the policy's USR1 needs exec
# (deploy/overlays/exec and the label tandem.dev/exec=allowed on the namespace demo).
echo "== deploy/base: the CRD first (the operator needs it at start), then everything else"
k apply -k crds
k wait --for=condition=Established crd/sidecarpolicies.tandem.dev crd/clusterkopfpeerings.kopf.dev \
  --timeout=60s
k apply -k deploy/base
k -n tandem-system rollout status deployment/tandem --timeout=180s

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
  kubectl -n tandem-system logs deploy/tandem -f   # the operator, in the cluster
  kubectl -n tandem-system exec deploy/tandem -- python3 -c \\
    "import urllib.request as u; print(u.urlopen('http://127.0.0.1:9090/metrics').read().decode())"
  PYTHONPATH=$ROOT/operator $PY -m tandem explain POD -n demo
Stop everything: (cd deploy/local && $PY -m localcluster down)
MSG
