"""What the in-cluster tiers check of a deployed Tandem: its permissions, and its execs."""

from __future__ import annotations

import json
import time
from typing import Any

from localcluster import Layout

from ..deployment import SA
from ..kube import Kube

LABEL = {"e2e.tandem.dev/operator": "incluster"}
"""On the tier's Jobs: the deployed operator's pods (the session's host operator skips them)."""


def can_i(kube: Kube, verb: str, resource: str, *args: str, who: str = SA, name: str = "") -> bool:
    """`kubectl auth can-i` as the operator; RESOURCE may name a subresource (pods/exec), NAME
    one object (for rules narrowed by resourceNames)."""
    resource, _, subresource = resource.partition("/")
    if subresource:
        args = (*args, f"--subresource={subresource}")
    if name:
        resource = f"{resource}/{name}"
    done = kube.run(
        "auth", "can-i", verb, resource, *args, f"--as={who}", check=False, namespaced=False
    )
    return done.stdout.strip() == "yes"


def audited(
    layout: Layout, namespace: str, subresource: str, user: str | None = None
) -> list[dict[str, Any]]:
    """The calls on pods' SUBRESOURCE in NAMESPACE that the API server answered, by USER or by
    anyone (its audit log)."""
    time.sleep(3)  # the audit log is written asynchronously
    found = []
    for line in (layout.logs / "audit.log").read_text().splitlines():
        entry = json.loads(line)
        ref = entry.get("objectRef") or {}
        if (
            user in (None, entry["user"]["username"])
            and ref.get("subresource") == subresource
            and ref.get("namespace") == namespace
            and entry["stage"] == "ResponseComplete"
        ):
            found.append(entry)
    return found


def execs_by_operator(layout: Layout, namespace: str) -> int:
    """Tandem's exec calls into NAMESPACE that the API server answered."""
    return len(audited(layout, namespace, "exec", SA))
