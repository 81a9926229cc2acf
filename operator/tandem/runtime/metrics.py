"""Prometheus metrics: the only module that imports prometheus_client."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REACTION = Histogram(
    "tandem_reaction_seconds",
    "From the watch event that shows the primaries ended to the first stop starting.",
    buckets=_LATENCY_BUCKETS,
)
ACTIONS = Counter(
    "tandem_actions_total",
    "Stops delivered to sidecars, by method and result.",
    ["method", "result"],
)
EVENTS = Counter(
    "tandem_events_total",
    "Kubernetes Events posted, by reason and type.",
    ["reason", "type"],
)
SWEPT = Counter("tandem_sweeper_actions_total", "Pods the sweeper acted on, by mode.", ["mode"])
WATCHED = Gauge("tandem_pods_watched", "Job pods the operator currently remembers.")


def observe_reaction(seconds: float) -> None:
    REACTION.observe(seconds)


def count_action(method: str, result: str) -> None:
    ACTIONS.labels(method=method, result=result).inc()


def count_event(reason: str, type_: str) -> None:
    EVENTS.labels(reason=reason, type=type_).inc()


def count_sweep(mode: str) -> None:
    SWEPT.labels(mode=mode).inc()


def set_watched(count: int) -> None:
    WATCHED.set(count)


def serve(port: int) -> None:
    if port:
        start_http_server(port)
