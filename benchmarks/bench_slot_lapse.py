"""How long a contract's change slot stays taken after the run holding it is SIGKILLed (a worker host lost).

    uv run python benchmarks/bench_slot_lapse.py [--json]

A real `prefect server start` on a free port (the test harness's ephemeral server does not run the repossessor
service, so there a dead lease never lapses); process A takes the slot of a throwaway contract for change
`chg-a` and is killed with SIGKILL; then, in this process:
- change `chg-b` waits for the slot: measured = seconds from the kill until it gets in (the lease, 60 s, lapses
  and the server's repossessor, every 15 s, frees it);
- for comparison, the same kill followed by a rerun of change `chg-a` itself: it takes the slot over at once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOLD = ("import time\nfrom tasks.contract_slots import hold_contract_slots\n"
        "with hold_contract_slots(contracts=[('devnet', {contract!r})], procedure='parameter_change', "
        "change_id={change!r}):\n    print('held', flush=True)\n    time.sleep(600)\n")


def kill_after_taking(contract: str, change: str) -> float:
    """Start a process that takes the slot, SIGKILL it once it holds it; returns the kill's monotonic time."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD.format(contract=contract, change=change)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=os.environ.copy())
    for line in proc.stdout:
        if line.strip() == "held":
            break
    proc.kill()
    proc.wait(10)
    return time.monotonic()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    home = Path(os.environ.setdefault("VVOPS_HOME", f"/tmp/bench-slot-lapse-{os.getpid()}"))
    home.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_HOME"] = str(home / "prefect")
    os.environ["PYTHONWARNINGS"] = "ignore"
    from vvops.devnet import free_port
    from vvops.services import Supervisor, apply_prefect_runtime_env, prefect_api_url, start_prefect_server
    from vvops.store import default_store_url, migrate

    migrate(default_store_url())
    port = free_port()
    apply_prefect_runtime_env(api_url=prefect_api_url(port))
    supervisor = Supervisor(log_dir=home / "logs")
    out = {}
    try:
        _, out["prefect_server_start_s"] = start_prefect_server(supervisor, port=port)
        from tasks.contract_slots import hold_contract_slots

        contract = f"lapse-{uuid.uuid4().hex[:6]}"
        killed = kill_after_taking(contract, "chg-a")
        with hold_contract_slots(contracts=[("devnet", contract)], procedure="parameter_change", change_id="chg-b",
                                 timeout_seconds=300):
            out["other_change_waited_after_kill_s"] = round(time.monotonic() - killed, 1)

        contract = f"lapse-{uuid.uuid4().hex[:6]}"
        killed = kill_after_taking(contract, "chg-a")
        with hold_contract_slots(contracts=[("devnet", contract)], procedure="parameter_change", change_id="chg-a",
                                 timeout_seconds=300):
            out["same_change_rerun_waited_after_kill_s"] = round(time.monotonic() - killed, 1)
    finally:
        supervisor.stop_all()
    print(json.dumps(out, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
