"""`explain` as a pure function: managed or not, roles, and what Tandem waits for."""

from __future__ import annotations

import json
import unicodedata

from tandem.cli.explain import render
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


HOSTILE = (
    "ok\x1b]0;pwned\x07\x1b[2J\x1b[1;31mred\r\nNow: finished\x9b31m\x00\x7f\u202etxt.exe\u2028"
)


def _printed_controls(text: str) -> list[str]:
    """Every character of TEXT a terminal would act on, but the newlines between lines."""
    return [
        ch
        for line in text.split("\n")
        for ch in line
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")
    ]


def test_explain_prints_no_control_character_from_the_api() -> None:
    """Anyone who may create Events in the namespace can post one with reportingComponent
    tandem, and a pod's author chooses its names and states' reasons: what `tandem explain`
    prints from the API carries no terminal escape, no carriage return or newline, no C1
    control and no bidirectional override, only their escaped spelling."""
    body = pod(
        ["main", "proxy"],
        [status("main", terminated(0, "m")), status("proxy", running("p"))],
        annotations=PRIMARY,
    )
    body["metadata"]["name"] = HOSTILE
    body["status"]["phase"] = HOSTILE
    forged = {
        "reportingComponent": "tandem",
        "type": HOSTILE,
        "reason": HOSTILE,
        "message": HOSTILE,
        "lastTimestamp": HOSTILE,
    }
    found = explain(parse_pod(body), [], [forged])
    text = render(found)
    assert _printed_controls(text) == [], [hex(ord(c)) for c in _printed_controls(text)]
    assert "\\x1b]0;pwned\\x07" in text and "\\u202e" in text and "\\x9b" in text
    assert len(text.splitlines()) == 2 + 3 + 2 + 1  # pod, managed; containers; events; now
    assert _printed_controls(json.dumps(found.as_dict())) == []  # JSON escapes them itself
