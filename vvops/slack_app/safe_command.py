"""Slack slash command for Safe confirmations: `/vvops-safe confirm <safe_tx_hash> <signature>`.

Configure the command in the Slack app with request URL `<endpoint>/slack/commands`. The request is verified with
the app's signing secret (like every interaction); the Slack user must be on the roster, and the signature must
be that person's Safe owner signature (team.yaml `safe_owner`) of the hash, checked against the Safe's current
owners (vvops.safe.proposals.add_signature, source "slack", audited either way). An accepted confirmation resumes
the waiting run, which re-reads the store.
"""

from __future__ import annotations

from typing import Any, Callable
from urllib.parse import parse_qs

COMMANDS_PATH = "/slack/commands"
USAGE = "usage: /vvops-safe confirm <safe_tx_hash> <signature>"


def make_safe_command(*, engine: Any, environment: str, by_slack_id: dict[str, Any], verifier: Any,
                      refuse: Callable, resume: Callable[[str, dict], str], max_body: int,
                      read_body: Callable | None = None):
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse

    from vvops.approvals.slack_signature import SignatureError

    def confirm(slack_user: str, words: list[str]) -> str:
        from vvops.chain.rpc import RpcClient
        from vvops.config import load_config
        from vvops.safe import proposals
        from vvops.safe.contracts import SafeReader
        from vvops.safe.governance import safe_governance

        person = by_slack_id.get(slack_user)
        if person is None:
            return "refused: your Slack user is not on the roster (config/team.yaml)"
        if len(words) != 3 or words[0] != "confirm":
            return USAGE
        _, proposal, signature = words
        cfg = load_config(environment=environment)
        gov = safe_governance(cfg)
        if gov is None:
            return f"{environment} has no Safe"
        if proposals.find(engine, proposal) is None:
            return f"no Safe proposal {proposal[:80]}"
        with RpcClient([u.get_secret_value() for u in cfg.resolve_rpc_urls()], timeout_s=cfg.env.rpc_timeout_s) as rpc:
            reader = SafeReader(rpc, gov.address)
            results = proposals.add_signature(engine, reader, gov, proposal, signature=signature, source="slack",
                                              person=person.id, submitted_by=f"slack:{slack_user}")
            state = proposals.state(engine, reader, proposal)
        lines = [("accepted" if v.accepted else f"refused ({v.reason}: {v.message})") for v, _ in results]
        if any(v.accepted for v, _ in results) and state.flow_run_id:
            resume(state.flow_run_id, {"signature": "", "owner": "", "repropose": False})
        return f"{person.name}: " + "; ".join(lines) + f" — {len(state.confirmed)} of {state.threshold} confirmations"

    async def commands(request):
        body = await read_body(request) if read_body else await request.body()
        if body is None or len(body) > max_body:
            return JSONResponse({"ok": False, "error": "too_large"}, status_code=413)
        try:
            verifier.verify(timestamp=request.headers.get("x-slack-request-timestamp"),
                            signature=request.headers.get("x-slack-signature"), body=body)
        except SignatureError as error:
            return await run_in_threadpool(refuse, error.reason, str(error), request)
        form = parse_qs(body.decode("utf-8", "replace"))
        slack_user = (form.get("user_id") or [""])[0]
        words = ((form.get("text") or [""])[0]).split()
        text = await run_in_threadpool(confirm, slack_user, words)
        return JSONResponse({"response_type": "ephemeral", "text": text})

    return commands
