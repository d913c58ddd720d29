"""Safe proposals and confirmations in the ops store; every change is one transaction with its audit entry.

- `propose(engine, reader, gov, idempotency_key=, calls=, description=)` stores a SafeTx for `calls` (MultiSend
  for several) at the next free Safe nonce: max(the Safe's nonce, our highest still-proposed nonce + 1), like the
  Safe UI's queue. Idempotent by key: the same key returns the stored proposal (different calls raise).
- `add_signature(engine, reader, gov, key_or_hash, signature=, source=, person=None)` verifies each signature in
  the blob against the Safe's CURRENT owners (vvops.safe.signatures) and stores it — accepted, or refused as
  duplicate / not_owner / wrong_owner / invalid_signature / malformed — auditing every one with the signature
  (`safe.confirmation.accepted` / `.refused`).
- `state(engine, reader, key)`: the accepted confirmations that still count (their owner is still an owner), the
  Safe's current threshold, whether it is met; `refresh(engine, reader, key)`: executed (ExecutionSuccess for
  the hash: by us or by the owners themselves), failed (ExecutionFailure) or superseded (the nonce was used by
  another transaction), read from the chain and stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from vvops.safe.contracts import SafeReader
from vvops.safe.governance import SafeGovernance
from vvops.safe.signatures import DUPLICATE, Verdict, verify
from vvops.safe.tx import SafeCall, SafeTxSpec, batch
from vvops.store import append_audit, session_scope
from vvops.store.safe_models import SafeConfirmation, SafeTransaction

PROPOSED, EXECUTED, FAILED, SUPERSEDED = "proposed", "executed", "failed", "superseded"
SOURCES = ("ui", "slack", "cli", "service", "api")
ABANDONED = "abandoned:"  # `error` prefix of a proposal whose approval was rejected or expired: not queued any more


class ProposalError(RuntimeError):
    """A proposal cannot be stored or found (the message says why)."""


class ProposalConflict(ProposalError):
    """The idempotency key was already used for different calls."""


@dataclass(frozen=True)
class ProposalState:
    idempotency_key: str
    safe_tx_hash: str
    safe: str
    nonce: int
    status: str
    spec: SafeTxSpec
    description: str
    threshold: int
    confirmed: dict[str, str]  # owner → signature (accepted, still an owner)
    persons: dict[str, str | None]  # owner → person
    approval_request_id: int | None
    flow_run_id: str | None
    executed_tx_hash: str | None = None
    executed_by: str | None = None
    superseded_by: str | None = None
    error: str | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.status == PROPOSED and len(self.confirmed) >= self.threshold

    @property
    def missing(self) -> int:
        return max(0, self.threshold - len(self.confirmed))


def _subject(row: SafeTransaction) -> str:
    return f"safe:{row.safe_tx_hash}"


def _row(session, key_or_hash: str) -> SafeTransaction:
    column = SafeTransaction.safe_tx_hash if key_or_hash.startswith("0x") and len(key_or_hash) == 66 \
        else SafeTransaction.idempotency_key
    row = session.scalar(select(SafeTransaction).where(column == key_or_hash))
    if row is None:
        raise ProposalError(f"no Safe proposal {key_or_hash!r} in the ops store (see `vvops safe list`)")
    return row


def find(engine: Engine, key_or_hash: str) -> SafeTransaction | None:
    with session_scope(engine) as session:
        try:
            return _row(session, key_or_hash)
        except ProposalError:
            return None


def propose(engine: Engine, reader: SafeReader, gov: SafeGovernance, *, idempotency_key: str, calls: list[SafeCall],
            description: str, actor: str = "ops", flow_run_id: str | None = None,
            approval_request_id: int | None = None) -> SafeTransaction:
    """Store a Safe proposal for `calls` (exactly once per key) and return its row."""
    call_dicts = [{"to": c.to, "value": str(c.value), "data": c.data, "operation": c.operation} for c in calls]
    with session_scope(engine, immediate=True) as session:  # the write lock serialises nonce picks
        existing = session.scalar(select(SafeTransaction).where(SafeTransaction.idempotency_key == idempotency_key))
        if existing is not None:
            if (existing.spec or {}).get("calls") != call_dicts or existing.safe_address != gov.address:
                raise ProposalConflict(f"{idempotency_key!r} was already proposed with different calls: use a new key")
            return existing
        on_chain = reader.nonce()
        queued = session.scalar(select(func.max(SafeTransaction.nonce)).where(
            SafeTransaction.safe_address == gov.address, SafeTransaction.chain_id == gov.chain_id,
            SafeTransaction.status == PROPOSED, SafeTransaction.nonce >= on_chain,
            SafeTransaction.error.is_(None) | ~SafeTransaction.error.like(f"{ABANDONED}%")))
        nonce = max(on_chain, queued + 1 if queued is not None else 0)
        spec = batch(safe=gov.address, chain_id=gov.chain_id, nonce=nonce, calls=calls, multi_send=gov.multi_send,
                     version=gov.version)
        block = int(_call(reader, "eth_blockNumber"), 16)
        row = SafeTransaction(idempotency_key=idempotency_key, safe_address=gov.address, chain_id=gov.chain_id,
                              nonce=nonce, safe_tx_hash=spec.safe_tx_hash, spec={**spec.to_dict(), "calls": call_dicts},
                              description=description[:2000], status=PROPOSED, proposed_at_block=block,
                              service_url=gov.service_url, flow_run_id=flow_run_id,
                              approval_request_id=approval_request_id)
        session.add(row)
        session.flush()
        append_audit(session, actor=actor, action="safe.proposed", subject=_subject(row), source="flow",
                     details={"idempotency_key": idempotency_key, "safe": gov.address, "nonce": nonce,
                              "safe_tx_hash": spec.safe_tx_hash, "to": spec.to, "operation": spec.operation,
                              "calls": call_dicts, "description": description, "flow_run_id": flow_run_id})
        return row


def _call(reader: SafeReader, method: str, params: list | None = None) -> Any:
    from vvops.safe.contracts import rpc_call

    return rpc_call(reader.rpc, method, params)


def link_approval(engine: Engine, key: str, request_id: int, flow_run_id: str | None = None) -> None:
    with session_scope(engine, immediate=True) as session:
        row = _row(session, key)
        row.approval_request_id = request_id
        if flow_run_id:
            row.flow_run_id = flow_run_id


def add_signature(engine: Engine, reader: SafeReader, gov: SafeGovernance, key_or_hash: str, *, signature: str,
                  source: str, person: str | None = None, submitted_by: str | None = None,
                  owners: list[str] | None = None) -> list[tuple[Verdict, int]]:
    """Verify and store the signature(s) in `signature` for a proposal; returns (verdict, confirmation id) each."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}")
    expected = gov.owner_of(person) if person else None
    if person and expected is None:
        expected_reason = f"{person} has no Safe owner address for {gov.environment} in team.yaml (safe_owner)"
    else:
        expected_reason = None
    with session_scope(engine) as session:
        row = _row(session, key_or_hash)
        spec = SafeTxSpec.from_dict(row.spec)
    current = owners if owners is not None else reader.owners()
    verdicts = verify(signature, spec=spec, owners=current, reader=reader, expected_owner=expected)
    if expected_reason:
        verdicts = [Verdict(v.owner, v.kind, v.signature, False, "unknown_owner_mapping", expected_reason)
                    for v in verdicts]
    out = []
    with session_scope(engine, immediate=True) as session:
        row = _row(session, key_or_hash)
        for v in verdicts:
            if v.accepted and row.status != PROPOSED:
                v = Verdict(v.owner, v.kind, v.signature, False, "closed", f"the proposal is already {row.status}")
            if v.accepted and any(c.accepted and c.owner == v.owner for c in row.confirmations):
                v = Verdict(v.owner, v.kind, v.signature, False, DUPLICATE, f"{v.owner} has already confirmed")
            who = person or gov.person_of(v.owner)
            conf = SafeConfirmation(owner=v.owner, person=who, kind=v.kind, signature=v.signature[:20000],
                                    source=source, accepted=v.accepted,
                                    refusal_reason=None if v.accepted else f"{v.reason}: {v.message}")
            row.confirmations.append(conf)
            session.flush()
            append_audit(session, actor=(who or submitted_by or v.owner or "(unknown)")[:200],
                         action="safe.confirmation.accepted" if v.accepted else "safe.confirmation.refused",
                         subject=_subject(row), source=source,
                         details={"idempotency_key": row.idempotency_key, "safe_tx_hash": row.safe_tx_hash,
                                  "owner": v.owner, "person": who, "kind": v.kind, "signature": v.signature,
                                  "refusal_reason": v.reason, "message": v.message, "confirmation_id": conf.id,
                                  "submitted_by": submitted_by, "approval_request_id": row.approval_request_id})
            out.append((v, conf.id))
    return out


def state(engine: Engine, reader: SafeReader, key_or_hash: str, *, owners: list[str] | None = None,
          threshold: int | None = None) -> ProposalState:
    """The proposal with the confirmations that count against the Safe's current owners and threshold."""
    current = set(owners if owners is not None else reader.owners())
    needed = threshold if threshold is not None else reader.threshold()
    with session_scope(engine) as session:
        row = _row(session, key_or_hash)
        confirmed: dict[str, str] = {}
        persons: dict[str, str | None] = {}
        for c in row.confirmations:
            if c.accepted and c.owner in current and c.owner not in confirmed:
                confirmed[c.owner] = c.signature
                persons[c.owner] = c.person
        return ProposalState(idempotency_key=row.idempotency_key, safe_tx_hash=row.safe_tx_hash, safe=row.safe_address,
                             nonce=row.nonce, status=row.status, spec=SafeTxSpec.from_dict(row.spec),
                             description=row.description, threshold=needed, confirmed=confirmed, persons=persons,
                             approval_request_id=row.approval_request_id, flow_run_id=row.flow_run_id,
                             executed_tx_hash=row.executed_tx_hash, executed_by=row.executed_by,
                             superseded_by=row.superseded_by, error=row.error,
                             calls=list((row.spec or {}).get("calls") or []))


def refresh(engine: Engine, reader: SafeReader, key_or_hash: str, *, our_tx_hashes: set[str] = frozenset()) -> str:
    """Read the chain: executed / failed / superseded / still proposed; store a change (audited). Returns status."""
    with session_scope(engine) as session:
        row = _row(session, key_or_hash)
        status, tx_hash, nonce, from_block = row.status, row.safe_tx_hash, row.nonce, row.proposed_at_block
    if status != PROPOSED:
        return status
    log = reader.execution_of(tx_hash, from_block=max(0, from_block - 1))
    if log is not None:
        by = "ops" if log.tx_hash.lower() in {h.lower() for h in our_tx_hashes if h} else "owners"
        return _close(engine, key_or_hash, EXECUTED if log.success else FAILED, executed_tx_hash=log.tx_hash,
                      executed_block=log.block_number, executed_by=by,
                      error=None if log.success else "ExecutionFailure: the Safe used the nonce but the call reverted")
    if reader.nonce() > nonce:
        return _close(engine, key_or_hash, SUPERSEDED, superseded_by=None,
                      error=f"Safe nonce {nonce} was used by another transaction; this one can never execute")
    return PROPOSED


def _close(engine: Engine, key_or_hash: str, status: str, **values: Any) -> str:
    with session_scope(engine, immediate=True) as session:
        row = _row(session, key_or_hash)
        if row.status != PROPOSED:
            return row.status
        row.status = status
        for name, value in values.items():
            setattr(row, name, value)
        append_audit(session, actor="vvops-safe", action=f"safe.{status}", subject=_subject(row), source="flow",
                     details={"idempotency_key": row.idempotency_key, "nonce": row.nonce, **values})
        return status


def abandon(engine: Engine, key: str, reason: str) -> bool:
    """Its approval was rejected or expired: keep the row (owners may still execute it in the Safe UI, which
    `refresh` would find) but stop counting its nonce as queued. Audited `safe.abandoned`."""
    with session_scope(engine, immediate=True) as session:
        row = _row(session, key)
        if row.status != PROPOSED or (row.error or "").startswith(ABANDONED):
            return False
        row.error = f"{ABANDONED} {reason}"[:2000]
        append_audit(session, actor="vvops-safe", action="safe.abandoned", subject=_subject(row), source="flow",
                     details={"idempotency_key": key, "nonce": row.nonce, "reason": reason})
        return True


def mark_executed(engine: Engine, key: str, *, tx_hash: str, block: int, success: bool) -> str:
    return _close(engine, key, EXECUTED if success else FAILED, executed_tx_hash=tx_hash, executed_block=block,
                  executed_by="ops", error=None if success else "ExecutionFailure: the inner call reverted")


def list_proposals(engine: Engine, *, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    with session_scope(engine) as session:
        query = select(SafeTransaction).order_by(SafeTransaction.id.desc()).limit(limit)
        if status:
            query = query.where(SafeTransaction.status == status)
        return [{"key": r.idempotency_key, "safe_tx_hash": r.safe_tx_hash, "safe": r.safe_address, "nonce": r.nonce,
                 "status": r.status, "description": r.description,
                 "confirmations": sorted({c.person or c.owner for c in r.confirmations if c.accepted}),
                 "executed_by": r.executed_by, "executed_tx_hash": r.executed_tx_hash}
                for r in session.scalars(query)]


def repropose(engine: Engine, reader: SafeReader, gov: SafeGovernance, key: str, *, actor: str = "ops"
              ) -> SafeTransaction:
    """A superseded proposal again at the next free nonce, under the same key (the old row keeps its history
    under `<key>#superseded@<nonce>`); the owners sign the new hash. Audited `safe.reproposed`."""
    with session_scope(engine, immediate=True) as session:
        row = _row(session, key)
        if row.status != SUPERSEDED:
            raise ProposalError(f"{key}: only a superseded proposal is proposed again (it is {row.status})")
        calls = [SafeCall(to=c["to"], data=c["data"], value=int(c["value"]), operation=int(c["operation"]))
                 for c in (row.spec or {}).get("calls") or []]
        old_hash, old_nonce, request_id, run_id = row.safe_tx_hash, row.nonce, row.approval_request_id, row.flow_run_id
        row.idempotency_key = f"{key}#superseded@{old_nonce}"[:200]
        description = row.description
    new = propose(engine, reader, gov, idempotency_key=key, calls=calls, description=description, actor=actor,
                  flow_run_id=run_id, approval_request_id=request_id)
    with session_scope(engine, immediate=True) as session:
        append_audit(session, actor=actor, action="safe.reproposed", subject=f"safe:{new.safe_tx_hash}",
                     source="flow", details={"idempotency_key": key, "superseded_hash": old_hash,
                                             "superseded_nonce": old_nonce, "nonce": new.nonce,
                                             "approval_request_id": request_id})
    return new
