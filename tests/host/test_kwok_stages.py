"""deploy/local/kwok/stages.yaml played through kwok's own stage code, offline (no cluster):
`deploy/local/kwok/stagecheck`. The benchmarks' figures rest on these stages: as the real kubelet
does, a terminal phase written through the API together with the annotation tandem.dev/finished
stops the containers, and the phase written alone stops nothing and is put back to Running; and
exactly one stage matches each pod state (kwok picks at random when several do)."""

from __future__ import annotations

import os
import subprocess

from localcluster import Layout

from ..operator_process import ROOT


def test_the_kwok_stages_play_as_the_benchmarks_need() -> None:
    layout = Layout()
    done = subprocess.run(
        ["bash", str(ROOT / "deploy" / "local" / "kwok" / "stagecheck" / "run.sh"), "-v"],
        env={**os.environ, "KWOK_VERSION": layout.kwok_version},
        capture_output=True,
        text=True,
        timeout=540,  # under pytest-timeout's 600 s
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, (
        "the kwok stage check failed (it needs kwok's module in the Go module cache, which "
        f"`python -m localcluster build` fills):\n{output[-4000:]}"
    )
    for test in (
        "TestAPhaseWrittenWithTheAnnotationStopsTheContainers",
        "TestAPhaseWrittenWithoutTheAnnotationIsPutBackAndStopsNothing",
        "TestADeletedPodIsKwoksPodDeleteAlone",
        "TestTheExitCodePathsEndIsLeftAlone",
    ):
        assert f"--- PASS: {test}" in output, output[-4000:]
