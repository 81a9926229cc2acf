"""The scratchpad of one `decide` call: the actions so far and the memory being updated."""

from __future__ import annotations

import dataclasses

from .actions import Action, Report
from .memory import PodMemory, SidecarRecord
from .policy import Policy


@dataclasses.dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...]
    memory: PodMemory
    policy_name: str | None = None
    """The SidecarPolicy that applied, if any: its status counts what the actions report."""
    managed: bool = False
    """A policy applies (annotation or SidecarPolicy). The runtime keeps no state for others."""
    sweepable: bool = False
    """The sweep may act on the pod, now or once a policy selects it: its primaries (or, without
    a usable policy, any container) have ended, and it is neither terminal nor being deleted.
    The runtime keeps the bodies of these pods, so sweeps list no pods."""


class Builder:
    def __init__(self, memory: PodMemory) -> None:
        self.actions: list[Action] = []
        self.sidecars: dict[str, SidecarRecord] = dict(memory.sidecars)
        self.reported = set(memory.reported)
        self.gave_up = memory.gave_up
        self.no_shell = memory.no_shell
        self.helper_target = memory.helper_target
        self.sweepable = False

    def add(self, action: Action) -> None:
        self.actions.append(action)

    def once(self, key: str, report: Report) -> None:
        if key not in self.reported:
            self.reported.add(key)
            self.actions.append(report)

    def build(self, policy: Policy | None = None) -> Decision:
        memory = PodMemory(
            self.sidecars, frozenset(self.reported), self.gave_up, self.no_shell, self.helper_target
        )
        return Decision(
            tuple(self.actions),
            memory,
            policy.policy_name if policy else None,
            managed=policy is not None,
            sweepable=self.sweepable,
        )
