"""A local stand-in for the Safe Transaction Service's public API, for tests that drive safe-eth-py's client.

Stdlib only: a `ThreadingHTTPServer` on 127.0.0.1 (port 0) in a daemon thread. Like the real service it indexes the
chain (owners are read from the Safe over JSON-RPC), recomputes the SafeTx hash of every proposal and refuses one
whose `contractTransactionHash` differs, accepts proposals only from an owner or a registered delegate whose
signature over the hash recovers to `sender`, and accepts confirmations only from current owners. Endpoints:

  POST /api/v2/safes/{safe}/multisig-transactions/             propose
  GET  /api/v2/multisig-transactions/{safe_tx_hash}/            one transaction with its confirmations
  GET  /api/v2/safes/{safe}/multisig-transactions/[?safe_tx_hash=]   list
  POST /api/v1/multisig-transactions/{safe_tx_hash}/confirmations/   add an owner's signature

Test helpers: `standin.confirm(safe_tx_hash, signature)` stores a confirmation as the Safe UI would (verified the
same way), `standin.inject("down"|"server_error", count=N)`, `standin.requests` (method, path) of every call.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from vvops.chain.rpc import RpcClient
from vvops.safe.contracts import SafeReader
from vvops.safe.signatures import verify
from vvops.safe.tx import SafeTxSpec


class SafeTxServiceStandIn:
    def __init__(self, rpc_url: str, chain_id: int, *, delegates: list[str] = (), version: str = "1.4.1"):
        self.rpc_url, self.chain_id, self.version = rpc_url, chain_id, version
        self.delegates = {d.lower() for d in delegates}
        self.txs: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.faults: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "SafeTxServiceStandIn":
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                standin._handle(self, "GET")

            def do_POST(self):
                standin._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def inject(self, kind: str, count: int = 1) -> None:
        self.faults.append((kind, count))

    # ------------------------------------------------------------------ rules
    def _reader(self, safe: str) -> tuple[RpcClient, SafeReader]:
        rpc = RpcClient([self.rpc_url])
        return rpc, SafeReader(rpc, safe)

    def _verify(self, spec: SafeTxSpec, signature: str, expected: str | None = None) -> tuple[str | None, str | None]:
        rpc, reader = self._reader(spec.safe)
        try:
            owners = reader.owners()
            verdicts = verify(signature, spec=spec, owners=owners + sorted(self.delegates), reader=reader,
                              expected_owner=expected)
        finally:
            rpc.close()
        if len(verdicts) != 1 or not verdicts[0].accepted:
            return None, verdicts[0].message if verdicts else "no signature"
        return verdicts[0].owner, None

    def confirm(self, safe_tx_hash: str, signature: str) -> tuple[int, dict]:
        with self._lock:
            tx = self.txs.get(safe_tx_hash.lower())
        if tx is None:
            return 404, {"detail": "Not found."}
        spec = tx["_spec"]
        owner, error = self._verify(spec, signature)
        rpc, reader = self._reader(spec.safe)
        try:
            is_owner = owner is not None and owner in reader.owners()
        finally:
            rpc.close()
        if not is_owner:
            return 422, {"signature": [error or f"{owner} is not an owner"]}
        with self._lock:
            if any(c["owner"] == owner for c in tx["confirmations"]):
                return 201, {}
            kind = {27: "EOA", 28: "EOA", 31: "ETH_SIGN", 32: "ETH_SIGN"}.get(int(signature[-2:], 16), "EOA")
            tx["confirmations"].append({"owner": owner, "signature": signature, "signatureType": kind,
                                        "submissionDate": "2026-11-30T00:00:00Z", "transactionHash": None})
        return 201, {}

    # ------------------------------------------------------------------ HTTP
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(handler.path)
        self.requests.append((method, url.path))
        with self._lock:
            fault = None
            if self.faults:
                kind, count = self.faults[0]
                fault = kind
                self.faults[0] = (kind, count - 1)
                if count - 1 <= 0:
                    self.faults.pop(0)
        if fault == "down":
            handler.close_connection = True
            return
        if fault == "server_error":
            return self._reply(handler, 500, {"detail": "server error"})
        body = {}
        if method == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            try:
                body = json.loads(handler.rfile.read(length) or b"{}")
            except ValueError:
                return self._reply(handler, 400, {"detail": "bad json"})
        path = url.path
        if m := re.fullmatch(r"/api/v2/safes/(0x[0-9a-fA-F]{40})/multisig-transactions/", path):
            if method == "POST":
                return self._reply(handler, *self._propose(m.group(1), body))
            wanted = (parse_qs(url.query).get("safe_tx_hash") or [None])[0]
            with self._lock:
                results = [self._public(t) for t in self.txs.values() if t["safe"].lower() == m.group(1).lower()
                           and (wanted is None or t["safeTxHash"] == wanted.lower())]
            return self._reply(handler, 200, {"count": len(results), "results": results})
        if m := re.fullmatch(r"/api/v2/multisig-transactions/(0x[0-9a-fA-F]{64})/", path):
            with self._lock:
                tx = self.txs.get(m.group(1).lower())
            return self._reply(handler, 200, self._public(tx)) if tx else self._reply(handler, 404, {"detail": "Not found."})
        if (m := re.fullmatch(r"/api/v1/multisig-transactions/(0x[0-9a-fA-F]{64})/confirmations/", path)) \
                and method == "POST":
            return self._reply(handler, *self.confirm(m.group(1), body.get("signature") or ""))
        return self._reply(handler, 404, {"detail": "Not found."})

    def _propose(self, safe: str, body: dict) -> tuple[int, dict]:
        try:
            spec = SafeTxSpec(safe=safe, chain_id=self.chain_id, nonce=int(body["nonce"]), to=body["to"],
                              value=int(body["value"]), data=body.get("data") or "0x",
                              operation=int(body["operation"]), safe_tx_gas=int(body["safeTxGas"]),
                              base_gas=int(body["baseGas"]), gas_price=int(body["gasPrice"]),
                              gas_token=body.get("gasToken") or "0x" + "00" * 20,
                              refund_receiver=body.get("refundReceiver") or "0x" + "00" * 20, version=self.version)
        except (KeyError, ValueError, TypeError) as exc:
            return 422, {"detail": f"invalid transaction: {type(exc).__name__}"}
        if spec.safe_tx_hash != (body.get("contractTransactionHash") or "").lower():
            return 422, {"contractTransactionHash": ["does not match the computed SafeTx hash"]}
        sender = body.get("sender") or ""
        signer, error = self._verify(spec, body.get("signature") or "", expected=sender)
        if signer is None:
            return 422, {"signature": [error or "invalid"]}
        with self._lock:
            if spec.safe_tx_hash in self.txs:
                return 422, {"nonce": ["transaction already exists"]}
            self.txs[spec.safe_tx_hash] = {"safe": spec.safe, "safeTxHash": spec.safe_tx_hash, "_spec": spec,
                                           "proposer": sender, "confirmations": []}
            if sender.lower() not in self.delegates:  # an owner's proposal is also its confirmation
                self.txs[spec.safe_tx_hash]["confirmations"].append(
                    {"owner": signer, "signature": body["signature"], "signatureType": "EOA",
                     "submissionDate": "2026-11-30T00:00:00Z", "transactionHash": None})
        return 201, {}

    def _public(self, tx: dict) -> dict:
        spec: SafeTxSpec = tx["_spec"]
        return {"safe": spec.safe, "to": spec.to, "value": str(spec.value), "data": spec.data,
                "operation": spec.operation, "gasToken": spec.gas_token, "safeTxGas": str(spec.safe_tx_gas),
                "baseGas": str(spec.base_gas), "gasPrice": str(spec.gas_price),
                "refundReceiver": spec.refund_receiver, "nonce": str(spec.nonce), "safeTxHash": spec.safe_tx_hash,
                "proposer": tx["proposer"], "confirmationsRequired": None, "isExecuted": False,
                "transactionHash": None, "signatures": None, "confirmations": list(tx["confirmations"])}

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
