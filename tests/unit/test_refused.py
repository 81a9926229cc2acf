"""Which failed calls surely never reached the pod (`ExecResult.refused`, the only ones the stopper
tries again): from the exception chains and statuses that the real clients produce, against
servers on the loopback interface (no cluster)."""

from __future__ import annotations

import json
import socket

from kubernetes import client

from tandem.adapters import ExecResult, Executor, StatusWriter
from tandem.adapters.results import status_message, surely_refused
from tandem.core import Finish, Phase
from tandem.core.finish.hints import call_fix

from .loopback import answer, serve

FINISH = Finish(Phase.SUCCEEDED, "key", "uid", "1", "done")


def _wrapped(cause: OSError) -> Exception:
    """CAUSE as the clients hand it on: the websocket client raises its own error inside
    `except` (a context), urllib3 with `from` (a cause)."""
    inner = RuntimeError("the websocket client's")
    inner.__context__ = cause
    outer = ValueError("urllib3's")
    outer.__cause__ = inner
    return outer


def test_statuses_refuse_but_a_gateway_timeout_may_have_gone_through() -> None:
    error = RuntimeError("x")
    assert all(surely_refused(code, error) for code in (403, 404, 429, 500, 502, 503))
    assert not surely_refused(504, error)


def test_only_a_connection_never_made_counts_without_a_status() -> None:
    assert surely_refused(0, _wrapped(ConnectionRefusedError(111, "refused")))
    assert surely_refused(0, _wrapped(socket.gaierror(-2, "Name or service not known")))
    assert not surely_refused(0, _wrapped(TimeoutError("timed out")))
    assert not surely_refused(0, _wrapped(ConnectionResetError(104, "reset by peer")))
    assert not surely_refused(0, RuntimeError("no cause"))


def _configuration(port: int) -> client.Configuration:
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    return configuration


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(port: int) -> ExecResult:
    return Executor(_configuration(port)).run("ns", "pod", "proxy", ("true",), 1.0)


def test_the_real_clients_mark_a_refused_connection() -> None:
    port = _closed_port()
    assert _run(port).refused
    assert StatusWriter(_configuration(port), 2).finish("ns", "pod", FINISH, 1.0).refused


def test_the_exec_handshake_status_decides() -> None:
    port, _ = serve([answer("429 Too Many Requests"), answer("504 Gateway Timeout")])
    first, second = _run(port), _run(port)
    assert (first.status, first.refused) == (429, True)
    assert (second.status, second.refused) == (504, False)


def test_a_patch_with_no_answer_in_time_may_have_been_applied() -> None:
    port, _ = serve([b""])
    result = StatusWriter(_configuration(port), 2).finish("ns", "pod", FINISH, 0.3)
    assert result.exit_code is None and "timed out" in result.error and not result.refused


def test_a_refused_patch_says_what_refused_it_and_the_fix_fits() -> None:
    """The Status message, not only 'Forbidden': an admission policy's denial must not read as
    missing RBAC, whose fix (grant patch on pods/status) would change nothing."""
    message = (
        "pods \"p\" is forbidden: ValidatingAdmissionPolicy 'tandem-status-writes' with binding "
        "'tandem-status-writes' denied request: Tandem changes no label and no finalizer"
    )
    denied, no_rbac = (
        answer("403 Forbidden", json.dumps({"kind": "Status", "code": 403, "message": m}).encode())
        for m in (message, "cannot patch")
    )
    port, _ = serve([denied, no_rbac])
    writer = StatusWriter(_configuration(port), 2)
    by_policy, by_rbac = (writer.finish("ns", "p", FINISH, 2.0) for _ in range(2))
    assert by_policy.status == 403 and by_policy.error == f"Forbidden: {message}"
    assert "admission policy" in call_fix(by_policy, "patch on pods/status")
    assert by_rbac.error == "Forbidden: cannot patch"
    assert call_fix(by_rbac, "patch on pods/status") == (
        "grant the operator's ServiceAccount patch on pods/status"
    )
    assert status_message("Forbidden", b"not json") == "Forbidden"
    assert status_message("Forbidden", None) == "Forbidden"
