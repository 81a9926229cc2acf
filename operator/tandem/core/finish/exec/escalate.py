"""Escalation: one sidecar's stops, the first and then along its ladder; the helper; the loop guard.

Each stop is remembered with the sidecar run it targeted, so a run is stopped once per ladder step
(twice where the first call went unanswered and may not have run), and a step is taken only after
the grace period of the one before has passed.
"""

from __future__ import annotations

import dataclasses

from ...model.actions import Outcome
from ...model.names import Reason
from ...model.once import Told, once_key
from ...model.states import ContainerState, RestartPolicy
from ...model.stop import KILL, ActionKind, StopAction, StopPath
from ...model.view import PodView
from ...policy.known import recognised
from ...policy.policy import Policy, SidecarActions
from .. import hints
from ..decision import Context, Part
from ..routes import HELPER_NAME, can_deliver, choose_path, route
from ..send import RECHECK_SLACK, send
from .helper import WAIT, ready_helper


def sidecar_actions(view: PodView, policy: Policy, name: str) -> SidecarActions:
    """The policy's own actions for NAME if it names any; else the default ones, with a
    well-known sidecar's documented stops (`known`). Under OnFailure with a shared PID namespace
    the default failure stop is KILL: it cannot exit 0, so the sidecar restarts with the
    primaries."""
    if (explicit := policy.explicit(name)) is not None:
        return explicit
    actions = policy.default_actions
    if (known := recognised(view.specs, name)) is not None:
        argv = view.specs[name].argv
        success = known.success_for(argv)
        # Only under OnFailure must a failure's stop exit non-zero; under Never the pod fails
        # with its primaries whatever the sidecar exits with, so it gets its clean stop.
        failure = (
            known.failure_for(argv) if view.restart_policy == RestartPolicy.ON_FAILURE else success
        )
        actions = dataclasses.replace(
            actions,
            on_success=success or actions.on_success,
            on_failure=failure or actions.on_failure,
        )
    if view.share_process_namespace and view.restart_policy == RestartPolicy.ON_FAILURE:
        actions = dataclasses.replace(actions, on_failure=KILL, escalate_failure=())
    return actions


def _send(
    part: Part,
    ctx: Context,
    name: str,
    *,
    step: int,
    attempts: int,
    repeat_of: StopAction | None = None,
) -> tuple[Part, str]:
    """Sends the first deliverable step from STEP on: a repeat if it is REPEAT_OF again at STEP
    (whose first call went unanswered). Says `sent`, `waiting` (for the helper to start), or a
    reason why nothing on the ladder can reach the sidecar."""
    actions = sidecar_actions(ctx.view, ctx.policy, name)
    ladder = actions.ladder(ctx.outcome is Outcome.SUCCESS)
    status = ctx.view.status(name)
    has_shell = name not in part.memory.no_shell
    why = "its ladder has no further step"
    for index in range(step, len(ladder)):
        action = ladder[index]
        if action.kind is ActionKind.EXEC and not ctx.settings.exec_actions:
            why = (
                f"{action.describe()} is a command, and the operator runs commands a policy names "
                "only when the cluster admin allows it (--allow-exec-actions)"
            )
            continue
        path = choose_path(
            action,
            shared_pid=ctx.view.share_process_namespace,
            has_shell=has_shell,
            helper_enabled=ctx.settings.helper_enabled,
            forced=actions.path,
        )
        if path is None:
            why = (
                f"{action.describe()} needs a shell in the sidecar or Tandem's helper, and the "
                "image has none while the helper is disabled"
                if not has_shell
                else f"path {actions.path} is not possible for this pod"
            )
            continue
        if not can_deliver(action, path):
            why = (
                f"{action.describe()} cannot reach a PID 1 from inside its PID namespace "
                "(the pod has no shareProcessNamespace)"
            )
            continue
        via = route(action, path, name, status.container_id, has_shell=has_shell)
        if via.container == HELPER_NAME:
            pid_bound = path is StopPath.HELPER and action.kind is ActionKind.SIGNAL
            part, ready = ready_helper(part, ctx.view, ctx.settings.helper_image, name, pid_bound)
            if ready == WAIT:
                return part, "waiting"  # Its watch event brings us back here.
            if ready:
                why = ready
                continue
        repeat = index == step and action == repeat_of
        sent = send(part, ctx, name, action, via, attempts=attempts, step=index, repeat=repeat)
        return sent.recheck_after(ctx.policy.grace_seconds + RECHECK_SLACK), "sent"
    return part, why


def _unstoppable(part: Part, name: str, container_id: str, cause: str, after: str = "") -> Part:
    return part.tell_once(
        once_key(Told.UNSTOPPABLE, name, container_id),
        hints.warning(
            Reason.SIDECAR_UNSTOPPABLE,
            f"Tandem cannot stop {name}{after}: {cause}. It stops trying; the sweeper's policy "
            "decides what happens to the pod",
            hints.UNSTOPPABLE_FIXES,
        ),
    )


def stop_or_wait(part: Part, ctx: Context, name: str) -> Part:
    status, record = ctx.view.status(name), part.memory.sidecars.get(name)
    if status.state != ContainerState.RUNNING:
        return part
    same_attempt = record is not None and record.attempt_key == ctx.attempt_key
    if (
        record is not None
        and same_attempt
        and (record.container_id == status.container_id or ctx.outcome is Outcome.FAILURE)
    ):
        # Stopped already: this run, or on failure a run the kubelet restarted in tandem.
        if record.container_id != status.container_id or record.exhausted:
            return part
        waited = ctx.now - record.acted_at
        if waited < ctx.policy.grace_seconds:
            # Still in its grace period: look again when it ends, even if no event comes.
            return part.recheck_after(ctx.policy.grace_seconds - waited + RECHECK_SLACK)
        # A stop whose call went unanswered may not have run: the same step once more, not a
        # stronger one, which could end the sidecar with the wrong exit code.
        again = record.action if record.unconfirmed else None
        step = record.step if again is not None else record.step + 1
        part, result = _send(part, ctx, name, step=step, attempts=record.attempts, repeat_of=again)
        if result in ("sent", "waiting"):
            return part
        after = (
            f" (still running {ctx.policy.grace_seconds:g}s after "
            f"{record.action.describe()} via {record.path})"
        )
        exhausted = part.record(name, dataclasses.replace(record, exhausted=True))
        return _unstoppable(exhausted, name, status.container_id, result, after)
    attempts = record.attempts + 1 if record is not None and same_attempt else 1
    if record is not None and attempts > ctx.policy.max_attempts:
        gave_up = part.remember(dataclasses.replace(part.memory, gave_up=True))
        return gave_up.tell_once(
            once_key(Told.LOOP, name),
            hints.warning(
                Reason.SIDECAR_STOP_LOOP,
                f"{name} was stopped {record.attempts} times and restarted each time; Tandem stops "
                "acting on this pod",
                hints.mismatch_fix(1, record.action, ctx.outcome),
            ),
        )
    part, result = _send(part, ctx, name, step=0, attempts=attempts)
    if result in ("sent", "waiting"):
        return part
    return _unstoppable(part, name, status.container_id, result)
