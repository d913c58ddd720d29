// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {OZVaultBase} from "./OZVaultBase.sol";

/// A compatible upgrade: same layout plus an appended `lastActivityBlock` (linear slot 2).
contract OZVaultV2 is OZVaultBase {
    uint256 public lastActivityBlock;

    /// Called through upgradeToAndCall / upgradeAndCall (nothing to migrate; marks the upgrade).
    function initializeV2() external reinitializer(2) {}

    function version() external pure virtual override returns (string memory) {
        return "2.0.0";
    }

    function _deposit(address caller, address receiver, uint256 assets, uint256 shares) internal virtual override {
        lastActivityBlock = block.number;
        super._deposit(caller, receiver, assets, shares);
    }

    function _withdraw(address caller, address receiver, address owner, uint256 assets, uint256 shares)
        internal
        virtual
        override
    {
        lastActivityBlock = block.number;
        super._withdraw(caller, receiver, owner, assets, shares);
    }
}
