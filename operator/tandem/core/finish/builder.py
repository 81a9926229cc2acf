"""The scratchpad of one `decide` call: the actions so far and the memory being updated."""

from __future__ import annotations

import dataclasses

from ..model.actions import Action, Recheck, Report
from ..model.memory import PodMemory, SidecarRecord
from ..model.once import OnceKey
from ..policy.policy import Policy


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


class Builder:
    def __init__(self, memory: PodMemory) -> None:
        self.memory = memory
        self.actions: list[Action] = []
        self.recheck: float | None = None
        self.sweepable = False

    def add(self, action: Action) -> None:
        self.actions.append(action)

    def recheck_after(self, seconds: float) -> None:
        """One re-check per pod, the earliest any sidecar needs (as RequeueAfter keeps)."""
        self.recheck = seconds if self.recheck is None else min(self.recheck, seconds)

    def once(self, key: OnceKey, report: Report) -> None:
        if (told := self.memory.tell_once(key)) is not None:
            self.memory = told
            self.actions.append(report)

    def record(self, name: str, record: SidecarRecord) -> None:
        self.memory = self.memory.with_sidecar(name, record)

    def build(self, policy: Policy | None = None) -> Decision:
        recheck = () if self.recheck is None else (Recheck(max(self.recheck, 0.0)),)
        return Decision(
            (*self.actions, *recheck),
            self.memory,
            policy.policy_name if policy else None,
            managed=policy is not None,
            sweepable=self.sweepable,
        )
