"""The local cluster is real: a real kubelet runs real containers, with Kubernetes' own rules."""

from __future__ import annotations

import time
from typing import Any

from ..kube import Kube, all_running, container_state, exit_code, job_condition, wait_for
from ..manifests import (
    EXITS_0_ON_TERM,
    SLEEP_FOREVER,
    container,
    job,
    pod_spec,
    primary,
)


def _running_pod(ns: Kube, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    ns.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
    return ns.wait_pod(name, "all containers running", all_running)


def test_a_job_runs_a_real_container_to_complete(ns: Kube) -> None:
    ns.apply(job("one", pod_spec([primary(exit_code=0)])))
    assert ns.wait_job("one") == "Complete"
    [pod] = ns.job_pods("one")
    assert pod["status"]["phase"] == "Succeeded"
    assert exit_code(pod, "main") == 0
    assert container_state(pod, "main")["containerID"].startswith("containerd://")


def test_the_bug_a_sidecar_keeps_the_job_running(ns: Kube) -> None:
    ns.apply(job("stuck", pod_spec([primary(exit_code=0), container("proxy", SLEEP_FOREVER)])))
    pod = wait_for(
        "primary terminated",
        lambda: next((p for p in ns.job_pods("stuck") if exit_code(p, "main") is not None), None),
    )
    time.sleep(5)
    [pod] = ns.job_pods("stuck")
    assert exit_code(pod, "main") == 0
    assert "running" in container_state(pod, "proxy")["state"]
    assert pod["status"]["phase"] == "Running"
    assert job_condition(ns.get("job", "stuck")) is None
    assert ns.get("job", "stuck")["status"].get("active") == 1


def test_pid_1_without_a_handler_ignores_kill_from_inside(ns: Kube) -> None:
    _running_pod(ns, "sleeper", pod_spec([container("c", SLEEP_FOREVER)]))
    for signal in ("KILL", "TERM"):
        assert ns.exec("sleeper", "c", "kill", "-s", signal, "1").returncode == 0
    time.sleep(3)
    status = container_state(ns.get("pod", "sleeper"), "c")
    assert "running" in status["state"] and status["restartCount"] == 0


def test_pid_1_with_a_handler_exits_with_its_own_code(ns: Kube) -> None:
    handler = ["sh", "-c", "trap 'exit 7' TERM; while true; do sleep 1; done"]
    _running_pod(ns, "handler", pod_spec([container("c", handler)]))
    assert ns.exec("handler", "c", "kill", "-s", "TERM", "1").returncode == 0
    pod = ns.wait_pod("handler", "Failed", lambda p: p["status"]["phase"] == "Failed", 30)
    assert exit_code(pod, "c") == 7


def test_shared_pid_namespace_lets_a_neighbour_kill_the_sidecar(ns: Kube) -> None:
    spec = pod_spec(
        [container("main", EXITS_0_ON_TERM), container("proxy", SLEEP_FOREVER)],
        shareProcessNamespace=True,
    )
    _running_pod(ns, "shared", spec)
    # busybox has no pkill: find the sidecar's `sleep 100000` by its command line (not this
    # shell's own, which contains the number too).
    kill_by_cmdline = (
        'for p in /proc/[0-9]*; do [ "${p#/proc/}" != "$$" ] && '
        "grep -q 100000 $p/cmdline 2>/dev/null && kill -s KILL ${p#/proc/}; "
        "done; true"
    )
    assert ns.exec("shared", "main", "sh", "-c", kill_by_cmdline).returncode == 0
    pod = ns.wait_pod("shared", "proxy killed", lambda p: exit_code(p, "proxy") is not None, 30)
    assert exit_code(pod, "proxy") == 137


def test_a_pod_on_the_kwok_node_runs(ns: Kube) -> None:
    spec = {
        "containers": [container("c", SLEEP_FOREVER)],
        "nodeSelector": {"type": "kwok"},
        "tolerations": [
            {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
        ],
    }
    ns.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fake"}, "spec": spec})
    pod = ns.wait_pod("fake", "running", lambda p: p["status"].get("phase") == "Running")
    assert pod["spec"]["nodeName"] == "kwok-node-0"
