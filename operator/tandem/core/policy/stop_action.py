"""How a policy names the stop of one sidecar: its action (a signal, a command, an HTTP call or a
preset) and its path, parsed and checked."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from ..model.stop import ActionKind, StopAction
from .known import PRESETS


class PolicyError(ValueError):
    """A policy or annotation that cannot be used; the message says what to fix."""


class ForcedPath(StrEnum):
    """A policy's `sidecars[].path`: Auto lets `choose_path` pick."""

    AUTO = "Auto"
    EXEC = "Exec"
    SHARED_PID = "SharedPID"
    HELPER = "Helper"


SIGNALS = frozenset({"TERM", "INT", "QUIT", "HUP", "USR1", "USR2", "KILL"})
URL_PATH = re.compile(r"/[A-Za-z0-9._~%/:@=&+,?-]{0,1023}")
"""As the CRD's pattern for httpGet/httpPost paths. The path reaches the command as an argument,
never as shell text; this keeps it to what an HTTP shutdown endpoint needs."""


def parse_action(raw: Any, where: str) -> StopAction:
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise PolicyError(f"{where}: give exactly one of signal, exec, httpGet, httpPost, preset")
    kind, value = next(iter(raw.items()))
    if kind == "preset":
        if value not in PRESETS:
            raise PolicyError(f"{where}.preset: {value!r} is not one of {sorted(PRESETS)}")
        preset = PRESETS[value]
        return StopAction(ActionKind.HTTP_POST, port=preset.port, path=preset.path, preset=value)
    if kind == "signal":
        signal = str(value).upper().removeprefix("SIG")
        if signal not in SIGNALS:
            raise PolicyError(f"{where}.signal: {value!r} is not one of {sorted(SIGNALS)}")
        return StopAction(kind=ActionKind.SIGNAL, signal=signal)
    if kind == "exec":
        command = tuple(str(a) for a in (value or {}).get("command") or ())
        if not command or not command[0]:
            raise PolicyError(f"{where}.exec.command: give the argv to run, the program first")
        return StopAction(kind=ActionKind.EXEC, command=command)
    if kind in ("httpGet", "httpPost"):
        port, path = (value or {}).get("port"), str((value or {}).get("path") or "/")
        if not isinstance(port, int) or not 0 < port < 65536:
            raise PolicyError(f"{where}.{kind}.port: give a port number from 1 to 65535")
        path = path if path.startswith("/") else "/" + path
        if not URL_PATH.fullmatch(path):  # `$` would let a trailing newline through
            raise PolicyError(
                f"{where}.{kind}.path: {path!r} has characters a URL path does not need; use "
                "letters, digits and . _ ~ % / : @ = & + , ? -"
            )
        return StopAction(kind=ActionKind(kind), port=port, path=path)
    raise PolicyError(
        f"{where}: unknown action {kind!r}; use signal, exec, httpGet, httpPost or preset"
    )
