"""`tandem explain`: why a Job pod is where it is, from the same pure code the operator runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from .finish.decide import managed_job_pod, primaries_ended, sidecars_of, unknown_containers
from .model.names import Reason
from .model.states import ContainerState
from .model.view import ContainerView, PodView
from .policy.policy import PolicyError, PolicySource, resolve


@dataclasses.dataclass(frozen=True)
class ContainerLine:
    name: str
    role: str
    """`primary`, `sidecar`, `other` (a regular container Tandem leaves alone) or `native`."""
    state: str
    exit_code: int | None
    restarts: int


@dataclasses.dataclass(frozen=True)
class EventLine:
    time: str
    type: str
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class Explanation:
    pod: str
    namespace: str
    phase: str
    managed: bool
    why_managed: str
    containers: tuple[ContainerLine, ...]
    events: tuple[EventLine, ...]
    status: str
    """What Tandem is waiting for, or why it cannot act, with the fix."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _line(name: str, role: str, status: ContainerView) -> ContainerLine:
    run = status.terminated or (
        status.last_terminated if status.state == ContainerState.WAITING else None
    )
    return ContainerLine(
        name, role, status.state, run.exit_code if run else None, status.restart_count
    )


def _events(raw: Iterable[Mapping[str, Any]]) -> tuple[EventLine, ...]:
    lines = [
        EventLine(
            str(e.get("lastTimestamp") or e.get("eventTime") or ""),
            str(e.get("type", "")),
            str(e.get("reason", "")),
            str(e.get("message", "")),
        )
        for e in raw
        if e.get("reportingComponent") == "tandem"
    ]
    return tuple(sorted(lines, key=lambda line: line.time))


def _status(
    view: PodView,
    events: tuple[EventLine, ...],
    primaries: tuple[str, ...],
    sidecars: tuple[str, ...],
) -> str:
    if view.terminal:
        return f"finished: the pod is {view.phase}; nothing left to do"
    last = {e.reason: e for e in events}
    blockers = (Reason.SIDECAR_UNSTOPPABLE, Reason.SIDECAR_STOP_LOOP, Reason.SIDECAR_STOP_FAILED)
    for blocker in blockers:
        if blocker in last:
            return f"Tandem cannot finish this pod: {last[blocker].message}"
    ended = primaries_ended(view, primaries)
    if ended is None:
        running = [p for p in primaries if view.status(p).state != ContainerState.TERMINATED]
        return f"waiting for the primaries to end: {', '.join(running)} still running"
    alive = [s for s in sidecars if view.status(s).state == ContainerState.RUNNING]
    if not alive:
        return "every sidecar has ended; the kubelet is about to set the pod's phase"
    return (
        f"the primaries ended ({ended.summary}, outcome {ended.outcome}); stopping "
        f"{', '.join(alive)} (see the Events)"
    )


def explain(
    view: PodView, policies: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]]
) -> Explanation:
    """Whether Tandem manages the pod and why, its containers, what Tandem did, and what it waits
    for or why it cannot act. POLICIES: the SidecarPolicies of the pod's namespace."""
    sources = [PolicySource(str(p["metadata"]["name"]), p.get("spec") or {}) for p in policies]
    lines = _events(events)
    natives = tuple(
        ContainerLine(n, "native", "left to the kubelet", None, 0) for n in view.init_containers
    )

    def unmanaged(why: str, status: str) -> Explanation:
        containers = tuple(_line(n, "other", view.status(n)) for n in view.containers)
        return Explanation(
            view.name, view.namespace, view.phase, False, why, containers + natives, lines, status
        )

    if why := managed_job_pod(view):
        return unmanaged(why, "not managed: Tandem acts only on pods that a Job creates")
    try:
        resolution = resolve(view.labels, view.annotations, sources)
    except PolicyError as error:
        return unmanaged(str(error), f"not managed: {error}")
    policy = resolution.policy
    if policy is None:
        return unmanaged(
            "no tandem.dev/primary annotation, and no SidecarPolicy in namespace "
            f"{view.namespace} selects its labels {dict(view.labels)}",
            "not managed: add the annotation tandem.dev/primary, or a policy",
        )
    sidecars = sidecars_of(view, policy)

    def role(name: str) -> str:
        return "primary" if name in policy.primaries else "sidecar" if name in sidecars else "other"

    containers = tuple(_line(n, role(n), view.status(n)) for n in view.containers) + natives
    why = policy.source + (
        f" (also selected by {', '.join(resolution.conflict[1:])})" if resolution.conflict else ""
    )
    if missing := unknown_containers(view, policy):
        status = (
            f"cannot act: {', '.join(missing)} is not a regular container of this pod; fix "
            "the annotation or the policy"
        )
    else:
        status = _status(view, lines, policy.primaries, sidecars)
    return Explanation(view.name, view.namespace, view.phase, True, why, containers, lines, status)
