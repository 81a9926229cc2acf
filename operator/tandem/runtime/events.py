"""Kubernetes Events through kopf: on the pod, and a summary on its Job."""

from __future__ import annotations

from typing import Any, cast

import kopf

from tandem.core import PodView, Report


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
    job = job_reference(view) if report.on_job else None
    if job is not None:
        kopf.event(
            _body(job),
            type=report.type.value,
            reason=report.reason.value,
            message=f"pod {view.name}: {report.message}",
        )
