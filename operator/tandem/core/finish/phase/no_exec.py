"""An install without pods/exec (--no-exec): the pod's phase is the only way to end it."""

from __future__ import annotations

from ...model.actions import Phase
from ...model.names import Reason
from ...model.once import Told, once_key
from ...model.states import ContainerState, RestartPolicy
from .. import hints
from ..decision import Context, Part
from .finish import finish_by_phase, phase_for


def finish_without_exec(
    part: Part, ctx: Context, sidecars: tuple[str, ...], outcome: str, by_phase: bool
) -> Part:
    """An install without pods/exec (--no-exec) has one way to end a pod: its phase. Under
    OnFailure a failure then replaces the pod, since no sidecar can be made to restart with
    the primaries."""
    running = [n for n in sidecars if ctx.view.status(n).state == ContainerState.RUNNING]
    if not by_phase:
        if not running:
            return part
        return part.tell_once(
            once_key(Told.NO_EXEC),
            hints.warning(
                Reason.SIDECAR_UNSTOPPABLE,
                f"{outcome}; {', '.join(running)} still run, and this Tandem may not exec "
                "into pods (--no-exec) while the pod's node does not keep a phase set "
                "through the API (its kubelet is older than v1.23, or unknown)",
                "run Tandem with pods/exec (without --no-exec) for such nodes, or upgrade "
                "the node's kubelet",
            ),
        )
    phase = phase_for(ctx.view.restart_policy, ctx.outcome) or Phase.FAILED
    if not running and part.memory.finished != ctx.attempt_key:
        return part
    why = outcome
    if phase is Phase.FAILED and ctx.view.restart_policy == RestartPolicy.ON_FAILURE:
        why += (
            "; without pods/exec its sidecars cannot restart with the primaries, so Tandem "
            "replaces the pod: the Job starts a new one"
        )
    return finish_by_phase(part, ctx, phase, sidecars, why)
