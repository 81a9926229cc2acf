"""Where the adapters find the cluster: a kubeconfig file, or the pod's service account."""

from __future__ import annotations

import os
from typing import Any

from kubernetes import client, config


def load_configuration(kubeconfig: str | None = None) -> client.Configuration:
    """A client configuration from KUBECONFIG (or the argument), else from the service account."""
    configuration = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path:
        config.load_kube_config(config_file=path, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    return configuration


def connection_parameters(kubeconfig: str | None = None) -> dict[str, Any]:
    """What kopf's ConnectionInfo needs, read with the same loader the exec adapter uses."""
    configuration = load_configuration(kubeconfig)
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
