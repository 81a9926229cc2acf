"""The runtime's reporting path: every Event the core writes is posted, counted in
`tandem_events_total` and, when it carries a tally, added to its SidecarPolicy's counters. The
sweeper's Events go through the same path as the reconciler's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import kopf
import pytest
from prometheus_client import REGISTRY

from tandem.adapters import ExecResult
from tandem.core import PolicySource
from tandem.core.sweep import SweepAction, SweepRules
from tandem.runtime import Settings
from tandem.runtime.reconciler import Reconciler
from tandem.runtime.stopper import Stopper
from tandem.runtime.sweeper import Sweeper

from .pods import pod, running, status, terminated

POSTED: list[dict[str, Any]] = []


@pytest.fixture(autouse=True)
def _no_kopf_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf.event needs the queue that only kopf's handlers have; record instead."""
    POSTED.clear()

    def event(body: Any, *, type: str, reason: str, message: str) -> None:
        POSTED.append({"body": body, "type": type, "reason": reason, "message": message})

    monkeypatch.setattr(kopf, "event", event)


class Succeeds:
    def run(
        self, namespace: str, pod: str, container: str, argv: tuple[str, ...], timeout: float
    ) -> ExecResult:
        return ExecResult(0)


def _events_total(reason: str) -> float:
    value = REGISTRY.get_sample_value("tandem_events_total", {"reason": reason, "type": "Normal"})
    return value or 0.0


def _ended(namespace: str, uid: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    body = pod(
        ["main", "proxy"],
        [status("main", terminated(0, f"m-{uid}")), status("proxy", running(f"p-{uid}"))],
        labels=dict(labels or {}),
        uid=uid,
    )
    body["metadata"]["namespace"] = namespace
    return body


def test_policies_with_one_name_in_two_namespaces_keep_their_own_counters() -> None:
    policy = PolicySource("p", {"selector": {}, "primaryContainers": ["main"]})
    reconciler = Reconciler(Stopper(Succeeds(), None, Settings()))  # type: ignore[arg-type]

    async def two_pods() -> None:
        await reconciler.reconcile(_ended("a", "u1"), [policy], 0.0)
        await reconciler.reconcile(_ended("a", "u2"), [policy], 0.0)
        await reconciler.reconcile(_ended("b", "u3"), [policy], 0.0)
        await reconciler.close()

    asyncio.run(two_pods())
    assert dict(reconciler.take_tally(("b", "p"))) == {"handled": 1, "succeeded": 1}
    assert dict(reconciler.take_tally(("a", "p"))) == {"handled": 2, "succeeded": 2}
    assert not any(reconciler.take_tally(("a", "p")).values())  # taken: the next write adds 0


class _Watched:
    """What the sweeper reads from the reconciler: the kept bodies, and when it last acted."""

    def __init__(self, bodies: list[dict[str, Any]], restart: Callable[..., Any]) -> None:
        self.bodies = bodies
        self.restart = restart

    def sweepable(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.bodies

    def last_acted(self) -> dict[str, float]:
        return {}


class _NoJobs:
    def jobs(self, namespace: str | None, keep: Any) -> list[Any]:
        return []


def test_the_sweepers_events_are_counted() -> None:
    body = _ended("ns", "orphan")
    body["metadata"]["annotations"] = {"tandem.dev/primary": "main"}
    reconciler = Reconciler(Stopper(Succeeds(), None, Settings()))  # type: ignore[arg-type]
    reconciler.sweepable = lambda namespace=None: [body]  # type: ignore[method-assign]
    sweeper = Sweeper(
        _NoJobs(),  # type: ignore[arg-type]
        reconciler,
        SweepRules(action=SweepAction.REPORT),
    )
    before = _events_total("PodSwept")
    result = asyncio.run(sweeper.sweep_annotated(lambda _: ()))
    assert result.swept == 0  # a dry run
    assert [e["reason"] for e in POSTED] == ["PodSwept", "PodSwept"]  # the pod, and its Job
    assert _events_total("PodSwept") == before + 1


def test_the_reconciler_keeps_one_pending_recheck_per_pod_the_earliest() -> None:
    reconciler = Reconciler(Stopper(Succeeds(), None, Settings()))  # type: ignore[arg-type]

    async def three() -> list[float]:
        for after in (30.0, 40.0, 10.0):
            reconciler._schedule_recheck("u1", after)
        pending = [due for due, _ in reconciler._rechecks.values()]
        await reconciler.close()
        return pending

    [due] = asyncio.run(three())
    assert due - time.monotonic() < 10.5
