"""Builders of pod dicts as the API server returns them, for tests of the pure core."""

from __future__ import annotations

from typing import Any

from tandem.core import HELPER_COMMAND, HELPER_NAME


def running(cid: str) -> dict[str, Any]:
    return {"running": {"startedAt": "2026-01-01T00:00:00Z"}, "_id": cid}


def terminated(code: int, cid: str, reason: str = "") -> dict[str, Any]:
    return {
        "terminated": {
            "exitCode": code,
            "reason": reason or ("Completed" if code == 0 else "Error"),
            "containerID": cid,
            "finishedAt": "2026-01-01T00:01:00Z",
        },
        "_id": cid,
    }


def waiting(reason: str = "ContainerCreating") -> dict[str, Any]:
    return {"waiting": {"reason": reason}, "_id": ""}


def status(
    name: str, state: dict[str, Any], last: dict[str, Any] | None = None, restarts: int = 0
) -> dict[str, Any]:
    state = dict(state)
    cid = state.pop("_id")
    out: dict[str, Any] = {"name": name, "state": state, "restartCount": restarts, "lastState": {}}
    if cid:
        out["containerID"] = cid
    if last is not None:
        last = dict(last)
        last.pop("_id")
        out["lastState"] = last
    return out


def pod(
    containers: list[str],
    statuses: list[dict[str, Any]],
    *,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    restart_policy: str = "Never",
    phase: str = "Running",
    share_pid: bool = False,
    init: list[dict[str, Any]] | None = None,
    uid: str = "uid-1",
    images: dict[str, str] | None = None,
    resource_version: str = "1",
    node: str = "node-1",
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "job-x-abcde",
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": resource_version,
            "labels": {"batch.kubernetes.io/job-name": "job-x", **(labels or {})},
            "annotations": annotations or {},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": "job-x",
                    "uid": "job-uid",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "restartPolicy": restart_policy,
            "shareProcessNamespace": share_pid,
            "nodeName": node,
            "containers": [
                {"name": n, "image": (images or {}).get(n, "busybox")} for n in containers
            ],
            "initContainers": init or [],
        },
        "status": {"phase": phase, "containerStatuses": statuses},
    }


HELPER_IMAGE = "registry.example/helper:1"


def helper_container(
    target: str = "proxy", image: str = HELPER_IMAGE, **extra: Any
) -> dict[str, Any]:
    """An ephemeral container as Tandem adds its helper (`helper_spec`); EXTRA overrides."""
    return {
        "name": HELPER_NAME,
        "image": image,
        "command": list(HELPER_COMMAND),
        "targetContainerName": target,
        **extra,
    }


PRIMARY = {"tandem.dev/primary": "main"}


def failed_in_back_off(proxy: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An OnFailure pod whose primary `main` exited 3 and waits to restart, beside PROXY (a
    status of the sidecar `proxy`)."""
    return pod(
        ["main", "proxy"],
        [status("main", waiting("CrashLoopBackOff"), last=terminated(3, "c1")), proxy],
        annotations=PRIMARY,
        restart_policy="OnFailure",
        **extra,
    )
