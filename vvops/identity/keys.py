"""Signing keys at a terminal: a keystore file (password from an environment variable or a prompt), a hex key
in an environment variable, or — where the environment trusts them (the devnet) — the roster's public devnet keys.

Devnet keys are derived from a public seed and each person's id, so anybody can compute them: they make the
devnet demo one command and are refused as proof on every environment whose `identity.devnet_keys` is false.
"""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

from eth_utils import keccak

DEVNET_SEED = b"veritasvault-ops/devnet-roster/"


class KeyError_(ValueError):
    """A key that cannot be loaded; the message says which and what to do (never the key)."""


def devnet_key(person_id: str) -> bytes:
    """The public devnet private key of a roster person (never a secret; never trusted outside the devnet)."""
    return keccak(DEVNET_SEED + person_id.encode())


def devnet_address(person_id: str) -> str:
    from eth_account import Account

    return Account.from_key(devnet_key(person_id)).address


def load_key(*, keystore: str | None = None, password_env: str | None = None, key_env: str | None = None,
             prompt: bool = True) -> bytes:
    """A private key from a keystore (password: `password_env` or a prompt) or from the variable `key_env`."""
    from eth_account import Account

    if keystore:
        path = Path(keystore)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise KeyError_(f"cannot read keystore {path}: {error.__class__.__name__}") from None
        password = os.environ.get(password_env) if password_env else None
        if password is None:
            if not prompt:
                raise KeyError_(f"keystore {path} needs a password: set {password_env or 'a password variable'}")
            password = getpass.getpass(f"password for {path.name}: ")
        try:
            return bytes(Account.decrypt(data, password))
        except (ValueError, KeyError, TypeError):
            raise KeyError_(f"keystore {path}: wrong password or not an Ethereum keystore") from None
    if key_env:
        raw = os.environ.get(key_env, "").strip()
        if not raw:
            raise KeyError_(f"{key_env} is not set (it should hold a 0x-hex private key)")
        try:
            key = bytes.fromhex(raw.removeprefix("0x"))
        except ValueError:
            raise KeyError_(f"{key_env} is not a hex private key") from None
        if len(key) != 32:
            raise KeyError_(f"{key_env} is not a 32-byte private key")
        return key
    raise KeyError_("no key given: pass --keystore FILE or --key-env VARIABLE")


def sign_statement(statement, key: bytes) -> str:
    """0x-hex 65-byte EIP-712 signature of a Statement."""
    from eth_account import Account

    return "0x" + bytes(Account.sign_message(statement.signable(), key).signature).hex()
