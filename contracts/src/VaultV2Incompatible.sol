// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {VaultBase} from "./VaultBase.sol";

/// @dev A variable declared in a base listed BEFORE VaultBase: it takes slot 0 and shifts every vault variable
///      down by one slot.
abstract contract VaultMigrationEpoch {
    uint256 public migrationEpoch; // slot 0 — INSERTED before the existing layout
}

/// @title VaultV2Incompatible
/// @notice DO NOT DEPLOY BEHIND THE LIVE PROXY. A "V2" whose storage layout is incompatible with V1 (a variable
///         is inserted before the existing ones, so owner/guardian/totalShares/... all move). It exists so the
///         upgrade procedure can prove it stops on incompatible layouts. On-chain it passes the UUPS checks.
contract VaultV2Incompatible is VaultMigrationEpoch, VaultBase {
    function version() external pure override returns (string memory) {
        return "2.0.0";
    }

    function _afterActivity() internal override {
        migrationEpoch += 1;
    }
}
