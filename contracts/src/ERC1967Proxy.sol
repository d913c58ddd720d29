// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ERC1967Proxy
/// @notice Minimal ERC-1967 proxy: the implementation address lives in the standard slot and every call is
///         delegated to it. Upgrades are performed by the implementation itself (UUPS).
contract ERC1967Proxy {
    /// @dev bytes32(uint256(keccak256("eip1967.proxy.implementation")) - 1)
    bytes32 internal constant IMPLEMENTATION_SLOT = 0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc;

    event Upgraded(address indexed implementation);

    error ERC1967InvalidImplementation(address implementation);
    error ERC1967NonPayable();

    constructor(address implementation, bytes memory data) payable {
        if (implementation.code.length == 0) revert ERC1967InvalidImplementation(implementation);
        assembly {
            sstore(IMPLEMENTATION_SLOT, implementation)
        }
        emit Upgraded(implementation);
        if (data.length > 0) {
            (bool ok, bytes memory ret) = implementation.delegatecall(data);
            if (!ok) {
                assembly {
                    revert(add(ret, 32), mload(ret))
                }
            }
        } else if (msg.value > 0) {
            revert ERC1967NonPayable();
        }
    }

    fallback() external payable {
        _delegate();
    }

    receive() external payable {
        _delegate();
    }

    function _delegate() private {
        assembly {
            let impl := sload(IMPLEMENTATION_SLOT)
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), impl, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            switch ok
            case 0 { revert(0, returndatasize()) }
            default { return(0, returndatasize()) }
        }
    }
}
