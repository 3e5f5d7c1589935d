// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title ParticipantRegistry
/// @notice Who takes part in the market: numbered participants with an owner address,
/// a zone and an active flag, plus the roles that run the market. Participant 0 is the
/// grid, the counterparty of every import and export, owned by the grid operator.
abstract contract ParticipantRegistry is AccessControl {
    /// @notice Role that submits settlements.
    bytes32 public constant ORACLE_ROLE = keccak256("ORACLE_ROLE");
    /// @notice Role that sets grid capacities and owns the grid's wallet.
    bytes32 public constant GRID_OPERATOR_ROLE = keccak256("GRID_OPERATOR_ROLE");
    /// @notice Participant id of the grid.
    uint32 public constant GRID = 0;

    /// @dev Everything a settlement touches for one participant lives in one storage
    /// slot (160 + 16 + 8 + 72 bits), so settling a participant costs a single cold read
    /// and write; Uniswap v2 packs its reserves the same way.
    struct Account {
        address owner;
        uint16 zone;
        bool active;
        int72 balance; // minor units of the settlement token; negative means owed
    }

    mapping(uint32 participant => Account) internal _accounts;
    /// @dev id + 1, so that 0 means "not registered".
    mapping(address owner => uint32) private _idPlusOne;
    /// @notice Number of registered participants, the grid included; ids are 0..count-1.
    uint32 public participantCount;

    /// @notice A participant joined the market.
    event ParticipantRegistered(uint32 indexed participant, address indexed owner, uint16 zone, string name);
    /// @notice A participant's zone or active flag changed.
    event ParticipantUpdated(uint32 indexed participant, uint16 zone, bool active);

    error ZeroAddress();
    error AlreadyRegistered(address owner, uint32 participant);
    error UnknownParticipant(uint32 participant);
    error UnknownAccount(address owner);
    error InactiveParticipant(uint32 participant);
    error TooManyParticipants();

    constructor(address admin, address gridOperator) {
        if (admin == address(0) || gridOperator == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GRID_OPERATOR_ROLE, gridOperator);
        _register(gridOperator, 0, "grid");
    }

    /// @notice Registers `owner` as a new active participant in `zone`.
    /// @return participant The new participant's id.
    function register(address owner, uint16 zone, string calldata name)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
        returns (uint32 participant)
    {
        return _register(owner, zone, name);
    }

    /// @notice Registers many participants in one transaction (ids are assigned in order).
    function registerBatch(address[] calldata owners, uint16[] calldata zones, string[] calldata names)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        for (uint256 i = 0; i < owners.length; ++i) {
            _register(owners[i], zones[i], names[i]);
        }
    }

    /// @notice Moves a participant to another zone or (de)activates it. Inactive
    /// participants cannot be settled; their wallet stays withdrawable.
    function updateParticipant(uint32 participant, uint16 zone, bool active)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        Account storage account = _existing(participant);
        account.zone = zone;
        account.active = active;
        emit ParticipantUpdated(participant, zone, active);
    }

    /// @notice The id registered for `owner`; reverts with UnknownAccount if none.
    function participantOf(address owner) public view returns (uint32) {
        uint32 idPlusOne = _idPlusOne[owner];
        if (idPlusOne == 0) revert UnknownAccount(owner);
        return idPlusOne - 1;
    }

    /// @notice A participant's owner, zone, active flag and wallet balance (minor units).
    function accountOf(uint32 id)
        external
        view
        returns (address owner, uint16 zone, bool active, int256 balance)
    {
        Account storage account = _existing(id);
        return (account.owner, account.zone, account.active, account.balance);
    }

    function _register(address owner, uint16 zone, string memory name) private returns (uint32 id) {
        if (owner == address(0)) revert ZeroAddress();
        if (_idPlusOne[owner] != 0) revert AlreadyRegistered(owner, _idPlusOne[owner] - 1);
        id = participantCount++;
        // A settlement entry keeps 31 bits for the id; its top bit is a flag.
        if (id >= 1 << 31) revert TooManyParticipants();
        _accounts[id] = Account({owner: owner, zone: zone, active: true, balance: 0});
        _idPlusOne[owner] = id + 1;
        emit ParticipantRegistered(id, owner, zone, name);
    }

    function _existing(uint32 id) internal view returns (Account storage account) {
        if (id >= participantCount) revert UnknownParticipant(id);
        return _accounts[id];
    }
}
