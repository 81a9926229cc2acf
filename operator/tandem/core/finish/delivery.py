"""Delivery: what carrying out a Stop or AddHelper came to. The runtime passes the call's plain
result in; this module names it (`Delivery`), writes its Event, and folds it into the pod's memory.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum

from ..model.actions import AddHelper, ExecResult, Finish, Report, Stop
from ..model.clocks import Monotonic
from ..model.memory import PodMemory
from ..model.names import EventType, Reason
from ..model.once import Told, once_key, told_key
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
    return Delivery.FAILED, hints.warning(
        Reason.SIDECAR_STOP_FAILED,
        f"could not deliver {stop.action.describe()} to {stop.sidecar} via {stop.path}: {text}",
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


def after_delivery(memory: PodMemory, stop: Stop, delivery: Delivery, now: Monotonic) -> PodMemory:
    """Folds how STOP went, learned at NOW, into the pod's memory.

    DELIVERED: the sidecar's grace period runs from NOW, when the stop got through, not from the
    decision: the stopper may have spent seconds retrying a refused exec.

    FAILED (the API refused the exec, or it timed out, after the stopper's own retries): the stop
    did not get through. No more stops for this run, and no later SidecarUnstoppable that would
    blame the sidecar: SidecarStopFailed has said why, and the sweeper's Terminate, which forgets
    the pod's stops, is what tries again.

    NO_SHELL in the sidecar itself: forget that stop and remember the image has no shell, so that
    the next decision sends the same step through the helper instead."""
    record = memory.sidecars.get(stop.sidecar)
    ours = (stop.container_id, stop.step, stop.attempt)
    if delivery in (Delivery.DELIVERED, Delivery.FAILED):
        if record is None or (record.container_id, record.step, record.attempts) != ours:
            return memory  # a newer stop has replaced it
        if delivery is Delivery.DELIVERED:
            learned = dataclasses.replace(record, acted_at=now)
        else:
            learned = dataclasses.replace(record, exhausted=True)
        return memory.with_sidecar(stop.sidecar, learned)
    if delivery is not Delivery.NO_SHELL or stop.container != stop.sidecar:
        return memory
    sidecars = {k: v for k, v in memory.sidecars.items() if k != stop.sidecar}
    return dataclasses.replace(memory, sidecars=sidecars, no_shell=memory.no_shell | {stop.sidecar})


def told_once(
    memory: PodMemory, about: str, report: Report | None
) -> tuple[PodMemory, Report | None]:
    """REPORT, unless it is a SidecarStopFailed already told about ABOUT (a sidecar's run, or the
    helper) in the same words: the sweep's Terminate sends the same stop again, and a refusal
    told once is not worth a Warning at every sweep. Other Reports tell of a new stop, and pass."""
    if report is None or report.reason is not Reason.SIDECAR_STOP_FAILED:
        return memory, report
    told = memory.tell_once(once_key(Told.STOP_FAILED, about, report.message))
    return (memory, None) if told is None else (told, report)


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


def after_finish(memory: PodMemory, finish: Finish, result: ExecResult) -> PodMemory:
    """A written phase is remembered as written and told (its PodFinished is posted): never
    written again. One that did not land because the pod changed (409) is tried at the pod's
    next event, which shows the change: it writes the phase anew, or, if the pod ended by itself
    meanwhile, tells that. Any other result is tried again after RETRY_AFTER, up to
    MAX_PHASE_WRITES (`finish`)."""
    if memory.finished != finish.attempt_key or finish.again:
        return memory  # A write again changes nothing: the first one landed.
    if result.ok:
        # Its PodFinished is posted with this write (`report_finish`): never told again.
        told = memory.tell_once(told_key(finish.attempt_key)) or memory
        return dataclasses.replace(told, written=True)
    if result.status == 409:
        return dataclasses.replace(memory, finished_at=None)
    return memory
