"""One pod event, end to end in pure terms: which policy applies, then what to do."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from .actions import Action, Report
from .clocks import Monotonic
from .decide import Decision, decide
from .memory import PodMemory
from .names import EventType, Reason
from .policy import PolicyError, PolicySource, resolve
from .view import PodView


def _once(memory: PodMemory, key: str, report: Report) -> Decision:
    if key in memory.reported:
        return Decision((), memory)
    return Decision((report,), dataclasses.replace(memory, reported=memory.reported | {key}))


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
) -> Decision:
    """Resolves the pod's policy from its annotations and CANDIDATES, then decides.

    Unusable annotations and several matching policies are reported once per pod, not per event.
    """
    try:
        resolution = resolve(view.labels, view.annotations, candidates)
    except PolicyError as error:
        return _once(
            memory,
            "invalid-annotation",
            Report(
                EventType.WARNING,
                Reason.INVALID_ANNOTATION,
                f"{error}. Tandem leaves this pod alone until the annotation is fixed.",
            ),
        )
    notes: tuple[Action, ...] = ()
    if resolution.conflict:
        conflict = _once(
            memory,
            "conflict",
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
