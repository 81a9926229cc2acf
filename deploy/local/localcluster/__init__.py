"""A local Kubernetes cluster of real components: etcd, the control plane, a kubelet on containerd
and runc, kube-proxy and kwok, all inside one network namespace. Used by the demo and the tests."""

from .cluster import ClusterError, down, is_up, kubectl, up
from .layout import Layout

__all__ = ["ClusterError", "Layout", "down", "is_up", "kubectl", "up"]
