"""Warm start for procedure runs: a process with the flow code already imported forks each run in milliseconds.

    python -m deployments.warm_start --environment devnet        # started (and restarted) by `vvops up`

Why: a served or worker-run deployment starts ~10-14 s after the run is created (the runner polls every 10 s,
then spawns a fresh interpreter that imports Prefect and the flow: ~3.5 s). An incident must start in about a
second. Measured options (benchmarks/README.md, bench_containment.py): the runner's poll interval only removes
the wait, not the spawn; this process removes both.

How: it imports every procedure flow (deployments tagged `procedure`) once, then polls the API every
`--poll-s` (0.25 s) with plain HTTP for SCHEDULED runs of those deployments that are due (at most
`--max-children` of its runs in flight; the rest wait for the runner or workers as before). It claims a run by
proposing PENDING through the orchestration API — the same transition the runner and workers propose, and the
server accepts only one of them, so a run is never started twice — then `os.fork()`s a child that runs it with
`prefect.flow_engine.run_flow` (pages shared copy-on-write, no imports). The parent never starts a thread and
never uses Prefect's client (nothing to break across fork). A run it cannot claim is left to the runner or the
workers as before, so nothing depends on this process being up. Cancelling a run it started (UI "Cancel")
terminates the child and marks the run Cancelled; a child that dies without reporting is marked Crashed.
Runs resumed after `suspend_flow_run` come back as SCHEDULED and are claimed the same way.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from datetime import datetime, timezone
from typing import Any

import httpx

WARM_TAG = "procedure"


def _api() -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise SystemExit("warm start: PREFECT_API_URL is not set")
    return url.rstrip("/")


def load_procedure_flows(environment: str, only: list[str] | None = None) -> dict[str, Any]:
    """{deployment name `flow/env`: flow object} for every procedure deployment, or the flows named in `only`
    (imports the flow modules)."""
    from deployments import DEPLOYMENTS

    return {f"{spec.flow_name}/{environment}": spec.load_flow() for spec in DEPLOYMENTS
            if (spec.flow_name in only if only else WARM_TAG in spec.tags)}


class WarmStarter:
    def __init__(self, api_url: str, flows: dict[str, Any], *, poll_s: float = 0.25, max_children: int = 25,
                 out=print):
        self.api = api_url
        self.flows = flows
        self.poll_s = poll_s
        self.max_children = max_children   # beyond this many runs in flight, new runs are left to the runner
        self.out = out
        self.http = httpx.Client(timeout=5.0, headers=_auth_headers())
        self.deployments: dict[str, Any] = {}   # deployment id -> flow
        self.children: dict[int, str] = {}      # pid -> flow run id
        self.stopping = False
        self.started = 0

    def resolve_deployments(self) -> int:
        """Deployment ids of the procedure flows (they appear once `vvops up` has served/deployed them)."""
        for name, flow in self.flows.items():
            if any(f is flow for f in self.deployments.values()):
                continue
            flow_name, deployment_name = name.split("/", 1)
            r = self.http.get(f"{self.api}/deployments/name/{flow_name}/{deployment_name}")
            if r.status_code == 200:
                self.deployments[r.json()["id"]] = flow
        return len(self.deployments)

    def due_runs(self) -> list[dict[str, Any]]:
        if not self.deployments:
            return []
        body = {"flow_runs": {"deployment_id": {"any_": list(self.deployments)}, "state": {"type": {"any_": ["SCHEDULED"]}},
                              "next_scheduled_start_time": {"before_": datetime.now(timezone.utc).isoformat()}},
                "sort": "NEXT_SCHEDULED_START_TIME_ASC", "limit": 10}
        r = self.http.post(f"{self.api}/flow_runs/filter", json=body)
        r.raise_for_status()
        return r.json()

    def claim(self, run_id: str) -> bool:
        """Propose PENDING (SCHEDULED -> PENDING); the server accepts it for exactly one claimant."""
        r = self.http.post(f"{self.api}/flow_runs/{run_id}/set_state",
                           json={"state": {"type": "PENDING", "name": "Pending", "message": "warm start"}, "force": False})
        return r.status_code in (200, 201) and r.json().get("status") == "ACCEPT"

    def start(self, run: dict[str, Any]) -> int | None:
        flow = self.deployments.get(run["deployment_id"])
        if flow is None or not self.claim(run["id"]):
            return None
        pid = os.fork()
        if pid == 0:   # child: run the flow in this already-warm interpreter, then leave without cleanup
            code = 1
            try:
                code = _run_child(flow, run["id"])
            finally:
                os._exit(code)
        self.children[pid] = run["id"]
        self.started += 1
        self.out(f"warm start: flow run {run['name']} ({run['id']}) in pid {pid}")
        return pid

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            run_id = self.children.pop(pid, None)
            if run_id and os.waitstatus_to_exitcode(status) != 0:
                self._crash_if_running(run_id, f"warm-start child exited with {os.waitstatus_to_exitcode(status)}")

    def _crash_if_running(self, run_id: str, message: str) -> None:
        r = self.http.get(f"{self.api}/flow_runs/{run_id}")
        if r.status_code == 200 and r.json()["state"]["type"] in ("RUNNING", "PENDING"):
            self.http.post(f"{self.api}/flow_runs/{run_id}/set_state",
                           json={"state": {"type": "CRASHED", "name": "Crashed", "message": message}, "force": True})

    def cancel_requested(self) -> None:
        """Runs of ours the UI asked to cancel: stop the child, mark the run Cancelled."""
        if not self.children:
            return
        body = {"flow_runs": {"id": {"any_": list(self.children.values())}, "state": {"type": {"any_": ["CANCELLING"]}}}}
        r = self.http.post(f"{self.api}/flow_runs/filter", json=body)
        if r.status_code != 200:
            return
        for run in r.json():
            # Cancelled first, so the child's engine, stopping on SIGTERM, cannot report the run Crashed instead
            self.http.post(f"{self.api}/flow_runs/{run['id']}/set_state",
                           json={"state": {"type": "CANCELLED", "name": "Cancelled", "message": "cancelled"}, "force": True})
            pid = next((p for p, rid in self.children.items() if rid == run["id"]), None)
            if pid is not None:
                os.kill(pid, signal.SIGTERM)

    def loop(self) -> None:
        while not self.stopping:
            try:
                if len(self.deployments) < len(self.flows):
                    self.resolve_deployments()
                for run in self.due_runs()[:max(0, self.max_children - len(self.children))]:
                    self.start(run)
                self.cancel_requested()
            except httpx.HTTPError as error:
                self.out(f"warm start: API unreachable ({error}); retrying")
                time.sleep(2)
            self.reap()
            time.sleep(self.poll_s)


def _auth_headers() -> dict[str, str]:
    import base64

    from prefect.settings import get_current_settings

    api = get_current_settings().api
    secret = (lambda v: v.get_secret_value() if hasattr(v, "get_secret_value") else str(v))
    if api.key is not None:
        return {"Authorization": f"Bearer {secret(api.key)}"}
    if api.auth_string is not None:
        return {"Authorization": "Basic " + base64.b64encode(secret(api.auth_string).encode()).decode()}
    return {}


def _run_child(flow: Any, run_id: str) -> int:
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.engine import handle_engine_signals
    from prefect.flow_engine import run_flow

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(UUID(run_id))
    try:
        with handle_engine_signals(flow_run.id):
            run_flow(flow, flow_run=flow_run)
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environment", "-e", default="devnet")
    parser.add_argument("--poll-s", type=float, default=0.25)
    parser.add_argument("--flows", nargs="*", default=None, help="flow names (default: every procedure)")
    parser.add_argument("--max-children", type=int, default=25, help="runs in flight at once (the rest: the runner)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    flows = load_procedure_flows(args.environment, args.flows)
    starter = WarmStarter(_api(), flows, poll_s=args.poll_s, max_children=args.max_children,
                          out=lambda m: print(m, flush=True))

    def stop(*_: Any) -> None:
        starter.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"warm start: {len(flows)} procedure flows imported in {time.monotonic() - started:.1f} s: "
          f"{', '.join(flows)}", flush=True)
    starter.loop()
    for pid in list(starter.children):   # runs in flight finish on their own (they are their own processes)
        print(f"warm start: leaving flow run {starter.children[pid]} running in pid {pid}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
