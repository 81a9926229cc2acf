"""The kubeconfig, read in one place: a kubeconfig file (the argument, else $KUBECONFIG), or the
pod's service account. The kubernetes client parses it (`load_configuration`); kopf's login and
pykube take their server and credentials from that one parse, and ask it for the token again at
each login and request, since a service account's token is replaced while Tandem runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pykube
from kubernetes import client, config

Configuration = client.Configuration
"""The parsed kubeconfig, handed to every client (the runtime passes it on, never reads it)."""


SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


class TokenFile:
    """A bearer token file, read again whenever it changes. A pod's service account token is
    bound: it expires (an hour by default) and the kubelet writes a new one into the file before
    then. The kubernetes client's in-cluster loader reads the file again only once a minute, on a
    timer; pykube never does. One stat per request tells whether the kubelet replaced it (a new
    file behind the volume's symlink: another inode, mtime or size)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._seen: tuple[int, int, int] | None = None
        self._token = ""

    def token(self) -> str:
        """The file's token. While the file is missing or empty, the last one read: the request
        then fails with the API server's 401, which says what is wrong, not with a local error."""
        try:
            info = os.stat(self._path)
            seen = (info.st_ino, info.st_mtime_ns, info.st_size)
            if seen != self._seen and (token := Path(self._path).read_text().strip()):
                self._token, self._seen = token, seen
        except OSError:
            pass
        return self._token

    def refresh(self, configuration: client.Configuration) -> None:
        """The kubernetes client's refresh_api_key_hook, called before every request's auth."""
        if token := self.token():
            configuration.api_key["BearerToken"] = f"Bearer {token}"


def watch_token_file(configuration: client.Configuration, path: str) -> None:
    """Makes CONFIGURATION's token the current content of PATH, for every client it feeds."""
    token_file = TokenFile(path)
    token_file.refresh(configuration)
    # The client declares the hook only by its default, None, so mypy takes that for its type.
    configuration.refresh_api_key_hook = token_file.refresh  # type: ignore[assignment]


def load_configuration(kubeconfig: str | None = None) -> client.Configuration:
    """A client configuration from KUBECONFIG (or the argument), else from the service account."""
    configuration = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path:
        config.load_kube_config(config_file=path, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
        watch_token_file(configuration, SERVICE_ACCOUNT_TOKEN)
    return configuration


def bearer(configuration: client.Configuration) -> tuple[str, str]:
    """(scheme, token) of the configuration's Authorization header; empty when it has none. Asked
    at each use: the configuration's refresh hook (TokenFile) may have a newer token."""
    header = (
        configuration.get_api_key_with_prefix("BearerToken")
        or configuration.get_api_key_with_prefix("authorization")
        or ""
    )
    scheme, _, token = header.partition(" ") if " " in header else ("", "", header)
    return scheme, token


def connection_parameters(configuration: client.Configuration) -> dict[str, Any]:
    """What kopf's ConnectionInfo needs."""
    scheme, token = bearer(configuration)
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
    """The same server and credentials as a pykube KubeConfig (files the loader wrote). Its token
    is the one of this moment: `Reads` sets each request's token itself (pykube keeps this one)."""
    cluster: dict[str, Any] = {"server": configuration.host}
    if configuration.ssl_ca_cert:
        cluster["certificate-authority"] = configuration.ssl_ca_cert
    if not configuration.verify_ssl:
        cluster["insecure-skip-tls-verify"] = True
    user: dict[str, Any] = {}
    if token := bearer(configuration)[1]:
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
