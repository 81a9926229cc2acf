"""The adapters' fakes, shared by the unit tests. Each fits its Protocol in `tandem.runtime.ports`
(mypy checks it where a test passes one), keeps every call it gets, and answers through a
handler, as httpx's MockTransport does: a test says what the API does by the function it passes,
not by another class."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tandem.core import ExecResult, Finish, PodView, RunAs
from tandem.runtime import Settings
from tandem.runtime.reconciler import Reconciler
from tandem.runtime.stopper import Stopper

T = TypeVar("T")
OK = ExecResult(0)


@dataclass(frozen=True)
class ExecCall:
    namespace: str
    pod: str
    container: str
    argv: tuple[str, ...]
    timeout: float
    at: float = field(default_factory=time.monotonic)
    """When the call was made (monotonic)."""


def succeeds(_: object) -> ExecResult:
    return OK


def script(*answers: ExecResult) -> Callable[[object], ExecResult]:
    """A handler that gives ANSWERS in turn, the last one repeating."""
    left = list(answers)

    def answer(_: object) -> ExecResult:
        return left.pop(0) if len(left) > 1 else left[0]

    return answer


def gated(gate: threading.Event, answer: ExecResult = OK) -> Callable[[object], ExecResult]:
    """A handler that blocks until the test sets GATE (or 10 s pass), then gives ANSWER."""

    def wait(_: object) -> ExecResult:
        gate.wait(10)
        return answer

    return wait


class MockExec:
    """An `Exec`: every command run is answered by HANDLER (default: exit 0)."""

    def __init__(self, handler: Callable[[ExecCall], ExecResult] = succeeds) -> None:
        self.handler = handler
        self.calls: list[ExecCall] = []

    def run(
        self, namespace: str, pod: str, container: str, argv: tuple[str, ...], timeout: float
    ) -> ExecResult:
        call = ExecCall(namespace, pod, container, argv, timeout)
        self.calls.append(call)
        return self.handler(call)


@dataclass(frozen=True)
class FinishCall:
    namespace: str
    pod: str
    finish: Finish
    timeout: float


class MockStatus:
    """A `StatusWrite`: every phase write is answered by HANDLER (default: written)."""

    def __init__(self, handler: Callable[[FinishCall], ExecResult] = succeeds) -> None:
        self.handler = handler
        self.calls: list[FinishCall] = []

    @property
    def phases(self) -> list[str]:
        return [call.finish.phase.value for call in self.calls]

    def finish(self, namespace: str, pod: str, finish: Finish, timeout: float) -> ExecResult:
        call = FinishCall(namespace, pod, finish, timeout)
        self.calls.append(call)
        return self.handler(call)


@dataclass(frozen=True)
class HelperCall:
    namespace: str
    pod: str
    target: str
    run_as: RunAs
    timeout: float


class MockHelper:
    """A `HelperAdd` of IMAGE: every helper added is answered by HANDLER (default: added)."""

    def __init__(self, image: str, handler: Callable[[HelperCall], ExecResult] = succeeds) -> None:
        self.image = image
        self.handler = handler
        self.calls: list[HelperCall] = []

    def add(
        self, namespace: str, pod: str, target: str, run_as: RunAs, timeout: float
    ) -> ExecResult:
        call = HelperCall(namespace, pod, target, run_as, timeout)
        self.calls.append(call)
        return self.handler(call)


@dataclass
class MockReads:
    """The reads (`SweepReads`, `PeeringReads`) as a table: the Jobs listed, the peering's GET
    status and the verbs denied. An Exception in place of an answer is raised. Each call is kept
    in CALLS."""

    jobs_listed: list[dict[str, Any]] = field(default_factory=list)
    peering: int | Exception = 200
    denied: tuple[str, ...] = ()
    review: Exception | None = None
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def jobs(self, namespace: str | None, keep: Callable[[dict[str, Any]], T]) -> list[T]:
        self.calls.append(("jobs", namespace))
        return [keep(job) for job in self.jobs_listed]

    def delete_pod(
        self,
        namespace: str,
        name: str,
        grace_seconds: int | None,
        uid: str,
        resource_version: str,
    ) -> bool:
        self.calls.append(("delete", name))
        return True

    def peering_answer(self, name: str) -> int:
        self.calls.append(("peering", name))
        return _answer(self.peering)

    def may(self, verb: str, group: str, resource: str, name: str = "") -> bool:
        _answer(self.review)
        self.calls.append((verb, group, resource, name))
        return verb not in self.denied

    @property
    def deleted(self) -> list[str]:
        return [call[1] for call in self.calls if call[0] == "delete"]


def _answer(answer: T | Exception) -> T:
    if isinstance(answer, Exception):
        raise answer
    return answer


def job(uid: str = "job-uid", condition: str | None = None) -> dict[str, Any]:
    """A Job as the API lists it: running, or with the terminal CONDITION (Complete, Failed)."""
    conditions = [{"type": condition, "status": "True"}] if condition else []
    return {"metadata": {"uid": uid}, "status": {"conditions": conditions}}


def stopper(
    executor: MockExec | None = None,
    settings: Settings | None = None,
    status: MockStatus | None = None,
    helper: MockHelper | None = None,
) -> Stopper:
    """A Stopper over the fakes (an executor that succeeds, unless given)."""
    return Stopper(executor or MockExec(), helper, settings or Settings(), status=status)


class Kept(Reconciler):
    """A Reconciler whose sweepable pods are VIEWS, as if the watch had kept them: the sweep's
    input, set by the test."""

    def __init__(self, stopper: Stopper, views: Iterable[PodView] = (), **kwargs: Any) -> None:
        super().__init__(stopper, **kwargs)
        self.views = list(views)

    def sweepable(self, namespace: str | None = None) -> list[PodView]:
        return [v for v in self.views if namespace is None or v.namespace == namespace]
