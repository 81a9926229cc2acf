"""What the runtime learned by carrying out a Stop, folded back into the pod's memory."""

from __future__ import annotations

import dataclasses
from enum import StrEnum

from .actions import Stop
from .memory import PodMemory


class Delivery(StrEnum):
    DELIVERED = "delivered"
    NO_SHELL = "no-shell"
    """The exec found no /bin/sh (or kill) in the container: a distroless image."""
    GONE = "gone"
    FAILED = "failed"


def after_delivery(memory: PodMemory, stop: Stop, delivery: Delivery, now: float) -> PodMemory:
    """Folds how STOP went, learned at NOW, into the pod's memory.

    DELIVERED: the sidecar's grace period runs from NOW, when the stop got through, not from the
    decision: the stopper may have spent seconds retrying a refused exec.

    FAILED (the API refused the exec, or it timed out, after the stopper's own retries): the stop
    did not get through. No more stops for this run, and no later SidecarUnstoppable that would
    blame the sidecar: SidecarStopFailed has said why, and the sweeper's Terminate, which forgets
    the pod's memory, is what tries again.

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
        return dataclasses.replace(memory, sidecars={**memory.sidecars, stop.sidecar: learned})
    if delivery is not Delivery.NO_SHELL or stop.container != stop.sidecar:
        return memory
    sidecars = {k: v for k, v in memory.sidecars.items() if k != stop.sidecar}
    return dataclasses.replace(memory, sidecars=sidecars, no_shell=memory.no_shell | {stop.sidecar})
