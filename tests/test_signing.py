"""Signers: local devnet keys, keystore files, multisig proposals; no private key in repr, errors or pickles."""

from __future__ import annotations

import json
import pickle

import pytest
from eth_account import Account

from vvops.chain.signing import (KeystoreSigner, LocalKeySigner,
                                 SigningError, signer_for_role)

# anvil's well-known account 9 (public; devnet only)
KEY = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"
ADDRESS = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"
TX = {"type": 2, "chainId": 31337, "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "data": "0x", "value": 1,
      "gas": 21000, "maxFeePerGas": 2_000_000_000, "maxPriorityFeePerGas": 1_000_000, "nonce": 3}


def _no_key(text: str) -> None:
    assert KEY[2:].lower() not in text.lower()


def test_local_key_signer_signs_and_never_shows_its_key():
    signer = LocalKeySigner(KEY, label="devnet:spare")
    signed = signer.sign_transaction(TX)

    assert signer.address == ADDRESS
    assert Account.recover_transaction(signed.raw_tx) == ADDRESS
    assert signed.nonce == 3 and signed.tx_hash.startswith("0x") and len(signed.tx_hash) == 66
    for text in (repr(signer), str(signer), str(vars(signer)), repr(signed)):
        _no_key(text)
    with pytest.raises(TypeError, match="cannot be serialised"):
        pickle.dumps(signer)


def test_a_bad_key_or_a_failed_signature_never_echoes_the_key():
    with pytest.raises(SigningError) as bad:
        LocalKeySigner(KEY[:-2] + "zz")
    _no_key(str(bad.value))
    assert bad.value.__cause__ is None and bad.value.__suppress_context__

    signer = LocalKeySigner(KEY)
    with pytest.raises(SigningError) as failed:
        signer.sign_transaction({**TX, "gas": "not a number"})
    _no_key(str(failed.value))
    assert failed.value.__suppress_context__


def test_devnet_signer_reads_the_role_key_from_devnet_json():
    data = {"accounts": {"guardian": {"address": ADDRESS, "private_key": KEY}}}
    assert LocalKeySigner.from_devnet("guardian", data).address == ADDRESS
    assert signer_for_role("devnet", "guardian", devnet_json=data, environ={}).address == ADDRESS
    with pytest.raises(SigningError, match="no account with a key for role 'treasurer'"):
        LocalKeySigner.from_devnet("treasurer", data)
    with pytest.raises(SigningError, match="no signer configured for role 'governance' in mainnet"):
        signer_for_role("mainnet", "governance", environ={})


def test_keystore_signer_takes_its_password_from_the_environment(tmp_path, monkeypatch):
    keystore = tmp_path / "ops.json"
    keystore.write_text(json.dumps(Account.encrypt(KEY, "s3cret-pw", iterations=2)))
    monkeypatch.setenv("VV_TEST_KEYSTORE_PW", "s3cret-pw")

    signer = signer_for_role("mainnet", "governance", environ={
        "VVOPS_SIGNER_GOVERNANCE_KEYSTORE": str(keystore), "VVOPS_SIGNER_GOVERNANCE_PASSWORD_ENV": "VV_TEST_KEYSTORE_PW"})
    signed = signer.sign_transaction(TX)

    assert isinstance(signer, KeystoreSigner) and signer.address == ADDRESS
    assert Account.recover_transaction(signed.raw_tx) == ADDRESS
    assert "s3cret" not in repr(signer)
    monkeypatch.setenv("VV_TEST_KEYSTORE_PW", "wrong")
    with pytest.raises(SigningError, match="wrong password") as wrong:
        signer.sign_transaction(TX)
    assert "wrong" not in str(wrong.value).replace("wrong password", "")
    monkeypatch.delenv("VV_TEST_KEYSTORE_PW")
    with pytest.raises(SigningError, match="VV_TEST_KEYSTORE_PW is not set"):
        signer.sign_transaction(TX)


def test_the_old_safe_json_file_signer_is_refused_with_a_pointer_to_the_safe_config():
    with pytest.raises(SigningError, match=r"VVOPS_SIGNER_GOVERNANCE_SAFE is no longer read.*Connecting a Safe"):
        signer_for_role("mainnet", "governance", chain_id=1,
                        environ={"VVOPS_SIGNER_GOVERNANCE_SAFE": "0x5A17000000000000000000000000000000000002"})



def test_a_keystore_password_in_a_prefect_secret_block_is_refused():
    """A Secret block's value comes back from the Prefect API to anyone it lets in (`include_secrets`)."""
    with pytest.raises(SigningError, match="PASSWORD_SECRET is refused.*PASSWORD_ENV") as refused:
        signer_for_role("mainnet", "governance", environ={"VVOPS_SIGNER_GOVERNANCE_KEYSTORE": "/keys/gov.json",
                                                          "VVOPS_SIGNER_GOVERNANCE_PASSWORD_SECRET": "gov-pass"})
    assert "gov-pass" not in str(refused.value)
