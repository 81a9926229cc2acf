"""kwok and its fake node, for scale tests with thousands of pods and no containers.

kwok's server (exec, logs for fake pods) listens on the node's address inside the netns, and the
fake node advertises that address: the API server never dials anything outside the netns. The
fake node is tainted, so behaviour tests without a toleration land on the real kubelet.
"""

from __future__ import annotations

import json
import time

from . import network, supervisor
from .kubectl import HERE, ClusterError, kubectl
from .layout import Layout

FAKE_NODE = "kwok-node-0"
KWOK_PORT = 10247
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"


def command(layout: Layout) -> list[str]:
    pki = layout.pki
    return [
        str(layout.kwok_bin),
        f"--kubeconfig={layout.admin_kubeconfig}",
        f"--config={HERE / 'kwok' / 'stages.yaml'}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
        f"--node-ip={layout.node_ip}",
        f"--node-port={KWOK_PORT}",
        f"--server-address={layout.node_ip}:{KWOK_PORT}",
        f"--tls-cert-file={pki / 'kwok-serving.crt'}",
        f"--tls-private-key-file={pki / 'kwok-serving.key'}",
    ]


def fake_node(name: str = FAKE_NODE) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {FAKE_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                "tandem.dev/node": "fake",
            },
        },
        "spec": {
            "taints": [{"key": FAKE_NODE_ANNOTATION, "value": "fake", "effect": "NoSchedule"}]
        },
        "status": {
            "allocatable": {"cpu": "1000", "memory": "1Ti", "pods": "20000"},
            "capacity": {"cpu": "1000", "memory": "1Ti", "pods": "20000"},
        },
    }


def start(layout: Layout) -> None:
    if not supervisor.running(layout, "kwok"):
        supervisor.start(layout, "kwok", network.in_netns(layout, command(layout)))
    kubectl(layout, "apply", "-f", "-", stdin=json.dumps(fake_node()))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready = kubectl(
            layout,
            "get",
            "node",
            FAKE_NODE,
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
            check=False,
        )
        if ready.stdout.strip() == "True":
            return
        time.sleep(0.3)
    raise ClusterError(
        "kwok's fake node did not become Ready\n" + supervisor.log_tail(layout, "kwok")
    )
