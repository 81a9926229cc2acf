"""Annotation keys, labels and Event reasons: the names users and dashboards depend on.

They are part of Tandem's public interface; docs/configuration.md lists them. Change none without a
deprecation.
"""

from __future__ import annotations

from enum import StrEnum

GROUP = "tandem.dev"
ANNOTATION_PREFIX = f"{GROUP}/"

PRIMARY_ANNOTATION = f"{GROUP}/primary"
"""Comma-separated names of the pod's primary containers; opts the pod in."""

SIDECARS_ANNOTATION = f"{GROUP}/sidecars"
"""Comma-separated names of the sidecars to stop; default: every other regular container."""

ON_PRIMARY_FAILURE_ANNOTATION = f"{GROUP}/on-primary-failure"
"""`RestartTogether` or `Keep`; overrides the policy for this pod."""

GRACE_ANNOTATION = f"{GROUP}/grace-period-seconds"
"""Seconds a stopped sidecar has to exit before Tandem reports it; overrides the policy."""

FINISH_ANNOTATION = f"{GROUP}/finish"
"""`Phase` or `ExitCodes`: how Tandem ends the pod (see `finish`); overrides the policy."""

FINISHED_CONDITION = f"{GROUP}/Finished"
"""The pod condition Tandem sets with the terminal phase it writes."""

FINISHED_ANNOTATION = f"{GROUP}/finished"
"""The phase Tandem wrote (`Succeeded` or `Failed`), set in the same pods/status write. Touching
the metadata makes that write an update for the kubelet, whose pod worker then keeps the phase
and stops the containers at once; a status-only write it would overwrite with Running."""

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
"""Set by the Job controller on every pod it creates (CronJob-made pods included)."""


class Reason(StrEnum):
    """Event reasons, stable for dashboards and alerts."""

    POD_FINISHED = "PodFinished"
    POD_FINISH_FAILED = "PodFinishFailed"
    POD_FINISH_NOT_KEPT = "PodFinishNotKept"
    PRIMARIES_FINISHED = "PrimariesFinished"
    SIDECAR_STOP_SENT = "SidecarStopSent"
    HELPER_ADDED = "HelperAdded"
    SIDECAR_STOPPED = "SidecarStopped"
    SIDECAR_EXIT_MISMATCH = "SidecarExitMismatch"
    SIDECAR_STOP_FAILED = "SidecarStopFailed"
    SIDECAR_STOP_LOOP = "SidecarStopLoop"
    SIDECAR_UNSTOPPABLE = "SidecarUnstoppable"
    UNKNOWN_CONTAINER = "UnknownContainer"
    INVALID_ANNOTATION = "InvalidAnnotation"
    POLICY_CONFLICT = "PolicyConflict"
    POD_SWEPT = "PodSwept"
    SWEEP_SKIPPED = "SweepSkipped"
    NOT_A_JOB_POD = "NotAJobPod"


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"
