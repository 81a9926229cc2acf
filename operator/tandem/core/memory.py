"""What Tandem remembers about a pod between watch events: plain, frozen data owned by the runtime.

Memory only prevents repeats (acting twice on the same container run, reporting twice). Losing it
on a restart makes Tandem at worst send one more stop to a sidecar it had already stopped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from .actions import Outcome
from .clocks import Monotonic
from .routes import Path
from .stop_action import StopAction


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
    path: Path = Path.EXEC
    verified: bool = False
    exhausted: bool = False
    """The ladder ran out and the sidecar still ran: reported, no more stops for this run."""
    announce: bool = True
    """Report how the stop ended (SidecarStopped or SidecarExitMismatch); not for a graceful
    stop before a finish by phase, whose exit code does not decide the pod."""


@dataclasses.dataclass(frozen=True)
class PodMemory:
    sidecars: Mapping[str, SidecarRecord] = dataclasses.field(default_factory=dict)
    reported: frozenset[str] = frozenset()
    """Keys of one-off Events already posted."""
    gave_up: bool = False
    """Set by the loop guard: Tandem no longer acts on this pod."""
    no_shell: frozenset[str] = frozenset()
    """Sidecars whose image turned out to have no shell (an exec found no /bin/sh)."""
    helper_target: str | None = None
    """The sidecar Tandem's helper was added for; at most one helper per pod."""
    finished: str = ""
    """The ended run of the primaries (attempt key) whose phase Tandem last wrote or is writing."""
    finished_at: Monotonic | None = None
    finishes: int = 0
    """Phase writes for that run: more than one only if the phase was reverted."""

    @property
    def acted(self) -> bool:
        return bool(self.sidecars)

    def with_sidecar(self, name: str, record: SidecarRecord) -> PodMemory:
        return dataclasses.replace(self, sidecars={**self.sidecars, name: record})


def told_key(attempt_key: str) -> str:
    """The once-key of the PodFinished Event for one ended run of the primaries."""
    return f"finished:{attempt_key}"
