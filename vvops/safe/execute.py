"""Executing a Safe proposal exactly once: `execTransaction` sent by the executor key through ChainActions.

`execute(engine, rpc, gov, key, signer)`:
1. Look at the chain first (`proposals.refresh`): an `ExecutionSuccess` for the hash → executed (by the owners
   themselves if it was not our transaction) and nothing is sent; the Safe's nonce moved past ours without it →
   superseded (`SafeTxSuperseded`); `ExecutionFailure` → `SafeTxFailed`.
2. Threshold not met (current owners, current threshold) → `ThresholdNotMet`, nothing sent.
3. Otherwise the signatures used are frozen in the store first (so a rerun after a crash sends byte-identical
   calldata), then `ChainActions.send(idempotency_key=<key>:exec, ...)`: stored and signed before broadcast, a
   rerun follows the stored transaction instead of sending another. `execTransaction` does not revert when the
   inner call fails, so the receipt's logs decide: ExecutionSuccess → executed, ExecutionFailure → failed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from vvops.safe import proposals
from vvops.safe.contracts import EXECUTION_FAILURE_TOPIC, EXECUTION_SUCCESS_TOPIC, SafeReader
from vvops.safe.governance import SafeGovernance
from vvops.safe.signatures import combine
from vvops.safe.tx import exec_transaction_data
from vvops.store import session_scope
from vvops.store.models import ChainAction
from vvops.store.safe_models import SafeTransaction


class SafeTxError(RuntimeError):
    def __init__(self, message: str, state: proposals.ProposalState | None = None):
        super().__init__(message)
        self.state = state


class ThresholdNotMet(SafeTxError):
    """Fewer valid confirmations of current owners than the Safe's threshold."""


class SafeTxSuperseded(SafeTxError):
    """Another transaction used the proposal's Safe nonce: it can never execute (re-propose it)."""


class SafeTxFailed(SafeTxError):
    """The Safe executed it but the inner call reverted (ExecutionFailure): the nonce is spent."""


def exec_key(key: str) -> str:
    return f"{key}:exec"


def _our_exec_hash(engine: Engine, key: str) -> set[str]:
    with session_scope(engine) as session:
        tx = session.scalar(select(ChainAction.signed_tx_hash).where(ChainAction.idempotency_key == exec_key(key)))
    return {tx} if tx else set()


def check(engine: Engine, reader: SafeReader, key: str) -> proposals.ProposalState:
    """Refresh from the chain and return the state; raise when it can never be executed by us."""
    status = proposals.refresh(engine, reader, key, our_tx_hashes=_our_exec_hash(engine, key))
    state = proposals.state(engine, reader, key)
    if status == proposals.SUPERSEDED:
        raise SafeTxSuperseded(f"Safe proposal {state.safe_tx_hash} (nonce {state.nonce}) was superseded: "
                               f"another transaction used nonce {state.nonce}; it must be proposed again", state)
    if status == proposals.FAILED:
        raise SafeTxFailed(f"Safe transaction {state.safe_tx_hash} executed in {state.executed_tx_hash} but its call "
                           "reverted (ExecutionFailure)", state)
    return state


def execute(engine: Engine, rpc: Any, gov: SafeGovernance, key: str, signer: Any, *,
            actions_factory=None) -> dict[str, Any]:
    """Execute proposal `key` once its threshold is met (see the module docstring). Returns a summary dict."""
    from vvops.chain.actions import ChainActions

    reader = SafeReader(rpc, gov.address)
    state = check(engine, reader, key)
    if state.status == proposals.EXECUTED:
        return _summary(state, sent_now=False)
    frozen = _frozen_signatures(engine, key)
    if frozen is None:
        if not state.ready:
            raise ThresholdNotMet(f"Safe proposal {state.safe_tx_hash}: {len(state.confirmed)} of {state.threshold} "
                                  "confirmations from current owners", state)
        frozen = _freeze(engine, key, dict(sorted(state.confirmed.items())[: state.threshold]))
    data = exec_transaction_data(state.spec, combine(frozen, spec=state.spec))
    actions = (actions_factory or ChainActions)(rpc, engine, signer, chain_id=gov.chain_id)
    result = actions.send(idempotency_key=exec_key(key), to=gov.address, data=data,
                          description=f"Safe {gov.address} execTransaction nonce {state.nonce}: {state.description}"[:2000])
    logs = (result.receipt or {}).get("logs") or []
    outcome = None
    for log in logs:
        topics = [t.lower() for t in log.get("topics") or []]
        if log.get("address", "").lower() == gov.address.lower() and topics and len(topics) > 1 \
                and topics[1] == state.safe_tx_hash.lower():
            outcome = topics[0] == EXECUTION_SUCCESS_TOPIC if topics[0] in (EXECUTION_SUCCESS_TOPIC,
                                                                            EXECUTION_FAILURE_TOPIC) else outcome
    if outcome is None:  # 1.3.0 (hash not indexed) or no receipt at hand: read it from the chain
        found = reader.execution_of(state.safe_tx_hash, from_block=max(0, (result.block_number or 1) - 1))
        outcome = bool(found and found.success)
    proposals.mark_executed(engine, key, tx_hash=result.tx_hash, block=result.block_number or 0, success=outcome)
    state = proposals.state(engine, reader, key)
    if not outcome:
        raise SafeTxFailed(f"Safe transaction {state.safe_tx_hash} executed in {result.tx_hash} but its call "
                           "reverted (ExecutionFailure)", state)
    return _summary(state, sent_now=bool(result.sent_now), action=result.as_dict())


def _frozen_signatures(engine: Engine, key: str) -> dict[str, str] | None:
    with session_scope(engine) as session:
        row = session.scalar(select(SafeTransaction).where(SafeTransaction.idempotency_key == key))
        return dict((row.spec or {}).get("exec_signatures") or {}) or None


def _freeze(engine: Engine, key: str, signatures: dict[str, str]) -> dict[str, str]:
    with session_scope(engine, immediate=True) as session:
        row = session.scalar(select(SafeTransaction).where(SafeTransaction.idempotency_key == key))
        current = (row.spec or {}).get("exec_signatures")
        if current:
            return dict(current)
        row.spec = {**(row.spec or {}), "exec_signatures": signatures}
        return signatures


def _summary(state: proposals.ProposalState, *, sent_now: bool, action: dict | None = None) -> dict[str, Any]:
    return {"safe_tx_hash": state.safe_tx_hash, "safe": state.safe, "nonce": state.nonce, "status": state.status,
            "tx_hash": state.executed_tx_hash, "executed_by": state.executed_by, "sent_now": sent_now,
            "confirmed_by": {o: state.persons.get(o) for o in state.confirmed}, "action": action or {}}
