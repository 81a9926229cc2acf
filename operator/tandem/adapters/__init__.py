"""Adapters: the only code that talks to the Kubernetes API outside kopf.

`kubernetes` (exec, ephemeral containers) and `pykube` (plain reads and deletes) each live behind
one module here; nothing above this layer imports them.
"""

from .kube_exec import ExecResult, Executor, parse_error_channel
from .kubeconfig import connection_parameters, load_configuration

__all__ = [
    "ExecResult",
    "Executor",
    "connection_parameters",
    "load_configuration",
    "parse_error_channel",
]
