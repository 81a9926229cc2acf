"""Kopf handlers: wiring only. Each one hands its event to the module that knows what to do.

Only `kopf.on.event` and `kopf.index` touch pods, and both return None, so kopf writes nothing
on pods: no finalizers, no annotations, no status. Handlers that change things and the timers live
on SidecarPolicy, where kopf's bookkeeping is welcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Mapping
from typing import Any

import kopf

from tandem.core import Monotonic, PolicySource

from . import metrics, policies
from .reconciler import Reconciler
from .settings import Settings
from .sweeper import Sweeper

logger = logging.getLogger("tandem.sweeper")
POLICY = ("tandem.dev", "v1alpha1", "sidecarpolicies")
_NO_POLICIES: Mapping[str, Collection[PolicySource]] = {}


class AnnotatedSweep:
    """The sweep of annotation-only pods: one task for the operator, started by the first pod
    event so that it inherits Kopf's context (its Events queue) like any task a handler starts.
    The SidecarPolicies' sweeps are Kopf timers (`register`)."""

    def __init__(self, sweeper: Sweeper | None, settings: Settings) -> None:
        self._sweeper, self._settings = sweeper, settings
        self._task: asyncio.Task[None] | None = None
        self.policies: Mapping[str, Collection[PolicySource]] = _NO_POLICIES
        """The SidecarPolicies by namespace, as the latest pod event saw kopf's index."""

    def ensure_started(self) -> None:
        if self._sweeper is not None and self._task is None:
            self._task = asyncio.create_task(self._loop(self._sweeper))

    async def _loop(self, sweeper: Sweeper) -> None:
        while True:
            await asyncio.sleep(self._settings.sweep_interval)
            try:
                await sweeper.sweep_annotated(lambda ns: self.policies.get(ns, ()))
            except Exception:  # A failed sweep must not end the loop; the next one retries.
                logger.exception(
                    "sweep of annotation-only pods failed; next in %ss",
                    self._settings.sweep_interval,
                )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


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
