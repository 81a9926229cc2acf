"""The stop order on the phase road: a shipper stops, and is awaited, before the proxy it sends
through; the phase waits for it, bounded by the grace period; the policy's order wins; OnFailure's
restart in tandem stops everything at once."""

from __future__ import annotations

from typing import Any

import pytest

from tandem.core import (
    CoreSettings,
    Finish,
    Monotonic,
    PodMemory,
    PolicyError,
    Recheck,
    Stop,
    decide,
    handle,
    parse_pod,
    parse_spec,
    resolve,
)
from tandem.core.finish.send import RECHECK_SLACK
from tandem.core.policy.policy import PolicySource

from .pods import PRIMARY, failed_in_back_off, pod, running, status, terminated

FLUENT_BIT = "cr.fluentbit.io/fluent/fluent-bit:3.1"
HAPROXY = "docker.io/library/haproxy:2.8"
GRACE = 30.0


def shipping(
    shipper: dict[str, Any], *, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    """main ended 0; a fluent-bit shipper, an haproxy it sends through, and a sink Tandem does
    not know."""
    return pod(
        ["main", "shipper", "proxy", "sink"],
        [
            status("main", terminated(0, "c1")),
            status("shipper", shipper),
            status("proxy", running("c3")),
            status("sink", running("c4")),
        ],
        annotations=PRIMARY if annotations is None else annotations,
        images={"shipper": FLUENT_BIT, "proxy": HAPROXY},
    )


KEEPS_PHASE = CoreSettings(kubelet_keeps_phase=True)


def run(
    body: dict[str, Any], memory: PodMemory, now: float, spec: dict[str, Any] | None = None
) -> Any:
    view = parse_pod(body)
    if spec is not None:
        candidates = (PolicySource("p", spec),)
        return handle(view, candidates, memory, Monotonic(now), KEEPS_PHASE)
    policy = resolve(view.labels, view.annotations, ()).policy
    return decide(view, policy, memory, Monotonic(now), KEEPS_PHASE)


def of(decision: Any, kind: type) -> list[Any]:
    return [a for a in decision.actions if isinstance(a, kind)]


def test_the_shipper_is_stopped_first_and_the_phase_waits_for_it() -> None:
    first = run(shipping(running("c2")), PodMemory(), 100.0)
    [stop] = of(first, Stop)
    assert (stop.sidecar, stop.action.signal, stop.announce) == ("shipper", "TERM", False)
    assert of(first, Finish) == []
    assert of(first, Recheck) == [Recheck(GRACE + RECHECK_SLACK)]
    # An event while it flushes: nothing new, and the re-check at the end of its grace period.
    meanwhile = run(shipping(running("c2")), first.memory, 105.0)
    assert of(meanwhile, Stop) == [] and of(meanwhile, Finish) == []
    assert of(meanwhile, Recheck) == [Recheck(GRACE - 5.0 + RECHECK_SLACK)]
    # It ended: the proxy gets its clean stop with the phase, and the Event tells the order.
    done = run(shipping(terminated(0, "c2")), meanwhile.memory, 101.25)
    [stop] = of(done, Stop)
    [finish] = of(done, Finish)
    assert (stop.sidecar, stop.action.signal) == ("proxy", "USR1")
    assert done.actions.index(stop) < done.actions.index(finish)
    assert finish.message.count("stop order: shipper first: ended 1.2 s after their stop; then ")
    assert "proxy got signal USR1 via exec (known: haproxy); sink: the kubelet stops it" in (
        finish.message
    )


def test_a_shipper_that_does_not_end_is_awaited_for_its_grace_period_only() -> None:
    first = run(shipping(running("c2")), PodMemory(), 100.0)
    late = run(shipping(running("c2")), first.memory, 100.0 + GRACE)
    [finish] = of(late, Finish)
    assert [s.sidecar for s in of(late, Stop)] == ["proxy"]  # no second stop to the shipper
    assert f"shipper still ran {GRACE:.1f} s after its stop" in finish.message


def test_without_a_shipper_everything_stops_at_once_with_the_phase() -> None:
    body = shipping(running("c2"))
    body["spec"]["containers"][1]["image"] = "busybox"
    decision = run(body, PodMemory(), 100.0)
    [finish] = of(decision, Finish)
    assert [s.sidecar for s in of(decision, Stop)] == ["proxy"]
    assert "stop order" not in finish.message


def _spec(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"selector": {}, "primaryContainers": ["main"], "sidecars": list(entries)}


def test_the_policys_order_wins_and_keeps_the_well_known_stop() -> None:
    spec = _spec({"name": "proxy", "stopOrder": 0}, {"name": "shipper", "stopOrder": 5})
    assert parse_spec("p", spec).explicit("proxy") is None  # an order is not a stop
    first = run(shipping(running("c2"), annotations={}), PodMemory(), 100.0, spec)
    [stop] = of(first, Stop)
    assert (stop.sidecar, stop.action.signal) == ("proxy", "USR1")
    assert of(first, Finish) == []


def test_one_order_for_all_is_todays_finish() -> None:
    spec = _spec({"name": "shipper", "stopOrder": 5})
    decision = run(shipping(running("c2"), annotations={}), PodMemory(), 100.0, spec)
    assert sorted(s.sidecar for s in of(decision, Stop)) == ["proxy", "shipper"]
    assert len(of(decision, Finish)) == 1


def test_a_sidecar_ordered_first_without_a_stop_tandem_can_send_is_not_awaited() -> None:
    spec = _spec({"name": "sink", "stopOrder": 0}, {"name": "shipper", "stopOrder": 5})
    decision = run(shipping(running("c2"), annotations={}), PodMemory(), 100.0, spec)
    [finish] = of(decision, Finish)
    assert "sink first: nothing to await" in finish.message


def test_onfailure_restart_in_tandem_stops_every_sidecar_at_once() -> None:
    body = failed_in_back_off(status("proxy", running("c2")))
    body["spec"]["containers"][1]["image"] = FLUENT_BIT  # a shipper: no order on this road
    decision = run(body, PodMemory(), 100.0)
    assert [s.sidecar for s in of(decision, Stop)] == ["proxy"] and of(decision, Finish) == []


@pytest.mark.parametrize("value", [-1, 10, True, "1", 1.5])
def test_a_stop_order_out_of_range_is_refused_naming_the_field(value: Any) -> None:
    with pytest.raises(PolicyError, match=r"spec.sidecars\[0\].stopOrder: give a whole number"):
        parse_spec("p", _spec({"name": "shipper", "stopOrder": value}))
