"""The Kubernetes words the core compares a pod against: a container's state and the pod's restart
policy. StrEnums, so each equals the API's own string (`PodView` keeps the API's strings)."""

from __future__ import annotations

from enum import StrEnum


class ContainerState(StrEnum):
    """A container status's state, as `PodView.status(name).state` holds it."""

    RUNNING = "running"
    TERMINATED = "terminated"
    WAITING = "waiting"
    UNKNOWN = "unknown"
    """The API said none of the three (or nothing yet)."""


class RestartPolicy(StrEnum):
    """The pod's spec.restartPolicy; a Job's pod has Never or OnFailure."""

    ALWAYS = "Always"
    ON_FAILURE = "OnFailure"
    NEVER = "Never"
