"""Finishing a pod by its phase: the primaries' outcome written as the pod's terminal phase.

One write of pods/status carries the phase, Tandem's condition and the annotation
`tandem.dev/finished`. The annotation is what makes the kubelet act at once: a change to the
status alone reaches it as a reconcile, which wakes no pod worker, and its status manager then
writes its own cached phase (Running) back; a change to the metadata is an update, so the pod
worker syncs at once, keeps the API's terminal phase ("API phase was terminal, updating phase to
match", kubernetes PR 105462, v1.23+) and stops the containers that still run: each image's
STOPSIGNAL, then KILL when the pod's grace period ends. The Job controller counts the pod by its
phase. So the Job's result is the primaries' outcome, whatever a sidecar does with its signals.
A graceful stop that Tandem knows (the policy's own, or a well-known sidecar's) goes first, so
such sidecars end cleanly.

A landed write is repeated only when the kubelet put the pod back. Traced on this project's
cluster (v1.34.4, kubelet --v=4): the pod worker takes the API's phase only at its next sync,
which waits for the next PLEG relist (up to 1 s); if the status manager's reconcile tick (every
10 s) falls in that window, it writes its cached Running back, and it keeps Running while a
container could still run (its "delay transitioning to terminal"), for a sidecar that ignores its
STOPSIGNAL the whole grace period. By then the pod worker holds the terminal phase, so writing it
once more sticks: at most MAX_PUT_BACK_WRITES times. A pod still not terminal the pod's grace
period and NOT_KEPT_SLACK after the write gets one Warning, and no loop.

The stop order (`stop_groups`): sidecars that ship the pod's data stop, and are awaited, before
the others.

A log shipper or a telemetry exporter flushes on its stop, often through a proxy sidecar of the
same pod; stopped together, the proxy is gone before the last lines and spans are sent. So on the
phase road the sidecars stop in groups, by ascending order: each group but the last gets its
graceful stop and is awaited (until it has ended, or for the policy's grace period), and the last
group's stops go with the phase write, as before. The order comes from the policy's
`sidecars[].stopOrder`, else from the well-known table (`known.KnownSidecar.ships`).

The stop order does not apply under OnFailure's restart in tandem: there every sidecar must exit
non-zero for the kubelet to restart it with the primaries, at once, and the pod keeps running
(docs/sidecars.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ...model.actions import Finish, Outcome, Phase, Report, Tally
from ...model.clocks import Monotonic
from ...model.names import FINISHED_ANNOTATION, EventType, Reason
from ...model.once import Told, once_key, told_key
from ...model.states import ContainerState, RestartPolicy
from ...model.stop import ActionKind, StopAction
from ...model.view import PodView
from ...policy.known import recognised
from ...policy.stop_action import ForcedPath
from .. import hints
from ..decision import Context, Part, SidecarRecord
from ..routes import HELPER_NAME, can_deliver, choose_path, route
from ..send import RECHECK_SLACK, send

RETRY_AFTER = 5.0
"""Seconds before a phase write that did not land (refused, or no answer in time) is tried again.
One that met a changed pod (409) is tried at the pod's next event, which shows the change."""

NOT_KEPT_SLACK = 15.0
"""Seconds, beyond the pod's grace period, for the kubelet to stop the containers after the write
and report the terminal phase again."""

DEFAULT_GRACE = 30
"""The pod's terminationGracePeriodSeconds when it says none (the API server's default)."""

MAX_GRACE_WAIT = 3600
"""The longest grace period waited out before the Warning: a pod may ask for any."""

MAX_PHASE_WRITES = 3
"""Phase writes tried for one run of the primaries; each that fails is a PodFinishFailed Warning
with the fix, so a write the API keeps refusing is not tried forever."""

MAX_PUT_BACK_WRITES = 2
"""Writes of a landed phase again, each after the kubelet was seen to put the pod back to Running.
One sticks when the kubelet put it back in the window before its pod worker took the phase; the
second covers a write that met the kubelet's next one (409)."""


SHIPPER_ORDER = 1
"""A well-known shipper or exporter's order (fluent-bit, the OpenTelemetry collector, vector)."""

DEFAULT_ORDER = 5
"""Every other sidecar's: proxies, and sidecars Tandem does not know."""


def order_of(view: PodView, explicit: Mapping[str, int], name: str) -> int:
    """NAME's place in the stop order: the policy's own, else the well-known table's."""
    if name in explicit:
        return explicit[name]
    known = recognised(view.specs, name)
    return SHIPPER_ORDER if known is not None and known.ships else DEFAULT_ORDER


def stop_groups(
    view: PodView, explicit: Mapping[str, int], sidecars: tuple[str, ...]
) -> tuple[tuple[str, ...], ...]:
    """SIDECARS in groups of one order each, the first to stop first."""
    by_order: dict[int, list[str]] = {}
    for name in sidecars:
        by_order.setdefault(order_of(view, explicit, name), []).append(name)
    return tuple(tuple(by_order[key]) for key in sorted(by_order))


@dataclasses.dataclass(frozen=True)
class GroupState:
    """Where one early group stands, for the run of the primaries being finished."""

    to_stop: tuple[str, ...]
    """Members that run and have had no stop for this run yet."""
    waiting: float | None
    """Seconds until the group's grace period ends, while a stopped member still runs; None
    once every stopped member has ended or its grace period has passed."""
    late: tuple[str, ...]
    """Stopped members that still run after the grace period: no longer awaited."""
    took: float | None
    """Seconds from the group's first stop to now, once no stopped member is awaited."""


def group_state(
    view: PodView,
    records: Mapping[str, SidecarRecord],
    members: tuple[str, ...],
    *,
    attempt_key: str,
    now: Monotonic,
    grace: float,
) -> GroupState:
    """MEMBERS' progress: which still need their stop, and how long the stopped ones are awaited.
    A member with no stop Tandem can send is not awaited: the kubelet stops it with the rest."""
    to_stop, waits, sent_at, late = [], [], [], []
    for name in members:
        status = view.status(name)
        record = records.get(name)
        stopped = (
            record is not None
            and record.attempt_key == attempt_key
            and record.container_id == status.container_id
        )
        if stopped:
            assert record is not None  # for mypy
            sent_at.append(record.acted_at)
            if status.state == ContainerState.RUNNING:
                if (left := grace - (now - record.acted_at)) > 0:
                    waits.append(left)
                else:
                    late.append(name)
        elif status.state == ContainerState.RUNNING:
            to_stop.append(name)
    return GroupState(
        tuple(to_stop),
        max(waits) if waits else None,
        tuple(late),
        now - min(sent_at) if sent_at and not waits else None,
    )


def phase_for(restart_policy: str, outcome: Outcome) -> Phase | None:
    """The phase to write: Succeeded on success; Failed on failure under Never. Under
    OnFailure a failure restarts the primaries in the same pod, so there is none."""
    if outcome is Outcome.SUCCESS:
        return Phase.SUCCEEDED
    return Phase.FAILED if restart_policy == RestartPolicy.NEVER else None


def _known_stop(ctx: Context, name: str) -> tuple[StopAction | None, ForcedPath, str]:
    """The graceful stop Tandem knows for NAME: the policy's own (its defaultAction included),
    else a well-known sidecar's clean stop; with the forced path and where the knowledge came
    from."""
    if (explicit := ctx.policy.explicit(name)) is not None:
        return explicit.ladder(ctx.outcome is Outcome.SUCCESS)[0], explicit.path, "policy"
    if (known := recognised(ctx.view.specs, name)) is None:
        return None, ForcedPath.AUTO, ""
    return known.success_for(ctx.view.specs[name].argv), ForcedPath.AUTO, f"known: {known.name}"


def _graceful(part: Part, ctx: Context, name: str) -> tuple[Part, str, bool]:
    """Sends NAME the graceful stop Tandem knows for it, before the phase; says what it got, and
    whether a stop was sent."""
    action, forced, knowledge = _known_stop(ctx, name)
    left = part, f"{name}: the kubelet stops it", False
    if not ctx.settings.exec_stops or action is None:
        return left
    if action.kind is ActionKind.EXEC and not ctx.settings.exec_actions:
        return left
    has_shell = name not in part.memory.no_shell
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
    sent = send(part, ctx, name, action, via, attempts=1, step=0, announce=False)
    return sent, f"{name} got {action.describe()} via {path} ({knowledge})", True


def _in_order(
    part: Part, ctx: Context, early: tuple[tuple[str, ...], ...]
) -> tuple[Part, list[str] | None]:
    """Stops the early groups of the stop order in turn (`stop_groups`). None while one is awaited;
    once the last group is due, what each early group came to, for the Event."""
    told: list[str] = []
    for members in early:
        state = group_state(
            ctx.view,
            part.memory.sidecars,
            members,
            attempt_key=ctx.attempt_key,
            now=ctx.now,
            grace=ctx.policy.grace_seconds,
        )
        sent = False
        for name in state.to_stop:
            part, _, stopped = _graceful(part, ctx, name)
            sent = sent or stopped
        if sent or state.waiting is not None:
            wait = ctx.policy.grace_seconds if sent else state.waiting
            assert wait is not None  # for mypy
            return part.recheck_after(wait + RECHECK_SLACK), None
        names = ", ".join(members)
        if state.took is None:
            told.append(f"{names} first: nothing to await (ended, or no stop Tandem can send)")
        elif state.late:
            told.append(
                f"{names} first: {', '.join(state.late)} still ran {state.took:.1f} s after its "
                "stop, the next sidecars were stopped all the same"
            )
        else:
            told.append(f"{names} first: ended {state.took:.1f} s after their stop")
    return part, told


def finish_by_phase(
    part: Part, ctx: Context, phase: Phase, sidecars: tuple[str, ...], why: str
) -> Part:
    """Writes PHASE for the primaries' run CTX.attempt_key, after the graceful stops: once, unless
    the write did not land."""
    memory = part.memory
    if FINISHED_ANNOTATION in ctx.view.annotations:
        # Written (by this Tandem or one before its restart), and the pod is not terminal.
        return _put_back(part, ctx, phase, why)
    if memory.finished == ctx.attempt_key:
        if memory.written or memory.finishes >= MAX_PHASE_WRITES:
            return part  # An older view than the write's own event; or given up, as told.
        if memory.finished_at is not None:
            if (wait := RETRY_AFTER - (ctx.now - memory.finished_at)) > 0:
                return part.recheck_after(wait)
            told = "written again: the first write did not land"
        else:
            told = "written again: the pod had changed under the first write"
    else:
        *groups, last = stop_groups(ctx.view, ctx.policy.stop_order, sidecars) or ((),)
        part, early = _in_order(part, ctx, tuple(groups))
        if early is None:
            return part  # An early group of the stop order is stopping: the phase waits for it.
        stops: list[str] = []
        for name in last:
            if ctx.view.status(name).state == ContainerState.RUNNING:
                part, stop, _ = _graceful(part, ctx, name)
                stops.append(stop)
        told = "; ".join(stops) if stops else "no sidecar still runs"
        if early:
            told = f"stop order: {'; '.join(early)}; then {told}"
        memory = dataclasses.replace(part.memory, finishes=0, written=False, put_backs=0)
    part = part.remember(
        dataclasses.replace(
            memory, finished=ctx.attempt_key, finished_at=ctx.now, finishes=memory.finishes + 1
        )
    )
    message = f"{why}: pod finished {phase} through its status; {told} ({ctx.policy.source})"
    return _write(part, ctx, phase, message, tally=ctx.outcome.tally)


def _write(
    part: Part,
    ctx: Context,
    phase: Phase,
    message: str,
    *,
    tally: Tally | None = None,
    again: bool = False,
) -> Part:
    """The phase write for CTX's pod as it was seen (its uid and resourceVersion), with a re-check:
    a write that does not land is tried again; one that lands needs no re-check."""
    finish = Finish(
        phase,
        ctx.attempt_key,
        ctx.view.uid,
        ctx.view.resource_version,
        message,
        tally=tally,
        again=again,
    )
    return part.add(finish).recheck_after(RETRY_AFTER)


def _put_back(part: Part, ctx: Context, phase: Phase, why: str) -> Part:
    """A pod that carries Tandem's annotation but is not terminal: the kubelet wrote its own
    Running back (see the module's docstring), or it does not keep an API-set phase. The same
    phase is written again, at most MAX_PUT_BACK_WRITES times; then `_not_kept`."""
    memory = part.memory
    if memory.finished != ctx.attempt_key or memory.finished_at is None:
        # Written by a Tandem before a restart, which told PodFinished then: not told again.
        memory = dataclasses.replace(
            memory.tell_once(told_key(ctx.attempt_key)) or memory,
            finished=ctx.attempt_key,
            finished_at=ctx.now,
            written=True,
        )
    if (
        ctx.view.annotations[FINISHED_ANNOTATION] != phase
        or memory.put_backs >= MAX_PUT_BACK_WRITES
    ):
        return _not_kept(part.remember(memory), ctx, phase)
    part = part.remember(dataclasses.replace(memory, put_backs=memory.put_backs + 1))
    message = (
        f"{why}: phase {phase} written again, the kubelet had put the pod back to "
        f"{ctx.view.phase or 'no phase'}"
    )
    return _write(part, ctx, phase, message, again=True)


def _not_kept(part: Part, ctx: Context, phase: Phase) -> Part:
    """A pod written and put back as often as Tandem writes it: waited out for the pod's grace
    period and NOT_KEPT_SLACK from the first write (from Tandem's start, if it restarted since);
    then one Warning. Never written again."""
    memory = part.memory
    assert memory.finished_at is not None  # for mypy: set by `_put_back`
    grace = min(
        ctx.view.grace_period if ctx.view.grace_period is not None else DEFAULT_GRACE,
        MAX_GRACE_WAIT,
    )
    if (wait := grace + NOT_KEPT_SLACK - (ctx.now - memory.finished_at)) > 0:
        return part.recheck_after(wait)
    return part.tell_once(
        once_key(Told.NOT_KEPT, ctx.attempt_key),
        hints.warning(
            Reason.POD_FINISH_NOT_KEPT,
            f"Tandem wrote phase {phase} with the annotation {FINISHED_ANNOTATION}, and the pod "
            f"is {ctx.view.phase or 'not terminal'} {grace + NOT_KEPT_SLACK:g} s later (its grace "
            "period and some): its node's kubelet did not keep a phase set through the API; "
            "Tandem does not write it again",
            "for pods on such nodes (a kubelet outside Kubernetes' version skew, or a node that "
            "is not a kubelet), set finish: ExitCodes in the SidecarPolicy (or the annotation "
            "tandem.dev/finish)"
            + (
                ""
                if ctx.settings.exec_stops
                else " and opt their namespace into exec (the label tandem.dev/exec=allowed, with "
                "deploy/components/exec or the chart's exec.enabled): without exec, ExitCodes is "
                "finished by phase too"
            ),
        ),
    )


def tell_ended_by_itself(part: Part, ctx: Context, why: str) -> Part:
    """The pod is terminal, and Tandem's write was not seen to land: the pod ended by itself (its
    sidecars ended on their graceful stops), or the write landed and its answer was lost (the pod
    carries Tandem's annotation). The PodFinished Event still tells the outcome, once."""
    if FINISHED_ANNOTATION in ctx.view.annotations:
        how = f"pod finished {ctx.view.phase} through its status (Tandem's write landed)"
    else:
        how = f"the pod ended {ctx.view.phase} by itself after Tandem's graceful stops"
    return part.tell_once(
        told_key(ctx.attempt_key),
        Report(
            EventType.NORMAL,
            Reason.POD_FINISHED,
            f"{why}: {how} ({ctx.policy.source})",
            on_job=True,
            tally=ctx.outcome.tally,
        ),
    )
