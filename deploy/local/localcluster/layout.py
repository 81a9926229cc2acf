"""Where the local cluster keeps its files, and the addresses it uses.

Everything lives in one state directory and one network namespace that this harness creates, so
teardown can remove all of it and no traffic ever leaves the machine.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Layout:
    """Paths, versions and addresses of one local cluster."""

    state: Path = Path(os.environ.get("TANDEM_CLUSTER_STATE", "/var/lib/tandem-cluster"))
    """All runtime state: certificates, etcd data, containerd and kubelet roots, logs, pids."""

    cache: Path = Path(os.environ.get("TANDEM_CACHE", "/var/cache/tandem"))
    """Build outputs keyed by version (binaries, images); survives teardown."""

    k8s_version: str = os.environ.get("K8S_VERSION", "v1.34.4")
    etcd_version: str = os.environ.get("ETCD_VERSION", "v3.6.16")
    kwok_version: str = os.environ.get("KWOK_VERSION", "v0.8.0")
    helm_version: str = os.environ.get("HELM_VERSION", "v3.22.0")

    kubelet_verbosity: int = min(max(int(os.environ.get("TANDEM_KUBELET_V", "1")), 0), 6)
    """The kubelet's `--v`, 0 to 6. Level 4 logs each pod sync's phase decision (for debugging)."""

    netns: str = "tandem"
    """The network namespace that holds every component; it has no default route."""

    host_veth: str = "tandem-host"
    node_veth: str = "tandem-node"
    host_ip: str = "10.213.0.1"
    node_ip: str = "10.213.0.2"
    """The node's InternalIP, inside the netns. The apiserver listens here; tests dial it."""

    node_name: str = "tandem-node"
    service_cidr: str = "10.96.0.0/16"
    first_service_ip: str = "10.96.0.1"
    pod_cidr: str = "10.244.0.0/24"
    cni_bridge: str = "tandem0"
    cni_network: str = "tandem"
    apiserver_port: int = 6443

    @property
    def server(self) -> str:
        return f"https://{self.node_ip}:{self.apiserver_port}"

    @property
    def netns_path(self) -> Path:
        return Path("/run/netns") / self.netns

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    @property
    def containerd_socket(self) -> Path:
        return self.state / "containerd" / "containerd.sock"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state / "admin.kubeconfig"

    def k8s_bin(self, name: str) -> Path:
        return self.cache / "bin" / f"kubernetes-{self.k8s_version}" / name

    @property
    def etcd_bin(self) -> Path:
        return self.cache / "bin" / f"etcd-{self.etcd_version}" / "etcd"

    @property
    def kwok_bin(self) -> Path:
        return self.cache / "bin" / f"kwok-{self.kwok_version}" / "kwok"

    @property
    def helm_bin(self) -> Path:
        """Built by build.sh with the rest, for the chart in deploy/helm (no cluster needed)."""
        return self.cache / "bin" / f"helm-{self.helm_version}" / "helm"

    @property
    def kubectl(self) -> Path:
        return self.k8s_bin("kubectl")
