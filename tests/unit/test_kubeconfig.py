"""The kubeconfig is read once; kopf's login and pykube get the same server and credentials, and
the service account's token as the kubelet last wrote it (bound tokens expire)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from kubernetes.config import incluster_config

from tandem.adapters import (
    Reads,
    connection_parameters,
    kubeconfig,
    load_configuration,
    pykube_config,
)


def test_one_parse_feeds_kopf_and_pykube(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("not checked here")
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": "https://10.0.0.1:6443",
                            "certificate-authority": str(ca),
                        },
                    }
                ],
                "users": [{"name": "u", "user": {"token": "s3cret"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    configuration = load_configuration(str(kubeconfig))
    login = connection_parameters(configuration)
    assert (login["server"], login["token"], login["ca_path"]) == (
        "https://10.0.0.1:6443",
        "s3cret",
        str(ca),
    )
    assert login["scheme"] == "Bearer" and not login["insecure"]
    pykube = pykube_config(configuration)
    assert pykube.cluster["server"] == "https://10.0.0.1:6443"
    assert pykube.user["token"] == "s3cret"
    assert str(pykube.cluster["certificate-authority"].filename()) == str(ca)


class Recorder:
    """Stands in for pykube's transport (its adapter's `_do_send`, which pykube keeps as the seam
    for tests): records each request's Authorization header and answers a node."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def __call__(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:
        self.sent.append(str(request.headers.get("Authorization")))
        response = requests.Response()
        response.status_code = 200
        response.headers["content-type"] = "application/json"
        response._content = json.dumps({"status": {"nodeInfo": {"kubeletVersion": "v1"}}}).encode()
        return response


def rotate(path: Path, token: str) -> None:
    """What the kubelet does: a new file swapped in whole (another inode), not a rewrite."""
    new = path.with_name(".new")
    new.write_text(token + "\n")
    os.replace(new, path)


@pytest.fixture
def service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The pod's service account as the in-cluster loader reads it, in TMP_PATH."""
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("first\n")
    ca.write_text("not checked here")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_TOKEN", str(token))
    return token


def test_every_client_sends_the_service_account_token_the_kubelet_wrote_last(
    service_account: Path,
) -> None:
    configuration = load_configuration()
    reads = Reads(configuration)
    recorder = Recorder()
    reads._api.session.get_adapter("https://127.0.0.1:6443")._do_send = recorder
    assert reads.kubelet_version("n") == "v1"

    rotate(service_account, "second")
    assert reads.kubelet_version("n") == "v1"
    # pykube, kopf's next login and the kubernetes client all take the new token at once.
    assert recorder.sent == ["Bearer first", "Bearer second"]
    assert connection_parameters(configuration)["token"] == "second"
    assert configuration.auth_settings()["BearerToken"]["value"] == "Bearer second"


def test_a_token_rewritten_in_place_is_read_again(service_account: Path) -> None:
    configuration = load_configuration()
    assert connection_parameters(configuration)["token"] == "first"
    service_account.write_text("second-and-longer\n")
    assert connection_parameters(configuration)["token"] == "second-and-longer"


def test_while_the_file_is_empty_or_gone_the_last_token_stays(service_account: Path) -> None:
    configuration = load_configuration()
    service_account.write_text("")
    assert connection_parameters(configuration)["token"] == "first"
    service_account.unlink()
    assert connection_parameters(configuration)["token"] == "first"
    rotate(service_account, "third")
    assert connection_parameters(configuration)["token"] == "third"
