"""The exec's frames as the adapter reads them: one at a time, capped as they come, with the
exit code from the error channel. The socket is a stand-in that plays frames."""

from __future__ import annotations

import itertools
import json
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass

import websocket

from tandem.adapters.kubeclient import OUTPUT_CAP, _drain
from tandem.adapters.results import OUTPUT_LIMIT

BINARY, CLOSE = websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_CLOSE


@dataclass
class Frame:
    data: bytes


class Played:
    """A websocket that plays FRAMES, then times out (or closes, after a close frame)."""

    def __init__(self, frames: Iterator[tuple[int, bytes]]) -> None:
        self.frames, self.read = frames, 0

    def settimeout(self, timeout: float) -> None:
        assert timeout > 0

    def recv_data_frame(self, control: bool) -> tuple[int, Frame]:
        for opcode, data in self.frames:
            self.read += len(data)
            return opcode, Frame(data)
        raise websocket.WebSocketTimeoutException("no frame in time")


def _exited(code: int) -> bytes:
    causes = [{"reason": "ExitCode", "message": str(code)}]
    body = {"status": "Failure", "details": {"causes": causes}}
    return b"\x03" + json.dumps(body).encode()


def test_an_endless_stream_is_cut_after_the_cap_without_holding_it() -> None:
    chunk = b"\x01" + b"\0" * 32768
    sock = Played(itertools.repeat((BINARY, chunk)))
    result = _drain(sock, time.monotonic() + 10, 10)
    assert result.exit_code is None and f"more than {OUTPUT_CAP} bytes" in result.error
    assert sock.read < OUTPUT_CAP + OUTPUT_LIMIT + 2 * len(chunk)
    assert len(result.stdout) <= OUTPUT_LIMIT


def test_the_exit_code_comes_from_the_error_channel_and_output_is_kept_up_to_the_limit() -> None:
    frames = [(BINARY, b"\x01hello\n"), (BINARY, b"\x02oops\n"), (BINARY, _exited(3)), (CLOSE, b"")]
    result = _drain(Played(iter(frames)), time.monotonic() + 10, 10)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "hello\n", "oops\n")
    success = [(BINARY, b'\x03{"status": "Success"}'), (CLOSE, b"")]
    assert _drain(Played(iter(success)), time.monotonic() + 10, 10).exit_code == 0


def test_silence_until_the_deadline_is_a_timeout_and_a_dropped_stream_has_no_status() -> None:
    quiet = _drain(Played(iter([])), time.monotonic() + 10, 10)
    assert quiet.exit_code is None and "did not finish in 10s" in quiet.error

    class Dropped(Played):
        def recv_data_frame(self, control: bool) -> tuple[int, Frame]:
            raise websocket.WebSocketConnectionClosedException("gone")

    dropped = _drain(Dropped(iter([])), time.monotonic() + 10, 10)
    assert dropped.exit_code is None and "without a status" in dropped.error
    assert quiet.may_have_run and dropped.may_have_run


def test_a_status_without_an_exit_code_was_answered_and_did_not_go_unanswered() -> None:
    # The kubelet's own Failure (the container stopped meanwhile, the runtime refused the exec):
    # no exit code, but the call ran to its end, so it is no stop that may still have run.
    failure = {"status": "Failure", "message": "container not running (abc)"}
    frames = [(BINARY, b"\x03" + json.dumps(failure).encode()), (CLOSE, b"")]
    result = _drain(Played(iter(frames)), time.monotonic() + 10, 10)
    assert result.exit_code is None and result.error == "container not running (abc)"
    assert result.answered and not result.may_have_run


class Breaks(Played):
    """Plays FRAMES, then raises CAUSE."""

    def __init__(self, frames: list[tuple[int, bytes]], cause: Exception) -> None:
        super().__init__(iter(frames))
        self.left, self.cause = len(frames), cause

    def recv_data_frame(self, control: bool) -> tuple[int, Frame]:
        if not self.left:
            raise self.cause
        self.left -= 1
        return super().recv_data_frame(control)


def test_a_stream_broken_mid_way_ends_as_a_dropped_one_not_as_an_exception() -> None:
    """A reset, an SSL error or a malformed frame while reading: the call ends with what was read
    and the cause, as a dropped stream does (it may have run), and raises nothing (which would
    cost the pod its phase write and its re-check)."""
    for cause in (
        ConnectionResetError(104, "Connection reset by peer"),
        ssl.SSLError("bad record mac"),
        websocket.WebSocketProtocolException("rsv is not implemented, yet"),
    ):
        result = _drain(Breaks([(BINARY, b"\x01half")], cause), time.monotonic() + 10, 10)
        assert result.exit_code is None and result.may_have_run, (cause, result)
        assert "without a status" in result.error and type(cause).__name__ in result.error
        assert result.stdout == "half"
    # Read to its status, then reset: the exit code stands.
    reset = ConnectionResetError(104, "Connection reset by peer")
    assert _drain(Breaks([(BINARY, _exited(0))], reset), time.monotonic() + 10, 10).exit_code == 0
