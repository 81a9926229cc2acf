"""Adapters: the only code that talks to the Kubernetes API outside kopf.

`kubeconfig` says where each client finds the cluster (a kubeconfig file, else the service
account), each by its own library's loader. `kubernetes` (exec, ephemeral containers) lives behind
`kubeclient`, `pykube` (plain reads and deletes) behind `pykube_reads`; nothing above this layer
imports either.
"""

from tandem.core import ExecResult

from .kubeclient import Executor, HelperAdder, StatusWriter, helper_spec
from .kubeconfig import Configuration, connection_parameters, load_configuration, pykube_config
from .pykube_reads import Reads
from .results import handshake_error, parse_error_channel

__all__ = [
    "Configuration",
    "ExecResult",
    "Executor",
    "HelperAdder",
    "Reads",
    "StatusWriter",
    "connection_parameters",
    "handshake_error",
    "helper_spec",
    "load_configuration",
    "parse_error_channel",
    "pykube_config",
]
