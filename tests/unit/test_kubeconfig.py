"""The kubeconfig is read once; kopf's login and pykube get the same server and credentials."""

from __future__ import annotations

from pathlib import Path

import yaml

from tandem.adapters import connection_parameters, load_configuration, pykube_config


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
