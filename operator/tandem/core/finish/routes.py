"""Routes: how a stop reaches a sidecar, which container Tandem execs into, and the command.

Three paths, chosen per sidecar (`choose_path`), and named in every Event. A new path is a
`StopPath` member, a `ForcedPath` member (and the CRD's enum for sidecars[].path), and its branch
in `choose_path` and `argv_for`:

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

from ..model.stop import ActionKind, StopAction, StopPath
from ..policy.stop_action import ForcedPath

HELPER_NAME = "tandem-helper"


@dataclasses.dataclass(frozen=True)
class Route:
    path: StopPath
    container: str
    """The container to exec into: the sidecar, or the helper."""
    argv: tuple[str, ...]


# Values from a pod or a policy (a container ID, a URL) are never part of the script's text: each
# script is a constant, and they reach it as its arguments ("$1"), so no quoting can be escaped.

_MAIN_PID = (
    # $1: the sidecar's container ID, 64 hex digits, or nothing is signalled (an empty ID would
    # match every process). $2: the signal. The oldest process whose cgroup path holds the ID is
    # the sidecar's main one; PID 1 (the pause process) and this script itself are never chosen.
    'case "$1" in *[!0-9a-f]*) echo "not a container ID: $1" >&2; exit 3;; esac; '
    '[ ${#1} -eq 64 ] || { echo "not a container ID: $1" >&2; exit 3; }; '
    'main=""; for d in /proc/[0-9]*; do p=${d#/proc/}; '
    '[ "$p" = 1 ] || [ "$p" = "$$" ] && continue; '
    'grep -qF -- "$1" "$d/cgroup" 2>/dev/null || continue; '
    'if [ -z "$main" ] || [ "$p" -lt "$main" ]; then main=$p; fi; done; '
    '[ -n "$main" ] || { echo "no process of the sidecar found" >&2; exit 3; }; '
    'kill -s "$2" "$main"'
)

_HTTP = (
    # $1: the URL; $2: `post` for a POST.
    "if command -v wget >/dev/null 2>&1; then "
    'if [ "$2" = post ]; then wget -q -O /dev/null --post-data= "$1"; '
    'else wget -q -O /dev/null "$1"; fi; '
    "elif command -v curl >/dev/null 2>&1; then "
    'if [ "$2" = post ]; then curl -fsS -o /dev/null -X POST "$1"; '
    'else curl -fsS -o /dev/null "$1"; fi; '
    "else echo 'neither wget nor curl in this container' >&2; exit 127; fi"
)


def _http(action: StopAction) -> tuple[str, ...]:
    url = f"http://127.0.0.1:{action.port}{action.path}"
    method = "post" if action.kind is ActionKind.HTTP_POST else "get"
    return ("/bin/sh", "-c", _HTTP, "sh", url, method)


def argv_for(action: StopAction, path: StopPath, container_id: str) -> tuple[str, ...]:
    """The command that carries out ACTION on PATH; CONTAINER_ID is the sidecar's running one."""
    if action.kind is ActionKind.EXEC:
        return action.command
    if action.kind is not ActionKind.SIGNAL:
        return _http(action)
    if path is StopPath.SHARED_PID:
        bare_id = container_id.split("://", 1)[-1]
        return ("/bin/sh", "-c", _MAIN_PID, "sh", bare_id, action.signal)
    return ("/bin/sh", "-c", f"kill -s {action.signal} 1")  # SIGNALS: a closed set of names


def choose_path(
    action: StopAction,
    *,
    shared_pid: bool,
    has_shell: bool,
    helper_enabled: bool,
    forced: ForcedPath = ForcedPath.AUTO,
) -> StopPath | None:
    """The path for ACTION, or None when none can deliver it (the Event then says why)."""
    if action.kind is ActionKind.EXEC:
        return StopPath.EXEC  # Only the sidecar's own container has its binaries.
    if forced is ForcedPath.EXEC:
        return StopPath.EXEC
    if forced is ForcedPath.SHARED_PID:
        return StopPath.SHARED_PID if shared_pid else None
    if forced is ForcedPath.HELPER:
        return StopPath.HELPER if helper_enabled else None
    if shared_pid and action.kind is ActionKind.SIGNAL:
        return StopPath.SHARED_PID if has_shell or helper_enabled else None
    if has_shell:
        return StopPath.EXEC
    return StopPath.HELPER if helper_enabled else None


def can_deliver(action: StopAction, path: StopPath) -> bool:
    """KILL (and any signal without a handler) reaches a PID 1 only from outside its namespace."""
    kill = action.kind is ActionKind.SIGNAL and action.signal == "KILL"
    return not (kill and path is not StopPath.SHARED_PID)


def route(
    action: StopAction, path: StopPath, sidecar: str, container_id: str, *, has_shell: bool
) -> Route:
    in_helper = path is StopPath.HELPER or (path is StopPath.SHARED_PID and not has_shell)
    return Route(path, HELPER_NAME if in_helper else sidecar, argv_for(action, path, container_id))
