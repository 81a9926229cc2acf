"""The kubeconfig, read in one place: a kubeconfig file (the argument, else $KUBECONFIG), or the
pod's service account. The kubernetes client parses it (`load_configuration`); kopf's login and
pykube take their server and credentials from that one parse."""

from __future__ import annotations

import os
from typing import Any

import pykube
from kubernetes import client, config

Configuration = client.Configuration
"""The parsed kubeconfig, handed to every client (the runtime passes it on, never reads it)."""


def load_configuration(kubeconfig: str | None = None) -> client.Configuration:
    """A client configuration from KUBECONFIG (or the argument), else from the service account."""
    configuration = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path:
        config.load_kube_config(config_file=path, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    return configuration


def _bearer(configuration: client.Configuration) -> tuple[str, str]:
    """(scheme, token) of the configuration's Authorization header; empty when it has none."""
    header = (
        configuration.get_api_key_with_prefix("BearerToken")
        or configuration.get_api_key_with_prefix("authorization")
        or ""
    )
    scheme, _, token = header.partition(" ") if " " in header else ("", "", header)
    return scheme, token


def connection_parameters(configuration: client.Configuration) -> dict[str, Any]:
    """What kopf's ConnectionInfo needs."""
    scheme, token = _bearer(configuration)
    return {
        "server": configuration.host,
        "ca_path": configuration.ssl_ca_cert,
        "insecure": not configuration.verify_ssl,
        "scheme": scheme or None,
        "token": token or None,
        "certificate_path": configuration.cert_file,
        "private_key_path": configuration.key_file,
    }


def pykube_config(configuration: client.Configuration) -> pykube.KubeConfig:
    """The same server and credentials as a pykube KubeConfig (files the loader wrote)."""
    cluster: dict[str, Any] = {"server": configuration.host}
    if configuration.ssl_ca_cert:
        cluster["certificate-authority"] = configuration.ssl_ca_cert
    if not configuration.verify_ssl:
        cluster["insecure-skip-tls-verify"] = True
    user: dict[str, Any] = {}
    if token := _bearer(configuration)[1]:
        user["token"] = token
    if configuration.cert_file and configuration.key_file:
        user["client-certificate"] = configuration.cert_file
        user["client-key"] = configuration.key_file
    return pykube.KubeConfig(
        {
            "clusters": [{"name": "tandem", "cluster": cluster}],
            "users": [{"name": "tandem", "user": user}],
            "contexts": [{"name": "tandem", "context": {"cluster": "tandem", "user": "tandem"}}],
            "current-context": "tandem",
        }
    )
