// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {OZVaultBase} from "./OZVaultBase.sol";

/// The OpenZeppelin-built vault, first release. Deployed behind OpenZeppelin's ERC1967Proxy (UUPS), a
/// TransparentUpgradeableProxy (with its ProxyAdmin) and a BeaconProxy.
contract OZVaultV1 is OZVaultBase {
    function version() external pure virtual override returns (string memory) {
        return "1.0.0";
    }
}
