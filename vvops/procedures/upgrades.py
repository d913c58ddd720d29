"""Protocol Upgrades / Pre-deployment Checklist: is the new implementation the approved code, and layout-safe."""

from __future__ import annotations

from typing import Any


def _slots(layout: list[dict[str, Any]] | dict[str, Any]) -> list[tuple[str, int, int, str]]:
    storage = layout.get("storage", []) if isinstance(layout, dict) else layout
    return [(s["label"], int(s["slot"]), int(s["offset"]), _type_label(s["type"])) for s in storage]


def _type_label(type_id: str) -> str:
    # solc type ids carry AST ids (t_contract(IERC20)1234): compare the readable part only.
    return type_id.rstrip("0123456789") if type_id.startswith("t_contract") else type_id


def storage_layout_problems(current: list[dict[str, Any]] | dict[str, Any], new: list[dict[str, Any]] | dict[str, Any]) -> list[str]:
    """Every variable of the current layout must keep its slot, offset and type in the new one (appends are fine)."""
    new_by_position = {(slot, offset): (label, type_) for label, slot, offset, type_ in _slots(new)}
    problems = []
    for label, slot, offset, type_ in _slots(current):
        found = new_by_position.get((slot, offset))
        if found is None:
            problems.append(f"`{label}` (slot {slot}, offset {offset}) has no variable at that position in the new layout")
        elif found[1] != type_:
            problems.append(f"slot {slot} offset {offset}: `{label}` is {type_} but the new layout has `{found[0]}` of {found[1]}")
        elif found[0] != label:
            problems.append(f"slot {slot} offset {offset}: `{label}` is renamed to `{found[0]}` (same type; confirm it is intended)")
    return problems


def masked_code_hash(code: bytes, immutable_references: list[dict[str, int]]) -> str:
    """keccak256 of runtime code with immutable slots zeroed: they are filled at deploy time, so the
    same source deployed twice differs only there."""
    from eth_utils import keccak

    masked = bytearray(code)
    for ref in immutable_references:
        masked[ref["start"] : ref["start"] + ref["length"]] = bytes(ref["length"])
    return "0x" + keccak(bytes(masked)).hex()
