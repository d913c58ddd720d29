"""`python -m vvops.coverage > docs/playbook-coverage.md`: print the playbook coverage matrix."""

from __future__ import annotations

import sys

from vvops.coverage.matrix import render_matrix
from vvops.coverage.playbook import PlaybookMissing, load_items


def main() -> int:
    try:
        items = load_items()
    except PlaybookMissing as exc:
        print(f"vvops.coverage: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render_matrix(items))
    return 0


if __name__ == "__main__":
    sys.exit(main())
