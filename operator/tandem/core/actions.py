"""What `decide` asks the runtime to do. Plain data: the runtime carries it out, never decides."""

from __future__ import annotations

import dataclasses
from enum import StrEnum

from .delivery import Path
from .names import EventType, Reason
from .policy import StopAction
from .view import RunAs


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"

    @property
    def expected_exit(self) -> str:
        return "0" if self is Outcome.SUCCESS else "non-zero"

    def matches(self, exit_code: int) -> bool:
        return (exit_code == 0) == (self is Outcome.SUCCESS)


@dataclasses.dataclass(frozen=True)
class Stop:
    """Deliver ACTION to one sidecar's running container."""

    sidecar: str
    container_id: str
    action: StopAction
    outcome: Outcome
    attempt: int
    step: int
    """Position of ACTION in the sidecar's escalation ladder, from 0."""
    path: Path
    container: str
    """The container to exec into: the sidecar itself, or Tandem's helper."""
    argv: tuple[str, ...]
    """The command to exec there that delivers ACTION."""


@dataclasses.dataclass(frozen=True)
class AddHelper:
    """Add Tandem's ephemeral helper container to the pod, targeting TARGET's PID namespace."""

    target: str
    run_as: RunAs


@dataclasses.dataclass(frozen=True)
class Report:
    """An Event on the pod, and on its Job when ON_JOB."""

    type: EventType
    reason: Reason
    message: str
    on_job: bool = False
    tally: str = ""
    """The SidecarPolicy status counter this Event adds one to: `succeeded`, `failed`,
    `mismatched`, or empty."""


@dataclasses.dataclass(frozen=True)
class Recheck:
    """Run `decide` again for this pod after AFTER seconds, even if no watch event arrives."""

    after: float


Action = Stop | AddHelper | Report | Recheck
