"""Commands that deliver a stop action from inside a sidecar's own container (the exec path)."""

from __future__ import annotations

from .policy import StopAction

# With a shared PID namespace, PID 1 is the sandbox's pause process, and killing it ends the pod.
# The sidecar's main process is then the oldest process in the sidecar's own mount namespace,
# which is the namespace this exec'd shell runs in.
_MAIN_PID = (
    'self=$(readlink /proc/self/ns/mnt); main=""; '
    "for d in /proc/[0-9]*; do p=${d#/proc/}; "
    '[ "$(readlink "$d/ns/mnt" 2>/dev/null)" = "$self" ] || continue; '
    'if [ -z "$main" ] || [ "$p" -lt "$main" ]; then main=$p; fi; done; '
    '[ -n "$main" ] || { echo "no process of this container found" >&2; exit 3; }; '
)


def exec_argv(action: StopAction, shared_pid_namespace: bool) -> tuple[str, ...]:
    """The argv to exec in the sidecar container that carries out ACTION."""
    if action.kind == "exec":
        return action.command
    if action.kind == "signal":
        if shared_pid_namespace:
            return ("/bin/sh", "-c", _MAIN_PID + f'kill -s {action.signal} "$main"')
        return ("/bin/sh", "-c", f"kill -s {action.signal} 1")
    url = f"http://127.0.0.1:{action.port}{action.path}"
    post = action.kind == "httpPost"
    wget = f"wget -q -O /dev/null {'--post-data= ' if post else ''}{url}"
    curl = f"curl -fsS -o /dev/null {'-X POST ' if post else ''}{url}"
    return (
        "/bin/sh",
        "-c",
        f"if command -v wget >/dev/null 2>&1; then {wget}; "
        f"elif command -v curl >/dev/null 2>&1; then {curl}; "
        "else echo 'neither wget nor curl in this container' >&2; exit 127; fi",
    )
