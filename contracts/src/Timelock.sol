// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Timelock
/// @notice A simplified timelock controller (same interface shape as OpenZeppelin's TimelockController).
///         Proposers schedule calls, which become executable after at least `minDelay` seconds; executors run
///         them; cancellers cancel pending ones. The timelock administers its own roles, and `updateDelay` can
///         only be reached through a scheduled call to itself.
/// @dev Operation timestamps: 0 = unset, 1 = done, otherwise the time the operation becomes ready.
contract Timelock {
    bytes32 public constant DEFAULT_ADMIN_ROLE = 0x00;
    bytes32 public constant PROPOSER_ROLE = keccak256("PROPOSER_ROLE");
    bytes32 public constant EXECUTOR_ROLE = keccak256("EXECUTOR_ROLE");
    bytes32 public constant CANCELLER_ROLE = keccak256("CANCELLER_ROLE");
    uint256 internal constant DONE_TIMESTAMP = uint256(1);

    enum OperationState {
        Unset,
        Waiting,
        Ready,
        Done
    }

    mapping(bytes32 => mapping(address => bool)) private _members;
    mapping(bytes32 => bytes32) private _roleAdmins;
    mapping(bytes32 => uint256) private _timestamps;
    uint256 private _minDelay;

    event CallScheduled(
        bytes32 indexed id,
        uint256 indexed index,
        address target,
        uint256 value,
        bytes data,
        bytes32 predecessor,
        uint256 delay
    );
    event CallExecuted(bytes32 indexed id, uint256 indexed index, address target, uint256 value, bytes data);
    event CallSalt(bytes32 indexed id, bytes32 salt);
    event Cancelled(bytes32 indexed id);
    event MinDelayChange(uint256 oldDuration, uint256 newDuration);
    event RoleGranted(bytes32 indexed role, address indexed account, address indexed sender);
    event RoleRevoked(bytes32 indexed role, address indexed account, address indexed sender);
    event RoleAdminChanged(bytes32 indexed role, bytes32 indexed previousAdminRole, bytes32 indexed newAdminRole);

    error AccessControlUnauthorizedAccount(address account, bytes32 neededRole);
    error AccessControlBadConfirmation();
    error TimelockInvalidOperationLength(uint256 targets, uint256 payloads, uint256 values);
    error TimelockInsufficientDelay(uint256 delay, uint256 minDelay);
    error TimelockOperationAlreadyScheduled(bytes32 id);
    error TimelockOperationNotReady(bytes32 id, uint256 readyAt, uint256 now_);
    error TimelockOperationNotPending(bytes32 id);
    error TimelockUnexecutedPredecessor(bytes32 predecessor);
    error TimelockUnauthorizedCaller(address caller);
    error TimelockCallFailed(uint256 index);

    modifier onlyRole(bytes32 role) {
        _checkRole(role, msg.sender);
        _;
    }

    /// @dev An executor role granted to address(0) opens execution to anyone.
    modifier onlyRoleOrOpenRole(bytes32 role) {
        if (!_members[role][address(0)]) _checkRole(role, msg.sender);
        _;
    }

    /// @param minDelay_ initial minimum delay in seconds
    /// @param proposers accounts granted the proposer and canceller roles
    /// @param executors accounts granted the executor role (address(0) = anyone)
    /// @param admin optional extra admin (address(0) for none; the timelock always administers itself)
    constructor(uint256 minDelay_, address[] memory proposers, address[] memory executors, address admin) {
        _setRoleAdmin(PROPOSER_ROLE, DEFAULT_ADMIN_ROLE);
        _setRoleAdmin(EXECUTOR_ROLE, DEFAULT_ADMIN_ROLE);
        _setRoleAdmin(CANCELLER_ROLE, DEFAULT_ADMIN_ROLE);
        _grantRole(DEFAULT_ADMIN_ROLE, address(this));
        if (admin != address(0)) _grantRole(DEFAULT_ADMIN_ROLE, admin);
        for (uint256 i = 0; i < proposers.length; ++i) {
            _grantRole(PROPOSER_ROLE, proposers[i]);
            _grantRole(CANCELLER_ROLE, proposers[i]);
        }
        for (uint256 i = 0; i < executors.length; ++i) {
            _grantRole(EXECUTOR_ROLE, executors[i]);
        }
        _minDelay = minDelay_;
        emit MinDelayChange(0, minDelay_);
    }

    receive() external payable {}

    // ---------------------------------------------------------------- roles
    function hasRole(bytes32 role, address account) public view returns (bool) {
        return _members[role][account];
    }

    function getRoleAdmin(bytes32 role) public view returns (bytes32) {
        return _roleAdmins[role];
    }

    function grantRole(bytes32 role, address account) external onlyRole(getRoleAdmin(role)) {
        _grantRole(role, account);
    }

    function revokeRole(bytes32 role, address account) external onlyRole(getRoleAdmin(role)) {
        _revokeRole(role, account);
    }

    function renounceRole(bytes32 role, address callerConfirmation) external {
        if (callerConfirmation != msg.sender) revert AccessControlBadConfirmation();
        _revokeRole(role, msg.sender);
    }

    // ---------------------------------------------------------------- views
    function minDelay() external view returns (uint256) {
        return _minDelay;
    }

    function getMinDelay() external view returns (uint256) {
        return _minDelay;
    }

    function getTimestamp(bytes32 id) public view returns (uint256) {
        return _timestamps[id];
    }

    function getOperationState(bytes32 id) public view returns (OperationState) {
        uint256 ts = _timestamps[id];
        if (ts == 0) return OperationState.Unset;
        if (ts == DONE_TIMESTAMP) return OperationState.Done;
        if (ts > block.timestamp) return OperationState.Waiting;
        return OperationState.Ready;
    }

    function isOperation(bytes32 id) public view returns (bool) {
        return getOperationState(id) != OperationState.Unset;
    }

    function isOperationPending(bytes32 id) public view returns (bool) {
        OperationState s = getOperationState(id);
        return s == OperationState.Waiting || s == OperationState.Ready;
    }

    function isOperationReady(bytes32 id) public view returns (bool) {
        return getOperationState(id) == OperationState.Ready;
    }

    function isOperationDone(bytes32 id) public view returns (bool) {
        return getOperationState(id) == OperationState.Done;
    }

    function hashOperation(address target, uint256 value, bytes calldata data, bytes32 predecessor, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(target, value, data, predecessor, salt));
    }

    function hashOperationBatch(
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata payloads,
        bytes32 predecessor,
        bytes32 salt
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(targets, values, payloads, predecessor, salt));
    }

    // ---------------------------------------------------------------- schedule / cancel / execute
    function schedule(address target, uint256 value, bytes calldata data, bytes32 predecessor, bytes32 salt, uint256 delay)
        external
        onlyRole(PROPOSER_ROLE)
    {
        bytes32 id = hashOperation(target, value, data, predecessor, salt);
        _schedule(id, delay);
        emit CallScheduled(id, 0, target, value, data, predecessor, delay);
        if (salt != bytes32(0)) emit CallSalt(id, salt);
    }

    function scheduleBatch(
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata payloads,
        bytes32 predecessor,
        bytes32 salt,
        uint256 delay
    ) external onlyRole(PROPOSER_ROLE) {
        if (targets.length != values.length || targets.length != payloads.length) {
            revert TimelockInvalidOperationLength(targets.length, payloads.length, values.length);
        }
        bytes32 id = hashOperationBatch(targets, values, payloads, predecessor, salt);
        _schedule(id, delay);
        for (uint256 i = 0; i < targets.length; ++i) {
            emit CallScheduled(id, i, targets[i], values[i], payloads[i], predecessor, delay);
        }
        if (salt != bytes32(0)) emit CallSalt(id, salt);
    }

    function cancel(bytes32 id) external onlyRole(CANCELLER_ROLE) {
        if (!isOperationPending(id)) revert TimelockOperationNotPending(id);
        delete _timestamps[id];
        emit Cancelled(id);
    }

    function execute(address target, uint256 value, bytes calldata payload, bytes32 predecessor, bytes32 salt)
        external
        payable
        onlyRoleOrOpenRole(EXECUTOR_ROLE)
    {
        bytes32 id = hashOperation(target, value, payload, predecessor, salt);
        _beforeCall(id, predecessor);
        _call(0, target, value, payload);
        emit CallExecuted(id, 0, target, value, payload);
        _timestamps[id] = DONE_TIMESTAMP;
    }

    function executeBatch(
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata payloads,
        bytes32 predecessor,
        bytes32 salt
    ) external payable onlyRoleOrOpenRole(EXECUTOR_ROLE) {
        if (targets.length != values.length || targets.length != payloads.length) {
            revert TimelockInvalidOperationLength(targets.length, payloads.length, values.length);
        }
        bytes32 id = hashOperationBatch(targets, values, payloads, predecessor, salt);
        _beforeCall(id, predecessor);
        for (uint256 i = 0; i < targets.length; ++i) {
            _call(i, targets[i], values[i], payloads[i]);
            emit CallExecuted(id, i, targets[i], values[i], payloads[i]);
        }
        _timestamps[id] = DONE_TIMESTAMP;
    }

    /// @notice Change the minimum delay. Only callable by the timelock itself (i.e. through schedule/execute).
    function updateDelay(uint256 newDelay) external {
        if (msg.sender != address(this)) revert TimelockUnauthorizedCaller(msg.sender);
        emit MinDelayChange(_minDelay, newDelay);
        _minDelay = newDelay;
    }

    // ---------------------------------------------------------------- internals
    function _schedule(bytes32 id, uint256 delay) private {
        if (_timestamps[id] != 0) revert TimelockOperationAlreadyScheduled(id);
        if (delay < _minDelay) revert TimelockInsufficientDelay(delay, _minDelay);
        _timestamps[id] = block.timestamp + delay;
    }

    function _beforeCall(bytes32 id, bytes32 predecessor) private view {
        if (getOperationState(id) != OperationState.Ready) {
            revert TimelockOperationNotReady(id, _timestamps[id], block.timestamp);
        }
        if (predecessor != bytes32(0) && !isOperationDone(predecessor)) {
            revert TimelockUnexecutedPredecessor(predecessor);
        }
    }

    /// @dev Reverts of the target are bubbled up unchanged, so its custom errors stay decodable.
    function _call(uint256 index, address target, uint256 value, bytes calldata data) private {
        (bool ok, bytes memory ret) = target.call{value: value}(data);
        if (!ok) {
            if (ret.length == 0) revert TimelockCallFailed(index);
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    function _checkRole(bytes32 role, address account) private view {
        if (!_members[role][account]) revert AccessControlUnauthorizedAccount(account, role);
    }

    function _setRoleAdmin(bytes32 role, bytes32 adminRole) private {
        emit RoleAdminChanged(role, _roleAdmins[role], adminRole);
        _roleAdmins[role] = adminRole;
    }

    function _grantRole(bytes32 role, address account) private {
        if (!_members[role][account]) {
            _members[role][account] = true;
            emit RoleGranted(role, account, msg.sender);
        }
    }

    function _revokeRole(bytes32 role, address account) private {
        if (_members[role][account]) {
            _members[role][account] = false;
            emit RoleRevoked(role, account, msg.sender);
        }
    }
}
