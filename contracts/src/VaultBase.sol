// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "./IERC20.sol";

interface IERC1822Proxiable {
    function proxiableUUID() external view returns (bytes32);
}

/// @title VaultBase
/// @notice Shared logic of the VeritasVault implementations (deployed behind an ERC1967Proxy, UUPS upgrades).
/// @dev Shares are 1:1 with assets: one share is a claim on one unit of the asset. `totalLiabilities()` is what
///      the vault owes its shareholders (totalShares); `totalAssets()` is what it holds for them (its asset
///      balance minus the fees it has accrued for the protocol). Invariant: totalAssets() >= totalLiabilities().
///
///      STORAGE LAYOUT IS APPEND-ONLY. Implementations may only add variables after `feesAccrued`.
abstract contract VaultBase {
    /// @dev bytes32(uint256(keccak256("eip1967.proxy.implementation")) - 1)
    bytes32 internal constant IMPLEMENTATION_SLOT = 0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc;

    uint256 public constant BPS = 10_000;
    uint256 public constant FEE_BPS_MIN = 0;
    uint256 public constant FEE_BPS_MAX = 1_000;
    uint256 public constant WITHDRAWAL_LIMIT_MIN = 1e18;
    uint256 public constant WITHDRAWAL_LIMIT_MAX = 10_000_000e18;
    uint256 public constant DEPOSIT_CAP_MIN = 0;
    uint256 public constant DEPOSIT_CAP_MAX = 1_000_000_000e18;

    /// @notice Parameter names used in ParameterChanged / OutOfBounds (left-aligned ASCII, zero padded).
    bytes32 public constant FEE_BPS = "feeBps";
    bytes32 public constant WITHDRAWAL_LIMIT = "withdrawalLimit";
    bytes32 public constant DEPOSIT_CAP = "depositCap";

    address private immutable __self = address(this);

    // ---------------------------------------------------------------- storage (append only)
    address public asset; //           slot 0, bytes 0..19
    bool public paused; //             slot 0, byte 20
    bool private _initialized; //      slot 0, byte 21
    address public owner; //           slot 1
    address public guardian; //        slot 2
    uint256 public totalShares; //     slot 3
    mapping(address => uint256) public sharesOf; // slot 4
    uint256 public feeBps; //          slot 5
    uint256 public withdrawalLimit; // slot 6
    uint256 public depositCap; //      slot 7
    uint256 public feesAccrued; //     slot 8

    // ---------------------------------------------------------------- events
    event Initialized(address indexed asset, address indexed owner, address indexed guardian);
    event Deposit(address indexed user, uint256 assets, uint256 shares);
    event Withdraw(address indexed user, uint256 assets, uint256 shares, uint256 fee);
    event Paused(address account);
    event Unpaused(address account);
    event ParameterChanged(bytes32 indexed name, uint256 oldValue, uint256 newValue);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event GuardianChanged(address indexed previousGuardian, address indexed newGuardian);
    event FeesCollected(address indexed to, uint256 amount);
    event Upgraded(address indexed implementation);

    // ---------------------------------------------------------------- errors
    error NotOwner();
    error NotGuardian();
    error EnforcedPause();
    error ExpectedPause();
    error AlreadyInitialized();
    error ZeroAddress();
    error ZeroAmount();
    error OutOfBounds(bytes32 name, uint256 value, uint256 min, uint256 max);
    error AboveWithdrawalLimit(uint256 assets, uint256 limit);
    error DepositCapExceeded(uint256 assets, uint256 totalShares, uint256 cap);
    error InsufficientShares(uint256 requested, uint256 available);
    error TransferFailed();
    error UnauthorizedCallContext();
    error InvalidImplementation(address implementation);
    error UnsupportedProxiableUUID(bytes32 slot);

    // ---------------------------------------------------------------- modifiers
    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    modifier whenNotPaused() {
        if (paused) revert EnforcedPause();
        _;
    }

    /// @dev Must be called through a proxy (delegatecall), never on the implementation itself.
    modifier onlyProxy() {
        if (address(this) == __self) revert UnauthorizedCallContext();
        _;
    }

    /// @dev Must be called on the implementation itself.
    modifier notDelegated() {
        if (address(this) != __self) revert UnauthorizedCallContext();
        _;
    }

    /// @dev Lock the bare implementation so nobody can initialize (and own) it.
    constructor() {
        _initialized = true;
    }

    // ---------------------------------------------------------------- initialisation
    function initialize(
        address asset_,
        address owner_,
        address guardian_,
        uint256 feeBps_,
        uint256 withdrawalLimit_,
        uint256 depositCap_
    ) external {
        if (_initialized) revert AlreadyInitialized();
        _initialized = true;
        if (asset_ == address(0) || owner_ == address(0) || guardian_ == address(0)) revert ZeroAddress();
        _checkBounds(FEE_BPS, feeBps_);
        _checkBounds(WITHDRAWAL_LIMIT, withdrawalLimit_);
        _checkBounds(DEPOSIT_CAP, depositCap_);
        asset = asset_;
        owner = owner_;
        guardian = guardian_;
        feeBps = feeBps_;
        withdrawalLimit = withdrawalLimit_;
        depositCap = depositCap_;
        emit Initialized(asset_, owner_, guardian_);
        emit OwnershipTransferred(address(0), owner_);
        emit GuardianChanged(address(0), guardian_);
    }

    function initialized() external view returns (bool) {
        return _initialized;
    }

    function version() external pure virtual returns (string memory);

    // ---------------------------------------------------------------- user actions
    function deposit(uint256 assets) external whenNotPaused returns (uint256 shares) {
        if (assets == 0) revert ZeroAmount();
        uint256 supply = totalShares;
        if (supply + assets > depositCap) revert DepositCapExceeded(assets, supply, depositCap);
        shares = assets;
        totalShares = supply + shares;
        sharesOf[msg.sender] += shares;
        _afterActivity();
        _callAsset(abi.encodeCall(IERC20.transferFrom, (msg.sender, address(this), assets)));
        emit Deposit(msg.sender, assets, shares);
    }

    /// @notice Redeem `assets` worth of shares; a fee of feeBps is kept by the vault as feesAccrued.
    /// @return sent the assets transferred to the caller (assets - fee)
    function withdraw(uint256 assets) external whenNotPaused returns (uint256 sent) {
        if (assets == 0) revert ZeroAmount();
        if (assets > withdrawalLimit) revert AboveWithdrawalLimit(assets, withdrawalLimit);
        uint256 shares = assets;
        uint256 available = sharesOf[msg.sender];
        if (available < shares) revert InsufficientShares(shares, available);
        uint256 fee = (assets * feeBps) / BPS;
        unchecked {
            sharesOf[msg.sender] = available - shares;
            totalShares -= shares;
        }
        feesAccrued += fee;
        sent = assets - fee;
        _afterActivity();
        _callAsset(abi.encodeCall(IERC20.transfer, (msg.sender, sent)));
        emit Withdraw(msg.sender, assets, shares, fee);
    }

    // ---------------------------------------------------------------- views
    /// @notice Assets held for shareholders: the vault's asset balance minus accrued protocol fees.
    function totalAssets() public view returns (uint256) {
        uint256 bal = IERC20(asset).balanceOf(address(this));
        uint256 fees = feesAccrued;
        return bal > fees ? bal - fees : 0;
    }

    /// @notice What the vault owes its shareholders (one asset per share).
    function totalLiabilities() public view returns (uint256) {
        return totalShares;
    }

    function balanceOf(address user) external view returns (uint256) {
        return sharesOf[user];
    }

    function convertToAssets(uint256 shares) external pure returns (uint256) {
        return shares;
    }

    function convertToShares(uint256 assets) external pure returns (uint256) {
        return assets;
    }

    /// @return fee kept by the vault and net sent to the user for a withdraw of `assets`
    function previewWithdraw(uint256 assets) external view returns (uint256 fee, uint256 net) {
        fee = (assets * feeBps) / BPS;
        net = assets - fee;
    }

    function feeBpsBounds() external pure returns (uint256 min, uint256 max) {
        return (FEE_BPS_MIN, FEE_BPS_MAX);
    }

    function withdrawalLimitBounds() external pure returns (uint256 min, uint256 max) {
        return (WITHDRAWAL_LIMIT_MIN, WITHDRAWAL_LIMIT_MAX);
    }

    function depositCapBounds() external pure returns (uint256 min, uint256 max) {
        return (DEPOSIT_CAP_MIN, DEPOSIT_CAP_MAX);
    }

    /// @notice Bounds of a named parameter ("feeBps", "withdrawalLimit", "depositCap").
    function parameterBounds(bytes32 name) public pure returns (uint256 min, uint256 max) {
        if (name == FEE_BPS) return (FEE_BPS_MIN, FEE_BPS_MAX);
        if (name == WITHDRAWAL_LIMIT) return (WITHDRAWAL_LIMIT_MIN, WITHDRAWAL_LIMIT_MAX);
        if (name == DEPOSIT_CAP) return (DEPOSIT_CAP_MIN, DEPOSIT_CAP_MAX);
        revert OutOfBounds(name, 0, 0, 0);
    }

    /// @notice The current implementation (read from the ERC-1967 slot; zero on the bare implementation).
    function implementation() external view returns (address impl) {
        assembly {
            impl := sload(IMPLEMENTATION_SLOT)
        }
    }

    // ---------------------------------------------------------------- emergency
    /// @notice Guardian or owner can pause.
    function pause() external {
        if (msg.sender != guardian && msg.sender != owner) revert NotGuardian();
        if (paused) revert EnforcedPause();
        paused = true;
        emit Paused(msg.sender);
    }

    /// @notice Only the owner can unpause (never the guardian).
    function unpause() external onlyOwner {
        if (!paused) revert ExpectedPause();
        paused = false;
        emit Unpaused(msg.sender);
    }

    // ---------------------------------------------------------------- governance
    function setFeeBps(uint256 newValue) external onlyOwner {
        _checkBounds(FEE_BPS, newValue);
        emit ParameterChanged(FEE_BPS, feeBps, newValue);
        feeBps = newValue;
    }

    function setWithdrawalLimit(uint256 newValue) external onlyOwner {
        _checkBounds(WITHDRAWAL_LIMIT, newValue);
        emit ParameterChanged(WITHDRAWAL_LIMIT, withdrawalLimit, newValue);
        withdrawalLimit = newValue;
    }

    function setDepositCap(uint256 newValue) external onlyOwner {
        _checkBounds(DEPOSIT_CAP, newValue);
        emit ParameterChanged(DEPOSIT_CAP, depositCap, newValue);
        depositCap = newValue;
    }

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    function setGuardian(address newGuardian) external onlyOwner {
        if (newGuardian == address(0)) revert ZeroAddress();
        emit GuardianChanged(guardian, newGuardian);
        guardian = newGuardian;
    }

    function collectFees(address to) external onlyOwner returns (uint256 amount) {
        if (to == address(0)) revert ZeroAddress();
        amount = feesAccrued;
        feesAccrued = 0;
        _callAsset(abi.encodeCall(IERC20.transfer, (to, amount)));
        emit FeesCollected(to, amount);
    }

    // ---------------------------------------------------------------- upgrades (UUPS)
    function proxiableUUID() external view notDelegated returns (bytes32) {
        return IMPLEMENTATION_SLOT;
    }

    function upgradeTo(address newImplementation) external onlyProxy onlyOwner {
        _upgradeToAndCall(newImplementation, "");
    }

    function upgradeToAndCall(address newImplementation, bytes calldata data) external payable onlyProxy onlyOwner {
        _upgradeToAndCall(newImplementation, data);
    }

    // ---------------------------------------------------------------- internals
    /// @dev Hook for implementations to record activity (called on deposit and withdraw).
    function _afterActivity() internal virtual {}

    function _checkBounds(bytes32 name, uint256 value) internal pure {
        (uint256 min, uint256 max) = parameterBounds(name);
        if (value < min || value > max) revert OutOfBounds(name, value, min, max);
    }

    function _upgradeToAndCall(address newImplementation, bytes memory data) internal {
        if (newImplementation.code.length == 0) revert InvalidImplementation(newImplementation);
        try IERC1822Proxiable(newImplementation).proxiableUUID() returns (bytes32 slot) {
            if (slot != IMPLEMENTATION_SLOT) revert UnsupportedProxiableUUID(slot);
        } catch {
            revert InvalidImplementation(newImplementation);
        }
        assembly {
            sstore(IMPLEMENTATION_SLOT, newImplementation)
        }
        emit Upgraded(newImplementation);
        if (data.length > 0) {
            (bool ok, bytes memory ret) = newImplementation.delegatecall(data);
            if (!ok) _bubble(ret);
        }
    }

    function _callAsset(bytes memory data) private {
        (bool ok, bytes memory ret) = asset.call(data);
        if (!ok) _bubble(ret);
        if (ret.length > 0 && !abi.decode(ret, (bool))) revert TransferFailed();
    }

    function _bubble(bytes memory ret) private pure {
        if (ret.length == 0) revert TransferFailed();
        assembly {
            revert(add(ret, 32), mload(ret))
        }
    }
}
