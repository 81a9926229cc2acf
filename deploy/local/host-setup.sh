#!/usr/bin/env bash
# Prepares a fresh machine (Debian 12, root) for the local cluster and the tests:
# Debian's containerd, runc, CNI plugins and tools, and the project's virtualenv in .venv.
# Every program that the build, the images and the tests run comes from PACKAGES, from Debian's
# required packages, or from PREREQUISITES; tests/host/test_host_setup.py checks that it stays so.
# Idempotent: a second run installs nothing. TANDEM_BENCH=1 installs the benchmarks' lock instead
# (the same, plus matplotlib for the plot and py-spy for --profile).
set -euo pipefail
cd "$(dirname "$0")/../.."

PACKAGES=(containerd runc containernetworking-plugins busybox-static haproxy iptables iproute2
          util-linux openssl gcc libc6-dev conntrack curl debootstrap procps)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "[host-setup] installing Debian packages: ${missing[*]}" >&2
  apt-get update -q >/dev/null
  # Packages must not start their system services (containerd, haproxy): the cluster runs its own
  # private containerd. policy-rc.d is Debian's switch for that; remove it only if we made it.
  made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  ((made_policy)) && rm -f /usr/sbin/policy-rc.d
fi

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
# The machine's own toolchains, which no Debian package of the right version provides here.
PREREQUISITES=(go python3)
for tool in "${PREREQUISITES[@]}"; do
  command -v "$tool" >/dev/null || { echo "[host-setup] $tool is required (see the README)" >&2; exit 1; }
done

# The virtualenv holds exactly one lock (deploy/local/lock.sh): the same pinned, hashed versions as
# the image, plus the test tools; a new release upstream changes nothing until the lock is
# recompiled. Made anew whenever that lock (or the Python) changed since it was made, so nothing
# from an older install lingers. The project itself goes in editable, with no dependency resolved
# and the locked build backend (no build isolation, which would fetch an unpinned one).
lock=operator/dev-requirements.lock
[[ -n ${TANDEM_BENCH:-} ]] && lock=operator/bench-requirements.lock
wanted="$(cat "$lock" pyproject.toml | sha256sum | cut -c1-16) $lock $(python3 -V)"
if [[ "$(cat .venv/.installed-from 2>/dev/null)" != "$wanted" ]]; then
  echo "[host-setup] installing $lock into a new .venv" >&2
  rm -rf .venv
  python3 -m venv .venv
  # --no-compile: each module is compiled on its first import instead of all at install (the
  # install took 29 s instead of 45 s; the tests' first imports, 1.2 s more).
  .venv/bin/pip install -q --disable-pip-version-check --only-binary=:all: --require-hashes \
    --no-compile --no-deps -r "$lock"
  .venv/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  .venv/bin/pip check --disable-pip-version-check >/dev/null
  echo "$wanted" >.venv/.installed-from
fi
echo "[host-setup] ready" >&2
