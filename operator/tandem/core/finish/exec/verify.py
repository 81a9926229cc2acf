"""Verification: how a stopped sidecar exited, read from its container status."""

from __future__ import annotations

import dataclasses

from ...model.actions import Outcome, Report, Tally
from ...model.names import EventType, Reason
from ...model.states import RestartPolicy
from ...model.view import PodView
from .. import hints
from ..decision import Part, SidecarRecord


def verify(part: Part, view: PodView, name: str, record: SidecarRecord) -> Part:
    """Reports how a stopped sidecar exited, once its stopped run shows up as terminated."""
    run = view.status(name).termination_of(record.container_id)
    if record.verified or run is None:
        return part
    part = part.record(name, dataclasses.replace(record, verified=True))
    if not record.announce:
        return part  # A graceful stop before a finish by phase: the phase decides the pod.
    how = f"{name} exited {run.exit_code} after {record.action.describe()} ({record.path})"
    if record.outcome is Outcome.FAILURE and view.restart_policy == RestartPolicy.NEVER:
        # The pod fails with its primaries whatever the sidecar exits with.
        return part.add(
            Report(
                EventType.NORMAL, Reason.SIDECAR_STOPPED, f"{how}; the pod fails with its primaries"
            )
        )
    if record.outcome.matches(run.exit_code):
        return part.add(
            Report(
                EventType.NORMAL,
                Reason.SIDECAR_STOPPED,
                f"{how}, as expected when the primaries' outcome is {record.outcome} "
                f"(expected exit {record.outcome.expected_exit})",
            )
        )
    return part.add(
        hints.warning(
            Reason.SIDECAR_EXIT_MISMATCH,
            f"{how}; expected exit {record.outcome.expected_exit} because the "
            f"primaries' outcome is {record.outcome}",
            hints.mismatch_fix(run.exit_code, record.action, record.outcome),
            tally=Tally.MISMATCHED,
        )
    )
