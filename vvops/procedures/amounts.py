"""Token amounts as people read them: `181,502.86 vvUSD`, not `181,502,860,000,000,000,000,000`.

`format_amount(raw, decimals, symbol)` scales a raw integer by the token's decimals (up to 6 fractional
digits, trailing zeros dropped). `amount_formatter(...)` returns a `(key, value) -> str` for the values of a
contract that are amounts of its asset (parameters with `decimals`, invariant operands of an ERC-4626-style
vault), used by approval descriptions and impact tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any


def format_amount(raw: int, decimals: int, symbol: str) -> str:
    value = Decimal(int(raw)).scaleb(-int(decimals))
    text = f"{value:,.6f}".rstrip("0").rstrip(".")
    return f"{text} {symbol}".strip()


def plain(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**6:
        return f"{value:,}"
    return str(value)


def amount_formatter(*, decimals: int | None, symbol: str, amount_keys: Iterable[str]) -> Callable[[str, Any], str]:
    keys = set(amount_keys)

    def fmt(key: str, value: Any) -> str:
        if decimals is not None and key in keys and isinstance(value, int) and not isinstance(value, bool):
            return format_amount(value, decimals, symbol)
        return plain(value)

    return fmt


def asset_amount_keys(contract: Any) -> set[str]:
    """Values of `contract` denominated in its asset: token-unit parameters and invariant operands (vaults)."""
    keys = {p.getter for p in contract.parameters.values() if getattr(p, "decimals", None) is not None}
    if getattr(contract, "kind", "") == "vault":
        keys |= {g for inv in contract.invariants for g in (inv.left, inv.right) if g}
        keys |= {"totalAssets", "totalSupply", "totalLiabilities"}
    return keys
