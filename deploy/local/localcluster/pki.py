"""Certificates and kubeconfigs for the local cluster, made with the openssl command line.

Every component authenticates with its own client certificate, as in a production cluster, so the
operator's RBAC is exercised for real. Keys are P-256: fast to make, accepted by every component.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from .layout import Layout

_CLIENTS = {
    # file stem: (common name, organisation)
    "admin": ("tandem-admin", "system:masters"),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", ""),
    "scheduler": ("system:kube-scheduler", ""),
    "kube-proxy": ("system:kube-proxy", ""),
    # The operator when it runs outside the cluster: no groups, only what deploy/'s RBAC grants.
    "operator": ("tandem-operator", ""),
    # kwok plays the kubelet of the fake node; its own name lets the audit log time its writes.
    "kwok": ("kwok", "system:masters"),
}


def _openssl(*args: str, stdin: bytes | None = None) -> bytes:
    done = subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {done.stderr.decode()}")
    return done.stdout


def _key(path: Path) -> None:
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path)
    )
    path.chmod(0o600)


def _signed(pki: Path, stem: str, subject: str, usage: str, sans: list[str]) -> None:
    """Writes STEM.key and STEM.crt signed by the cluster CA."""
    _key(pki / f"{stem}.key")
    csr = _openssl("req", "-new", "-key", str(pki / f"{stem}.key"), "-subj", subject)
    ext = [f"extendedKeyUsage={usage}", "keyUsage=critical,digitalSignature,keyEncipherment"]
    if sans:
        ext.append("subjectAltName=" + ",".join(sans))
    with tempfile.NamedTemporaryFile("w", suffix=".ext") as extfile:
        extfile.write("\n".join(ext) + "\n")
        extfile.flush()
        _openssl(
            "x509",
            "-req",
            "-CA",
            str(pki / "ca.crt"),
            "-CAkey",
            str(pki / "ca.key"),
            "-CAcreateserial",
            "-days",
            "3650",
            "-extfile",
            extfile.name,
            "-out",
            str(pki / f"{stem}.crt"),
            stdin=csr,
        )


def _subject(common_name: str, organisation: str) -> str:
    return (f"/O={organisation}" if organisation else "") + f"/CN={common_name}"


def make_pki(layout: Layout) -> None:
    """Creates the CA, serving and client certificates and the service-account key, once."""
    pki = layout.pki
    if (pki / "done").exists():
        return
    pki.mkdir(parents=True, exist_ok=True)
    _key(pki / "ca.key")
    _openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        str(pki / "ca.key"),
        "-days",
        "3650",
        "-subj",
        "/CN=tandem-local-ca",
        "-out",
        str(pki / "ca.crt"),
    )
    apiserver_sans = [
        f"IP:{layout.node_ip}",
        f"IP:{layout.first_service_ip}",
        "IP:127.0.0.1",
        "DNS:localhost",
        "DNS:kubernetes",
        "DNS:kubernetes.default",
        "DNS:kubernetes.default.svc",
        "DNS:kubernetes.default.svc.cluster.local",
    ]
    _signed(pki, "apiserver", "/CN=kube-apiserver", "serverAuth", apiserver_sans)
    node_sans = [f"IP:{layout.node_ip}", f"DNS:{layout.node_name}"]
    _signed(pki, "kubelet-serving", f"/CN={layout.node_name}", "serverAuth", node_sans)
    _signed(pki, "kwok-serving", "/CN=kwok", "serverAuth", node_sans)
    _signed(
        pki,
        "kubelet",
        _subject(f"system:node:{layout.node_name}", "system:nodes"),
        "clientAuth",
        [],
    )
    for stem, (common_name, organisation) in _CLIENTS.items():
        _signed(pki, stem, _subject(common_name, organisation), "clientAuth", [])
    _key(pki / "sa.key")
    (pki / "sa.pub").write_bytes(_openssl("pkey", "-in", str(pki / "sa.key"), "-pubout"))
    for stem in [
        "admin",
        "controller-manager",
        "scheduler",
        "kube-proxy",
        "kubelet",
        "operator",
        "kwok",
    ]:
        write_kubeconfig(layout, stem, layout.state / f"{stem}.kubeconfig")
    (pki / "done").write_text("ok\n")


def write_kubeconfig(layout: Layout, stem: str, path: Path) -> None:
    """A kubeconfig (JSON is valid YAML) for the client certificate STEM."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "tandem",
                "cluster": {
                    "server": layout.server,
                    "certificate-authority": str(layout.pki / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": stem,
                "user": {
                    "client-certificate": str(layout.pki / f"{stem}.crt"),
                    "client-key": str(layout.pki / f"{stem}.key"),
                },
            }
        ],
        "contexts": [{"name": "tandem", "context": {"cluster": "tandem", "user": stem}}],
        "current-context": "tandem",
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)
