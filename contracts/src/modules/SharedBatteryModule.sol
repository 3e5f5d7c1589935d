// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {SharedBatteryFees} from "./SharedBatteryFees.sol";
import {AccountWord} from "../lib/AccountWord.sol";
import {IntervalWord, TermsWord} from "../lib/TermsWord.sol";

/// @title SharedBatteryModule
/// @notice Shared batteries with virtual per-home accounts (issue 12). A shared battery
/// (say 100 kWh at the community's site) is not a participant: its energy is its
/// accounts'. Each home's account is a participant of its own, a *share* (its share of
/// the battery, e.g. 10 kWh), registered as such by the admin and never turned into
/// anything else: it has no load and no PV, it is settled like any participant (its
/// energy in and out, its meter-signed readings disputable), and on the energy it takes
/// in it pays the storage fee of the terms in force to the storage operator, the
/// batteries' owner (SharedBatteryFees). The storage fee and the operator are part of
/// the terms: scheduled with the notice every term needs, by the grid operator or the
/// admin, and carried over by every later version until changed.
///
/// Each account's energy is kept on chain from its settled entries and stays within its
/// share (SharedBatteryFees, which states the efficiency convention). What is not checked
/// here: that the accounts together stay within the battery's power, and that the shares
/// of a battery add up to at most its capacity (the contract does not know the battery's
/// size). Like home batteries' power, those are checked by auditors against the committed
/// inputs and the settled energies.
contract SharedBatteryModule is SharedBatteryFees {
    using AccountWord for uint256;

    /// @notice The selectors the router sends here.
    function selectors() external pure returns (bytes4[] memory s) {
        s = new bytes4[](7);
        s[0] = this.registerShare.selector;
        s[1] = this.scheduleStorageFee.selector;
        s[2] = this.shareOf.selector;
        s[3] = this.storageTermsAt.selector;
        s[4] = this.shareEnergyOf.selector;
        s[5] = this.checkShareEntry.selector;
        s[6] = this.applyPendingShareEntries.selector;
    }

    /// @notice Registers `owner` as a new share participant: a home's account holding
    /// `capacityWh` of shared battery `battery`, in `zone`, whose readings `meter` signs.
    /// It holds `storedWh` now, in a battery of charge and discharge efficiency
    /// `chargePpm` and `dischargePpm` (millionths, 1 to 10^6), which set how its entries
    /// move its energy (SharedBatteryFees).
    /// @return participant The new participant's id.
    function registerShare(
        address owner,
        address meter,
        uint16 zone,
        string calldata name,
        uint32 battery,
        uint64 capacityWh,
        uint64 storedWh,
        uint32 chargePpm,
        uint32 dischargePpm
    ) external onlyRole(DEFAULT_ADMIN) returns (uint32 participant) {
        if (capacityWh == 0 || capacityWh > IntervalWord.WH_MAX) {
            revert ShareCapacityOutOfRange(capacityWh, uint64(IntervalWord.WH_MAX));
        }
        if (storedWh > capacityWh) revert ValueOutOfRange("storedWh", storedWh, capacityWh);
        if (chargePpm == 0 || chargePpm > PPM) revert ValueOutOfRange("chargePpm", chargePpm, PPM);
        if (dischargePpm == 0 || dischargePpm > PPM) revert ValueOutOfRange("dischargePpm", dischargePpm, PPM);
        participant = _register(owner, meter, zone, name);
        _accounts[participant] = _accounts[participant].withFlag(AccountWord.SHARE, true);
        uint256 word = uint256(battery) | (uint256(capacityWh) << 32) | (uint256(chargePpm) << 80)
            | (uint256(dischargePpm) << 100);
        // storedWh < 2^48, dischargePpm <= 10^6: within int136.
        _shares[participant] = _withDeliverable(word, int256(uint256(storedWh) * dischargePpm * PPM));
        emit ShareRegistered(participant, battery, capacityWh, storedWh, chargePpm, dischargePpm);
    }

    /// @notice Schedules a storage fee of `fee` minor units per kWh that share
    /// participants take in, paid to participant `operator`, for intervals from
    /// `fromInterval` on: a new terms version with the tariffs of the one before it
    /// (notice and replacement as TermsModule.scheduleTerms).
    /// @return index The new version's index.
    function scheduleStorageFee(uint64 fromInterval, uint32 fee, uint32 operator) external returns (uint256 index) {
        if (!_roles[GRID_OPERATOR][msg.sender]) _checkRole(DEFAULT_ADMIN);
        if (operator > TermsWord.OPERATOR_MAX) revert ValueOutOfRange("operator", operator, TermsWord.OPERATOR_MAX);
        // slither-disable-next-line unused-return
        _existing(operator);
        uint256 previous;
        (index, previous) = _placeTerms(fromInterval);
        uint256 word = (TermsWord.withStorage(previous, fee, operator) >> 32 << 32) | fromInterval;
        _terms[index] = word;
        _state.termsCount = uint32(index + 1);
        emit TermsScheduled(
            index,
            fromInterval,
            TermsWord.importPrice(word),
            TermsWord.peakImportPrice(word),
            TermsWord.exportPrice(word),
            TermsWord.p2pFee(word),
            TermsWord.peakHours(word),
            TermsWord.payAsBid(word)
        );
        emit StorageFeeScheduled(index, fromInterval, fee, operator);
    }

    /// @notice The shared battery `participant` is an account in and its share (Wh);
    /// reverts with NotAShare for any other participant.
    function shareOf(uint32 participant) external view returns (uint32 battery, uint64 capacityWh) {
        if (!_existing(participant).isShare()) revert NotAShare(participant);
        uint256 word = _shares[participant];
        return (uint32(word), uint64((word >> 32) & IntervalWord.WH_MAX));
    }

    /// @notice The settlement's check of share `id`'s entry of `netWh` in interval `k`
    /// (SharedBatteryFees._shareEntry) and its storage fee, at the terms in force for `k`
    /// (those the settlement checked its header against). The account moves at once in a
    /// single-transaction settlement (no chunked interval pending) and at the close of a
    /// chunked one (its verify chunks run with the interval pending). Callable only by
    /// the market itself, from inside a settlement (EntryChecks._checkEntries).
    function checkShareEntry(uint64 k, uint32 id, int256 netWh) external returns (int256 storageFee) {
        if (msg.sender != address(this)) revert NotTheMarket(msg.sender);
        _shareEntry(k, id, netWh, _pending.phase == NONE);
        return _storageFeeOf(TermsWord.storageFee(_terms[_termsIndexOf(k)]), netWh);
    }

    /// @notice Moves the accounts of the pending chunked interval's share entries, at its
    /// close (SettlementModule.applyChunk): callable only by the market itself.
    function applyPendingShareEntries() external {
        if (msg.sender != address(this)) revert NotTheMarket(msg.sender);
        _applyPendingShareEntries();
    }

    /// @notice The energy share `participant`'s account can deliver at its meter and the
    /// most it can hold, pWh (10^-12 Wh; SharedBatteryFees), and its battery's charge and
    /// discharge efficiency, millionths. Negative only after a dispute took back energy a
    /// later interval had used, until the disputed interval settles again.
    function shareEnergyOf(uint32 participant)
        external
        view
        returns (int256 deliverablePwh, int256 capacityPwh, uint32 chargePpm, uint32 dischargePpm)
    {
        if (!_existing(participant).isShare()) revert NotAShare(participant);
        uint256 word = _shares[participant];
        return (int256(word) >> 120, _deliverableCapacity(word), uint32((word >> 80) & 0xFFFFF),
            uint32((word >> 100) & 0xFFFFF));
    }

    /// @notice The storage fee (minor units per kWh taken in) and operator of the terms
    /// version in force for `interval`, and that version's index.
    function storageTermsAt(uint64 interval) external view returns (uint256 index, uint256 fee, uint32 operator) {
        index = _termsIndexOf(interval);
        uint256 terms = _terms[index];
        return (index, TermsWord.storageFee(terms), TermsWord.storageOperator(terms));
    }
}
