"""`python -m vvops.devnet up|down|status` (also what `devnet_up(foreground=False)` spawns)."""

from __future__ import annotations

import argparse
import json
import sys

from vvops.devnet.service import DEFAULT_BLOCK_TIME, DEFAULT_PORT, DevnetError, devnet_down, devnet_status, devnet_up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vvops.devnet")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start anvil, deploy the contracts, run synthetic activity (foreground)")
    up.add_argument("--port", type=int, default=DEFAULT_PORT)
    up.add_argument("--block-time", type=float, default=DEFAULT_BLOCK_TIME, help="seconds per block; 0 = one per tx")
    up.add_argument("--activity-interval", type=float, default=2.0, help="seconds between actions; 0 = none")
    up.add_argument("--timelock-delay", type=int, default=3600)
    up.add_argument("--seed", type=int, default=None)
    up.add_argument("--background", action="store_true")
    up.add_argument("--governance", choices=("eoa", "safe"), default="eoa")
    up.add_argument("--protocol", choices=("veritasvault", "openzeppelin"), default="veritasvault")
    sub.add_parser("down", help="stop the devnet started by another process")
    sub.add_parser("status", help="print the devnet status as JSON")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            devnet_up(port=args.port, block_time=args.block_time or None, activity_interval=args.activity_interval or None,
                      timelock_delay=args.timelock_delay, seed=args.seed, foreground=not args.background,
                      governance=args.governance, protocol=args.protocol)
        elif args.command == "down":
            devnet_down()
        else:
            print(json.dumps(devnet_status(), indent=2))
    except DevnetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
