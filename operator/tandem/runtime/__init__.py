"""The runtime: kopf handlers, the reconciler that runs the core, Events, metrics and settings."""

from .logs import configure as configure_logging
from .operator import serve
from .settings import Settings

__all__ = ["Settings", "configure_logging", "serve"]
