"""Configuration files and command lines of etcd and the Kubernetes components."""

from __future__ import annotations

import json

from .layout import Layout


def _write_json(layout: Layout, name: str, obj: object) -> str:
    path = layout.state / name
    path.write_text(json.dumps(obj, indent=2) + "\n")
    return str(path)


def etcd(layout: Layout) -> list[str]:
    return [
        str(layout.etcd_bin),
        "--name=default",
        f"--data-dir={layout.state / 'etcd'}",
        "--listen-client-urls=http://127.0.0.1:2379",
        "--advertise-client-urls=http://127.0.0.1:2379",
        "--listen-peer-urls=http://127.0.0.1:2380",
        "--initial-advertise-peer-urls=http://127.0.0.1:2380",
        "--initial-cluster=default=http://127.0.0.1:2380",
        "--listen-metrics-urls=http://127.0.0.1:2381",
        # A throwaway test cluster: durability is not worth the fsync latency.
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def kube_apiserver(layout: Layout) -> list[str]:
    pki = layout.pki
    return [
        str(layout.k8s_bin("kube-apiserver")),
        "--etcd-servers=http://127.0.0.1:2379",
        "--bind-address=0.0.0.0",
        f"--secure-port={layout.apiserver_port}",
        f"--advertise-address={layout.node_ip}",
        f"--service-cluster-ip-range={layout.service_cidr}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--authorization-mode=Node,RBAC",
        f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
        f"--kubelet-certificate-authority={pki / 'ca.crt'}",
        # The node's Hostname does not resolve; exec and logs must dial the InternalIP.
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        "--allow-privileged=true",
        "--profiling=false",
        "--event-ttl=2h",
        f"--audit-policy-file={_audit_policy(layout)}",
        f"--audit-log-path={layout.logs / 'audit.log'}",
        "--audit-log-maxsize=200",
        "--audit-log-maxbackup=1",
    ]


def _audit_policy(layout: Layout) -> str:
    """Metadata-level audit of what the operator's identities do: benchmarks count its requests."""
    return _write_json(
        layout,
        "audit-policy.json",
        {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": ["RequestReceived"],
            "rules": [
                {"level": "Metadata", "users": ["tandem-operator"]},
                {"level": "Metadata", "userGroups": ["system:serviceaccounts:tandem-system"]},
                # What any ServiceAccount does into pods, as Tandem does: a release of the chart
                # runs in a namespace of its own, and tests check which release wrote a phase.
                {
                    "level": "Metadata",
                    "userGroups": ["system:serviceaccounts"],
                    "resources": [
                        {
                            "group": "",
                            "resources": ["pods/status", "pods/exec", "pods/ephemeralcontainers"],
                        }
                    ],
                },
                # The kubelets' pod status writes (the real one's, and kwok's for the fake
                # node): benchmarks time reactions from them.
                {
                    "level": "Metadata",
                    "users": ["system:node:tandem-node", "kwok"],
                    "resources": [{"group": "", "resources": ["pods/status"]}],
                    "verbs": ["patch"],
                },
                {"level": "None"},
            ],
        },
    )


def kube_controller_manager(layout: Layout) -> list[str]:
    pki = layout.pki
    return [
        str(layout.k8s_bin("kube-controller-manager")),
        f"--kubeconfig={layout.state / 'controller-manager.kubeconfig'}",
        f"--authentication-kubeconfig={layout.state / 'controller-manager.kubeconfig'}",
        f"--authorization-kubeconfig={layout.state / 'controller-manager.kubeconfig'}",
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
        # No pod-CIDR allocation: the single node's CNI config holds its range.
        "--controllers=*,-nodeipam",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}",
        f"--cluster-signing-key-file={pki / 'ca.key'}",
        f"--service-cluster-ip-range={layout.service_cidr}",
        # Scale benchmarks create thousands of Job pods: the default 20 requests/s would take
        # minutes to create them, and measure the Job controller rather than Tandem.
        "--kube-api-qps=300",
        "--kube-api-burst=600",
        "--concurrent-job-syncs=20",
    ]


def kube_scheduler(layout: Layout) -> list[str]:
    kubeconfig = layout.state / "scheduler.kubeconfig"
    return [
        str(layout.k8s_bin("kube-scheduler")),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
        "--kube-api-qps=300",
        "--kube-api-burst=600",
    ]


def kubelet(layout: Layout) -> list[str]:
    pki = layout.pki
    resolv = layout.state / "resolv.conf"
    # Pods get a resolver on their own loopback: a lookup fails at once and never leaves the pod.
    resolv.write_text("nameserver 127.0.0.1\n")
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": layout.node_ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "tlsCertFile": str(pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        # Only holders of a certificate from the cluster CA (the apiserver) may call the kubelet.
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        "failCgroupV1": False,
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "resolvConf": str(resolv),
        "clusterDomain": "cluster.local",
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "maxPods": 110,
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "10s",
    }
    return [
        str(layout.k8s_bin("kubelet")),
        f"--config={_write_json(layout, 'kubelet-config.json', config)}",
        f"--kubeconfig={layout.state / 'kubelet.kubeconfig'}",
        f"--root-dir={layout.state / 'kubelet'}",
        f"--hostname-override={layout.node_name}",
        f"--node-ip={layout.node_ip}",
        "--node-labels=tandem.dev/node=real",
        f"--v={layout.kubelet_verbosity}",
    ]


def kube_proxy(layout: Layout) -> list[str]:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(layout.state / "kube-proxy.kubeconfig")},
        "hostnameOverride": layout.node_name,
        "clusterCIDR": layout.pod_cidr,
        "metricsBindAddress": "127.0.0.1:10249",
        "healthzBindAddress": "127.0.0.1:10256",
        # Zero leaves the host's conntrack sysctls alone.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }
    return [
        str(layout.k8s_bin("kube-proxy")),
        f"--config={_write_json(layout, 'kube-proxy-config.json', config)}",
    ]
