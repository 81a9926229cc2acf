#!/usr/bin/env bash
# Checks deploy/local/kwok/stages.yaml against kwok's own stage code, offline (no cluster): see
# stages_test.go. Needs the module cache that deploy/local/build.sh filled when it built kwok.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export PATH="/usr/local/go/bin:$PATH" GOTOOLCHAIN=local GOFLAGS=-mod=mod GOPROXY=off
module="$(go env GOMODCACHE)/sigs.k8s.io/kwok@${KWOK_VERSION:-v0.8.0}"
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -r "$module" "$work/kwok" && chmod -R u+w "$work/kwok"
mkdir "$work/kwok/tandemstagecheck"
cp "$here/stages_test.go" "$work/kwok/tandemstagecheck/"
cd "$work/kwok"
STAGES="$here/../stages.yaml" go test ./tandemstagecheck/ -count=1 "$@"
