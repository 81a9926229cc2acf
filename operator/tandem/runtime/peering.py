"""A startup check of the ClusterKopfPeering where the replicas meet (`--peering`).

Kopf keeps every replica of a mandatory peering paused until it sees the peering object: when the
object is missing, no replica ever acts on a pod, and Kopf says so only at DEBUG. When the
identity may not write it, Kopf stops with its own traceback. Either way, one ERROR line here says
what is wrong and how to fix it. The check never holds the start back: Kopf resumes by itself once
the object appears, and a failed check is only a warning.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from tandem.adapters import Reads

logger = logging.getLogger("tandem.peering")

GROUP, RESOURCE = "kopf.dev", "clusterkopfpeerings"


def problem(name: str, answer: int, may_patch: bool) -> str | None:
    """What is wrong with the peering NAME, given the HTTP status of a GET of it (ANSWER) and
    whether this identity may patch it; None when nothing is."""
    found: list[str] = []
    if answer == 404:
        found.append(
            f"the ClusterKopfPeering {name!r} does not exist, so this replica stays paused and "
            "acts on no pod until it does (Kopf waits for it). Create it (deploy/base/"
            f"peering.yaml makes 'tandem'; each chart release makes its own), or run with "
            "--peering naming one that exists"
        )
    elif answer not in (200, 403):
        found.append(f"reading the ClusterKopfPeering {name!r} answered HTTP {answer}")
    if answer == 403 or not may_patch:
        found.append(
            f"this identity may not {'read' if answer == 403 else 'write'} the "
            f"ClusterKopfPeering {name!r}, and Kopf stops when it cannot write it. Grant get and "
            f"patch on {RESOURCE} with resourceNames [{name}], and list and watch on {RESOURCE}, "
            "as the chart's tandem-peering ClusterRole does"
        )
    return "; and ".join(found) or None


def register(registry: kopf.OperatorRegistry, reads: Reads, name: str) -> None:
    @kopf.on.startup(registry=registry)
    async def peering_check(**_: Any) -> None:
        try:
            answer = await asyncio.to_thread(reads.peering_answer, name)
            may_patch = await asyncio.to_thread(reads.may, "patch", GROUP, RESOURCE, name)
        except Exception as error:  # A check that fails must not stop the operator.
            logger.warning("could not check the peering %r: %s", name, error)
            return
        if (found := problem(name, answer, may_patch)) is not None:
            logger.error("peering: %s.", found)
