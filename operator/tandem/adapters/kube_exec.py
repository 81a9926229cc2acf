"""Exec into a container through the kubernetes client, with a deadline and the true exit code.

The exit code comes from the exec's error channel (channel 3), parsed here: the client's own
`returncode` raises on statuses without causes. `stream()` swaps a method on the ApiClient it is
given, so every exec gets a fresh ApiClient; sharing one between threads races.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream
from kubernetes.stream.ws_client import ERROR_CHANNEL, STDERR_CHANNEL, STDOUT_CHANNEL

_OUTPUT_LIMIT = 4096


@dataclasses.dataclass(frozen=True)
class ExecResult:
    exit_code: int | None
    """The command's exit code; None when it could not be run or did not finish in time."""
    stdout: str = ""
    stderr: str = ""
    error: str = ""
    """Why the command did not run to completion: empty when exit_code is set."""
    status: int = 0
    """The HTTP status of a refused exec (403, 404, 429, 500, ...), else 0."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def parse_error_channel(raw: str) -> tuple[int | None, str]:
    """(exit code, error) from the Status object that the kubelet writes on channel 3."""
    if not raw.strip():
        return None, "the exec stream closed without a status"
    try:
        status = json.loads(raw)
    except ValueError:
        return None, f"unreadable exec status: {raw[:200]}"
    if status.get("status") == "Success":
        return 0, ""
    for cause in (status.get("details") or {}).get("causes") or ():
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message")), ""
            except (TypeError, ValueError):
                break
    return None, str(status.get("message") or raw[:200])


def _status_of(error: ApiException) -> int:
    """The HTTP status of a failed exec handshake ('Handshake status 403 Forbidden')."""
    if error.status:
        return int(error.status)
    words = str(error.reason or "").split()
    for before, word in itertools.pairwise(words):
        if before == "status" and word.isdigit():
            return int(word)
    return 0


class Executor:
    """Runs commands in containers. Blocking: the runtime calls it off the event loop."""

    def __init__(self, configuration: client.Configuration) -> None:
        self._configuration = configuration

    def run(
        self, namespace: str, pod: str, container: str, argv: tuple[str, ...], timeout: float
    ) -> ExecResult:
        deadline = time.monotonic() + timeout
        with client.ApiClient(self._configuration) as api_client:
            try:
                ws = stream(
                    client.CoreV1Api(api_client).connect_get_namespaced_pod_exec,
                    pod,
                    namespace,
                    container=container,
                    command=list(argv),
                    stdin=False,
                    stdout=True,
                    stderr=True,
                    tty=False,
                    _preload_content=False,
                    _request_timeout=timeout,
                )
            except ApiException as error:
                return ExecResult(
                    None, error=str(error.reason or error).strip(), status=_status_of(error)
                )
            try:
                # The client connects without a socket timeout; reads get the deadline at least.
                if ws.sock is not None:
                    ws.sock.settimeout(timeout)
                while ws.is_open() and time.monotonic() < deadline:
                    ws.update(timeout=max(0.0, deadline - time.monotonic()))
                if ws.is_open():
                    return ExecResult(None, error=f"the command did not finish in {timeout:g}s")
                code, error_text = parse_error_channel(ws.read_channel(ERROR_CHANNEL))
                return ExecResult(
                    code,
                    stdout=ws.read_channel(STDOUT_CHANNEL)[:_OUTPUT_LIMIT],
                    stderr=ws.read_channel(STDERR_CHANNEL)[:_OUTPUT_LIMIT],
                    error=error_text,
                )
            finally:
                ws.close()
