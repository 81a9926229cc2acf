"""Benchmarks: scripts that print figures and assert nothing (README, section Benchmark)."""

from __future__ import annotations

import secrets

from localcluster import Layout, cluster

from ..kube import Kube, wait_for
from ..operator_process import ROOT, grant_operator_rbac


def ready_cluster() -> tuple[Layout, Kube]:
    """The running local cluster (started if none is up), with the CRDs and the operator's RBAC."""
    layout = Layout()
    if not cluster.is_up(layout):
        cluster.build(layout)
        cluster.up(layout)
    kube = Kube(layout.kubectl, layout.admin_kubeconfig)
    kube.run("apply", "-k", str(ROOT / "crds"), namespaced=False)
    grant_operator_rbac(kube)
    return layout, kube


def new_namespace(kube: Kube, prefix: str) -> Kube:
    """A fresh namespace PREFIX-xxxxxx, once pods can be created in it."""
    namespace = f"{prefix}-{secrets.token_hex(3)}"
    kube.run("create", "namespace", namespace, namespaced=False)
    ns = kube.in_namespace(namespace)
    wait_for(
        "default service account",
        lambda: ns.run("get", "sa", "default", check=False).returncode == 0,
    )
    return ns
