"""Events told once: their typed keys (`once_key`) and the one test before each (`tell_once`).

The pod's memory keeps the keys of the Events it has told (`PodMemory.reported`); the sweeper keeps
its own table for the pods it only looks at. Both ask `tell_once`, with keys made by `once_key`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NewType

OnceKey = NewType("OnceKey", str)
"""The key of one one-off Event, made by `once_key` only: `told:about:...`."""


class Told(StrEnum):
    """What a one-off Event tells: the first word of its key."""

    FINISHED = "finished"
    NOT_KEPT = "not-kept"
    ENDED = "ended"
    UNKNOWN = "unknown"
    UNSTOPPABLE = "unstoppable"
    LOOP = "loop"
    FOREIGN_HELPER = "foreign-helper"
    STOP_FAILED = "failed"
    NOT_A_JOB_POD = "not-a-job-pod"
    INVALID_ANNOTATION = "invalid-annotation"
    CONFLICT = "conflict"
    # The sweep's: in the sweeper's table (runtime/sweeper.py), never in a pod's memory.
    SWEEP_SKIPPED = "sweep-skipped"
    SWEEP_REPORT = "sweep-report"


def once_key(told: Told, *about: str) -> OnceKey:
    """The key of the one-off Event TOLD about ABOUT (a sidecar, a run of the primaries, ...).
    Every such key is made here."""
    return OnceKey(":".join((told.value, *about)))


def told_key(attempt_key: str) -> OnceKey:
    """The once-key of the PodFinished Event for one ended run of the primaries."""
    return once_key(Told.FINISHED, attempt_key)


def tell_once(told: frozenset[OnceKey], key: OnceKey) -> frozenset[OnceKey] | None:
    """TOLD with KEY added, or None if KEY is in it already: the Event was told, and is not told
    again."""
    return None if key in told else told | {key}
