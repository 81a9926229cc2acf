"""Finishing a pod by its phase: the primaries' outcome written as the pod's terminal phase.

A kubelet of v1.23 or newer keeps a terminal phase that another client wrote ("API phase was
terminal, updating phase to match", kubernetes PR 105462) and its pod worker then stops the
containers that still run: each image's STOPSIGNAL, then KILL when the pod's grace period ends
(PR 102344). The Job controller counts the pod by its phase at once. So the Job's result is the
primaries' outcome, whatever a sidecar does with its signals. A graceful stop that Tandem knows
(the policy's own, or a well-known sidecar's) goes first, so such sidecars end cleanly.
"""

from __future__ import annotations

import dataclasses
import re

from . import hints
from .actions import Finish, Outcome, Phase, Report
from .builder import Builder
from .escalate import Context, send
from .known import recognised
from .memory import told_key
from .names import FINISHED_CONDITION, EventType, Reason
from .routes import HELPER_NAME, ForcedPath, can_deliver, choose_path, route
from .stop_action import ActionKind, StopAction

MIN_KUBELET = (1, 23)
"""The first kubelet that keeps an API-set terminal phase and then stops the pod's containers."""

REVERTED_AFTER = 15.0
"""Seconds after a phase write at which a pod still not terminal counts as reverted, when no
watch event has shown the revert itself."""

MAX_PHASE_WRITES = 5
"""Writes of one run's phase at most. A kubelet whose status sync was already under way when
the phase was written patches its own older phase back once (its next sync keeps ours)."""

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.")


def kubelet_keeps_phase(version: str) -> bool:
    """Whether a node's `kubeletVersion` keeps a terminal phase set through the API. Versions
    that do not parse (kwok's default for a fake node, `kwok-v0.8.0`) do not; the local cluster's
    fake node says `v1.34.4-kwok`, and kwok's stages answer the phase as such a kubelet does."""
    match = _VERSION.match(version)
    return match is not None and (int(match[1]), int(match[2])) >= MIN_KUBELET


def phase_for(restart_policy: str, outcome: Outcome) -> Phase | None:
    """The phase to write: Succeeded on success; Failed on failure under Never. Under
    OnFailure a failure restarts the primaries in the same pod, so there is none."""
    if outcome is Outcome.SUCCESS:
        return Phase.SUCCEEDED
    return Phase.FAILED if restart_policy == "Never" else None


def _known_stop(ctx: Context, name: str) -> tuple[StopAction | None, ForcedPath, str]:
    """The graceful stop Tandem knows for NAME: the policy's own (its defaultAction included),
    else a well-known sidecar's clean stop; with the forced path and where the knowledge came
    from."""
    if (explicit := ctx.policy.explicit(name)) is not None:
        return explicit.ladder(ctx.outcome is Outcome.SUCCESS)[0], explicit.path, "policy"
    if (known := recognised(ctx.view.specs, name)) is None:
        return None, ForcedPath.AUTO, ""
    return known.success_for(ctx.view.specs[name].argv), ForcedPath.AUTO, f"known: {known.name}"


def _graceful(out: Builder, ctx: Context, name: str) -> str:
    """Sends NAME the graceful stop Tandem knows for it, before the phase; says what it got."""
    action, forced, knowledge = _known_stop(ctx, name)
    left = f"{name}: the kubelet stops it"
    if not ctx.exec_stops or action is None:
        return left
    if action.kind is ActionKind.EXEC and not ctx.exec_actions:
        return left
    has_shell = name not in out.memory.no_shell
    path = choose_path(
        action,
        shared_pid=ctx.view.share_process_namespace,
        has_shell=has_shell,
        helper_enabled=False,  # Not worth a helper: the kubelet stops it in any case.
        forced=forced,
    )
    if path is None or not can_deliver(action, path):
        return left
    status = ctx.view.status(name)
    via = route(action, path, name, status.container_id, has_shell=has_shell)
    if via.container == HELPER_NAME:
        return left
    send(out, ctx, name, action, via, attempts=1, step=0, announce=False)
    return f"{name} got {action.describe()} via {path} ({knowledge})"


def finish_by_phase(
    out: Builder, ctx: Context, phase: Phase, sidecars: tuple[str, ...], why: str
) -> None:
    """Writes PHASE for the primaries' run CTX.attempt_key, after the graceful stops; writes it
    again while the pod is seen not terminal REVERTED_AFTER seconds later, up to maxAttempts."""
    memory = out.memory
    if memory.finished == ctx.attempt_key and memory.finished_at is not None:
        # Our condition on a pod that is not terminal: the kubelet patched its older phase back.
        reverted = FINISHED_CONDITION in ctx.view.conditions
        waited = ctx.now - memory.finished_at
        if not reverted and waited < REVERTED_AFTER:
            out.recheck_after(REVERTED_AFTER - waited)
            return
        if memory.finishes >= MAX_PHASE_WRITES:
            out.once(
                f"reverted:{ctx.attempt_key}",
                hints.warning(
                    Reason.POD_FINISH_REVERTED,
                    f"Tandem wrote phase {phase} {memory.finishes} times and the pod is still "
                    f"{ctx.view.phase}: its node's kubelet does not keep a phase set through the "
                    "API",
                    "set finish: ExitCodes in the SidecarPolicy (or the annotation "
                    "tandem.dev/finish), or upgrade the node's kubelet to v1.23 or newer",
                ),
            )
            return
        told = "written again: the kubelet's status sync had put the pod's phase back"
    elif memory.finished == ctx.attempt_key:
        told = "written again: the pod had changed under the first write"
    elif FINISHED_CONDITION in ctx.view.conditions:
        # Written before Tandem last started (its memory is gone), and put back by the kubelet
        # since: write it again, without the graceful stops or a second PodFinished.
        told = "written again after a restart of Tandem: the pod's phase had been put back"
        memory = dataclasses.replace(
            out.memory, reported=out.memory.reported | {told_key(ctx.attempt_key)}
        )
    else:
        running = [n for n in sidecars if ctx.view.status(n).state == "running"]
        stops = [_graceful(out, ctx, name) for name in running]
        told = "; ".join(stops) if stops else "no sidecar still runs"
        memory = dataclasses.replace(out.memory, finishes=0)
    out.memory = dataclasses.replace(
        memory, finished=ctx.attempt_key, finished_at=ctx.now, finishes=memory.finishes + 1
    )
    out.add(
        Finish(
            phase,
            ctx.attempt_key,
            ctx.view.uid,
            ctx.view.resource_version,
            f"{why}: pod finished {phase} through its status; {told} ({ctx.policy.source})",
            tally=ctx.outcome.tally,
            announce=told_key(ctx.attempt_key) not in memory.reported,
        )
    )
    out.recheck_after(REVERTED_AFTER)


def tell_ended_by_itself(out: Builder, ctx: Context, why: str) -> None:
    """The pod became terminal before Tandem's write landed (its sidecars ended on their graceful
    stops): the PodFinished Event still tells the outcome, once."""
    out.once(
        told_key(ctx.attempt_key),
        Report(
            EventType.NORMAL,
            Reason.POD_FINISHED,
            f"{why}: the pod ended {ctx.view.phase} by itself after Tandem's graceful stops "
            f"({ctx.policy.source})",
            on_job=True,
            tally=ctx.outcome.tally,
        ),
    )
