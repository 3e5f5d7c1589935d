// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketStorage} from "../MarketStorage.sol";
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
/// What is not checked here: that an account stays within its share, and that the
/// accounts together stay within the battery's capacity and power. Like home batteries'
/// state of charge, those are checked by auditors against the committed inputs (every
/// account's state is in them) and the settled energies.
contract SharedBatteryModule is MarketStorage {
    using AccountWord for uint256;

    /// @notice The selectors the router sends here.
    function selectors() external pure returns (bytes4[] memory s) {
        s = new bytes4[](4);
        s[0] = this.registerShare.selector;
        s[1] = this.scheduleStorageFee.selector;
        s[2] = this.shareOf.selector;
        s[3] = this.storageTermsAt.selector;
    }

    /// @notice Registers `owner` as a new share participant: a home's account holding
    /// `capacityWh` of shared battery `battery`, in `zone`, whose readings `meter` signs.
    /// @return participant The new participant's id.
    function registerShare(
        address owner,
        address meter,
        uint16 zone,
        string calldata name,
        uint32 battery,
        uint64 capacityWh
    ) external onlyRole(DEFAULT_ADMIN) returns (uint32 participant) {
        if (capacityWh == 0 || capacityWh > IntervalWord.WH_MAX) {
            revert ShareCapacityOutOfRange(capacityWh, uint64(IntervalWord.WH_MAX));
        }
        participant = _register(owner, meter, zone, name);
        _accounts[participant] = _accounts[participant].withFlag(AccountWord.SHARE, true);
        _shares[participant] = uint256(battery) | (uint256(capacityWh) << 32);
        emit ShareRegistered(participant, battery, capacityWh);
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
        return (uint32(word), uint64(word >> 32));
    }

    /// @notice The storage fee (minor units per kWh taken in) and operator of the terms
    /// version in force for `interval`, and that version's index.
    function storageTermsAt(uint64 interval) external view returns (uint256 index, uint256 fee, uint32 operator) {
        index = _termsIndexOf(interval);
        uint256 terms = _terms[index];
        return (index, TermsWord.storageFee(terms), TermsWord.storageOperator(terms));
    }
}
