"""Replicas meet in the ClusterKopfPeering, also when Tandem watches chosen namespaces: a
KopfPeering would live in a watched namespace, where that namespace's users could edit it."""

from __future__ import annotations

import kopf
import pytest
from kopf._cogs.structs import references
from kopf._core.engines.peering import guess_selectors  # what kopf's orchestrator watches
from kopf._core.intents.causes import Activity

from tandem.adapters import Configuration
from tandem.runtime.operator import build_registry, kopf_settings
from tandem.runtime.settings import Settings

CLUSTER_PEERINGS = [references.CLUSTER_PEERINGS_K, references.CLUSTER_PEERINGS_Z]


def started(settings: Settings) -> kopf.OperatorSettings:
    """Kopf's settings as the peering sees them: made by kopf_settings, overwritten the way
    kopf.operator() does from its watch scope, then Tandem's startup handlers run."""
    config = kopf_settings(settings)
    config.peering.clusterwide = settings.clusterwide  # kopf.operator(namespaces=...) does this
    # The reconciler is only captured by the pod handlers, never called here.
    registry = build_registry(settings, Configuration(), reconciler=None, sweeper=None)
    for handler in registry._activities.get_handlers(activity=Activity.STARTUP):
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
