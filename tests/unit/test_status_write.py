"""The one write that finishes a pod, as the real client sends it to a server on the loopback
interface (no cluster): a PATCH of pods/status carrying the phase, Tandem's condition and the
annotation that makes the kubelet act at once, with the uid and resourceVersion as preconditions."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from tandem.adapters import StatusWriter
from tandem.core import Finish, Phase

from .loopback import answer, serve


def test_one_patch_carries_the_phase_the_condition_and_the_annotation() -> None:
    port, seen = serve([answer("200 OK", b"{}")])
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    finish = Finish(Phase.FAILED, "key", "uid-9", "417", "primaries ended: outcome failure")
    result = StatusWriter(configuration, 1).finish("ns", "pod-1", finish, 5.0)
    assert result.ok, result
    [(head, body)] = seen
    request_line = head.split(b"\r\n")[0].decode()
    assert request_line == "PATCH /api/v1/namespaces/ns/pods/pod-1/status HTTP/1.1"
    assert b"application/strategic-merge-patch+json" in head
    sent: dict[str, Any] = json.loads(body)
    assert sent["metadata"] == {
        "uid": "uid-9",
        "resourceVersion": "417",
        "annotations": {"tandem.dev/finished": "Failed"},
    }
    assert sent["status"]["phase"] == "Failed"
    [condition] = sent["status"]["conditions"]
    assert condition["type"] == "tandem.dev/Finished" and condition["status"] == "True"
    assert condition["reason"] == "PrimariesFailed"
