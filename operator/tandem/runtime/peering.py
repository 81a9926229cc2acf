"""A check of the ClusterKopfPeering where the replicas meet (`--peering`), once at start.

Kopf keeps every replica of a mandatory peering paused until it sees the peering object: when the
object is missing, no replica ever acts on a pod, and Kopf says so only at DEBUG. When the
identity may not write or watch it, Kopf stops with its own traceback. Either way, one ERROR line
here says what is wrong and how to fix it. The check runs beside the start, never before it: Kopf
serves its liveness probe only once the startup handlers are done, and a slow API server must not
get the pod restarted. A check that cannot ask is only a warning.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from .ports import PeeringReads

logger = logging.getLogger("tandem.peering")

GROUP, RESOURCE = "kopf.dev", "clusterkopfpeerings"
NAMED_VERBS, KOPF_NEEDS = ("get", "patch"), ("patch", "list", "watch")
CHECK_TIMEOUT = 60.0
"""Seconds the whole check may take (each call has the adapter's own 30-s timeout)."""


def problem(name: str, exists: bool | None, denied: list[str]) -> str | None:
    """What is wrong with the peering NAME: whether it EXISTS (None: unknown), and the verbs
    on it that this identity is DENIED; None when nothing is."""
    found: list[str] = []
    if exists is False:
        found.append(
            f"the ClusterKopfPeering {name!r} does not exist, so this replica stays paused and "
            "acts on no pod until it does (Kopf waits for it). Create it (deploy/base/"
            "peering.yaml makes 'tandem'; each chart release makes its own), then restart the "
            "Deployment: replicas that all waited for it would all act until their keepalives "
            "land. Or run with --peering naming one that exists"
        )
    if denied:
        stops = [v for v in denied if v in KOPF_NEEDS]
        found.append(
            f"this identity may not {' or '.join(denied)} the ClusterKopfPeering {name!r}"
            + (f" (Kopf stops when it cannot {' or '.join(stops)} it)" if stops else "")
            + f". Grant {' and '.join(NAMED_VERBS)} on {RESOURCE} with resourceNames [{name}], "
            f"and list and watch on {RESOURCE}, as the chart's peering ClusterRole does "
            "(tandem-peering; tandem-peering-<namespace> in a release that watches namespaces)"
        )
    elif exists is None:
        found.append(f"could not tell whether the ClusterKopfPeering {name!r} exists")
    return "; and ".join(found) or None


def _exists(answer: int) -> bool | None:
    return {200: True, 404: False}.get(answer)


def _denied(reads: PeeringReads, name: str) -> list[str]:
    verbs = [*NAMED_VERBS, "list", "watch"]
    return [v for v in verbs if not reads.may(v, GROUP, RESOURCE, name if v in NAMED_VERBS else "")]


async def check(reads: PeeringReads, name: str) -> None:
    """Logs what is wrong with the peering NAME, if anything; never raises."""
    exists: bool | None = None
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            exists = _exists(await asyncio.to_thread(reads.peering_answer, name))
            denied = await asyncio.to_thread(_denied, reads, name)
    except Exception as error:  # A check that cannot ask must not stop the operator.
        logger.warning("could not check the peering %r: %r", name, error)
        denied = []
    if (found := problem(name, exists, denied)) is not None:
        # Unknown is a warning; a missing peering or a denied verb is the operator not working.
        level = logging.ERROR if exists is False or denied else logging.WARNING
        logger.log(level, "peering: %s.", found)


def register(registry: kopf.OperatorRegistry, reads: PeeringReads, name: str) -> None:
    running: set[asyncio.Task[None]] = set()

    @kopf.on.startup(registry=registry)
    async def peering_check(**_: Any) -> None:
        task = asyncio.create_task(check(reads, name), name="peering check")
        running.add(task)  # Held, or the loop could collect it before it ends.
        task.add_done_callback(running.discard)
