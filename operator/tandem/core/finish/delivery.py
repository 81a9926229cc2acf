"""Delivery: what carrying out a Stop, AddHelper or Finish came to, from the call's plain result:
its name (`Delivery`, for a Stop) and the Event that says so. `learn` folds it into the memory."""

from __future__ import annotations

from enum import StrEnum

from ..model.actions import AddHelper, ExecResult, Finish, Report, Stop
from ..model.names import EventType, Reason
from ..model.stop import ActionKind
from . import hints
from .routes import HELPER_NAME

# When a stop works, the sidecar's PID 1 exits at once, and the kernel kills whatever else runs in
# its PID namespace: often the exec'd command itself, before it could exit 0. So 137 means done.
KILLED_WITH_ITS_CONTAINER = 137


class Delivery(StrEnum):
    DELIVERED = "delivered"
    NO_SHELL = "no-shell"
    """The exec found no /bin/sh (or kill) in the container: a distroless image."""
    GONE = "gone"
    UNREACHED = "unreached"
    """No API server to reach: sent again later (`learn`)."""
    UNCONFIRMED = "unconfirmed"
    """No answer (timed out, or lost its connection once made): it may have run, so the sidecar
    gets its grace period, and the same step once more if it still runs then (`escalate`)."""
    FAILED = "failed"


def _refused_signal(stop: Stop, result: ExecResult) -> bool:
    """The kernel refused the helper's signal (EPERM): the target belongs to another user. Only
    matched in the helper, whose `kill` is busybox's ("can't kill pid 1: Operation not
    permitted"); the text is matched, never quoted in an Event."""
    return (
        stop.container == HELPER_NAME
        and stop.action.kind is ActionKind.SIGNAL
        and result.exit_code not in (None, 0)
        and "operation not permitted" in result.stderr.lower()
    )


def report_delivery(stop: Stop, result: ExecResult) -> tuple[Delivery, Report | None]:
    """How STOP went, from the RESULT of its command (after the runtime's retries), and the
    Event that says so, if any."""
    if result.ok or result.exit_code == KILLED_WITH_ITS_CONTAINER:
        if not stop.announce:
            return Delivery.DELIVERED, None  # The PodFinished Event tells it.
        return Delivery.DELIVERED, Report(
            EventType.NORMAL,
            Reason.SIDECAR_STOP_SENT,
            f"sent {stop.action.describe()} to {stop.sidecar} via {stop.path} "
            f"(primaries' outcome {stop.outcome}, attempt {stop.attempt}, step {stop.step + 1})",
        )
    if result.status == 404:
        return Delivery.GONE, None
    if result.no_shell and stop.container == stop.sidecar:
        return Delivery.NO_SHELL, None  # The next decision picks another path and says so.
    if not stop.announce and result.status != 403:
        return Delivery.FAILED, None  # Before a finish by phase: the kubelet stops it anyway.
    if _refused_signal(stop, result):
        # FAILED, not retried: the same helper, as the same user, would be refused again.
        user = f"user {stop.user}" if stop.user is not None else "its image's user"
        return Delivery.FAILED, hints.warning(
            Reason.SIDECAR_STOP_FAILED,
            f"could not deliver {stop.action.describe()} to {stop.sidecar} via {stop.path}: "
            f"Tandem's helper runs as {user}, but {stop.sidecar}'s process belongs to another "
            "user, and the kernel lets a process without capabilities signal only its own user's",
            hints.helper_user_fix(stop.sidecar),
        )
    # The API server's or the kubelet's own words, never the command's output: that is the
    # container's, and an Event would show it to whoever may read Events in the namespace.
    text = result.error or (
        f"exit code {result.exit_code}" if result.exit_code is not None else "no answer"
    )
    if result.may_have_run and not stop.repeat:
        return Delivery.UNCONFIRMED, hints.warning(
            Reason.SIDECAR_STOP_FAILED,
            f"could not confirm {stop.action.describe()} to {stop.sidecar} via {stop.path}: {text}",
            hints.UNCONFIRMED_FIX,
        )
    again = " (sent again after its grace period)" if stop.repeat else ""
    return Delivery.FAILED, hints.warning(
        Reason.SIDECAR_STOP_FAILED,
        f"could not deliver {stop.action.describe()} to {stop.sidecar} via {stop.path}{again}: "
        f"{text}",
        hints.call_fix(result, "get and create on pods/exec"),
    )


def report_helper(add: AddHelper, image: str, result: ExecResult) -> Report:
    """The Event for adding Tandem's helper (from IMAGE) to the pod, as RESULT says it went."""
    if result.ok:
        return Report(
            EventType.NORMAL,
            Reason.HELPER_ADDED,
            f"added ephemeral container {HELPER_NAME} ({image}) targeting {add.target}, to stop "
            "sidecars that have no shell",
        )
    return hints.warning(
        Reason.SIDECAR_STOP_FAILED,
        f"could not add the helper container for {add.target}: {result.error}",
        hints.call_fix(result, "patch on pods/ephemeralcontainers"),
    )


def report_finish(finish: Finish, result: ExecResult) -> Report | None:
    """The Event for writing FINISH's phase, as RESULT (the status patch) says it went. A pod
    that is gone (404) or changed meanwhile (409: another resourceVersion, or a new pod under
    the name) gets none: its next event decides afresh."""
    if result.ok:
        if finish.again:
            return None  # Told with the first write.
        return Report(
            EventType.NORMAL, Reason.POD_FINISHED, finish.message, on_job=True, tally=finish.tally
        )
    if result.status in (404, 409):
        return None
    return hints.warning(
        Reason.POD_FINISH_FAILED,
        f"could not write phase {finish.phase} to the pod's status: "
        f"{result.error or f'status {result.status}'}",
        hints.call_fix(result, "patch on pods/status"),
    )
