"""The stop order on the real kubelet: a log shipper flushes through the proxy sidecar before the
proxy goes.

Each pod: `main` writes 100 lines to a shared volume and exits 0; `shipper` is a fluent-bit by its
program's name (a script at /opt/bin/fluent-bit, so Tandem's well-known table knows it as a
shipper with no configuration), which on TERM sends every line through `proxy` (haproxy, TCP on
127.0.0.1:8000) to `sink`, which prints what it receives; all inside the pod. The shipper waits
2 s before it sends, as a shipper's flush timer does.

- Zero configuration: Tandem stops the shipper first, awaits its end, then gives haproxy its
  clean stop (USR1) with the phase: all 100 lines arrive, in order.
- The control, one stop order for all (a SidecarPolicy's `stopOrder` puts the shipper with the
  proxy): haproxy soft-stops at once and closes its listener, and the lines sent 2 s later are
  lost. The test prints how many.
"""

from __future__ import annotations

from typing import Any

from ..kube import Kube, exit_code, finished_at
from ..manifests import HAPROXY, container, job, pod_spec, sidecar_policy
from ..operator_process import Operator

LINES = 100

HAPROXY_TCP = """\
global
    maxconn 64
defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s
listen ship
    bind 127.0.0.1:8000
    server sink 127.0.0.1:9000
"""

SHIPPER = """\
#!/bin/sh
# On TERM: wait for the flush timer, send the buffer through the proxy, exit 0.
flush() { sleep 2; nc 127.0.0.1 8000 < /logs/out; exit 0; }
trap flush TERM
sleep 100000 & wait
"""


def _config() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ship"},
        "data": {"haproxy.cfg": HAPROXY_TCP, "fluent-bit": SHIPPER},
    }


def _spec() -> dict[str, Any]:
    logs = {"name": "logs", "mountPath": "/logs"}
    return pod_spec(
        [
            container(
                "main",
                ["sh", "-c", f"for i in $(seq 1 {LINES}); do echo line $i; done >/logs/out"],
                volumeMounts=[logs],
            ),
            container(
                "shipper",
                ["/opt/bin/fluent-bit"],
                volumeMounts=[logs, {"name": "ship", "mountPath": "/opt/bin"}],
            ),
            container(
                "proxy",
                ["/usr/sbin/haproxy", "-db", "-f", "/cfg/haproxy.cfg"],
                image=HAPROXY,
                volumeMounts=[{"name": "ship", "mountPath": "/cfg"}],
            ),
            container("sink", ["nc", "-ll", "-p", "9000", "-e", "sh", "-c", "cat >&2"]),
        ],
        volumes=[
            {"name": "logs", "emptyDir": {}},
            {
                "name": "ship",
                "configMap": {
                    "name": "ship",
                    "items": [
                        {"key": "fluent-bit", "path": "fluent-bit", "mode": 0o755},
                        {"key": "haproxy.cfg", "path": "haproxy.cfg"},
                    ],
                },
            },
        ],
    )


def _received(ns: Kube, pod: str) -> list[str]:
    return ns.run("logs", pod, "-c", "sink").stdout.splitlines()


def _pod(ns: Kube, job_name: str) -> dict[str, Any]:
    [pod] = ns.job_pods(job_name)
    return ns.wait_pod(
        pod["metadata"]["name"],
        "every container ended",
        lambda p: all(exit_code(p, c) is not None for c in ("main", "shipper", "proxy", "sink")),
        timeout=30,
    )


def test_a_shipper_flushes_through_the_proxy_before_the_proxy_goes(
    operator: Operator, ns: Kube
) -> None:
    unordered = sidecar_policy("unordered", sidecars=[{"name": "shipper", "stopOrder": 5}])
    ns.apply(
        _config(),
        unordered,
        job("ordered", _spec(), annotations={"tandem.dev/primary": "main"}),
        job("unordered", _spec(), labels={"app": "unordered"}),
    )
    for name in ("ordered", "unordered"):
        assert ns.wait_job(name, timeout=120) == "Complete", name

    pod = _pod(ns, "ordered")
    name = pod["metadata"]["name"]
    assert pod["status"]["phase"] == "Succeeded"
    assert _received(ns, name) == [f"line {i}" for i in range(1, LINES + 1)]
    assert (exit_code(pod, "shipper"), exit_code(pod, "proxy")) == (0, 0), pod["status"]
    shipped, proxied = finished_at(pod, "shipper"), finished_at(pod, "proxy")
    assert shipped is not None and proxied is not None and shipped <= proxied
    ns.wait_for_reasons("Pod", name, "PodFinished")
    [finished] = [e["message"] for e in ns.events("Pod", name) if e["reason"] == "PodFinished"]
    assert "stop order: shipper first: ended" in finished, finished
    assert "then proxy got signal USR1 via exec (known: haproxy)" in finished, finished

    control = _pod(ns, "unordered")
    received = _received(ns, control["metadata"]["name"])
    print(f"\nwithout the stop order: {LINES - len(received)} of {LINES} lines lost")
    assert len(received) < LINES, received  # the order is what delivered them
