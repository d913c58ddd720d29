// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {VaultBase} from "./VaultBase.sol";

/// @title VaultV1
/// @notice First VeritasVault implementation (behind ERC1967Proxy).
contract VaultV1 is VaultBase {
    function version() external pure override returns (string memory) {
        return "1.0.0";
    }
}
