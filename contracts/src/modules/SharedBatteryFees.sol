// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketStorage} from "../MarketStorage.sol";

/// @title SharedBatteryFees
/// @notice How the storage fee of a shared battery moves (issue 12). A home's account in
/// a shared battery is a participant of its own, flagged as a share (SharedBatteryModule);
/// its entries are priced like anyone's, and on the energy it takes in it also pays the
/// storage fee of the terms in force, in whole units per entry (Wh x fee / 1000, rounded
/// half up). The fees of an interval go to the terms' storage operator in one credit when
/// the interval closes, and come back out of it if a dispute reverses the interval.
///
/// It also keeps each account's energy, from its settled entries, and refuses an entry
/// that would take it below zero or above the account's share (ShareEnergyOutOfRange).
/// The efficiency convention, exact in integers: an account holds the energy it can
/// *deliver at its meter*, in pWh (10^-12 Wh). With charge efficiency c and discharge
/// efficiency d (millionths, fixed at registration), an entry taking in w Wh at the meter
/// adds w x c x d pWh (what that energy can give back: w x c/10^6 stored, x d/10^6 out),
/// and one giving out w Wh takes w x 10^12 pWh; the share of S Wh stored holds at most
/// S x d x 10^6 pWh, and S Wh registered as stored are S x d x 10^6 pWh. No rounding, so
/// no drift: the oracle carries the same integer (node.clearing.shares).
/// A single-transaction settlement moves the accounts as it checks them; a chunked one
/// checks them in its verify chunks against the energy before the interval (an account
/// has one entry per interval), keeps its share entries and moves them all when the
/// interval closes. A dispute that reverses a settled interval takes its entries' energy
/// back out, unchecked (a dispute must not fail): a later interval may have used it, so
/// an account can be below zero after a dispute. So the rule an entry obeys is: energy
/// in may not take the account above its share, energy out not below zero. The reversed
/// interval can then always settle again (if it now draws less than the later intervals
/// used, the account stays below zero, and nothing draws on it until it is refilled:
/// the later interval that over-drew it is itself disputable against the meters).
/// Used by the settlement (EntryChecks, SettlementModule) and DisputeModule.
abstract contract SharedBatteryFees is MarketStorage {
    uint256 internal constant PPM = 1e6;
    uint256 internal constant PWH_PER_WH = 1e12;
    uint256 private constant LOW_120 = (1 << 120) - 1;
    uint256 private constant EFFICIENCY_MASK = (1 << 20) - 1;
    uint256 private constant WH_MASK = (1 << 48) - 1;

    /// @dev Checks share `id`'s entry (net `netWh` at its meter) in interval `k`
    /// against its account's range; with `move`, moves the account, else keeps the entry
    /// for the interval's close (a chunked settlement's verify chunk). Runs in
    /// SharedBatteryModule, called back through the market (EntryChecks._shareEntryCall),
    /// so that the settlement modules stay small and only share entries pay for it.
    function _shareEntry(uint64 k, uint32 id, int256 netWh, bool move) internal {
        uint256 word = _shares[id];
        int256 before = int256(word) >> 120;
        // |before| and |delta| < 2^89 (see _deliverableDelta): no overflow.
        int256 after_;
        unchecked {
            after_ = before + _deliverableDelta(word, netWh);
        }
        int256 capacity = _deliverableCapacity(word);
        // Energy in may not take it above its share, energy out not below zero; an account
        // a dispute left below zero may still take energy in (see above).
        if (netWh > 0 ? after_ > capacity : netWh < 0 && after_ < 0) {
            revert ShareEnergyOutOfRange(k, id, netWh, before, after_, capacity);
        }
        if (move) _shares[id] = _withDeliverable(word, after_);
        // |netWh| < 2^49: it fits above the id's 32 bits.
        else _pendingShareEntries.push((uint256(netWh) << 32) | id);
    }

    /// @dev Moves the accounts of the pending chunked interval's share entries (its close).
    function _applyPendingShareEntries() internal {
        uint256 count = _pendingShareEntries.length;
        for (uint256 i = 0; i < count; ++i) {
            uint256 kept = _pendingShareEntries[i];
            _moveShare(uint32(kept), int256(kept) >> 32, false);
        }
        _dropPendingShareEntries();
    }

    /// @dev Empties the pending share entries by their length alone: the words left
    /// behind are past the end, and the next push overwrites them (cheaper and smaller
    /// than `delete`, which clears every one).
    function _dropPendingShareEntries() internal {
        uint256[] storage pending = _pendingShareEntries;
        assembly ("memory-safe") {
            sstore(pending.slot, 0)
        }
    }

    /// @dev Adds (or, with `reverse`, takes back) share `id`'s energy of an entry of
    /// `netWh`, unchecked: its entry was checked when it was verified.
    function _moveShare(uint32 id, int256 netWh, bool reverse) internal {
        uint256 word = _shares[id];
        int256 delta = _deliverableDelta(word, netWh);
        // As in _shareEntry.
        unchecked {
            _shares[id] = _withDeliverable(word, (int256(word) >> 120) + (reverse ? -delta : delta));
        }
    }

    /// @dev pWh an entry of `netWh` at the meter adds to (+) or takes from (-) the account
    /// of ShareWord `word`. |netWh| < 2^49 and efficiencies < 2^20: |result| < 2^89.
    function _deliverableDelta(uint256 word, int256 netWh) internal pure returns (int256) {
        unchecked {
            if (netWh <= 0) return netWh * int256(PWH_PER_WH);
            return netWh * int256((word >> 80) & EFFICIENCY_MASK) * int256((word >> 100) & EFFICIENCY_MASK);
        }
    }

    /// @dev The most pWh the account of ShareWord `word` holds: its share x d x 10^6.
    function _deliverableCapacity(uint256 word) internal pure returns (int256) {
        unchecked {
            return int256((word >> 32) & WH_MASK) * int256((word >> 100) & EFFICIENCY_MASK) * int256(PPM);
        }
    }

    /// @dev `word` holding `pwh` (within int136: |pwh| < 2^90 however disputes go).
    function _withDeliverable(uint256 word, int256 pwh) internal pure returns (uint256) {
        return (word & LOW_120) | (uint256(pwh) << 120);
    }

    /// @dev The storage fee of a share entry whose net energy is `netWh` (+ into the
    /// account) at `feePerKwh`: whole units, rounded half up; nothing on energy out.
    function _storageFeeOf(uint256 feePerKwh, int256 netWh) internal pure returns (int256) {
        if (netWh <= 0) return 0;
        // netWh < 2^49 and feePerKwh < 2^32: no overflow.
        unchecked {
            return (netWh * int256(feePerKwh) + 500) / 1000;
        }
    }

    /// @dev Credits `amount` of storage fees to `operator` (a registered participant) for
    /// interval `k`, locked in `bucket` like every settlement credit, and records it for
    /// a dispute. Nothing when no share paid a fee.
    function _payStorageFees(uint64 k, uint32 operator, int256 amount, uint256 bucket) internal {
        if (amount == 0) return;
        _update(operator, _existing(operator), amount, Move.Settle, bucket);
        // 0 < amount < 2^128: it fits above the operator's 32 bits.
        _storageFeesPaid[k] = (uint256(amount) << 32) | operator;
        emit StorageFeesPaid(k, operator, uint256(amount));
    }

    /// @dev Takes back the storage fees interval `k` paid (settled in `bucket`) and
    /// returns their amount: the grid's side of the interval held them too.
    function _reverseStorageFees(uint64 k, uint256 bucket) internal returns (int256 amount) {
        uint256 paid = _storageFeesPaid[k];
        // No amount above the operator's 32 bits: nothing was paid.
        if (paid < 1 << 32) return 0;
        delete _storageFeesPaid[k];
        uint32 operator = uint32(paid);
        amount = int256(paid >> 32);
        _update(operator, _accounts[operator], -amount, Move.Reverse, bucket);
        emit StorageFeesReversed(k, operator, uint256(amount));
    }
}
