"""Two operators as two releases of the chart on disjoint namespaces (docs/operating.md, *When one
operator is not enough*): each watches only its own namespace and meets its standbys in its own
ClusterKopfPeering, which only it may write. Each finishes its own Job, and neither acts in the
other's namespace. And an operator whose peering is missing: Kopf keeps it paused, Tandem's check
says why, and it acts once the peering exists."""

from __future__ import annotations

import contextlib
import time
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
                # Read once the pod is done: the kubelet may put it back to Running for a moment
                # after the write (docs/how-a-pod-ends.md), and so fail a read at Job Complete.
                pod = namespace.wait_pod(
                    pod["metadata"]["name"],
                    "proxy ended",
                    lambda p: exit_code(p, "proxy") is not None,
                    30,
                )
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


def test_a_missing_peering_is_named_and_the_operator_acts_once_it_exists(
    local_cluster: Layout, operator_rbac: None, ns: Kube, tmp_path: Path
) -> None:
    """Kopf keeps an operator whose ClusterKopfPeering is missing paused, with nothing above
    DEBUG in its log: Tandem's startup check names the problem and the fix, and the operator
    acts once the peering is created."""
    peering = f"e2e-missing-{ns.namespace}"
    the_peering, *its_grant = peering_grant(peering)
    ns.apply(*its_grant)
    try:
        with dedicated_operator(
            local_cluster,
            tmp_path / "operator.log",
            "missing-peering",
            f"--namespace={ns.namespace}",
            f"--peering={peering}",
        ) as operator:
            wait_for(
                "the peering named as missing",
                lambda: f"the ClusterKopfPeering '{peering}' does not exist" in operator.log_text(),
                timeout=30,
            )
            spec = pod_spec([primary(), container("proxy", EXITS_0_ON_TERM)])
            labels = {"e2e.tandem.dev/operator": "missing-peering"}
            ns.apply(job("j", spec, annotations=PRIMARY, labels=labels))
            [pod] = ns.wait_job_pods("j")
            name = pod["metadata"]["name"]
            ns.wait_pod(name, "main ended", lambda p: exit_code(p, "main") is not None, 60)
            time.sleep(5)
            pod = ns.get("pod", name)
            assert (pod["status"]["phase"], exit_code(pod, "proxy")) == ("Running", None)
            ns.apply(the_peering)
            assert ns.wait_job("j") == "Complete"
            ns.wait_for_reasons("Pod", name, "PodFinished")
    finally:
        revoke_peering(ns, peering)
