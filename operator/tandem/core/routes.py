"""Routes: how a stop reaches a sidecar, which container Tandem execs into, and the command.

Three paths, chosen per sidecar (`choose_path`), and named in every Event. A new path is a `Path`
member, a `ForcedPath` member (and the CRD's enum for sidecars[].path), and its branch in
`choose_path` and `argv_for`:

- `exec`: into the sidecar's own container. A signal goes to its PID 1, which gets it only if it
  installed a handler (the kernel drops unhandled signals, KILL included, sent to a PID 1 from
  inside its own PID namespace).
- `shared-pid`: the pod has shareProcessNamespace, so PID 1 is the sandbox's pause process and the
  sidecar's main process is an ordinary one: any signal arrives, KILL included. It is found by its
  container ID in /proc/PID/cgroup, never confused with pause or another container. The command
  runs in the sidecar if it has a shell, else in the helper.
- `helper`: an ephemeral container (Tandem's helper image, busybox) targeting the sidecar, sharing
  its PID namespace and the pod's network: signals to its PID 1, and HTTP calls to 127.0.0.1, for
  images without a shell.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum

from .stop_action import ActionKind, StopAction

HELPER_NAME = "tandem-helper"


class Path(StrEnum):
    EXEC = "exec"
    SHARED_PID = "shared-pid"
    HELPER = "helper"


@dataclasses.dataclass(frozen=True)
class Route:
    path: Path
    container: str
    """The container to exec into: the sidecar, or the helper."""
    argv: tuple[str, ...]


class ForcedPath(StrEnum):
    """A policy's `sidecars[].path`: Auto lets `choose_path` pick."""

    AUTO = "Auto"
    EXEC = "Exec"
    SHARED_PID = "SharedPID"
    HELPER = "Helper"


def _main_pid_script(container_id: str) -> str:
    """Shell that sets $main to the sidecar's main process: the oldest process whose cgroup path
    holds the sidecar's container ID (cgroupfs and systemd drivers both put it there)."""
    return (
        'main=""; for d in /proc/[0-9]*; do p=${d#/proc/}; '
        f'grep -q "{container_id}" "$d/cgroup" 2>/dev/null || continue; '
        'if [ -z "$main" ] || [ "$p" -lt "$main" ]; then main=$p; fi; done; '
        '[ -n "$main" ] || { echo "no process of the sidecar found" >&2; exit 3; }; '
    )


def _http(action: StopAction) -> tuple[str, ...]:
    url = f"http://127.0.0.1:{action.port}{action.path}"
    post = action.kind is ActionKind.HTTP_POST
    wget = f"wget -q -O /dev/null {'--post-data= ' if post else ''}{url}"
    curl = f"curl -fsS -o /dev/null {'-X POST ' if post else ''}{url}"
    return (
        "/bin/sh",
        "-c",
        f"if command -v wget >/dev/null 2>&1; then {wget}; "
        f"elif command -v curl >/dev/null 2>&1; then {curl}; "
        "else echo 'neither wget nor curl in this container' >&2; exit 127; fi",
    )


def argv_for(action: StopAction, path: Path, container_id: str) -> tuple[str, ...]:
    """The command that carries out ACTION on PATH; CONTAINER_ID is the sidecar's running one."""
    if action.kind is ActionKind.EXEC:
        return action.command
    if action.kind is not ActionKind.SIGNAL:
        return _http(action)
    if path is Path.SHARED_PID:
        bare_id = container_id.split("://", 1)[-1]
        return ("/bin/sh", "-c", _main_pid_script(bare_id) + f'kill -s {action.signal} "$main"')
    return ("/bin/sh", "-c", f"kill -s {action.signal} 1")


def choose_path(
    action: StopAction,
    *,
    shared_pid: bool,
    has_shell: bool,
    helper_enabled: bool,
    forced: ForcedPath = ForcedPath.AUTO,
) -> Path | None:
    """The path for ACTION, or None when none can deliver it (the Event then says why)."""
    if action.kind is ActionKind.EXEC:
        return Path.EXEC  # Only the sidecar's own container has its binaries.
    if forced is ForcedPath.EXEC:
        return Path.EXEC
    if forced is ForcedPath.SHARED_PID:
        return Path.SHARED_PID if shared_pid else None
    if forced is ForcedPath.HELPER:
        return Path.HELPER if helper_enabled else None
    if shared_pid and action.kind is ActionKind.SIGNAL:
        return Path.SHARED_PID if has_shell or helper_enabled else None
    if has_shell:
        return Path.EXEC
    return Path.HELPER if helper_enabled else None


def can_deliver(action: StopAction, path: Path) -> bool:
    """KILL (and any signal without a handler) reaches a PID 1 only from outside its namespace."""
    kill = action.kind is ActionKind.SIGNAL and action.signal == "KILL"
    return not (kill and path is not Path.SHARED_PID)


def route(
    action: StopAction, path: Path, sidecar: str, container_id: str, *, has_shell: bool
) -> Route:
    in_helper = path is Path.HELPER or (path is Path.SHARED_PID and not has_shell)
    return Route(path, HELPER_NAME if in_helper else sidecar, argv_for(action, path, container_id))
