"""Owners' signatures over a SafeTx hash: parse every kind Safe accepts, verify against the Safe's CURRENT owners.

Kinds (safe-eth-py's `SafeSignature.parse_signature` splits and classifies them; v decides):
- `eip712`   v 27/28: ECDSA over the SafeTx hash itself (a wallet's `eth_signTypedData_v4` of the SafeTx);
- `eth_sign` v 31/32: ECDSA over "\\x19Ethereum Signed Message:\\n32" + hash (`personal_sign` of the hash bytes),
             v raised by 4 so the Safe knows which form it is;
- `eip1271`  v 0: a contract owner (another Safe, a smart wallet); valid when its `isValidSignature` says so
             (for Safe 1.3/1.4 the contract is handed the whole EIP-712 preimage, checked on chain);
- `approved_hash` v 1: the owner called `approveHash(hash)` on the Safe (read from `approvedHashes`).

`verify(blob, spec=..., owners=..., reader=..., expected_owner=None)` returns one `Verdict` per signature in the
blob: accepted, or refused with a stable reason (`not_owner`, `wrong_owner`, `invalid_signature`,
`not_approved`, `malformed`). A signature over another hash recovers to some other address, so with
`expected_owner` (who says they signed) it is refused as `wrong_owner` ("signed a different hash or with
another key"), without it as `not_owner`.

`sign_hash(private_key, safe_tx_hash, kind)`: what an owner's wallet produces (devnet keys and tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from vvops.safe.tx import SafeTxSpec

NOT_OWNER, WRONG_OWNER, INVALID, NOT_APPROVED, MALFORMED, DUPLICATE = (
    "not_owner", "wrong_owner", "invalid_signature", "not_approved", "malformed", "duplicate")
KINDS = {"EOA": "eip712", "ETH_SIGN": "eth_sign", "CONTRACT_SIGNATURE": "eip1271", "APPROVED_HASH": "approved_hash"}


@dataclass(frozen=True)
class Verdict:
    owner: str | None  # the address the signature speaks for (recovered, or named by a contract/approved-hash sig)
    kind: str
    signature: str  # this one signature, exported on its own (0x...)
    accepted: bool
    reason: str | None = None
    message: str = ""


def _hex(data: bytes | str) -> bytes:
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    text = data.strip()
    text = text[2:] if text.lower().startswith("0x") else text
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError("the signature is not hex") from None


def sign_hash(private_key: str | bytes, safe_tx_hash: str, kind: str = "eip712") -> str:
    """An owner's signature of the SafeTx hash, as a wallet makes it (eip712 or eth_sign form)."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    digest = _hex(safe_tx_hash)
    if kind == "eip712":
        signed = Account.unsafe_sign_hash(digest, private_key)
        return "0x" + signed.r.to_bytes(32, "big").hex() + signed.s.to_bytes(32, "big").hex() + f"{signed.v:02x}"
    if kind == "eth_sign":
        signed = Account.sign_message(encode_defunct(primitive=digest), private_key)
        return "0x" + signed.r.to_bytes(32, "big").hex() + signed.s.to_bytes(32, "big").hex() + f"{signed.v + 4:02x}"
    raise ValueError(f"kind must be eip712 or eth_sign, not {kind!r}")


def _ethereum_client(reader: Any):
    from safe_eth.eth import EthereumClient

    rpc = reader.rpc
    url = rpc.urls[0] if hasattr(rpc, "urls") else rpc.rpc_url
    return EthereumClient(url)


def verify(blob: bytes | str, *, spec: SafeTxSpec, owners: list[str], reader: Any | None = None,
           expected_owner: str | None = None) -> list[Verdict]:
    """Check every signature in `blob` against `spec`'s hash and the Safe's current `owners`."""
    from safe_eth.safe.safe_signature import SafeSignature, SafeSignatureContract

    try:
        raw = _hex(blob)
    except ValueError as exc:
        return [Verdict(None, "unknown", str(blob)[:200], False, MALFORMED, str(exc))]
    if len(raw) < 65:
        return [Verdict(None, "unknown", "0x" + raw.hex(), False, MALFORMED,
                        f"a signature is 65 bytes (r, s, v); got {len(raw)}")]
    safe_hash = _hex(spec.safe_tx_hash)
    try:
        parsed = SafeSignature.parse_signature(raw, safe_hash, safe_hash_preimage=spec.preimage)
    except Exception as exc:  # noqa: BLE001 - a malformed blob; never trust its contents
        return [Verdict(None, "unknown", "0x" + raw[:65].hex(), False, MALFORMED, f"cannot parse: {type(exc).__name__}")]
    if not parsed:
        return [Verdict(None, "unknown", "0x" + raw[:65].hex(), False, MALFORMED, "unknown signature type (v)")]
    current = {to_checksum_address(o) for o in owners}
    expected = to_checksum_address(expected_owner) if expected_owner else None
    out: list[Verdict] = []
    for sig in parsed:
        kind = KINDS.get(sig.signature_type.name, sig.signature_type.name.lower())
        exported = "0x" + bytes(SafeSignature.export_signatures([sig]) if isinstance(sig, SafeSignatureContract)
                                else sig.export_signature()).hex()
        try:
            owner = to_checksum_address(sig.owner)
        except Exception:  # noqa: BLE001 - ecrecover failure (s out of range, bad v)
            out.append(Verdict(None, kind, exported, False, INVALID, "the signature does not recover to any address"))
            continue
        if kind in ("eip712", "eth_sign"):
            if expected and owner != expected:
                out.append(Verdict(owner, kind, exported, False, WRONG_OWNER,
                                   f"this signature is not {expected}'s signature of {spec.safe_tx_hash} "
                                   "(signed a different hash, or with another key)"))
            elif owner not in current:
                out.append(Verdict(owner, kind, exported, False, NOT_OWNER,
                                   f"{owner} is not an owner of Safe {spec.safe} (or the signature is over a "
                                   "different hash)"))
            else:
                out.append(Verdict(owner, kind, exported, True))
            continue
        if expected and owner != expected:
            out.append(Verdict(owner, kind, exported, False, WRONG_OWNER, f"the signature names {owner}, not {expected}"))
            continue
        if owner not in current:
            out.append(Verdict(owner, kind, exported, False, NOT_OWNER, f"{owner} is not an owner of Safe {spec.safe}"))
            continue
        if reader is None:
            out.append(Verdict(owner, kind, exported, False, INVALID, f"{kind} signatures need the chain to check"))
            continue
        if kind == "approved_hash":
            ok = reader.approved_hash(owner, spec.safe_tx_hash)
            out.append(Verdict(owner, kind, exported, ok, None if ok else NOT_APPROVED,
                               "" if ok else f"{owner} has not called approveHash({spec.safe_tx_hash}) on the Safe"))
            continue
        try:
            ok = bool(sig.is_valid(_ethereum_client(reader), spec.safe, safe_version=spec.version))
        except Exception as exc:  # noqa: BLE001 - a contract that reverts or answers garbage: not valid
            ok, detail = False, type(exc).__name__
        else:
            detail = "isValidSignature did not return the magic value"
        out.append(Verdict(owner, kind, exported, ok, None if ok else INVALID, "" if ok else f"EIP-1271: {detail}"))
    return out


def combine(signatures: dict[str, str], *, spec: SafeTxSpec) -> bytes:
    """One `signatures` argument for execTransaction: the accepted signatures sorted by owner (GS026 otherwise);
    contract signatures get their dynamic part appended (safe-eth-py's export_signatures)."""
    from safe_eth.safe.safe_signature import SafeSignature

    parsed = []
    for sig in signatures.values():
        parsed += SafeSignature.parse_signature(_hex(sig), _hex(spec.safe_tx_hash), safe_hash_preimage=spec.preimage)
    return bytes(SafeSignature.export_signatures(parsed))
