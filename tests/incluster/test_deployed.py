"""Tandem deployed from deploy/ as a pod, under its own ServiceAccount, in a namespace that
enforces Pod Security "restricted": its RBAC, probes and metrics, proved on the real cluster."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster import Layout

from ..conftest import ROOT
from ..kube import Kube, exit_code
from ..manifests import EXITS_0_ON_TERM, container, job, pod_spec, primary

SA = "system:serviceaccount:tandem-system:tandem"
LABEL = {"e2e.tandem.dev/operator": "incluster"}


@pytest.fixture(scope="module")
def deployed(kube: Kube, local_cluster: Layout) -> Iterator[Kube]:
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "deploy/local/images/operator_image.py"),
            "--import",
            "--address",
            str(local_cluster.containerd_socket),
        ],
        check=True,
    )
    kube.run("apply", "-k", str(ROOT / "deploy" / "base"), namespaced=False)
    system = kube.in_namespace("tandem-system")
    # This tier's pods only: the session's host operator handles the unlabelled ones.
    args = [
        "run",
        "--log-format=json",
        "--helper-image=docker.io/tandem/busybox:local",
        "--pod-selector=e2e.tandem.dev/operator=incluster",
    ]
    patch = [{"op": "replace", "path": "/spec/template/spec/containers/0/args", "value": args}]
    system.run("patch", "deployment", "tandem", "--type=json", "-p", json.dumps(patch))
    system.run("rollout", "status", "deployment/tandem", "--timeout=120s")
    yield system
    kube.run(
        "delete", "-k", str(ROOT / "deploy" / "base"), "--wait=false", namespaced=False, check=False
    )


def _can_i(kube: Kube, *args: str) -> bool:
    done = kube.run("auth", "can-i", *args, f"--as={SA}", check=False, namespaced=False)
    return done.stdout.strip() == "yes"


def test_the_deployment_is_admitted_under_restricted_and_runs(deployed: Kube) -> None:
    namespace = deployed.get("namespace", "tandem-system")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    [pod] = deployed.pods("app.kubernetes.io/name=tandem")
    assert pod["status"]["phase"] == "Running"
    assert all(c["ready"] for c in pod["status"]["containerStatuses"])
    security = pod["spec"]["containers"][0]["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]


def test_rbac_is_least_privilege(deployed: Kube) -> None:
    allowed = [
        ("watch", "pods"),
        ("create", "pods/exec"),
        ("get", "pods/exec"),
        ("create", "events"),
        ("patch", "sidecarpolicies.tandem.dev/status"),
        ("patch", "pods/ephemeralcontainers"),
        ("list", "jobs.batch"),
    ]
    denied = [
        ("get", "secrets"),
        ("list", "secrets"),
        ("delete", "pods"),
        ("patch", "pods"),
        ("update", "pods"),
        ("create", "pods"),
        ("delete", "jobs.batch"),
        ("create", "sidecarpolicies.tandem.dev"),
        ("*", "*"),
    ]
    for verb, resource in allowed:
        assert _can_i(deployed, verb, resource, "-A"), (verb, resource)
    for verb, resource in denied:
        assert not _can_i(deployed, verb, resource, "-A"), (verb, resource)


def test_a_job_completes_with_the_operator_in_cluster(deployed: Kube, ns: Kube) -> None:
    ns.apply(
        job(
            "j",
            pod_spec([primary(), container("proxy", EXITS_0_ON_TERM)]),
            annotations={"tandem.dev/primary": "main"},
            labels=LABEL,
        )
    )
    assert ns.wait_job("j") == "Complete"
    [pod] = ns.job_pods("j")
    assert (exit_code(pod, "main"), exit_code(pod, "proxy")) == (0, 0)
    events = ns.wait_for_reasons("Pod", pod["metadata"]["name"], "SidecarStopped")
    [operator] = deployed.pods("app.kubernetes.io/name=tandem")
    ours = [e for e in events if e.get("reportingComponent") == "tandem"]
    assert {e["reportingInstance"] for e in ours} == {operator["metadata"]["name"]}


def test_every_dashboard_query_names_an_exported_metric(deployed: Kube) -> None:
    [operator] = deployed.pods("app.kubernetes.io/name=tandem")
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
    assert not list((ROOT / "deploy").rglob("sidecarpolicies*.yaml")), "a copy of the CRD"
