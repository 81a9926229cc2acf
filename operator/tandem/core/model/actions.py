"""What the core asks the runtime to do, and what doing it came to. Plain data: the runtime carries
it out, never decides."""

from __future__ import annotations

import dataclasses
from enum import StrEnum

from .names import EventType, Reason
from .stop import StopAction, StopPath
from .view import RunAs


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"

    @property
    def expected_exit(self) -> str:
        return "0" if self is Outcome.SUCCESS else "non-zero"

    def matches(self, exit_code: int) -> bool:
        return (exit_code == 0) == (self is Outcome.SUCCESS)

    @property
    def tally(self) -> Tally:
        """The SidecarPolicy counter a pod with this outcome adds one to."""
        return Tally.SUCCEEDED if self is Outcome.SUCCESS else Tally.FAILED


class Tally(StrEnum):
    """The SidecarPolicy status counter an Event adds one to."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    MISMATCHED = "mismatched"

    @property
    def handled(self) -> bool:
        """A pod whose primaries ended and got stops: counted in `handled` too."""
        return self is not Tally.MISMATCHED


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
    path: StopPath
    container: str
    """The container to exec into: the sidecar itself, or Tandem's helper."""
    argv: tuple[str, ...]
    """The command to exec there that delivers ACTION."""
    announce: bool = True
    """Post SidecarStopSent once delivered; a graceful stop before a finish by phase is told in
    the one PodFinished Event instead."""
    user: int | None = None
    """The helper's user, when CONTAINER is Tandem's helper and the pod says it: a signal the
    kernel refuses (another user's process) is reported with it."""
    repeat: bool = False
    """The same step again: the call before it ended without an answer (`Delivery.UNCONFIRMED`)."""


class Phase(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclasses.dataclass(frozen=True)
class Finish:
    """Write PHASE as the pod's phase through pods/status, only if the pod is still the one
    seen (UID) and unchanged since (RESOURCE_VERSION): a pod that changed is decided afresh on
    its next event, so a stale view never writes a wrong phase."""

    phase: Phase
    attempt_key: str
    """The ended run of the primaries whose outcome this is."""
    uid: str
    resource_version: str
    message: str
    """What the PodFinished Event says once the phase is written."""
    tally: Tally | None = None
    again: bool = False
    """The phase written again, after the kubelet put the pod back to Running: its PodFinished
    was told with the first write."""


@dataclasses.dataclass(frozen=True)
class AddHelper:
    """Add Tandem's ephemeral helper container to the pod, targeting TARGET's PID namespace."""

    target: str
    run_as: RunAs
    """The helper's user, group and runAsNonRoot, all set (`helper.helper_user`)."""


@dataclasses.dataclass(frozen=True)
class Report:
    """An Event on the pod, and on its Job when ON_JOB."""

    type: EventType
    reason: Reason
    message: str
    on_job: bool = False
    tally: Tally | None = None


@dataclasses.dataclass(frozen=True)
class Recheck:
    """Run `decide` again for this pod after AFTER seconds, even if no watch event arrives. A
    decision holds at most one: the earliest that any sidecar needs."""

    after: float


_NO_SHELL = ("no such file or directory", "executable file not found", "not found in $path")


@dataclasses.dataclass(frozen=True)
class ExecResult:
    """What a call into a pod (an exec, or adding the helper) came to."""

    exit_code: int | None
    """The command's exit code (0 for a call that worked); None when it could not be run or did
    not finish in time."""
    stdout: str = ""
    stderr: str = ""
    error: str = ""
    """Why the command did not run to completion: empty when exit_code is set."""
    status: int = 0
    """The HTTP status of a refused call (403, 404, 429, 500, ...), else 0."""
    refused: bool = False
    """Surely turned away before it reached the pod: an error status on the exec handshake or
    the patch (all but 504), or no connection at all. Only such a call is safe to try again at
    once; one that timed out or lost its connection may have run (`may_have_run`)."""
    answered: bool = False
    """The kubelet's status of the exec came back (its error channel), whatever it says: the
    call ran to its end, even without an exit code."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def may_have_run(self) -> bool:
        """No answer: it timed out or lost its connection once it was made, so it may have run."""
        return (
            self.exit_code is None
            and not (self.refused or self.answered)
            and self.status in (0, 504)
        )

    @property
    def unreached(self) -> bool:
        """No connection to the API server at all: surely not run, and an outage passes."""
        return self.refused and self.status == 0

    @property
    def no_shell(self) -> bool:
        """The container has no /bin/sh (or kill): a distroless image."""
        text = f"{self.error} {self.stderr}".lower()
        return self.exit_code is None and any(marker in text for marker in _NO_SHELL)


Action = Stop | AddHelper | Report | Recheck | Finish
