"""kwok and its fake node, for scale tests with thousands of pods and no containers.

kwok's server (exec, logs for fake pods) listens on the node's address inside the netns, and the
fake node advertises that address: the API server never dials anything outside the netns. The
fake node is tainted, so behaviour tests without a toleration land on the real kubelet.

Exec into a fake pod runs a command on this machine, so kwok runs in a private mount namespace
whose /bin/sh is kwok/exec-shim.sh (it only records the request), as user nobody. Each sidecar
slot (a container named `proxy-NNNNN`) carries its number in the environment, which is how the
benchmark knows which pod an exec was for: kwok passes neither the pod nor the container.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from . import network, supervisor
from .kubectl import HERE, ClusterError, kubectl
from .layout import Layout

FAKE_NODE = "kwok-node-0"
KWOK_PORT = 10247
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
SLOTS = 12_000
"""Sidecar slots that kwok answers exec for: enough for the 10,000-pod benchmark."""
NOBODY = 65534


def slot_container(slot: int) -> str:
    return f"proxy-{slot:05d}"


def execs_log(layout: Layout) -> Path:
    """Where the exec shim appends one line per exec: `<epoch> <slot> <argv...>`."""
    return layout.state / "kwok" / "execs" / "execs.log"


def _exec_config(layout: Layout) -> Path:
    """A ClusterExec with one target per slot (and a default for any other container)."""
    workdir = execs_log(layout).parent
    workdir.mkdir(parents=True, exist_ok=True)
    os.chown(workdir, NOBODY, NOBODY)
    execs_log(layout).touch()
    os.chown(execs_log(layout), NOBODY, NOBODY)

    def target(slot: str, containers: list[str]) -> dict[str, object]:
        envs = {"TANDEM_KWOK_SLOT": slot, "TANDEM_KWOK_EXECS": str(execs_log(layout))}
        local = {
            "workDir": str(workdir),
            "envs": [{"name": k, "value": v} for k, v in envs.items()],
            "securityContext": {"runAsUser": NOBODY, "runAsGroup": NOBODY},
        }
        return {"containers": containers, "local": local} if containers else {"local": local}

    targets = [target(f"{i:05d}", [slot_container(i)]) for i in range(SLOTS)]
    config = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterExec",
        "metadata": {"name": "tandem-sidecar-slots"},
        "spec": {"execs": [*targets, target("-", [])]},
    }
    # Four workers (kwok's default) play stages too slowly for a thousand pods ending at once.
    # A KwokConfiguration replaces kwok's defaults and its flags, so everything is named here.
    options = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokConfiguration",
        "options": {
            "manageAllNodes": False,
            "enableDebuggingHandlers": True,  # exec is one
            "enableProfilingHandler": False,
            "enablePodsOnNodeSyncListPager": True,
            # Fake pods' IPs: never configured on any interface, nor dialled; a /18 so that
            # 10,000 pods get one each.
            "cidr": "10.213.64.0/18",
            "manageNodesWithAnnotationSelector": f"{FAKE_NODE_ANNOTATION}=fake",
            "nodeIP": layout.node_ip,
            "nodePort": KWOK_PORT,
            "serverAddress": f"{layout.node_ip}:{KWOK_PORT}",
            "tlsCertFile": str(layout.pki / "kwok-serving.crt"),
            "tlsPrivateKeyFile": str(layout.pki / "kwok-serving.key"),
            "podPlayStageParallelism": 16,
            "nodePlayStageParallelism": 4,
            "nodeLeaseParallelism": 4,
            "podsOnNodeSyncParallelism": 1,
        },
    }
    path = layout.state / "kwok" / "config.yaml"
    path.write_text(f"{json.dumps(options)}\n---\n{json.dumps(config)}\n")
    return path


def _shim(layout: Layout) -> Path:
    """A copy of the shim that user nobody can read (the checkout may not be)."""
    shim = layout.state / "kwok" / "sh"
    shim.parent.mkdir(parents=True, exist_ok=True)
    shim.write_bytes((HERE / "kwok" / "exec-shim.sh").read_bytes())
    shim.chmod(0o755)
    return shim


def command(layout: Layout) -> list[str]:
    # A private mount namespace in which /bin/sh is the shim; the host's /bin/sh is untouched.
    private_sh = 'mount --bind "$1" /bin/sh && shift && exec "$@"'
    return [
        "unshare",
        "--mount",
        "--propagation=private",
        "--",
        "/bin/bash",
        "-c",
        private_sh,
        "kwok-sh",
        str(_shim(layout)),
        str(layout.kwok_bin),
        f"--kubeconfig={layout.state / 'kwok.kubeconfig'}",
        f"--config={HERE / 'kwok' / 'stages.yaml'}",
        f"--config={_exec_config(layout)}",
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
        if not supervisor.running(layout, "kwok"):
            raise ClusterError("kwok exited\n" + supervisor.log_tail(layout, "kwok"))
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
