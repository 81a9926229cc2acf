"""Sending one stop, the step both roads share: the phase road's graceful stop before the write,
and the exec road's stops along a sidecar's ladder: the stop of one sidecar remembered and asked
for (`send`)."""

from __future__ import annotations

from ..model.actions import Stop
from ..model.stop import StopAction
from ..model.view import RunAs
from .decision import Context, Part, SidecarRecord
from .routes import HELPER_NAME, Route

RECHECK_SLACK = 1.0
"""Seconds after the grace period at which a silent sidecar is looked at again."""


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
    repeat: bool = False,
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
            repeat=repeat,
        )
    )
