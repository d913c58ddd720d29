// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {VaultBase} from "./VaultBase.sol";

/// @title VaultV2
/// @notice Second implementation: same storage as V1 plus one APPENDED variable, `lastActivityBlock`, the block
///         of the latest deposit or withdraw (zero until the first one after the upgrade).
contract VaultV2 is VaultBase {
    uint256 public lastActivityBlock; // slot 9 (appended)

    function version() external pure override returns (string memory) {
        return "2.0.0";
    }

    function _afterActivity() internal override {
        lastActivityBlock = block.number;
    }
}
