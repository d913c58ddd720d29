"""The Safe Transaction Service, through safe-eth-py's `TransactionServiceApi` (base URL from environments.yaml
`safe.transaction_service_url`; an API key, when the hosted service needs one, from SAFE_TRANSACTION_SERVICE_API_KEY).

- `post_proposal(gov, engine, key, executor)`: propose the stored SafeTx there, once. The service accepts a
  proposal only from an owner or a delegate of the Safe, signed over the SafeTx hash: our executor key signs as
  the proposing delegate (register it once in Safe{Wallet} → Settings → Delegates). Its signature is not an
  owner's confirmation and never counts toward the threshold.
- `pull_confirmations(gov, engine, reader, key)`: read the owners' confirmations back and verify each one here
  (vvops.safe.proposals.add_signature, source "service"): the service is a mailbox, not an authority.

Errors from the service are raised as `TransactionServiceError` with the HTTP status, never its body (bodies may
echo what was sent).
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from vvops.safe import proposals
from vvops.safe.contracts import SafeReader
from vvops.safe.governance import SafeGovernance
from vvops.safe.tx import SafeTxSpec
from vvops.store import session_scope
from vvops.store.safe_models import SafeConfirmation, SafeTransaction


class TransactionServiceError(RuntimeError):
    """The Transaction Service refused or did not answer (status and path only)."""


def _api(gov: SafeGovernance):
    from safe_eth.eth import EthereumNetwork
    from safe_eth.safe.api import TransactionServiceApi

    try:
        network = EthereumNetwork(gov.chain_id)
    except ValueError:
        network = EthereumNetwork.UNKNOWN
    return TransactionServiceApi(network, base_url=gov.service_url.rstrip("/"),
                                 api_key=os.environ.get("SAFE_TRANSACTION_SERVICE_API_KEY") or None,
                                 request_timeout=10)


def _get(api, path: str) -> Any:
    try:
        response = api._get_request(path)  # safe-eth-py's session (timeouts, retries, API key header)
    except Exception as exc:  # noqa: BLE001 - connection errors: the message may hold the URL only
        raise TransactionServiceError(f"Transaction Service unreachable: {type(exc).__name__}") from None
    if response.status_code == 404:
        return None
    if not response.ok:
        raise TransactionServiceError(f"Transaction Service GET {path}: HTTP {response.status_code}")
    return response.json()


def _safe_tx(spec: SafeTxSpec, signatures: bytes = b""):
    from safe_eth.safe.safe_tx import SafeTx

    data = bytes.fromhex(spec.data[2:])
    return SafeTx(None, spec.safe, spec.to, int(spec.value), data, int(spec.operation), int(spec.safe_tx_gas),
                  int(spec.base_gas), int(spec.gas_price), spec.gas_token, spec.refund_receiver,
                  signatures=signatures, safe_nonce=int(spec.nonce), safe_version=spec.version,
                  chain_id=int(spec.chain_id))


def post_proposal(gov: SafeGovernance, engine: Engine, key: str, *, executor: Any) -> bool:
    """Propose the stored SafeTx on the service unless it is there already; True if posted now."""
    from safe_eth.safe.api import SafeAPIException

    with session_scope(engine) as session:
        row = session.scalar(select(SafeTransaction).where(SafeTransaction.idempotency_key == key))
        spec = SafeTxSpec.from_dict(row.spec)
    api = _api(gov)
    if _get(api, f"/api/v2/multisig-transactions/{spec.safe_tx_hash}/") is not None:
        return False
    signature = executor.sign_hash(bytes.fromhex(spec.safe_tx_hash[2:]))
    try:
        api.post_transaction(_safe_tx(spec, bytes.fromhex(signature[2:])))
    except SafeAPIException:
        raise TransactionServiceError("Transaction Service refused the proposal (is the executor key a delegate "
                                      f"of Safe {gov.address}?)") from None
    except Exception as exc:  # noqa: BLE001
        raise TransactionServiceError(f"Transaction Service unreachable: {type(exc).__name__}") from None
    return True


def pull_confirmations(gov: SafeGovernance, engine: Engine, reader: SafeReader, key: str) -> int:
    """Verify and store the owners' confirmations the service holds that we have not seen; returns how many new."""
    with session_scope(engine) as session:
        row = session.scalar(select(SafeTransaction).where(SafeTransaction.idempotency_key == key))
        safe_tx_hash = row.safe_tx_hash
        seen = set(session.scalars(select(SafeConfirmation.signature).where(SafeConfirmation.safe_tx_id == row.id)))
    tx = _get(_api(gov), f"/api/v2/multisig-transactions/{safe_tx_hash}/")
    if not tx:
        return 0
    if (tx.get("safeTxHash") or "").lower() != safe_tx_hash.lower():
        raise TransactionServiceError(f"the service answered for {tx.get('safeTxHash')!r}, not {safe_tx_hash}")
    new = 0
    owners = reader.owners()
    for conf in tx.get("confirmations") or []:
        signature = (conf.get("signature") or "").lower()
        if not signature or signature in {s.lower() for s in seen}:
            continue
        owner = conf.get("owner")
        proposals.add_signature(engine, reader, gov, key, signature=signature, source="service",
                                person=gov.person_of(owner), submitted_by=f"transaction-service:{owner}",
                                owners=owners)
        seen.add(signature)
        new += 1
    return new
