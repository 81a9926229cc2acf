"""The cluster's own network namespace, joined to the host by one veth pair.

The kubelet refuses a loopback node IP, so the node gets an address inside a namespace that this
harness creates. The namespace has no default route: nothing in it can reach beyond the machine.
"""

from __future__ import annotations

import subprocess

from .layout import Layout


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def in_netns(layout: Layout, argv: list[str]) -> list[str]:
    """Wraps ARGV to run inside the netns.

    nsenter keeps the host's mount namespace; `ip netns exec` would remount /sys and hide the cgroup
    mounts that the kubelet needs.
    """
    return ["nsenter", f"--net={layout.netns_path}", "--", *argv]


def create(layout: Layout) -> None:
    """Creates the netns and the veth pair; a no-op when they exist."""
    if not layout.netns_path.exists():
        _ip("netns", "add", layout.netns)
    if _ip("link", "show", layout.host_veth, check=False).returncode != 0:
        _ip("link", "add", layout.host_veth, "type", "veth", "peer", "name", layout.node_veth)
        _ip("link", "set", layout.node_veth, "netns", layout.netns)
        _ip("addr", "add", f"{layout.host_ip}/30", "dev", layout.host_veth)
        _ip("link", "set", layout.host_veth, "up")
    inside = ["ip", "-n", layout.netns]
    subprocess.run([*inside, "link", "set", "lo", "up"], check=True)
    addrs = subprocess.run(
        [*inside, "-br", "addr", "show", layout.node_veth],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if layout.node_ip not in addrs:
        subprocess.run(
            [*inside, "addr", "add", f"{layout.node_ip}/30", "dev", layout.node_veth], check=True
        )
    subprocess.run([*inside, "link", "set", layout.node_veth, "up"], check=True)
    # Pod traffic to the service IP is routed through the node; forwarding stays inside the netns.
    subprocess.run(in_netns(layout, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]), check=True)


def remove_pod_netns() -> list[str]:
    """Deletes the pod network namespaces that containerd left in /run/netns (cni-...)."""
    out = _ip("netns", "list", check=False).stdout
    names = [line.split()[0] for line in out.splitlines() if line.startswith("cni-")]
    for name in names:
        _ip("netns", "delete", name, check=False)
    return names


def delete(layout: Layout) -> None:
    """Removes the veth pair and the netns."""
    _ip("link", "delete", layout.host_veth, check=False)
    if layout.netns_path.exists():
        _ip("netns", "delete", layout.netns, check=False)
