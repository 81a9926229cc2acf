"""Whose pod it is: the one gate before Tandem acts on a pod. Pure.

Tandem execs into a pod, adds its helper, writes its phase or deletes it only when a Job runs it:
its controller ownerReference names a batch/v1 Job, its restartPolicy is one a Job allows, and it
is in a namespace Tandem watches. A `batch.kubernetes.io/job-name` label proves nothing: anyone who
may create a pod can set it, on a bare pod or in a ReplicaSet's template, and a phase written on a
pod whose kubelet would restart its containers (`restartPolicy: Always`) ends a pod that was meant
to run on, and its controller makes another.

`handle` asks before deciding (every pod event, re-check and sweep re-run goes through it), and the
sweep's `select` asks again before it deletes or reports.

Pods that no Job owns (`without_job`) are a double opt-in: the operator's (--pods-without-job)
and a SidecarPolicy's in the pod's namespace (`podsWithoutJob`), never an annotation alone; and
never a pod whose controller replaces it (a ReplicaSet's), nor one whose kubelet restarts its
containers. The sweep leaves them alone: with no Job, nothing says a pod is orphaned.
"""

from __future__ import annotations

from collections.abc import Collection

from ..model.states import RestartPolicy
from ..model.view import JOB_CONTROLLER, PodView
from .policy import REPLACING_CONTROLLERS, Policy

JOB_RESTART_POLICIES = (RestartPolicy.NEVER, RestartPolicy.ON_FAILURE)
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


def without_job(view: PodView, policy: Policy | None) -> str:
    """'' when VIEW, a pod no Job controls, is one that POLICY opts in (spec.podsWithoutJob), the
    operator allowing such pods; otherwise why not, in words for an Event."""
    owner = view.controller
    if owner is not None and owner.kind in REPLACING_CONTROLLERS:
        return f"its controller, {owner.kind} {owner.name}, replaces the pods it loses"
    if view.restart_policy not in JOB_RESTART_POLICIES:
        return (
            f"its restartPolicy is {view.restart_policy}: its kubelet restarts containers that "
            "exit, so it does not run to completion"
        )
    if policy is None or policy.policy_name is None or policy.without_job is None:
        return (
            "no Job controls it, and no SidecarPolicy in its namespace opts in pods without a "
            "Job (podsWithoutJob; an annotation alone never does)"
        )
    allowed = policy.without_job
    if owner is None:
        if allowed.bare:
            return ""
        return (
            f"no controller owns it, and SidecarPolicy {policy.policy_name} does not opt bare "
            "pods in (podsWithoutJob.bare)"
        )
    if (owner.kind, owner.api_version) in allowed.controllers:
        return ""
    return (
        f"its controller is {owner.kind} {owner.name} ({owner.api_version}), which SidecarPolicy "
        f"{policy.policy_name} does not name in podsWithoutJob.controllers"
    )
