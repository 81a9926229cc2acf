"""The stop order: sidecars that ship the pod's data stop, and are awaited, before the others.

A log shipper or a telemetry exporter flushes on its stop, often through a proxy sidecar of the
same pod; stopped together, the proxy is gone before the last lines and spans are sent. So on the
phase road the sidecars stop in groups, by ascending order: each group but the last gets its
graceful stop and is awaited (until it has ended, or for the policy's grace period), and the last
group's stops go with the phase write, as before. The order comes from the policy's
`sidecars[].stopOrder`, else from the well-known table (`known.KnownSidecar.ships`).

Not under OnFailure's restart in tandem: there every sidecar must exit non-zero for the kubelet
to restart it with the primaries, at once, and the pod keeps running (docs/sidecars.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ...model.clocks import Monotonic
from ...model.memory import SidecarRecord
from ...model.states import ContainerState
from ...model.view import PodView
from ...policy.known import recognised

SHIPPER_ORDER = 1
"""A well-known shipper or exporter's order (fluent-bit, the OpenTelemetry collector, vector)."""

DEFAULT_ORDER = 5
"""Every other sidecar's: proxies, and sidecars Tandem does not know."""


def order_of(view: PodView, explicit: Mapping[str, int], name: str) -> int:
    """NAME's place in the stop order: the policy's own, else the well-known table's."""
    if name in explicit:
        return explicit[name]
    known = recognised(view.specs, name)
    return SHIPPER_ORDER if known is not None and known.ships else DEFAULT_ORDER


def groups(
    view: PodView, explicit: Mapping[str, int], sidecars: tuple[str, ...]
) -> tuple[tuple[str, ...], ...]:
    """SIDECARS in groups of one order each, the first to stop first."""
    by_order: dict[int, list[str]] = {}
    for name in sidecars:
        by_order.setdefault(order_of(view, explicit, name), []).append(name)
    return tuple(tuple(by_order[key]) for key in sorted(by_order))


@dataclasses.dataclass(frozen=True)
class GroupState:
    """Where one early group stands, for the run of the primaries being finished."""

    to_stop: tuple[str, ...]
    """Members that run and have had no stop for this run yet."""
    waiting: float | None
    """Seconds until the group's grace period ends, while a stopped member still runs; None
    once every stopped member has ended or its grace period has passed."""
    late: tuple[str, ...]
    """Stopped members that still run after the grace period: no longer awaited."""
    took: float | None
    """Seconds from the group's first stop to now, once no stopped member is awaited."""


def group_state(
    view: PodView,
    records: Mapping[str, SidecarRecord],
    members: tuple[str, ...],
    *,
    attempt_key: str,
    now: Monotonic,
    grace: float,
) -> GroupState:
    """MEMBERS' progress: which still need their stop, and how long the stopped ones are awaited.
    A member with no stop Tandem can send is not awaited: the kubelet stops it with the rest."""
    to_stop, waits, sent_at, late = [], [], [], []
    for name in members:
        status = view.status(name)
        record = records.get(name)
        stopped = (
            record is not None
            and record.attempt_key == attempt_key
            and record.container_id == status.container_id
        )
        if stopped:
            assert record is not None  # for mypy
            sent_at.append(record.acted_at)
            if status.state == ContainerState.RUNNING:
                if (left := grace - (now - record.acted_at)) > 0:
                    waits.append(left)
                else:
                    late.append(name)
        elif status.state == ContainerState.RUNNING:
            to_stop.append(name)
    return GroupState(
        tuple(to_stop),
        max(waits) if waits else None,
        tuple(late),
        now - min(sent_at) if sent_at and not waits else None,
    )
