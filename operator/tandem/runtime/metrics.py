"""Prometheus metrics: the only module that imports prometheus_client. Callers use the metrics
themselves (`metrics.REACTION.observe(...)`); a function here only where counting takes a rule.

deploy/grafana/tandem.json is built from these names; a test scrapes a running operator and checks
that every metric the dashboard queries exists.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from tandem.core import EventType, Reason, Tally

# Up to a minute: a burst of Jobs ending at once queues stops for free exec threads.
_LATENCY_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

REACTION = Histogram(
    "tandem_reaction_seconds",
    "From the pod event that shows the primaries ended, to the first stop or phase write starting.",
    buckets=_LATENCY_BUCKETS,
)
ACTION_DURATION = Histogram(
    "tandem_action_duration_seconds",
    "How long delivering one stop took (the exec, retries included), by path.",
    ["path"],
    buckets=_LATENCY_BUCKETS,
)
ACTIONS = Counter(
    "tandem_actions_total",
    "Stops delivered to sidecars, and phase writes (path phase), by path and result.",
    ["path", "result"],
)
HANDLED = Counter(
    "tandem_pods_handled_total",
    "Pods whose primaries ended and got stops, by outcome.",
    ["outcome"],
)
MISMATCHES = Counter(
    "tandem_exit_mismatches_total", "Sidecars that exited with the wrong class of code."
)
LOOPS = Counter("tandem_stop_loops_total", "Pods on which the loop guard stopped acting.")
EVENTS = Counter(
    "tandem_events_total", "Kubernetes Events posted, by reason and type.", ["reason", "type"]
)
SWEPT = Counter("tandem_sweeper_actions_total", "Pods the sweeper acted on, by mode.", ["mode"])
WATCH_EVENTS = Counter(
    "tandem_pod_watch_events_total",
    "Watch events for Job pods that Tandem received: each is a whole pod to parse and decide.",
)
WATCHED = Gauge(
    "tandem_pods_watched",
    "Job pods whose body Tandem keeps: acted on, or the sweep may need them (the pod runs).",
)


def count_event(reason: Reason, type_: EventType, tally: Tally | None) -> None:
    """Every reason is counted by its name: a new one needs nothing here."""
    EVENTS.labels(reason=reason.value, type=type_.value).inc()
    if tally is Tally.MISMATCHED:
        MISMATCHES.inc()
    elif tally is not None:
        HANDLED.labels(outcome="success" if tally is Tally.SUCCEEDED else "failure").inc()
    if reason is Reason.SIDECAR_STOP_LOOP:
        LOOPS.inc()


def serve(port: int, address: str) -> None:
    if port:
        start_http_server(port, addr=address)
