"""Whose pod it is: the one gate before Tandem acts on a pod. Pure.

Tandem execs into a pod, adds its helper, writes its phase or deletes it only when a Job runs it:
its controller ownerReference names a batch/v1 Job, its restartPolicy is one a Job allows, and it
is in a namespace Tandem watches. A `batch.kubernetes.io/job-name` label proves nothing: anyone who
may create a pod can set it, on a bare pod or in a ReplicaSet's template, and a phase written on a
pod whose kubelet would restart its containers (`restartPolicy: Always`) ends a pod that was meant
to run on, and its controller makes another.

`handle` asks before deciding (every pod event, re-check and sweep re-run goes through it), and the
sweep's `select` asks again before it deletes or reports.
"""

from __future__ import annotations

from collections.abc import Collection

from ..model.view import JOB_CONTROLLER, PodView

JOB_RESTART_POLICIES = ("Never", "OnFailure")
"""The only restart policies the API server admits in a Job's pod template."""


def managed_job_pod(view: PodView, watched: Collection[str] = ()) -> str:
    """'' when VIEW is a Job's pod that Tandem may act on; otherwise why it is not, in words for an
    Event. WATCHED: the namespaces the operator watches (empty: the whole cluster)."""
    if watched and view.namespace not in watched:
        return f"its namespace {view.namespace} is not one that Tandem watches"
    owner = view.controller
    if owner is None:
        return (
            "no Job controls it (no ownerReference with controller: true), and a job-name label "
            "alone proves nothing"
        )
    kind, api_version = JOB_CONTROLLER
    if (owner.kind, owner.api_version) != JOB_CONTROLLER:
        return (
            f"its controller is {owner.kind or 'an unnamed kind'} {owner.name} "
            f"({owner.api_version or 'no apiVersion'}), not a {api_version} {kind}"
        )
    if not (owner.name and owner.uid):
        return "its Job ownerReference names no Job (its name or uid is empty)"
    if view.restart_policy not in JOB_RESTART_POLICIES:
        return (
            f"its restartPolicy is {view.restart_policy}: its kubelet restarts containers that "
            "exit, which no Job's pod does (a Job allows Never or OnFailure)"
        )
    return ""
