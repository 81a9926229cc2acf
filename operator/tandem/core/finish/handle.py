"""One pod event, end to end in pure terms: which policy applies, then what to do."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable

from ..model.actions import Action, Report
from ..model.clocks import Monotonic
from ..model.memory import PodMemory
from ..model.names import PRIMARY_ANNOTATION, EventType, Reason
from ..model.once import OnceKey, Told, once_key
from ..model.view import PodView
from ..policy.ownership import managed_job_pod, without_job
from ..policy.policy import PolicyError, PolicySource, resolve
from .decide import Decision, decide


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
    *,
    helper_image: str = "",
    kubelet_keeps_phase: bool = False,
    exec_actions: bool = False,
    exec_stops: bool = True,
    watched: Collection[str] = (),
    pods_without_job: bool = False,
) -> Decision:
    """Resolves the pod's policy from its annotations and CANDIDATES, then decides.

    Only for a Job's pod in a WATCHED namespace (empty: all), or, with PODS_WITHOUT_JOB (the
    operator's opt-in), a pod no Job owns that its SidecarPolicy opts in (`without_job`): any
    other gets no action at all, and at most one Event (`_not_a_job_pod`).
    Unusable annotations and several matching policies are reported once per pod, not per event.
    """
    why = managed_job_pod(view, watched)
    if why and (not pods_without_job or (watched and view.namespace not in watched)):
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
    decision = decide(
        view,
        resolution.policy,
        memory,
        now,
        helper_image=helper_image,
        kubelet_keeps_phase=kubelet_keeps_phase,
        exec_actions=exec_actions,
        exec_stops=exec_stops,
    )
    return dataclasses.replace(decision, actions=notes + decision.actions)
