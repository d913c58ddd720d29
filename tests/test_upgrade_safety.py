"""Storage-layout validation by OpenZeppelin upgrades-core (issue 12, item 4): it agrees with the tool on ERC-7201
namespaced storage, `__gap`, structs/enums across builds, renames and retypes — for plain contracts (ours) and
OpenZeppelin 5 upgradeable ones (UUPS + AccessControl + a namespace).

The cases are our own small V1/V2 contracts (tests/fixtures/upgrade_safety/v1, v2), compiled by our solc-js into
two committed build-info files (separate builds: struct and enum type ids carry different AST ids). Rebuild with
`node contracts/upgrade-safety/build-info.js --out tests/fixtures/upgrade_safety/build-info/v1.json
tests/fixtures/upgrade_safety/v1/*.sol` (and v2); the OpenZeppelin-style ones import
@openzeppelin/contracts-upgradeable 5.4.0.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vvops.procedures.upgrade_safety import UpgradeSafetyUnavailable, find_build_info, validate_upgrade

FIXTURES = [Path(__file__).resolve().parent / "fixtures" / "upgrade_safety" / "build-info"]

# (reference, proposed, what upgrades-core says — None: safe). The home-made slot comparison got the first four
# wrong: it refused the gap and the struct/enum across builds and the annotated rename, and let the namespace
# change through.
CASES = [
    ("GapV1", "GapV2", None),
    ("StructEnumV1", "StructEnumV2", None),
    ("RenameV1", "RenameV2", None),  # @custom:oz-renamed-from
    ("NamespacedV1", "NamespacedV2Unsafe", "Deleted `fee`"),
    ("NamespacedV1", "NamespacedV2", None),
    ("GapV1", "GapV2Unsafe", "Layout changed for `__gap`"),
    ("StructEnumV1", "StructEnumV2Unsafe", "Inserted `Closing`"),
    ("RetypeV1", "RetypeV2Unsafe", "Upgraded `limit` to an incompatible type - Bad upgrade from uint256 to address"),
    ("RenameV1", "RenameV2Unsafe", "Renamed `fee` to `feeBps`"),
    ("InsertV1", "InsertV2Unsafe", "Inserted `guardian`"),
    ("OZStyleVaultV1", "OZStyleVaultV2", None),
    ("OZStyleVaultV1", "OZStyleVaultV2Unsafe", "Inserted `feeCollector`"),
]


@pytest.mark.parametrize(("reference", "proposed", "problem"), CASES, ids=[c[1] for c in CASES])
def test_upgrades_core_judges_the_layout(reference, proposed, problem):
    report = validate_upgrade(reference, proposed, dirs=FIXTURES)
    if problem is None:
        assert report.ok and report.storage_problems == [], report.explain
    else:
        assert not report.ok
        assert any(problem in p for p in report.storage_problems), report.storage_problems
        assert all(p.strip() and "\n" not in p for p in report.storage_problems)  # one clear line per problem


def test_the_reference_vaults():
    assert validate_upgrade("VaultV1", "VaultV2").ok
    stopped = validate_upgrade("VaultV1", "VaultV2Incompatible")
    assert not stopped.ok
    assert stopped.storage_problems == [
        "contracts/src/VaultV2Incompatible.sol:9: Inserted `migrationEpoch` — New variables should be placed after "
        "all existing inherited variables"]


def test_without_node_the_package_or_a_build_info_it_says_so_in_one_line(monkeypatch, tmp_path):
    import vvops.procedures.upgrade_safety as safety

    with pytest.raises(UpgradeSafetyUnavailable, match=r"no solc build-info compiles `NoSuchV2`"):
        find_build_info("NoSuchV2", FIXTURES)
    monkeypatch.setattr(safety.paths, "node_modules_dir", lambda: tmp_path)
    with pytest.raises(UpgradeSafetyUnavailable, match=r"@openzeppelin/upgrades-core is not installed: run `npm ci`"):
        validate_upgrade("GapV1", "GapV2", dirs=FIXTURES)
    monkeypatch.setattr(safety.shutil, "which", lambda name: None)
    with pytest.raises(UpgradeSafetyUnavailable, match=r"Node.js is not installed"):
        validate_upgrade("GapV1", "GapV2", dirs=FIXTURES)


def test_a_build_info_without_its_imported_sources_is_completed_from_the_repo(tmp_path):
    """solc-js with an import callback leaves imported units out of the input; upgrades-core needs them."""
    import json

    from vvops.procedures.upgrade_safety import build_info_dirs

    info = json.loads(find_build_info("VaultV2Incompatible").read_text())
    info["input"]["sources"].pop("contracts/src/VaultBase.sol")
    (tmp_path / "partial.json").write_text(json.dumps(info))
    report = validate_upgrade("VaultV1", "VaultV2Incompatible", dirs=[tmp_path])
    assert [p.split(":", 2)[2].strip() for p in report.storage_problems] == [
        "Inserted `migrationEpoch` — New variables should be placed after all existing inherited variables"]
    assert build_info_dirs()[0].name == "build-info"
