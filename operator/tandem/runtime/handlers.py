"""Kopf handlers: wiring only. Each one hands its event to the module that knows what to do.

Only `kopf.on.event` and `kopf.index` touch pods, and both return None, so kopf writes nothing
on pods: no finalizers, no annotations, no status. Handlers that change things and the timer live
on SidecarPolicy, where kopf's bookkeeping is welcome.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any

import kopf

from tandem.core import PolicySource

from . import metrics, policies
from .reconciler import Reconciler

POLICY = ("tandem.dev", "v1alpha1", "sidecarpolicies")
_NO_POLICIES: Mapping[str, Collection[PolicySource]] = {}


def register(
    registry: kopf.OperatorRegistry, reconciler: Reconciler, status_interval: float
) -> None:
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
        if type == "DELETED":
            reconciler.forget(body.get("metadata", {}).get("uid", ""))
        else:
            await reconciler.reconcile(body, sidecar_policies.get(namespace or "", ()), received)
        metrics.set_watched(reconciler.remembered)

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

    @kopf.timer(*POLICY, interval=status_interval, initial_delay=status_interval, registry=registry)
    def policy_counters(name: str, status: kopf.Status, patch: kopf.Patch, **_: Any) -> None:
        if update := policies.counters_patch(reconciler.take_tally(name), status):
            patch.status.update(update)
