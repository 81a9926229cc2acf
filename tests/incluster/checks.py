"""What the in-cluster tiers check of a deployed Tandem: its permissions, and its execs."""

from __future__ import annotations

import time

from localcluster import Layout

from ..audit_log import audited
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


def execs_by_operator(layout: Layout, namespace: str) -> int:
    """Tandem's exec calls into NAMESPACE that the API server answered."""
    time.sleep(3)  # the audit log is written asynchronously
    return len(audited(layout, namespace, "exec", SA))
