"""A SidecarPolicy's status tells its users whether Tandem uses it and what it did."""

from __future__ import annotations

from typing import Any

from ..kube import Kube, wait_for
from ..manifests import EXITS_0_ON_TERM, container, job, pod_spec, primary
from ..operator_process import Operator


def _ready(policy: dict[str, Any]) -> dict[str, Any] | None:
    conditions = policy.get("status", {}).get("conditions") or ()
    return next((c for c in conditions if c["type"] == "Ready"), None)


def test_status_has_ready_and_counts_handled_pods(operator: Operator, ns: Kube) -> None:
    policy = {
        "apiVersion": "tandem.dev/v1alpha1",
        "kind": "SidecarPolicy",
        "metadata": {"name": "counted"},
        "spec": {"selector": {"matchLabels": {"app": "counted"}}, "primaryContainers": ["main"]},
    }
    ns.apply(policy)
    ready = wait_for("Ready condition", lambda: _ready(ns.get("sidecarpolicy", "counted")))
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "Valid", 1)
    for name, code in (("ok", 0), ("bad", 3)):
        ns.apply(
            job(
                name,
                pod_spec([primary(exit_code=code), container("proxy", EXITS_0_ON_TERM)]),
                labels={"app": "counted"},
            )
        )
    assert (ns.wait_job("ok"), ns.wait_job("bad")) == ("Complete", "Failed")
    pods = wait_for(
        "counters",
        lambda: (
            counters
            if (counters := ns.get("sidecarpolicy", "counted").get("status", {}).get("pods"))
            and counters.get("handled") == 2
            else None
        ),
        timeout=30,
    )
    assert pods == {"handled": 2, "succeeded": 1, "failed": 1, "mismatched": 0}
    assert ns.get("sidecarpolicy", "counted")["status"]["observedGeneration"] == 1
