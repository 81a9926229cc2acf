"""What a stop is, in the words every room uses: the action that stops one sidecar (a signal, a
command, or an HTTP call made inside its container) and the path by which it reaches the sidecar.
A policy names the action (`policy/stop_action.py` parses it); the routes choose the path; the
memory and the actions carry both."""

from __future__ import annotations

import dataclasses
from enum import StrEnum


class ActionKind(StrEnum):
    SIGNAL = "signal"
    EXEC = "exec"
    HTTP_GET = "httpGet"
    HTTP_POST = "httpPost"
    """A preset is an httpPost."""


@dataclasses.dataclass(frozen=True)
class StopAction:
    """How to stop one sidecar: a signal, a command, or an HTTP call made inside its container."""

    kind: ActionKind
    signal: str = ""
    command: tuple[str, ...] = ()
    port: int = 0
    path: str = ""
    preset: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ActionKind(self.kind))  # "signal" is SIGNAL, too

    def describe(self) -> str:
        if self.kind is ActionKind.SIGNAL:
            return f"signal {self.signal}"
        if self.kind is ActionKind.EXEC:
            # The program only: its arguments are the policy author's, and may carry secrets.
            program = self.command[0].rsplit("/", 1)[-1] if self.command else ""
            return f"exec {program} ({len(self.command) - 1} arguments)"
        verb = "GET" if self.kind is ActionKind.HTTP_GET else "POST"
        named = f" ({self.preset} preset)" if self.preset else ""
        return f"HTTP {verb} 127.0.0.1:{self.port}{self.path}{named}"


DEFAULT_STOP = StopAction(kind=ActionKind.SIGNAL, signal="TERM")
KILL = StopAction(kind=ActionKind.SIGNAL, signal="KILL")


class StopPath(StrEnum):
    """How a stop reaches a sidecar (`finish/routes.py`), named in every Event; neither a URL's
    path (`StopAction.path`) nor a file's."""

    EXEC = "exec"
    SHARED_PID = "shared-pid"
    HELPER = "helper"
