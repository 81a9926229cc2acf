"""Benchmarks: scripts that print figures and assert nothing (docs/benchmarks.md)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

from localcluster import Layout, cluster

from ..deployment import demo_paused
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


@contextlib.contextmanager
def quiet_cluster() -> Iterator[tuple[Layout, Kube]]:
    """`ready_cluster`, with a Tandem deployed in it (the demo's) paused while the benchmark's
    own operator runs: two operators would both act on every pod, and on the figures."""
    layout, kube = ready_cluster()
    with demo_paused(kube, layout):
        yield layout, kube


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
