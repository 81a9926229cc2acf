"""SidecarPolicy status: the Ready condition and the pod counters.

Ready says whether the operator's parser accepts the spec; the CRD's schema and CEL rules, checked
by the API server, are not checked again here.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from tandem.core import PolicyError, parse_spec


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ready_condition(
    name: str, spec: Mapping[str, Any], generation: int, previous: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The Ready condition for SPEC; its transition time moves only when the status changes."""
    try:
        parse_spec(name, spec)
        status, reason, message = "True", "Valid", "the operator uses this policy"
    except PolicyError as error:
        status, reason, message = "False", "InvalidSpec", f"{error}; the policy is not used"
    unchanged = previous is not None and previous.get("status") == status
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": previous.get("lastTransitionTime")
        if unchanged and previous
        else _now(),
    }


def status_patch(
    name: str, spec: Mapping[str, Any], meta: Mapping[str, Any], status: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The status to write, or None when it is already current (no write, no event storm)."""
    previous = next((c for c in status.get("conditions") or () if c.get("type") == "Ready"), None)
    generation = int(meta.get("generation") or 0)
    condition = ready_condition(name, spec, generation, previous)
    if previous == condition and status.get("observedGeneration") == generation:
        return None
    return {"observedGeneration": generation, "conditions": [condition]}


def counters_patch(delta: Mapping[str, int], status: Mapping[str, Any]) -> dict[str, Any] | None:
    """Adds DELTA (counted since the last write) to the counters in STATUS.

    Adding, not overwriting, keeps the counters growing across operator restarts.
    """
    if not any(delta.values()):
        return None
    current = status.get("pods") or {}
    return {
        "pods": {
            key: int(current.get(key, 0)) + int(delta.get(key, 0))
            for key in ("handled", "succeeded", "failed", "mismatched")
        }
    }


def sweep_patch(at: str, swept: int, skipped: int, status: Mapping[str, Any]) -> dict[str, Any]:
    """The time of the last sweep, what it did, and the pods swept since the policy exists."""
    total = int((status.get("sweep") or {}).get("totalSwept", 0)) + swept
    return {
        "lastSweepTime": at,
        "sweep": {"lastSwept": swept, "lastSkipped": skipped, "totalSwept": total},
    }
