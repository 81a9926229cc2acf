"""Reading what an exec came to (the core's ExecResult): the error-channel parser, and the
readable part of a refused handshake.

The exit code comes from the exec's error channel (channel 3): the kubelet writes a Status there.
The client's own `returncode` raises on statuses without causes, so Tandem parses it itself.
"""

from __future__ import annotations

import errno
import itertools
import json
import socket

OUTPUT_LIMIT = 4096


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


def status_of_handshake(status: int, reason: str) -> int:
    """The HTTP status of a failed exec handshake: the client reports it only inside its reason
    ('Handshake status 403 Forbidden')."""
    if status:
        return status
    words = reason.split()
    for before, word in itertools.pairwise(words):
        if before == "status" and word.isdigit():
            return int(word)
    return 0


GATEWAY_TIMEOUT = 504
_UNREACHABLE = (errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH)


def surely_refused(status: int, error: BaseException) -> bool:
    """Whether a call that failed with ERROR (and STATUS, if the server answered) surely never
    reached the pod. An error status says so, but for 504: a proxy or the API server gave up
    waiting, and the exec or the patch may have gone on behind it. Without a status only a
    connection that was never made proves it (refused, no route, a name that did not resolve);
    a timeout or a dropped connection does not. The clients wrap the socket's error in their own
    (urllib3 with `from`, the websocket client by raising inside `except`): search the chain."""
    if status:
        return status != GATEWAY_TIMEOUT
    cause: BaseException | None = error
    for _ in range(8):  # a chain may loop back on itself
        if cause is None:
            break
        if isinstance(cause, socket.gaierror) or (
            isinstance(cause, OSError) and cause.errno in _UNREACHABLE
        ):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


_HANDSHAKE_PARTS = " -+-+- "


def status_message(reason: str, body: object) -> str:
    """A refused call's words: the Status MESSAGE in BODY (the API server's, an admission
    policy's or a webhook's, which say what refused it and why) after the HTTP REASON, or the
    reason alone; at most 512 characters of the message."""
    try:
        status = json.loads(body) if isinstance(body, (str, bytes)) else None
    except ValueError:
        status = None
    message = str(status.get("message") or "") if isinstance(status, dict) else ""
    return f"{reason}: {message[:512]}" if message else reason


def handshake_error(reason: str) -> str:
    """The readable part of a refused exec handshake. The websocket client says
    'Handshake status 429 Too Many Requests -+-+- {response headers} -+-+- {Status JSON}': keep
    the status line and the Status's message (the apiserver's, or an admission webhook's), and
    drop the headers, which would crowd the cause out of a 1 KiB Event message."""
    parts = reason.split(_HANDSHAKE_PARTS)
    if len(parts) != 3:
        return reason
    head, _, body = (part.strip() for part in parts)
    try:
        status = json.loads(body)
        message = str(status.get("message") or "") if isinstance(status, dict) else body
    except ValueError:
        message = "" if body in ("", "None") else body[:300]
    return f"{head}: {message}" if message else head
