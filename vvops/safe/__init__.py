"""Safe (Gnosis Safe) multisig support: real SafeTx hashes, MultiSend batches, owners' signatures verified against
the Safe's current owners, proposals and confirmations in the ops store, execution exactly once.

We build on safe-eth-py (Safe's own Python library, 7.27 works beside web3 8): its `SafeTx` computes the EIP-712
hash exactly as the contract's `getTransactionHash`, its `SafeSignature` parses and checks every signature kind
Safe accepts, its `MultiSendTx` encodes batches and its `TransactionServiceApi` talks to a Safe Transaction
Service. What is ours: the store, the rules (current owners, duplicates, refusals audited), exactly-once execution,
and finding an execution the owners did themselves.

Plain Python (no Prefect): tasks/safe.py wraps it for the flows.
"""
