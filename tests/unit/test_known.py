"""Well-known sidecars: recognised by image or program, each with its documented stops."""

from __future__ import annotations

import pytest

from tandem.core.model.view import ContainerSpec
from tandem.core.policy.known import KNOWN, recognise


@pytest.mark.parametrize(
    ("image", "argv", "name", "success", "failure"),
    [
        ("docker.io/library/haproxy:2.8", (), "haproxy", "signal USR1", "signal INT"),
        ("haproxy:2.8", ("haproxy", "-db", "-f", "/cfg"), "haproxy", "signal USR1", None),
        ("haproxy:2.8", ("haproxy", "-W", "-db"), "haproxy", "signal USR1", "signal INT"),
        ("nginx:1.27@sha256:" + "a" * 64, (), "nginx", "signal QUIT", None),
        ("envoyproxy/envoy:v1.31", (), "envoy", "HTTP POST 127.0.0.1:9901/quitquitquit", None),
        (
            "docker.io/istio/proxyv2:1.23",
            (),
            "istio-proxy",
            "HTTP POST 127.0.0.1:15020/quitquitquit",
            None,
        ),
        (
            "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.13",
            ("--quitquitquit", "proj:region:db"),
            "cloud-sql-proxy v2",
            "HTTP POST 127.0.0.1:9091/quitquitquit",
            "signal TERM",
        ),
        (
            "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.13",
            ("--exit-zero-on-sigterm",),
            "cloud-sql-proxy v2",
            "signal TERM",
            "signal TERM",
        ),
        (
            "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.13",
            (),
            "cloud-sql-proxy v2",
            None,
            "signal TERM",
        ),
        ("gcr.io/cloudsql-docker/gce-proxy:1.33", (), "cloud-sql-proxy v1", "signal TERM", None),
        ("cr.l5d.io/linkerd/proxy:edge-24.1.1", (), "linkerd-proxy", "signal TERM", None),
        (
            "otel/opentelemetry-collector-contrib:0.110.0",
            (),
            "opentelemetry-collector",
            "signal TERM",
            None,
        ),
        ("fluent/fluent-bit:3.1", (), "fluent-bit", "signal TERM", None),
        (
            "hashicorp/vault:1.17",
            ("vault", "agent", "-config=/c"),
            "vault-agent",
            "signal TERM",
            None,
        ),
        ("bitnami/pgbouncer:1.23", ("pgbouncer", "/etc/p.ini"), "pgbouncer", "signal INT", None),
    ],
)
def test_recognised_with_its_stops(
    image: str, argv: tuple[str, ...], name: str, success: str | None, failure: str | None
) -> None:
    known = recognise(ContainerSpec(image, argv))
    assert known is not None and known.name == name
    found = known.success_for(argv)
    assert (found.describe() if found else None) == success
    fails = known.failure_for(argv)
    assert (fails.describe() if fails else None) == failure


@pytest.mark.parametrize(
    ("image", "argv"),
    [
        ("busybox", ("sh", "-c", "sleep 1000")),
        ("example.com/team/proxy:1", ()),  # a name ending in proxy is not linkerd's
        ("hashicorp/vault:1.17", ("vault", "server")),  # a Vault server is not an agent
        ("my-haproxy-exporter:1", ()),
    ],
)
def test_others_are_not_recognised(image: str, argv: tuple[str, ...]) -> None:
    assert recognise(ContainerSpec(image, argv)) is None


def test_every_entry_names_its_source() -> None:
    assert all(len(known.source) > 40 for known in KNOWN)
