"""Replicas meet in the ClusterKopfPeering, also when Tandem watches chosen namespaces: a
KopfPeering would live in a watched namespace, where that namespace's users could edit it."""

from __future__ import annotations

import asyncio
import inspect
import logging

import kopf
import pytest
from kopf._cogs.structs import references
from kopf._core.engines.peering import guess_selectors  # what kopf's orchestrator watches
from kopf._core.intents.causes import Activity

from tandem.adapters import Configuration
from tandem.runtime import peering
from tandem.runtime.operator import build_registry, kopf_settings
from tandem.runtime.settings import Settings

CLUSTER_PEERINGS = [references.CLUSTER_PEERINGS_K, references.CLUSTER_PEERINGS_Z]


def started(settings: Settings) -> kopf.OperatorSettings:
    """Kopf's settings as the peering sees them: made by kopf_settings, overwritten the way
    kopf.operator() does from its watch scope, then Tandem's startup handlers run."""
    config = kopf_settings(settings)
    config.peering.clusterwide = settings.clusterwide  # kopf.operator(namespaces=...) does this
    # The reconciler is only captured by the pod handlers, never called here.
    registry = build_registry(settings, Configuration(), reconciler=None, sweeper=None, reads=None)
    for handler in registry._activities.get_handlers(activity=Activity.STARTUP):
        if not inspect.iscoroutinefunction(handler.fn):  # The peering check asks the API.
            handler.fn(settings=config, logger=None, memo=None)
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


@pytest.mark.parametrize(
    ("answer", "may_patch", "says"),
    [
        (200, True, []),
        (404, True, ["'tandem-a' does not exist", "acts on no pod", "--peering"]),
        (403, False, ["may not read", "resourceNames [tandem-a]", "list and watch"]),
        (200, False, ["may not write", "resourceNames [tandem-a]"]),
        (404, False, ["does not exist", "may not write"]),
        (500, True, ["answered HTTP 500"]),
    ],
)
def test_the_peering_check_says_what_is_wrong_and_how_to_fix_it(
    answer: int, may_patch: bool, says: list[str]
) -> None:
    found = peering.problem("tandem-a", answer, may_patch)
    if not says:
        assert found is None
    else:
        assert found is not None and all(s in found for s in says), found


class _Reads:
    """What the startup check asks of the API: a GET's status, and an access review."""

    def __init__(self, answer: int | Exception, may_patch: bool = True) -> None:
        self.answer, self.may_patch = answer, may_patch
        self.asked: list[tuple[str, ...]] = []

    def peering_answer(self, name: str) -> int:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def may(self, verb: str, group: str, resource: str, name: str) -> bool:
        self.asked.append((verb, group, resource, name))
        return self.may_patch


def _run_check(reads: _Reads, settings: Settings) -> list[str]:
    registry = build_registry(settings, Configuration(), None, None, reads=reads)  # type: ignore[arg-type]
    checks = [
        h.fn
        for h in registry._activities.get_handlers(activity=Activity.STARTUP)
        if inspect.iscoroutinefunction(h.fn)
    ]
    for check in checks:
        asyncio.run(check(settings=None, logger=None, memo=None))
    return [c.__name__ for c in checks]


def test_a_missing_peering_is_one_error_line_and_the_start_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reads = _Reads(404)
    with caplog.at_level(logging.INFO, logger="tandem.peering"):
        assert _run_check(reads, Settings(peering="tandem-a")) == ["peering_check"]
    [record] = caplog.records
    assert record.levelno == logging.ERROR and "does not exist" in record.getMessage()
    assert reads.asked == [("patch", "kopf.dev", "clusterkopfpeerings", "tandem-a")]


def test_a_check_that_cannot_ask_warns_and_the_start_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="tandem.peering"):
        _run_check(_Reads(ConnectionError("refused")), Settings(peering="tandem-a"))
    [record] = caplog.records
    assert record.levelno == logging.WARNING and "refused" in record.getMessage()


def test_standalone_has_no_peering_check() -> None:
    assert _run_check(_Reads(404), Settings(namespaces=("jobs",))) == []
