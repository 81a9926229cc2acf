"""Replicas meet in the ClusterKopfPeering, also when Tandem watches chosen namespaces: a
KopfPeering would live in a watched namespace, where that namespace's users could edit it."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any

import kopf
import pytest
from kopf._cogs.structs import references
from kopf._core.engines.peering import guess_selectors  # what kopf's orchestrator watches
from kopf._core.intents.causes import Activity

from tandem.adapters import Configuration
from tandem.runtime import peering
from tandem.runtime.operator import build_registry, kopf_settings, seniority
from tandem.runtime.reconciler import Reconciler
from tandem.runtime.settings import Settings

from .fakes import MockReads, stopper

CLUSTER_PEERINGS = [references.CLUSTER_PEERINGS_K, references.CLUSTER_PEERINGS_Z]


def started(settings: Settings) -> kopf.OperatorSettings:
    """Kopf's settings as the peering sees them: made by kopf_settings, overwritten the way
    kopf.operator() does from its watch scope, then Tandem's startup handlers run."""
    config = kopf_settings(settings)
    config.peering.clusterwide = settings.clusterwide  # kopf.operator(namespaces=...) does this
    # The reconciler is only captured by the pod handlers, never called here.
    registry = build_registry(
        settings, Configuration(), Reconciler(stopper()), sweeper=None, reads=MockReads()
    )
    for handler in registry._activities.get_handlers(activity=Activity.STARTUP):
        fn: Callable[..., object] = handler.fn  # called with what the handlers here take
        if not inspect.iscoroutinefunction(fn):  # The peering check asks the API.
            fn(settings=config, logger=None, memo=None)
    return config


@pytest.mark.parametrize("namespaces", [(), ("jobs",), ("jobs", "batch")])
def test_the_peering_is_cluster_wide_whatever_the_operator_watches(
    namespaces: tuple[str, ...],
) -> None:
    config = started(Settings(namespaces=namespaces, peering="tandem"))
    assert config.peering.clusterwide
    assert guess_selectors(config) == CLUSTER_PEERINGS
    assert (config.peering.name, config.peering.mandatory) == ("tandem", True)


def test_without_a_peering_name_the_operator_runs_standalone() -> None:
    config = started(Settings(namespaces=("jobs",)))
    assert config.peering.standalone
    assert guess_selectors(config) == []


ALL = ["get", "patch", "list", "watch"]


@pytest.mark.parametrize(
    ("exists", "denied", "says", "not_says"),
    [
        (True, [], None, []),
        (False, [], ["'tandem-a' does not exist", "acts on no pod", "restart", "--peering"], []),
        (True, ["get"], ["may not get", "resourceNames [tandem-a]"], ["Kopf stops"]),
        (True, ["patch"], ["may not patch", "Kopf stops when it cannot patch"], []),
        (None, ALL, ["may not get or patch or list or watch", "list and watch on"], []),
        (False, ["patch"], ["does not exist", "may not patch"], []),
        (None, [], ["could not tell whether"], []),
    ],
)
def test_the_peering_check_says_what_is_wrong_and_how_to_fix_it(
    exists: bool | None, denied: list[str], says: list[str] | None, not_says: list[str]
) -> None:
    found = peering.problem("tandem-a", exists, denied)
    if says is None:
        assert found is None
    else:
        assert found is not None and all(s in found for s in says), found
        assert not any(s in found for s in not_says), found


def _asked(reads: MockReads) -> list[tuple[Any, ...]]:
    """The access reviews the check made."""
    return [call for call in reads.calls if call[0] != "peering"]


def _logged(caplog: pytest.LogCaptureFixture, reads: MockReads) -> list[logging.LogRecord]:
    with caplog.at_level(logging.INFO, logger="tandem.peering"):
        asyncio.run(peering.check(reads, "tandem-a"))
    return caplog.records


def test_a_missing_peering_is_one_error_line(caplog: pytest.LogCaptureFixture) -> None:
    reads = MockReads(peering=404)
    [record] = _logged(caplog, reads)
    assert record.levelno == logging.ERROR and "does not exist" in record.getMessage()
    kind = ("kopf.dev", "clusterkopfpeerings")
    assert _asked(reads) == [
        ("get", *kind, "tandem-a"),
        ("patch", *kind, "tandem-a"),
        ("list", *kind, ""),
        ("watch", *kind, ""),
    ]


def test_a_peering_that_is_there_and_writable_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert _logged(caplog, MockReads(peering=200)) == []


def test_a_failed_review_does_not_hide_a_missing_peering(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = _logged(caplog, MockReads(peering=404, review=PermissionError("no reviews here")))
    assert [r.levelno for r in records] == [logging.WARNING, logging.ERROR]
    assert "no reviews here" in records[0].getMessage()
    assert "does not exist" in records[1].getMessage()


def test_a_check_that_cannot_ask_warns(caplog: pytest.LogCaptureFixture) -> None:
    records = _logged(caplog, MockReads(peering=ConnectionError("refused")))
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    assert "refused" in records[0].getMessage()
    assert "could not tell" in records[1].getMessage()


def _startup_checks(settings: Settings) -> list[Any]:
    reconciler = Reconciler(stopper())
    registry = build_registry(settings, Configuration(), reconciler, None, MockReads(peering=404))
    return [
        h.fn
        for h in registry._activities.get_handlers(activity=Activity.STARTUP)
        if inspect.iscoroutinefunction(h.fn)
    ]


def test_the_check_runs_beside_the_start_not_before_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Kopf serves the liveness probe only after its startup handlers: the handler must return
    at once, whatever the API server takes to answer."""
    [handler] = _startup_checks(Settings(peering="tandem-a"))

    async def start() -> tuple[bool, bool]:
        await handler(settings=None, logger=None, memo=None)
        started_only = not caplog.records
        for _ in range(100):  # the check's task, and its calls in threads
            if caplog.records:
                break
            await asyncio.sleep(0.05)
        return started_only, bool(caplog.records)

    with caplog.at_level(logging.INFO, logger="tandem.peering"):
        assert asyncio.run(start()) == (True, True)


def test_standalone_has_no_peering_check() -> None:
    assert _startup_checks(Settings(namespaces=("jobs",))) == []


def test_the_oldest_replica_outranks_every_newer_one_and_none_tie() -> None:
    """A replica that starts while another acts must stand by: taking over, it would send the
    stops the other has under way again (CI saw three sidecars signalled twice that way)."""
    now = 1_796_000_000.0  # 2026
    older = [seniority(now) for _ in range(200)]
    newer = [seniority(now + 0.001) for _ in range(200)]
    assert min(older) > max(newer)
    assert len(set(older)) > 190  # random low bits: replicas started in one millisecond differ
    assert min(newer) > 0 and max(older) < 2**62
    assert seniority(4_000_000_000.0) > 0  # still positive in 2096
    assert started(Settings(peering="tandem")).peering.priority < seniority(time.time() - 1)
    assert started(Settings(peering="tandem", priority=7)).peering.priority == 7
