"""Plain rules behind the procedures: parameter proposals, code-hash matching (storage layouts: test_upgrade_safety.py)."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from vvops.config import load_config
from vvops.chain.artifacts import deployed_bytecode_of, load_artifact
from vvops.procedures.parameters import ProposalRejected, validate_parameter_change
from vvops.procedures.upgrades import masked_code_hash


@pytest.fixture(scope="module")
def vault():
    return load_config(environment="devnet").contract("vault")


def test_a_proposal_inside_bounds_is_accepted(vault):
    proposal = validate_parameter_change(contract=vault, parameter="feeBps", new_value=50)
    assert (proposal.new_value, proposal.minimum, proposal.maximum, proposal.setter) == (50, 0, 1000, "setFeeBps")


@pytest.mark.parametrize(
    ("parameter", "value", "message"),
    [
        ("feeBps", 1001, "feeBps = 1001 is outside its bounds [0, 1000] bps"),
        ("feeBps", -1, "feeBps = -1 is outside its bounds [0, 1000] bps"),
        ("feeBps", "ten", "feeBps must be an integer (raw units: bps), got 'ten'"),
        ("fee", 10, "vault has no governable parameter 'fee' (known: depositCap, feeBps, withdrawalLimit)"),
    ],
)
def test_a_bad_proposal_is_rejected_with_the_reason(vault, parameter, value, message):
    with pytest.raises(ProposalRejected) as exc:
        validate_parameter_change(contract=vault, parameter=parameter, new_value=value)
    assert str(exc.value) == message


def test_code_hash_ignores_immutables_but_not_code():
    code = deployed_bytecode_of("VaultV2")
    refs = load_artifact("VaultV2")["immutableReferences"]
    assert refs, "VaultV2 keeps its own address in an immutable"
    deployed = bytearray(code)
    for ref in refs:  # what the EVM writes at deploy time
        deployed[ref["start"]:ref["start"] + ref["length"]] = (0xAB).to_bytes(1, "big") * ref["length"]
    assert masked_code_hash(bytes(deployed), refs) == masked_code_hash(code, refs)
    assert masked_code_hash(bytes(deployed), refs) != "0x" + keccak(bytes(deployed)).hex()
    tampered = bytearray(deployed)
    tampered[10] ^= 0xFF
    assert masked_code_hash(bytes(tampered), refs) != masked_code_hash(code, refs)
