"""Each client reads the cluster's address and credentials with its own library's loader, from
the same place; and each takes up the service account token the kubelet wrote last (bound tokens
expire): the kubernetes client and kopf's login within the loader's minute, pykube on a 401."""

from __future__ import annotations

import datetime
import json
import os
import types
from pathlib import Path
from typing import Any

import pykube
import pytest
import requests
from kubernetes.config import incluster_config
from pykube.http import KubernetesHTTPAdapter

from tandem.adapters import Reads, connection_parameters, kubeconfig, load_configuration
from tandem.adapters.kubeconfig import pykube_config

from .loopback import write_kubeconfig


def test_a_kubeconfig_file_gives_kopf_and_pykube_the_same_server_and_credentials(
    tmp_path: Path,
) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("not checked here")
    path = write_kubeconfig(tmp_path / "config", "https://10.0.0.1:6443", "s3cret", ca)
    login = connection_parameters(load_configuration(str(path)))
    assert (login["server"], login["token"], login["ca_path"]) == (
        "https://10.0.0.1:6443",
        "s3cret",
        str(ca),
    )
    assert login["scheme"] == "Bearer" and not login["insecure"]
    pykube = pykube_config(str(path))
    assert pykube.cluster["server"] == "https://10.0.0.1:6443"
    assert pykube.user["token"] == "s3cret"
    assert str(pykube.cluster["certificate-authority"].filename()) == str(ca)


class Recorder:
    """Stands in for pykube's transport (its adapter's `_do_send`, which pykube keeps as the seam
    for tests): records each request's Authorization header and answers a pod, or 401 to a
    token in REJECTED."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.rejected: set[str] = set()

    def __call__(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:
        header = str(request.headers.get("Authorization"))
        self.sent.append(header)
        response = requests.Response()
        response.headers["content-type"] = "application/json"
        if header.removeprefix("Bearer ") in self.rejected:
            response.status_code = 401
            response._content = b'{"kind": "Status", "code": 401, "message": "Unauthorized"}'
        else:
            response.status_code = 200
            response._content = json.dumps(POD).encode()
        return response


POD = {"kind": "Pod", "metadata": {"name": "p"}}


def rotate(path: Path, token: str) -> None:
    """What the kubelet does: a new file swapped in whole (another inode), not a rewrite."""
    new = path.with_name(".new")
    new.write_text(token)
    os.replace(new, path)


@pytest.fixture
def service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The pod's service account as both loaders read it, in TMP_PATH; its token file."""
    token = tmp_path / "token"
    token.write_text("first")
    (tmp_path / "ca.crt").write_text("not checked here")
    (tmp_path / "namespace").write_text("tandem-system")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(tmp_path / "ca.crt"))
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT", str(tmp_path))
    return token


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    # On the class: Reads makes a new client, with a new adapter, when it loads again.
    monkeypatch.setattr(
        KubernetesHTTPAdapter, "_do_send", lambda _, request, **kwargs: recorder(request)
    )
    return recorder


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The kubernetes loader's clock, SECONDS ahead."""

    class Later(datetime.datetime):
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> Later:
            return cls.fromtimestamp(datetime.datetime.now(tz).timestamp() + seconds, tz)

    clock = types.SimpleNamespace(datetime=Later, timedelta=datetime.timedelta)
    monkeypatch.setattr(incluster_config, "datetime", clock)


def test_the_kubernetes_client_and_kopfs_login_take_a_new_token_within_a_minute(
    service_account: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configuration = load_configuration()
    assert connection_parameters(configuration)["token"] == "first"
    rotate(service_account, "second")
    # The old token stays valid long after the kubelet wrote the new one (it writes at 80 % of
    # the old one's life), so the loader's minute is soon enough.
    later(monkeypatch, 61)
    assert connection_parameters(configuration)["token"] == "second"
    assert configuration.auth_settings()["BearerToken"]["value"] == "bearer second"


def test_pykube_reads_the_new_token_when_the_old_one_is_refused(
    service_account: Path, recorder: Recorder
) -> None:
    reads = Reads()
    assert reads.pod("ns", "p") == POD
    rotate(service_account, "second")
    assert reads.pod("ns", "p") == POD
    recorder.rejected.add("first")
    assert reads.pod("ns", "p") == POD
    assert reads.pod("ns", "p") == POD
    assert recorder.sent == ["Bearer first"] * 3 + ["Bearer second"] * 2


def test_a_refused_token_is_tried_again_once_then_the_401_is_raised(
    service_account: Path, recorder: Recorder
) -> None:
    reads = Reads()
    recorder.rejected.add("first")
    with pytest.raises(pykube.exceptions.HTTPError, match="Unauthorized"):
        reads.pod("ns", "p")
    assert recorder.sent == ["Bearer first", "Bearer first"]
