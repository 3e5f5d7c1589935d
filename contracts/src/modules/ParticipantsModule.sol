// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketStorage} from "../MarketStorage.sol";
import {AccountWord} from "../lib/AccountWord.sol";
import {MandateWord, OwnerWord} from "../lib/MandateWord.sol";

/// @title ParticipantsModule
/// @notice Who takes part: numbered participants with an owner key (signs orders and
/// mandates, withdraws), a meter key (signs each interval's reading), a zone and
/// active/frozen flags. Participant 0 is the grid, owned by the grid operator.
contract ParticipantsModule is MarketStorage {
    using AccountWord for uint256;

    /// @notice The selectors the router sends here.
    function selectors() external pure returns (bytes4[] memory s) {
        s = new bytes4[](11);
        s[0] = this.register.selector;
        s[1] = this.registerBatch.selector;
        s[2] = this.updateParticipant.selector;
        s[3] = this.setFrozen.selector;
        s[4] = this.rotateOwner.selector;
        s[5] = this.setMeterKey.selector;
        s[6] = this.participantOf.selector;
        s[7] = this.accountOf.selector;
        s[8] = this.participantCount.selector;
        s[9] = this.meterKeys.selector;
        s[10] = this.meterKeyOf.selector;
    }

    /// @notice Registers `owner` as a new active participant in `zone` whose meter signs
    /// with `meter`.
    /// @return participant The new participant's id.
    function register(address owner, address meter, uint16 zone, string calldata name)
        external
        onlyRole(DEFAULT_ADMIN)
        returns (uint32 participant)
    {
        return _register(owner, meter, zone, name);
    }

    /// @notice Registers many participants in one transaction (ids are assigned in order).
    function registerBatch(
        address[] calldata owners,
        address[] calldata meters,
        uint16[] calldata zones,
        string[] calldata names
    ) external onlyRole(DEFAULT_ADMIN) {
        uint256 n = owners.length;
        if (meters.length != n || zones.length != n || names.length != n) {
            revert LengthMismatch(n, meters.length != n ? meters.length : zones.length != n ? zones.length : names.length);
        }
        for (uint256 i = 0; i < n; ++i) {
            _register(owners[i], meters[i], zones[i], names[i]);
        }
    }

    /// @notice Moves a participant to another zone or (de)activates it. An inactive
    /// participant is not settled; its final funds stay withdrawable.
    function updateParticipant(uint32 participant, uint16 zone, bool active) external onlyRole(DEFAULT_ADMIN) {
        uint256 account = _existing(participant);
        uint256 updated = account.withZone(zone).withFlag(AccountWord.ACTIVE, active);
        _accounts[participant] = updated;
        _renewMandate(participant, account, updated);
        emit ParticipantUpdated(participant, zone, active);
    }

    /// @notice Freezes (or unfreezes) a participant, e.g. one whose key was stolen or
    /// whose meter signed two readings of one interval: a frozen participant is not
    /// settled, cannot withdraw and cannot hand its participant to another key.
    function setFrozen(uint32 participant, bool frozen) external onlyRole(DEFAULT_ADMIN) {
        uint256 account = _existing(participant);
        uint256 updated = account.withFlag(AccountWord.FROZEN, frozen);
        _accounts[participant] = updated;
        _renewMandate(participant, account, updated);
        emit ParticipantFrozen(participant, frozen);
    }

    /// @notice The owner hands `participant` to `newOwner` (a new key). Orders signed by
    /// the old key are no longer valid; mandates on chain stay in force until revoked.
    function rotateOwner(uint32 participant, address newOwner) external {
        _requireOwner(participant);
        if (_accounts[participant].frozen()) revert FrozenParticipant(participant);
        if (newOwner == address(0)) revert ZeroAddress();
        uint32 known = _idPlusOne[newOwner];
        if (known != 0) revert AlreadyRegistered(newOwner, known - 1);
        delete _idPlusOne[msg.sender];
        _idPlusOne[newOwner] = participant + 1;
        _owners[participant] = OwnerWord.withOwner(_owners[participant], newOwner);
        emit OwnerRotated(participant, msg.sender, newOwner);
    }

    /// @notice The owner sets the key its meter signs readings with, from the first
    /// interval that has not started (nor been settled) on: readings of earlier
    /// intervals stay the old key's, so a new key cannot re-sign the past.
    function setMeterKey(uint32 participant, address meter) external {
        _requireOwner(participant);
        if (participant == GRID_ID) revert UnknownParticipant(participant);
        if (meter == address(0)) revert ZeroAddress();
        Clock memory clock = _clock;
        uint64 from = _state.nextInterval;
        if (block.timestamp >= clock.epoch) {
            uint256 started = (block.timestamp - clock.epoch) / clock.intervalSeconds;
            if (started + 1 > from) from = uint64(started + 1);
        }
        MeterKey[] storage keys = _meterKeys[participant];
        MeterKey storage newest = keys[keys.length - 1];
        // Keys come into force in order; one that has not yet is replaced.
        if (newest.fromInterval >= from) {
            newest.key = meter;
            from = newest.fromInterval;
        } else {
            keys.push(MeterKey(meter, from));
        }
        emit MeterKeySet(participant, meter, from);
    }

    /// @dev A participant that becomes settleable again (active and not frozen) had not
    /// to be settled while it was not: its mandate counts as in force only from now on
    /// for omission disputes (DisputeModule._eligible), which compare it with the time
    /// an interval was settled.
    function _renewMandate(uint32 participant, uint256 before, uint256 after_) private {
        bool was = before.active() && !before.frozen();
        bool is_ = after_.active() && !after_.frozen();
        uint256 m = _mandates[participant];
        if (!was && is_ && m != 0) _mandates[participant] = MandateWord.renewed(m, block.timestamp);
    }

    /// @notice The id registered for `owner`; reverts with UnknownAccount if none.
    function participantOf(address owner) external view returns (uint32) {
        uint32 idPlusOne = _idPlusOne[owner];
        if (idPlusOne == 0) revert UnknownAccount(owner);
        return idPlusOne - 1;
    }

    /// @notice A participant's owner, zone, flags, balance (minor units; negative when
    /// owing), credit limit and the part of its balance not yet final.
    function accountOf(uint32 participant)
        external
        view
        returns (
            address owner,
            uint16 zone,
            bool active,
            bool frozen,
            int256 balance,
            uint256 creditLimit,
            uint256 locked
        )
    {
        uint256 account = _existing(participant);
        return (
            OwnerWord.owner(_owners[participant]),
            account.zone(),
            account.active(),
            account.frozen(),
            account.balance(),
            account.creditLimit(),
            account.locked(_bucketOf(_clock, block.timestamp))
        );
    }

    /// @notice Number of registered participants, the grid included; ids are 0..count-1.
    function participantCount() external view returns (uint32) {
        return _state.participantCount;
    }

    /// @notice Every meter key `participant` has had, each from its first interval on.
    function meterKeys(uint32 participant) external view returns (MeterKey[] memory) {
        return _meterKeys[participant];
    }

    /// @notice The meter key that signs `participant`'s reading of `interval` (0: none).
    function meterKeyOf(uint32 participant, uint64 interval) external view returns (address) {
        MeterKey[] storage keys = _meterKeys[participant];
        for (uint256 i = keys.length; i > 0; --i) {
            if (keys[i - 1].fromInterval <= interval) return keys[i - 1].key;
        }
        return address(0);
    }
}
