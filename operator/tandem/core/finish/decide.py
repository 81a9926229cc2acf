"""The decision core: pod in, actions out. Pure; the runtime carries out what it returns.

`handle` takes one pod event: whose pod it is (the gate), which policy applies, then `decide`,
which reads the pod (its primaries ended?, their outcome, unknown containers) and takes one of two
roads to a `Decision`: the phase road (`phase/`) or the exec road (`exec/`).

Level-based: `decide` looks only at the pod as it is now and at what Tandem remembers having done,
so the same event twice, events out of order, or a restart of the operator change nothing harmful.
Each step takes the decision so far (a `Part`) and returns a new one; `decide` makes the
`Decision` from the last, once.

Whose pod it is (`managed_job_pod`) is the one gate before Tandem acts on a pod. Tandem execs into
a pod, adds its helper, writes its phase or deletes it only when a Job runs it: its controller
ownerReference names a batch/v1 Job, its restartPolicy is one a Job allows, and it is in a
namespace Tandem watches. A `batch.kubernetes.io/job-name` label proves nothing: anyone who may
create a pod can set it, on a bare pod or in a ReplicaSet's template, and a phase written on a pod
whose kubelet would restart its containers (`restartPolicy: Always`) ends a pod that was meant to
run on, and its controller makes another.

`handle` asks it before deciding (every pod event, re-check and sweep re-run goes through it), and
the sweep's `select` asks again before it deletes or reports.

Pods that no Job owns (`without_job`) are a double opt-in: the operator's (--pods-without-job)
and a SidecarPolicy's in the pod's namespace (`podsWithoutJob`), never an annotation alone; and
never a pod whose controller replaces it (a ReplicaSet's), nor one whose kubelet restarts its
containers. The sweep leaves them alone: with no Job, nothing says a pod is orphaned.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable

from ..model.actions import Action, Outcome, Phase, Report, Stop
from ..model.clocks import Monotonic
from ..model.names import FINISHED_ANNOTATION, PRIMARY_ANNOTATION, EventType, Reason
from ..model.once import OnceKey, Told, once_key
from ..model.states import ContainerState, RestartPolicy
from ..model.view import JOB_CONTROLLER, PodView, Termination
from ..policy.policy import (
    REPLACING_CONTROLLERS,
    FinishMode,
    OnPrimaryFailure,
    Policy,
    PolicyError,
    PolicySource,
    resolve,
)
from .decision import DEFAULT_SETTINGS, Context, CoreSettings, Decision, Part, PodMemory
from .exec.escalate import stop_or_wait
from .exec.verify import verify
from .phase.finish import finish_by_phase, phase_for, tell_ended_by_itself
from .phase.no_exec import finish_without_exec

__all__ = [
    "Decision",
    "PrimariesEnded",
    "decide",
    "handle",
    "managed_job_pod",
    "primaries_ended",
    "sidecars_of",
    "without_job",
]

# Whose pod it is: the gate.


JOB_RESTART_POLICIES = (RestartPolicy.NEVER, RestartPolicy.ON_FAILURE)
"""The only restart policies the API server admits in a Job's pod template."""


def managed_job_pod(view: PodView, watched: Collection[str] = ()) -> str:
    """'' when VIEW is a Job's pod that Tandem may act on; otherwise why it is not, in words for an
    Event. WATCHED: the namespaces the operator watches (empty: the whole cluster)."""
    if watched and view.namespace not in watched:
        return f"its namespace {view.namespace} is not one that Tandem watches"
    owner = view.controller
    if owner is None:
        return (
            "no Job controls it (no ownerReference with controller: true), and a job-name label "
            "alone proves nothing"
        )
    kind, api_version = JOB_CONTROLLER
    if (owner.kind, owner.api_version) != JOB_CONTROLLER:
        return (
            f"its controller is {owner.kind or 'an unnamed kind'} {owner.name} "
            f"({owner.api_version or 'no apiVersion'}), not a {api_version} {kind}"
        )
    if not (owner.name and owner.uid):
        return "its Job ownerReference names no Job (its name or uid is empty)"
    if view.restart_policy not in JOB_RESTART_POLICIES:
        return (
            f"its restartPolicy is {view.restart_policy}: its kubelet restarts containers that "
            "exit, which no Job's pod does (a Job allows Never or OnFailure)"
        )
    return ""


def without_job(view: PodView, policy: Policy | None) -> str:
    """'' when VIEW, a pod no Job controls, is one that POLICY opts in (spec.podsWithoutJob), the
    operator allowing such pods; otherwise why not, in words for an Event."""
    owner = view.controller
    if owner is not None and owner.kind in REPLACING_CONTROLLERS:
        return f"its controller, {owner.kind} {owner.name}, replaces the pods it loses"
    if view.restart_policy not in JOB_RESTART_POLICIES:
        return (
            f"its restartPolicy is {view.restart_policy}: its kubelet restarts containers that "
            "exit, so it does not run to completion"
        )
    if policy is None or policy.policy_name is None or policy.without_job is None:
        return (
            "no Job controls it, and no SidecarPolicy in its namespace opts in pods without a "
            "Job (podsWithoutJob; an annotation alone never does)"
        )
    allowed = policy.without_job
    if owner is None:
        if allowed.bare:
            return ""
        return (
            f"no controller owns it, and SidecarPolicy {policy.policy_name} does not opt bare "
            "pods in (podsWithoutJob.bare)"
        )
    if (owner.kind, owner.api_version) in allowed.controllers:
        return ""
    return (
        f"its controller is {owner.kind} {owner.name} ({owner.api_version}), which SidecarPolicy "
        f"{policy.policy_name} does not name in podsWithoutJob.controllers"
    )


# One pod event: the gate, the policy, then the decision.


def _once(memory: PodMemory, key: OnceKey, report: Report) -> Decision:
    told = memory.tell_once(key)
    return Decision((), memory) if told is None else Decision((report,), told)


def _not_a_job_pod(
    view: PodView, memory: PodMemory, why: str, watched: Collection[str], opt_in: bool = False
) -> Decision:
    """No action, and one Event only where it helps: a pod Tandem acted on while a Job controlled
    it (its Job was deleted with --cascade=orphan) is told Tandem lets it go; a pod whose author
    opted it in by annotation, and would otherwise wait for a finish that never comes, gets a
    Warning. A pod that merely carries the job-name label (or that a policy's selector matches)
    gets none, nor does one outside the watched namespaces, where Tandem posts nothing."""
    if watched and view.namespace not in watched:
        return Decision((), memory)
    if memory.acted or memory.finished:
        report = Report(
            EventType.NORMAL,
            Reason.NOT_A_JOB_POD,
            f"Tandem no longer acts on this pod: {why}.",
        )
    elif PRIMARY_ANNOTATION in view.annotations:
        report = Report(
            EventType.WARNING,
            Reason.NOT_A_JOB_POD,
            f"Tandem leaves this pod alone although it carries {PRIMARY_ANNOTATION}: {why}. "
            + (
                "Tandem acts only on pods that a Job creates, and on those that a SidecarPolicy "
                "opts in with podsWithoutJob."
                if opt_in
                else "Tandem acts only on pods that a Job creates."
            ),
        )
    else:
        return Decision((), memory)
    return _once(memory, once_key(Told.NOT_A_JOB_POD), report)


def handle(
    view: PodView,
    candidates: Iterable[PolicySource],
    memory: PodMemory,
    now: Monotonic,
    settings: CoreSettings = DEFAULT_SETTINGS,
) -> Decision:
    """Resolves the pod's policy from its annotations and CANDIDATES, then decides.

    Only for a Job's pod in a namespace the operator watches (SETTINGS.watched, empty: all), or,
    with SETTINGS.pods_without_job (the operator's opt-in), a pod no Job owns that its
    SidecarPolicy opts in (`without_job`): any other gets no action at all, and at most one Event
    (`_not_a_job_pod`). Unusable annotations and several matching policies are reported once per
    pod, not per event.
    """
    watched = settings.watched
    why = managed_job_pod(view, watched)
    if why and (not settings.pods_without_job or (watched and view.namespace not in watched)):
        return _not_a_job_pod(view, memory, why, watched)
    try:
        resolution = resolve(view.labels, view.annotations, candidates)
    except PolicyError as error:
        if why:  # No Job's pod, and no policy to say otherwise.
            return _not_a_job_pod(view, memory, why, watched, opt_in=True)
        return _once(
            memory,
            once_key(Told.INVALID_ANNOTATION),
            Report(
                EventType.WARNING,
                Reason.INVALID_ANNOTATION,
                f"{error}. Tandem leaves this pod alone until the annotation is fixed.",
            ),
        )
    if why and (why := without_job(view, resolution.policy)):
        return _not_a_job_pod(view, memory, why, watched, opt_in=True)
    notes: tuple[Action, ...] = ()
    if resolution.conflict:
        conflict = _once(
            memory,
            once_key(Told.CONFLICT),
            Report(
                EventType.WARNING,
                Reason.POLICY_CONFLICT,
                f"SidecarPolicies {', '.join(resolution.conflict)} all select this pod; "
                f"{resolution.conflict[0]} applies (the first by name). Narrow their selectors.",
            ),
        )
        notes, memory = conflict.actions, conflict.memory
    decision = decide(view, resolution.policy, memory, now, settings)
    return dataclasses.replace(decision, actions=notes + decision.actions)


# What to do.


@dataclasses.dataclass(frozen=True)
class PrimariesEnded:
    key: str
    """Identifies this ended run of the primaries (their container IDs)."""
    outcome: Outcome
    summary: str


def ended_run(view: PodView, name: str) -> Termination | None:
    status = view.status(name)
    if status.state == ContainerState.TERMINATED:
        return status.terminated
    # Under OnFailure a failed primary waits in back-off before its restart: that run has ended.
    # One whose last run exited 0 waits only because the kubelet will start it again: under
    # OnFailure it restarts an exit 0 only after killing the container itself (a failed
    # liveness or startup probe, a changed spec), whatever the exit code. That run was cut
    # short, not finished, and the primary is about to run again.
    if status.state == ContainerState.WAITING and view.restart_policy == RestartPolicy.ON_FAILURE:
        last = status.last_terminated
        return last if last is not None and last.exit_code != 0 else None
    return None


def primaries_ended(view: PodView, primaries: tuple[str, ...]) -> PrimariesEnded | None:
    """The primaries' outcome once every one of them has ended; None while any still runs."""
    runs = [(name, ended_run(view, name)) for name in primaries]
    ended = [(name, run) for name, run in runs if run is not None]
    if not runs or len(ended) < len(runs):
        return None
    return PrimariesEnded(
        key=",".join(f"{name}={run.container_id or run.finished_at}" for name, run in ended),
        outcome=Outcome.SUCCESS if all(r.exit_code == 0 for _, r in ended) else Outcome.FAILURE,
        summary=", ".join(
            f"{n} exited {r.exit_code} ({r.reason or 'no reason'})" for n, r in ended
        ),
    )


def sidecars_of(view: PodView, policy: Policy) -> tuple[str, ...]:
    chosen = policy.sidecars if policy.sidecars is not None else view.containers
    return tuple(c for c in chosen if c not in policy.primaries)


def may_be_selected_later(view: PodView) -> bool:
    """Without a usable policy the primaries are unknown, and a SidecarPolicy created (or fixed)
    later brings no pod event. So the sweep keeps any running pod in which some container ended:
    its own policy resolution decides."""
    return not (view.terminal or view.deleting) and any(
        status.state == ContainerState.TERMINATED for status in view.statuses.values()
    )


def unknown_containers(view: PodView, policy: Policy) -> tuple[str, ...]:
    named = (*policy.primaries, *(policy.sidecars or ()))
    return tuple(n for n in dict.fromkeys(named) if n not in view.containers)


def will_not_restart(view: PodView, memory: PodMemory, name: str, attempt_key: str) -> bool:
    """Under OnFailure, a sidecar that exited 0 stays down, and one Tandem could not stop runs
    on: either way the primaries would re-run without it restarting in tandem."""
    status = view.status(name)
    if (
        status.state == ContainerState.TERMINATED
        and status.terminated
        and status.terminated.exit_code == 0
    ):
        return True
    record = memory.sidecars.get(name)
    return (
        record is not None
        and record.attempt_key == attempt_key
        and record.exhausted
        and record.container_id == status.container_id
        and status.state == ContainerState.RUNNING
    )


def decide(
    view: PodView,
    policy: Policy | None,
    memory: PodMemory,
    now: Monotonic,
    settings: CoreSettings = DEFAULT_SETTINGS,
) -> Decision:
    """What to do for VIEW under POLICY, given MEMORY of earlier decisions, at time NOW, within
    the operator's SETTINGS (the helper, exec, and whether the kubelets keep a written phase)."""
    part = Part(memory)
    if policy is None:
        sweepable = may_be_selected_later(view)
    elif missing := unknown_containers(view, policy):
        sweepable = may_be_selected_later(view)
        part = part.tell_once(
            once_key(Told.UNKNOWN),
            Report(
                EventType.WARNING,
                Reason.UNKNOWN_CONTAINER,
                f"{policy.source} names {', '.join(missing)}, but the pod's regular containers are "
                f"{', '.join(view.containers) or 'none'} (init containers and native sidecars are "
                "never managed). Fix the container names; Tandem leaves this pod alone until then.",
            ),
        )
    else:
        for name in sidecars_of(view, policy):
            if (record := part.memory.sidecars.get(name)) is not None:
                part = verify(part, view, name, record)
        ended = primaries_ended(view, policy.primaries)
        if ended is not None:
            ctx = Context(view, policy, ended.key, ended.outcome, now, settings)
            part = _after_primaries(part, ctx, ended)
        # A pod that carries Tandem's finish is the kubelet's to stop (`finish._not_kept` waits
        # it out): the sweep must not take it for stuck or orphaned and run the stop again.
        sweepable = (
            ended is not None
            and not view.terminal
            and not view.deleting
            and FINISHED_ANNOTATION not in view.annotations
        )
    return part.decision(policy, sweepable=sweepable)


def _after_primaries(part: Part, ctx: Context, ended: PrimariesEnded) -> Part:
    """What follows the primaries' ENDED run: the road that finishes the pod, if any."""
    view, policy = ctx.view, ctx.policy
    if view.terminal and part.memory.finished == ended.key:
        part = tell_ended_by_itself(part, ctx, f"primaries ended ({ended.summary})")
    if view.terminal or view.deleting or part.memory.gave_up:
        return part
    if (
        ended.outcome is Outcome.FAILURE
        and view.restart_policy == RestartPolicy.ON_FAILURE
        and policy.on_primary_failure is OnPrimaryFailure.KEEP
    ):
        return part
    sidecars = sidecars_of(view, policy)
    outcome = f"primaries ended ({ended.summary}): outcome {ended.outcome}"
    if not ctx.settings.exec_stops:
        return finish_without_exec(part, ctx, sidecars, outcome)
    by_phase = ctx.settings.kubelet_keeps_phase and policy.finish is FinishMode.PHASE
    if by_phase and (phase := phase_for(view.restart_policy, ended.outcome)) is not None:
        # With no sidecar left running, the kubelet ends the pod by itself: nothing to write.
        if any(view.status(n).state == ContainerState.RUNNING for n in sidecars) or (
            part.memory.finished == ended.key
        ):
            part = finish_by_phase(part, ctx, phase, sidecars, outcome)
        return part
    # The sidecars' steps, apart: their first stops make the PrimariesFinished Event.
    stopping = Part(part.memory)
    for name in sidecars:
        stopping = stop_or_wait(stopping, ctx, name)
    part = part.then(stopping)
    stranded = [n for n in sidecars if will_not_restart(view, part.memory, n, ended.key)]
    if by_phase and stranded:
        why = (
            f"{outcome}; {', '.join(stranded)} will not restart with them, so Tandem replaces "
            "the pod: the Job starts a new one"
        )
        return finish_by_phase(part, ctx, Phase.FAILED, sidecars, why)
    stops = [a for a in stopping.actions if isinstance(a, Stop) and a.step == 0]
    if not stops:
        return part
    return part.tell_once(
        once_key(Told.ENDED, ended.key),
        Report(
            EventType.NORMAL,
            Reason.PRIMARIES_FINISHED,
            f"primaries ended ({ended.summary}): outcome {ended.outcome}; stopping "
            + ", ".join(f"{s.sidecar} with {s.action.describe()} via {s.path}" for s in stops)
            + f" ({policy.source})",
            on_job=True,
            tally=ended.outcome.tally,
        ),
    )
