"""Which nodes keep a terminal phase written through the API: each node's kubelet version, read
once (one GET per node) and kept for a while, since a node's kubelet changes only on upgrades."""

from __future__ import annotations

import asyncio
import logging
import time

from tandem.core import kubelet_keeps_phase

from .ports import NodeReads

logger = logging.getLogger("tandem.nodes")


UNREAD_RETRY = 60.0
"""Seconds before a node that could not be read is read again (RBAC fixed, API back)."""


class NodeVersions:
    def __init__(self, reads: NodeReads, keep_for: float = 600.0) -> None:
        self._reads = reads
        self._keep_for = keep_for
        self._known: dict[str, tuple[bool, float]] = {}
        """Per node: whether it keeps the phase, and until when (monotonic) that is known."""
        self._reading: dict[str, asyncio.Task[bool]] = {}
        self._warned = False

    async def keeps_phase(self, node: str) -> bool:
        """Whether NODE's kubelet keeps an API-set terminal phase; False for an unscheduled pod,
        an unknown node, or a node Tandem may not read (the exit-code path then applies)."""
        if not node:
            return False
        known = self._known.get(node)
        if known is not None and time.monotonic() < known[1]:
            return known[0]
        task = self._reading.get(node)
        if task is None:  # One read per node, however many pods ask at once.
            task = self._reading[node] = asyncio.create_task(self._read(node))
            task.add_done_callback(lambda _: self._reading.pop(node, None))
        return await asyncio.shield(task)

    async def _read(self, node: str) -> bool:
        try:
            version = await asyncio.to_thread(self._reads.kubelet_version, node)
        except Exception as error:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "cannot read node %s (%s): pods finish by exit codes until it can be read; "
                    "grant the operator get on nodes (deploy/base/rbac.yaml)",
                    node,
                    error,
                )
            self._known[node] = (False, time.monotonic() + UNREAD_RETRY)
            return False
        keeps = kubelet_keeps_phase(version or "")
        self._known[node] = (keeps, time.monotonic() + self._keep_for)
        return keeps
