"""What a decision is made of: what Tandem remembers of a pod between watch events (`PodMemory`),
what `decide` knows of its pod (`Context`), the values each step takes and returns (`Part`), and
what `decide` returns (`Decision`).

The memory is plain, frozen data that the runtime keeps per pod. It only prevents repeats (acting
twice on the same container run, reporting twice). Losing it on a restart makes Tandem at worst
send one more stop to a sidecar it had already stopped, and gives a stuck pod MAX_RERUNS more
re-runs by the sweep.

Every step of a decision takes the `Part` so far and returns a new one: the memory as that step
left it, with its actions appended and its re-check kept if it is the earliest. The memory is
threaded, not merged: a later sidecar's step reads what an earlier one remembered (the helper's
target, a give-up, the Events told). `decide` turns the last Part into the Decision, once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ..model.actions import Action, Outcome, Recheck, Report
from ..model.clocks import Monotonic
from ..model.once import OnceKey, tell_once
from ..model.stop import StopAction, StopPath
from ..model.view import PodView
from ..policy.policy import Policy

MAX_RESENDS = 5
"""Stops sent again per pod after the API server could not be reached at all, through all of
the stopper's tries: an outage (a restart of the API server) passes, and the stop did not run.
Then, as for any stop that did not get through, the sweep's Terminate."""

MAX_RERUNS = 3
"""Re-runs of the whole stop by the sweep's Terminate, for one run of the primaries. A sidecar that
sat out its ladder four times (the first stop and three re-runs), or an API server that refused
the exec as often, will rarely give way at the fifth, and each re-run costs execs and Events: after
that the sweep reports the pod and leaves it to a person (or to a Delete policy). A new run of the
primaries starts again from none. Each re-run may send a stop whose call goes unanswered once more
(`Delivery.UNCONFIRMED`), so at most two calls per re-run."""


@dataclasses.dataclass(frozen=True)
class SidecarRecord:
    """The last stop Tandem sent to one sidecar."""

    attempt_key: str
    """Which ended run of the primaries the stop answered."""
    container_id: str
    """The sidecar's run that was stopped."""
    outcome: Outcome
    action: StopAction
    acted_at: Monotonic
    """When the stop was decided, then when it got through (the grace period runs from there)."""
    attempts: int
    """Stops sent for this attempt_key, one per sidecar run."""
    step: int = 0
    """Where on the escalation ladder the last stop was."""
    path: StopPath = StopPath.EXEC
    verified: bool = False
    unconfirmed: bool = False
    """The stop's call ended without an answer (`Delivery.UNCONFIRMED`): if the sidecar still runs
    when its grace period ends, the same step is sent once more."""
    exhausted: bool = False
    """The ladder ran out and the sidecar still ran: reported, no more stops for this run."""
    announce: bool = True
    """Report how the stop ended (SidecarStopped or SidecarExitMismatch); not for a graceful
    stop before a finish by phase, whose exit code does not decide the pod."""


@dataclasses.dataclass(frozen=True)
class PodMemory:
    sidecars: Mapping[str, SidecarRecord] = dataclasses.field(default_factory=dict)
    reported: frozenset[OnceKey] = frozenset()
    """Keys of one-off Events already posted (`once_key`)."""
    gave_up: bool = False
    """Set by the loop guard: Tandem no longer acts on this pod."""
    no_shell: frozenset[str] = frozenset()
    """Sidecars whose image turned out to have no shell (an exec found no /bin/sh)."""
    helper_target: str | None = None
    """The sidecar Tandem's helper was added for; at most one helper per pod."""
    finished: str = ""
    """The ended run of the primaries (attempt key) whose phase Tandem last wrote or is writing."""
    finished_at: Monotonic | None = None
    """When that write was last tried; None after it met a changed pod (409)."""
    finishes: int = 0
    """Phase writes tried for that run: more than one only if a write did not land."""
    written: bool = False
    """That write landed. It is repeated only after the kubelet put the phase back (put_backs)."""
    put_backs: int = 0
    """Writes of that phase again, each after the kubelet put the pod back to Running."""
    swept: str = ""
    """The ended run of the primaries (attempt key) that the sweep's Terminate last re-ran."""
    reruns: int = 0
    """Terminate re-runs of that run."""
    resends: int = 0
    """Stops sent again because the API server could not be reached (`learn`)."""

    @property
    def acted(self) -> bool:
        return bool(self.sidecars)

    def tell_once(self, key: OnceKey) -> PodMemory | None:
        """This memory with KEY told, or None if it has told KEY already (`once.tell_once`)."""
        told = tell_once(self.reported, key)
        return None if told is None else dataclasses.replace(self, reported=told)

    def with_sidecar(self, name: str, record: SidecarRecord) -> PodMemory:
        return dataclasses.replace(self, sidecars={**self.sidecars, name: record})

    def reruns_of(self, attempt_key: str) -> int:
        return self.reruns if self.swept == attempt_key else 0

    def rerun_refused(self, attempt_key: str) -> str:
        """Why the sweep's Terminate must not re-run the stop for the run ATTEMPT_KEY, or ''."""
        if self.gave_up:
            return (
                "Tandem's loop guard gave up on it (SidecarStopLoop): each stop only made the "
                "kubelet restart the sidecar"
            )
        if (done := self.reruns_of(attempt_key)) >= MAX_RERUNS:
            return (
                f"Terminate re-ran the stop {done} times for this run of its primaries, the most "
                "it tries; fix the sidecar's stop, or delete the pod"
            )
        return ""

    def rerun(self, attempt_key: str, *, helper_added: bool) -> PodMemory:
        """The memory with which the sweep's Terminate handles the pod again: its stops and phase
        writes are forgotten, so the ladder runs again from its first step. Kept, so that a stuck
        pod is not told the same at every sweep nor re-run forever: what was reported, the loop
        guard and the re-runs, and which images have no shell. The helper is added once per pod:
        forgotten only if adding it did not land (not HELPER_ADDED). A field added later is
        forgotten until it is listed here."""
        return PodMemory(
            reported=self.reported,
            gave_up=self.gave_up,
            no_shell=self.no_shell,
            helper_target=self.helper_target if helper_added else None,
            swept=attempt_key,
            reruns=self.reruns_of(attempt_key) + 1,
        )


@dataclasses.dataclass(frozen=True)
class CoreSettings:
    """The operator's settings that a decision reads (the runtime's `Settings` holds them all).
    The defaults are a bare core's: no helper, no policy commands, exec stops allowed, kubelets
    not said to keep the phase, every namespace, Job pods only."""

    helper_image: str = ""
    """Tandem's helper image (--helper-image); empty: the helper path is off."""
    kubelet_keeps_phase: bool = False
    """The pods' kubelets keep a terminal phase written through the API (`phase.finish`): the
    operator says so for every pod (each kubelet its Kubernetes allows does); off, a pod is
    finished by phase only without exec (`finish_without_exec`), and by exit codes with it."""
    exec_actions: bool = False
    """The cluster admin lets policies name commands to exec (--allow-exec-actions)."""
    exec_stops: bool = True
    """Tandem may exec into pods at all; without (--no-exec) pods finish by phase only."""
    watched: tuple[str, ...] = ()
    """The namespaces the operator watches (empty: all): the core acts on no pod outside."""
    pods_without_job: bool = False
    """The operator's opt-in to pods that no Job owns (--pods-without-job); a SidecarPolicy must
    opt them in too (`decide.without_job`)."""

    @property
    def helper_enabled(self) -> bool:
        return bool(self.helper_image)


DEFAULT_SETTINGS = CoreSettings()


@dataclasses.dataclass(frozen=True)
class Context:
    """What a decision knows of its pod once its primaries ended: the pod, its policy, which run
    ended (ATTEMPT_KEY) with what outcome, and the operator's settings that bound the stops."""

    view: PodView
    policy: Policy
    attempt_key: str
    outcome: Outcome
    now: Monotonic
    settings: CoreSettings


@dataclasses.dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...]
    """At most one Recheck among them, the earliest needed."""
    memory: PodMemory
    policy_name: str | None = None
    """The SidecarPolicy that applied, if any (in the pod's namespace): its status counts what
    the actions report."""
    managed: bool = False
    """A policy applies (annotation or SidecarPolicy). The runtime keeps no state for others."""
    sweepable: bool = False
    """The sweep may act on the pod, now or once a policy selects it: its primaries (or, without
    a usable policy, any container) have ended, and it is neither terminal nor being deleted.
    The runtime keeps the bodies of these pods, so sweeps list no pods."""


@dataclasses.dataclass(frozen=True)
class Part:
    """A decision so far: the memory as its steps left it, their actions in order, and the
    earliest re-check any of them needs (one per pod, as RequeueAfter keeps)."""

    memory: PodMemory
    actions: tuple[Action, ...] = ()
    recheck: float | None = None

    def add(self, action: Action) -> Part:
        return dataclasses.replace(self, actions=(*self.actions, action))

    def remember(self, memory: PodMemory) -> Part:
        return dataclasses.replace(self, memory=memory)

    def record(self, name: str, record: SidecarRecord) -> Part:
        return self.remember(self.memory.with_sidecar(name, record))

    def tell_once(self, key: OnceKey, report: Report) -> Part:
        """REPORT added, and KEY remembered, unless an Event with KEY was told already."""
        if (told := self.memory.tell_once(key)) is None:
            return self
        return self.remember(told).add(report)

    def recheck_after(self, seconds: float) -> Part:
        earliest = seconds if self.recheck is None else min(self.recheck, seconds)
        return dataclasses.replace(self, recheck=earliest)

    def then(self, after: Part) -> Part:
        """This part followed by AFTER, a part started from this one's memory (`Part(memory)`):
        AFTER's memory, both parts' actions in order, the earlier re-check."""
        joined = dataclasses.replace(after, actions=(*self.actions, *after.actions))
        return joined if self.recheck is None else joined.recheck_after(self.recheck)

    def decision(self, policy: Policy | None, *, sweepable: bool) -> Decision:
        recheck = () if self.recheck is None else (Recheck(max(self.recheck, 0.0)),)
        return Decision(
            (*self.actions, *recheck),
            self.memory,
            policy.policy_name if policy else None,
            managed=policy is not None,
            sweepable=sweepable,
        )
