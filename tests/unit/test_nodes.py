"""Which nodes keep an API-set phase: one read per node however many pods ask at once, kept for a
while; a node that cannot be read counts as not keeping it and is read again later."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tandem.runtime import nodes
from tandem.runtime.nodes import NodeVersions

from .fakes import MockReads


def _read(reads: MockReads) -> list[str]:
    return [node for what, node in reads.calls if what == "node"]


def test_one_read_per_node_for_many_pods_at_once() -> None:
    reads = MockReads(kubelets={"a": "v1.34.4", "b": "v1.22.3", "kwok": "kwok-0.8.0"})
    versions = NodeVersions(reads)

    async def ask() -> list[bool]:
        names = ["a"] * 20 + ["b"] * 5 + ["kwok", ""]
        return list(await asyncio.gather(*(versions.keeps_phase(n) for n in names)))

    answers = asyncio.run(ask())
    assert answers == [True] * 20 + [False] * 5 + [False, False]
    assert sorted(_read(reads)) == ["a", "b", "kwok"]


def test_a_node_that_cannot_be_read_is_read_again_later(monkeypatch: Any) -> None:
    reads = MockReads(kubelets={"a": PermissionError("nodes is forbidden")})
    versions = NodeVersions(reads)
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    assert asyncio.run(versions.keeps_phase("a")) is False
    reads.kubelets["a"] = "v1.34.4"
    assert asyncio.run(versions.keeps_phase("a")) is False  # not yet
    clock[0] += nodes.UNREAD_RETRY + 1
    assert asyncio.run(versions.keeps_phase("a")) is True
    assert _read(reads) == ["a", "a"]
