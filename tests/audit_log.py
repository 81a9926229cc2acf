"""The local cluster's audit log, as tests read it: who called what on a pod, and how it went.

The API server audits at Metadata level what the operator's identities do, and what any
ServiceAccount does into pods (localcluster/components.py), so a test can count Tandem's writes.
"""

from __future__ import annotations

import collections
import json
from typing import Any

from localcluster import Layout

from .kube import wait_for


def audited(
    layout: Layout, namespace: str, subresource: str, user: str | None = None
) -> list[dict[str, Any]]:
    """The calls on pods' SUBRESOURCE (not a SidecarPolicy's status) in NAMESPACE that the API
    server answered, by USER or by anyone, as logged so far (the API server writes its log
    asynchronously: wait for what you expect with `wait_for`)."""
    found = []
    for line in (layout.logs / "audit.log").read_text().splitlines():
        entry = json.loads(line)
        ref = entry.get("objectRef") or {}
        if (
            user in (None, entry["user"]["username"])
            and ref.get("resource") == "pods"
            and ref.get("subresource") == subresource
            and ref.get("namespace") == namespace
            and entry["stage"] == "ResponseComplete"
        ):
            found.append(entry)
    return found


def phase_writes(layout: Layout, namespace: str) -> collections.Counter[str]:
    """Per pod in NAMESPACE, the pods/status patches that the API server accepted from anyone but
    a kubelet: Tandem's, as no other client in the tests writes a pod's status."""
    return collections.Counter(
        entry["objectRef"]["name"]
        for entry in audited(layout, namespace, "status")
        if entry["verb"] == "patch"
        and 200 <= entry["responseStatus"]["code"] < 300
        and not entry["user"]["username"].startswith("system:node:")
    )


def wait_phase_writes(
    layout: Layout, namespace: str, pods: list[str], timeout: float = 20.0
) -> collections.Counter[str]:
    """`phase_writes` once each of PODS has at least one logged."""

    def probe() -> collections.Counter[str] | None:
        writes = phase_writes(layout, namespace)
        return writes if all(writes[pod] for pod in pods) else None

    return wait_for(f"phase writes on {pods} in the audit log", probe, timeout)
