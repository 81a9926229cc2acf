"""The operator's settings: one dataclass, filled from flags and their TANDEM_* variables in one
place, `tandem.cli.main.run` (where each option's bounds are)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Settings:
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means the whole cluster."""

    pod_selector: str = ""
    """An extra label selector for Job pods, ANDed with the Job label on the server side."""

    kubeconfig: str | None = None
    """A kubeconfig file; None uses $KUBECONFIG, then the pod's service account."""

    helper_image: str = ""
    """Image of the ephemeral helper for sidecars without a shell (busybox or similar, with sh,
    kill and wget). Empty: the helper path is off, and RBAC needs no pods/ephemeralcontainers."""

    allow_exec_actions: bool = False
    """Whether a SidecarPolicy's `exec` actions (a command of the policy author's, run in the
    sidecar under Tandem's identity) may run at all. A decision for the cluster admin: with it
    off, whoever may write SidecarPolicies cannot make Tandem run commands in their pods."""

    exec_stops: bool = True
    """Whether Tandem may exec into pods at all. Off (--no-exec), the install needs no pods/exec:
    pods finish by phase only, and the kubelet stops their sidecars (each image's STOPSIGNAL,
    then KILL when the grace period ends)."""

    pods_without_job: bool = False
    """Whether a SidecarPolicy may opt in run-to-completion pods that no Job owns (its
    podsWithoutJob: bare pods, pods of the controller kinds it names). The cluster admin's
    decision: it widens the pod watch from Job pods to every pod."""

    exec_timeout: float = 10.0
    """Seconds one exec into a sidecar (or one phase write) may take, connection included; more
    than 0."""

    exec_concurrency: int = 32
    """Execs in flight at once. Each waits mostly on the API server and the kubelet, so more of
    them than cores keeps the reaction short when many Jobs end together. At least 1."""

    exec_retries: int = 3
    """Tries per stop while the call is turned away before it reaches the pod (429, 500, 502,
    503, no connection). Never at once after a timeout: the command may have run (the core
    sends it once more after the sidecar's grace period, if it still runs). At least 1: the
    first try counts."""

    exec_backoff: float = 1.0
    """Seconds before the first retry; doubled for each one after."""

    policy_status_interval: float = 15.0
    """Seconds between writes of SidecarPolicy status counters (only when they changed)."""

    sweep_interval: float = 60.0
    """Seconds between sweeps for stuck and orphaned pods (per policy, and of annotation-only
    pods); it is also the minimum interval between two actions on the same stuck pod."""

    sweep_action: str = "Terminate"
    """What the sweep does to annotation-only pods: Terminate, Delete or Report. Policies choose
    their own (spec.sweep.action)."""

    stuck_after: float = 600.0
    """Seconds after the primaries ended at which a pod still running counts as stuck."""

    sweep_max_actions: int = 20
    """Actions per sweep at most, so a cluster full of stuck pods is cleaned steadily; shared
    round-robin between namespaces, so one namespace's stuck pods cannot take them all."""

    sweep_allow_delete: bool = False
    """Whether the sweep may delete pods at all (RBAC needs delete on pods then)."""

    listen_address: str = "127.0.0.1"
    """The IP address the liveness and metrics endpoints listen on. Loopback unless asked: a
    host process exposes nothing; in a cluster the manifests pass 0.0.0.0, for the kubelet's
    probe and Prometheus (which the NetworkPolicy limits)."""

    liveness_port: int = 8080
    """Port of kopf's liveness endpoint (/healthz); 0 turns it off."""

    metrics_port: int = 9090
    """Port of the Prometheus /metrics endpoint; 0 turns it off."""

    peering: str = ""
    """Name of the ClusterKopfPeering where replicas meet so that exactly one acts; cluster-wide
    also when watching chosen namespaces, so that no watched namespace's users can edit it.
    Empty: standalone, and only one replica may run."""

    priority: int | None = None
    """This replica's peering priority; None ranks it by its start, the oldest replica highest, so
    that a newcomer never takes over from the replica that acts (`operator.seniority`)."""

    peering_lifetime: int = 20
    """Seconds a silent replica counts as alive: the longest a standby waits to take over after
    the active one died without saying goodbye."""

    log_format: str = "text"
    """`text` for people, or `json`: one object per line for log pipelines."""

    log_level: str = "INFO"
    """The least level logged: DEBUG, INFO, WARNING, ERROR or CRITICAL. At any level but DEBUG,
    kopf's per-object INFO lines are left out."""

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces
