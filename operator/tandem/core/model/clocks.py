"""The two clocks, as distinct types so that one cannot be passed for the other.

`Monotonic`: intervals inside one operator process (grace periods, re-checks). `WallTime`: what
the API server stamps (a container's finishedAt), which the sweep compares with.
"""

from __future__ import annotations

from typing import NewType

Monotonic = NewType("Monotonic", float)
WallTime = NewType("WallTime", float)
