"""The kubernetes client for calls into pods: exec into containers, the ephemeral helper
container, and the pod's terminal phase. Its configuration comes from `kubeconfig`.

`stream()` swaps a method on the ApiClient it is given, so every exec gets a fresh ApiClient;
sharing one between threads races. Patches share one pooled ApiClient per adapter: a fresh one
per patch would open a TLS connection each time (the cost: docs/benchmarks.md).
Every call has a deadline and blocks: the runtime runs them off the event loop. Ephemeral
containers can be added but never removed or changed, so the helper is added once per pod and
reused.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any, Protocol

import urllib3
import websocket
from kubernetes import client

# Bound once: the package resolves its attributes lazily, through importlib, on every access.
from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream, ws_client
from kubernetes.stream.ws_client import ERROR_CHANNEL, STDERR_CHANNEL, STDOUT_CHANNEL

from tandem.core import HELPER_COMMAND, HELPER_NAME, ExecResult, Finish, RunAs
from tandem.core.model.names import FINISHED_ANNOTATION, FINISHED_CONDITION

from .results import (
    OUTPUT_LIMIT,
    handshake_error,
    parse_error_channel,
    status_message,
    status_of_handshake,
    surely_refused,
)

OUTPUT_CAP = 1 << 20
"""Bytes of output an exec may write before Tandem closes it: a stop prints a line, if anything."""


class _Capped:
    """Keeps the first OUTPUT_LIMIT characters of a stream and counts the rest."""

    def __init__(self) -> None:
        self.text, self.overflowed = "", 0

    def add(self, chunk: str) -> None:
        room = OUTPUT_LIMIT - len(self.text)
        self.text += chunk[:room]
        self.overflowed += max(0, len(chunk) - room)


_handshake = threading.local()
"""The running exec's deadline for its handshake, per thread (each exec runs on its own)."""


class _TimedWebSocket(websocket.WebSocket):
    """The client's websocket, with a timeout on its connection and upgrade. kubernetes'
    `create_websocket` calls `WebSocket(...).connect(url, header=...)` with no timeout, so the
    socket blocks: a kubelet or API server that accepts the connection and never answers the
    upgrade would hold the exec's thread for good (tests/unit/test_exec_handshake.py)."""

    def connect(self, url: str, **options: Any) -> None:
        options.setdefault("timeout", getattr(_handshake, "timeout", None))
        super().connect(url, **options)


ws_client.WebSocket = _TimedWebSocket  # type: ignore[attr-defined]  # the client's global


class Executor:
    """Runs commands in containers. Blocking: the runtime calls it off the event loop."""

    def __init__(self, configuration: client.Configuration) -> None:
        self._configuration = configuration

    def run(
        self, namespace: str, pod: str, container: str, argv: tuple[str, ...], timeout: float
    ) -> ExecResult:
        deadline = time.monotonic() + timeout
        _handshake.timeout = timeout
        with ApiClient(self._configuration) as api_client:
            try:
                ws = stream(
                    CoreV1Api(api_client).connect_get_namespaced_pod_exec,
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
                reason = str(error.reason or error).strip()
                status = status_of_handshake(int(error.status or 0), reason)
                if not status and time.monotonic() >= deadline:
                    reason = f"no answer to the exec's handshake in {timeout:g}s ({reason})"
                return ExecResult(
                    None,
                    error=handshake_error(reason),
                    status=status,
                    refused=surely_refused(status, error),
                )
            try:
                return _drain(ws.sock, deadline, timeout)
            finally:
                ws.close()


class FrameSocket(Protocol):
    """What `_drain` reads an exec's frames from: the websocket client's socket (or a test's)."""

    def settimeout(self, timeout: float, /) -> None: ...

    def recv_data_frame(self, control_frame: bool, /) -> tuple[Any, ...]: ...


def _drain(sock: FrameSocket, deadline: float, timeout: float) -> ExecResult:
    """The exec's frames, read one at a time until the stream closes or DEADLINE. Not the
    client's WSClient.update: it returns only once no frame is waiting, and keeps all output in
    memory, so a sidecar's shell streaming fast would hold Tandem's thread and grow its memory
    for as long as it writes. Here each frame is capped as it comes (OUTPUT_LIMIT kept, closed
    after OUTPUT_CAP)."""
    out, err, status = _Capped(), _Capped(), ""
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        broken: Exception | None = None
        try:
            opcode, frame = sock.recv_data_frame(True)
        except (TimeoutError, websocket.WebSocketTimeoutException):
            break
        except (OSError, websocket.WebSocketException) as error:
            # Closed, reset or broken mid-frame (an SSL error among them): an end like a close,
            # never an exception, which would cost the pod the rest of its decision.
            opcode, frame = websocket.ABNF.OPCODE_CLOSE, None
            if not isinstance(error, websocket.WebSocketConnectionClosedException):
                broken = error
        if opcode == websocket.ABNF.OPCODE_CLOSE or frame is None:
            code, error_text = parse_error_channel(status)
            if broken is not None and code is None:
                error_text = f"{error_text} ({type(broken).__name__}: {broken})"
            return ExecResult(
                code,
                stdout=out.text,
                stderr=err.text,
                error=error_text,
                answered=bool(status.strip()),
            )
        data = frame.data.encode() if isinstance(frame.data, str) else frame.data
        if not data:
            continue
        text = data[1:].decode("utf-8", "replace")
        if data[0] == STDOUT_CHANNEL:
            out.add(text)
        elif data[0] == STDERR_CHANNEL:
            err.add(text)
        elif data[0] == ERROR_CHANNEL:
            status = (status + text)[:OUTPUT_LIMIT]
        if out.overflowed > OUTPUT_CAP or err.overflowed > OUTPUT_CAP:
            return ExecResult(
                None, error=f"the command wrote more than {OUTPUT_CAP} bytes; stopped"
            )
    return ExecResult(None, error=f"the command did not finish in {timeout:g}s")


def pooled_api(configuration: client.Configuration, connections: int) -> CoreV1Api:
    """One client whose pool keeps up to CONNECTIONS connections open, one per thread that may
    call at once (the client's default, five per core, would close the rest after each call)."""
    pooled = copy.copy(configuration)
    pooled.connection_pool_maxsize = max(1, connections)
    # Its calls are writes (PATCH), which urllib3's default retries may send again (its "other"
    # errors, an SSL one among them, are retried for any method), so one write could land twice
    # (seen in e2e: docs/how-a-pod-ends.md). The stopper retries only what surely never reached
    # the pod.
    pooled.retries = False
    return CoreV1Api(ApiClient(pooled))


def _patch(
    api: CoreV1Api,
    subresource: str,
    *,
    namespace: str,
    pod: str,
    body: dict[str, Any],
    timeout: float,
) -> ExecResult:
    """A strategic merge patch of one of a pod's subresources; exit_code 0 when it was applied
    (ExecResult keeps one shape for every call the stopper makes)."""
    patch = getattr(api, f"patch_namespaced_pod_{subresource}")
    try:
        # Unparsed: nobody reads the answer, and the client would build a pydantic V1Pod of it.
        # A non-2xx answer still raises.
        answer = patch(
            pod,
            namespace,
            body,
            _request_timeout=timeout,
            _content_type="application/strategic-merge-patch+json",
            _preload_content=False,
        )
        answer.read()
        answer.release_conn()
    except ApiException as error:
        status = int(error.status or 0)
        return ExecResult(
            None,
            error=status_message(str(error.reason or error), error.body),
            status=status,
            refused=surely_refused(status, error),
        )
    except (OSError, urllib3.exceptions.HTTPError) as error:  # no connection, or no answer
        return ExecResult(None, error=str(error), refused=surely_refused(0, error))
    return ExecResult(0)


def helper_spec(target: str, image: str, run_as: RunAs) -> dict[str, Any]:
    """The helper passes Pod Security "restricted": no privilege, no capabilities, the runtime's
    seccomp profile, and RUN_AS, the user the core chose (`helper_user`: the sidecar's, else a
    non-root one). Its image, target and command are how the core recognises it later."""
    security: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for key, value in (
        ("runAsUser", run_as.user),
        ("runAsGroup", run_as.group),
        ("runAsNonRoot", run_as.non_root),
    ):
        if value is not None:
            security[key] = value
    return {
        "name": HELPER_NAME,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(HELPER_COMMAND),
        "targetContainerName": target,
        "securityContext": security,
        "terminationMessagePolicy": "File",
    }


class HelperAdder:
    """Blocking: the runtime calls it off the event loop."""

    def __init__(self, configuration: client.Configuration, image: str, connections: int) -> None:
        self._api = pooled_api(configuration, connections)
        self.image = image

    def add(
        self, namespace: str, pod: str, target: str, run_as: RunAs, timeout: float
    ) -> ExecResult:
        """Adds the helper; the result's exit_code is 0 on success."""
        body = {"spec": {"ephemeralContainers": [helper_spec(target, self.image, run_as)]}}
        return _patch(
            self._api,
            "ephemeralcontainers",
            namespace=namespace,
            pod=pod,
            body=body,
            timeout=timeout,
        )


class StatusWriter:
    """Writes a pod's terminal phase through pods/status. Blocking: called off the event loop."""

    def __init__(self, configuration: client.Configuration, connections: int) -> None:
        self._api = pooled_api(configuration, connections)

    def finish(self, namespace: str, pod: str, finish: Finish, timeout: float) -> ExecResult:
        """One strategic merge patch (the kubelet's conditions stay; ours merges by type) with the
        uid and resourceVersion as preconditions: a pod that changed since Tandem saw it answers
        409 and keeps its phase. It carries the annotation FINISHED_ANNOTATION too, so that the
        kubelet acts on it at once (`core.finish`). The result's exit_code is 0 when written."""
        condition = {
            "type": FINISHED_CONDITION,
            "status": "True",
            "reason": f"Primaries{finish.phase}",
            "message": finish.message[:1024],
            "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        body = {
            "metadata": {
                "uid": finish.uid,
                "resourceVersion": finish.resource_version,
                "annotations": {FINISHED_ANNOTATION: finish.phase.value},
            },
            "status": {"phase": finish.phase.value, "conditions": [condition]},
        }
        return _patch(self._api, "status", namespace=namespace, pod=pod, body=body, timeout=timeout)
