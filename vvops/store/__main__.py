"""`python -m vvops.store upgrade|downgrade|current|heads|revision`: manage the ops store schema."""

from __future__ import annotations

from vvops.store.db import (
    StoreUnavailable,
    current_revision,
    default_store_url,
    downgrade,
    head_revision,
    migrate,
    new_revision,
)


def main(argv: list[str] | None = None) -> int:
    """`python -m vvops.store upgrade|downgrade|current|revision` against VVOPS_STORE_URL or the default store."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m vvops.store", description=main.__doc__)
    parser.add_argument("command", choices=["upgrade", "downgrade", "current", "heads", "revision"])
    parser.add_argument("revision", nargs="?", help="target revision (upgrade: head, downgrade: base)")
    parser.add_argument("-m", "--message", help="message for a new revision")
    parser.add_argument("--url", help="store URL (default: VVOPS_STORE_URL or the SQLite file)")
    args = parser.parse_args(argv)
    url = args.url or default_store_url()
    try:
        if args.command == "upgrade":
            migrate(url, args.revision or "head")
        elif args.command == "downgrade":
            downgrade(url, args.revision or "base")
        elif args.command == "current":
            print(current_revision(url) or "(none)")
        elif args.command == "heads":
            print(head_revision() or "(none)")
        else:
            if not args.message:
                parser.error("revision needs -m MESSAGE")
            new_revision(message=args.message, url=url)
    except StoreUnavailable as error:
        print(f"error: {error}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
