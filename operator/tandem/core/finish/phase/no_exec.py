"""An install without pods/exec (--no-exec): the pod's phase is the only way to end it."""

from __future__ import annotations

from ...model.actions import Phase
from ...model.states import ContainerState, RestartPolicy
from ..decision import Context, Part
from .finish import finish_by_phase, phase_for


def finish_without_exec(part: Part, ctx: Context, sidecars: tuple[str, ...], outcome: str) -> Part:
    """An install without pods/exec (--no-exec) has one way to end a pod: its phase, whatever the
    policy's finish asks. Under OnFailure a failure then replaces the pod, since no sidecar can be
    made to restart with the primaries. A node that does not keep the phase gets the one
    PodFinishNotKept Warning (`finish`)."""
    running = [n for n in sidecars if ctx.view.status(n).state == ContainerState.RUNNING]
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
