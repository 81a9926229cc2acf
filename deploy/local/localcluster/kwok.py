"""kwok and its fake node, for scale tests with thousands of pods and no containers.

kwok's server (exec, logs for fake pods) listens on the node's address inside the netns, and the
fake node advertises that address: the API server never dials anything outside the netns. The
fake node is tainted, so behaviour tests without a toleration land on the real kubelet.

The fake node says the cluster's kubelet version, and kwok's stages answer a terminal phase
written through the API as that kubelet does (pod-api-phase-stops-containers when the write carries
the annotation tandem.dev/finished, as Tandem's does; pod-api-phase-put-back, Running again, when
it does not); pods annotated `tandem.dev/finish: ExitCodes` take the exec path.

Exec into a fake pod runs a command on this machine, so kwok runs in a private mount namespace
whose /bin/sh is kwok/exec-shim.sh (it only records the request), as user nobody. Each sidecar
slot (a container named `proxy-NNNNN`) carries its number in the environment, which is how the
benchmark knows which pod an exec was for: kwok passes neither the pod nor the container.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from . import network, supervisor
from .kubectl import HERE, ClusterError, kubectl, log
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


def kubelet_version(layout: Layout) -> str:
    """What the fake node says its kubelet is: the cluster's version, marked as kwok's."""
    return f"{layout.k8s_version}-kwok"


def _exec_config(layout: Layout) -> Path:
    """kwok's options and a ClusterExec with one target per slot, written where kwok reads them."""
    workdir = execs_log(layout).parent
    workdir.mkdir(parents=True, exist_ok=True)
    os.chown(workdir, NOBODY, NOBODY)
    execs_log(layout).touch()
    os.chown(execs_log(layout), NOBODY, NOBODY)
    path = layout.state / "kwok" / "config.yaml"
    path.write_text(_config_text(layout))
    return path


def _config_text(layout: Layout) -> str:
    """The text of `_exec_config`, without writing anything."""
    workdir = execs_log(layout).parent

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
    return f"{json.dumps(options)}\n---\n{json.dumps(config)}\n"


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


def fake_node(kubelet: str, name: str = FAKE_NODE) -> dict[str, object]:
    """The fake node as created. The API server keeps a Node's status on create (and only then:
    an update of the node drops it), and kwok's node-initialize stage keeps a kubeletVersion that
    the node already has (`or $nodeInfo.kubeletVersion ...`)."""
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
            "nodeInfo": {"kubeletVersion": kubelet},
        },
    }


def _stamp(layout: Layout) -> str:
    """What kwok was started with: its stages, the shim and the configuration."""
    digest = hashlib.sha256()
    for part in (HERE / "kwok" / "stages.yaml", HERE / "kwok" / "exec-shim.sh"):
        digest.update(part.read_bytes())
    digest.update(_config_text(layout).encode())
    return digest.hexdigest()


def _stamp_file(layout: Layout) -> Path:
    return layout.state / "kwok" / "started-with"


def start(layout: Layout) -> None:
    """Starts kwok, or restarts it when it runs with other stages or options than this checkout's
    (kwok reads them once, at start); then the fake node, Ready, with its kubelet version."""
    stamp, stamp_file = _stamp(layout), _stamp_file(layout)
    current = stamp_file.exists() and stamp_file.read_text() == stamp
    if supervisor.running(layout, "kwok") and not current:
        log("kwok runs with other stages or options than this checkout's: restarting it")
        supervisor.stop(layout, "kwok")
    if not supervisor.running(layout, "kwok"):
        supervisor.start(layout, "kwok", network.in_netns(layout, command(layout)))
        stamp_file.write_text(stamp)
    kubelet = kubelet_version(layout)
    kubectl(layout, "apply", "-f", "-", stdin=json.dumps(fake_node(kubelet)))
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
