"""What `decide` knows of its pod (`Context`), what it returns (`Decision`), and the values it is
made from (`Part`).

Every step of a decision takes the `Part` so far and returns a new one: the memory as that step
left it, with its actions appended and its re-check kept if it is the earliest. The memory is
threaded, not merged: a later sidecar's step reads what an earlier one remembered (the helper's
target, a give-up, the Events told). `decide` turns the last Part into the Decision, once.
"""

from __future__ import annotations

import dataclasses

from ..model.actions import Action, Outcome, Recheck, Report
from ..model.clocks import Monotonic
from ..model.memory import PodMemory, SidecarRecord
from ..model.once import OnceKey
from ..model.view import PodView
from ..policy.policy import Policy


@dataclasses.dataclass(frozen=True)
class Context:
    """What a decision knows of its pod once its primaries ended: the pod, its policy, which run
    ended (ATTEMPT_KEY) with what outcome, and the operator's settings that bound the stops."""

    view: PodView
    policy: Policy
    attempt_key: str
    outcome: Outcome
    now: Monotonic
    helper_image: str
    """Tandem's helper image (--helper-image); empty: the helper path is off."""
    exec_actions: bool = False
    """The cluster admin lets policies name commands to exec (--allow-exec-actions)."""
    exec_stops: bool = True
    """Tandem may exec into pods at all; without (--no-exec) pods finish by phase only."""

    @property
    def helper_enabled(self) -> bool:
        return bool(self.helper_image)


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
