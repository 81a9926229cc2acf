"""What the runtime needs of the adapters, as Protocols: the runtime takes these, not the adapters'
classes, so that anything with the same methods serves (the unit tests' fakes, tests/unit/fakes.py).

The adapters' classes fit them without naming them: `Executor` is an `Exec`, `HelperAdder` a
`HelperAdd`, `StatusWriter` a `StatusWrite`, and `Reads` each of the read ports. Every call
blocks; the runtime makes them off the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from tandem.core import ExecResult, Finish, RunAs

T = TypeVar("T")


class Exec(Protocol):
    """Runs a command in a container (`Stop`s)."""

    def run(
        self, namespace: str, pod: str, container: str, argv: tuple[str, ...], timeout: float
    ) -> ExecResult: ...


class HelperAdd(Protocol):
    """Adds the ephemeral helper container; IMAGE is the helper's image."""

    @property
    def image(self) -> str: ...

    def add(
        self, namespace: str, pod: str, target: str, run_as: RunAs, timeout: float
    ) -> ExecResult: ...


class StatusWrite(Protocol):
    """Writes a pod's terminal phase through pods/status (`Finish`)."""

    def finish(self, namespace: str, pod: str, finish: Finish, timeout: float) -> ExecResult: ...


class SweepReads(Protocol):
    """The sweeper's reads and deletes: Jobs listed once per sweep, a pod deleted with
    preconditions (False when it was gone or had changed)."""

    def jobs(self, namespace: str | None, keep: Callable[[dict[str, Any]], T]) -> list[T]: ...

    def delete_pod(
        self,
        namespace: str,
        name: str,
        grace_seconds: int | None,
        uid: str,
        resource_version: str,
    ) -> bool: ...


class PeeringReads(Protocol):
    """The peering check's questions: the HTTP status of a GET of the ClusterKopfPeering NAME,
    and whether this identity may VERB a cluster-scoped resource."""

    def peering_answer(self, name: str) -> int: ...

    def may(self, verb: str, group: str, resource: str, name: str = "") -> bool: ...
