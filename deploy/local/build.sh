#!/usr/bin/env bash
# Builds the local cluster's binaries from the Go module proxy, cached outside the repo by version.
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl, kwok,
#   helm (for the chart in deploy/helm and its tests)
# A second run with the same versions does nothing.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.34.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
CACHE=${TANDEM_CACHE:-/var/cache/tandem}

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

log() { printf '[build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# A cold build is minutes of silence from go: say once a minute that it still runs.
TICKER=
tick_while() {
  local what=$1
  (
    nap=  # Set before the trap can read it (set -u): TERM may come before the first sleep.
    trap 'if [[ -n $nap ]]; then kill "$nap" 2>/dev/null || true; fi; exit 0' TERM
    minutes=0
    while :; do
      sleep 60 & nap=$!
      wait "$nap"
      minutes=$((minutes + 1))
      log "$what: still building ($minutes min)"
    done
  ) &
  TICKER=$!
}
tick_done() {
  if [[ -n $TICKER ]]; then kill "$TICKER" 2>/dev/null || true; fi
  TICKER=
}
trap tick_done EXIT

build_kubernetes() {
  local out="$CACHE/bin/kubernetes-$K8S_VERSION"
  [[ -x "$out/kubectl" ]] && { log "kubernetes $K8S_VERSION cached in $out"; return; }
  local work="$CACHE/src/kubernetes-$K8S_VERSION" minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  mkdir -p "$work" "$out.tmp"
  # k8s.io/kubernetes requires its staging modules at v0.0.0 through ./staging replaces, which only
  # resolve inside its own tree. A wrapper module replaces each with the published v0.N.P module.
  go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
  local gomod
  gomod=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod
  {
    echo "module tandem.dev/local/kubernetes"
    echo
    grep -E '^go ' "$gomod"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    grep -E '=> ./staging/' "$gomod" | awk -v v="v0.${K8S_VERSION#v1.}" '{print "replace " $1 " => " $1 " " v}'
  } >"$work/go.mod"
  cat >"$work/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  log "resolving kubernetes $K8S_VERSION modules"
  (cd "$work" && go mod tidy -e >/dev/null 2>"$work/tidy.log" || { cat "$work/tidy.log"; exit 1; })
  local v=k8s.io/component-base/version
  local ldflags="-s -w -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
  log "building kubernetes $K8S_VERSION (about 10 minutes on 2 cores)"
  (cd "$work" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl)
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_etcd() {
  local out="$CACHE/bin/etcd-$ETCD_VERSION"
  [[ -x "$out/etcd" ]] && { log "etcd $ETCD_VERSION cached in $out"; return; }
  local work="$CACHE/src/etcd-$ETCD_VERSION"
  mkdir -p "$work" "$out.tmp"
  # go.etcd.io/etcd/server/v3 is a main package with relative replaces; a wrapper module requires it.
  cat >"$work/go.mod" <<GOMOD
module tandem.dev/local/etcd

go 1.24
GOMOD
  cat >"$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  log "building etcd $ETCD_VERSION"
  (cd "$work" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1 && go mod tidy -e >/dev/null 2>&1 &&
    go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3)
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_kwok() {
  local out="$CACHE/bin/kwok-$KWOK_VERSION"
  [[ -x "$out/kwok" ]] && { log "kwok $KWOK_VERSION cached in $out"; return; }
  mkdir -p "$out.tmp"
  log "building kwok $KWOK_VERSION"
  GOBIN="$out.tmp" GOFLAGS= go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_helm() {
  local out="$CACHE/bin/helm-$HELM_VERSION"
  [[ -x "$out/helm" ]] && { log "helm $HELM_VERSION cached in $out"; return; }
  mkdir -p "$out.tmp"
  # The version stamps of helm's Makefile: its own version, and the Kubernetes version that
  # `helm lint` and `.Capabilities` assume offline (client-go v0.N.P is Kubernetes 1.N).
  GOFLAGS= go mod download "helm.sh/helm/v3@$HELM_VERSION"
  local client_go minor
  client_go=$(awk '$1 == "k8s.io/client-go" {print $2}' \
    "$(go env GOMODCACHE)/cache/download/helm.sh/helm/v3/@v/$HELM_VERSION.mod")
  minor=${client_go#v0.}
  minor=${minor%%.*}
  local ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  local pkg
  for pkg in pkg/lint/rules pkg/chartutil; do
    ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$minor"
  done
  log "building helm $HELM_VERSION"
  GOBIN="$out.tmp" GOFLAGS= go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

for component in etcd kubernetes kwok helm; do
  tick_while "$component"
  "build_$component"
  tick_done
done
log "binaries ready under $CACHE/bin"
