"""Well-known sidecars: how to recognise each from its container, and its documented clean stop.

One data table. A sidecar is recognised by the last part of its image's name (registry, tag and
digest dropped) or by the program it runs (the first word of command/args). An explicit action,
in a SidecarPolicy or its defaultAction, always wins over this knowledge.

`success`: the stop after which the program exits 0, if it has one (a finish by phase sends it
before writing the phase, so that the sidecar ends cleanly). `failure`: a stop after which it
exits non-zero, if documented; without one, a restart in tandem needs KILL through a shared PID
namespace. Flags that the program needs for a stop are looked for in its command and args.

`PRESETS`: the HTTP shutdown endpoints of well-known sidecars, by name, for a policy's
`{preset: NAME}` (documented in docs/sidecars.md). Each is called on 127.0.0.1 from inside the pod
(the sidecar's container, or Tandem's helper, which shares the pod's network), so endpoints that
listen on localhost only are reachable. The table below takes its endpoints from there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ..model.stop import ActionKind, StopAction
from ..model.view import ContainerSpec


def _signal(name: str) -> StopAction:
    return StopAction(ActionKind.SIGNAL, signal=name)


def _post(port: int, path: str) -> StopAction:
    return StopAction(ActionKind.HTTP_POST, port=port, path=path)


TERM = _signal("TERM")


@dataclasses.dataclass(frozen=True)
class Preset:
    port: int
    path: str
    exits: str
    """What the program exits with after the call, and what it needs to have the endpoint."""


PRESETS: dict[str, Preset] = {
    "istio": Preset(
        15020, "/quitquitquit", "pilot-agent stops Envoy and exits 0 (istio-proxy's status port)"
    ),
    "cloud-sql-proxy": Preset(
        9091, "/quitquitquit", "exits 0; v2 needs --quitquitquit (admin port 9091)"
    ),
    "linkerd": Preset(
        4191,
        "/shutdown",
        "exits 0; needs LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED=true (admin 4191)",
    ),
    "envoy": Preset(9901, "/quitquitquit", "exits 0 (Envoy's admin interface, default 9901)"),
}


def _endpoint(preset: str) -> StopAction:
    """PRESET's endpoint as a plain httpPost (the table's own stop, not a policy's preset)."""
    return _post(PRESETS[preset].port, PRESETS[preset].path)


@dataclasses.dataclass(frozen=True)
class KnownSidecar:
    name: str
    images: tuple[str, ...]
    """Ends of image names, tag and digest dropped: `haproxy` matches `docker.io/library/haproxy`,
    `linkerd/proxy` matches `cr.l5d.io/linkerd/proxy`."""
    programs: tuple[str, ...]
    """Basenames of the program in command/args."""
    success: StopAction | None
    failure: StopAction | None
    source: str
    needs: tuple[tuple[str, StopAction | None], ...] = ()
    """(flag, success stop): the first flag present in the argv chooses the success stop; with
    flags listed and none present, `success` applies."""
    args_required: tuple[str, ...] = ()
    """Words that must appear in the argv as well (a subcommand, such as vault's `agent`)."""
    failure_needs: tuple[str, ...] = ()
    """Flags of which one must be in the argv for FAILURE_WITH to apply (empty string: an argv
    left to the image, whose entrypoint adds the flag)."""
    failure_with: StopAction | None = None
    ships: bool = False
    """It ships data the pod produced (logs, spans, metrics) and flushes it on its stop, maybe
    through a proxy of the same pod: it stops, and is awaited, before the others (the phase
    road's `stop_groups`)."""

    def success_for(self, argv: tuple[str, ...]) -> StopAction | None:
        for flag, stop in self.needs:
            if _has_flag(argv, flag):
                return stop
        return self.success

    def failure_for(self, argv: tuple[str, ...]) -> StopAction | None:
        if any(_has_flag(argv, flag) if flag else not argv for flag in self.failure_needs):
            return self.failure_with
        return self.failure


def _has_flag(argv: tuple[str, ...], flag: str) -> bool:
    return any(word == flag or word.startswith(flag + "=") for word in argv)


KNOWN: tuple[KnownSidecar, ...] = (
    KnownSidecar(
        "haproxy",
        ("haproxy", "haproxytech/haproxy-debian", "haproxytech/haproxy-alpine"),
        ("haproxy",),
        success=_signal("USR1"),
        failure=None,
        failure_needs=("-W", "-Ws", ""),
        failure_with=_signal("INT"),
        source="haproxy src/haproxy.c registers USR1 (soft stop, exit 0) but no TERM or INT "
        "handler outside master-worker mode, so a -db PID 1 ignores them; src/mworker.c: the "
        "master exits 0 on USR1 and TERM, 130 on INT; the official image's entrypoint runs "
        "haproxy -W -db (docker-library/haproxy)",
    ),
    KnownSidecar(
        "nginx",
        ("nginx", "nginxinc/nginx-unprivileged"),
        ("nginx",),
        success=_signal("QUIT"),
        failure=None,
        source="nginx.org/en/docs/control.html: QUIT graceful shutdown; "
        "ngx_master_process_exit() exits 0; the official image's STOPSIGNAL is SIGQUIT",
    ),
    KnownSidecar(
        "envoy",
        ("envoyproxy/envoy", "envoyproxy/envoy-distroless"),
        ("envoy",),
        success=_endpoint("envoy"),
        failure=None,
        source="envoy docs, operations/admin: POST /quitquitquit cleanly exits (0); the admin port "
        "comes from the bootstrap, 9901 by convention",
    ),
    KnownSidecar(
        "istio-proxy",
        ("istio/proxyv2", "proxyv2"),
        ("pilot-agent",),
        success=_endpoint("istio"),
        failure=None,
        source="istio pilot/cmd/pilot-agent/status/server.go handleQuit: POST "
        "localhost:15020/quitquitquit stops Envoy and the agent, exit 0",
    ),
    KnownSidecar(
        "cloud-sql-proxy v2",
        ("cloud-sql-connectors/cloud-sql-proxy", "cloud-sql-proxy"),
        ("cloud-sql-proxy",),
        success=None,
        failure=TERM,
        needs=(
            ("--quitquitquit", _endpoint("cloud-sql-proxy")),
            ("--exit-zero-on-sigterm", TERM),
        ),
        source="cloud-sql-proxy cmd/root.go: --quitquitquit serves POST /quitquitquit on the "
        "admin port (9091), exit 0; SIGTERM exits 143 unless --exit-zero-on-sigterm",
    ),
    KnownSidecar(
        "cloud-sql-proxy v1",
        ("cloudsql-docker/gce-proxy", "gce-proxy"),
        ("cloud_sql_proxy",),
        success=TERM,
        failure=None,
        source="cloud-sql-proxy v1 cmd/cloud_sql_proxy/cloud_sql_proxy.go: TERM exits 0 once "
        "connections close within -term_timeout; no quit endpoint",
    ),
    KnownSidecar(
        "linkerd-proxy",
        ("linkerd/proxy", "linkerd-io/proxy"),
        ("linkerd2-proxy",),
        success=TERM,
        failure=None,
        source="linkerd2-proxy src/main.rs: SIGTERM drains and exits 0 (POST :4191/shutdown does "
        "the same only with LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED=true: preset linkerd)",
    ),
    KnownSidecar(
        "opentelemetry-collector",
        (
            "otel/opentelemetry-collector",
            "otel/opentelemetry-collector-contrib",
            "otel/opentelemetry-collector-k8s",
        ),
        ("otelcol", "otelcol-contrib", "otelcol-k8s"),
        success=TERM,
        failure=None,
        source="opentelemetry-collector otelcol/collector.go: SIGTERM shuts down gracefully, "
        "exit 0",
        ships=True,
    ),
    KnownSidecar(
        "fluent-bit",
        ("fluent/fluent-bit", "fluent-bit"),
        ("fluent-bit",),
        success=TERM,
        failure=None,
        source="fluent-bit src/flb_engine.c: SIGTERM flushes for up to grace (5 s), then exits "
        "with exit_status_code, 0",
        ships=True,
    ),
    KnownSidecar(
        "vector",
        ("timberio/vector",),
        ("vector",),
        success=TERM,
        failure=None,
        source="vector docs, administration/process-management: SIGTERM stops the sources, "
        "closes connections, flushes the sinks' buffers and exits 0",
        ships=True,
    ),
    KnownSidecar(
        "vault-agent",
        ("hashicorp/vault", "vault"),
        ("vault",),
        success=TERM,
        failure=None,
        args_required=("agent",),
        source="vault command/agent.go: SIGTERM and SIGINT shut the agent down, exit 0",
    ),
    KnownSidecar(
        "pgbouncer",
        ("pgbouncer",),
        ("pgbouncer",),
        success=_signal("INT"),
        failure=None,
        source="pgbouncer.org/usage.html#signals: SIGINT safe shutdown in every version (SIGTERM "
        "changed meaning in 1.23)",
    ),
)


def image_path(image: str) -> str:
    """`docker.io/library/haproxy` for `docker.io/library/haproxy:2.8@sha256:...`."""
    path = image.split("@", 1)[0]
    last = path.rsplit("/", 1)
    last[-1] = last[-1].split(":", 1)[0]
    return "/".join(last)


def _image_matches(image: str, ends: tuple[str, ...]) -> bool:
    path = image_path(image)
    return any(path == end or path.endswith("/" + end) for end in ends)


def recognise(spec: ContainerSpec | None) -> KnownSidecar | None:
    if spec is None:
        return None
    program = spec.argv[0].rsplit("/", 1)[-1] if spec.argv else ""
    for known in KNOWN:
        if not (_image_matches(spec.image, known.images) or program in known.programs):
            continue
        if all(word in spec.argv for word in known.args_required):
            return known
    return None


def recognised(specs: Mapping[str, ContainerSpec], name: str) -> KnownSidecar | None:
    return recognise(specs.get(name))
