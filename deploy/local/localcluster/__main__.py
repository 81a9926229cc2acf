"""`python -m localcluster {build,up,down,status}`."""

from __future__ import annotations

import argparse
import sys

from . import cluster
from .layout import Layout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localcluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build binaries and images (cached by version)")
    up = sub.add_parser("up", help="build if needed, start, and wait for a Ready node")
    up.add_argument("--no-kwok", action="store_true", help="do not start kwok and its fake node")
    down = sub.add_parser("down", help="stop everything and remove all state")
    down.add_argument("--keep-logs", action="store_true", help="copy the logs aside first")
    sub.add_parser("status", help="exit 0 when the cluster answers")
    args = parser.parse_args(argv)
    layout = Layout()
    try:
        if args.command == "build":
            cluster.build(layout)
        elif args.command == "up":
            cluster.build(layout)
            cluster.up(layout, with_kwok=not args.no_kwok)
        elif args.command == "down":
            cluster.down(layout, keep_logs=args.keep_logs)
        elif args.command == "status":
            ok = cluster.is_up(layout)
            print("up" if ok else "down")
            return 0 if ok else 1
    except cluster.ClusterError as error:
        print(f"localcluster: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
