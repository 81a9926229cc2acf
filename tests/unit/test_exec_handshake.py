"""An exec whose handshake is never answered ends at its deadline: a local endpoint (loopback)
accepts the connection and never answers, as a wedged kubelet or a half-open connection does.
The control, the client's own websocket, is still blocked when the fixed one has returned."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import websocket
from kubernetes import client
from kubernetes.stream import ws_client

from tandem.adapters.kubeclient import Executor

TIMEOUT = 1.0


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """https://127.0.0.1:PORT: accepts connections, reads nothing, answers nothing."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"https://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for conn in accepted:
        conn.close()


def _executor(host: str) -> Executor:
    configuration = client.Configuration(host=host)
    configuration.verify_ssl = False
    return Executor(configuration)


def test_an_unanswered_handshake_ends_at_the_deadline(silent_endpoint: str) -> None:
    started = time.monotonic()
    result = _executor(silent_endpoint).run("ns", "pod", "proxy", ("kill", "1"), TIMEOUT)
    took = time.monotonic() - started
    assert TIMEOUT <= took < TIMEOUT + 2, took
    assert result.exit_code is None and not result.refused  # it may have reached the pod
    assert f"no answer to the exec's handshake in {TIMEOUT:g}s" in (result.error or ""), result


def test_the_clients_own_websocket_would_block(
    silent_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The positive control: without Tandem's timed websocket the same call is still waiting
    well past its deadline (freed when the endpoint closes)."""
    monkeypatch.setattr(ws_client, "WebSocket", websocket.WebSocket)
    call = threading.Thread(
        target=_executor(silent_endpoint).run,
        args=("ns", "pod", "proxy", ("kill", "1"), TIMEOUT),
        daemon=True,
    )
    call.start()
    call.join(TIMEOUT + 2)
    assert call.is_alive()
