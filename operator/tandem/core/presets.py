"""HTTP shutdown endpoints of well-known sidecars, by name. Data, documented in docs/sidecars.md.

Each is called on 127.0.0.1 from inside the pod (the sidecar's container, or Tandem's helper, which
shares the pod's network), so endpoints that listen on localhost only are reachable.
"""

from __future__ import annotations

import dataclasses


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
