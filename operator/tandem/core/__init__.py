"""Tandem's decision core: pure functions over plain data, with no I/O and no third-party imports.

A pod dict goes in (`parse_pod`), with the policy that applies (`resolve`); actions come out
(`decide`), Reports (the Events) among them. The runtime carries the actions out and hands the
plain results back (`learn`). docs/development.md (Layout) lists the modules in pipeline order;
import-linter keeps that order.
"""

from .finish.decide import Decision, decide, handle, managed_job_pod, primaries_ended, sidecars_of
from .finish.decision import CoreSettings, PodMemory, SidecarRecord
from .finish.delivery import Delivery
from .finish.exec.helper import HELPER_COMMAND, helper_user
from .finish.learn import Learned, learn
from .finish.routes import HELPER_NAME
from .model.actions import (
    Action,
    AddHelper,
    ExecResult,
    Finish,
    Outcome,
    Phase,
    Recheck,
    Report,
    Stop,
    Tally,
)
from .model.clocks import Monotonic, WallTime
from .model.names import EventType, Reason
from .model.stop import ActionKind, StopPath
from .model.view import ContainerView, Owner, PodView, RunAs, Termination, parse_pod
from .policy.policy import (
    FinishMode,
    OnPrimaryFailure,
    Policy,
    PolicyError,
    PolicySource,
    Resolution,
    StopAction,
    parse_spec,
    resolve,
)
from .policy.stop_action import ForcedPath

__all__ = [
    "HELPER_COMMAND",
    "HELPER_NAME",
    "Action",
    "ActionKind",
    "AddHelper",
    "ContainerView",
    "CoreSettings",
    "Decision",
    "Delivery",
    "EventType",
    "ExecResult",
    "Finish",
    "FinishMode",
    "ForcedPath",
    "Learned",
    "Monotonic",
    "OnPrimaryFailure",
    "Outcome",
    "Owner",
    "Phase",
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
    "StopPath",
    "Tally",
    "Termination",
    "WallTime",
    "decide",
    "handle",
    "helper_user",
    "learn",
    "managed_job_pod",
    "parse_pod",
    "parse_spec",
    "primaries_ended",
    "resolve",
    "sidecars_of",
]
