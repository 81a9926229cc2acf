"""The one write that finishes a pod, as the real client sends it to a server on the loopback
interface (no cluster): a PATCH of pods/status carrying the phase, Tandem's condition and the
annotation that makes the kubelet act at once, with the uid and resourceVersion as preconditions."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

from kubernetes import client

from tandem.adapters import StatusWriter
from tandem.core import Finish, Phase

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def _capture() -> tuple[int, list[bytes]]:
    """A server that answers one request with 200 and keeps what it received."""
    server = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def serve() -> None:
        with server:
            connection, _ = server.accept()
            with connection:
                connection.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += connection.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(body) < length:
                    body += connection.recv(65536)
                seen.extend([head, body])
                connection.sendall(OK)

    threading.Thread(target=serve, daemon=True).start()
    return int(server.getsockname()[1]), seen


def test_one_patch_carries_the_phase_the_condition_and_the_annotation() -> None:
    port, seen = _capture()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    finish = Finish(Phase.FAILED, "key", "uid-9", "417", "primaries ended: outcome failure")
    result = StatusWriter(configuration, 1).finish("ns", "pod-1", finish, 5.0)
    assert result.ok, result
    head, body = seen
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
