"""Sidecars that do not go quietly: no shell, a PID 1 that ignores signals, HTTP endpoints."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ..kube import Kube, container_state, exit_code
from ..manifests import (
    HAPROXY,
    HTTPSTOP,
    SHELLLESS,
    SLEEP_FOREVER,
    container,
    job,
    pod_spec,
    primary,
    sidecar_policy,
)
from ..operator_process import Operator


def _policy(name: str, sidecar: dict[str, Any], grace: int = 10) -> dict[str, Any]:
    # The exit-code path: these tests are about the ladder, the helper and the paths' codes.
    return sidecar_policy(
        name,
        gracePeriodSeconds=grace,
        finish="ExitCodes",
        sidecars=[{"name": "proxy", **sidecar}],
    )


def _messages(ns: Kube, pod: str, reason: str) -> list[str]:
    return [e["message"] for e in ns.events("Pod", pod) if e["reason"] == reason]


def _pod_name(ns: Kube, job_name: str) -> str:
    [pod] = ns.wait_job_pods(job_name)
    return str(pod["metadata"]["name"])


# A distroless stand-in: no shell, no kill; exits 0 on USR1 and 143 on TERM, like a proxy with a
# clean-stop signal. Its image names no user (it would run as root), so the pod names one, and
# Tandem's helper takes the same: a helper may signal only its own user's processes. 1000, not
# the helper's default 65532, so the tests show that the helper took the sidecar's user.
SIDECAR_USER = 1000
SLEEPER_ARGS = ["/sleeper", "--exit-on", "USR1", "0", "--exit-on", "TERM", "143"]
SHELL_LESS = container(
    "proxy",
    SLEEPER_ARGS,
    image=SHELLLESS,
    securityContext={"runAsUser": SIDECAR_USER, "runAsGroup": SIDECAR_USER},
)
USR1_ON_SUCCESS = {"onSuccess": {"signal": "USR1"}, "onFailure": {"signal": "TERM"}}


def test_shell_less_sidecar_on_success_is_stopped_through_the_helper(
    operator: Operator, ns: Kube
) -> None:
    ns.apply(
        _policy("bare", USR1_ON_SUCCESS),
        job("j", pod_spec([primary(exit_code=0), SHELL_LESS]), labels={"app": "bare"}),
    )
    assert ns.wait_job("j") == "Complete"
    pod = ns.get("pod", _pod_name(ns, "j"))
    assert pod["status"]["phase"] == "Succeeded"
    assert (exit_code(pod, "main"), exit_code(pod, "proxy")) == (0, 0)
    [helper] = pod["spec"]["ephemeralContainers"]
    assert (helper["name"], helper["targetContainerName"]) == ("tandem-helper", "proxy")
    context = helper["securityContext"]
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert (context["runAsUser"], context["runAsGroup"], context["runAsNonRoot"]) == (
        SIDECAR_USER,
        SIDECAR_USER,
        True,
    )
    name = pod["metadata"]["name"]
    ns.wait_for_reasons("Pod", name, "HelperAdded", "SidecarStopSent", "SidecarStopped")
    [sent] = _messages(ns, name, "SidecarStopSent")
    assert "signal USR1 to proxy via helper" in sent


def test_shell_less_sidecar_on_failure_restarts_with_the_primary(
    operator: Operator, ns: Kube
) -> None:
    ns.apply(
        _policy("bare", USR1_ON_SUCCESS),
        job(
            "j",
            pod_spec([primary(exit_code=3), SHELL_LESS], "OnFailure"),
            labels={"app": "bare"},
            backoff_limit=4,
        ),
    )
    name = _pod_name(ns, "j")
    pod = ns.wait_pod(
        name, "sidecar restarted", lambda p: container_state(p, "proxy").get("restartCount", 0) >= 1
    )
    assert container_state(pod, "proxy")["lastState"]["terminated"]["exitCode"] == 143
    ns.wait_for_reasons("Pod", name, "HelperAdded", "SidecarStopped")
    assert "via helper" in _messages(ns, name, "SidecarStopSent")[0]


def test_a_helper_that_may_not_signal_the_sidecar_says_why(operator: Operator, ns: Kube) -> None:
    # The same sidecar as root (its image's user, no runAsUser): the helper runs as 65532, never
    # root by default, and the kernel refuses its signal to another user's process.
    as_root = container("proxy", SLEEPER_ARGS, image=SHELLLESS)
    ns.apply(
        _policy("bare", USR1_ON_SUCCESS),
        job("j", pod_spec([primary(exit_code=0), as_root]), labels={"app": "bare"}),
    )
    name = _pod_name(ns, "j")
    ns.wait_for_reasons("Pod", name, "HelperAdded", "SidecarStopFailed")
    failed = _messages(ns, name, "SidecarStopFailed")[0]  # the sweeper may try again later
    assert "signal USR1 to proxy via helper" in failed
    assert "helper runs as user 65532" in failed and "Fix: set runAsUser" in failed
    [helper] = ns.get("pod", name)["spec"]["ephemeralContainers"]
    assert helper["securityContext"]["runAsNonRoot"] is True
    assert "running" in container_state(ns.get("pod", name), "proxy")["state"]
    assert "SidecarStopSent" not in ns.reasons("Pod", name)


def test_sleep_with_shared_pid_namespace_is_killed_and_restarts_in_tandem(
    operator: Operator, ns: Kube
) -> None:
    # The primary fails on its first run and succeeds on its second (a flag on an emptyDir).
    flaky = container(
        "main",
        ["sh", "-c", "sleep 1; if [ -f /work/ran ]; then exit 0; fi; touch /work/ran; exit 3"],
        volumeMounts=[{"name": "work", "mountPath": "/work"}],
    )
    spec = pod_spec(
        [flaky, container("proxy", SLEEP_FOREVER)],
        "OnFailure",
        shareProcessNamespace=True,
        volumes=[{"name": "work", "emptyDir": {}}],
    )
    ns.apply(
        _policy("pid", {"onFailure": {"signal": "KILL"}, "onSuccess": {"signal": "TERM"}}, grace=5),
        job("j", spec, labels={"app": "pid"}, backoff_limit=4),
    )
    name = _pod_name(ns, "j")
    pod = ns.wait_pod(
        name,
        "sidecar restarted",
        lambda p: container_state(p, "proxy").get("restartCount", 0) >= 1,
        timeout=90,
    )
    # `sleep` is not PID 1 here (pause is), so KILL reaches it: 137, and the kubelet restarts it
    # in tandem with the failed primary. The second run may already have followed, so the exit
    # codes of the first are read from Tandem's verification, which quotes the container status.
    assert pod["status"]["containerStatuses"]
    ns.wait_for_reasons("Pod", name, "SidecarStopped", timeout=60)
    stopped = _messages(ns, name, "SidecarStopped")
    assert any("proxy exited 137 after signal KILL (shared-pid)" in m for m in stopped), stopped
    assert any("main exited 3" in m for m in _messages(ns, name, "PrimariesFinished"))
    sent = _messages(ns, name, "SidecarStopSent")
    assert any("signal KILL to proxy via shared-pid" in m for m in sent), sent
    # The second run succeeds. `sleep` cannot exit 0 on any signal (a process killed by signal N
    # exits 128+N): TERM gives 143, so under OnFailure it restarts, and Tandem says what to do.
    ns.wait_for_reasons("Pod", name, "SidecarExitMismatch", timeout=90)
    mismatch = _messages(ns, name, "SidecarExitMismatch")[-1]
    assert "exited 143" in mismatch and "expected exit 0" in mismatch


@pytest.mark.host_operator("counts the execs in the operator's log")
def test_sleep_as_pid_1_is_reported_unstoppable_without_a_loop(
    operator: Operator, ns: Kube
) -> None:
    ns.apply(
        job(
            "j",
            pod_spec([primary(exit_code=3), container("proxy", SLEEP_FOREVER)]),
            annotations={
                "tandem.dev/primary": "main",
                "tandem.dev/grace-period-seconds": "4",
                "tandem.dev/finish": "ExitCodes",
            },
        )
    )
    name = _pod_name(ns, "j")
    events = ns.wait_for_reasons("Pod", name, "SidecarUnstoppable", timeout=60)
    [warning] = [e for e in events if e["reason"] == "SidecarUnstoppable"]
    assert warning["type"] == "Warning"
    for fix in ("shareProcessNamespace", "handle SIGTERM", "native sidecar", "httpPost"):
        assert fix in warning["message"]
    assert "KILL cannot reach a PID 1" in warning["message"]
    time.sleep(12)  # three more grace periods: no further action may follow
    assert len(_messages(ns, name, "SidecarStopSent")) == 1
    assert len(_messages(ns, name, "SidecarUnstoppable")) == 1
    execs = [
        line
        for line in operator.log_text().splitlines()
        if f"{ns.namespace}/{name}[" in line and "exec into" in line
    ]
    assert len(execs) == 1
    assert "running" in container_state(ns.get("pod", name), "proxy")["state"]


def test_http_endpoint_sidecar_is_stopped_through_a_preset(operator: Operator, ns: Kube) -> None:
    # httpstop listens on 127.0.0.1:9091 only, and exits 0 on POST /quitquitquit (143 on TERM),
    # like cloud-sql-proxy v2 with --quitquitquit.
    sidecar = container("proxy", image=HTTPSTOP, args=["--port", "9091"])
    ns.apply(
        _policy("sql", {"onSuccess": {"preset": "cloud-sql-proxy"}}),
        job("j", pod_spec([primary(exit_code=0), sidecar]), labels={"app": "sql"}),
    )
    assert ns.wait_job("j") == "Complete"
    pod = ns.get("pod", _pod_name(ns, "j"))
    assert (exit_code(pod, "main"), exit_code(pod, "proxy")) == (0, 0)
    [sent] = _messages(ns, pod["metadata"]["name"], "SidecarStopSent")
    assert "HTTP POST 127.0.0.1:9091/quitquitquit (cloud-sql-proxy preset)" in sent


def test_haproxy_stops_cleanly_on_usr1(operator: Operator, ns: Kube) -> None:
    ns.apply(
        _policy("lb", {"onSuccess": {"signal": "USR1"}}),
        job(
            "j",
            pod_spec([primary(exit_code=0), container("proxy", image=HAPROXY)]),
            labels={"app": "lb"},
        ),
    )
    assert ns.wait_job("j") == "Complete"
    pod = ns.get("pod", _pod_name(ns, "j"))
    assert exit_code(pod, "proxy") == 0 and pod["status"]["phase"] == "Succeeded"
