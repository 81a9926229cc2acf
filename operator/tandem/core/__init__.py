"""Tandem's decision core: pure functions over plain data, with no I/O and no third-party imports.

A pod dict goes in (`parse_pod`), with the policy that applies (`resolve`); actions come out
(`decide`). Everything here is deterministic and property-tested.
"""

from .actions import Action, Outcome, Recheck, Report, Stop
from .decide import Decision, decide, primaries_ended, sidecars_of
from .handle import handle
from .memory import PodMemory, SidecarRecord
from .names import EventType, Reason
from .policy import (
    OnPrimaryFailure,
    Policy,
    PolicyError,
    PolicySource,
    Resolution,
    StopAction,
    parse_spec,
    resolve,
)
from .view import ContainerView, PodView, Termination, parse_pod

__all__ = [
    "Action",
    "ContainerView",
    "Decision",
    "EventType",
    "OnPrimaryFailure",
    "Outcome",
    "PodMemory",
    "PodView",
    "Policy",
    "PolicyError",
    "PolicySource",
    "Reason",
    "Recheck",
    "Report",
    "Resolution",
    "SidecarRecord",
    "Stop",
    "StopAction",
    "Termination",
    "decide",
    "handle",
    "parse_pod",
    "parse_spec",
    "primaries_ended",
    "resolve",
    "sidecars_of",
]
