"""Kopf handlers: wiring only. Each one hands its event to the module that knows what to do.

Only `kopf.on.event` and `kopf.index` touch pods, and both return None, so kopf writes nothing
on pods: no finalizers, no annotations, no status. Handlers that change things and the timers live
on SidecarPolicy, where kopf's bookkeeping is welcome.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any

import kopf

from tandem.core import Monotonic, PolicySource

from . import metrics, policies
from .reconciler import Reconciler
from .settings import Settings
from .sweeper import AnnotatedSweep, Sweeper

POLICY = ("tandem.dev", "v1alpha1", "sidecarpolicies")
_NO_POLICIES: Mapping[str, Collection[PolicySource]] = {}


def register(
    registry: kopf.OperatorRegistry,
    reconciler: Reconciler,
    sweeper: Sweeper | None,
    settings: Settings,
) -> AnnotatedSweep:
    annotated = AnnotatedSweep(sweeper, settings)

    @kopf.index(*POLICY, id="sidecar_policies", registry=registry)
    def sidecar_policies(
        *, namespace: str | None, name: str, spec: kopf.Spec, **_: Any
    ) -> dict[str, PolicySource]:
        return {namespace or "": PolicySource(name=name, spec=dict(spec))}

    @kopf.on.event("v1", "pods", registry=registry)
    async def pod_event(
        *,
        type: str,
        body: kopf.Body,
        namespace: str | None,
        sidecar_policies: Mapping[str, Collection[PolicySource]] = _NO_POLICIES,
        **_: Any,
    ) -> None:
        received = time.monotonic()
        metrics.WATCH_EVENTS.inc()
        annotated.policies = sidecar_policies
        annotated.ensure_started()
        if type == "DELETED":
            reconciler.gone(body.get("metadata", {}).get("uid", ""))
        else:
            candidates = sidecar_policies.get(namespace or "", ())
            await reconciler.react(body, candidates, Monotonic(received))
        metrics.WATCHED.set(reconciler.remembered)

    @kopf.on.event(*POLICY, registry=registry)
    def policy_event(
        *,
        type: str,
        name: str,
        spec: kopf.Spec,
        meta: kopf.Meta,
        status: kopf.Status,
        patch: kopf.Patch,
        **_: Any,
    ) -> None:
        if type != "DELETED" and (update := policies.status_patch(name, spec, meta, status)):
            patch.status.update(update)

    interval = settings.policy_status_interval

    @kopf.timer(*POLICY, interval=interval, initial_delay=interval, registry=registry)
    def policy_counters(
        namespace: str | None, name: str, status: kopf.Status, patch: kopf.Patch, **_: Any
    ) -> None:
        tally = reconciler.take_tally((namespace or "", name))
        if update := policies.counters_patch(tally, status):
            patch.status.update(update)

    if sweeper is not None:

        @kopf.timer(
            *POLICY,
            interval=settings.sweep_interval,
            initial_delay=settings.sweep_interval,
            registry=registry,
        )
        async def policy_sweep(
            namespace: str | None,
            name: str,
            spec: kopf.Spec,
            status: kopf.Status,
            patch: kopf.Patch,
            **_: Any,
        ) -> None:
            result = await sweeper.sweep_policy(namespace or "", name, spec)
            patch.status.update(
                policies.sweep_patch(result.at, result.swept, result.skipped, status)
            )

    return annotated
