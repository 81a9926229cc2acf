"""Adapters: the only code that talks to the Kubernetes API outside kopf.

`kubernetes` (exec, ephemeral containers) lives behind `kubeclient`, `pykube` (plain reads and
deletes) behind its own module; nothing above this layer imports either.
"""

from .kubeclient import (
    Executor,
    HelperAdder,
    connection_parameters,
    helper_spec,
    load_configuration,
)
from .pykube_reads import Reads
from .results import ExecResult, handshake_error, parse_error_channel

__all__ = [
    "ExecResult",
    "Executor",
    "HelperAdder",
    "Reads",
    "connection_parameters",
    "handshake_error",
    "helper_spec",
    "load_configuration",
    "parse_error_channel",
]
