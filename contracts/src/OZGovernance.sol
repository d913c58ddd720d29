// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// The OpenZeppelin 5 contracts the OpenZeppelin reference protocol deploys unchanged: build.js writes artifacts for
// the ones named in its OZ_EXPORTS (ERC1967Proxy as OZERC1967Proxy, beside our own ERC1967Proxy).
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {TransparentUpgradeableProxy} from "@openzeppelin/contracts/proxy/transparent/TransparentUpgradeableProxy.sol";
import {ProxyAdmin} from "@openzeppelin/contracts/proxy/transparent/ProxyAdmin.sol";
import {UpgradeableBeacon} from "@openzeppelin/contracts/proxy/beacon/UpgradeableBeacon.sol";
import {BeaconProxy} from "@openzeppelin/contracts/proxy/beacon/BeaconProxy.sol";
