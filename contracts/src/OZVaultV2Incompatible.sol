// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {OZVaultBase} from "./OZVaultBase.sol";

/// Declares `migrationEpoch` first, so it takes linear slot 0 ahead of the vault's own variables.
abstract contract OZVaultMigrationEpoch {
    uint256 public migrationEpoch;
}

/// A bad "2.0.0": `migrationEpoch` lands in slot 0 and shifts `feeBps`/`depositCap` by one slot. It passes every
/// on-chain UUPS check; only an off-chain storage-layout comparison stops it. Never activate it.
contract OZVaultV2Incompatible is OZVaultMigrationEpoch, OZVaultBase {
    function initializeV2() external reinitializer(2) {}

    function version() external pure virtual override returns (string memory) {
        return "2.0.0";
    }
}
