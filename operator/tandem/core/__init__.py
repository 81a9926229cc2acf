"""Tandem's decision core: pure functions over plain data, with no I/O and no third-party imports.

A pod dict goes in (`parse_pod`), with the policy that applies (`resolve`); actions come out
(`decide`). Everything here is deterministic and property-tested.
"""

from .actions import Action, AddHelper, Outcome, Recheck, Report, Stop
from .decide import Decision, decide, primaries_ended, sidecars_of
from .delivery import HELPER_NAME, Path
from .feedback import Delivery, after_delivery
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
from .view import ContainerView, PodView, RunAs, Termination, parse_pod

__all__ = [
    "HELPER_NAME",
    "Action",
    "AddHelper",
    "ContainerView",
    "Decision",
    "Delivery",
    "EventType",
    "OnPrimaryFailure",
    "Outcome",
    "Path",
    "PodMemory",
    "PodView",
    "Policy",
    "PolicyError",
    "PolicySource",
    "Reason",
    "Recheck",
    "Report",
    "Resolution",
    "RunAs",
    "SidecarRecord",
    "Stop",
    "StopAction",
    "Termination",
    "after_delivery",
    "decide",
    "handle",
    "parse_pod",
    "parse_spec",
    "primaries_ended",
    "resolve",
    "sidecars_of",
]
