"""Where the clients find the cluster: a kubeconfig file (the argument, else $KUBECONFIG), else the
pod's service account. Each library reads it with its own loader.

A pod's service account token is bound: the kubelet writes a new one into the file well before the
old one expires (at 80 % of its life), and each client takes it up its own way:

- kubernetes (`load_configuration`): the in-cluster loader's refresh hook reads the file again
  before a request once its copy is a minute old;
- kopf: its login handler (the runtime's) takes the token from that configuration through
  `connection_parameters`, and kopf logs in again on a 401;
- pykube (`pykube_config`): `KubeConfig.from_service_account` reads the token once, so `Reads`
  loads it again on a 401 and sends the request once more.
"""

from __future__ import annotations

import os
from typing import Any

import pykube
from kubernetes import client, config

Configuration = client.Configuration
"""The kubernetes client's configuration, handed to its adapters and to kopf's login (the runtime
passes it on, never reads it)."""

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def _path(kubeconfig: str | None) -> str | None:
    return kubeconfig or os.environ.get("KUBECONFIG") or None


def load_configuration(kubeconfig: str | None = None) -> client.Configuration:
    """The kubernetes client's configuration from KUBECONFIG (or the argument), else from the
    service account."""
    configuration = client.Configuration()
    if path := _path(kubeconfig):
        config.load_kube_config(config_file=path, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    return configuration


def pykube_config(kubeconfig: str | None = None) -> pykube.KubeConfig:
    """pykube's configuration from the same place, by pykube's own loaders."""
    if path := _path(kubeconfig):
        return pykube.KubeConfig.from_file(path)
    return pykube.KubeConfig.from_service_account(SERVICE_ACCOUNT)


def connection_parameters(configuration: client.Configuration) -> dict[str, Any]:
    """What kopf's ConnectionInfo needs, as kopf's own `login_via_client` reads it from the
    default configuration (which knows no --kubeconfig). The token is asked for at each login,
    through the configuration's refresh hook."""
    header = (
        configuration.get_api_key_with_prefix("BearerToken")
        or configuration.get_api_key_with_prefix("authorization")
        or ""
    )
    scheme, _, token = header.partition(" ") if " " in header else ("", "", header)
    return {
        "server": configuration.host,
        "ca_path": configuration.ssl_ca_cert,
        "insecure": not configuration.verify_ssl,
        "scheme": scheme or None,
        "token": token or None,
        "certificate_path": configuration.cert_file,
        "private_key_path": configuration.key_file,
    }
