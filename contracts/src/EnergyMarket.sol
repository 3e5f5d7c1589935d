// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SettlementEntry} from "./SettlementEntry.sol";
import {ParticipantRegistry} from "./ParticipantRegistry.sol";
import {Wallets} from "./Wallets.sol";

/// @title EnergyMarket
/// @notice Accepts one settlement per market interval from the oracle, in order and
/// never twice, checks that it conserves energy and money, respects the grid capacity
/// and prices every participant's energy at the settlement's prices, then moves the
/// wallet balances. Its events are the audit log of the market.
contract EnergyMarket is Wallets {
    /// @notice The per-interval part of a settlement. Prices are minor units per kWh.
    struct Settlement {
        uint64 interval;
        bytes32 inputsHash; // keccak256 of the canonical clearing inputs
        uint64 buyPrice; // grid import tariff
        uint64 sellPrice; // grid export tariff
        uint64 p2pPrice; // price of energy traded between participants
        uint64 gridImportWh; // energy the community imported this interval
        uint64 gridExportWh; // energy the community exported this interval
        int128 gridAmount; // change of the grid's wallet (participant 0)
    }

    /// @dev Capacity in Wh per interval; `set` tells an override from "use the default".
    struct Capacity {
        uint64 importWh;
        uint64 exportWh;
        bool set;
    }

    /// @notice The only interval the next settlement may be for.
    uint64 public nextInterval;
    /// @notice Capacity that applies to intervals without an override.
    Capacity public defaultCapacity;
    mapping(uint64 interval => Capacity) private _capacityOverride;

    /// @notice An interval was settled; one ParticipantSettled follows for each participant.
    event IntervalSettled(
        uint64 indexed interval,
        bytes32 inputsHash,
        uint256 buyPrice,
        uint256 sellPrice,
        uint256 p2pPrice,
        uint256 gridImportWh,
        uint256 gridExportWh,
        int256 gridAmount,
        uint256 participants
    );
    /// @notice One participant's energy and wallet change in a settled interval.
    event ParticipantSettled(
        uint64 indexed interval, uint32 indexed participant, int256 gridWh, int256 p2pWh, int256 amount
    );
    /// @notice The grid operator set the capacity of one interval.
    event CapacitySet(uint64 indexed interval, uint64 importWh, uint64 exportWh);
    /// @notice The grid operator set the default capacity.
    event DefaultCapacitySet(uint64 importWh, uint64 exportWh);

    error IntervalOutOfOrder(uint64 expected, uint64 got);
    error EmptySettlement(uint64 interval);
    error ParticipantsNotAscending(uint32 previous, uint32 participant);
    error PriceOutOfRange(uint256 p2pPrice, uint256 sellPrice, uint256 buyPrice);
    error PaymentMismatch(uint32 participant, int256 amount, int256 expectedMilliUnits);
    error P2PEnergyNotConserved(uint64 interval, int256 imbalanceWh);
    error GridEnergyMismatch(uint64 interval, uint256 importWh, uint256 exportWh, uint256 declaredImportWh, uint256 declaredExportWh);
    error MoneyNotConserved(uint64 interval, int256 participantsTotal, int256 gridAmount);
    error ImportCapacityExceeded(uint64 interval, uint256 importWh, uint256 capacityWh);
    error ExportCapacityExceeded(uint64 interval, uint256 exportWh, uint256 capacityWh);
    error CapacityForPastInterval(uint64 interval, uint64 nextInterval);

    /// @dev Running sums over a settlement's entries.
    struct Totals {
        int256 p2pWh;
        uint256 importWh;
        uint256 exportWh;
        int256 amount;
        int256 gridExpectedMilli;
    }

    /// @param admin Registers participants and grants roles.
    /// @param oracle Submits settlements.
    /// @param gridOperator Sets capacities and owns the grid's wallet (participant 0).
    /// @param token_ Settlement token backing the wallets.
    /// @param importCapacityWh Default community import limit per interval.
    /// @param exportCapacityWh Default community export limit per interval.
    /// @param firstInterval The interval the market's first settlement is for.
    constructor(
        address admin,
        address oracle,
        address gridOperator,
        IERC20 token_,
        uint64 importCapacityWh,
        uint64 exportCapacityWh,
        uint64 firstInterval
    ) Wallets(token_) ParticipantRegistry(admin, gridOperator) {
        _grantRole(ORACLE_ROLE, oracle);
        nextInterval = firstInterval;
        defaultCapacity = Capacity(importCapacityWh, exportCapacityWh, true);
        emit DefaultCapacitySet(importCapacityWh, exportCapacityWh);
    }

    /// @notice Sets the capacity used for intervals without their own.
    function setDefaultCapacity(uint64 importWh, uint64 exportWh) external onlyRole(GRID_OPERATOR_ROLE) {
        defaultCapacity = Capacity(importWh, exportWh, true);
        emit DefaultCapacitySet(importWh, exportWh);
    }

    /// @notice Sets the capacity of one interval that is not yet settled.
    function setCapacity(uint64 interval, uint64 importWh, uint64 exportWh) external onlyRole(GRID_OPERATOR_ROLE) {
        if (interval < nextInterval) revert CapacityForPastInterval(interval, nextInterval);
        _capacityOverride[interval] = Capacity(importWh, exportWh, true);
        emit CapacitySet(interval, importWh, exportWh);
    }

    /// @notice The import and export limits (Wh) in force for `interval`.
    function capacityOf(uint64 interval) public view returns (uint64 importWh, uint64 exportWh) {
        Capacity memory capacity = _capacityOverride[interval];
        if (!capacity.set) capacity = defaultCapacity;
        return (capacity.importWh, capacity.exportWh);
    }

    /// @notice Settles interval `s.interval`: checks every entry and the totals, then
    /// moves the wallets. `entries` are SettlementEntry words in ascending participant
    /// order, the grid (participant 0) excluded: its side is `s.gridAmount`.
    function settle(Settlement calldata s, uint256[] calldata entries) external onlyRole(ORACLE_ROLE) {
        if (s.interval != nextInterval) revert IntervalOutOfOrder(nextInterval, s.interval);
        if (entries.length == 0) revert EmptySettlement(s.interval);
        if (s.p2pPrice < s.sellPrice || s.p2pPrice > s.buyPrice) {
            revert PriceOutOfRange(s.p2pPrice, s.sellPrice, s.buyPrice);
        }
        nextInterval = s.interval + 1;
        emit IntervalSettled(
            s.interval,
            s.inputsHash,
            s.buyPrice,
            s.sellPrice,
            s.p2pPrice,
            s.gridImportWh,
            s.gridExportWh,
            s.gridAmount,
            entries.length
        );

        Totals memory totals;
        uint32 previous = GRID;
        uint256 count = entries.length;
        for (uint256 i = 0; i < count;) {
            (uint32 id, int256 gridWh, int256 p2pWh, int256 amount) = SettlementEntry.decode(entries[i]);
            if (id <= previous) revert ParticipantsNotAscending(previous, id);
            previous = id;
            _settleEntry(s, totals, id, gridWh, p2pWh, amount);
            unchecked {
                ++i;
            }
        }
        _checkTotals(s, totals);
        _update(GRID, s.gridAmount);
    }

    /// @dev Checks one participant's entry against the prices and moves its wallet.
    /// Later checks on signed orders and mandates hook in here.
    function _settleEntry(
        Settlement calldata s,
        Totals memory totals,
        uint32 id,
        int256 gridWh,
        int256 p2pWh,
        int256 amount
    ) internal {
        Account storage account = _accounts[id];
        if (!account.active) {
            if (account.owner == address(0)) revert UnknownParticipant(id);
            revert InactiveParticipant(id);
        }
        // Entries are int48 energies and int128 amounts and prices are uint64, so no
        // product or running sum below can overflow int256 (checked math costs ~1k gas
        // per participant here).
        unchecked {
            // Grid energy is paid at the tariff of its direction, P2P energy at the P2P price.
            int256 gridMilli = gridWh * int256(uint256(gridWh > 0 ? s.buyPrice : s.sellPrice));
            int256 expectedMilli = -gridMilli - p2pWh * int256(uint256(s.p2pPrice));
            int256 error_ = amount * 1000 - expectedMilli;
            if (error_ <= -1000 || error_ >= 1000) revert PaymentMismatch(id, amount, expectedMilli);

            totals.p2pWh += p2pWh;
            if (gridWh > 0) totals.importWh += uint256(gridWh);
            else totals.exportWh += uint256(-gridWh);
            totals.amount += amount;
            totals.gridExpectedMilli += gridMilli;
        }
        _update(id, amount);
        emit ParticipantSettled(s.interval, id, gridWh, p2pWh, amount);
    }

    /// @dev Conservation of energy and money over the whole interval, and capacity.
    function _checkTotals(Settlement calldata s, Totals memory totals) internal view {
        if (totals.p2pWh != 0) revert P2PEnergyNotConserved(s.interval, totals.p2pWh);
        if (totals.importWh != s.gridImportWh || totals.exportWh != s.gridExportWh) {
            revert GridEnergyMismatch(s.interval, totals.importWh, totals.exportWh, s.gridImportWh, s.gridExportWh);
        }
        if (totals.amount + s.gridAmount != 0) revert MoneyNotConserved(s.interval, totals.amount, s.gridAmount);
        int256 gridError = int256(s.gridAmount) * 1000 - totals.gridExpectedMilli;
        if (gridError <= -1000 || gridError >= 1000) {
            revert PaymentMismatch(GRID, s.gridAmount, totals.gridExpectedMilli);
        }
        (uint64 importCap, uint64 exportCap) = capacityOf(s.interval);
        if (s.gridImportWh > importCap) revert ImportCapacityExceeded(s.interval, s.gridImportWh, importCap);
        if (s.gridExportWh > exportCap) revert ExportCapacityExceeded(s.interval, s.gridExportWh, exportCap);
    }
}
