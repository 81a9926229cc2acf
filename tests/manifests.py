"""Builders of the Jobs and pods the tests run, on the local images."""

from __future__ import annotations

from typing import Any

BUSYBOX = "local.invalid/tandem/busybox:local"
SHELLLESS = "local.invalid/tandem/shellless:local"
HAPROXY = "local.invalid/tandem/haproxy:local"
HTTPSTOP = "local.invalid/tandem/httpstop:local"

# Sidecars as they behave in the wild.
SLEEP_FOREVER = ["sleep", "100000"]
"""PID 1 without a signal handler: TERM or KILL from inside its PID namespace never arrive."""
EXITS_0_ON_TERM = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
EXITS_0_AT_ONCE_ON_TERM = ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
"""Exits 0 the moment TERM arrives (`wait` is interrupted; the loop above finishes its `sleep 1`
first), so the time to its end is the kubelet's alone."""
EXITS_143_AT_ONCE_ON_TERM = ["sh", "-c", "trap 'exit 143' TERM; sleep 100000 & wait"]
EXITS_143_ON_TERM = ["sh", "-c", "trap 'exit 143' TERM; while true; do sleep 1; done"]
IGNORES_TERM = ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]
"""Ignores TERM even when it is not PID 1 (its `sleep`s inherit the ignore): only KILL ends it."""
SLEEPER = ["/sleeper"]
"""On SHELLLESS: no shell, no handler. As PID 1 it ignores TERM (only KILL ends it, 137); in a
shared PID namespace it is not PID 1, so TERM kills it (143)."""
HAPROXY_DB = ["/usr/sbin/haproxy", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
"""On HAPROXY: haproxy itself as PID 1, not master-worker (no -W), as many images run it. USR1 is
its soft stop."""


def container(
    name: str, command: list[str] | None = None, image: str = BUSYBOX, **extra: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "image": image, "imagePullPolicy": "Never", **extra}
    if command is not None:
        spec["command"] = command
    return spec


def primary(name: str = "main", exit_code: int = 0, after: float = 1) -> dict[str, Any]:
    return container(name, ["sh", "-c", f"sleep {after}; exit {exit_code}"])


def pod_spec(
    containers: list[dict[str, Any]], restart_policy: str = "Never", **extra: Any
) -> dict[str, Any]:
    return {
        "restartPolicy": restart_policy,
        "containers": containers,
        "terminationGracePeriodSeconds": 5,
        # Behaviour tests run on the real kubelet, never on kwok's fake node.
        "nodeSelector": {"tandem.dev/node": "real"},
        **extra,
    }


def job(
    name: str,
    spec: dict[str, Any],
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    backoff_limit: int = 0,
) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "ttlSecondsAfterFinished": 600,
            "template": {
                "metadata": {"annotations": annotations or {}, "labels": labels or {}},
                "spec": spec,
            },
        },
    }


def sidecar_policy(name: str, **spec: Any) -> dict[str, Any]:
    """A SidecarPolicy selecting pods labelled app=NAME, primary `main`, with SPEC on top."""
    return {
        "apiVersion": "tandem.dev/v1alpha1",
        "kind": "SidecarPolicy",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}}, "primaryContainers": ["main"], **spec},
    }
