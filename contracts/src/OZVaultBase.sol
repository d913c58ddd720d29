// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// The VeritasVault logic built the way most protocols build it: OpenZeppelin 5 upgradeable contracts (ERC-4626,
// AccessControl, Pausable, UUPS), our own two bounded parameters on top. OpenZeppelin's bases keep their state in
// ERC-7201 namespaced structs; the variables declared here take linear slots 0 and 1 (append only).
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts-upgradeable/proxy/utils/UUPSUpgradeable.sol";
import {ERC20Upgradeable} from "@openzeppelin/contracts-upgradeable/token/ERC20/ERC20Upgradeable.sol";
import {ERC4626Upgradeable} from "@openzeppelin/contracts-upgradeable/token/ERC20/extensions/ERC4626Upgradeable.sol";
import {AccessControlUpgradeable} from "@openzeppelin/contracts-upgradeable/access/AccessControlUpgradeable.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

abstract contract OZVaultBase is
    Initializable,
    ERC4626Upgradeable,
    AccessControlUpgradeable,
    PausableUpgradeable,
    UUPSUpgradeable
{
    /// Parameter changes and unpausing: the TimelockController.
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    /// Pausing only (never unpausing).
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");

    uint256 public constant FEE_BPS_MAX = 1000;
    uint256 public constant DEPOSIT_CAP_MAX = 1_000_000_000 ether;

    uint256 public feeBps;
    uint256 public depositCap;

    event ParameterChanged(bytes32 indexed name, uint256 oldValue, uint256 newValue);

    error OutOfBounds(bytes32 name, uint256 value, uint256 min, uint256 max);

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    function initialize(
        IERC20 asset_,
        address admin,
        address governance,
        address guardian,
        uint256 feeBps_,
        uint256 depositCap_
    ) public initializer {
        __ERC20_init("VeritasVault OZ Share", "vvOZ");
        __ERC4626_init(asset_);
        __AccessControl_init();
        __Pausable_init();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNANCE_ROLE, governance);
        _grantRole(GUARDIAN_ROLE, guardian);
        _setFeeBps(feeBps_);
        _setDepositCap(depositCap_);
    }

    function version() external pure virtual returns (string memory);

    function setFeeBps(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setFeeBps(value);
    }

    function setDepositCap(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setDepositCap(value);
    }

    function feeBpsBounds() external pure returns (uint256 min, uint256 max) {
        return (0, FEE_BPS_MAX);
    }

    function depositCapBounds() external pure returns (uint256 min, uint256 max) {
        return (0, DEPOSIT_CAP_MAX);
    }

    /// The guardian (or governance) stops deposits and withdrawals.
    function pause() external {
        if (!hasRole(GUARDIAN_ROLE, _msgSender()) && !hasRole(GOVERNANCE_ROLE, _msgSender())) {
            revert AccessControlUnauthorizedAccount(_msgSender(), GUARDIAN_ROLE);
        }
        _pause();
    }

    /// Only governance (the timelock) resumes.
    function unpause() external onlyRole(GOVERNANCE_ROLE) {
        _unpause();
    }

    function maxDeposit(address) public view virtual override returns (uint256) {
        if (paused()) return 0;
        uint256 held = totalAssets();
        return held >= depositCap ? 0 : depositCap - held;
    }

    function maxMint(address receiver) public view virtual override returns (uint256) {
        return _convertToShares(maxDeposit(receiver), _roundingDown());
    }

    function maxWithdraw(address owner) public view virtual override returns (uint256) {
        return paused() ? 0 : super.maxWithdraw(owner);
    }

    function maxRedeem(address owner) public view virtual override returns (uint256) {
        return paused() ? 0 : super.maxRedeem(owner);
    }

    function supportsInterface(bytes4 interfaceId) public view virtual override returns (bool) {
        return super.supportsInterface(interfaceId);
    }

    function _deposit(address caller, address receiver, uint256 assets, uint256 shares)
        internal
        virtual
        override
        whenNotPaused
    {
        super._deposit(caller, receiver, assets, shares);
    }

    function _withdraw(address caller, address receiver, address owner, uint256 assets, uint256 shares)
        internal
        virtual
        override
        whenNotPaused
    {
        super._withdraw(caller, receiver, owner, assets, shares);
    }

    function _authorizeUpgrade(address) internal virtual override onlyRole(DEFAULT_ADMIN_ROLE) {}

    function _setFeeBps(uint256 value) private {
        if (value > FEE_BPS_MAX) revert OutOfBounds("feeBps", value, 0, FEE_BPS_MAX);
        emit ParameterChanged("feeBps", feeBps, value);
        feeBps = value;
    }

    function _setDepositCap(uint256 value) private {
        if (value > DEPOSIT_CAP_MAX) revert OutOfBounds("depositCap", value, 0, DEPOSIT_CAP_MAX);
        emit ParameterChanged("depositCap", depositCap, value);
        depositCap = value;
    }

    function _roundingDown() private pure returns (Math.Rounding) {
        return Math.Rounding.Floor;
    }
}
