"""A private containerd (its own root, state and socket) with runc and Debian's CNI plugins."""

from __future__ import annotations

import json
import subprocess

from .layout import Layout

PAUSE_IMAGE = "local.invalid/tandem/pause:local"


def write_config(layout: Layout) -> None:
    base = layout.state / "containerd"
    (base / "root").mkdir(parents=True, exist_ok=True)
    (base / "state").mkdir(parents=True, exist_ok=True)
    cni_conf = layout.state / "cni" / "net.d"
    cni_conf.mkdir(parents=True, exist_ok=True)
    # restrict_oom_score_adj: this machine forbids lowering oom_score_adj, and the kubelet asks -998
    # for sandboxes; rootless setups use the same option.
    (base / "config.toml").write_text(f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{layout.containerd_socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{base / "opt"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni_conf}"
""")
    conflist = {
        "cniVersion": "0.4.0",
        "name": layout.cni_network,
        "plugins": [
            {
                "type": "bridge",
                "bridge": layout.cni_bridge,
                "isGateway": True,
                "isDefaultGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": layout.pod_cidr}]],
                    "dataDir": str(layout.state / "cni" / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    (cni_conf / "10-tandem.conflist").write_text(json.dumps(conflist, indent=2) + "\n")


def command(layout: Layout) -> list[str]:
    return ["containerd", "--config", str(layout.state / "containerd" / "config.toml")]


def ctr(layout: Layout, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ctr", "--address", str(layout.containerd_socket), "-n", "k8s.io", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def remove_all_containers(layout: Layout) -> None:
    """Kills and deletes every task and container: stopping the kubelet leaves them running."""
    tasks = ctr(layout, "tasks", "ls", "-q").stdout.split()
    for task in tasks:
        ctr(layout, "tasks", "kill", "-s", "SIGKILL", "--all", task)
    for task in tasks:
        ctr(layout, "tasks", "delete", "-f", task)
    for container in ctr(layout, "containers", "ls", "-q").stdout.split():
        ctr(layout, "containers", "delete", container)
