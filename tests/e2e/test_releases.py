"""Two operators as two releases of the chart on disjoint namespaces (README, *When one operator
is not enough*): each watches only its own namespace and meets its standbys in its own
ClusterKopfPeering, which only it may write. Each finishes its own Job, and neither acts in the
other's namespace."""

from __future__ import annotations

import contextlib
from pathlib import Path

from localcluster import Layout

from ..kube import Kube, exit_code, wait_for
from ..manifests import EXITS_0_ON_TERM, container, job, pod_spec, primary
from ..operator_process import dedicated_operator, peering_grant, revoke_peering

LABEL = {"e2e.tandem.dev/operator": "releases"}
PRIMARY = {"tandem.dev/primary": "main"}


def _peers(kube: Kube, peering: str) -> list[str] | None:
    """The ids of the operators in PEERING, once there is exactly one."""
    status = kube.get("clusterkopfpeering", peering).get("status") or {}
    return list(status) if len(status) == 1 else None


def test_two_releases_on_disjoint_namespaces_each_finish_only_their_own_jobs(
    local_cluster: Layout, operator_rbac: None, ns: Kube, other_ns: Kube, tmp_path: Path
) -> None:
    releases = {"e2e-release-a": ns, "e2e-release-b": other_ns}
    for peering in releases:
        ns.apply(*peering_grant(peering))
    try:
        with contextlib.ExitStack() as stack:
            operators = {
                peering: stack.enter_context(
                    dedicated_operator(
                        local_cluster,
                        tmp_path / f"{peering}.log",
                        "releases",
                        f"--namespace={namespace.namespace}",
                        f"--peering={peering}",
                    )
                )
                for peering, namespace in releases.items()
            }
            spec = pod_spec([primary(), container("proxy", EXITS_0_ON_TERM)])
            for namespace in releases.values():
                namespace.apply(job("j", spec, annotations=PRIMARY, labels=LABEL))
            for namespace in releases.values():
                assert namespace.wait_job("j") == "Complete"
                [pod] = namespace.job_pods("j")
                assert pod["status"]["phase"] == "Succeeded"
                assert exit_code(pod, "main") == 0
                namespace.wait_for_reasons("Pod", pod["metadata"]["name"], "PodFinished")
            # Each peering holds its own operator alone: two active replicas, one per release.
            peers = {
                peering: wait_for(
                    f"one operator in {peering}", lambda p=peering: _peers(ns, p), timeout=30
                )
                for peering in releases
            }
            assert peers["e2e-release-a"] != peers["e2e-release-b"], peers
            for peering, operator in operators.items():
                finished = operator.log_text()
                for other, namespace in releases.items():
                    acted = f"pod {namespace.namespace}/" in finished
                    assert acted is (other == peering), (peering, namespace.namespace)
    finally:
        for peering in releases:
            revoke_peering(ns, peering)
