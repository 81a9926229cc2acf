"""Builds the kopf operator from Settings and runs it."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import Iterable
from typing import Any

import kopf

from tandem.adapters import (
    Configuration,
    Executor,
    HelperAdder,
    Reads,
    StatusWriter,
    connection_parameters,
    load_configuration,
)
from tandem.core.model.names import GROUP, JOB_NAME_LABEL
from tandem.core.sweep import SweepAction, SweepRules

from . import handlers, metrics, peering
from .ports import PeeringReads
from .reconciler import Reconciler
from .settings import Settings
from .stopper import WRITE_CONCURRENCY, Stopper
from .sweeper import NamespaceBudget, Sweeper

logger = logging.getLogger("tandem")


class NoDiffBase(kopf.DiffBaseStorage):
    """Tandem has no on.create/update/delete handlers, so kopf never needs the last-handled state;
    its default storage would still deep-copy every pod body on every watch event."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def kopf_settings(settings: Settings) -> kopf.OperatorSettings:
    config = kopf.OperatorSettings()
    # Kopf's own marks carry Tandem's prefix, and land only on SidecarPolicies.
    config.persistence.finalizer = f"{GROUP}/finalizer"
    config.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    config.persistence.diffbase_storage = NoDiffBase()
    # Non-Job pods never reach the operator: the API server filters them. With pods without a
    # Job allowed, every pod does (the cost: docs/pods-without-job.md).
    job_pods = "" if settings.pods_without_job else JOB_NAME_LABEL
    selector = ",".join(s for s in (job_pods, settings.pod_selector) if s)
    config.watching.label_selectors["v1", "pods"] = selector
    # The initial list in small pages: the heap keeps the high-water mark of one response, and a
    # tenant's pods may each carry 256 KiB of annotations (500 such pods: 497 MiB at 500 a page,
    # 207 MiB at 50; docs/benchmarks.md).
    config.watching.chunk_size = 50
    # Kopf's per-pod worker waits this long for the pod's next event before it exits, holding
    # the last body: at the default, the whole initial list stays alive at once.
    config.queueing.idle_timeout = 0.5
    config.watching.server_timeout = 300
    config.watching.client_timeout = 330
    config.posting.reporting_component = "tandem"
    config.posting.reporting_instance = os.environ.get("POD_NAME") or socket.gethostname()
    config.posting.event_name_prefix = "tandem-"
    config.peering.standalone = not settings.peering
    if settings.peering:
        config.peering.name = settings.peering
        config.peering.mandatory = True
        # The ClusterKopfPeering, also when Tandem watches chosen namespaces: a KopfPeering lives in
        # a watched namespace, where that namespace's users could edit it (a fake peer of higher
        # priority pauses every replica). kopf.operator() resets this from its own scope, so
        # `peer_cluster_wide` sets it again at startup.
        config.peering.clusterwide = True
        config.peering.lifetime = settings.peering_lifetime
        config.peering.priority = (
            settings.priority if settings.priority is not None else seniority(time.time())
        )
    # No CRD or namespace scanning: it would need cluster-wide list/watch on both. The CRD must
    # exist when the operator starts (deploy/ installs it first).
    config.scanning.disabled = True
    config.execution.max_workers = 32
    return config


def seniority(started: float) -> int:
    """A peering priority that ranks replicas by when they STARTED (epoch seconds), the oldest
    highest: a new replica (a rollout's, or the one replacing a dead one) stands by instead of
    taking over from the replica that acts, which may have stops under way that the newcomer,
    knowing nothing of them, would send again. Milliseconds, then 20 random bits so that two
    replicas never tie (Kopf pauses every replica of equal priority); below 2**62, an int64."""
    return ((1 << 42) - int(started * 1000)) << 20 | random.getrandbits(20)


def sweep_rules(settings: Settings) -> SweepRules:
    return SweepRules(
        action=SweepAction(settings.sweep_action),
        stuck_after=settings.stuck_after,
        max_actions=settings.sweep_max_actions,
        deletion_enabled=settings.sweep_allow_delete,
    )


def peer_cluster_wide(registry: kopf.OperatorRegistry) -> None:
    """Keeps the peering cluster-wide when the operator watches chosen namespaces. kopf.operator()
    overwrites settings.peering.clusterwide with its watch scope after kopf_settings() made them;
    startup handlers run after that and before any peering task starts."""

    @kopf.on.startup(registry=registry)
    def cluster_wide_peering(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.peering.clusterwide = True


def build_registry(
    settings: Settings,
    configuration: Configuration,
    reconciler: Reconciler,
    sweeper: Sweeper | None,
    reads: PeeringReads,
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    annotated_sweep = handlers.register(registry, reconciler, sweeper, settings)
    peer_cluster_wide(registry)
    if settings.peering:
        peering.register(registry, reads, settings.peering)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(**connection_parameters(configuration))

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await annotated_sweep.stop()
        await reconciler.close()

    return registry


async def serve(settings: Settings, stop_flag: asyncio.Event | None = None) -> None:
    """Runs the operator until STOP_FLAG is set or a signal arrives."""
    configuration = load_configuration(settings.kubeconfig)
    threads = settings.exec_concurrency
    helper = (
        HelperAdder(configuration, settings.helper_image, threads)
        if settings.helper_image
        else None
    )
    reads = Reads(settings.kubeconfig)
    stopper = Stopper(
        Executor(configuration), helper, settings, StatusWriter(configuration, WRITE_CONCURRENCY)
    )
    reconciler = Reconciler(
        stopper,
        watched=settings.namespaces,
        pods_without_job=settings.pods_without_job,
    )
    sweeper = (
        Sweeper(
            reads,
            reconciler,
            sweep_rules(settings),
            NamespaceBudget(settings.sweep_max_actions, settings.sweep_interval),
        )
        if settings.sweep_interval > 0
        else None
    )
    metrics.serve(settings.metrics_port, settings.listen_address)
    host = settings.listen_address
    host = f"[{host}]" if ":" in host else host  # an IPv6 address in a URL
    liveness = f"http://{host}:{settings.liveness_port}/healthz" if settings.liveness_port else None
    scope: dict[str, Any] = (
        {"clusterwide": True} if settings.clusterwide else {"namespaces": list(settings.namespaces)}
    )
    logger.info("tandem starting: %s, pod selector %r", scope, settings.pod_selector or "(none)")
    await kopf.operator(
        registry=build_registry(settings, configuration, reconciler, sweeper, reads),
        settings=kopf_settings(settings),
        standalone=not settings.peering,
        liveness_endpoint=liveness,
        stop_flag=stop_flag,
        **scope,
    )
