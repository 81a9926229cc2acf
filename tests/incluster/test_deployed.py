"""Tandem deployed from deploy/overlays/local (deploy/base with exec opted into per namespace,
and the helper) as a pod, under its own ServiceAccount, in a namespace that enforces Pod Security
"restricted": its RBAC, probes and metrics, proved on the real cluster. The default install,
without exec, is tests/incluster/test_least_privilege.py's."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
import yaml

from localcluster import Layout

from ..deployment import SA, active_replica, deploy, undeploy
from ..kube import Kube, exit_code, wait_for
from ..manifests import EXITS_0_ON_TERM, SLEEP_FOREVER, container, job, pod_spec, primary
from ..operator_process import ROOT
from .checks import LABEL, can_i, execs_by_operator

pytestmark = pytest.mark.serial("deploys Tandem in tandem-system, cluster-wide")


@pytest.fixture(scope="module")
def deployed(kube: Kube, local_cluster: Layout) -> Iterator[Kube]:
    # deploy/overlays/local as rendered, with this tier's selector: the session's host operator
    # handles the unlabelled pods.
    yield deploy(kube, local_cluster, "--pod-selector=e2e.tandem.dev/operator=incluster")
    undeploy(kube)


def test_the_deployment_is_admitted_under_restricted_and_runs(deployed: Kube) -> None:
    namespace = deployed.get("namespace", "tandem-system")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    replicas = deployed.pods("app.kubernetes.io/name=tandem")
    assert len(replicas) == 2
    for pod in replicas:
        assert pod["status"]["phase"] == "Running"
        assert all(c["ready"] for c in pod["status"]["containerStatuses"])
        security = pod["spec"]["containers"][0]["securityContext"]
        assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]


def _status_patch(
    ns: Kube, pod: str, body: dict[str, object], who: str | None = SA, dry_run: bool = False
) -> str:
    """pods/status patched (strategic merge, as Tandem does) as WHO (None: the test's admin);
    the API server's refusal, or '' if admitted. Through the client, not kubectl, whose patch
    first GETs pods/status, which Tandem may not. DRY_RUN: admitted or not, nothing is stored."""
    api = kubernetes.config.new_client_from_config(str(ns.kubeconfig))
    if who:
        api.set_default_header("Impersonate-User", who)
    try:
        kubernetes.client.CoreV1Api(api).patch_namespaced_pod_status(
            pod,
            ns.namespace,
            body,
            dry_run="All" if dry_run else None,
            _request_timeout=30,
            _content_type="application/strategic-merge-patch+json",
            _preload_content=False,
        ).release_conn()
    except kubernetes.client.ApiException as refused:
        return f"{refused.status} {refused.body}"
    finally:
        api.close()
    return ""


TANDEMS_WRITE = {
    "metadata": {"annotations": {"tandem.dev/finished": "Succeeded"}},
    "status": {
        "phase": "Succeeded",
        "conditions": [
            {"type": "tandem.dev/Finished", "status": "True", "reason": "PrimariesSucceeded"}
        ],
    },
}
"""What Tandem's own finish writes (adapters/kubeclient.py, `finish`)."""


def test_tandems_token_writes_a_pods_finish_and_nothing_else(deployed: Kube, ns: Kube) -> None:
    """deploy/base/status-writes.yaml: RBAC's patch on pods/status would also take a pod's labels,
    annotations, finalizers, addresses and conditions, end a Deployment's pod, or end a pod that
    no Job owns (Airflow's, Tekton's) where the cluster admin did not allow it."""
    # Scheduled nowhere: the kubelet never writes these pods.
    nowhere = {"nodeSelector": {"tandem.dev/node": "none"}}
    ns.create(
        job(
            "finishes",
            pod_spec([container("c", SLEEP_FOREVER)], "Never", **nowhere),
            annotations={"o": "t"},
            labels={"app": "web"},
        )
    )
    # A controller that is not a Job: any object will do (a ConfigMap), as long as it exists.
    ns.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}})
    owner = ns.get("configmap", "owner")["metadata"]
    controlled = {"apiVersion": "v1", "kind": "ConfigMap", "controller": True}
    for name, restart_policy, owners in (
        ("bare", "Never", []),
        ("foreign", "Never", [controlled | {"name": "owner", "uid": owner["uid"]}]),
        ("serves", "Always", []),
    ):
        metadata = {"name": name, "labels": {"app": "web"}, "annotations": {"o": "t"}}
        ns.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": metadata | {"ownerReferences": owners},
                "spec": pod_spec([container("c", SLEEP_FOREVER)], restart_policy, **nowhere),
            }
        )
    [jobs_pod] = ns.wait_job_pods("finishes")
    finishes, labels = jobs_pod["metadata"]["name"], jobs_pod["metadata"]["labels"]
    refused = {
        "a label": {"metadata": {"labels": {"app": "other"}}},
        "another annotation": {"metadata": {"annotations": {"o": "mine"}}},
        "a finalizer": {"metadata": {"finalizers": ["example.com/hold"]}},
        "an address": {"status": {"podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.9"}]}},
        "a phase that is not terminal": {"status": {"phase": "Running"}},
        "another condition": {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        "a nominated node": {"status": {"nominatedNodeName": "tandem-node"}},
    }
    for what, body in refused.items():
        error = _status_patch(ns, finishes, body)
        assert "tandem-status-writes" in error and "denied" in error, (what, error)
    error = _status_patch(ns, "serves", TANDEMS_WRITE)
    assert "restartPolicy is Always" in error, error
    for pod in ("bare", "foreign"):
        error = _status_patch(ns, pod, TANDEMS_WRITE)
        assert "only of pods that a Job controls" in error, (pod, error)
        assert "tandem.dev/pods-without-job=allowed" in error, error  # the way to allow it
    # The positive controls: Tandem's own write is admitted, and the guard binds Tandem alone.
    assert _status_patch(ns, finishes, TANDEMS_WRITE) == ""
    error = _status_patch(ns, finishes, {"status": {"phase": "Failed"}})
    assert "never turns one finished pod" in error, error  # nor flips a finished pod's result
    assert _status_patch(ns, "serves", refused["a label"], who=None) == ""
    finished = ns.get("pod", finishes)
    assert finished["status"]["phase"] == "Succeeded"
    assert finished["metadata"]["labels"] == labels
    assert finished["metadata"]["annotations"] == {"o": "t", "tandem.dev/finished": "Succeeded"}
    assert ns.get("pod", "serves")["status"]["phase"] == "Pending"
    # The cluster admin's opt-in for pods no Job owns (docs/pods-without-job.md): then admitted.
    ns.run(
        "label", "namespace", ns.namespace, "tandem.dev/pods-without-job=allowed", namespaced=False
    )
    wait_for(
        "Tandem's write on the bare pod admitted once its namespace is labelled",
        lambda: _status_patch(ns, "bare", TANDEMS_WRITE) == "",
        timeout=30,
    )
    assert ns.get("pod", "bare")["status"]["phase"] == "Succeeded"
    # Only that value opts in. Dry runs, so that a write admitted while the API server still
    # reads the namespace's old label stores nothing: admitted under "allowed", the same write
    # is refused once the label says "true".
    assert _status_patch(ns, "foreign", TANDEMS_WRITE, dry_run=True) == ""
    ns.run(
        "label",
        "--overwrite",
        "namespace",
        ns.namespace,
        "tandem.dev/pods-without-job=true",
        namespaced=False,
    )
    wait_for(
        "Tandem's write on the ConfigMap's pod refused again once the label says true",
        lambda: (
            "only of pods that a Job controls"
            in _status_patch(ns, "foreign", TANDEMS_WRITE, dry_run=True)
        ),
        timeout=30,
    )
    assert ns.get("pod", "foreign")["status"]["phase"] == "Pending"


def test_rbac_is_least_privilege(deployed: Kube) -> None:
    allowed = [
        ("watch", "pods"),
        ("create", "pods/exec"),
        ("get", "pods/exec"),
        ("create", "events"),
        ("patch", "sidecarpolicies.tandem.dev/status"),
        ("watch", "clusterkopfpeerings.kopf.dev"),
        ("patch", "pods/ephemeralcontainers"),
        ("patch", "pods/status"),
        ("list", "jobs.batch"),
    ]
    denied = [
        ("get", "secrets"),
        ("list", "secrets"),
        ("patch", "events"),  # others' Events: kopf only creates
        ("delete", "pods"),
        ("patch", "pods"),
        ("update", "pods"),
        ("create", "pods"),
        ("delete", "jobs.batch"),
        ("get", "nodes"),
        ("patch", "nodes"),
        ("list", "nodes"),
        ("create", "sidecarpolicies.tandem.dev"),
        ("patch", "kopfpeerings.kopf.dev"),
        ("*", "*"),
    ]
    for verb, resource in allowed:
        assert can_i(deployed, verb, resource, "-A"), (verb, resource)
    for verb, resource in denied:
        assert not can_i(deployed, verb, resource, "-A"), (verb, resource)
    # The peering: Tandem writes its own ClusterKopfPeering only.
    assert can_i(deployed, "patch", "clusterkopfpeerings.kopf.dev", name="tandem")
    assert not can_i(deployed, "patch", "clusterkopfpeerings.kopf.dev", name="another")


def test_a_job_completes_with_the_operator_in_cluster(deployed: Kube, kube: Kube, ns: Kube) -> None:
    ns.apply(
        job(
            "j",
            pod_spec([primary(), container("proxy", EXITS_0_ON_TERM)]),
            annotations={"tandem.dev/primary": "main"},
            labels=LABEL,
        )
    )
    assert ns.wait_job("j") == "Complete"
    [pod] = ns.wait_job_pods("j")
    # The Job counts the pod once its phase is written; the kubelet then stops the sidecar.
    pod = ns.wait_pod(
        pod["metadata"]["name"], "proxy ended", lambda p: exit_code(p, "proxy") is not None
    )
    assert (exit_code(pod, "main"), exit_code(pod, "proxy")) == (0, 0)
    assert pod["status"]["phase"] == "Succeeded"
    events = ns.wait_for_reasons("Pod", pod["metadata"]["name"], "PodFinished")
    ours = [e for e in events if e.get("reportingComponent") == "tandem"]
    assert {e["reportingInstance"] for e in ours} == {active_replica(kube)}


def test_every_dashboard_query_names_an_exported_metric(deployed: Kube) -> None:
    operator = deployed.pods("app.kubernetes.io/name=tandem")[0]
    scrape = (
        "import urllib.request; print(urllib.request.urlopen("
        "'http://127.0.0.1:9090/metrics', timeout=5).read().decode())"
    )
    exported = deployed.run(
        "exec", operator["metadata"]["name"], "--", "python3", "-c", scrape
    ).stdout
    names = set(re.findall(r"^# TYPE (\S+) ", exported, re.MULTILINE))
    series = {n + suffix for n in names for suffix in ("", "_total", "_bucket", "_sum", "_count")}
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "tandem.json").read_text())
    queried = {
        m
        for p in dashboard["panels"]
        for t in p["targets"]
        for m in re.findall(r"\b(tandem_[a-z_]+)", t["expr"])
    }
    assert queried, "the dashboard queries nothing"
    assert queried <= series, f"not exported: {sorted(queried - series)}"


def test_the_kustomize_base_reads_the_crd_from_crds(kube: Kube) -> None:
    rendered = kube.run("kustomize", str(ROOT / "deploy" / "base"), namespaced=False).stdout
    crd = Path(ROOT / "crds" / "sidecarpolicies.tandem.dev.yaml").read_text()
    assert "name: sidecarpolicies.tandem.dev" in rendered and "x-kubernetes-validations" in crd
    copies = [p for p in (ROOT / "deploy").rglob("sidecarpolicies*.yaml") if not p.is_symlink()]
    assert not copies, "a copy of the CRD (the Helm chart links to crds/)"


def test_the_namespaced_overlay_grants_only_its_namespaces(
    kube: Kube, deployed: Kube, ns: Kube
) -> None:
    rendered = kube.run(
        "kustomize", str(ROOT / "deploy" / "overlays" / "namespaced"), namespaced=False
    ).stdout
    objects = list(yaml.safe_load_all(rendered))
    # The ClusterKopfPeering is cluster-scoped: meeting in it is the only cluster-wide grant.
    cluster_bindings = [o for o in objects if o["kind"] == "ClusterRoleBinding"]
    assert [b["roleRef"]["name"] for b in cluster_bindings] == ["tandem-peering"]
    [binding] = [o for o in objects if o["kind"] == "RoleBinding"]
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    assert "--namespace=jobs" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    # The same binding, for a second ServiceAccount and this test's namespace.
    kube.run(
        "create",
        "serviceaccount",
        "tandem-namespaced",
        "-n",
        "tandem-system",
        namespaced=False,
        check=False,
    )
    binding["metadata"]["namespace"] = ns.namespace
    binding["subjects"][0]["name"] = "tandem-namespaced"
    ns.apply(binding)
    who = "system:serviceaccount:tandem-system:tandem-namespaced"
    for verb, resource in (("watch", "pods"), ("patch", "pods/status"), ("create", "events")):
        assert can_i(ns, verb, resource, "-n", ns.namespace, who=who), (verb, resource)
        assert not can_i(ns, verb, resource, "-n", "default", who=who), (verb, resource)
    kube.run(
        "delete",
        "serviceaccount",
        "tandem-namespaced",
        "-n",
        "tandem-system",
        namespaced=False,
        check=False,
    )


def test_two_replicas_fail_over_and_each_sidecar_is_stopped_once(
    deployed: Kube, kube: Kube, local_cluster: Layout, ns: Kube
) -> None:
    replicas = deployed.pods("app.kubernetes.io/name=tandem")
    assert len(replicas) == 2
    active = wait_for(
        "an active replica",
        lambda: (
            active_replica(kube)
            if len(kube.get("clusterkopfpeering", "tandem").get("status") or {}) == 2
            else None
        ),
        timeout=60,
    )
    assert active in {r["metadata"]["name"] for r in replicas}
    spec = pod_spec([primary(after=12), container("proxy", EXITS_0_ON_TERM)])
    ns.apply(
        *(
            job(
                f"j{i}",
                spec,
                # The exit-code path: one exec per sidecar is what a fail-over must not repeat.
                annotations={"tandem.dev/primary": "main", "tandem.dev/finish": "ExitCodes"},
                labels=LABEL,
            )
            for i in range(20)
        )
    )
    wait_for(
        "all pods running",
        lambda: (
            len(
                [
                    p
                    for p in ns.pods("e2e.tandem.dev/operator")
                    if p["status"].get("phase") == "Running"
                ]
            )
            == 20
        ),
        timeout=90,
    )
    # Kill the active replica without a goodbye while the primaries finish.
    deployed.run("delete", "pod", active, "--grace-period=0", "--force")
    for i in range(20):
        assert ns.wait_job(f"j{i}", timeout=180) == "Complete"
    for pod in ns.pods("e2e.tandem.dev/operator"):
        assert (exit_code(pod, "main"), exit_code(pod, "proxy")) == (0, 0)
    assert execs_by_operator(local_cluster, ns.namespace) == 20
    assert active_replica(kube) != active
