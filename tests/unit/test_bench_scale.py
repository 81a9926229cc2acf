"""The scale benchmark's pure parts: the operator's reaction lines, the audit log's requests and
each pod's path through a burst, on both finish paths. No cluster."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from tests.bench.audit import AuditTail, PodTimes, job_of, pod_times, read_lines, request, tally
from tests.bench.scale import histogram_percentiles, markdown, reactions, summarise

NS = "scale-abc123"
_ids = itertools.count()


def entry(
    user: str,
    verb: str,
    resource: str,
    name: str,
    received: float,
    *,
    completed: float | None = None,
    code: int = 200,
    subresource: str = "",
    namespace: str = NS,
    audit_id: str = "",
) -> dict[str, Any]:
    """An audit event as the API server logs it at Metadata level (RequestReceived omitted)."""

    def stamp(second: float) -> str:
        return f"2026-11-30T10:00:{second:09.6f}Z"

    ref = {"resource": resource, "namespace": namespace, "name": name, "apiVersion": "v1"}
    if subresource:
        ref["subresource"] = subresource
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": audit_id or f"id-{next(_ids)}",
        "stage": "ResponseComplete",
        "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "objectRef": ref,
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": stamp(received),
        "stageTimestamp": stamp(completed if completed is not None else received + 0.005),
    }


def kubelet_write(name: str, received: float, completed: float | None = None) -> dict[str, Any]:
    return entry("kwok", "patch", "pods", name, received, completed=completed, subresource="status")


def phase_write(name: str, received: float, code: int = 200) -> dict[str, Any]:
    return entry(
        "tandem-operator", "patch", "pods", name, received, code=code, subresource="status"
    )


def exec_(name: str, received: float) -> dict[str, Any]:
    return entry("tandem-operator", "get", "pods", name, received, subresource="exec")


def event(received: float) -> dict[str, Any]:
    return entry("tandem-operator", "create", "events", "j00001.abc", received)


def times_of(*entries: dict[str, Any]) -> dict[tuple[str, str], PodTimes]:
    return pod_times(request(e) for e in entries)


def _after_primary(t: PodTimes, when: float | None) -> float:
    """Seconds from the primary's end to WHEN, to the millisecond; both must have been seen."""
    assert t.primary_ended is not None and when is not None, t
    return round(when - t.primary_ended, 3)


def test_the_reaction_line_of_either_path_is_read_once_per_pod() -> None:
    log = "\n".join(
        [
            f"2026-11-30 10:00:01 INFO tandem: pod {NS}/j00001: stopping proxy-00001, "
            "3.2 ms after the watch event",
            f"2026-11-30 10:00:01 INFO tandem: pod {NS}/j00002: finishing by phase, "
            "12.5 ms after the watch event",
            # Written again after a revert: its first reaction is the one that counts.
            f"2026-11-30 10:00:16 INFO tandem: pod {NS}/j00002: finishing by phase, "
            "0.4 ms after the watch event",
            "2026-11-30 10:00:01 INFO tandem: pod other/j00003: finishing by phase, "
            "1.0 ms after the watch event",
            f"2026-11-30 10:00:01 INFO tandem: pod {NS}/j00002: phase Succeeded -> written",
        ]
    )
    first, paths = reactions(log, {NS})
    assert first == {f"{NS}/j00001": 3.2, f"{NS}/j00002": 12.5}
    assert paths == {"stopping": 1, "finishing by phase": 1}


def test_a_phase_path_pod_from_the_primarys_end_to_its_sidecars() -> None:
    times = times_of(
        kubelet_write("j00001", 1.0),  # pod-ready
        kubelet_write("j00001", 40.000),  # pod-primary-ends, done at 40.005
        phase_write("j00001", 40.030),  # accepted at 40.035
        event(40.040),
        kubelet_write("j00001", 40.050),  # pod-api-phase-stops-containers, done at 40.055
    )
    t = times[(NS, "j00001")]
    assert t.action == "phase"
    assert _after_primary(t, t.acted) == 0.025
    assert _after_primary(t, t.terminal) == 0.030
    assert _after_primary(t, t.sidecar_ended) == 0.050
    assert (t.phase_writes, t.phase_writes_refused) == (1, 0)


def test_an_exec_path_pod_is_terminal_when_the_kubelets_write_ends_its_sidecar() -> None:
    times = times_of(
        kubelet_write("j00001", 40.000),
        exec_("j00001", 40.100),
        kubelet_write("j00001", 40.300),  # the answerer, as kwok: sidecar ended and the phase
    )
    t = times[(NS, "j00001")]
    assert t.action == "exec"
    assert _after_primary(t, t.terminal) == 0.300
    assert t.terminal == t.sidecar_ended


def test_a_refused_phase_write_is_not_the_pods_end() -> None:
    times = times_of(
        kubelet_write("j00001", 40.000),
        phase_write("j00001", 40.020, code=409),
        phase_write("j00001", 40.500),
        kubelet_write("j00001", 40.600),
    )
    t = times[(NS, "j00001")]
    assert _after_primary(t, t.acted) == 0.015  # the first request is the reaction
    assert _after_primary(t, t.terminal) == 0.500
    assert (t.phase_writes, t.phase_writes_refused) == (2, 1)


def test_the_primarys_end_logged_after_tandem_acted_is_still_the_primarys_end() -> None:
    # The API server received kwok's write first, but completed (and logged) it after Tandem's
    # request arrived: placed by arrival, the reaction is not the pod-ready write's minutes.
    times = times_of(
        kubelet_write("j00001", 1.0),
        kubelet_write("j00001", 40.000, completed=40.050),
        phase_write("j00001", 40.030),
    )
    t = times[(NS, "j00001")]
    assert t.primary_ended is not None and t.primary_ended > 40
    assert t.sidecar_ended is None  # kwok has not stopped it yet


def test_pods_tandem_never_acted_on_have_no_times() -> None:
    assert times_of(kubelet_write("u00001", 40.0), event(41.0)) == {}


def test_lines_are_read_once_per_audit_id_and_only_for_the_runs_namespaces() -> None:
    started = exec_("j00001", 40.1)
    ended = {**started, "stage": "ResponseComplete"}
    lines = [
        json.dumps(e)
        for e in (
            started,
            ended,  # an exec is logged when its stream starts and when it ends
            kubelet_write("j00002", 1.0),
            entry("tandem-operator", "get", "nodes", "kwok-node-0", 2.0, namespace=""),
            kubelet_write("j00001", 1.0) | {"objectRef": {"namespace": "other"}},
        )
    ]
    seen: set[str] = set()
    got = read_lines([*lines, ""], [NS], seen)
    assert [(r.resource, r.name) for r in got] == [
        ("pods/exec", "j00001"),
        ("pods/status", "j00002"),
    ]
    assert read_lines(lines, [NS], seen) == []  # the same lines again: nothing new


def test_the_tail_reads_a_line_once_it_is_whole_and_follows_a_rotation(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(json.dumps(kubelet_write("j00000", 0.5)) + "\n")  # before the run: not read
    tail = AuditTail(log, [NS])
    line = json.dumps(kubelet_write("j00001", 1.0))
    with log.open("a") as out:
        out.write(line[:40])
    assert tail.poll() == []
    with log.open("a") as out:
        out.write(line[40:] + "\n" + json.dumps(phase_write("j00001", 1.1)) + "\n")
    assert len(tail.poll()) == 2
    # Rotated: the old file renamed, with a last line written before the rename; a new one.
    with log.open("a") as out:
        out.write(json.dumps(kubelet_write("j00001", 1.2)) + "\n")
    log.rename(tmp_path / "audit-2026-11-30T10-00-02.log")
    log.write_text(json.dumps(event(1.3)) + "\n")
    assert [r.resource for r in tail.poll()] == [
        "pods/status",
        "pods/status",
        "pods/status",
        "events",
    ]
    tail.close()


def test_requests_are_counted_per_namespace_group() -> None:
    requests = [
        request(e)
        for e in (
            phase_write("j00001", 1.0),
            phase_write("j00002", 1.0)
            | {
                "objectRef": {
                    "resource": "pods",
                    "namespace": "b",
                    "name": "j00002",
                    "subresource": "status",
                }
            },
            event(1.1),
            kubelet_write("j00001", 0.5),
        )
    ]
    assert tally(requests) == {"patch pods/status": 2, "create events": 1}
    assert tally(requests, ["b"]) == {"patch pods/status": 1}


def test_the_summary_names_requests_that_touched_unmanaged_pods() -> None:
    entries = [
        kubelet_write("j00001", 40.0),
        phase_write("j00001", 40.02),
        kubelet_write("j00001", 40.05),
        entry("tandem-operator", "get", "pods", "u00002", 41.0),
    ]
    requests = [request(e) for e in entries]
    summary = summarise(pod_times(requests), requests, {f"{NS}/u00002"})
    assert summary["touched_unmanaged"] == {"get pods": 1}
    assert summary["primary_end_to_terminal_ms"]["p50"] == 20.0
    assert summary["first_action"] == {"phase": 1}
    assert summary["phase_writes"] == {"total": 1, "refused": 0, "pods_written_more_than_once": 0}


def test_histograms_are_read_per_path() -> None:
    metrics = "\n".join(
        [
            'tandem_action_duration_seconds_bucket{le="0.01",path="exec"} 0.0',
            'tandem_action_duration_seconds_bucket{le="0.1",path="exec"} 10.0',
            'tandem_action_duration_seconds_bucket{le="+Inf",path="exec"} 10.0',
            'tandem_action_duration_seconds_bucket{le="0.01",path="phase"} 10.0',
            'tandem_action_duration_seconds_bucket{le="+Inf",path="phase"} 10.0',
            'tandem_reaction_seconds_bucket{le="0.01"} 5.0',
            'tandem_reaction_seconds_bucket{le="+Inf"} 5.0',
        ]
    )
    exec_ms = histogram_percentiles(metrics, "tandem_action_duration_seconds", ',path="exec"')
    phase_ms = histogram_percentiles(metrics, "tandem_action_duration_seconds", ',path="phase"')
    assert exec_ms["p50"] == 55.0 and exec_ms["n"] == 10
    assert phase_ms["p50"] == 5.0
    assert histogram_percentiles(metrics, "tandem_reaction_seconds")["n"] == 5


def test_the_table_reads_earlier_results_and_release_runs() -> None:
    earlier = json.loads(
        (Path(__file__).parents[1] / "bench" / "results" / "scale.json").read_text()
    )
    assert "| 1,000 | ExitCodes | 1 |" in markdown(earlier)
    run = earlier["scale"][0] | {
        "finish": "Phase",
        "releases": 2,
        "primary_end_to_terminal_ms": {"p50": 30.0, "p99": 90.0},
        "operator_cpu_ms_per_pod": 2.1,
        "operators": [
            {
                "release": name,
                "namespaces": ["a", "b"],
                "pods": 500,
                "reaction_own_ms": {"p50": 1.0},
                "peak_rss_mib": 120.0,
                "cpu_ms_per_pod": 2.0,
                "requests_per_pod": {"patch pods/status": 1.0},
            }
            for name in ("tandem-a", "tandem-b")
        ],
    }
    table = markdown({**earlier, "scale": [run], "idle": []})
    assert "| 1,000 | Phase | 2 |" in table and "30.0 / 90.0" in table
    assert table.count("| ↳ 500 | | tandem-") == 2
    assert "| 2.0 ms | - | " in table  # results from before the watch events were counted
    for operator, per_pod in zip(run["operators"], (4.0, 6.0), strict=True):
        operator["watch_events_per_pod"] = per_pod
    compared = run | {"operator_source": "/tmp/old/operator"}
    table = markdown({**earlier, "scale": [compared], "idle": []})
    assert "| 1,000 | Phase (/tmp/old/operator) | 2 |" in table
    assert "| 2.1 ms | 5.0 | " in table  # 500 pods at 4.0 and 500 at 6.0


def test_a_pod_or_its_event_is_counted_for_its_job() -> None:
    assert job_of(NS, "j00001-x7k2q") == f"{NS}/j00001"
    assert job_of(NS, "u00003-abcde.18a2f3c4d5e6f7a8") == f"{NS}/u00003"
    assert job_of(NS, "j00001") == f"{NS}/j00001"
