"""Sending one stop, the step both roads share: the phase road's graceful stop before the write,
and the exec road's stops along a sidecar's ladder. What a decision knows of its pod (`Context`),
and the stop of one sidecar remembered and asked for (`send`)."""

from __future__ import annotations

import dataclasses

from ..model.actions import Outcome, Stop
from ..model.clocks import Monotonic
from ..model.memory import SidecarRecord
from ..model.stop import StopAction
from ..model.view import PodView, RunAs
from ..policy.policy import Policy
from .decision import Part
from .routes import HELPER_NAME, Route

RECHECK_SLACK = 1.0
"""Seconds after the grace period at which a silent sidecar is looked at again."""


@dataclasses.dataclass(frozen=True)
class Context:
    view: PodView
    policy: Policy
    attempt_key: str
    outcome: Outcome
    now: Monotonic
    helper_image: str
    """Tandem's helper image (--helper-image); empty: the helper path is off."""
    exec_actions: bool = False
    """The cluster admin lets policies name commands to exec (--allow-exec-actions)."""
    exec_stops: bool = True
    """Tandem may exec into pods at all; without (--no-exec) pods finish by phase only."""

    @property
    def helper_enabled(self) -> bool:
        return bool(self.helper_image)


def send(
    part: Part,
    ctx: Context,
    name: str,
    action: StopAction,
    via: Route,
    *,
    attempts: int,
    step: int,
    announce: bool = True,
) -> Part:
    """Remembers the stop of NAME's running container with ACTION, and asks for it."""
    status = ctx.view.status(name)
    in_helper = via.container == HELPER_NAME
    recorded = part.record(
        name,
        SidecarRecord(
            ctx.attempt_key,
            status.container_id,
            ctx.outcome,
            action,
            ctx.now,
            attempts,
            step=step,
            path=via.path,
            announce=announce,
        ),
    )
    return recorded.add(
        Stop(
            name,
            status.container_id,
            action,
            ctx.outcome,
            attempts,
            step,
            via.path,
            via.container,
            via.argv,
            announce=announce,
            user=ctx.view.run_as.get(via.container, RunAs()).user if in_helper else None,
        )
    )
