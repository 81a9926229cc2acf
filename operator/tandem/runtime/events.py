"""Reports, published: each one the core writes is posted as a Kubernetes Event (through kopf, on
the pod and, for the important ones, on its Job or other owner), counted in the metrics, and
added to its SidecarPolicy's status counters. `Publisher.publish` is the one way the runtime
reports."""

from __future__ import annotations

import collections
from typing import Any, cast

import kopf

from tandem.core import PodView, Report

from . import metrics

PolicyKey = tuple[str, str]
"""A SidecarPolicy: its namespace and name."""


def pod_reference(view: PodView) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": view.name, "namespace": view.namespace, "uid": view.uid},
    }


def job_reference(view: PodView) -> dict[str, Any] | None:
    if not (view.job_name and view.job_uid):
        return None
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": view.job_name, "namespace": view.namespace, "uid": view.job_uid},
    }


def owner_reference(view: PodView) -> dict[str, Any] | None:
    """Where the important Events go besides the pod: its Job; for a pod no Job owns (opted in
    by a SidecarPolicy's podsWithoutJob), its controller, if it has one."""
    if view.job is not None:
        return job_reference(view)
    owner = view.controller
    if owner is None or not (owner.kind and owner.api_version and owner.name and owner.uid):
        return None
    return {
        "apiVersion": owner.api_version,
        "kind": owner.kind,
        "metadata": {"name": owner.name, "namespace": view.namespace, "uid": owner.uid},
    }


def _body(reference: dict[str, Any]) -> kopf.Body:
    # kopf reads only apiVersion, kind and metadata of the objects it posts Events for.
    return cast(kopf.Body, reference)


def post(view: PodView, report: Report) -> None:
    """Queues the Event; kopf posts it in the background and logs (never raises) on failure.

    Must run in the context of a kopf handler (or a task it created): kopf's event queue lives in
    a context variable that only handlers have.
    """
    kopf.event(
        _body(pod_reference(view)),
        type=report.type.value,
        reason=report.reason.value,
        message=report.message,
    )
    owner = owner_reference(view) if report.on_job else None
    if owner is not None:
        kopf.event(
            _body(owner),
            type=report.type.value,
            reason=report.reason.value,
            message=f"pod {view.name}: {report.message}",
        )


class Tallies:
    """Per SidecarPolicy (namespace and name): pods handled, succeeded, failed and mismatched
    since its status was last written."""

    def __init__(self) -> None:
        self._counts: dict[PolicyKey, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )

    def add(self, policy: PolicyKey, report: Report) -> None:
        if report.tally is None:
            return
        counts = self._counts[policy]
        counts[report.tally.value] += 1
        if report.tally.handled:
            counts["handled"] += 1

    def take(self, policy: PolicyKey) -> collections.Counter[str]:
        """The counts since the last take, which start again from zero."""
        return self._counts.pop(policy, collections.Counter())


class Publisher:
    def __init__(self) -> None:
        self.tallies = Tallies()

    def publish(self, view: PodView, report: Report, policy_name: str | None = None) -> None:
        """Posts REPORT about VIEW's pod, counts it, and tallies it for POLICY_NAME (a
        SidecarPolicy in the pod's namespace) when it carries a tally."""
        post(view, report)
        metrics.count_event(report.reason, report.type, report.tally)
        if policy_name is not None:
            self.tallies.add((view.namespace, policy_name), report)
