"""The reaction-latency distributions of scale benchmark JSONs, as one PNG (needs matplotlib,
from the `bench` extra).

    PYTHONPATH=deploy/local:operator .venv/bin/python -m tests.bench.plot \
        tests/bench/results/scale.json tests/bench/results/scale-window-60s.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

SERIES = {
    "reaction_own": "pod event → exec or phase write started (operator's log)",
    "reaction_api": "primary ended → exec or phase write at the API server (audit)",
    "primary_end_to_terminal": "primary ended → pod terminal (audit)",
}
"""Samples of each run (`samples_ms`); JSONs from before the phase path have the first two."""


def plot(results: list[tuple[str, dict[str, Any]]], out: Path) -> None:
    runs = [
        (source, r) for source, result in results for r in result["scale"] if r.get("samples_ms")
    ]
    figure, axes = plt.subplots(1, len(SERIES), figsize=(16, 4.2), sharey=True)
    for axis, (key, label) in zip(axes, SERIES.items(), strict=True):
        for source, run in runs:
            values = sorted(run["samples_ms"].get(key, ()))
            if not values:
                continue
            fractions = [(i + 1) / len(values) for i in range(len(values))]
            # Runs from before the phase path measured the exit-code path only.
            finish = run.get("finish", "ExitCodes")
            if run.get("releases", 1) > 1:
                finish += f", {run['releases']} operators"
            axis.step(
                values,
                fractions,
                where="post",
                label=f"{run['pods']:,} pods, {finish}, ends within {run['window_s']:g} s "
                f"({source})",
            )
        axis.set_xscale("log")
        axis.set_xlabel("ms (log scale)")
        axis.set_title(label, fontsize="medium")
        for target, style in ((50, ":"), (250, "--"), (1000, "-.")):
            axis.axvline(target, color="grey", linestyle=style, linewidth=1)
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("fraction of pods")
    axes[0].legend(loc="lower right", fontsize="small")
    figure.suptitle(
        f"Tandem on kwok, {results[0][1]['date']}, {results[0][1]['machine']}; lines at 50 ms "
        "(dotted), 250 ms (dashed) and 1 s (dash-dot)",
        fontsize="medium",
    )
    figure.tight_layout()
    figure.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=None, help="default: the first JSON's, .png")
    args = parser.parse_args(argv)
    out = args.out or args.json[0].with_suffix(".png")
    plot([(path.stem, json.loads(path.read_text())) for path in args.json], out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
