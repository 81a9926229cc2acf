"""Pods that no Job owns, on the real kubelet: a private operator started with
--pods-without-job, and a SidecarPolicy's podsWithoutJob in the test's namespace.

- A bare pod built the way Airflow's KubernetesPodOperator builds it (its `base` container is the
  primary, restartPolicy Never, its labels), with a sidecar: finished with the primary's outcome,
  success and failure.
- A pod owned by a custom resource of the test's own CRD (`Run`), which the policy names: finished,
  and PodFinished is posted on the Run too.
- Never written to, in the same namespace and under the same policy: a ReplicaSet's pod that
  carries the same labels and annotation, and a bare pod the policy does not select. Each gets
  one NotAJobPod Warning, so the operator did see them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from localcluster import Layout

from ..audit_log import phase_writes, wait_phase_writes
from ..kube import Kube, exit_code
from ..manifests import EXITS_0_ON_TERM, container, pod_spec
from ..operator_process import start_operator, stop_operator

PRIVATE = {"e2e.tandem.dev/operator": "without-job"}
"""The session operator ignores pods with this label; the private one handles only them."""

AIRFLOW = {
    **PRIVATE,
    "kubernetes_pod_operator": "True",
    "dag_id": "nightly",
    "task_id": "extract",
    "airflow_version": "2.10.4",
}

RUN_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "runs.e2e.tandem.dev"},
    "spec": {
        "group": "e2e.tandem.dev",
        "scope": "Namespaced",
        "names": {"plural": "runs", "singular": "run", "kind": "Run"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}
RUN = {"apiVersion": "e2e.tandem.dev/v1", "kind": "Run"}


def _policy() -> dict[str, Any]:
    return {
        "apiVersion": "tandem.dev/v1alpha1",
        "kind": "SidecarPolicy",
        "metadata": {"name": "airflow"},
        "spec": {
            "selector": {"matchLabels": {"kubernetes_pod_operator": "True"}},
            "primaryContainers": ["base"],
            "podsWithoutJob": {"bare": True, "controllers": [RUN]},
        },
    }


def _pod(name: str, labels: dict[str, str], exit_code_: int = 0, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels, **meta},
        "spec": pod_spec(
            [
                container("base", ["sh", "-c", f"sleep 1; exit {exit_code_}"]),
                container("proxy", EXITS_0_ON_TERM),
            ]
        ),
    }


@pytest.fixture
def private(local_cluster: Layout, operator_rbac: None, tmp_path: Path) -> Any:
    running = start_operator(
        local_cluster,
        tmp_path / "private.log",
        "--pods-without-job",
        "--pod-selector=e2e.tandem.dev/operator=without-job",
    )
    yield running
    stop_operator(running)


def _ended(ns: Kube, name: str, phase: str) -> dict[str, Any]:
    return ns.wait_pod(
        name,
        f"{phase}, its sidecar ended",
        lambda p: p["status"].get("phase") == phase and exit_code(p, "proxy") is not None,
        timeout=60,
    )


@pytest.mark.host_operator("starts a private operator with --pods-without-job on the host")
def test_pods_no_job_owns_are_finished_when_a_policy_opts_them_in(
    kube: Kube, local_cluster: Layout, ns: Kube, private: Any
) -> None:
    kube.apply(RUN_CRD)
    kube.run("wait", "--for=condition=Established", "crd/runs.e2e.tandem.dev", namespaced=False)
    ns.apply({**RUN, "metadata": {"name": "run-1"}})
    run = ns.get("run", "run-1")
    owner = {
        **RUN,
        "name": "run-1",
        "uid": run["metadata"]["uid"],
        "controller": True,
    }
    annotated = {"annotations": {"tandem.dev/primary": "base"}}
    replica_set = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "forged"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "forged"}},
            "template": {
                "metadata": {"labels": {**AIRFLOW, "app": "forged"}, **annotated},
                "spec": {**_pod("x", {})["spec"], "restartPolicy": "Always"},
            },
        },
    }
    ns.apply(
        _policy(),
        _pod("extract", AIRFLOW),
        _pod("extract-failed", AIRFLOW, exit_code_=2),
        _pod("owned", AIRFLOW, ownerReferences=[owner]),
        _pod("unselected", PRIVATE, **annotated),
        replica_set,
    )

    for name, phase, code in (("extract", "Succeeded", 0), ("extract-failed", "Failed", 2)):
        pod = _ended(ns, name, phase)
        assert exit_code(pod, "base") == code, pod["status"]
        ns.wait_for_reasons("Pod", name, "PodFinished")
    _ended(ns, "owned", "Succeeded")
    ns.wait_for_reasons("Run", "run-1", "PodFinished")  # on the owner, as on a Job
    [message] = [e["message"] for e in ns.events("Run", "run-1") if e["reason"] == "PodFinished"]
    assert message.startswith("pod owned: "), message
    writes = wait_phase_writes(local_cluster, ns.namespace, ["extract", "extract-failed", "owned"])
    assert all(1 <= writes[n] <= 3 for n in ("extract", "extract-failed", "owned")), writes

    [forged] = ns.pods("app=forged")
    forged_name = forged["metadata"]["name"]
    ns.wait_for_reasons("Pod", forged_name, "NotAJobPod")
    ns.wait_for_reasons("Pod", "unselected", "NotAJobPod")
    messages = {
        name: [e["message"] for e in ns.events("Pod", name) if e["reason"] == "NotAJobPod"]
        for name in (forged_name, "unselected")
    }
    assert "replaces the pods it loses" in messages[forged_name][0], messages
    assert "no SidecarPolicy in its namespace opts in" in messages["unselected"][0], messages
    after = phase_writes(local_cluster, ns.namespace)
    assert (after[forged_name], after["unselected"]) == (0, 0), after
    unselected = ns.wait_pod("unselected", "its primary ended", lambda p: exit_code(p, "base") == 0)
    assert unselected["status"]["phase"] == "Running"  # its sidecar runs on: not Tandem's
