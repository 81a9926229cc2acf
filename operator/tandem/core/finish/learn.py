"""Learning: what carrying out one action came to goes back into the core, once per action.

The runtime hands in the action, the call's plain result and when it ended; `learn` returns the
pod's memory with it folded in, the Event to post (told once where it must be), and what the
runtime needs besides: how a Stop went (its metric), and whether to decide again at once.
"""

from __future__ import annotations

import dataclasses

from ..model.actions import AddHelper, ExecResult, Finish, Recheck, Report, Stop
from ..model.clocks import Monotonic
from ..model.names import Reason
from ..model.once import Told, once_key, told_key
from .decision import MAX_RESENDS, PodMemory, SidecarRecord
from .delivery import Delivery, report_delivery, report_finish, report_helper
from .routes import HELPER_NAME

RESEND_AFTER = 5.0
"""Seconds before a stop that reached no API server is decided again; doubled at each resend."""


@dataclasses.dataclass(frozen=True)
class Learned:
    memory: PodMemory
    report: Report | None = None
    """The Event to post, if any."""
    delivery: Delivery | None = None
    """How a Stop went; None for the other actions."""
    recheck: Recheck | None = None
    """Decide again after this: at once for a sidecar without a shell, along its next path."""


def learn(
    memory: PodMemory,
    action: Stop | AddHelper | Finish,
    result: ExecResult,
    now: Monotonic,
    *,
    helper_image: str = "",
) -> Learned:
    """What carrying out ACTION came to, as RESULT says, learned at NOW: MEMORY with it folded
    in, and its Event. HELPER_IMAGE: the image an AddHelper added, for its Event."""
    if isinstance(action, Stop):
        if (resent := _resend(memory, action, result)) is not None:
            return resent
        delivery, report = report_delivery(action, result)
        memory, report = _told_once(
            _after_stop(memory, action, delivery, now), action.container_id, report
        )
        recheck = Recheck(0.0) if delivery is Delivery.NO_SHELL else None
        return Learned(memory, report, delivery, recheck)
    if isinstance(action, AddHelper):
        # The helper's own watch event (it runs) brings the pod back to decide().
        return Learned(
            *_told_once(memory, HELPER_NAME, report_helper(action, helper_image, result))
        )
    return Learned(_after_finish(memory, action, result), report_finish(action, result))


def _resend(memory: PodMemory, stop: Stop, result: ExecResult) -> Learned | None:
    """A stop that found no API server to reach, through all of the stopper's tries, is
    forgotten (a repeat is kept as one) and decided again after RESEND_AFTER, doubling, up to
    MAX_RESENDS per pod: it did not run, and an API server's restart passes. No Event: the
    next try says how it went. A server that answers, even with 500 at every try, is told at
    once (SidecarStopFailed)."""
    if not (result.unreached and stop.announce and memory.resends < MAX_RESENDS):
        return None
    if (record := _record_of(memory, stop)) is None:
        return None  # a newer stop has replaced it
    after = RESEND_AFTER * 2**memory.resends
    if stop.repeat:
        # Still the repeat of a call that may have run: sent again as that repeat, never as a
        # fresh first stop, which could go unanswered and earn a repeat of its own.
        kept = memory.with_sidecar(stop.sidecar, dataclasses.replace(record, unconfirmed=True))
    else:
        kept = _forget(memory, stop.sidecar)
    memory = dataclasses.replace(kept, resends=memory.resends + 1)
    return Learned(memory, None, Delivery.UNREACHED, Recheck(after))


def _record_of(memory: PodMemory, stop: Stop) -> SidecarRecord | None:
    """The sidecar's record, if STOP is still its last stop."""
    record = memory.sidecars.get(stop.sidecar)
    if record is None or (record.container_id, record.step, record.attempts) != (
        stop.container_id,
        stop.step,
        stop.attempt,
    ):
        return None
    return record


def _forget(memory: PodMemory, sidecar: str) -> PodMemory:
    """MEMORY without SIDECAR's stop: the next decision sends it anew."""
    sidecars = {k: v for k, v in memory.sidecars.items() if k != sidecar}
    return dataclasses.replace(memory, sidecars=sidecars)


def _after_stop(memory: PodMemory, stop: Stop, delivery: Delivery, now: Monotonic) -> PodMemory:
    """Folds how STOP went, learned at NOW, into the pod's memory.

    DELIVERED: the sidecar's grace period runs from NOW, when the stop got through, not from the
    decision: the stopper may have spent seconds retrying a refused exec.

    UNCONFIRMED (no answer: it may have run): as DELIVERED, and marked, so that a sidecar still
    running when its grace period ends gets the same step once more (`escalate.stop_or_wait`),
    not the next: a stronger stop could end it with the wrong exit code.

    FAILED (the API refused the exec after the stopper's own retries, or a stop sent once more
    went unanswered again): the stop did not get through. No more stops for this run, and no
    later SidecarUnstoppable that would blame the sidecar: SidecarStopFailed has said why, and the
    sweeper's Terminate, which forgets the pod's stops, is what tries again.

    NO_SHELL in the sidecar itself: forget that stop and remember the image has no shell, so that
    the next decision sends the same step through the helper instead."""
    if delivery in (Delivery.DELIVERED, Delivery.UNCONFIRMED, Delivery.FAILED):
        if (record := _record_of(memory, stop)) is None:
            return memory  # a newer stop has replaced it
        if delivery is Delivery.FAILED:
            learned = dataclasses.replace(record, exhausted=True)
        else:
            unconfirmed = delivery is Delivery.UNCONFIRMED
            learned = dataclasses.replace(record, acted_at=now, unconfirmed=unconfirmed)
        return memory.with_sidecar(stop.sidecar, learned)
    if delivery is not Delivery.NO_SHELL or stop.container != stop.sidecar:
        return memory
    forgotten = _forget(memory, stop.sidecar)
    return dataclasses.replace(forgotten, no_shell=memory.no_shell | {stop.sidecar})


def _told_once(
    memory: PodMemory, about: str, report: Report | None
) -> tuple[PodMemory, Report | None]:
    """REPORT, unless it is a SidecarStopFailed already told about ABOUT (a sidecar's run, or the
    helper) in the same words: the sweep's Terminate sends the same stop again, and a refusal
    told once is not worth a Warning at every sweep. Other Reports tell of a new stop, and pass."""
    if report is None or report.reason is not Reason.SIDECAR_STOP_FAILED:
        return memory, report
    told = memory.tell_once(once_key(Told.STOP_FAILED, about, report.message))
    return (memory, None) if told is None else (told, report)


def _after_finish(memory: PodMemory, finish: Finish, result: ExecResult) -> PodMemory:
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
