"""`explain` as a pure function: managed or not, roles, and what Tandem waits for."""

from __future__ import annotations

from tandem.core import parse_pod
from tandem.core.explain import explain

from .pods import PRIMARY, pod, running, status, terminated

UNSTOPPABLE = {
    "reportingComponent": "tandem",
    "type": "Warning",
    "reason": "SidecarUnstoppable",
    "message": "Tandem cannot stop proxy: ...",
    "lastTimestamp": "2026-01-01T00:00:05Z",
}


def test_waiting_for_primaries_then_stopping_then_blocked() -> None:
    body = pod(
        ["main", "proxy"],
        [status("main", running("m")), status("proxy", running("p"))],
        annotations=PRIMARY,
    )
    found = explain(parse_pod(body), [], [])
    assert found.managed and found.why_managed == "annotation"
    assert [(c.name, c.role) for c in found.containers] == [
        ("main", "primary"),
        ("proxy", "sidecar"),
    ]
    assert found.status == "waiting for the primaries to end: main still running"
    body = pod(
        ["main", "proxy"],
        [status("main", terminated(0, "m")), status("proxy", running("p"))],
        annotations=PRIMARY,
    )
    assert found.status != explain(parse_pod(body), [], []).status
    assert "stopping proxy" in explain(parse_pod(body), [], []).status
    blocked = explain(parse_pod(body), [], [UNSTOPPABLE, {"reportingComponent": "kubelet"}])
    assert blocked.status.startswith("Tandem cannot finish this pod: Tandem cannot stop proxy")
    assert [e.reason for e in blocked.events] == ["SidecarUnstoppable"]


def test_unmanaged_and_policy_managed() -> None:
    body = pod(["main"], [status("main", running("m"))], labels={"app": "x"})
    assert not explain(parse_pod(body), [], []).managed
    policy = {
        "metadata": {"name": "p"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "primaryContainers": ["main"]},
    }
    found = explain(parse_pod(body), [policy], [])
    assert found.managed and found.why_managed == "SidecarPolicy p"
