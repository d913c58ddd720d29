"""Who signs the transactions the ops system sends. Private keys never leave this module's objects.

Signers (all share `address`, `kind`, `sign_transaction(tx) -> SignedTx`):

- `LocalKeySigner(private_key, label=...)` — a key held in memory, signed with eth_account. Only for the
  devnet: `LocalKeySigner.from_devnet("governance")` reads the well-known anvil key of a role from
  `.vvops/devnet.json` (accounts.<role>.private_key).
- `KeystoreSigner(path, password_env=...)` — an encrypted Ethereum keystore (JSON v3) file; the password comes
  from an environment variable of the process that signs (never a Prefect `Secret` block: the Prefect API returns
  a Secret block's value to anyone it lets in). The key is decrypted only for the moment of signing, then dropped.
- A Safe multisig is not a signer: where a Safe holds a timelock role (environments.yaml `safe`), procedures
  propose real Safe transactions in the ops store and execute them once the owners confirm (vvops/safe,
  tasks/safe.py). Signers here only sign the executor's `execTransaction`.

`signer_for_role(environment, role)` picks the signer for an environment: the devnet uses the devnet.json
keys; other environments read, per role (upper-cased), from the environment:
  VVOPS_SIGNER_<ROLE>_KEYSTORE            path of a keystore file, with
  VVOPS_SIGNER_<ROLE>_PASSWORD_ENV        the name of the env var holding its password
  (VVOPS_SIGNER_<ROLE>_PASSWORD_SECRET, a Prefect Secret block, is refused: the API would return the password);
  (VVOPS_SIGNER_<ROLE>_SAFE, which wrote "Safe-style" JSON files, is refused with a pointer to the Safe config.)
No private key is ever read from config/ (config check rejects literal secrets).

Leak-proofing: `repr`/`str` show only the kind and address; objects refuse to pickle (so Prefect cannot
persist them as parameters or results); errors raised here never include the key or password and are raised
`from None` so no underlying exception (which might) is chained.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from eth_utils import to_checksum_address


class SigningError(RuntimeError):
    """A signer could not be built or could not sign; the message never contains key material."""


@dataclass(frozen=True)
class SignedTx:
    raw_tx: str  # 0x-prefixed raw signed transaction
    tx_hash: str  # 0x-prefixed keccak of raw_tx
    nonce: int


class Signer(Protocol):
    address: str
    kind: str

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTx: ...


class _NoPickle:
    def __reduce__(self):  # noqa: D401 - pickling would copy the key to disk (Prefect result persistence)
        raise TypeError(f"{type(self).__name__} cannot be serialised (it guards key material)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, address={self.address!r})"

    __str__ = __repr__


def _sign_with_key(key: bytes, tx: dict[str, Any]) -> SignedTx:
    from eth_account import Account

    try:
        signed = Account.sign_transaction(tx, key)
    except Exception as exc:  # noqa: BLE001 - eth_account messages may echo inputs; never chain them
        raise SigningError(f"could not sign the transaction: {type(exc).__name__}") from None
    raw = signed.raw_transaction
    return SignedTx(raw_tx="0x" + bytes(raw).hex(), tx_hash="0x" + bytes(signed.hash).hex(), nonce=int(tx["nonce"]))


def _sign_digest(key: bytes, digest: bytes) -> str:
    """r|s|v of a raw 32-byte digest (a Safe proposer's/delegate's signature of a SafeTx hash)."""
    from eth_account import Account

    try:
        signed = Account.unsafe_sign_hash(digest, key)
    except Exception as exc:  # noqa: BLE001 - never chain (inputs may be echoed)
        raise SigningError(f"could not sign the hash: {type(exc).__name__}") from None
    return "0x" + signed.r.to_bytes(32, "big").hex() + signed.s.to_bytes(32, "big").hex() + f"{signed.v:02x}"


def _address_of(key: bytes) -> str:
    from eth_account import Account

    try:
        return to_checksum_address(Account.from_key(key).address)
    except Exception:  # noqa: BLE001
        raise SigningError("invalid private key (not shown)") from None


def _key_bytes(private_key: str | bytes) -> bytes:
    if hasattr(private_key, "get_secret_value"):
        private_key = private_key.get_secret_value()
    if isinstance(private_key, (bytes, bytearray)):
        raw = bytes(private_key)
    else:
        text = str(private_key).strip()
        text = text[2:] if text.lower().startswith("0x") else text
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise SigningError("invalid private key: not hex (not shown)") from None
    if len(raw) != 32:
        raise SigningError("invalid private key: expected 32 bytes (not shown)")
    return raw


class LocalKeySigner(_NoPickle):
    """Signs with a private key held in memory (devnet). `repr` shows the address only."""

    kind = "local-key"

    def __init__(self, private_key: str | bytes, *, label: str = ""):
        self.__key = _key_bytes(private_key)
        self.address = _address_of(self.__key)
        self.label = label

    @classmethod
    def from_devnet(cls, role: str, devnet_json: dict | None = None) -> LocalKeySigner:
        """The well-known anvil key of `role` (deployer, governance, guardian, attacker, spare) from devnet.json."""
        from vvops.config import load_devnet_json

        data = devnet_json if devnet_json is not None else load_devnet_json()
        account = (data.get("accounts") or {}).get(role)
        if not isinstance(account, dict) or "private_key" not in account:
            known = sorted(k for k, v in (data.get("accounts") or {}).items() if isinstance(v, dict))
            raise SigningError(f"devnet.json has no account with a key for role {role!r} (known: {', '.join(known)})")
        signer = cls(account["private_key"], label=f"devnet:{role}")
        if account.get("address") and to_checksum_address(account["address"]) != signer.address:
            raise SigningError(f"devnet.json account {role!r}: the key does not match its address")
        return signer

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTx:
        return _sign_with_key(self.__key, tx)

    def sign_hash(self, digest: bytes) -> str:
        return _sign_digest(self.__key, digest)


class KeystoreSigner(_NoPickle):
    """Signs with an encrypted keystore file; the password comes from an environment variable."""

    kind = "keystore"

    def __init__(self, path: str | Path, *, password_env: str | None = None):
        if not password_env:
            raise SigningError("KeystoreSigner needs password_env: the name of the variable holding the password")
        self.path = Path(path)
        self.password_env = password_env
        try:
            self._keystore = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SigningError(f"cannot read keystore {self.path}: {type(exc).__name__}") from None
        address = self._keystore.get("address")
        if not address:
            raise SigningError(f"keystore {self.path} has no address field")
        self.address = to_checksum_address(address if str(address).startswith("0x") else "0x" + address)

    def _password(self) -> str:
        value = os.environ.get(self.password_env)
        if not value:
            raise SigningError(f"keystore password: environment variable {self.password_env} is not set")
        return value

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTx:
        from eth_account import Account

        try:
            key = bytes(Account.decrypt(self._keystore, self._password()))
        except SigningError:
            raise
        except Exception as exc:  # noqa: BLE001 - wrong password, corrupt file: never chain
            raise SigningError(f"cannot decrypt keystore {self.path}: {type(exc).__name__} (wrong password?)") from None
        try:
            if _address_of(key) != self.address:
                raise SigningError(f"keystore {self.path}: decrypted key does not match its address")
            return _sign_with_key(key, tx)
        finally:
            del key

    def sign_hash(self, digest: bytes) -> str:
        from eth_account import Account

        try:
            key = bytes(Account.decrypt(self._keystore, self._password()))
        except SigningError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise SigningError(f"cannot decrypt keystore {self.path}: {type(exc).__name__} (wrong password?)") from None
        try:
            return _sign_digest(key, digest)
        finally:
            del key


def _runs_on_devnet(environment: str) -> bool:
    """Whether the environment's RPC is `from-devnet` (devnet, devnet-oz, ...): the devnet's well-known keys sign."""
    try:
        from vvops.config import load_config

        return load_config(environment=environment).env.uses_devnet
    except Exception:  # noqa: BLE001 - an unknown or invalid environment gets no devnet keys
        return False


def signer_for_role(environment: str, role: str, *, chain_id: int | None = None,
                    devnet_json: dict | None = None, environ: dict[str, str] | None = None) -> Signer:
    """The signer for `role` in `environment` (see the module docstring for the variables read)."""
    environ = os.environ if environ is None else environ
    prefix = f"VVOPS_SIGNER_{role.upper()}_"
    if environ.get(prefix + "PASSWORD_SECRET"):
        raise SigningError(f"{prefix}PASSWORD_SECRET is refused: the Prefect API returns a Secret block's value to "
                           f"anyone it lets in; put the password in an environment variable and name it in "
                           f"{prefix}PASSWORD_ENV")
    if environ.get(prefix + "KEYSTORE"):
        return KeystoreSigner(environ[prefix + "KEYSTORE"], password_env=environ.get(prefix + "PASSWORD_ENV"))
    if environ.get(prefix + "SAFE"):
        raise SigningError(f"{prefix}SAFE is no longer read: a Safe is configured in environments.yaml "
                           "(environments.<env>.safe) and its proposals, owners' confirmations and execution live in "
                           "the ops store (docs/deployment.md, \"Connecting a Safe\")")
    if environment == "devnet" or _runs_on_devnet(environment):
        return LocalKeySigner.from_devnet(role, devnet_json)
    raise SigningError(f"no signer configured for role {role!r} in {environment}: set {prefix}KEYSTORE "
                       f"(+ {prefix}PASSWORD_ENV)")
