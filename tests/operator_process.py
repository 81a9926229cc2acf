"""Tandem as a process on this machine, for the tiers that run it against the local cluster: start
and stop it, read its log and metrics, and grant its test user deploy/'s RBAC. Test modules import
these from here (conftest.py only holds fixtures)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from localcluster import Layout

from .kube import Kube

ROOT = Path(__file__).resolve().parent.parent
HELPER_IMAGE = "local.invalid/tandem/busybox:local"
OPERATOR_USER = "tandem-operator"
"""The user of operator.kubeconfig, whom only deploy/'s RBAC authorises."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Attached:
    """The process of an operator another pytest process started (xdist's controller, for its
    workers): as much of `subprocess.Popen` as the tests use."""

    pid: int

    def poll(self) -> int | None:
        """None while the process runs. An operator that died stays a zombie until the process
        that started it reaps it, and a zombie still takes signals: so /proc says."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except FileNotFoundError:
            return -1
        return -1 if stat.rpartition(")")[2].split()[0] in ("Z", "X") else None


@dataclass
class Operator:
    process: subprocess.Popen[bytes] | Attached
    log: Path
    metrics_port: int
    liveness_port: int

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())


def start_operator(layout: Layout, log: Path, *extra: str, source: Path | None = None) -> Operator:
    """Runs `python -m tandem run` as the tandem-operator user, which only deploy/'s RBAC
    authorises, so every e2e test also proves the ClusterRole is enough."""
    metrics_port, liveness_port = _free_port(), _free_port()
    # SOURCE: another checkout's source root, for a benchmark that compares commits.
    env = {**os.environ, "PYTHONPATH": str(source or ROOT / "operator")}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tandem",
                "run",
                f"--kubeconfig={layout.state / 'operator.kubeconfig'}",
                f"--metrics-port={metrics_port}",
                f"--liveness-port={liveness_port}",
                "--policy-status-interval=2",
                f"--helper-image={HELPER_IMAGE}",
                "--sweep-interval=3",
                "--sweep-allow-delete",
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    operator = Operator(process, log, metrics_port, liveness_port)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"operator exited:\n{operator.log_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{liveness_port}/healthz", timeout=1):
                return operator
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"operator not live in 60s:\n{operator.log_text()[-3000:]}")


@contextlib.contextmanager
def dedicated_operator(layout: Layout, log: Path, label: str, *extra: str) -> Iterator[Operator]:
    """An operator of the test's own, for pods labelled e2e.tandem.dev/operator=LABEL (the
    session's operator ignores them), with EXTRA flags; stopped after the block."""
    running = start_operator(layout, log, f"--pod-selector=e2e.tandem.dev/operator={label}", *extra)
    try:
        yield running
    finally:
        stop_operator(running)
        print(f"\n{label} operator log: {log}")


def stop_operator(operator: Operator) -> None:
    process = operator.process
    assert isinstance(process, subprocess.Popen), "only the process that started it stops it"
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def grant_operator_rbac(kube: Kube) -> None:
    """deploy/'s ClusterRoles bound to the operator's test user: overlays/local's (deploy/base's
    with the exec and helper components, as the host operator execs and adds its helper) and the
    sweeper's delete. Only the roles: the files' own bindings are for the in-cluster
    ServiceAccount."""
    local = kube.run("kustomize", str(ROOT / "deploy" / "overlays" / "local"), namespaced=False)
    sweeper = (ROOT / "deploy" / "base" / "rbac-sweeper-delete.yaml").read_text()
    for obj in [*yaml.safe_load_all(local.stdout), *yaml.safe_load_all(sweeper)]:
        if obj["kind"] == "ClusterRole":
            kube.run("apply", "-f", "-", stdin=json.dumps(obj), namespaced=False)
    for role in ("tandem", "tandem-sweeper-delete"):
        binding = kube.run(
            "create",
            "clusterrolebinding",
            f"{role}-operator-user",
            f"--clusterrole={role}",
            "--user=tandem-operator",
            "--dry-run=client",
            "-o",
            "json",
            namespaced=False,
        ).stdout
        kube.run("apply", "-f", "-", stdin=binding, namespaced=False)


def peering_grant(name: str) -> list[dict[str, Any]]:
    """The ClusterKopfPeering NAME, and the operator's test user's right to it, as the chart grants
    a release's: list and watch all peerings, get and patch only its own (deploy/'s
    `tandem-peering`). Removed with `revoke_peering`."""
    rule = {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"]}
    rbac, role = "rbac.authorization.k8s.io", f"test-peering-{name}"
    return [
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}},
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": role},
            "rules": [
                {**rule, "verbs": ["list", "watch"]},
                {**rule, "resourceNames": [name], "verbs": ["get", "patch"]},
            ],
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role},
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": rbac, "kind": "User", "name": OPERATOR_USER}],
        },
    ]


def revoke_peering(kube: Kube, name: str) -> None:
    role = f"test-peering-{name}"
    kube.run(
        "delete",
        f"clusterkopfpeering.kopf.dev/{name}",
        f"clusterrolebinding/{role}",
        f"clusterrole/{role}",
        "--ignore-not-found",
        namespaced=False,
    )
