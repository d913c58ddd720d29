"""Fan-out benchmark (loopback only, bounded): contract-state checks for 5 chains × 200 vaults.

    uv run python benchmarks/bench_fanout.py [--chains 5] [--contracts 200] [--chunk-size 50] [--reps 2]
        [--paths thread,dask_local,dask_address,naive] [--dask-workers 2] [--json]

Set-up: `--chains` anvil nodes (automine); on each, `deploy_devnet` (asset, VaultV1 implementation, timelock,
Multicall3, ...) and then `--contracts` ERC1967Proxy(VaultV1, initialize(...)) instances sent as batched
create transactions with explicit nonces (one implementation, many proxies). On each chain the guardian pauses
one proxy, so every path must report exactly `--chains` crit outcomes (`expect paused == false`).

A Prefect server is started for the run (its own PREFECT_HOME; its database a scratch PostgreSQL database,
dropped afterwards) because Dask worker processes must report task runs to an API.

Paths (interleaved, `--reps` times each):
  thread        flows.daily.fanout.contract_fanout on the default ThreadPoolTaskRunner
  dask_local    the same flow on prefect_dask.DaskTaskRunner creating a local cluster (processes) per run
  dask_address  the same flow on DaskTaskRunner(address=...) of a LocalCluster started once before the runs
  naive         no Prefect: one eth_call per getter per contract and one eth_getStorageAt each, sequential
Each reports wall time, HTTP round trips and JSON-RPC requests (counted from RpcClient.attempts inside the
tasks; counted directly in the naive loop), and peak RSS of this process plus its Dask worker processes (the
Prefect server and the anvil nodes excluded), sampled every 50 ms with psutil.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402

from vvops.devnet import AnvilProcess, Chain, deploy_devnet, free_port  # noqa: E402
from vvops.chain.abi import contract_abi  # noqa: E402
from vvops.devnet.chain import create_address  # noqa: E402
from vvops.devnet.deploy import (  # noqa: E402
    _GAS_PROXY,
    DEFAULT_DEPOSIT_CAP,
    DEFAULT_FEE_BPS,
    DEFAULT_WITHDRAWAL_LIMIT,
    _deploy_data,
)


# ---------------------------------------------------------------------- set-up

def deploy_vaults(rpc_url: str, n: int, chain_name: str) -> dict[str, Any]:
    info = deploy_devnet(rpc_url, seed_deposits=False)
    chain = Chain(rpc_url, timeout=60)
    try:
        deployer = info.accounts.deployer.address
        guardian = info.accounts.guardian.address
        c = info.contracts
        init = contract_abi("VaultV1").encode_call("initialize", c.asset, c.timelock, guardian, DEFAULT_FEE_BPS,
                                                   DEFAULT_WITHDRAWAL_LIMIT, DEFAULT_DEPOSIT_CAP)
        data = _deploy_data("ERC1967Proxy", ["address", "bytes"], [c.vault_v1_implementation, init])
        n0 = chain.nonce(deployer)
        addresses = [create_address(deployer, n0 + i) for i in range(n)]
        hashes: list[str] = []
        # automine off while sending (an automining node may take nonce n+1 before n from one batch and leave
        # it queued), then mine the pool block by block (bounded) and switch automine back on
        chain.request("evm_setAutomine", [False])
        try:
            for start in range(0, n, 50):  # batches of 50 create txs with explicit nonces
                hashes += chain.send_many([{"sender": deployer, "data": data, "gas": _GAS_PROXY, "nonce": n0 + i}
                                           for i in range(start, min(n, start + 50))])
            for _ in range(n + 10):
                if chain.nonce(deployer, "latest") >= n0 + n:
                    break
                chain.request("evm_mine", [])
        finally:
            chain.request("evm_setAutomine", [True])
        receipts = chain.wait_for_receipts(hashes, timeout=120)
        for r, a in zip(receipts, addresses):
            assert int(r["status"], 16) == 1 and r["contractAddress"].lower() == a.lower(), r
        paused_index = 7 % n
        vault = chain.contract("VaultV1", addresses[paused_index])
        vault.transact(guardian, "pause", gas=200_000)
        contracts = [{"name": f"{chain_name}-vault-{i:03d}", "address": a,
                      "roles": {"owner": c.timelock, "guardian": guardian},
                      "approved_implementations": [c.vault_v1_implementation], "expect": {"paused": False}}
                     for i, a in enumerate(addresses)]
        return {"chain": chain_name, "rpc_urls": [rpc_url], "multicall": c.multicall3, "contracts": contracts,
                "paused": contracts[paused_index]["name"]}
    finally:
        chain.close()


class PrefectServer:
    """`prefect server start` on a free loopback port with a scratch PostgreSQL database (or SQLite)."""

    def __init__(self, home: Path, pg_admin_url: str | None):
        self.home, self.pg_admin_url = home, pg_admin_url
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.db = f"vv_bench_fanout_prefect_{os.getpid()}"
        self.log = open(home / "server.log", "w")

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def _pg(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.pg_admin_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True,
                             connect_timeout=5) as conn:
            conn.execute(sql)

    def start(self, timeout: float = 150) -> "PrefectServer":
        env = {**os.environ, "PREFECT_HOME": str(self.home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "PREFECT_UI_ENABLED": "false", "PREFECT_API_URL": self.api_url}
        if self.pg_admin_url:
            self._pg(f'DROP DATABASE IF EXISTS "{self.db}"')
            self._pg(f'CREATE DATABASE "{self.db}"')
            base = self.pg_admin_url.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql+asyncpg://")
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = f"{base}/{self.db}"
        self.proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                      "--port", str(self.port)], env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=self.home)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prefect server exited: see {self.home / 'server.log'}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"prefect server not healthy after {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: the server and its children only
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()
        if self.pg_admin_url:
            try:
                self._pg(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
            except Exception as error:  # noqa: BLE001
                print(f"warning: could not drop {self.db}: {error}", file=sys.stderr)


class PeakRss:
    """Peak of (this process + its descendants, minus `exclude` pids and their descendants) RSS, sampled."""

    def __init__(self, exclude: set[int], interval: float = 0.05):
        self.exclude, self.interval = exclude, interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> float:
        me = psutil.Process()
        total = me.memory_info().rss
        skip: set[int] = set()
        for pid in self.exclude:
            try:
                p = psutil.Process(pid)
                skip |= {pid, *(c.pid for c in p.children(recursive=True))}
            except psutil.Error:
                pass
        for child in me.children(recursive=True):
            if child.pid in skip:
                continue
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakRss":
        self.peak = self._sample()
        self._t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._t.join(2)


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


# ---------------------------------------------------------------------- the naive path

def naive_check(targets: list[dict[str, Any]]) -> dict[str, Any]:
    from collections import Counter

    from flows.daily.fanout import contract_spec
    from vvops.chain.reader import IMPLEMENTATION_SLOT, decode_value, encode_call
    from vvops.chain.rpc import RpcClient
    from vvops.checks.contract_state import evaluate_contract_state

    spec = contract_spec()
    statuses: Counter[str] = Counter()
    problems = []
    requests = 0
    for t in targets:
        with RpcClient(t["rpc_urls"], timeout_s=10) as rpc:
            for c in t["contracts"]:
                values = {}
                for name, sig, ret in spec["getters"]:
                    raw = rpc.call("eth_call", [{"to": c["address"], "data": "0x" + encode_call(sig).hex()}, "latest"])
                    values[name] = decode_value(tuple(ret), bytes.fromhex(raw[2:]))
                word = rpc.call("eth_getStorageAt", [c["address"], IMPLEMENTATION_SLOT, "latest"])
                outcomes = evaluate_contract_state(
                    contract=c["name"], values=values, errors={}, roles=c["roles"],
                    approved_implementations=tuple(c["approved_implementations"]), implementation="0x" + word[-40:],
                    parameters=spec["parameters"], invariants=spec["invariants"], expect=c["expect"])
                for o in outcomes:
                    statuses[o.status] += 1
                    if o.status != "ok":
                        problems.append({"chain": t["chain"], "contract": c["name"], "check": o.id})
            requests += len(rpc.attempts)
    return {"contracts": sum(len(t["contracts"]) for t in targets), "statuses": dict(statuses), "problems": problems,
            "http_requests": requests, "jsonrpc_requests": requests, "tasks": 0}


# ---------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chains", type=int, default=5)
    ap.add_argument("--contracts", type=int, default=200)
    ap.add_argument("--chunk-size", type=int, default=50)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--paths", default="thread,dask_local,dask_address,naive")
    ap.add_argument("--dask-workers", type=int, default=2)
    ap.add_argument("--dask-threads", type=int, default=2)
    ap.add_argument("--pg-url", default=os.environ.get("VVOPS_TEST_POSTGRES_URL",
                                                      "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--sqlite-server", action="store_true", help="Prefect server on SQLite instead of PostgreSQL")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]

    tmp = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    nodes: list[AnvilProcess] = []
    server: PrefectServer | None = None
    cluster = None
    out: dict[str, Any] = {"load_avg_start": round(os.getloadavg()[0], 2), "runs": []}
    try:
        t = time.perf_counter()
        for i in range(args.chains):
            nodes.append(AnvilProcess(free_port(), log_path=tmp / f"anvil{i}.log").start())
        server = PrefectServer(tmp, None if args.sqlite_server else args.pg_url)
        server_thread = threading.Thread(target=server.start, daemon=True)  # starts while we deploy
        server_thread.start()
        targets = [deploy_vaults(n.rpc_url, args.contracts, f"chain{i}") for i, n in enumerate(nodes)]
        out["setup_deploy_s"] = round(time.perf_counter() - t, 1)
        server_thread.join(160)
        if server.proc is None or server.proc.poll() is not None:
            raise RuntimeError("prefect server did not start")
        for _ in range(300):
            try:
                if httpx.get(f"{server.api_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        out["setup_total_s"] = round(time.perf_counter() - t, 1)
        os.environ["PREFECT_API_URL"] = server.api_url
        os.environ["PREFECT_HOME"] = str(tmp)
        os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")

        from flows.daily.fanout import fanout_flow

        expected_problems = sorted(t_["paused"] for t_ in targets)
        exclude = {n.pid for n in nodes if n.pid} | ({server.proc.pid} if server.proc else set())
        cluster_pids: set[int] = set()
        if "dask_address" in paths:
            from distributed import LocalCluster

            tc = time.perf_counter()
            cluster = LocalCluster(n_workers=args.dask_workers, threads_per_worker=args.dask_threads, processes=True,
                                   host="127.0.0.1", dashboard_address="127.0.0.1:0")  # loopback only
            out["dask_address_cluster_start_s"] = round(time.perf_counter() - tc, 2)
        # the standing cluster's processes count only for the path that uses it
        cluster_pids = {c.pid for c in psutil.Process().children(recursive=True)} - exclude - \
            {c.pid for pid in exclude for c in _children(pid)}

        def run(path: str) -> dict[str, Any]:
            if path == "naive":
                return naive_check(targets)
            if path == "thread":
                f = fanout_flow("thread")
            elif path == "dask_local":
                f = fanout_flow("dask", n_workers=args.dask_workers, threads_per_worker=args.dask_threads)
            elif path == "dask_address":
                f = fanout_flow("dask", address=cluster.scheduler_address)
            else:
                raise ValueError(path)
            return f(targets=targets, chunk_size=args.chunk_size)

        for rep in range(args.reps):
            for path in paths:
                with PeakRss(exclude if path == "dask_address" else exclude | cluster_pids) as mem:
                    t0 = time.perf_counter()
                    res = run(path)
                    wall = time.perf_counter() - t0
                got = sorted(p["contract"] for p in res["problems"])
                total = args.chains * args.contracts
                assert res["contracts"] == total, (path, res["contracts"])
                assert got == expected_problems, (path, got[:10])
                assert res["statuses"].get("ok", 0) > 0 and set(res["statuses"]) <= {"ok", "crit"}, res["statuses"]
                row = {"rep": rep, "path": path, "wall_s": round(wall, 2), "contracts": res["contracts"],
                       "tasks": res.get("tasks"), "http_requests": res["http_requests"],
                       "jsonrpc_requests": res["jsonrpc_requests"], "outcomes": res["statuses"],
                       "peak_rss_mb": round(mem.peak, 1), "load_avg": round(os.getloadavg()[0], 2)}
                out["runs"].append(row)
                print(json.dumps(row), flush=True)
        summary = {}
        for path in paths:
            walls = [r["wall_s"] for r in out["runs"] if r["path"] == path]
            rows = [r for r in out["runs"] if r["path"] == path]
            summary[path] = {"wall_s_median": round(statistics.median(walls), 2), "wall_s_all": walls,
                             "http_requests": rows[-1]["http_requests"], "jsonrpc_requests": rows[-1]["jsonrpc_requests"],
                             "peak_rss_mb_max": max(r["peak_rss_mb"] for r in rows)}
        out["summary"] = summary
    finally:
        if cluster is not None:
            cluster.close()
        if server is not None:
            server.stop()
        for n in nodes:
            n.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    out["load_avg_end"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            if k == "runs":
                continue
            if isinstance(v, dict):
                print(k)
                for kk, vv in v.items():
                    print(f"  {kk:14s} {vv}")
            else:
                print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
