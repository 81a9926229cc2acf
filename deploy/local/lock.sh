#!/usr/bin/env bash
# Compiles every Python lock of the project, hashed, for the image's interpreter (CPython 3.11 on
# x86-64 Linux). The one command to run after changing a dependency or to take newer versions:
#   bash deploy/local/lock.sh             keeps every pin that still fits pyproject's ranges
#   bash deploy/local/lock.sh --upgrade   takes the newest versions the ranges allow
# Then commit the locks with the change. Each lock constrains the next, so a package has the same
# version in all of them:
#   operator/requirements.lock        the image's runtime dependencies (Dockerfile, operator_image.py)
#   operator/build-requirements.lock  the build backend (hatchling), from build-requirements.in
#   operator/dev-requirements.lock    both of the above plus the `test` extra: the .venv of
#                                     host-setup.sh, which the tests and CI run in
#   operator/bench-requirements.lock  the dev lock plus the `bench` extra (TANDEM_BENCH=1)
# uv comes from the dev lock itself; --native-tls makes it trust the machine's certificate store.
set -euo pipefail
cd "$(dirname "$0")/../.."

UV=${UV:-.venv/bin/uv}
TARGET=(--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_17
        --only-binary :all: --native-tls --quiet "$@")

compile() {  # OUTPUT INPUT... [options]: one lock, headed by the command that rebuilds them all
  local out=$1
  shift
  "$UV" pip compile --no-header "$@" "${TARGET[@]}" -o "$out"
  local body
  body=$(cat "$out")
  printf '# Compiled by `bash deploy/local/lock.sh` (docs/development.md); do not edit by hand.\n%s\n' \
    "$body" >"$out"
}

compile operator/requirements.lock pyproject.toml
compile operator/build-requirements.lock operator/build-requirements.in
compile operator/dev-requirements.lock pyproject.toml operator/build-requirements.in --extra test \
  -c operator/requirements.lock -c operator/build-requirements.lock
compile operator/bench-requirements.lock pyproject.toml operator/build-requirements.in \
  --extra test --extra bench -c operator/dev-requirements.lock
echo "[lock] compiled: operator/{,build-,dev-,bench-}requirements.lock" >&2
