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


def after_delivery(memory: PodMemory, stop: Stop, delivery: Delivery) -> PodMemory:
    """On NO_SHELL in the sidecar itself, forget that stop and remember the image has no shell,
    so that the next decision sends the same step through the helper instead."""
    if delivery is not Delivery.NO_SHELL or stop.container != stop.sidecar:
        return memory
    sidecars = {k: v for k, v in memory.sidecars.items() if k != stop.sidecar}
    return dataclasses.replace(memory, sidecars=sidecars, no_shell=memory.no_shell | {stop.sidecar})
