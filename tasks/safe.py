"""Safe multisig in the procedures: propose, wait for the owners' confirmations (they ARE the approval), execute once.

Where the timelock's proposer is a Safe (environments.yaml `safe`, devnet `--governance safe`):

- `request_safe_approval(...)` (call inside a flow, in place of `request_approval`): proposes the timelock call(s)
  as ONE SafeTx (MultiSend for several) under the same idempotency key the send will use, opens an approval
  request (policy role and expiry; quorum = max(policy quorum, the Safe's threshold)) and waits, paused with a
  form in the Prefect UI, until the owners' signatures reach the threshold. Each valid signature of a current
  owner is recorded as that person's approval (roster `safe_owner`), with the signature in the audit log; a
  refused one is stored and audited and the run keeps waiting. Signatures arrive through the UI form, Slack or
  `vvops safe confirm` (both store it and resume the run), or the Safe Transaction Service when the environment
  names one (polled: proposals are posted there, confirmations read back and verified here).
  On every resume the chain is read: executed by the owners themselves → approved (and nothing will be sent);
  the nonce used by another transaction → superseded: the form offers `repropose` (the next free nonce, the
  owners sign again). While paused, the run also reads the Safe's nonce itself (`_WakeOnChain`, every poll
  interval): once the proposal's nonce is used (the owners executed it in the Safe UI, or something else took it)
  it resumes itself, so a waiting run goes on without anyone resuming it. Expiry fails closed as for any approval
  (escalation by the approval sweep).
- `safe_send(...)`: what tasks/governance.py calls for a timelock call the Safe holds: executes the proposal
  stored under that key exactly once (vvops/safe/execute.py) — or finds the owners' own execution.
"""

from __future__ import annotations

import contextvars
import math
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from prefect import get_run_logger, pause_flow_run, task
from prefect.cache_policies import NONE as NO_CACHE
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput
from pydantic import Field

from tasks.runtime import ops_config, rpc_client, store_engine
from vvops.approvals import policy as rules
from vvops.approvals import service
from vvops.identity import IdentityContext
from vvops.identity.proofs import SafeOwnerProof
from vvops.safe import proposals
from vvops.safe.contracts import SafeReader
from vvops.safe.governance import SafeGovernance, safe_governance
from vvops.safe.tx import SafeCall

SOURCE_FOR_DECISION = {"ui": "ui", "slack": "slack", "cli": "api", "service": "api", "api": "api"}


def safe_for(environment: str) -> SafeGovernance | None:
    """The Safe governing `environment`, or None (no Safe configured, or a devnet without --governance safe)."""
    return safe_governance(ops_config(environment))


class SafeConfirmationInput(RunInput):
    """The form shown while a Safe transaction waits for its owners' signatures."""

    signature: str = Field(default="", description="an owner's signature (0x..., 65 bytes) of the SafeTx hash shown "
                                                   "above: EIP-712 (eth_signTypedData) or eth_sign form")
    owner: str = Field(default="", description="optional: your person id from config/team.yaml (checked against "
                                               "the signature)")
    repropose: bool = Field(default=False, description="only when the proposal was superseded: propose it again "
                                                       "at the Safe's next nonce")


@dataclass(frozen=True)
class SafeApprovalOutcome:
    approved: bool
    request_id: int
    approvers: list[str]
    owners: dict[str, str | None]  # owner address → person
    safe_tx_hash: str
    idempotency_key: str
    status: str
    reason: str
    executed_by: str | None = None
    rejecters: list[str] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _flow_run_id() -> str | None:
    from tasks.store import current_flow_run_id

    return current_flow_run_id()


def calls_from(dicts: list[dict[str, Any]]) -> list[SafeCall]:
    return [SafeCall(to=c["to"], data=c.get("data", "0x"), value=int(c.get("value", 0)),
                     operation=int(c.get("operation", 0))) for c in dicts]


@task(name="safe-propose", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 5])
def propose_safe_tx(*, environment: str, idempotency_key: str, calls: list[dict[str, Any]], description: str,
                    actor: str = "ops") -> dict[str, Any]:
    """Store the SafeTx for `calls` (exactly once per key) and post it to the Transaction Service if one is named."""
    gov = _gov(environment)
    with rpc_client(environment) as rpc:
        reader = SafeReader(rpc, gov.address)
        row = proposals.propose(store_engine(), reader, gov, idempotency_key=idempotency_key,
                                calls=calls_from(calls), description=description, actor=actor,
                                flow_run_id=_flow_run_id())
        if gov.service_url:
            from vvops.safe.service_client import post_proposal

            post_proposal(gov, store_engine(), idempotency_key, executor=_executor_signer(environment, gov))
    get_run_logger().info("Safe %s proposal %s (nonce %s): %s", gov.address, row.safe_tx_hash, row.nonce, description)
    return {"safe_tx_hash": row.safe_tx_hash, "nonce": row.nonce, "safe": gov.address,
            "idempotency_key": idempotency_key}


def _gov(environment: str) -> SafeGovernance:
    gov = safe_for(environment)
    if gov is None:
        raise RuntimeError(f"{environment} has no Safe (environments.yaml safe; devnet: --governance safe)")
    return gov


def _executor_signer(environment: str, gov: SafeGovernance):
    from vvops.chain.signing import signer_for_role

    return signer_for_role(environment, gov.executor_role, chain_id=gov.chain_id)


def describe_safe(*, subject: str, state: proposals.ProposalState, gov: SafeGovernance, request: service.RequestState,
                  description_md: str, refusal: str | None) -> str:
    owners_needed = [p for p, a in gov.owners_by_person.items() if a not in state.confirmed]
    lines = [f"## Safe confirmations needed: {subject}", "",
             "| | |", "| --- | --- |",
             f"| Safe | `{state.safe}` ({gov.version}, chain {gov.chain_id}) |",
             f"| Safe nonce | {state.nonce} |",
             f"| **SafeTx hash (sign this)** | `{state.safe_tx_hash}` |",
             f"| To / operation | `{state.spec.to}` / {'delegatecall (MultiSend)' if state.spec.operation else 'call'} |",
             f"| Confirmed | {len(state.confirmed)} of {state.threshold}: "
             f"{', '.join(state.persons.get(o) or o for o in state.confirmed) or 'nobody'} |",
             f"| May still sign | {', '.join(owners_needed) or '-'} |",
             f"| Status | {state.status} |",
             f"| Expires | {request.expires_at.isoformat() if request.expires_at else 'never'} |",
             f"| Approval request | #{request.id} (your Safe signature is your approval) |", ""]
    if state.status == proposals.SUPERSEDED:
        lines += ["> **Superseded:** another Safe transaction used this nonce. Tick `repropose` and submit to "
                  "propose it again at the next nonce (owners sign the new hash).", ""]
    if refusal:
        lines += [f"> **Last signature refused:** {refusal}", ""]
    lines += ["### What the Safe will do", "", description_md.strip() or "-", "",
              "### How to sign", "",
              f"Sign the SafeTx hash with your owner key (Safe{{Wallet}} 'Confirm', `cast wallet sign --no-hash "
              f"{state.safe_tx_hash}` for the EIP-712 form, or `cast wallet sign {state.safe_tx_hash}` for eth_sign), "
              "then paste the signature here, or run "
              f"`vvops safe confirm {state.safe_tx_hash} --signature 0x... --by <you>`."]
    return "\n".join(lines)


def _record_approvals(engine, gov: SafeGovernance, state: proposals.ProposalState, request_id: int, people) -> None:
    """Each confirmed owner's person gets one approval decision, its proof the Safe owner confirmation (verified
    against the Safe's owners by vvops.safe.proposals; the identity layer checks the owner is the person's
    team.yaml `safe_owner` and the environment accepts `safe` proofs; audited either way). `people`: the
    IdentityContext."""
    from sqlalchemy import select

    from vvops.store.safe_models import SafeConfirmation, SafeTransaction

    current = service.get_state(engine, request_id)
    if not current.is_open:
        return
    with engine.connect() as conn:
        sources = dict(conn.execute(select(SafeConfirmation.owner, SafeConfirmation.source)
                                    .join(SafeTransaction).where(SafeTransaction.safe_tx_hash == state.safe_tx_hash,
                                                                 SafeConfirmation.accepted)).all())
    decided = set(current.approvers) | set(current.rejecters)
    for owner, signature in state.confirmed.items():
        person = state.persons.get(owner) or gov.person_of(owner)
        if not person or person in decided:
            continue
        service.record_decision(engine, request_id=request_id, decision="approve",
                                reason=f"Safe confirmation of {state.safe_tx_hash}",
                                source=SOURCE_FOR_DECISION.get(sources.get(owner, "api"), "api"),
                                proof=SafeOwnerProof(person, owner, state.safe_tx_hash), identity=people,
                                context={"safe": state.safe, "owner": owner,
                                         "safe_tx_hash": state.safe_tx_hash, "signature": signature})
        decided.add(person)


def request_safe_approval(*, procedure: str, subject: str, risk: str, proposer: str, description_md: str,
                          environment: str, idempotency_key: str, calls: list[dict[str, Any]],
                          details: dict[str, Any] | None = None, poll_interval: float = 10,
                          deadline_seconds: float | None = None) -> SafeApprovalOutcome:
    """Propose `calls` as one SafeTx and wait until its owners' confirmations approve it (see the module docstring)."""
    logger = get_run_logger()
    cfg = ops_config(environment)
    gov = _gov(environment)
    engine = store_engine()
    policy = cfg.approval_policy(procedure)
    proposed = propose_safe_tx(environment=environment, idempotency_key=idempotency_key, calls=calls,
                               description=subject, actor=proposer)
    with rpc_client(environment) as rpc:
        reader = SafeReader(rpc, gov.address)
        threshold = reader.threshold()
        row = proposals.find(engine, idempotency_key)
        request_id = row.approval_request_id
        if request_id is None:
            request_id = service.create_request(
                engine, procedure=procedure, subject=subject, risk=risk, proposer=proposer,
                policy=policy.model_copy(update={"quorum": max(policy.quorum, threshold)}), environment=environment,
                flow_run_id=_flow_run_id(), deadline_seconds=deadline_seconds,
                details={**(details or {}), "safe": gov.address, "safe_tx_hash": proposed["safe_tx_hash"],
                         "safe_nonce": proposed["nonce"], "idempotency_key": idempotency_key,
                         "approval_by": "safe_confirmations"})
            proposals.link_approval(engine, idempotency_key, request_id, _flow_run_id())
        _notify(environment, policy, gov, proposals.state(engine, reader, idempotency_key), request_id, subject)
        refusal: str | None = None
        while True:
            state = _sync(engine, reader, gov, idempotency_key, environment)
            _record_approvals(engine, gov, state, request_id, IdentityContext.from_config(cfg))
            request = service.get_state(engine, request_id)
            if state.status == proposals.EXECUTED or (state.ready and request.status == "approved"):
                return _done(engine, state, request, approved=True, environment=environment)
            if not request.is_open and request.status != "approved":
                return _done(engine, state, request, approved=False, environment=environment)
            remaining = rules.remaining_seconds(request.expires_at, _now()) if request.expires_at else 86400 * 365
            if remaining <= 0:
                service.expire_request(engine, request_id, force=True)
                return _done(engine, state, service.get_state(engine, request_id), approved=False,
                             environment=environment)
            if gov.service_url:
                # confirmations arrive in the Transaction Service: poll it (a pause would need a resume to poll)
                import time

                time.sleep(min(poll_interval, max(0.1, remaining)))
                continue
            form = SafeConfirmationInput.with_initial_data(
                description=describe_safe(subject=subject, state=state, gov=gov, request=request,
                                          description_md=description_md, refusal=refusal),
                signature="", owner="", repropose=False)
            watch = _WakeOnChain(environment, gov.address, state.nonce, _flow_run_id(), poll_interval) \
                if state.status == proposals.PROPOSED else None
            try:
                if watch:
                    watch.start()
                answer = pause_flow_run(wait_for_input=form, timeout=max(1, math.ceil(remaining)),
                                        poll_interval=poll_interval)
            except FlowPauseTimeout:
                service.expire_request(engine, request_id, force=True)
                proposals.abandon(engine, idempotency_key, f"approval #{request_id} expired")
                logger.error("Safe approval #%s expired: rejected (fail closed)", request_id)
                raise
            finally:
                if watch:
                    watch.stop()
            refusal = _apply(engine, reader, gov, idempotency_key, answer, environment)
            if refusal:
                logger.warning("Safe proposal %s: %s; still waiting", idempotency_key, refusal)


class _WakeOnChain:
    """While the run is paused for confirmations, read the Safe's nonce every `interval` s; once the proposal's nonce
    is used (the owners executed it themselves, or another transaction took it) resume the run with an empty
    answer, as `vvops safe confirm` does, and stop: the run then reads the chain (`_sync`) and goes on. Resuming is
    retried until it takes (the run may not be paused yet) and is harmless when someone else resumed first."""

    def __init__(self, environment: str, safe: str, nonce: int, flow_run_id: str | None, interval: float):
        self._environment, self._safe, self._nonce, self._run_id = environment, safe, nonce, flow_run_id
        self._interval = max(0.2, float(interval))
        self._stopped = threading.Event()
        context = contextvars.copy_context()  # Prefect's settings (API URL) live in context variables
        self._thread = threading.Thread(target=context.run, args=(self._watch,), daemon=True,
                                        name=f"safe-wake-{nonce}")

    def start(self) -> None:
        if self._run_id:
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._interval + 5)

    def _watch(self) -> None:
        from uuid import UUID

        from prefect.flow_runs import resume_flow_run

        logger = get_run_logger()
        while not self._stopped.wait(self._interval):
            try:
                with rpc_client(self._environment) as rpc:
                    if SafeReader(rpc, self._safe).nonce() <= self._nonce:
                        continue
                logger.info("Safe nonce %s was used on chain while waiting: resuming to read it", self._nonce)
                resume_flow_run(UUID(self._run_id), run_input={"signature": "", "owner": "", "repropose": False})
                return
            except Exception as exc:  # noqa: BLE001 - RPC trouble or the run not (yet / any more) paused: next round
                logger.debug("Safe chain watch: %s", exc)


def _sync(engine, reader: SafeReader, gov: SafeGovernance, key: str, environment: str) -> proposals.ProposalState:
    """Bring in Transaction Service confirmations, read the chain (executed / superseded), return the state."""
    if gov.service_url:
        from vvops.safe.service_client import pull_confirmations

        pull_confirmations(gov, engine, reader, key)
    from vvops.safe.execute import _our_exec_hash

    proposals.refresh(engine, reader, key, our_tx_hashes=_our_exec_hash(engine, key))
    return proposals.state(engine, reader, key)


def _apply(engine, reader: SafeReader, gov: SafeGovernance, key: str, answer: Any, environment: str) -> str | None:
    if getattr(answer, "repropose", False):
        state = proposals.state(engine, reader, key)
        if state.status != proposals.SUPERSEDED:
            return f"repropose ignored: the proposal is {state.status}, not superseded"
        proposals.repropose(engine, reader, gov, key)
        return None
    signature = (getattr(answer, "signature", "") or "").strip()
    if not signature:
        return None  # a plain resume (after `vvops safe confirm`, Slack, or the owners' own execution): re-read
    who = (getattr(answer, "owner", "") or "").strip() or None
    person = who if who and not who.startswith("0x") else None
    results = proposals.add_signature(engine, reader, gov, key, signature=signature, source="ui", person=person,
                                      submitted_by=who)
    refused = [v.message or v.reason for v, _ in results if not v.accepted]
    return "; ".join(refused) or None


def _done(engine, state: proposals.ProposalState, request: service.RequestState, *, approved: bool,
          environment: str) -> SafeApprovalOutcome:
    from tasks.approvals import notify_outcome

    if not approved:
        proposals.abandon(engine, state.idempotency_key, f"approval #{request.id} {request.outcome_reason or request.status}")
    if approved and request.is_open:  # the owners executed it themselves before every approval was recorded
        service.auto_approve(engine, request.id, reason=f"executed by the Safe owners ({state.executed_tx_hash})")
        request = service.get_state(engine, request.id)
    notify_outcome(request, environment)
    reason = request.outcome_reason or request.status
    return SafeApprovalOutcome(approved=approved, request_id=request.id, approvers=list(request.approvers),
                               owners={o: state.persons.get(o) for o in state.confirmed},
                               safe_tx_hash=state.safe_tx_hash, idempotency_key=state.idempotency_key,
                               status=state.status, reason=reason, executed_by=state.executed_by,
                               rejecters=list(request.rejecters))


def _notify(environment: str, policy, gov: SafeGovernance, state: proposals.ProposalState, request_id: int,
            subject: str) -> None:
    from tasks.approvals import notify_safely

    notify_safely(kind="incident_updated", channel_purpose=policy.channel,
                  payload={"key": f"Safe approval #{request_id}", "status": "signatures needed",
                           "message": f"{subject}: sign SafeTx {state.safe_tx_hash} (Safe {gov.address}, nonce "
                                      f"{state.nonce}, {state.threshold} of {len(gov.owners_by_person) or '?'} owners)"
                                      f"; then `vvops safe confirm {state.safe_tx_hash} --signature 0x... --by <you>`",
                           "actor": None},
                  idempotency_key=f"safe-approval-{request_id}-{state.safe_tx_hash}",
                  thread_key=f"approval-{request_id}", environment=environment)


def safe_send(*, environment: str, idempotency_key: str, to: str, data: str, value: int, description: str
              ) -> dict[str, Any]:
    """Execute the Safe proposal stored under `idempotency_key` for this call, exactly once (tasks/governance.py)."""
    from vvops.safe.execute import execute

    gov = _gov(environment)
    engine = store_engine()
    row = proposals.find(engine, idempotency_key)
    if row is None:
        raise RuntimeError(f"{idempotency_key}: the Safe {gov.address} holds this role and no proposal was approved "
                           "for it: the procedure must ask the owners first (request_safe_approval)")
    calls = (row.spec or {}).get("calls") or []
    wanted = {"to": to, "value": str(int(value)), "data": data.lower()}
    if not any({"to": c["to"], "value": c["value"], "data": c["data"].lower()} == wanted for c in calls):
        raise proposals.ProposalConflict(f"{idempotency_key}: the approved Safe proposal does not contain this call")
    with rpc_client(environment) as rpc:
        out = execute(engine, rpc, gov, idempotency_key, _executor_signer(environment, gov))
    action = out.get("action") or {}
    return {"tx_hash": out["tx_hash"], "status": "mined", "block_number": action.get("block_number"),
            "nonce": action.get("nonce"), "from_address": action.get("from_address"),
            "idempotency_key": idempotency_key, "sent_now": out["sent_now"], "gas_used": action.get("gas_used"),
            "error": None, "safe_tx_hash": out["safe_tx_hash"], "safe_nonce": out["nonce"],
            "executed_by": out["executed_by"], "confirmed_by": out["confirmed_by"], "via": "safe"}


def approve_timelock_call(*, schedule_key: str, target: str, data: str, value: int = 0, **approval: Any):
    """The approval of a timelock call: the Safe owners' confirmations of its `schedule` where a Safe holds the
    proposer role (`request_safe_approval`), the roster's approval otherwise (`request_approval(**approval)`).
    `schedule_key` must be the key `schedule_on_timelock` will use, so the approved SafeTx is the one executed."""
    from tasks.governance import timelock_schedule_call

    environment = approval["environment"]
    gov = safe_for(environment)
    if gov is None or not gov.acts_for("proposer"):
        from tasks.approvals import request_approval

        return request_approval(**approval)
    call = timelock_schedule_call(environment=environment, idempotency_key=schedule_key, target=target, data=data,
                                  value=value)
    keep = {k: approval[k] for k in ("procedure", "subject", "risk", "proposer", "description_md", "environment",
                                     "details") if k in approval}
    return request_safe_approval(**keep, idempotency_key=schedule_key, calls=[call],
                                 poll_interval=approval.get("poll_interval", 10),
                                 deadline_seconds=approval.get("deadline_seconds"))
