"""What Tandem remembers about a pod between watch events: plain, frozen data owned by the runtime.

Memory only prevents repeats (acting twice on the same container run, reporting twice). Losing it
on a restart makes Tandem at worst send one more stop to a sidecar it had already stopped, and
gives a stuck pod MAX_RERUNS more re-runs by the sweep.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from .actions import Outcome
from .clocks import Monotonic
from .once import OnceKey, tell_once
from .stop import StopAction, StopPath

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
