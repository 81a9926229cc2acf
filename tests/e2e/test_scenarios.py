"""Scenarios beyond the outcome matrix: several primaries, abnormal ends, pods Tandem must not
touch, bad annotations, CronJobs, and an operator that was down while pods finished."""

from __future__ import annotations

import time
from typing import Any

import pytest

from localcluster import Layout

from ..kube import Kube, container_state, exit_code
from ..manifests import (
    EXITS_0_ON_TERM,
    HAPROXY,
    SLEEP_FOREVER,
    container,
    job,
    pod_spec,
    primary,
)
from ..operator_process import Operator, start_operator, stop_operator

PRIMARY = {"tandem.dev/primary": "main"}


def _only_pod(ns: Kube, job_name: str) -> dict[str, Any]:
    [pod] = ns.wait_job_pods(job_name)
    return pod


def _sidecar_ended(ns: Kube, job_name: str) -> dict[str, Any]:
    """The Job's pod once its sidecar has ended: the Job counts a pod as soon as Tandem writes
    its phase, and the kubelet stops the sidecar right after."""
    name = _only_pod(ns, job_name)["metadata"]["name"]
    return ns.wait_pod(name, "proxy ended", lambda p: exit_code(p, "proxy") is not None)


def _tandem_events(ns: Kube, pod: str) -> list[dict[str, Any]]:
    return [e for e in ns.events("Pod", pod) if e.get("reportingComponent") == "tandem"]


def test_sidecar_waits_for_every_primary(operator: Operator, ns: Kube) -> None:
    spec = pod_spec(
        [primary("a", 0, after=1), primary("b", 0, after=11), container("proxy", EXITS_0_ON_TERM)]
    )
    ns.apply(job("two", spec, annotations={"tandem.dev/primary": "a,b"}))
    assert ns.wait_job("two") == "Complete"
    pod = _sidecar_ended(ns, "two")
    finished = {
        n: container_state(pod, n)["state"]["terminated"]["finishedAt"] for n in ("a", "b", "proxy")
    }
    assert finished["a"] < finished["b"] <= finished["proxy"]
    assert [exit_code(pod, n) for n in ("a", "b", "proxy")] == [0, 0, 0]
    assert pod["status"]["phase"] == "Succeeded"
    messages = [
        e["message"]
        for e in ns.events("Pod", pod["metadata"]["name"])
        if e["reason"] == "PodFinished"
    ]
    assert len(messages) == 1 and "a exited 0" in messages[0] and "b exited 0" in messages[0]


def test_oom_killed_primary_is_a_failure(operator: Operator, ns: Kube) -> None:
    hog = container(
        "main",
        ["sh", "-c", "sleep 1; head -c 200000000 /dev/zero | tail > /dev/null"],
        resources={"limits": {"memory": "24Mi"}, "requests": {"memory": "24Mi"}},
    )
    ns.apply(job("oom", pod_spec([hog, container("proxy", EXITS_0_ON_TERM)]), annotations=PRIMARY))
    assert ns.wait_job("oom") == "Failed"
    pod = _sidecar_ended(ns, "oom")
    assert pod["status"]["phase"] == "Failed"
    main = container_state(pod, "main")["state"]["terminated"]
    assert main["reason"] == "OOMKilled" and main["exitCode"] == 137
    assert exit_code(pod, "proxy") == 0
    [finished] = [
        e["message"]
        for e in ns.events("Pod", pod["metadata"]["name"])
        if e["reason"] == "PodFinished"
    ]
    assert "outcome failure" in finished and "OOMKilled" in finished


def _writers(pod: dict[str, Any]) -> set[str]:
    return {f["manager"] for f in pod["metadata"].get("managedFields") or ()}


def test_pods_without_opt_in_and_native_sidecars_are_never_touched(
    operator: Operator, ns: Kube
) -> None:
    native = container("mesh", SLEEP_FOREVER, restartPolicy="Always")
    ns.apply(
        job("plain", pod_spec([primary(), container("proxy", SLEEP_FOREVER)])),
        job("native", pod_spec([primary()], initContainers=[native]), annotations=PRIMARY),
        # The positive control: the plain Job's twin, opted in, is finished by Tandem, so the
        # operator was up and acting in this namespace while it left the other two alone.
        job("opted", pod_spec([primary(), container("proxy", SLEEP_FOREVER)]), annotations=PRIMARY),
    )
    assert ns.wait_job("opted") == "Complete"
    assert "PodFinished" in ns.reasons("Pod", _only_pod(ns, "opted")["metadata"]["name"])
    assert ns.wait_job("native") == "Complete"
    native_pod = _only_pod(ns, "native")
    assert exit_code(native_pod, "main") == 0
    plain = ns.wait_pod(
        _only_pod(ns, "plain")["metadata"]["name"],
        "primary ended",
        lambda p: exit_code(p, "main") == 0,
    )
    time.sleep(5)  # Give the operator every chance to (wrongly) act.
    plain = ns.get("pod", plain["metadata"]["name"])
    assert "running" in container_state(plain, "proxy")["state"]
    for pod in (plain, ns.get("pod", native_pod["metadata"]["name"])):
        meta = pod["metadata"]
        assert _writers(pod) <= {"kube-controller-manager", "kubelet", "kube-scheduler"}
        # The Job controller's own job-tracking finalizer is the only one.
        assert meta.get("finalizers", []) in ([], ["batch.kubernetes.io/job-tracking"])
        assert not [k for k in meta.get("annotations") or {} if "kopf" in k]
        assert pod["status"].get("tandem") is None
    assert _tandem_events(ns, plain["metadata"]["name"]) == []
    # The native sidecar was stopped by the kubelet, not Tandem: the pod ended by itself, so
    # Tandem neither wrote its phase nor posted anything.
    assert [e["reason"] for e in _tandem_events(ns, native_pod["metadata"]["name"])] == []


def test_an_annotation_naming_a_missing_container_is_reported(operator: Operator, ns: Kube) -> None:
    ns.apply(
        job(
            "typo",
            pod_spec([primary(), container("proxy", EXITS_0_ON_TERM)]),
            annotations={"tandem.dev/primary": "mian"},
        ),
        # The positive control: the same Job spelled right is finished by Tandem, so the
        # operator was up and acting in this namespace while it left the typo's pod alone.
        job(
            "opted", pod_spec([primary(), container("proxy", EXITS_0_ON_TERM)]), annotations=PRIMARY
        ),
    )
    name = _only_pod(ns, "typo")["metadata"]["name"]
    events = ns.wait_for_reasons("Pod", name, "UnknownContainer")
    [warning] = [e for e in events if e["reason"] == "UnknownContainer"]
    assert warning["type"] == "Warning"
    assert "mian" in warning["message"] and "main, proxy" in warning["message"]
    pod = ns.wait_pod(name, "primary ended", lambda p: exit_code(p, "main") == 0)
    time.sleep(3)
    assert ns.wait_job("opted") == "Complete"
    assert _tandem_events(ns, _only_pod(ns, "opted")["metadata"]["name"]) != []
    assert "running" in container_state(ns.get("pod", name), "proxy")["state"]
    assert [e["reason"] for e in _tandem_events(ns, name)] == ["UnknownContainer"]
    assert pod["status"]["phase"] == "Running"


def test_cronjob_with_haproxy_sidecar_completes_run_after_run(operator: Operator, ns: Kube) -> None:
    template = pod_spec([primary("report", 0), container("haproxy", image=HAPROXY)])
    ns.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "nightly"},
            "spec": {
                "schedule": "0 0 1 1 *",
                "suspend": True,
                "jobTemplate": {
                    "spec": {
                        "backoffLimit": 0,
                        "template": {
                            "metadata": {"annotations": {"tandem.dev/primary": "report"}},
                            "spec": template,
                        },
                    }
                },
            },
        }
    )
    for run in range(3):
        ns.run("create", "job", f"nightly-{run}", "--from=cronjob/nightly")
    for run in range(3):
        assert ns.wait_job(f"nightly-{run}") == "Complete"
        name = _only_pod(ns, f"nightly-{run}")["metadata"]["name"]
        # The Job counts the pod by its phase; the kubelet reports haproxy's end a moment later.
        pod = ns.wait_pod(name, "haproxy ended", lambda p: exit_code(p, "haproxy") is not None)
        assert pod["status"]["phase"] == "Succeeded"
        assert (exit_code(pod, "report"), exit_code(pod, "haproxy")) == (0, 0)  # USR1 first
        assert "PodFinished" in ns.reasons("Pod", name)


@pytest.mark.host_operator("starts and stops a private operator on the host")
def test_pods_that_finished_while_the_operator_was_down_are_handled_at_start(
    local_cluster: Layout, operator_rbac: None, ns: Kube, tmp_path: Any
) -> None:
    # The session operator ignores this label; a private operator handles only it.
    labels = {"e2e.tandem.dev/operator": "operator-down"}
    ns.apply(
        job(
            "early",
            pod_spec([primary(), container("proxy", EXITS_0_ON_TERM)]),
            annotations=PRIMARY,
            labels=labels,
        )
    )
    name = _only_pod(ns, "early")["metadata"]["name"]
    ns.wait_pod(name, "primary ended", lambda p: exit_code(p, "main") == 0)
    assert ns.get("job", "early")["status"].get("active") == 1
    private = start_operator(
        local_cluster,
        tmp_path / "private.log",
        "--pod-selector=e2e.tandem.dev/operator=operator-down",
    )
    try:
        assert ns.wait_job("early") == "Complete"
        assert exit_code(_sidecar_ended(ns, "early"), "proxy") == 0
    finally:
        stop_operator(private)
