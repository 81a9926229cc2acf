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
    "reaction_own": "pod event → stop started (operator's log)",
    "reaction_api": "primary ended → exec at the API server (audit)",
}


def plot(results: list[tuple[str, dict[str, Any]]], out: Path) -> None:
    runs = [
        (source, r) for source, result in results for r in result["scale"] if r.get("samples_ms")
    ]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for axis, (key, label) in zip(axes, SERIES.items(), strict=True):
        for source, run in runs:
            values = sorted(run["samples_ms"][key])
            if not values:
                continue
            fractions = [(i + 1) / len(values) for i in range(len(values))]
            axis.step(
                values,
                fractions,
                where="post",
                label=f"{run['pods']:,} pods, ends within {run['window_s']:g} s ({source})",
            )
        axis.set_xscale("log")
        axis.set_xlabel("reaction, ms (log scale)")
        axis.set_title(label, fontsize="medium")
        axis.axvline(50, color="grey", linestyle=":", linewidth=1)
        axis.axvline(250, color="grey", linestyle="--", linewidth=1)
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("fraction of pods (dotted: 50 ms, dashed: 250 ms)")
    axes[0].legend(loc="lower right", fontsize="small")
    figure.suptitle(
        f"Tandem on kwok, {results[0][1]['date']}, {results[0][1]['machine']}", fontsize="medium"
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
